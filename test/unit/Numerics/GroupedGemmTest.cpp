//===- GroupedGemmTest.cpp - MoE expert GEMM reference tests --------------===//
//
// The aligned row layout, the checks that reject what the grouped GEMMs
// cannot take, and both grouped GEMMs against an FP64 product of the
// dequantized operands, expert by expert, on random data.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/GroupedGemm.h"

#include "NumericsTestUtil.h"

#include "gtest/gtest.h"

#include <vector>

using namespace octet::numerics;

namespace {

using test::diffMetric;
using test::normalData;

/// Rows of experts 0..3 (expert 1 has none; 300 and 1 are not multiples
/// of 128).
const std::vector<int64_t> kSizes = {100, 0, 300, 1};
constexpr int64_t kRows = 401, kExperts = 4;

TEST(GroupedGemmTest, AlignedRowsBoundEveryRunPaddedTo128) {
  EXPECT_EQ(alignedRows(1024, 8), 1920);
  EXPECT_EQ(alignedRows(0, 8), 0);
  EXPECT_EQ(alignedRows(128, 1), 128);
  EXPECT_EQ(alignedRows(1, 8), 128);
  // The worst splits: 1 + 1 + 1 + 398 rows, and every expert one row past
  // a multiple of 128.
  EXPECT_EQ(alignedRows(kRows, kExperts), 3 * 128 + 512);
  EXPECT_EQ(alignedRows(129 * 3, 3), 256 * 3);
}

TEST(GroupedGemmTest, AlignAndUnalignRoundTrip) {
  int64_t cols = 3, padded = alignedRows(kRows, kExperts);
  std::vector<float> x = normalData(kRows * cols, 1);
  std::vector<float> aligned(padded * cols, 7.0f), back(kRows * cols);
  std::vector<int32_t> index(padded, 7);
  ASSERT_EQ(checkGroupSizes(kSizes.data(), kExperts, kRows, padded), "");
  alignGroups(x.data(), kRows, cols, kSizes.data(), kExperts, padded,
              aligned.data(), index.data());
  // Expert 0 at row 0, expert 2 at 128, expert 3 at 128 + 384.
  EXPECT_EQ(index[0], 0);
  EXPECT_EQ(index[99], 0);
  EXPECT_EQ(index[100], -1);
  EXPECT_EQ(index[128], 2);
  EXPECT_EQ(index[427], 2);
  EXPECT_EQ(index[428], -1);
  EXPECT_EQ(index[512], 3);
  EXPECT_EQ(index[513], -1);
  EXPECT_EQ(aligned[128 * cols], x[100 * cols]);
  EXPECT_EQ(aligned[512 * cols + 2], x[400 * cols + 2]);
  EXPECT_EQ(aligned[100 * cols], 0.0f);
  EXPECT_EQ(aligned[(padded - 1) * cols], 0.0f);
  unalignGroups(aligned.data(), padded, cols, kSizes.data(), kExperts,
                back.data());
  EXPECT_EQ(back, x);
}

TEST(GroupedGemmTest, GroupSizesAreChecked) {
  std::vector<int64_t> negative = {-1, 2}, tooFew = {1, 1}, ok = {129, 129};
  EXPECT_EQ(checkGroupSizes(negative.data(), 2, 1, 256),
            "expert 0 has -1 rows of 1");
  EXPECT_EQ(checkGroupSizes(tooFew.data(), 2, 3, 256),
            "the expert sizes add up to 2 rows, not 3");
  EXPECT_EQ(checkGroupSizes(ok.data(), 2, 258, 384),
            "the aligned layout needs 512 rows, has 384");
  EXPECT_EQ(checkGroupSizes(ok.data(), 2, 258, alignedRows(258, 2)), "");
}

/// FP64 per-expert products of the dequantized operands.
struct Operands {
  int64_t padded = alignedRows(kRows, kExperts), n = 256, k = 384;
  std::vector<float> x, dy, w;
  std::vector<int32_t> index;
  Operands() {
    std::vector<float> rx = normalData(kRows * k, 2),
                       rdy = normalData(kRows * n, 3);
    x.resize(padded * k);
    dy.resize(padded * n);
    index.resize(padded);
    alignGroups(rx.data(), kRows, k, kSizes.data(), kExperts, padded, x.data(),
                index.data());
    alignGroups(rdy.data(), kRows, n, kSizes.data(), kExperts, padded,
                dy.data(), index.data());
    w = normalData(kExperts * n * k, 4);
  }
};

std::vector<float> dequantized(const QuantizedTensor &q) {
  std::vector<float> out(q.batch * q.rows * q.cols);
  dequantize(q, out.data());
  return out;
}

TEST(GroupedGemmTest, MGroupedMatchesFP64PerRowExpert) {
  Operands o;
  QuantizedTensor qx = quantize(o.x.data(), 1, o.padded, o.k, FP8Format::E4M3,
                                Granularity::Tile1x128, ScaleRounding::FP32);
  QuantizedTensor qdy =
      quantize(o.dy.data(), 1, o.padded, o.n, FP8Format::E4M3,
               Granularity::Tile1x128, ScaleRounding::FP32);
  QuantizedTensor qw = quantize(o.w.data(), kExperts, o.n, o.k,
                                FP8Format::E4M3, Granularity::Block128x128,
                                ScaleRounding::FP32);
  ScaledGemmOptions options;
  ASSERT_EQ(checkGroupedScaledGemm(qx, qw, 1, o.index.data(), options), "");
  ASSERT_EQ(checkGroupedScaledGemm(qdy, qw, 0, o.index.data(), options), "");
  std::vector<float> y(o.padded * o.n, NAN), dx(o.padded * o.k, NAN);
  groupedScaledGemm(qx, qw, 1, o.index.data(), y.data(), options);
  groupedScaledGemm(qdy, qw, 0, o.index.data(), dx.data(), options);

  std::vector<float> fx = dequantized(qx), fdy = dequantized(qdy),
                     fw = dequantized(qw);
  std::vector<double> got, want, gotDx, wantDx;
  for (int64_t i = 0; i < o.padded; ++i) {
    int32_t e = o.index[i];
    if (e < 0) {
      for (int64_t j = 0; j < o.n; ++j)
        EXPECT_EQ(y[i * o.n + j], 0.0f) << "padding row " << i;
      continue;
    }
    const float *we = fw.data() + e * o.n * o.k;
    for (int64_t j = 0; j < o.n; ++j) {
      double s = 0;
      for (int64_t kk = 0; kk < o.k; ++kk)
        s += double(fx[i * o.k + kk]) * we[j * o.k + kk];
      got.push_back(y[i * o.n + j]);
      want.push_back(s);
    }
    for (int64_t kk = 0; kk < o.k; ++kk) {
      double s = 0;
      for (int64_t j = 0; j < o.n; ++j)
        s += double(fdy[i * o.n + j]) * we[j * o.k + kk];
      gotDx.push_back(dx[i * o.k + kk]);
      wantDx.push_back(s);
    }
  }
  // FP32 partial sums of 128 products and FP32 promotion: the products
  // are exact, so only FP32 rounding separates them from FP64.
  EXPECT_LT(diffMetric(got, want), 1e-12);
  EXPECT_LT(diffMetric(gotDx, wantDx), 1e-12);
}

TEST(GroupedGemmTest, KGroupedMatchesFP64PerExpert) {
  Operands o;
  QuantizedTensor qdy =
      quantize(o.dy.data(), 1, o.padded, o.n, FP8Format::E4M3,
               Granularity::Tile128x1, ScaleRounding::FP32);
  QuantizedTensor qx = quantize(o.x.data(), 1, o.padded, o.k, FP8Format::E4M3,
                                Granularity::Tile128x1, ScaleRounding::Pow2);
  ScaledGemmOptions options;
  options.promotionInterval = 64;
  ASSERT_EQ(checkKGroupedScaledGemm(qdy, qx, o.index.data(), kExperts,
                                    options),
            "");
  std::vector<float> dw(kExperts * o.n * o.k, NAN);
  kGroupedScaledGemm(qdy, qx, o.index.data(), kExperts, dw.data(), options);

  std::vector<float> fdy = dequantized(qdy), fx = dequantized(qx);
  std::vector<double> got, want;
  for (int64_t e = 0; e < kExperts; ++e)
    for (int64_t j = 0; j < o.n; ++j)
      for (int64_t kk = 0; kk < o.k; ++kk) {
        double s = 0;
        for (int64_t i = 0; i < o.padded; ++i)
          if (o.index[i] == e)
            s += double(fdy[i * o.n + j]) * fx[i * o.k + kk];
        float v = dw[(e * o.n + j) * o.k + kk];
        if (kSizes[e] == 0) {
          EXPECT_EQ(v, 0.0f) << "expert " << e << " has no rows";
        }
        got.push_back(v);
        want.push_back(s);
      }
  EXPECT_LT(diffMetric(got, want), 1e-12);
}

TEST(GroupedGemmTest, KGroupedRejectsTilesItCannotTake) {
  Operands o;
  ScaledGemmOptions options;
  auto check = [&](const std::vector<float> &x,
                   const std::vector<int32_t> &index) {
    QuantizedTensor q =
        quantize(x.data(), 1, o.padded, o.k, FP8Format::E4M3,
                 Granularity::Tile128x1, ScaleRounding::FP32);
    return checkKGroupedScaledGemm(q, q, index.data(), kExperts, options);
  };
  EXPECT_EQ(check(o.x, o.index), "");

  std::vector<int32_t> mixed = o.index;
  mixed[100] = 3; // a padding row of expert 0's tile given to expert 3
  std::vector<float> x = o.x;
  EXPECT_EQ(check(x, mixed), "rows 0 to 127 hold experts 0 and 3");

  x[100 * o.k] = 1.0f; // padding that is not zero
  EXPECT_EQ(check(x, o.index), "padding row 100 is not zero");

  std::vector<int32_t> split = o.index;
  for (int64_t i = 512; i < 513; ++i)
    split[i] = 0; // expert 0 again after expert 2
  EXPECT_EQ(check(o.x, split), "the rows of expert 0 are not contiguous");

  std::vector<int32_t> afterPadding = o.index;
  std::fill(afterPadding.begin() + 128, afterPadding.begin() + 428, -1);
  std::fill(afterPadding.begin() + 512, afterPadding.begin() + 513, 0);
  std::vector<float> xp = o.x;
  std::fill(xp.begin() + 128 * o.k, xp.begin() + 428 * o.k, 0.0f);
  std::fill(xp.begin() + 512 * o.k, xp.begin() + 513 * o.k, 0.0f);
  // Expert 0, a tile of padding only, then expert 0 again.
  EXPECT_EQ(check(xp, afterPadding), "the rows of expert 0 are not contiguous");

  std::vector<int32_t> beyond = o.index;
  beyond[0] = int32_t(kExperts);
  EXPECT_EQ(check(o.x, beyond), "row 0 names expert 4 of 4");
}

} // namespace

namespace {

TEST(GroupedGemmTest, MGroupedTakesOneExpertPerTile) {
  Operands o;
  QuantizedTensor qx = quantize(o.x.data(), 1, o.padded, o.k, FP8Format::E4M3,
                                Granularity::Tile1x128, ScaleRounding::FP32);
  QuantizedTensor qw = quantize(o.w.data(), kExperts, o.n, o.k,
                                FP8Format::E4M3, Granularity::Block128x128,
                                ScaleRounding::FP32);
  ScaledGemmOptions options;
  std::vector<int32_t> mixed = o.index;
  mixed[127] = 2;
  EXPECT_EQ(checkGroupedScaledGemm(qx, qw, 1, mixed.data(), options),
            "rows 0 to 127 hold experts 0 and 2");
  std::vector<int32_t> beyond = o.index;
  beyond[5] = 9;
  EXPECT_EQ(checkGroupedScaledGemm(qx, qw, 1, beyond.data(), options),
            "row 5 names expert 9 of 4");
}

} // namespace
