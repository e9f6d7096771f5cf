#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Octet and runs one job:
#
#   scripts/bootstrap.sh example   install, build, compile the example model
#   scripts/bootstrap.sh test      install, build, run the whole test suite
#
# Installing: the Debian packages Octet needs (LLVM/MLIR 22, CMake, Ninja,
# GoogleTest, Python for lit). apt runs only when something is missing. The
# CUDA 13 toolkit and NCCL are used when present under /usr/local/cuda; the
# build says what it leaves out without them.
#
# Environment: BUILD_DIR (default: build), JOBS (default: all cores).
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
    model=$root/examples/tiny-moe/model.mlir
    out=$build/examples/tiny-moe.annotated.mlir
    mkdir -p "$(dirname "$out")"
    step "Parsing, verifying and annotating $model with the deepseek-v3 recipe"
    "$build/bin/octet-opt" "$model" --octet-assign-precision -o "$out"
    cat "$out"
    step "Example graph: $(grep -c 'octet.param' "$out") parameters, $(grep -c 'precision<e4m3' "$out") FP8 GEMMs, $(grep -c '= octet\.' "$out") octet ops; written to $out"
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
