#!/usr/bin/env python3
"""compare-safetensors.py A.safetensors B.safetensors BOUND: the F32 tensors
of two files (same names) compared by 1 - 2 sum(xy) / sum(x^2 + y^2) over
all of them; prints it and fails unless it is below BOUND. Metadata both
files carry (octet-run --save-gradients writes the micro-batch losses as
hexadecimal floats) must be equal, character for character."""
import json
import struct
import sys
from array import array


meta = {}


def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    meta[path] = header.get("__metadata__", {})
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        values = array("f")
        values.frombytes(body[begin:end])
        out[name] = values
    return out


a, b = load(sys.argv[1]), load(sys.argv[2])
bound = float(sys.argv[3])
if sorted(a) != sorted(b) or not a:
    sys.exit("compare-safetensors: the files hold different tensors")
xy = sq = 0.0
for name in a:
    for x, y in zip(a[name], b[name]):
        xy += x * y
        sq += x * x + y * y
for key in sorted(set(meta[sys.argv[1]]) & set(meta[sys.argv[2]])):
    same = meta[sys.argv[1]][key] == meta[sys.argv[2]][key]
    print("%s: %s" % (key, "equal" if same else "DIFFER"))
    if not same:
        sys.exit(1)
diff = 1.0 - 2.0 * xy / sq if sq else 0.0
ok = diff < bound
print("difference %.3e %s %g over %d tensors" % (diff, "<" if ok else ">=", bound, len(a)))
sys.exit(0 if ok else 1)
