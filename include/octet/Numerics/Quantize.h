//===- Quantize.h - Tile/block FP8 quantization -----------------*- C++ -*-===//
//
// Online scaling as the FP8 recipe prescribes (fp8-recipe.md): for each
// scaling group, amax = max |x| over the group's finite elements and
//
//   fp32 scales:  s = max(amax, 1e-4) / fmax
//   pow2 scales:  s = 2^ceil(log2(max(amax, 1e-4) / fmax))
//
// with fmax = 448 (E4M3) or 57344 (E5M2); then q = saturate(rne(x / s)) in
// FP32 and dequantization is q * s in FP32. Infinities saturate to +-fmax and
// NaN stays NaN; neither affects the group's scale.
//
// Tensors are [batch, rows, cols], row-major. Groups never cross a batch
// boundary; groups at the end of a dimension that is not a multiple of 128
// are partial (their amax is over the elements that exist). Scales are laid
// out as !octet_tq.qtensor's scales tensor:
//
//   Tile1x128     [batch, rows, ceil(cols/128)]   groups along cols
//   Tile128x1     [batch, ceil(rows/128), cols]   groups along rows
//   Block128x128  [batch, ceil(rows/128), ceil(cols/128)]
//   PerTensor     one scale for the whole tensor
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_QUANTIZE_H
#define OCTET_NUMERICS_QUANTIZE_H

#include "octet/Numerics/Float8.h"

#include <cstdint>
#include <vector>

namespace octet::numerics {

/// Elements per scaling group along a grouped dimension.
constexpr int64_t kGroupSize = 128;

enum class Granularity : uint8_t {
  Tile1x128,
  Tile128x1,
  Block128x128,
  PerTensor
};
enum class ScaleRounding : uint8_t { FP32, Pow2 };

/// An FP8 payload with its FP32 scales.
struct QuantizedTensor {
  FP8Format format = FP8Format::E4M3;
  Granularity granularity = Granularity::Tile1x128;
  int64_t batch = 1, rows = 0, cols = 0;
  std::vector<uint8_t> payload; ///< [batch, rows, cols]
  std::vector<float> scales;    ///< see the layout table above

  /// Rows and columns of one batch's scale grid (1 x 1 for PerTensor).
  int64_t scaleRows() const;
  int64_t scaleCols() const;
  /// Index into `scales` of the scale of element (b, r, c).
  int64_t scaleIndex(int64_t b, int64_t r, int64_t c) const;
  /// The FP8 value of element (b, r, c), unscaled.
  float payloadValue(int64_t b, int64_t r, int64_t c) const {
    return fp8ToFloat(payload[(b * rows + r) * cols + c], format);
  }
};

/// The scale of a group with the given amax.
float computeScale(float amax, FP8Format format, ScaleRounding rounding);

QuantizedTensor quantize(const float *x, int64_t batch, int64_t rows,
                         int64_t cols, FP8Format format,
                         Granularity granularity, ScaleRounding rounding);

/// out[b, r, c] = payload * scale, in FP32.
void dequantize(const QuantizedTensor &q, float *out);

/// Regroups a Tile1x128 tensor into Tile128x1 (same logical shape):
/// dequantize, then quantize along rows. The Wgrad GEMM needs its operands
/// grouped along the token dimension.
QuantizedTensor requantizeTransposed(const QuantizedTensor &q,
                                     ScaleRounding rounding);

} // namespace octet::numerics

#endif // OCTET_NUMERICS_QUANTIZE_H
