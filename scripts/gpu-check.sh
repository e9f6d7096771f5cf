#!/usr/bin/env bash
# Runs the checks that need a Hopper GPU, from a build made elsewhere: the
# GPU machines lent to this project have no LLVM/MLIR, so the kernels
# (cubins) and the statically linked test and benchmark binaries are built
# on a development machine and carried over with the working tree.
#
#   scripts/gpu-check.sh [BUILD_DIR] [LOG_DIR]
#
# BUILD_DIR defaults to build/, LOG_DIR to $OUT (the device tool's output
# folder) or build/gpu-logs. Writes one log per step and ends non-zero if a
# step failed. The steps:
#   1. nvidia-smi and the CUDA device test,
#   2. OctetCudaTests: every generated GEMM and quantization kernel (the
#      test variants and the runtime's built-in library) against the CPU
#      reference (GEMMs: 1 - 2 sum(xy)/sum(x^2+y^2) < 1e-3; quantization:
#      bit for bit), and the GEMM engine,
#   3. octet-run --device cuda (the FP8 GEMMs on the GPU) against
#      --device cpu on the tiny model, 10 steps, losses within 1% at every
#      step (what test/Tools/octet-run/device-cuda.test checks with lit),
#      and its two pipeline ranks with --virtual-ranks 2, if the bundles
#      were prepared,
#   4. octet-bench gemm and quant (TFLOP/s and TB/s next to cuBLASLt and a
#      device copy, with correctness columns; SKIP_BENCH=1 leaves them out),
#      and octet-bench gemm again on the kernels with the overlapped
#      promotion schedule (bench-gemm-overlap),
#   5. the peers' own numbers through PyTorch (../shared/probes/peers), if
#      that folder was carried, for comparison within the same run.
#
#   scripts/gpu-check.sh --prepare [BUILD_DIR]
#
# run on the development machine, writes the bundles of step 3 and their
# CPU losses into BUILD_DIR/gpu-check/ (octetc needs MLIR, which the GPU
# machines lack) and prints the build paths to carry to the GPU machine.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${1:-}" == "--prepare" ]]; then
  BUILD="${2:-$ROOT/build}"
  mkdir -p "$BUILD/gpu-check"
  set -e
  "$BUILD/bin/octetc" "$ROOT/examples/tiny-moe/config.json" --emit=bundle \
    -o "$BUILD/gpu-check/tiny.bundle"
  "$BUILD/bin/octetc" "$ROOT/examples/tiny-moe/config.json" \
    --train "$ROOT/examples/tiny-moe/train-pp2.json" --emit=bundle \
    -o "$BUILD/gpu-check/tiny-pp2.bundle"
  # Four ranks for --virtual-ranks 4: DualPipeV on 2 pipeline ranks x 2
  # replicas, the experts split over the replicas (expert exchanges inside
  # the overlapped F&B).
  echo '{"schedule": "dualpipev", "micro_batches": 4, "global_batch": 16, "parallel": {"pp": 2, "dp": 2, "ep": 2}}' \
    > "$BUILD/gpu-check/dualpipev-ep2.json"
  "$BUILD/bin/octetc" "$ROOT/examples/tiny-moe/config.json" \
    --train "$BUILD/gpu-check/dualpipev-ep2.json" --emit=bundle \
    -o "$BUILD/gpu-check/tiny-dualpipev-ep2.bundle"
  # The CPU side of step 3, so that the GPU lease only trains on the GPU.
  "$BUILD/bin/octet-run" "$BUILD/gpu-check/tiny.bundle" --quiet --device cpu \
    --data "$ROOT/examples/data/kjv.txt" --steps 10 \
    --log "$BUILD/gpu-check/tiny.bundle.cpu.jsonl"
  "$BUILD/bin/octet-run" "$BUILD/gpu-check/tiny-pp2.bundle" --quiet --device cpu \
    --data "$ROOT/examples/data/kjv.txt" --steps 3 \
    --log "$BUILD/gpu-check/tiny-pp2.bundle.cpu.jsonl"
  "$BUILD/bin/octet-run" "$BUILD/gpu-check/tiny-dualpipev-ep2.bundle" --quiet \
    --device cpu --data "$ROOT/examples/data/kjv.txt" --steps 3 \
    --log "$BUILD/gpu-check/tiny-dualpipev-ep2.bundle.cpu.jsonl"
  echo "bundles and CPU losses in $BUILD/gpu-check"
  # What the GPU run reads: carry these (the whole build is far over the
  # device tool's 64 MiB).
  carry=(bin lib/octet test/unit/Runtime gpu-check)
  echo "carry (relative to the repository root), $(cd "$BUILD" && du -csh "${carry[@]}" | tail -1 | cut -f1) in all:"
  rel="${BUILD#"$ROOT"/}"
  printf '  %s\n' "${carry[@]/#/$rel/}"
  exit 0
fi
BUILD="${1:-$ROOT/build}"
LOGS="${2:-${OUT:-$BUILD/gpu-logs}}"
mkdir -p "$LOGS"
status=0

# A kernel that deadlocks on an mbarrier hangs its process, so every step
# has a time limit (seconds) and the steps after it still run.
step() {
  local name="$1" limit="$2"; shift 2
  echo "== $name: $*"
  if timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1; then
    echo "   ok ($LOGS/$name.log)"
  else
    echo "   FAILED (exit $?); last lines of $LOGS/$name.log:"
    tail -n 20 "$LOGS/$name.log" | sed 's/^/   | /'
    status=1
  fi
}

source "$(dirname "${BASH_SOURCE[0]}")/find-cublaslt.sh"
echo "cuBLASLt: ${OCTET_CUBLASLT:-not found (the cuBLASLt columns will be empty)}"

step device 30 nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv
step device-test 60 "$BUILD/test/unit/Runtime/OctetRuntimeTests" --gtest_filter='CudaDevice*'
export OCTET_TEST_GEMM_KERNELS="$BUILD/test/unit/Runtime/gemm-variants.cubin"
export OCTET_TEST_GEMM_MANIFEST="$BUILD/test/unit/Runtime/gemm-variants.json"
export OCTET_TEST_QUANTIZE_KERNELS="$BUILD/test/unit/Runtime/quantize-variants.cubin"
export OCTET_TEST_QUANTIZE_MANIFEST="$BUILD/test/unit/Runtime/quantize-variants.json"
step cuda-gemm-tests 150 "$BUILD/test/unit/Runtime/OctetCudaTests" --gtest_filter='CudaGemmTest.*'
# The kernels built into the runtime, through the same test, before the
# engine uses them (their tile configurations had not run on a GPU).
OCTET_TEST_GEMM_KERNELS="$BUILD/lib/octet/fp8-gemm-library.cubin" \
OCTET_TEST_GEMM_MANIFEST="$BUILD/lib/octet/fp8-gemm-library.json" \
  step builtin-kernel-tests 120 "$BUILD/test/unit/Runtime/OctetCudaTests" --gtest_filter='CudaGemmTest.*'
step cuda-quant-tests 60 "$BUILD/test/unit/Runtime/OctetCudaTests" --gtest_filter='CudaQuantize*'
step cuda-engine-tests 120 "$BUILD/test/unit/Runtime/OctetCudaTests" --gtest_filter='KernelLibrary*:CudaGemmEngine*:CudaDenseGemmEngine*'
# Losses of --device cuda against --device cpu, step by step.
train_pair() {
  local bundle="$1" steps="$2" data="$ROOT/examples/data/kjv.txt"
  shift 2 # the rest: more flags for the GPU run
  local cpu="$LOGS/$(basename "$bundle").cpu.jsonl"
  # The CPU losses --prepare wrote, or trained here.
  if [[ -f "$bundle.cpu.jsonl" ]]; then
    cp "$bundle.cpu.jsonl" "$cpu"
  else
    "$BUILD/bin/octet-run" "$bundle" --data "$data" --steps "$steps" --quiet \
      --device cpu --log "$cpu" || return 1
  fi
  "$BUILD/bin/octet-run" "$bundle" --data "$data" --steps "$steps" \
    --device cuda "$@" --log "$LOGS/$(basename "$bundle").gpu.jsonl" || return 1
  # (the output above says where the BF16/FP32 GEMMs ran: cuBLASLt, or the
  # CPU and why)
  python3 - "$LOGS/$(basename "$bundle").cpu.jsonl" \
    "$LOGS/$(basename "$bundle").gpu.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:])
d = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print("steps", len(a), len(b), "max relative loss difference %.3e" % d)
for x, y in zip(a, b):
    print("  cpu %.6f  cuda %.6f" % (x, y))
sys.exit(0 if len(a) == len(b) and d < 0.01 else 1)
PY
}
if [[ -f "$BUILD/gpu-check/tiny.bundle" ]]; then
  # timeout runs programs, not functions: through bash, with what it reads.
  export ROOT BUILD LOGS
  export -f train_pair
  step device-cuda-train 300 bash -c 'train_pair "$@"' _ "$BUILD/gpu-check/tiny.bundle" 10
  step device-cuda-train-pp2 200 bash -c 'train_pair "$@"' _ "$BUILD/gpu-check/tiny-pp2.bundle" 3 --virtual-ranks 2
  # Issue 6's GPU check: four ranks on one GPU, each with its own stream;
  # the log has each rank's measured bubble next to the simulator's, and
  # the trace shows whether the exchanges overlap the other half's compute.
  if [[ -f "$BUILD/gpu-check/tiny-dualpipev-ep2.bundle" ]]; then
    step virtual-ranks-4 300 bash -c 'train_pair "$@"' _ \
      "$BUILD/gpu-check/tiny-dualpipev-ep2.bundle" 3 --virtual-ranks 4 \
      --trace "$LOGS/virtual-ranks-4.trace.json"
    step virtual-ranks-4-trace 60 python3 - "$LOGS/virtual-ranks-4.trace.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in t if e["ph"] == "M"}
x = [e for e in t if e["ph"] == "X"]
def rank(e): return names[e["tid"]].split()[1]
def span(e): return (e["ts"], e["ts"] + e["dur"])
waits = [e for e in x if e["name"] == "wait experts"]
# A track computes during its stage functions, less the exchanges it
# waits for inside them.
busy = {}
for c in (e for e in x if e["cat"] == "compute"):
    pieces = [span(c)]
    for w in waits:
        if w["tid"] != c["tid"]:
            continue
        ws, we = span(w)
        pieces = [q for s0, e0 in pieces
                  for q in ((s0, min(e0, ws)), (max(s0, we), e0)) if q[0] < q[1]]
    busy.setdefault(c["tid"], []).extend(pieces)
# An exchange is hidden when another track of its rank computes meanwhile.
def hidden(w):
    ws, we = span(w)
    return any(rank(w) == names[tid].split()[1] and tid != w["tid"] and s0 < we and ws < e0
               for tid, pieces in busy.items() for s0, e0 in pieces)
n = sum(1 for w in waits if hidden(w))
print("tracks:", sorted(set(names.values())))
print("expert exchanges (waits): %d, of them while the rank's other half computed: %d" % (len(waits), n))
sys.exit(0 if waits and n else 1)
PY
  fi
else
  echo "== device-cuda-train: skipped (run scripts/gpu-check.sh --prepare first)"
fi
# Benchmarks last (SKIP_BENCH=1 leaves them out): the checks above are
# what a short GPU lease is for.
if [[ -z "${SKIP_BENCH:-}" ]]; then
  step bench-gemm 200 "$BUILD/bin/octet-bench" gemm
  # The overlapped promotion schedule on the same shapes, in the same run,
  # so that the two ratios to cuBLASLt can be compared.
  if [[ -f "$BUILD/lib/octet/bench-gemm-overlap.cubin" ]]; then
    step bench-gemm-overlap 200 "$BUILD/bin/octet-bench" gemm \
      --kernels "$BUILD/lib/octet/bench-gemm-overlap.cubin" \
      --manifest "$BUILD/lib/octet/bench-gemm-overlap.json"
  fi
  step bench-quant 120 "$BUILD/bin/octet-bench" quant
fi
if [[ -f "$ROOT/../shared/probes/peers/gpu_anchors.py" ]]; then
  step peers 300 python3 "$ROOT/../shared/probes/peers/gpu_anchors.py"
fi
exit $status
