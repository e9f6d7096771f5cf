//===- Quantize.cpp - Tile/block FP8 quantization -------------------------===//

#include "octet/Numerics/Quantize.h"
#include "octet/Numerics/Parallel.h"

#include <algorithm>
#include <cassert>
#include <cmath>

using namespace octet::numerics;

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The extent of the group containing index `i` along a dimension grouped
/// by `group` (1 when the dimension is not grouped).
struct GroupShape {
  int64_t rowGroup, colGroup; // 0 = the whole dimension
};

GroupShape groupShapeOf(Granularity g) {
  switch (g) {
  case Granularity::Tile1x128:
    return {1, kGroupSize};
  case Granularity::Tile128x1:
    return {kGroupSize, 1};
  case Granularity::Block128x128:
    return {kGroupSize, kGroupSize};
  case Granularity::PerTensor:
    return {0, 0};
  }
  return {0, 0};
}

} // namespace

int64_t QuantizedTensor::scaleRows() const {
  GroupShape g = groupShapeOf(granularity);
  return g.rowGroup == 0 ? 1 : ceilDiv(rows, g.rowGroup);
}

int64_t QuantizedTensor::scaleCols() const {
  GroupShape g = groupShapeOf(granularity);
  return g.colGroup == 0 ? 1 : ceilDiv(cols, g.colGroup);
}

int64_t QuantizedTensor::scaleIndex(int64_t b, int64_t r, int64_t c) const {
  GroupShape g = groupShapeOf(granularity);
  if (g.rowGroup == 0)
    return 0;
  return (b * scaleRows() + r / g.rowGroup) * scaleCols() + c / g.colGroup;
}

float octet::numerics::computeScale(float amax, FP8Format format,
                                    ScaleRounding rounding) {
  float clamped = std::max(amax, 1e-4f);
  float fmax = fp8Max(format);
  if (rounding == ScaleRounding::FP32)
    return clamped / fmax;
  // The smallest power of two p with p * fmax >= clamped, found exactly:
  // p * fmax is exact in double, so the comparisons are.
  double p = std::ldexp(1.0, std::ilogb(double(clamped) / fmax));
  while (p * fmax < clamped)
    p *= 2;
  while (p / 2 * fmax >= clamped)
    p /= 2;
  return float(p);
}

QuantizedTensor octet::numerics::quantize(const float *x, int64_t batch,
                                          int64_t rows, int64_t cols,
                                          FP8Format format,
                                          Granularity granularity,
                                          ScaleRounding rounding) {
  QuantizedTensor q;
  q.format = format;
  q.granularity = granularity;
  q.batch = batch;
  q.rows = rows;
  q.cols = cols;
  q.payload.resize(batch * rows * cols);
  int64_t sr = q.scaleRows(), sc = q.scaleCols();
  bool perTensor = granularity == Granularity::PerTensor;
  q.scales.assign(perTensor ? 1 : batch * sr * sc, 0.0f);

  auto finiteAbs = [](float v) {
    return std::isfinite(v) ? std::fabs(v) : 0.0f;
  };
  // Pass 1: amax per group. Each group's scale is owned by one range of
  // (batch, scale-row) pairs.
  if (perTensor) {
    float amax = 0.0f;
    for (int64_t i = 0, e = batch * rows * cols; i < e; ++i)
      amax = std::max(amax, finiteAbs(x[i]));
    q.scales[0] = computeScale(amax, format, rounding);
  } else {
    GroupShape g = groupShapeOf(granularity);
    parallelFor(batch * sr, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bs = begin; bs < end; ++bs) {
        int64_t b = bs / sr, s = bs % sr;
        int64_t r0 = s * g.rowGroup, r1 = std::min(rows, r0 + g.rowGroup);
        for (int64_t cs = 0; cs < sc; ++cs) {
          int64_t c0 = cs * g.colGroup, c1 = std::min(cols, c0 + g.colGroup);
          float amax = 0.0f;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c)
              amax = std::max(amax, finiteAbs(x[(b * rows + r) * cols + c]));
          q.scales[(b * sr + s) * sc + cs] =
              computeScale(amax, format, rounding);
        }
      }
    });
  }
  // Pass 2: the payload.
  parallelFor(batch * rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t br = begin; br < end; ++br) {
      int64_t b = br / rows, r = br % rows;
      for (int64_t c = 0; c < cols; ++c) {
        int64_t i = br * cols + c;
        float s = q.scales[q.scaleIndex(b, r, c)];
        q.payload[i] = floatToFP8(x[i] / s, format, Overflow::Saturate);
      }
    }
  });
  return q;
}

void octet::numerics::dequantize(const QuantizedTensor &q, float *out) {
  parallelFor(q.batch * q.rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t br = begin; br < end; ++br) {
      int64_t b = br / q.rows, r = br % q.rows;
      for (int64_t c = 0; c < q.cols; ++c)
        out[br * q.cols + c] =
            q.payloadValue(b, r, c) * q.scales[q.scaleIndex(b, r, c)];
    }
  });
}

QuantizedTensor octet::numerics::requantizeTransposed(const QuantizedTensor &q,
                                                      ScaleRounding rounding) {
  assert(q.granularity == Granularity::Tile1x128 &&
         "requantizeTransposed reads a 1x128-tiled tensor");
  std::vector<float> values(q.batch * q.rows * q.cols);
  dequantize(q, values.data());
  return quantize(values.data(), q.batch, q.rows, q.cols, q.format,
                  Granularity::Tile128x1, rounding);
}
