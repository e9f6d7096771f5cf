//===- octet-bench.cpp - Octet's benchmarks -------------------------------===//
//
// Benchmarks print their numbers next to a peer's measured in the same run.
//   octet-bench cpu-gemm     the CPU reference GEMM (FP32) against the naive
//                            loop it reproduces bit for bit
//   octet-bench gemm         the generated FP8 block-scaled GEMM kernels
//                            against cuBLASLt (block-scaled and per-tensor
//                            FP8, BF16) on an H100
//   octet-bench quant        the generated quantization kernels against a
//                            device copy, TB/s
//
//===----------------------------------------------------------------------===//

#include "BenchCommon.h"

#include "octet/Numerics/Gemm.h"
#include "octet/Numerics/Parallel.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace octet::numerics;

namespace {

/// Median wall time in seconds of `reps` runs of `fn` after one warm-up.
template <typename Fn> double medianSeconds(int reps, Fn fn) {
  fn();
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int benchCpuGemm() {
  struct Case {
    const char *what;
    int64_t m, n, k;
    Trans tb;
  };
  // Square sizes, and the linear shapes of examples/tiny-moe (128 tokens,
  // hidden 256, MLP 512): forward (X W^T), and the weight gradient (dY^T X).
  const Case cases[] = {
      {"square", 256, 256, 256, Trans::No},
      {"square", 512, 512, 512, Trans::No},
      {"square", 1024, 1024, 1024, Trans::No},
      {"tiny-moe fprop", 128, 512, 256, Trans::Yes},
      {"tiny-moe fprop", 128, 256, 512, Trans::Yes},
      {"tiny-moe lm-head", 128, 256, 256, Trans::Yes},
  };
  std::printf("CPU reference GEMM (FP32, deterministic, no FMA), %d threads\n",
              getNumThreads());
  std::printf("%-18s %6s %6s %6s %12s %12s %8s\n", "case", "M", "N", "K",
              "GFLOP/s", "naive", "ratio");
  std::mt19937 gen(42);
  std::normal_distribution<float> dist;
  for (const Case &c : cases) {
    std::vector<float> a(c.m * c.k), b(c.k * c.n), y(c.m * c.n);
    for (float &x : a)
      x = dist(gen);
    for (float &x : b)
      x = dist(gen);
    int64_t ldb = c.tb == Trans::Yes ? c.k : c.n;
    double flops = 2.0 * c.m * c.n * c.k;
    double fast = medianSeconds(5, [&] {
      gemm<float>(Trans::No, c.tb, c.m, c.n, c.k, a.data(), c.k, b.data(), ldb,
                  y.data(), c.n, false);
    });
    // The naive loop is the peer: the same arithmetic, unblocked, one thread.
    double naive =
        c.m * c.n * c.k > (int64_t(1) << 28) ? 0.0 : medianSeconds(1, [&] {
          gemmNaive<float>(Trans::No, c.tb, c.m, c.n, c.k, a.data(), c.k,
                           b.data(), ldb, y.data(), c.n, false);
        });
    double gf = flops / fast * 1e-9;
    if (naive > 0)
      std::printf("%-18s %6lld %6lld %6lld %12.1f %12.1f %7.1fx\n", c.what,
                  (long long)c.m, (long long)c.n, (long long)c.k, gf,
                  flops / naive * 1e-9, naive / fast);
    else
      std::printf("%-18s %6lld %6lld %6lld %12.1f %12s %8s\n", c.what,
                  (long long)c.m, (long long)c.n, (long long)c.k, gf, "-", "-");
  }
  return 0;
}

void usage(FILE *out) {
  std::fprintf(
      out,
      "usage: octet-bench <benchmark> [options]\n\n"
      "benchmarks:\n"
      "  cpu-gemm   the CPU reference GEMM, GFLOP/s\n"
      "  gemm       the generated FP8 GEMMs against cuBLASLt, TFLOP/s and "
      "ratios\n"
      "             [--kernels F.cubin --manifest F.json] [--iters N] "
      "[--check-rows R]\n"
      "             [--shape MxNxK: that GEMM alone, e.g. for a profiler]\n"
      "  quant      the generated quantization kernels against a device "
      "copy, TB/s\n"
      "             [--kernels F.cubin --manifest F.json] [--iters N]\n");
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  std::string what = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (what == "cpu-gemm")
    return benchCpuGemm();
  if (what == "gemm" || what == "quant") {
#ifdef OCTET_HAVE_CUDA
    return what == "gemm" ? octet::bench::benchGemm(args)
                          : octet::bench::benchQuant(args);
#else
    std::fprintf(stderr, "octet-bench: error: '%s' needs a build with the "
                         "CUDA 13 toolkit; this one was built without it\n",
                 what.c_str());
    return 1;
#endif
  }
  if (what == "-h" || what == "--help") {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "octet-bench: unknown benchmark '%s'\n", what.c_str());
  usage(stderr);
  return 1;
}
