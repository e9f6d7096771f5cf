//===- CudaDenseGemmEngineTest.cpp - BF16 and FP32 GEMMs with cuBLASLt ----===//
//
// The engine octet-run --device cuda gives the GEMMs the recipe keeps in BF16
// or FP32. On a GPU with cuBLASLt: every layout the executor describes
// (either operand transposed), batched with strides, accumulating, with
// gaps between the operands' rows and matrices, FP32 and BF16 operands, a
// plan reused after the buffers grew, against the CPU's
// numerics::gemm on random data: 1 - 2 sum(xy)/sum(x^2+y^2) < 1e-10 (the
// two sum in different orders in FP32; BF16 products are exact in FP32),
// and the gaps keep their values. K = 0 gives zeros, or C unchanged when
// accumulating. Skipped, with the reason, without a GPU or cuBLASLt.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CudaDenseGemmEngine.h"
#include "octet/Runtime/GemmOperands.h"

#include "octet/Numerics/BFloat16.h"

#include "gtest/gtest.h"

#include <cmath>
#include <random>

using namespace octet;
using namespace octet::runtime;
using namespace octet::runtime::cuda;

namespace {

std::vector<float> randomVector(int64_t n, unsigned seed, bool bf16) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = bf16 ? numerics::roundToBF16(normal(rng)) : normal(rng);
  return v;
}

class CudaDenseGemmEngineTest : public ::testing::Test {
protected:
  void SetUp() override {
    llvm::Expected<std::unique_ptr<CudaDenseGemmEngine>> e =
        CudaDenseGemmEngine::create(0);
    if (!e)
      GTEST_SKIP() << "no GPU with cuBLASLt (OCTET_CUBLASLT names the "
                      "library): "
                   << llvm::toString(e.takeError());
    engine = std::move(*e);
  }
  std::unique_ptr<CudaDenseGemmEngine> engine;
};

TEST_F(CudaDenseGemmEngineTest, EveryLayoutMatchesTheCPU) {
  using numerics::Trans;
  int64_t gemms = 0;
  unsigned seed = 1;
  // g on the CPU into `cpu`, and through the engine into `gpu`.
  auto runBoth = [&](cpu::DenseGemm g, float *cpu, float *gpu) {
    g.c = cpu;
    cpu::runDenseGemm(g);
    g.c = gpu;
    llvm::Error e = engine->gemm(g);
    ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
    ++gemms;
  };
  for (bool bf16 : {false, true})
    for (Trans ta : {Trans::No, Trans::Yes})
      for (Trans tb : {Trans::No, Trans::Yes})
        for (int64_t batch : {1, 3})
          for (bool accumulate : {false, true}) {
            SCOPED_TRACE(testing::Message()
                         << "bf16 " << bf16 << " A^T " << (ta == Trans::Yes)
                         << " B^T " << (tb == Trans::Yes) << " batch " << batch
                         << " accumulate " << accumulate);
            const int64_t m = 37, n = 70, k = 129;
            cpu::DenseGemm g;
            g.transA = ta;
            g.transB = tb;
            g.m = m;
            g.n = n;
            g.k = k;
            // Gaps everywhere: between rows and between matrices.
            int64_t rowsA = ta == Trans::Yes ? k : m;
            int64_t rowsB = tb == Trans::Yes ? n : k;
            g.lda = (ta == Trans::Yes ? m : k) + 2;
            g.ldb = (tb == Trans::Yes ? k : n) + 1;
            g.ldc = n + 3;
            g.strideA = rowsA * g.lda + 7;
            g.strideB = rowsB * g.ldb + 3;
            g.strideC = m * g.ldc + 5;
            g.batch = batch;
            g.accumulate = accumulate;
            g.bf16Inputs = bf16;
            std::vector<float> a = randomVector(batch * g.strideA, seed++,
                                                bf16),
                               b = randomVector(batch * g.strideB, seed++,
                                                bf16),
                               c0 = randomVector(batch * g.strideC, seed++,
                                                 false);
            std::vector<float> cpu = c0, gpu = c0;
            g.a = a.data();
            g.b = b.data();
            ASSERT_NO_FATAL_FAILURE(runBoth(g, cpu.data(), gpu.data()));
            std::vector<float> x, y;
            bool gapsKept = true;
            for (int64_t bi = 0; bi < batch; ++bi)
              for (int64_t i = 0; i < g.strideC; ++i) {
                size_t at = size_t(bi * g.strideC + i);
                if (i < m * g.ldc && i % g.ldc < n) {
                  x.push_back(cpu[at]);
                  y.push_back(gpu[at]);
                } else if (gpu[at] != c0[at]) {
                  gapsKept = false;
                }
              }
            EXPECT_TRUE(gapsKept);
            double diff = gemmDifference(x.data(), y.data(), x.size());
            EXPECT_LT(diff, 1e-10);
            EXPECT_FALSE(std::isnan(diff));
          }
  // A plan per shape, dropped when the buffers grow: a small GEMM, a larger
  // one that reallocates them, the small one again.
  for (int64_t size : {16, 700, 16}) {
    SCOPED_TRACE(size);
    cpu::DenseGemm g;
    g.m = size;
    g.n = size + 1;
    g.k = size + 2;
    g.lda = g.k;
    g.ldb = g.n;
    g.ldc = g.n;
    std::vector<float> a = randomVector(g.m * g.k, seed++, false),
                       b = randomVector(g.k * g.n, seed++, false);
    std::vector<float> cpu(g.m * g.n), gpu(g.m * g.n, std::nanf(""));
    g.a = a.data();
    g.b = b.data();
    ASSERT_NO_FATAL_FAILURE(runBoth(g, cpu.data(), gpu.data()));
    EXPECT_LT(gemmDifference(cpu.data(), gpu.data(), cpu.size()), 1e-10);
  }
  // K = 0: an empty sum.
  std::vector<float> c = randomVector(6, 99, false), kept = c;
  cpu::DenseGemm empty;
  empty.m = 2;
  empty.n = 3;
  empty.lda = 0;
  empty.ldb = 3;
  empty.ldc = 3;
  empty.c = c.data();
  empty.accumulate = true;
  ASSERT_FALSE(bool(engine->gemm(empty)));
  EXPECT_EQ(c, kept);
  empty.accumulate = false;
  ASSERT_FALSE(bool(engine->gemm(empty)));
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
  EXPECT_EQ(engine->getStats().gemms, gemms);
}

} // namespace
