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
#include "octet/Runtime/FP8Linear.h"
#include "octet/Runtime/GemmKernelABI.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace octet::runtime {

struct PackedGemm {
  RhsScaling rhsScaling = RhsScaling::Block128;
  int64_t m = 0, n = 0, k = 0; ///< output M x N, contraction K
  std::vector<uint8_t> a;      ///< [M][K] E4M3 payload
  std::vector<uint8_t> b;      ///< [N][K] E4M3 payload
  std::vector<float> scaleA;   ///< [K/128][M]
  /// Block128: [ceil(N/128)][K/128]; PerRow: [K/128][N]. Grouped:
  /// [groups][ceil(N/128)][K/128].
  std::vector<float> scaleB;
  /// The MoE expert GEMM (packGroupedScaledGemm): B holds `groups` experts'
  /// [N][K] one after the other, and row i of A belongs to expert
  /// groupIndex[i] (constant over each tile of rows, -1: none).
  int64_t groups = 1;
  std::vector<int32_t> groupIndex;
  /// Grouped: the row of A (and D) of each of the caller's rows, in order.
  std::vector<int64_t> packedRows;
};

/// Packs lhs . rhs contracted over (lhsContract, rhsContract). Fails for
/// the combinations no kernel computes (see GenerateGemmKernels).
llvm::Expected<PackedGemm> packScaledGemm(const numerics::QuantizedTensor &lhs,
                                          int lhsContract,
                                          const numerics::QuantizedTensor &rhs,
                                          int rhsContract);

/// Packs the expert GEMM of ScaledGemmEngine::groupedScaledGemm (x 1x128
/// tiles along K, w a batch of 128x128-blocked matrices contracted over
/// dimension `wContract`) into the contiguous layout of the grouped
/// kernels: each expert's rows start on a multiple of `tileM` rows (the
/// rows between are zero), so that a tile of rows never holds two experts;
/// each expert's B is its matrix K-major (transposed for wContract 0).
llvm::Expected<PackedGemm> packGroupedScaledGemm(
    const numerics::QuantizedTensor &x, llvm::ArrayRef<int64_t> sizes,
    const numerics::QuantizedTensor &w, int wContract, int64_t tileM);

/// D [M][N] as the kernels define it: per promotion interval of `promotion`
/// K-elements an FP32 dot product in K order, then acc += partial *
/// (scaleA * scaleB); rounded to BF16 (nearest even) if asked, as floats.
std::vector<float> emulatePackedGemm(const PackedGemm &gemm, int64_t promotion,
                                     bool bf16Output);

/// Of `kernels` (generated GEMM kernel names), the one a runtime launches
/// for an FP32-output GEMM of `m` rows scaled as `scaling` with promotion
/// every `promotion` K-elements: a dense (or, with `grouped`, an expert)
/// kernel of that scaling, promotion and output; among them a 64-row tile
/// when m <= 64 (one consumer warpgroup instead of an idle one), a 128-row
/// one otherwise, then the widest N tile, then the deepest pipeline. The
/// error lists what the kernels offer.
llvm::Expected<std::string>
selectGemmKernel(llvm::ArrayRef<std::string> kernels, RhsScaling scaling,
                 int64_t m, int64_t promotion, bool grouped = false);

/// A ScaledGemmEngine that runs the GPU path's host side on the CPU: packs
/// each GEMM with packScaledGemm, as the CUDA engine uploads it, and
/// computes it with emulatePackedGemm. `octet-run --emulate-gemm-kernels`
/// trains with it, so the packing of every GEMM a program makes is checked
/// without a GPU.
class KernelEmulationEngine : public cpu::ScaledGemmEngine {
public:
  llvm::Error scaledGemm(const numerics::QuantizedTensor &lhs, int lhsContract,
                         const numerics::QuantizedTensor &rhs, int rhsContract,
                         int64_t promotion, float *out) override;
  /// The expert GEMM packed in the grouped kernels' contiguous layout.
  llvm::Error groupedScaledGemm(const numerics::QuantizedTensor &x,
                                llvm::ArrayRef<int64_t> sizes,
                                const numerics::QuantizedTensor &w,
                                int wContract, int64_t promotion,
                                float *out) override;
  /// GEMMs computed so far, by B's scaling (an expert GEMM counts once).
  int64_t getBlockScaledCount() const { return blockScaled; }
  int64_t getRowScaledCount() const { return rowScaled; }
  /// Of the block-scaled ones, the expert GEMMs.
  int64_t getGroupedCount() const { return grouped; }

private:
  std::atomic<int64_t> blockScaled{0}, rowScaled{0}, grouped{0};
};

/// DeepGEMM's agreement metric: 1 - 2 sum(xy) / sum(x^2 + y^2); 0 when the
/// two are equal, about 2 x the relative squared error otherwise.
double gemmDifference(const float *x, const float *y, size_t count);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_GEMMOPERANDS_H
