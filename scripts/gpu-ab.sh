#!/usr/bin/env bash
# Benchmarks several builds of the generated GEMM kernels in one GPU run,
# so that their ratios to cuBLASLt can be compared (cuBLASLt moves by a few
# percent between runs, and a lent GPU machine costs minutes to start).
#
#   scripts/gpu-ab.sh BUILD_DIR NAME=DIR [NAME=DIR ...]
#
# Each DIR holds bench-gemm.cubin and bench-gemm.json, e.g. a copy of
# BUILD_DIR/lib/octet from an earlier commit, or the output of
#   octetc tools/octet-bench/gemm-shapes.mlir --emit=cubin \
#     -o DIR/bench-gemm.cubin --kernel-manifest DIR/bench-gemm.json
# BUILD_DIR's octet-bench runs every set (the kernels' shared-memory layout
# must be the one that octet-bench was built with). Writes bench-NAME.log
# per set under $OUT (or BUILD_DIR/gpu-logs) and prints each geometric mean.
set -uo pipefail
if [[ $# -lt 2 ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
BUILD="$1"; shift
LOGS="${OUT:-$BUILD/gpu-logs}"
source "$(dirname "${BASH_SOURCE[0]}")/find-cublaslt.sh"
mkdir -p "$LOGS"
status=0
for set in "$@"; do
  name="${set%%=*}"; dir="${set#*=}"
  if [[ "$name" == "$set" || ! -f "$dir/bench-gemm.cubin" || ! -f "$dir/bench-gemm.json" ]]; then
    echo "gpu-ab: '$set': expected NAME=DIR with DIR/bench-gemm.{cubin,json}" >&2
    exit 2
  fi
  log="$LOGS/bench-$name.log"
  # A kernel that deadlocks must not take the whole call with it.
  timeout --kill-after=10 200 "$BUILD/bin/octet-bench" gemm \
    --kernels "$dir/bench-gemm.cubin" --manifest "$dir/bench-gemm.json" \
    >"$log" 2>&1 || { echo "== $name: FAILED (exit $?), see $log"; status=1; continue; }
  echo "== $name: $(tail -n 1 "$log")"
done
exit $status
