//===- QuantizeTest.cpp - Tile/block quantization on random data ----------===//

#include "octet/Numerics/Quantize.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <tuple>
#include <vector>

using namespace octet::numerics;

namespace {

struct Case {
  int64_t batch, rows, cols;
};

// Full tiles, partial tiles at both ends, degenerate strips.
const Case kCases[] = {{1, 128, 256}, {1, 200, 300}, {2, 129, 131},
                       {1, 1, 129},   {1, 257, 1},   {3, 64, 64}};
const Granularity kGranularities[] = {
    Granularity::Tile1x128, Granularity::Tile128x1, Granularity::Block128x128,
    Granularity::PerTensor};

std::vector<float> randomData(const Case &c, uint32_t seed) {
  std::mt19937 gen(seed);
  // Log-uniform magnitudes over 8 binades, random signs: every group has a
  // different amax and the payload uses the whole FP8 range.
  std::uniform_real_distribution<float> exponent(-6.0f, 2.0f);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> x(c.batch * c.rows * c.cols);
  for (float &v : x)
    v = (negative(gen) ? -1.0f : 1.0f) * std::exp2(exponent(gen));
  return x;
}

/// The group of element (r, c) as [r0, r1) x [c0, c1), computed here
/// independently of the library.
void groupOf(Granularity g, const Case &c, int64_t r, int64_t col, int64_t &r0,
             int64_t &r1, int64_t &c0, int64_t &c1) {
  int64_t gr = g == Granularity::Tile1x128   ? 1
               : g == Granularity::PerTensor ? c.rows
                                             : 128;
  int64_t gc = g == Granularity::Tile128x1   ? 1
               : g == Granularity::PerTensor ? c.cols
                                             : 128;
  r0 = r / gr * gr;
  r1 = std::min(c.rows, r0 + gr);
  c0 = col / gc * gc;
  c1 = std::min(c.cols, c0 + gc);
}

TEST(QuantizeTest, ScalesPayloadsAndErrorsOnRandomData) {
  uint32_t seed = 1;
  for (const Case &c : kCases)
    for (Granularity g : kGranularities)
      for (FP8Format format : {FP8Format::E4M3, FP8Format::E5M2})
        for (ScaleRounding rounding :
             {ScaleRounding::FP32, ScaleRounding::Pow2}) {
          std::vector<float> x = randomData(c, seed++);
          QuantizedTensor q =
              quantize(x.data(), c.batch, c.rows, c.cols, format, g, rounding);
          std::vector<float> back(x.size());
          dequantize(q, back.data());
          float fmax = fp8Max(format);
          int manBits = format == FP8Format::E4M3 ? 3 : 2;
          // amax of every group, keyed by its first element (b, r0, c0);
          // PerTensor is one group across the batch.
          std::map<std::tuple<int64_t, int64_t, int64_t>, float> amaxOf;
          auto keyOf = [&](int64_t b, int64_t r, int64_t col) {
            int64_t r0, r1, c0, c1;
            groupOf(g, c, r, col, r0, r1, c0, c1);
            return std::make_tuple(g == Granularity::PerTensor ? 0 : b, r0, c0);
          };
          for (int64_t b = 0; b < c.batch; ++b)
            for (int64_t r = 0; r < c.rows; ++r)
              for (int64_t col = 0; col < c.cols; ++col) {
                float &m = amaxOf[keyOf(b, r, col)];
                m = std::max(m, std::fabs(x[(b * c.rows + r) * c.cols + col]));
              }
          for (int64_t b = 0; b < c.batch; ++b)
            for (int64_t r = 0; r < c.rows; ++r)
              for (int64_t col = 0; col < c.cols; ++col) {
                float amax = amaxOf[keyOf(b, r, col)];
                float s = q.scales[q.scaleIndex(b, r, col)];
                ASSERT_EQ(s, computeScale(amax, format, rounding));
                if (rounding == ScaleRounding::Pow2) {
                  int e;
                  ASSERT_EQ(std::frexp(s, &e), 0.5f) << "not a power of two";
                  ASSERT_GE(double(s) * fmax, amax);
                  ASSERT_LT(double(s) * fmax / 2, amax);
                }
                int64_t i = (b * c.rows + r) * c.cols + col;
                float v = x[i];
                // Error within half an FP8 ulp at v's magnitude (normal
                // range) or half the smallest subnormal step.
                float scaled = std::fabs(v) / s;
                int e = std::max(std::ilogb(scaled),
                                 format == FP8Format::E4M3 ? -6 : -14);
                double bound = std::ldexp(1.0, e - manBits - 1) * s;
                ASSERT_LE(std::fabs(double(back[i]) - v), bound * (1 + 1e-6))
                    << "element " << i;
                ASSERT_LE(std::fabs(back[i]), double(fmax) * s * (1 + 1e-6));
              }
        }
}

TEST(QuantizeTest, ScaleLayoutMatchesTheQTensorType) {
  const Case c{2, 200, 300};
  std::vector<float> x = randomData(c, 5);
  auto shape = [&](Granularity g) {
    QuantizedTensor q = quantize(x.data(), c.batch, c.rows, c.cols,
                                 FP8Format::E4M3, g, ScaleRounding::FP32);
    return std::vector<int64_t>{int64_t(q.scales.size()), q.scaleRows(),
                                q.scaleCols()};
  };
  EXPECT_EQ(shape(Granularity::Tile1x128),
            (std::vector<int64_t>{1200, 200, 3}));
  EXPECT_EQ(shape(Granularity::Tile128x1),
            (std::vector<int64_t>{1200, 2, 300}));
  EXPECT_EQ(shape(Granularity::Block128x128), (std::vector<int64_t>{12, 2, 3}));
  EXPECT_EQ(shape(Granularity::PerTensor), (std::vector<int64_t>{1, 1, 1}));
}

TEST(QuantizeTest, PartialTileUsesOnlyItsOwnElements) {
  // 1 x 200: the second tile has 72 elements; an outlier in the first tile
  // must not change the second tile's scale.
  std::vector<float> x(200, 1.0f);
  x[5] = 1000.0f;
  QuantizedTensor q = quantize(x.data(), 1, 1, 200, FP8Format::E4M3,
                               Granularity::Tile1x128, ScaleRounding::FP32);
  EXPECT_EQ(q.scales[0], 1000.0f / 448.0f);
  EXPECT_EQ(q.scales[1], 1.0f / 448.0f);
  EXPECT_EQ(e4m3ToFloat(q.payload[199]), 448.0f);
}

TEST(QuantizeTest, TinyNaNAndInfiniteInputs) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f, 0.0f, 1e-30f, -inf, std::nanf(""), 2.0f};
  QuantizedTensor q = quantize(x.data(), 1, 1, 6, FP8Format::E4M3,
                               Granularity::Tile1x128, ScaleRounding::FP32);
  // amax ignores NaN and infinity; infinity saturates, NaN stays NaN.
  EXPECT_EQ(q.scales[0], 2.0f / 448.0f);
  EXPECT_EQ(e4m3ToFloat(q.payload[3]), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3ToFloat(q.payload[4])));
  EXPECT_EQ(e4m3ToFloat(q.payload[5]), 448.0f);
  // An all-zero group takes the 1e-4 floor instead of dividing by zero.
  std::vector<float> zeros(128, 0.0f);
  QuantizedTensor z = quantize(zeros.data(), 1, 1, 128, FP8Format::E4M3,
                               Granularity::Tile1x128, ScaleRounding::Pow2);
  EXPECT_EQ(z.scales[0],
            computeScale(1e-4f, FP8Format::E4M3, ScaleRounding::Pow2));
  EXPECT_EQ(z.payload[0], 0);
}

TEST(QuantizeTest, RequantizeTransposedRegroupsAlongRows) {
  const Case c{1, 300, 256};
  std::vector<float> x = randomData(c, 9);
  QuantizedTensor q = quantize(x.data(), 1, c.rows, c.cols, FP8Format::E4M3,
                               Granularity::Tile1x128, ScaleRounding::FP32);
  std::vector<float> deq(x.size());
  dequantize(q, deq.data());
  QuantizedTensor t = requantizeTransposed(q, ScaleRounding::Pow2);
  EXPECT_EQ(t.granularity, Granularity::Tile128x1);
  EXPECT_EQ(t.scaleRows(), 3);
  EXPECT_EQ(t.scaleCols(), 256);
  // It is exactly the quantization of the dequantized tensor along rows.
  QuantizedTensor want =
      quantize(deq.data(), 1, c.rows, c.cols, FP8Format::E4M3,
               Granularity::Tile128x1, ScaleRounding::Pow2);
  EXPECT_EQ(t.payload, want.payload);
  EXPECT_EQ(t.scales, want.scales);
  // And it stays close to the original data: two E4M3 roundings.
  std::vector<float> back(x.size());
  dequantize(t, back.data());
  double err = 0, norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (back[i] - x[i]) * double(back[i] - x[i]);
    norm += double(x[i]) * x[i];
  }
  EXPECT_LT(std::sqrt(err / norm), 0.08);
}

} // namespace
