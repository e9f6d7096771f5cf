//===- FP8LinearTest.cpp - The recipe's FP8 linear ------------------------===//
//
// Two references: FP64 products of the dequantized FP8 operands (the GEMMs
// must be exact up to FP32 accumulation: diff < 1e-6), and the FP64 linear
// of the unquantized inputs (FP8 must stay close: diff < 1e-3, DeepGEMM's
// threshold).
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/FP8Linear.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/GroupedGemm.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>
#include <functional>
#include <random>
#include <vector>

using namespace octet;
using namespace octet::cpu;
using numerics::Granularity;

namespace {

std::vector<float> randomVector(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(gen);
  return v;
}

template <typename A, typename B> double diffMetric(const A &x, const B &y) {
  double xy = 0, xx = 0, yy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    xy += double(x[i]) * double(y[i]);
    xx += double(x[i]) * double(x[i]);
    yy += double(y[i]) * double(y[i]);
  }
  return 1.0 - 2.0 * xy / (xx + yy);
}

std::vector<float> dequantized(const numerics::QuantizedTensor &q) {
  std::vector<float> out(q.batch * q.rows * q.cols);
  numerics::dequantize(q, out.data());
  return out;
}

/// C[i, j] = sum_p A(i, p) B(j, p) in FP64, with strides for each operand.
std::vector<double> dot(int64_t m, int64_t n, int64_t k,
                        const std::function<double(int64_t, int64_t)> &a,
                        const std::function<double(int64_t, int64_t)> &b) {
  std::vector<double> c(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += a(i, p) * b(j, p);
      c[i * n + j] = s;
    }
  return c;
}

struct Case {
  int64_t m, n, k;
};
// 160 = 128 + 32 (kv_a_proj of examples/tiny-moe) and 200 need padding.
const Case kCases[] = {{128, 256, 256}, {200, 160, 256}, {64, 256, 200}};

TEST(FP8LinearTest, ForwardIsTheScaledGemmOfTheRecipe) {
  uint32_t seed = 1;
  for (const Case &c : kCases) {
    auto x = randomVector(c.m * c.k, seed++),
         w = randomVector(c.n * c.k, seed++);
    auto bias = randomVector(c.n, seed++);
    FP8LinearConfig config;
    FP8LinearCache cache;
    std::vector<float> y(c.m * c.n, std::nanf(""));
    llvm::cantFail(fp8LinearForward(x.data(), w.data(), bias.data(),
                                    {c.m, c.n, c.k}, config, y.data(), &cache));
    // Against the dequantized operands: the cache holds X's FP8 copy.
    std::vector<float> dx = dequantized(cache.x);
    int64_t kp = cache.x.cols;
    std::vector<float> wp(c.n * kp, 0.0f);
    for (int64_t i = 0; i < c.n; ++i)
      std::copy(w.begin() + i * c.k, w.begin() + (i + 1) * c.k,
                wp.begin() + i * kp);
    auto qw = numerics::quantize(
        wp.data(), 1, c.n, kp, numerics::FP8Format::E4M3,
        Granularity::Block128x128, numerics::ScaleRounding::FP32);
    std::vector<float> dw = dequantized(qw);
    std::vector<double> ref = dot(
        c.m, c.n, kp, [&](int64_t i, int64_t p) { return dx[i * kp + p]; },
        [&](int64_t j, int64_t p) { return dw[j * kp + p]; });
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j)
        ref[i * c.n + j] += bias[j];
    EXPECT_LT(diffMetric(y, ref), 1e-6) << c.m << "x" << c.n << "x" << c.k;
    // Against the unquantized linear: FP8 error only.
    std::vector<double> exact = dot(
        c.m, c.n, c.k, [&](int64_t i, int64_t p) { return x[i * c.k + p]; },
        [&](int64_t j, int64_t p) { return w[j * c.k + p]; });
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j)
        exact[i * c.n + j] += bias[j];
    EXPECT_LT(diffMetric(y, exact), 1e-3);
  }
}

TEST(FP8LinearTest, BackwardGemmsMatchTheirFP8OperandsAndTheTrueGradients) {
  uint32_t seed = 100;
  for (const Case &c : kCases) {
    auto x = randomVector(c.m * c.k, seed++),
         w = randomVector(c.n * c.k, seed++);
    auto dy = randomVector(c.m * c.n, seed++);
    FP8LinearConfig config;
    FP8LinearCache cache;
    std::vector<float> y(c.m * c.n);
    llvm::cantFail(fp8LinearForward(x.data(), w.data(), nullptr,
                                    {c.m, c.n, c.k}, config, y.data(), &cache));
    std::vector<float> dx(c.m * c.k, std::nanf(""));
    std::vector<float> dw0 = randomVector(c.n * c.k, seed++), dw = dw0;
    std::vector<float> db0 = randomVector(c.n, seed++), db = db0;
    llvm::cantFail(fp8LinearBackward(cache, w.data(), dy.data(),
                                     {c.m, c.n, c.k}, config, dx.data(),
                                     dw.data(), db.data()));

    // The true gradients (FP64 of the unquantized data).
    std::vector<double> dxTrue = dot(
        c.m, c.k, c.n, [&](int64_t i, int64_t p) { return dy[i * c.n + p]; },
        [&](int64_t j, int64_t p) { return w[p * c.k + j]; });
    std::vector<double> dwTrue = dot(
        c.n, c.k, c.m, [&](int64_t i, int64_t p) { return dy[p * c.n + i]; },
        [&](int64_t j, int64_t p) { return x[p * c.k + j]; });
    std::vector<float> dwDelta(dw.size());
    for (size_t i = 0; i < dw.size(); ++i)
      dwDelta[i] = dw[i] - dw0[i];
    EXPECT_LT(diffMetric(dx, dxTrue), 1e-3) << "dgrad " << c.m << "x" << c.n;
    // Wgrad quantizes both operands along the tokens: two FP8 roundings.
    EXPECT_LT(diffMetric(dwDelta, dwTrue), 2e-3)
        << "wgrad " << c.m << "x" << c.n;

    // Dgrad exactly as its FP8 operands say.
    int64_t np = (c.n + 127) / 128 * 128, kp = cache.x.cols;
    std::vector<float> dyp(c.m * np, 0.0f), wp(np * kp, 0.0f);
    for (int64_t i = 0; i < c.m; ++i)
      std::copy(dy.begin() + i * c.n, dy.begin() + (i + 1) * c.n,
                dyp.begin() + i * np);
    for (int64_t i = 0; i < c.n; ++i)
      std::copy(w.begin() + i * c.k, w.begin() + (i + 1) * c.k,
                wp.begin() + i * kp);
    auto qdy = dequantized(numerics::quantize(
        dyp.data(), 1, c.m, np, numerics::FP8Format::E4M3,
        Granularity::Tile1x128, numerics::ScaleRounding::FP32));
    auto qw = dequantized(numerics::quantize(
        wp.data(), 1, np, kp, numerics::FP8Format::E4M3,
        Granularity::Block128x128, numerics::ScaleRounding::FP32));
    std::vector<double> dxRef = dot(
        c.m, c.k, np, [&](int64_t i, int64_t p) { return qdy[i * np + p]; },
        [&](int64_t j, int64_t p) { return qw[p * kp + j]; });
    EXPECT_LT(diffMetric(dx, dxRef), 1e-6) << "dgrad operands";

    // The bias gradient accumulates the exact column sums.
    for (int64_t j = 0; j < c.n; ++j) {
      double s = 0;
      for (int64_t i = 0; i < c.m; ++i)
        s += dy[i * c.n + j];
      EXPECT_NEAR(db[j] - db0[j], s, 1e-4 * (1 + std::fabs(s)));
    }
  }
}

TEST(FP8LinearTest, Pow2InputScalesAndBF16Output) {
  const Case c{128, 128, 256};
  auto x = randomVector(c.m * c.k, 7), w = randomVector(c.n * c.k, 8);
  FP8LinearConfig config;
  config.inputRounding = numerics::ScaleRounding::Pow2;
  config.bf16Output = true;
  FP8LinearCache cache;
  std::vector<float> y(c.m * c.n);
  llvm::cantFail(fp8LinearForward(x.data(), w.data(), nullptr, {c.m, c.n, c.k},
                                  config, y.data(), &cache));
  for (float s : cache.x.scales) {
    int e;
    ASSERT_EQ(std::frexp(s, &e), 0.5f) << s;
  }
  for (float v : y)
    ASSERT_EQ(v, numerics::roundToBF16(v));
}

} // namespace

namespace {

/// What --octet-lower-fp8-linears makes of the three GEMMs of an FP8
/// octet.grouped_linear (align_groups, quantize, the grouped GEMMs,
/// unalign_groups) must compute what the executor computes for the op: the
/// FP8 linear of each expert's rows. Bit for bit, on ragged experts (one
/// empty, runs that are not multiples of 128).
TEST(FP8LinearTest, LoweredExpertGemmsEqualEachExpertsFP8Linear) {
  using namespace numerics;
  const std::vector<int64_t> sizes = {100, 0, 300, 128, 1};
  const int64_t experts = 5, rows = 529, n = 256, k = 384;
  std::vector<float> x = randomVector(rows * k, 11),
                     w = randomVector(experts * n * k, 12),
                     dy = randomVector(rows * n, 13);
  FP8LinearConfig config;
  config.inputRounding = ScaleRounding::Pow2;

  // The executor: one FP8 linear per expert.
  std::vector<float> y, dx, dw;
  test::expertFP8Linears(x, w, dy, sizes, n, k, config, y, dx, dw);

  // The lowered IR, op by op.
  int64_t padded = alignedRows(rows, experts);
  std::vector<float> xa(padded * k), dya(padded * n);
  std::vector<int32_t> index(padded);
  alignGroups(x.data(), rows, k, sizes.data(), experts, padded, xa.data(),
              index.data());
  alignGroups(dy.data(), rows, n, sizes.data(), experts, padded, dya.data(),
              index.data());
  QuantizedTensor qx = quantize(xa.data(), 1, padded, k, FP8Format::E4M3,
                                Granularity::Tile1x128, ScaleRounding::Pow2);
  QuantizedTensor qw =
      quantize(w.data(), experts, n, k, FP8Format::E4M3,
               Granularity::Block128x128, ScaleRounding::FP32);
  QuantizedTensor qdy = quantize(dya.data(), 1, padded, n, FP8Format::E4M3,
                                 Granularity::Tile1x128, ScaleRounding::FP32);
  QuantizedTensor qxt = requantizeTransposed(qx, ScaleRounding::Pow2);
  QuantizedTensor qdyt =
      quantize(dya.data(), 1, padded, n, FP8Format::E4M3,
               Granularity::Tile128x1, ScaleRounding::FP32);
  ScaledGemmOptions options;
  std::vector<float> ya(padded * n), dxa(padded * k), y2(rows * n),
      dx2(rows * k), dw2(experts * n * k);
  groupedScaledGemm(qx, qw, /*rhsContract=*/1, index.data(), ya.data(),
                    options);
  groupedScaledGemm(qdy, qw, /*rhsContract=*/0, index.data(), dxa.data(),
                    options);
  ASSERT_EQ(checkKGroupedScaledGemm(qdyt, qxt, index.data(), experts, options),
            "");
  kGroupedScaledGemm(qdyt, qxt, index.data(), experts, dw2.data(), options);
  unalignGroups(ya.data(), padded, n, sizes.data(), experts, y2.data());
  unalignGroups(dxa.data(), padded, k, sizes.data(), experts, dx2.data());

  EXPECT_TRUE(test::bitIdentical(y, y2)) << "Fprop";
  EXPECT_TRUE(test::bitIdentical(dx, dx2)) << "Dgrad";
  EXPECT_TRUE(test::bitIdentical(dw, dw2)) << "Wgrad";
  // Not vacuous: every expert with rows has a non-zero weight gradient.
  for (int64_t e = 0; e < experts; ++e)
    EXPECT_EQ(dw2[e * n * k] != 0.0f, sizes[e] > 0) << "expert " << e;
}

} // namespace
