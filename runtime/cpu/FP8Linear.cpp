//===- FP8Linear.cpp - The recipe's FP8 linear on the CPU -----------------===//

#include "octet/Runtime/FP8Linear.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/ScaledGemm.h"

#include <algorithm>
#include <numeric>
#include <vector>

using namespace octet;
using namespace octet::cpu;
using numerics::Granularity;
using numerics::QuantizedTensor;

namespace {

int64_t roundUp(int64_t v) {
  return (v + numerics::kGroupSize - 1) / numerics::kGroupSize *
         numerics::kGroupSize;
}

/// src [rows, cols] copied into a zero [paddedRows, paddedCols] matrix.
std::vector<float> padded(const float *src, int64_t rows, int64_t cols,
                          int64_t paddedRows, int64_t paddedCols) {
  std::vector<float> out(paddedRows * paddedCols, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    std::copy(src + r * cols, src + (r + 1) * cols,
              out.begin() + r * paddedCols);
  return out;
}

/// The reference: numerics::scaledGemm on the calling thread, and the
/// expert GEMM as ScaledGemmEngine's default, one GEMM per expert.
class ReferenceEngine final : public ScaledGemmEngine {
public:
  llvm::Error scaledGemm(const QuantizedTensor &lhs, int lhsContract,
                         const QuantizedTensor &rhs, int rhsContract,
                         int64_t promotion, float *out) override {
    numerics::ScaledGemmOptions options;
    options.promotionInterval = promotion;
    numerics::scaledGemm(lhs, lhsContract, rhs, rhsContract, out, options);
    return llvm::Error::success();
  }
};

/// Where the config's GEMMs run: its engine, or the reference here.
ScaledGemmEngine &engineOf(const FP8LinearConfig &config) {
  static ReferenceEngine reference; // stateless: shared by every thread
  return config.engine ? *config.engine : reference;
}

/// The GEMM through the config's engine, or the reference here.
llvm::Error runGemm(const FP8LinearConfig &config, const QuantizedTensor &lhs,
                    int lhsContract, const QuantizedTensor &rhs,
                    int rhsContract, float *out) {
  return engineOf(config).scaledGemm(lhs, lhsContract, rhs, rhsContract,
                                     config.promotionInterval, out);
}

QuantizedTensor quantizeMatrix(const std::vector<float> &m, int64_t rows,
                               int64_t cols, const FP8LinearConfig &config,
                               Granularity g, numerics::ScaleRounding r) {
  return numerics::quantize(m.data(), 1, rows, cols, config.format, g, r);
}

} // namespace

FP8LinearCache
octet::cpu::fp8LinearQuantizeInput(const float *x, const LinearShape &shape,
                                   const FP8LinearConfig &config) {
  int64_t m = shape.m, k = shape.k, kp = roundUp(k);
  FP8LinearCache cache;
  cache.x = quantizeMatrix(padded(x, m, k, m, kp), m, kp, config,
                           Granularity::Tile1x128, config.inputRounding);
  return cache;
}

llvm::Error octet::cpu::fp8LinearForward(const float *x, const float *w,
                                         const float *bias,
                                         const LinearShape &shape,
                                         const FP8LinearConfig &config,
                                         float *y, FP8LinearCache *cache) {
  int64_t m = shape.m, n = shape.n, k = shape.k, kp = roundUp(k);
  FP8LinearCache qx = fp8LinearQuantizeInput(x, shape, config);
  // Weights are scaled with FP32 scales in every GEMM of the recipe.
  QuantizedTensor qw =
      quantizeMatrix(padded(w, n, k, n, kp), n, kp, config,
                     Granularity::Block128x128, numerics::ScaleRounding::FP32);
  if (llvm::Error e = runGemm(config, qx.x, 1, qw, 1, y))
    return e;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float v = y[i * n + j] + (bias ? bias[j] : 0.0f);
      y[i * n + j] = config.bf16Output ? numerics::roundToBF16(v) : v;
    }
  if (cache)
    *cache = std::move(qx);
  return llvm::Error::success();
}

/// The expert GEMM through the config's engine, or the reference here.
static llvm::Error runGroupedGemm(const FP8LinearConfig &config,
                                  const QuantizedTensor &x,
                                  llvm::ArrayRef<int64_t> sizes,
                                  const QuantizedTensor &w, int wContract,
                                  float *out) {
  return engineOf(config).groupedScaledGemm(x, sizes, w, wContract,
                                            config.promotionInterval, out);
}

/// w [experts, rows, cols] padded to [experts, paddedRows, paddedCols] and
/// quantized in 128x128 blocks per expert, as each expert's linear does;
/// one expert at a time, so the padded FP32 copy is one expert's.
static QuantizedTensor quantizeExperts(const float *w, int64_t experts,
                                       int64_t rows, int64_t cols,
                                       int64_t paddedRows, int64_t paddedCols,
                                       const FP8LinearConfig &config) {
  QuantizedTensor out;
  for (int64_t e = 0; e < experts; ++e) {
    QuantizedTensor one = quantizeMatrix(
        padded(w + e * rows * cols, rows, cols, paddedRows, paddedCols),
        paddedRows, paddedCols, config, Granularity::Block128x128,
        numerics::ScaleRounding::FP32);
    if (e == 0) {
      out = one;
      out.batch = experts;
      out.payload.reserve(one.payload.size() * experts);
      out.scales.reserve(one.scales.size() * experts);
      continue;
    }
    out.payload.insert(out.payload.end(), one.payload.begin(),
                       one.payload.end());
    out.scales.insert(out.scales.end(), one.scales.begin(), one.scales.end());
  }
  return out;
}

llvm::Error octet::cpu::fp8GroupedLinearForward(const float *x, const float *w,
                                                llvm::ArrayRef<int64_t> sizes,
                                                int64_t n, int64_t k,
                                                const FP8LinearConfig &config,
                                                float *y) {
  int64_t experts = int64_t(sizes.size()), kp = roundUp(k);
  int64_t rows = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  if (rows == 0)
    return llvm::Error::success();
  // 1x128 tiles are per row, and each expert's weights are a matrix of the
  // batch: the scales are those of one fp8LinearForward per expert.
  QuantizedTensor qx =
      quantizeMatrix(padded(x, rows, k, rows, kp), rows, kp, config,
                     Granularity::Tile1x128, config.inputRounding);
  QuantizedTensor qw = quantizeExperts(w, experts, n, k, n, kp, config);
  if (llvm::Error e = runGroupedGemm(config, qx, sizes, qw, 1, y))
    return e;
  // As fp8LinearForward adds its absent bias (0, which also makes -0 +0).
  for (int64_t i = 0; i < rows * n; ++i) {
    float v = y[i] + 0.0f;
    y[i] = config.bf16Output ? numerics::roundToBF16(v) : v;
  }
  return llvm::Error::success();
}

llvm::Error octet::cpu::fp8GroupedLinearDgrad(const float *dy, const float *w,
                                              llvm::ArrayRef<int64_t> sizes,
                                              int64_t n, int64_t k,
                                              const FP8LinearConfig &config,
                                              float *dx) {
  int64_t experts = int64_t(sizes.size()), kp = roundUp(k), np = roundUp(n);
  int64_t rows = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  if (rows == 0)
    return llvm::Error::success();
  // As fp8LinearDgrad: dY tiles along N, W blocks seen transposed.
  QuantizedTensor qdy =
      quantizeMatrix(padded(dy, rows, n, rows, np), rows, np, config,
                     Granularity::Tile1x128, config.gradRounding);
  QuantizedTensor qw = quantizeExperts(w, experts, n, k, np, kp, config);
  std::vector<float> out(rows * kp);
  if (llvm::Error e = runGroupedGemm(config, qdy, sizes, qw, 0, out.data()))
    return e;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < k; ++j) {
      float v = out[i * kp + j];
      dx[i * k + j] = config.bf16Output ? numerics::roundToBF16(v) : v;
    }
  return llvm::Error::success();
}

llvm::Error octet::cpu::fp8LinearDgrad(const float *w, const float *dy,
                                       const LinearShape &shape,
                                       const FP8LinearConfig &config,
                                       float *dx) {
  int64_t m = shape.m, n = shape.n, k = shape.k;
  int64_t kp = roundUp(k), np = roundUp(n);
  // Dgrad contracts N: dY tiles along N, W blocks (its 128x128 scales are
  // the forward's, seen transposed).
  QuantizedTensor qdy =
      quantizeMatrix(padded(dy, m, n, m, np), m, np, config,
                     Granularity::Tile1x128, config.gradRounding);
  QuantizedTensor qw =
      quantizeMatrix(padded(w, n, k, np, kp), np, kp, config,
                     Granularity::Block128x128, numerics::ScaleRounding::FP32);
  std::vector<float> out(m * kp);
  if (llvm::Error e = runGemm(config, qdy, 1, qw, 0, out.data()))
    return e;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) {
      float v = out[i * kp + j];
      dx[i * k + j] = config.bf16Output ? numerics::roundToBF16(v) : v;
    }
  return llvm::Error::success();
}

llvm::Error octet::cpu::fp8LinearWgrad(const FP8LinearCache &cache,
                                       const float *dy,
                                       const LinearShape &shape,
                                       const FP8LinearConfig &config,
                                       float *dw) {
  int64_t m = shape.m, n = shape.n, k = shape.k;
  int64_t kp = roundUp(k), mp = roundUp(m);
  // Wgrad contracts the tokens: both operands regrouped 128x1 along M.
  // The input comes from the FP8 cache, dequantized and requantized (what
  // requantize_transposed does), padded with zero tokens.
  QuantizedTensor qdy =
      quantizeMatrix(padded(dy, m, n, mp, n), mp, n, config,
                     Granularity::Tile128x1, config.gradRounding);
  std::vector<float> xs(m * kp);
  numerics::dequantize(cache.x, xs.data());
  QuantizedTensor qx =
      quantizeMatrix(padded(xs.data(), m, kp, mp, kp), mp, kp, config,
                     Granularity::Tile128x1, config.inputRounding);
  std::vector<float> out(n * kp);
  if (llvm::Error e = runGemm(config, qdy, 0, qx, 0, out.data()))
    return e;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      dw[i * k + j] += out[i * kp + j];
  return llvm::Error::success();
}

llvm::Error octet::cpu::fp8LinearBackward(const FP8LinearCache &cache,
                                          const float *w, const float *dy,
                                          const LinearShape &shape,
                                          const FP8LinearConfig &config,
                                          float *dx, float *dw, float *db) {
  if (dx)
    if (llvm::Error e = fp8LinearDgrad(w, dy, shape, config, dx))
      return e;
  if (dw)
    if (llvm::Error e = fp8LinearWgrad(cache, dy, shape, config, dw))
      return e;
  if (db)
    for (int64_t i = 0; i < shape.m; ++i)
      for (int64_t j = 0; j < shape.n; ++j)
        db[j] += dy[i * shape.n + j];
  return llvm::Error::success();
}
