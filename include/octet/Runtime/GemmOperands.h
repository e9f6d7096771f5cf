//===- GemmOperands.h - Host-side operands of the FP8 GEMM kernels -*- C++ -*-===//
//
// The generated kernels take both FP8 operands K-major with their scales in
// the layouts of GemmKernelABI.h. packScaledGemm turns the operands of an
// octet_tq.scaled_matmul (Fprop, Dgrad or Wgrad, as numerics::scaledGemm
// takes them) into those buffers: it transposes what must be transposed and
// regroups the scales. emulatePackedGemm computes, on the CPU, what the
// kernels compute from the packed buffers, so the contract is tested
// without a GPU.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_GEMMOPERANDS_H
#define OCTET_RUNTIME_GEMMOPERANDS_H

#include "octet/Numerics/Quantize.h"
#include "octet/Runtime/GemmKernelABI.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace octet::runtime {

struct PackedGemm {
  RhsScaling rhsScaling = RhsScaling::Block128;
  int64_t m = 0, n = 0, k = 0; ///< output M x N, contraction K
  std::vector<uint8_t> a;      ///< [M][K] E4M3 payload
  std::vector<uint8_t> b;      ///< [N][K] E4M3 payload
  std::vector<float> scaleA;   ///< [K/128][M]
  /// Block128: [ceil(N/128)][K/128]; PerRow: [K/128][N].
  std::vector<float> scaleB;
};

/// Packs lhs . rhs contracted over (lhsContract, rhsContract). Fails for
/// the combinations no kernel computes (see GenerateGemmKernels).
llvm::Expected<PackedGemm> packScaledGemm(const numerics::QuantizedTensor &lhs,
                                          int lhsContract,
                                          const numerics::QuantizedTensor &rhs,
                                          int rhsContract);

/// D [M][N] as the kernels define it: per promotion interval of `promotion`
/// K-elements an FP32 dot product in K order, then acc += partial *
/// (scaleA * scaleB); rounded to BF16 (nearest even) if asked, as floats.
std::vector<float> emulatePackedGemm(const PackedGemm &gemm, int64_t promotion,
                                     bool bf16Output);

/// DeepGEMM's agreement metric: 1 - 2 sum(xy) / sum(x^2 + y^2); 0 when the
/// two are equal, about 2 x the relative squared error otherwise.
double gemmDifference(const float *x, const float *y, size_t count);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_GEMMOPERANDS_H
