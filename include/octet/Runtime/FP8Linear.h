//===- FP8Linear.h - The recipe's FP8 linear on the CPU ---------*- C++ -*-===//
//
// A linear layer computed as the FP8 recipe prescribes (fp8-recipe.md), with
// the numerics library's quantization and block-scaled GEMM:
//
//   Fprop  y  = X W^T    X: 1x128 tiles along K, W: 128x128 blocks
//   Dgrad  dx = dY W     dY: 1x128 tiles along N, W: 128x128 blocks
//   Wgrad  dW = dY^T X   dY and X: 128x1 tiles along tokens (M); X is the
//                        FP8 copy cached by the forward, regrouped
//
// each with FP32 promotion every `promotionInterval` K-elements. A dimension
// that a GEMM contracts and that is not a multiple of 128 is padded with
// zeros, which leaves every scale as the partial group would have it.
// The high-precision linear is linearForward/linearBackward in CPUKernels.h.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_FP8LINEAR_H
#define OCTET_RUNTIME_FP8LINEAR_H

#include "octet/Numerics/Quantize.h"
#include "octet/Runtime/CPUKernels.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cassert>
#include <numeric>

namespace octet::cpu {

/// Where the block-scaled GEMMs of the FP8 linears run. Without one they
/// run as numerics::scaledGemm on the calling thread; the CUDA backend's
/// engine (CudaGemmEngine.h) runs them with the compiler-generated kernels.
/// Quantization stays with the caller, so an engine only changes how the
/// partial sums are accumulated inside a promotion interval.
class ScaledGemmEngine {
public:
  virtual ~ScaledGemmEngine() = default;
  /// out [free(lhs)][free(rhs)] (overwritten) = lhs . rhs contracted over
  /// (lhsContract, rhsContract) with FP32 promotion every `promotion`
  /// K-elements, as numerics::scaledGemm defines it. Called from several
  /// threads at once by pipeline ranks.
  virtual llvm::Error scaledGemm(const numerics::QuantizedTensor &lhs,
                                 int lhsContract,
                                 const numerics::QuantizedTensor &rhs,
                                 int rhsContract, int64_t promotion,
                                 float *out) = 0;
  /// The MoE expert GEMM: x holds the experts' rows one expert after the
  /// other (sizes[e] rows for expert e; 1x128 tiles along the contracted
  /// dimension), w the experts' weights as a batch of matrices (128x128
  /// blocks) contracted over their columns (wContract 1, Fprop: [N, K]) or
  /// their rows (0, Dgrad: [K, N]); out [sum(sizes)][N] (overwritten) gets
  /// each expert's rows times its matrix. By default one scaledGemm per
  /// expert with rows; an engine with a grouped kernel runs them in one
  /// launch.
  virtual llvm::Error groupedScaledGemm(const numerics::QuantizedTensor &x,
                                        llvm::ArrayRef<int64_t> sizes,
                                        const numerics::QuantizedTensor &w,
                                        int wContract, int64_t promotion,
                                        float *out);
};

/// Rows [first, first + count) of an unbatched tensor with one scale row
/// per row (1x128 tiles).
inline numerics::QuantizedTensor rowsOf(const numerics::QuantizedTensor &t,
                                        int64_t first, int64_t count) {
  assert(t.batch == 1 && t.granularity == numerics::Granularity::Tile1x128 &&
         first >= 0 && first + count <= t.rows && "rows of a 1x128 matrix");
  numerics::QuantizedTensor out;
  out.format = t.format;
  out.granularity = t.granularity;
  out.rows = count;
  out.cols = t.cols;
  int64_t perRow = t.scaleCols();
  out.payload.assign(t.payload.begin() + first * t.cols,
                     t.payload.begin() + (first + count) * t.cols);
  out.scales.assign(t.scales.begin() + first * perRow,
                    t.scales.begin() + (first + count) * perRow);
  return out;
}

/// Matrix `index` of a batched tensor.
inline numerics::QuantizedTensor matrixOf(const numerics::QuantizedTensor &t,
                                          int64_t index) {
  assert(t.granularity != numerics::Granularity::PerTensor && index >= 0 &&
         index < t.batch && "a matrix of a batch with per-matrix scales");
  numerics::QuantizedTensor out;
  out.format = t.format;
  out.granularity = t.granularity;
  out.rows = t.rows;
  out.cols = t.cols;
  int64_t elements = t.rows * t.cols;
  int64_t scales = t.scaleRows() * t.scaleCols();
  out.payload.assign(t.payload.begin() + index * elements,
                     t.payload.begin() + (index + 1) * elements);
  out.scales.assign(t.scales.begin() + index * scales,
                    t.scales.begin() + (index + 1) * scales);
  return out;
}

inline llvm::Error ScaledGemmEngine::groupedScaledGemm(
    const numerics::QuantizedTensor &x, llvm::ArrayRef<int64_t> sizes,
    const numerics::QuantizedTensor &w, int wContract, int64_t promotion,
    float *out) {
  int64_t rows = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  if (int64_t(sizes.size()) != w.batch || rows != x.rows)
    return llvm::createStringError(
        "an expert GEMM of %zu expert sizes adding up to %lld rows, for %lld "
        "experts and %lld rows",
        sizes.size(), (long long)rows, (long long)w.batch, (long long)x.rows);
  int64_t row = 0, n = wContract == 1 ? w.rows : w.cols;
  for (int64_t e = 0; e < int64_t(sizes.size()); ++e) {
    if (sizes[e] > 0)
      if (llvm::Error err =
              scaledGemm(rowsOf(x, row, sizes[e]), 1, matrixOf(w, e), wContract,
                         promotion, out + row * n))
        return err;
    row += sizes[e];
  }
  return llvm::Error::success();
}

/// How an FP8 linear quantizes; the defaults are the deepseek-v3 recipe.
struct FP8LinearConfig {
  numerics::FP8Format format = numerics::FP8Format::E4M3;
  /// Power-of-two scales for the input: the recipe's choice for the linear
  /// after attention and for the expert inputs after dispatch.
  numerics::ScaleRounding inputRounding = numerics::ScaleRounding::FP32;
  /// Power-of-two scales for the output gradient (the recipe's choice for
  /// the gradient entering the MoE down-projection).
  numerics::ScaleRounding gradRounding = numerics::ScaleRounding::FP32;
  int64_t promotionInterval = 128;
  /// Round y (forward) and dx (backward) to BF16.
  bool bf16Output = false;
  /// Runs the GEMMs; null: numerics::scaledGemm here.
  ScaledGemmEngine *engine = nullptr;
};

/// What the forward keeps for the backward: the input in FP8 (1x128 tiles,
/// K padded to a multiple of 128), not in high precision.
struct FP8LinearCache {
  numerics::QuantizedTensor x;
};

/// y = x w^T (+ bias) through FP8; x [m, k], w [n, k], bias [n] or null,
/// y [m, n] (overwritten). Fills `cache` when it is not null. Fails only
/// when the engine does.
llvm::Error fp8LinearForward(const float *x, const float *w, const float *bias,
                             const LinearShape &shape,
                             const FP8LinearConfig &config, float *y,
                             FP8LinearCache *cache);

/// The FP8 copy of x that fp8LinearForward caches: 1x128 tiles along K
/// (padded to a multiple of 128), scales rounded as config.inputRounding says.
/// A backend that does not keep the forward's cache (the CPU executor runs
/// Wgrad from the high-precision x) recomputes it with this, bit for bit.
FP8LinearCache fp8LinearQuantizeInput(const float *x, const LinearShape &shape,
                                      const FP8LinearConfig &config);

/// The experts' Fprop: for each expert e, its sizes[e] consecutive rows of
/// x [sum(sizes), k] times w [experts, n, k]'s matrix e transposed, into y
/// [sum(sizes), n] (overwritten); quantized as fp8LinearForward quantizes
/// each expert's linear, so the result is the same as one fp8LinearForward
/// per expert, bit for bit, but the GEMMs go to the engine at once
/// (ScaledGemmEngine::groupedScaledGemm).
llvm::Error fp8GroupedLinearForward(const float *x, const float *w,
                                    llvm::ArrayRef<int64_t> sizes, int64_t n,
                                    int64_t k, const FP8LinearConfig &config,
                                    float *y);

/// The experts' Dgrad: for each expert e, dx of its rows = its rows of dy
/// [sum(sizes), n] times w [experts, n, k]'s matrix e, into dx
/// [sum(sizes), k] (overwritten); the same as one fp8LinearDgrad per
/// expert, bit for bit, with the GEMMs at once.
llvm::Error fp8GroupedLinearDgrad(const float *dy, const float *w,
                                  llvm::ArrayRef<int64_t> sizes, int64_t n,
                                  int64_t k, const FP8LinearConfig &config,
                                  float *dx);

/// Dgrad alone: dx = dY W (overwrites), dY in 1x128 tiles along N.
llvm::Error fp8LinearDgrad(const float *w, const float *dy,
                           const LinearShape &shape,
                           const FP8LinearConfig &config, float *dx);

/// Wgrad alone: dw += dY^T X (accumulates, FP32), both operands regrouped
/// into 128x1 tiles along the tokens; X comes from the FP8 cache.
llvm::Error fp8LinearWgrad(const FP8LinearCache &cache, const float *dy,
                           const LinearShape &shape,
                           const FP8LinearConfig &config, float *dw);

/// dx = dY W (overwrites); dw += dY^T X and db += column sums of dY
/// (accumulate, FP32). Any gradient pointer may be null. The same as
/// fp8LinearDgrad, fp8LinearWgrad and the bias sums in turn.
llvm::Error fp8LinearBackward(const FP8LinearCache &cache, const float *w,
                              const float *dy, const LinearShape &shape,
                              const FP8LinearConfig &config, float *dx,
                              float *dw, float *db);

} // namespace octet::cpu

#endif // OCTET_RUNTIME_FP8LINEAR_H
