//===- NormTest.cpp - RMSNorm and rotary embedding ------------------------===//

#include "TestUtil.h"

#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;

namespace {

//===----------------------------------------------------------------------===//
// RMSNorm
//===----------------------------------------------------------------------===//

TEST(RMSNormTest, ForwardMatchesFormula) {
  const int64_t rows = 4, dim = 9;
  const double eps = 1e-6;
  auto x = randomVector(rows * dim, 1, -3, 3), gamma = randomVector(dim, 2);
  std::vector<double> y(rows * dim);
  rmsnormForward(x.data(), gamma.data(), rows, dim, eps, y.data());
  for (int64_t r = 0; r < rows; ++r) {
    double sq = 0;
    for (int64_t d = 0; d < dim; ++d)
      sq += x[r * dim + d] * x[r * dim + d];
    double rms = std::sqrt(sq / dim + eps);
    for (int64_t d = 0; d < dim; ++d)
      EXPECT_NEAR(y[r * dim + d], x[r * dim + d] / rms * gamma[d], 1e-14);
  }
}

TEST(RMSNormTest, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 5, dim = 8;
  // A large epsilon makes its contribution to the gradient visible.
  const double eps = 0.05;
  auto x = randomVector(rows * dim, 3), gamma = randomVector(dim, 4);
  auto dy = randomVector(rows * dim, 5);
  auto loss = [&] {
    std::vector<double> y(rows * dim);
    rmsnormForward(x.data(), gamma.data(), rows, dim, eps, y.data());
    return dot(dy, y);
  };
  auto prefill = randomVector(dim, 6);
  std::vector<double> dx = nanVector(x.size()), dGamma = prefill;
  rmsnormBackward(x.data(), gamma.data(), dy.data(), rows, dim, eps, dx.data(),
                  dGamma.data());
  expectGradient("x", x, loss, dx);
  expectGradient("gamma", gamma, loss, added(dGamma, prefill));
}

TEST(RMSNormTest, FloatForwardMatchesDouble) {
  const int64_t rows = 17, dim = 256;
  auto x = randomVector(rows * dim, 7, -2, 2), gamma = randomVector(dim, 8);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xt = cast<T>(x), gt = cast<T>(gamma);
    std::vector<T> y(rows * dim);
    rmsnormForward(xt.data(), gt.data(), rows, dim, 1e-6, y.data());
    return cast<double>(y);
  };
  expectFloatMatchesDouble("rmsnorm", run(float()), run(double()));
}

//===----------------------------------------------------------------------===//
// Rotary
//===----------------------------------------------------------------------===//

TEST(RotaryTest, PositionZeroIsIdentityAndNormsArePreserved) {
  RotaryShape s{2, 5, 3, 8};
  const double theta = 10000.0;
  auto x = randomVector(s.batch * s.seq * s.heads * s.dim, 10);
  std::vector<double> y(x.size());
  rotaryForward(x.data(), s, theta, y.data());
  int64_t rowSize = s.heads * s.dim;
  for (int64_t b = 0; b < s.batch; ++b) {
    // Position 0: cos 0 = 1, sin 0 = 0, so exactly the input.
    for (int64_t i = 0; i < rowSize; ++i)
      EXPECT_EQ(y[b * s.seq * rowSize + i], x[b * s.seq * rowSize + i]);
    // Every pair keeps its length at every position.
    for (int64_t pos = 0; pos < s.seq; ++pos)
      for (int64_t i = 0; i < rowSize; i += 2) {
        int64_t at = (b * s.seq + pos) * rowSize + i;
        EXPECT_NEAR(std::hypot(y[at], y[at + 1]), std::hypot(x[at], x[at + 1]),
                    1e-15);
      }
  }
}

TEST(RotaryTest, AnglesFollowPositionAndPairIndex) {
  // One head of dim 4 at position 3 of the second sequence: pair i turns by
  // 3 * theta^(-2i/4), i.e. 3 and 3/100 radians for theta = 10^4.
  RotaryShape s{2, 4, 1, 4};
  std::vector<double> x(s.batch * s.seq * s.dim);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = i % 2 == 0 ? 1.0 : 0.5;
  std::vector<double> y(x.size());
  rotaryForward(x.data(), s, 10000.0, y.data());
  const double *row = y.data() + (1 * s.seq + 3) * s.dim;
  for (int i = 0; i < 2; ++i) {
    double angle = i == 0 ? 3.0 : 0.03;
    EXPECT_NEAR(row[2 * i], std::cos(angle) - 0.5 * std::sin(angle), 1e-15);
    EXPECT_NEAR(row[2 * i + 1], std::sin(angle) + 0.5 * std::cos(angle), 1e-15);
  }
}

TEST(RotaryTest, BackwardAndFloat) {
  RotaryShape s{2, 6, 2, 6};
  const double theta = 500.0;
  auto x = randomVector(s.batch * s.seq * s.heads * s.dim, 11);
  auto dy = randomVector(x.size(), 12);
  auto loss = [&] {
    std::vector<double> y(x.size());
    rotaryForward(x.data(), s, theta, y.data());
    return dot(dy, y);
  };
  std::vector<double> dx = nanVector(x.size());
  rotaryBackward(dy.data(), s, theta, dx.data());
  expectGradient("x", x, loss, dx);

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xt = cast<T>(x);
    std::vector<T> y(x.size());
    rotaryForward(xt.data(), s, theta, y.data());
    return cast<double>(y);
  };
  expectFloatMatchesDouble("rotary", run(float()), run(double()));
}

} // namespace
