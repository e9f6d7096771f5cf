//===- ScaledGemmTest.cpp - Block-scaled GEMM reference tests -------------===//

#include "octet/Numerics/ScaledGemm.h"
#include "octet/Numerics/BFloat16.h"

#include "NumericsTestUtil.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace octet::numerics;

namespace {

using test::diffMetric;
using test::normalData;

/// FP64 product of the dequantized operands, [free(lhs), free(rhs)].
std::vector<double> reference(const QuantizedTensor &a, int ac,
                              const QuantizedTensor &b, int bc) {
  std::vector<float> da(a.rows * a.cols), db(b.rows * b.cols);
  dequantize(a, da.data());
  dequantize(b, db.data());
  int64_t m = ac == 1 ? a.rows : a.cols, n = bc == 1 ? b.rows : b.cols;
  int64_t k = ac == 1 ? a.cols : a.rows;
  std::vector<double> y(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        double x = ac == 1 ? da[i * a.cols + p] : da[p * a.cols + i];
        double w = bc == 1 ? db[j * b.cols + p] : db[p * b.cols + j];
        s += x * w;
      }
      y[i * n + j] = s;
    }
  return y;
}

QuantizedTensor quantized(int64_t rows, int64_t cols, Granularity g,
                          uint32_t seed, float mean = 0.0f,
                          ScaleRounding r = ScaleRounding::FP32) {
  std::vector<float> x = normalData(rows * cols, seed, mean);
  return quantize(x.data(), 1, rows, cols, FP8Format::E4M3, g, r);
}

TEST(ScaledGemmTest, ThreeLinearGemmsMatchFP64OfDequantizedInputs) {
  // M = 192 and N = 2112 leave partial 128-blocks (DeepSeek-V3 has N = 2112).
  const int64_t m = 192, n = 2112, k = 512;
  QuantizedTensor x = quantized(m, k, Granularity::Tile1x128, 1);
  QuantizedTensor w = quantized(n, k, Granularity::Block128x128, 2);
  // Dgrad contracts over N: a layer whose N is not a multiple of 128 is
  // padded by the lowering, so this one uses N = 2048.
  QuantizedTensor dy = quantized(m, 2048, Granularity::Tile1x128, 3);
  QuantizedTensor w2 = quantized(2048, 256, Granularity::Block128x128, 4);
  QuantizedTensor dyT = quantized(256, n, Granularity::Tile128x1, 5);
  QuantizedTensor xT = quantized(256, k, Granularity::Tile128x1, 6);
  struct Gemm {
    const char *name;
    const QuantizedTensor &a;
    int ac;
    const QuantizedTensor &b;
    int bc;
  } gemms[] = {
      {"fprop", x, 1, w, 1}, {"dgrad", dy, 1, w2, 0}, {"wgrad", dyT, 0, xT, 0}};
  for (const Gemm &g : gemms) {
    std::vector<double> ref = reference(g.a, g.ac, g.b, g.bc);
    for (int64_t promotion : {32, 64, 128}) {
      ScaledGemmOptions options;
      options.promotionInterval = promotion;
      ASSERT_EQ(checkScaledGemm(g.a, g.ac, g.b, g.bc, options), "") << g.name;
      std::vector<float> y(ref.size(), std::nanf(""));
      scaledGemm(g.a, g.ac, g.b, g.bc, y.data(), options);
      double d = diffMetric(y, ref);
      EXPECT_LT(d, 1e-6) << g.name << " promotion " << promotion;
      EXPECT_GE(d, 0.0);
    }
  }
}

TEST(ScaledGemmTest, BF16OutputIsTheRoundedFP32Output) {
  QuantizedTensor x = quantized(64, 256, Granularity::Tile1x128, 11);
  QuantizedTensor w = quantized(96, 256, Granularity::Block128x128, 12);
  ScaledGemmOptions options;
  std::vector<float> f32(64 * 96), bf16(64 * 96);
  scaledGemm(x, 1, w, 1, f32.data(), options);
  options.bf16Output = true;
  scaledGemm(x, 1, w, 1, bf16.data(), options);
  for (size_t i = 0; i < f32.size(); ++i)
    ASSERT_EQ(bf16[i], roundToBF16(f32[i]));
}

TEST(ScaledGemmTest, PromotionAppliesEachGroupsOwnScales) {
  // Two K-groups whose scales differ by 2^10: applying one scale pair to
  // both groups' sum would be off by orders of magnitude.
  std::vector<float> a(256, 1.0f), b(256, 1.0f);
  for (int i = 128; i < 256; ++i)
    a[i] = 1024.0f;
  QuantizedTensor qa = quantize(a.data(), 1, 1, 256, FP8Format::E4M3,
                                Granularity::Tile1x128, ScaleRounding::Pow2);
  QuantizedTensor qb = quantize(b.data(), 1, 1, 256, FP8Format::E4M3,
                                Granularity::Block128x128, ScaleRounding::Pow2);
  float y = 0;
  scaledGemm(qa, 1, qb, 1, &y, ScaledGemmOptions());
  EXPECT_EQ(y, 128.0f + 128.0f * 1024.0f);
}

TEST(ScaledGemmTest, RejectsWhatTheOpVerifierRejects) {
  QuantizedTensor x = quantized(4, 256, Granularity::Tile1x128, 1);
  QuantizedTensor w = quantized(8, 256, Granularity::Block128x128, 2);
  QuantizedTensor wt = quantized(256, 8, Granularity::Tile1x128, 3);
  QuantizedTensor odd = quantized(8, 200, Granularity::Block128x128, 4);
  ScaledGemmOptions options;
  EXPECT_EQ(checkScaledGemm(x, 1, w, 1, options), "");
  EXPECT_NE(checkScaledGemm(x, 1, wt, 0, options).find("grouped along"),
            std::string::npos);
  EXPECT_NE(checkScaledGemm(x, 1, odd, 1, options).find("differ"),
            std::string::npos);
  options.promotionInterval = 48;
  EXPECT_NE(checkScaledGemm(x, 1, w, 1, options).find("multiple of 32"),
            std::string::npos);
  options.promotionInterval = 256;
  EXPECT_NE(checkScaledGemm(x, 1, w, 1, options).find("must divide 128"),
            std::string::npos);
  options.promotionInterval = 0;
  EXPECT_NE(checkScaledGemm(x, 1, w, 1, options).find("must divide 128"),
            std::string::npos);
}

TEST(ScaledGemmTest, TensorCoreAccumulateTruncatesBelowTheLargestExponent) {
  // With 14 kept bits, terms below 2^(e_max - 13) vanish.
  float big = 1024.0f; // 2^10: quantum 2^-3
  float products[3] = {0.1f, 0.125f, 0.0625f};
  float r = tensorCoreAccumulate(big, products, 3, 14);
  EXPECT_EQ(r, 1024.0f + 0.125f); // 0.1 -> 0, 0.0625 -> 0
  float exact[2] = {1.5f, -0.25f};
  EXPECT_EQ(tensorCoreAccumulate(2.0f, exact, 2, 14), 3.25f);
  EXPECT_EQ(tensorCoreAccumulate(0.0f, exact, 0, 14), 0.0f);
}

/// Maximum over elements of |y - ref| / |ref|.
double maxRelativeError(const std::vector<float> &y,
                        const std::vector<double> &ref) {
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i)
    worst = std::max(worst, std::fabs(y[i] - ref[i]) / std::fabs(ref[i]));
  return worst;
}

TEST(ScaledGemmTest, PromotionFixesReducedPrecisionAccumulation) {
  // The DeepSeek-V3 report's finding (fp8-recipe.md): with K = 4096 the
  // tensor cores' reduced-precision accumulation alone errs by about 2%;
  // promoting to FP32 every 128 K-elements removes most of it. Inputs are
  // positive (as activations after SwiGLU/softmax often are), so every
  // output is far from zero and its relative error is well defined.
  const int64_t m = 32, n = 32, k = 4096;
  QuantizedTensor a = quantized(m, k, Granularity::PerTensor, 21, 2.0f);
  QuantizedTensor b = quantized(n, k, Granularity::PerTensor, 22, 2.0f);
  std::vector<double> ref = reference(a, 1, b, 1);
  auto run = [&](bool emulate, int64_t promotion) {
    ScaledGemmOptions options;
    options.emulateTensorCore = emulate;
    options.promotionInterval = promotion;
    std::vector<float> y(m * n);
    scaledGemm(a, 1, b, 1, y.data(), options);
    return maxRelativeError(y, ref);
  };
  double noPromotion = run(true, 0);
  double promoted = run(true, 128);
  double fp32 = run(false, 0);
  std::printf("[ RESULT   ] K=4096, max relative error: emulated tensor-core "
              "accumulation, no promotion %.3e; promotion every 128 %.3e "
              "(%.0fx); FP32 accumulation %.3e\n",
              noPromotion, promoted, noPromotion / promoted, fp32);
  EXPECT_GE(noPromotion, 10 * promoted);
  EXPECT_LT(promoted, 1e-3);
  EXPECT_LT(fp32, 1e-5);
}

} // namespace
