//===- AdamWTest.cpp - AdamW with BF16 moments, gradient accumulation -----===//

#include "TestUtil.h"

#include "octet/Numerics/BFloat16.h"
#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;
using octet::numerics::bf16ToFloat;
using octet::numerics::floatToBF16;

namespace {

std::vector<float> randomFloats(size_t n, uint32_t seed, double lo = -1,
                                double hi = 1) {
  return cast<float>(randomVector(n, seed, lo, hi));
}

/// Gradients spanning four decades of magnitude.
std::vector<float> randomGradient(size_t n, uint32_t seed) {
  std::vector<float> g = randomFloats(n, seed);
  std::vector<double> exponent = randomVector(n, seed + 1000, -3, 1);
  for (size_t i = 0; i < n; ++i)
    g[i] *= static_cast<float>(std::pow(10.0, exponent[i]));
  return g;
}

TEST(AdamWTest, FirstStepMovesEachWeightByTheLearningRate) {
  // Step 1 with no decay: bias correction makes m^ = g and v^ = g^2, so the
  // update is lr * g / (|g| + eps), lr * sign(g) up to eps / |g|. Checked to
  // two FP32 ulps of the weight.
  const int64_t n = 1000;
  AdamWConfig c;
  c.lr = 0.01f;
  c.weightDecay = 0;
  auto p = randomFloats(n, 1), g = randomGradient(n, 2), p0 = p;
  std::vector<uint16_t> m(n, 0), v(n, 0);
  adamwStep(p.data(), g.data(), m.data(), v.data(), n, 1, c);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(p[i],
                p0[i] - double(c.lr) * g[i] / (std::fabs(g[i]) + double(c.eps)),
                2.5e-7 * std::max(1.0, double(std::fabs(p0[i]))))
        << i;
}

TEST(AdamWTest, WeightDecayIsDecoupled) {
  // With a zero gradient only the decay acts: p * (1 - lr * wd), exactly.
  const int64_t n = 100;
  AdamWConfig c;
  c.lr = 0.01f;
  c.weightDecay = 0.1f;
  auto p = randomFloats(n, 3), p0 = p;
  std::vector<float> g(n, 0.0f);
  std::vector<uint16_t> m(n, 0), v(n, 0);
  adamwStep(p.data(), g.data(), m.data(), v.data(), n, 1, c);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(p[i], p0[i] * (1.0f - c.lr * c.weightDecay));
}

TEST(AdamWTest, MatchesDoubleReferenceWithBF16Moments) {
  // Five steps. Each step starts the FP32 kernel and a double reference from
  // the same state (weights, BF16 moments); the reference rounds its moments
  // to BF16 as the kernel does. Tolerances:
  // - weights within 2.5e-7 * max(1, |p|): two FP32 ulps at 1; the update
  //   itself (lr * O(1)) is computed to ~1e-7 relative in FP32;
  // - moments bit-identical to the reference except where the exact moment
  //   lies within FP32 rounding of a BF16 rounding boundary, where one BF16
  //   ulp is allowed; we require that to be rare (< 0.1% of elements).
  const int64_t n = 4096;
  AdamWConfig c;
  c.lr = 0.01f;
  c.beta1 = 0.9f;
  c.beta2 = 0.95f;
  c.eps = 1e-8f;
  c.weightDecay = 0.1f;
  auto p = randomFloats(n, 10, -2, 2);
  std::vector<uint16_t> m(n, 0), v(n, 0);
  int64_t oneUlpMoments = 0;
  for (int64_t step = 1; step <= 5; ++step) {
    auto g = randomGradient(n, 20 + step);
    std::vector<float> pk = p;
    std::vector<uint16_t> mk = m, vk = v;
    adamwStep(pk.data(), g.data(), mk.data(), vk.data(), n, step, c);
    double b1 = c.beta1, b2 = c.beta2, lr = c.lr, eps = c.eps,
           wd = c.weightDecay;
    for (int64_t i = 0; i < n; ++i) {
      double gi = g[i];
      double mi = b1 * bf16ToFloat(m[i]) + (1 - b1) * gi;
      double vi = b2 * bf16ToFloat(v[i]) + (1 - b2) * gi * gi;
      double mHat = mi / (1 - std::pow(b1, step));
      double vHat = vi / (1 - std::pow(b2, step));
      double pRef = p[i] * (1 - lr * wd) - lr * mHat / (std::sqrt(vHat) + eps);
      EXPECT_NEAR(pk[i], pRef, 2.5e-7 * std::max(1.0, std::fabs(pRef)))
          << "step " << step << " element " << i;
      uint16_t mRef = floatToBF16(static_cast<float>(mi));
      uint16_t vRef = floatToBF16(static_cast<float>(vi));
      EXPECT_LE(std::abs(int(mk[i]) - int(mRef)), 1) << i;
      EXPECT_LE(std::abs(int(vk[i]) - int(vRef)), 1) << i;
      oneUlpMoments += (mk[i] != mRef) + (vk[i] != vRef);
    }
    p = pk;
    m = mk;
    v = vk;
  }
  EXPECT_LE(oneUlpMoments, 2 * 5 * n / 1000);
}

TEST(AdamWTest, GradientAccumulationInFP32) {
  const int64_t n = 300;
  auto a = randomFloats(n, 30), b = randomFloats(n, 31);
  std::vector<uint16_t> c(n);
  for (int64_t i = 0; i < n; ++i)
    c[i] = floatToBF16(static_cast<float>(i) * 0.37f - 50.0f);
  std::vector<float> acc(n, 123.0f);
  zeroGradient(acc.data(), n);
  for (float x : acc)
    ASSERT_EQ(x, 0.0f);
  accumulateGradient(acc.data(), a.data(), n);
  accumulateGradient(acc.data(), b.data(), n);
  accumulateGradientBF16(acc.data(), c.data(), n);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(acc[i], (a[i] + b[i]) + bf16ToFloat(c[i]));
}

} // namespace
