#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Octet and runs one job:
#
#   scripts/bootstrap.sh example   install, build, compile and train the example
#   scripts/bootstrap.sh test      install, build, run the whole test suite
#
# Installing: the Debian packages Octet needs (LLVM/MLIR 22, CMake, Ninja,
# GoogleTest, Python for lit). apt runs only when something is missing. The
# CUDA 13 toolkit and NCCL are used when present under /usr/local/cuda; the
# build says what it leaves out without them.
#
# Environment: BUILD_DIR (default: build), JOBS (default: all cores),
# EXAMPLE_STEPS (default: 300).
set -euo pipefail

job=${1:-}
case "$job" in
  example|test) ;;
  *) echo "usage: $0 example|test" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
jobs=${JOBS:-$(nproc)}
step() { printf '\n==> %s\n' "$*" >&2; }

packages=(cmake ninja-build g++ python3 libgtest-dev
          llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "Installing Debian packages: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  step "Debian packages: all present"
fi

step "Configuring ($build)"
cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release

step "Building with $jobs jobs"
cmake --build "$build" -j "$jobs"

case "$job" in
  example)
    # Compile examples/tiny-moe (config.json + train.json: the DeepSeek-V3
    # FP8 recipe) into an executable and train it on the CPU on the shipped
    # corpus (examples/data/kjv.txt, read as bytes).
    out=$build/examples/tiny-moe
    mkdir -p "$out"
    step "Compiling examples/tiny-moe/config.json (recipe: deepseek-v3 FP8)"
    "$build/bin/octetc" "$root/examples/tiny-moe/config.json" \
      --train "$root/examples/tiny-moe/train.json" --plan
    "$build/bin/octetc" "$root/examples/tiny-moe/config.json" \
      --train "$root/examples/tiny-moe/train.json" -o "$out/tiny-moe"
    step "Training on the CPU: ${EXAMPLE_STEPS:-300} steps (log: $out/train.jsonl)"
    rm -rf "$out/checkpoints" "$out/train.jsonl"
    "$out/tiny-moe" --data "$root/examples/data/kjv.txt" \
      --steps "${EXAMPLE_STEPS:-300}" --log "$out/train.jsonl" \
      --checkpoint "$out/checkpoints" --every 100
    step "Loss (main model, nats/byte; ln 256 = 5.55 at the start): $(head -1 "$out/train.jsonl" | sed 's/.*"loss": \([0-9.]*\).*/\1/') -> $(tail -1 "$out/train.jsonl" | sed 's/.*"loss_ema": \([0-9.]*\).*/\1/') (smoothed, last step)"
    ;;
  test)
    # lit first, for its per-feature summary (GPU tests show as
    # UNSUPPORTED without an sm_90 GPU); then the rest of CTest.
    step "Running the lit suite"
    cmake --build "$build" --target check-octet
    step "Running the unit tests and the rest of CTest"
    ctest --test-dir "$build" --output-on-failure -j "$jobs" -E '^lit$'
    ;;
esac
