#!/usr/bin/env python3
"""compare-losses.py BASELINE.jsonl CANDIDATE.jsonl BOUND: prints how the
baseline's loss fell and the relative difference of the two runs'
EMA-smoothed losses at the last step; fails when it is not below BOUND or
the runs differ in length."""
import json
import sys

def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

base, cand = load(sys.argv[1]), load(sys.argv[2])
bound = float(sys.argv[3])
if not base or len(base) != len(cand):
    sys.exit("compare-losses: runs of %d and %d steps" % (len(base), len(cand)))
last = len(base)
print("steps %d: loss falls %.4f -> %.4f (bf16)" % (last, base[0]["loss"], base[-1]["loss_ema"]))
b, c = base[-1]["loss_ema"], cand[-1]["loss_ema"]
rel = abs(b - c) / abs(b)
ok = rel < bound
print("smoothed loss at step %d: bf16 %.6f, fp8 %.6f, relative difference %.2e %s %g"
      % (last, b, c, rel, "<" if ok else ">=", bound))
sys.exit(0 if ok else 1)
