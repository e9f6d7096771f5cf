//===- ScaledGemm.cpp - Block-scaled FP8 GEMM reference -------------------===//
//
// Without emulation the partial products of a chunk go through the blocked
// FP32 GEMM (payloads widened to FP32; the products of two FP8 values are
// exact in FP32), so the reference runs at GEMM speed. The emulation is a
// per-element loop: it exists for tests and demonstrations.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/ScaledGemm.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/Gemm.h"
#include "octet/Numerics/Parallel.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <sstream>
#include <vector>

using namespace octet::numerics;

namespace {

bool isGrouped(Granularity g) { return g != Granularity::PerTensor; }

/// Whether a tile's scales are constant along `dim` (0 = rows, 1 = cols)
/// within a group, i.e. its groups run along `dim`.
bool groupsRunAlong(Granularity g, int dim) {
  switch (g) {
  case Granularity::Tile1x128:
    return dim == 1;
  case Granularity::Tile128x1:
    return dim == 0;
  case Granularity::Block128x128:
  case Granularity::PerTensor:
    return true;
  }
  return false;
}

using Operand = ContractedOperand;

} // namespace

std::vector<float> octet::numerics::ContractedOperand::widen() const {
  std::vector<float> out(free() * k());
  parallelFor(free(), 16, [&](int64_t begin, int64_t end) {
    for (int64_t f = begin; f < end; ++f)
      for (int64_t kk = 0; kk < k(); ++kk)
        out[f * k() + kk] = fp8ToFloat(code(f, kk), q.format);
  });
  return out;
}

float octet::numerics::tensorCoreAccumulate(float partial,
                                            const float *products, int count,
                                            int keptBits) {
  int emax = partial != 0.0f ? std::ilogb(partial) : INT32_MIN;
  for (int i = 0; i < count; ++i)
    if (products[i] != 0.0f)
      emax = std::max(emax, std::ilogb(products[i]));
  if (emax == INT32_MIN)
    return 0.0f;
  // Every term keeps the bits at or above emax - (keptBits - 1); the sum of
  // the truncated terms is exact in double.
  double quantum = std::ldexp(1.0, emax - (keptBits - 1));
  auto truncate = [&](float v) { return std::trunc(v / quantum) * quantum; };
  double sum = truncate(partial);
  for (int i = 0; i < count; ++i)
    sum += truncate(products[i]);
  return float(sum);
}

std::string octet::numerics::checkScaledGemm(const QuantizedTensor &lhs,
                                             int lhsContract,
                                             const QuantizedTensor &rhs,
                                             int rhsContract,
                                             const ScaledGemmOptions &options) {
  std::ostringstream why;
  if (lhs.batch != 1 || rhs.batch != 1)
    return "operands must be rank 2 (batch 1)";
  if ((lhsContract != 0 && lhsContract != 1) ||
      (rhsContract != 0 && rhsContract != 1))
    return "contracting dimensions must be 0 or 1";
  Operand a{lhs, lhsContract}, b{rhs, rhsContract};
  if (a.k() != b.k()) {
    why << "contraction sizes differ: " << a.k() << " vs " << b.k();
    return why.str();
  }
  if (!groupsRunAlong(lhs.granularity, lhsContract) ||
      !groupsRunAlong(rhs.granularity, rhsContract))
    return "a tiled operand must be grouped along its contracting dimension";
  int64_t p = options.promotionInterval, k = a.k();
  if (p < 0 || p % 32 != 0) {
    why << "promotion interval " << p << " is not a multiple of 32";
    return why.str();
  }
  if (isGrouped(lhs.granularity) || isGrouped(rhs.granularity)) {
    if (k % kGroupSize != 0) {
      why << "K = " << k << " is not a multiple of " << kGroupSize;
      return why.str();
    }
    if (p == 0 || kGroupSize % p != 0) {
      why << "promotion interval " << p << " must divide " << kGroupSize;
      return why.str();
    }
  }
  if (p > k) {
    why << "promotion interval " << p << " exceeds K = " << k;
    return why.str();
  }
  if (options.emulateTensorCore &&
      (options.mmaK <= 0 || options.keptBits < 2 || options.keptBits > 24))
    return "tensor-core emulation needs mmaK > 0 and 2 <= keptBits <= 24";
  return "";
}

void octet::numerics::scaledGemm(const QuantizedTensor &lhs, int lhsContract,
                                 const QuantizedTensor &rhs, int rhsContract,
                                 float *y, const ScaledGemmOptions &options) {
  assert(checkScaledGemm(lhs, lhsContract, rhs, rhsContract, options).empty());
  Operand a{lhs, lhsContract}, b{rhs, rhsContract};
  int64_t m = a.free(), n = b.free(), k = a.k();
  int64_t chunk =
      options.promotionInterval == 0 ? k : options.promotionInterval;
  std::vector<float> wa = a.widen(), wb = b.widen();
  std::fill(y, y + m * n, 0.0f);
  if (k == 0)
    return;
  std::vector<float> partial(m * n);

  for (int64_t c0 = 0; c0 < k; c0 += chunk) {
    int64_t len = std::min(chunk, k - c0);
    if (!options.emulateTensorCore) {
      gemm<float>(Trans::No, Trans::Yes, m, n, len, wa.data() + c0, k,
                  wb.data() + c0, k, partial.data(), n, /*accumulate=*/false);
    } else {
      parallelFor(m, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> products(options.mmaK);
        for (int64_t i = begin; i < end; ++i)
          for (int64_t j = 0; j < n; ++j) {
            float acc = 0.0f;
            for (int64_t s = 0; s < len; s += options.mmaK) {
              int count = int(std::min<int64_t>(options.mmaK, len - s));
              for (int t = 0; t < count; ++t)
                products[t] = wa[i * k + c0 + s + t] * wb[j * k + c0 + s + t];
              acc = tensorCoreAccumulate(acc, products.data(), count,
                                         options.keptBits);
            }
            partial[i * n + j] = acc;
          }
      });
    }
    // Promotion: scale the chunk's partial sums and add them in FP32, as
    // one fused multiply-add (what the GPU kernels do: one FFMA per element
    // instead of a multiply and an add). The chunk lies inside one
    // 128-group, so one scale pair covers it.
    parallelFor(m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float sa = a.scale(i, c0);
        for (int64_t j = 0; j < n; ++j)
          y[i * n + j] = std::fma(partial[i * n + j], sa * b.scale(j, c0),
                                  y[i * n + j]);
      }
    });
  }
  if (options.bf16Output)
    for (int64_t i = 0; i < m * n; ++i)
      y[i] = roundToBF16(y[i]);
}
