//===- ScaledGemm.h - Block-scaled FP8 GEMM reference -----------*- C++ -*-===//
//
// The reference every FP8 GEMM kernel is tested against:
//
//   Y[m, n] = sum over K-chunks c of (sa(m, c) * sb(n, c)) * P_c(m, n)
//
// where P_c is the dot product of the FP8 payloads over chunk c, which is
// `promotionInterval` K-elements long (the whole of K when it is 0). Each
// partial P_c is formed as the tensor cores would (FP32 accumulation in K
// order, or, optionally, the emulation of Hopper's reduced-precision FP8
// accumulation below); at each chunk end it is promoted: multiplied by the
// chunk's two scales and added to an FP32 accumulator, in that order.
//
// Operands are rank-2 quantized tensors contracted along `lhsContract` and
// `rhsContract` (0 or 1), as octet_tq.scaled_matmul:
//   Fprop  X[M,K] tile_1x128 . W[N,K] block_128x128, contract (1, 1)
//   Dgrad  dY[M,N] tile_1x128 . W[N,K] block_128x128, contract (1, 0)
//   Wgrad  dY[M,N] tile_128x1 . X[M,K] tile_128x1,  contract (0, 0)
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_SCALEDGEMM_H
#define OCTET_NUMERICS_SCALEDGEMM_H

#include "octet/Numerics/Quantize.h"

#include <string>
#include <vector>

namespace octet::numerics {

struct ScaledGemmOptions {
  /// K-elements per promotion; 0 accumulates all of K before scaling, which
  /// only per-tensor scales allow.
  int64_t promotionInterval = 128;
  /// Round the output to BF16 (nearest even) instead of keeping FP32.
  bool bf16Output = false;
  /// Emulate Hopper's FP8 tensor-core accumulation (a model, after the
  /// DeepSeek-V3 report): for every MMA of `mmaK` products, the products and
  /// the running partial sum are aligned to the largest exponent among them
  /// and truncated toward zero to `keptBits` significant bits, then added.
  bool emulateTensorCore = false;
  int keptBits = 14;
  int mmaK = 32;
};

/// A rank-2 operand seen as [free][K], whichever of its dimensions it
/// contracts (`contract` 1: [rows, cols] is [free, K]; 0: transposed).
struct ContractedOperand {
  const QuantizedTensor &q;
  int contract;
  int64_t free() const { return contract == 1 ? q.rows : q.cols; }
  int64_t k() const { return contract == 1 ? q.cols : q.rows; }
  /// The FP8 code of element (f, kk).
  uint8_t code(int64_t f, int64_t kk) const {
    return contract == 1 ? q.payload[f * q.cols + kk]
                         : q.payload[kk * q.cols + f];
  }
  float scale(int64_t f, int64_t kk) const {
    return contract == 1 ? q.scales[q.scaleIndex(0, f, kk)]
                         : q.scales[q.scaleIndex(0, kk, f)];
  }
  /// The payload widened to FP32 (unscaled), laid out [free][K].
  std::vector<float> widen() const;
};

/// Why these operands cannot be multiplied (the op verifier's rules), or an
/// empty string when they can.
std::string checkScaledGemm(const QuantizedTensor &lhs, int lhsContract,
                            const QuantizedTensor &rhs, int rhsContract,
                            const ScaledGemmOptions &options);

/// Y = lhs . rhs as described above; `y` is [lhs free dim, rhs free dim],
/// row-major. The operands must pass checkScaledGemm.
void scaledGemm(const QuantizedTensor &lhs, int lhsContract,
                const QuantizedTensor &rhs, int rhsContract, float *y,
                const ScaledGemmOptions &options);

/// Adds `count` products to a tensor-core partial sum the way the emulation
/// above does, and returns the new partial sum.
float tensorCoreAccumulate(float partial, const float *products, int count,
                           int keptBits);

} // namespace octet::numerics

#endif // OCTET_NUMERICS_SCALEDGEMM_H
