//===- DenseGemm.cpp - The BF16 and FP32 GEMMs on the CPU -----------------===//

#include "octet/Runtime/DenseGemmEngine.h"

#include "octet/Numerics/Parallel.h"

#include "llvm/Support/FormatVariadic.h"

#include <cstring>

using namespace octet;
using namespace octet::cpu;

void octet::cpu::runDenseGemm(const DenseGemm &g) {
  auto one = [&](int64_t b) {
    numerics::gemm<float>(g.transA, g.transB, g.m, g.n, g.k,
                          g.a + b * g.strideA, g.lda, g.b + b * g.strideB,
                          g.ldb, g.c + b * g.strideC, g.ldc, g.accumulate);
  };
  // A single product is split inside gemm (parallelFor does not nest).
  if (g.batch == 1) {
    one(0);
    return;
  }
  numerics::parallelFor(g.batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b)
      one(b);
  });
}

/// Whether v is a BF16 value: its low 16 bits are zero.
static bool isBF16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return (bits & 0xFFFFu) == 0;
}

llvm::Error octet::cpu::checkBF16Inputs(const DenseGemm &g) {
  if (!g.bf16Inputs)
    return llvm::Error::success();
  // The elements op(X) reads, stored rows x cols with leading dimension ld.
  auto check = [&](const float *x, int64_t rows, int64_t cols, int64_t ld,
                   int64_t stride, const char *name) -> llvm::Error {
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          float v = x[b * stride + i * ld + j];
          if (!isBF16(v))
            return llvm::createStringError(llvm::formatv(
                "a BF16 GEMM's {0}[{1}][{2}][{3}] = {4:e} is not a BF16 "
                "value (the executor did not round it)",
                name, b, i, j, v));
        }
    return llvm::Error::success();
  };
  bool ta = g.transA == numerics::Trans::Yes;
  bool tb = g.transB == numerics::Trans::Yes;
  if (llvm::Error e =
          check(g.a, ta ? g.k : g.m, ta ? g.m : g.k, g.lda, g.strideA, "A"))
    return e;
  return check(g.b, tb ? g.n : g.k, tb ? g.k : g.n, g.ldb, g.strideB, "B");
}

llvm::Error CheckedDenseGemmEngine::gemm(const DenseGemm &g) {
  if (llvm::Error e = checkBF16Inputs(g))
    return e;
  runDenseGemm(g);
  ++count;
  return llvm::Error::success();
}
