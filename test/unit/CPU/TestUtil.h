//===- TestUtil.h - Helpers for the CPU kernel tests ------------*- C++ -*-===//
//
// Random inputs, the comparison metrics and the finite-difference check the
// kernel tests share.
//
// Gradient check: the loss is the random projection L = sum(dY * Y), so
// backward(dY) must return dL/dinput. Each input element is moved by
// +-kStep and the central difference (L(x+h) - L(x-h)) / 2h is compared with
// the kernel's gradient, all in FP64. With h = 1e-5 and inputs of order 1,
// the truncation error is O(h^2 |L'''|) ~ 1e-10 and the rounding error
// O(eps |L| / h) ~ 1e-11 |L|: a correct gradient agrees to about 1e-10 of the
// largest gradient (the worst seen in these tests is 2.4e-10), a wrong one
// (a missing term, a wrong index) is off by O(1). We require every element
// within 1e-8 * (max |g| + 1), and DeepGEMM's metric diff = 1 - 2 sum(xy) /
// sum(x^2 + y^2) < 1e-12 (an L2 relative error below 1.4e-6; the metric
// cannot resolve much less, it bottoms out at double rounding, ~1e-16).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TEST_UNIT_CPU_TESTUTIL_H
#define OCTET_TEST_UNIT_CPU_TESTUTIL_H

#include "octet/Numerics/Parallel.h"
#include "octet/Runtime/FP8Linear.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace octet::cpu::test {

constexpr double kStep = 1e-5;
constexpr double kGradDiffTolerance = 1e-12;
constexpr double kGradMaxTolerance = 1e-8;

/// Uniform values in [lo, hi) that are exactly representable in float, so
/// float and double kernels see the same inputs. Never zero.
inline std::vector<double> randomVector(size_t n, uint32_t seed,
                                        double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double &x : v) {
    do
      x = static_cast<double>(static_cast<float>(dist(gen)));
    while (x == 0.0);
  }
  return v;
}

template <typename T, typename U> std::vector<T> cast(const std::vector<U> &v) {
  return std::vector<T>(v.begin(), v.end());
}

inline std::vector<double> nanVector(size_t n) {
  return std::vector<double>(n, std::numeric_limits<double>::quiet_NaN());
}

inline double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

/// DeepGEMM's metric: 1 - 2 sum(xy) / sum(x^2 + y^2); 0 when equal.
inline double diffMetric(const std::vector<double> &x,
                         const std::vector<double> &y) {
  double xy = 0, sq = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    xy += x[i] * y[i];
    sq += x[i] * x[i] + y[i] * y[i];
  }
  return sq == 0 ? 0 : 1 - 2 * xy / sq;
}

inline double maxAbs(const std::vector<double> &v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, std::fabs(x));
  return m;
}

inline double maxAbsDiff(const std::vector<double> &a,
                         const std::vector<double> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

/// Checks `analytic` = dL/dinput by central differences of `loss`, which
/// reads `input` (moved in place and restored).
inline void expectGradient(const std::string &name, std::vector<double> &input,
                           const std::function<double()> &loss,
                           const std::vector<double> &analytic) {
  ASSERT_EQ(input.size(), analytic.size()) << name;
  std::vector<double> numeric(input.size());
  for (size_t i = 0; i < input.size(); ++i) {
    double x0 = input[i];
    input[i] = x0 + kStep;
    double up = loss();
    input[i] = x0 - kStep;
    double down = loss();
    input[i] = x0;
    numeric[i] = (up - down) / (2 * kStep);
  }
  for (double g : analytic)
    ASSERT_TRUE(std::isfinite(g)) << name << ": gradient not written";
  double diff = diffMetric(analytic, numeric);
  double worst = maxAbsDiff(analytic, numeric);
  double bound = kGradMaxTolerance * (maxAbs(numeric) + 1);
  EXPECT_LT(std::fabs(diff), kGradDiffTolerance) << name;
  EXPECT_LE(worst, bound) << name << ": max |analytic - numeric| = " << worst;
  EXPECT_GT(maxAbs(numeric), 0) << name << ": the check saw no gradient";
}

/// A parameter gradient must accumulate: backward ran on a buffer pre-filled
/// with `prefill`; returns what it added.
inline std::vector<double> added(const std::vector<double> &grad,
                                 const std::vector<double> &prefill) {
  std::vector<double> out(grad.size());
  for (size_t i = 0; i < grad.size(); ++i)
    out[i] = grad[i] - prefill[i];
  return out;
}

/// Float and double forward results agree: max |f - d| <= tol * max(max|d|,
/// 1). The kernels accumulate in T, so tol covers FP32 rounding (ulp 1.2e-7)
/// over the reduction lengths of the tests (at most a few hundred terms); the
/// worst seen is 3.4e-7 (linear, K = 130).
constexpr double kFloatTolerance = 2e-6;

inline void expectFloatMatchesDouble(const std::string &name,
                                     const std::vector<double> &fromFloat,
                                     const std::vector<double> &fromDouble,
                                     double tol = kFloatTolerance) {
  ASSERT_EQ(fromFloat.size(), fromDouble.size()) << name;
  double scale = std::max(maxAbs(fromDouble), 1.0);
  EXPECT_LE(maxAbsDiff(fromFloat, fromDouble), tol * scale) << name;
}

/// Bit-identical vectors (thread-count independence).
template <typename T>
bool bitIdentical(const std::vector<T> &a, const std::vector<T> &b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// The FP8 linear of each expert's rows, as the executor computes an FP8
/// octet.grouped_linear and its gradients: x [rows, k] and dy [rows, n]
/// with rows sorted by expert (`sizes`), w [experts, n, k]. Fills y, dx and
/// dw (experts without rows get a zero weight gradient).
template <typename Size>
void expertFP8Linears(const std::vector<float> &x, const std::vector<float> &w,
                      const std::vector<float> &dy,
                      const std::vector<Size> &sizes, int64_t n, int64_t k,
                      const FP8LinearConfig &config, std::vector<float> &y,
                      std::vector<float> &dx, std::vector<float> &dw) {
  int64_t experts = int64_t(sizes.size()), rows = int64_t(x.size()) / k;
  y.assign(rows * n, 0.0f);
  dx.assign(rows * k, 0.0f);
  dw.assign(experts * n * k, 0.0f);
  int64_t row = 0;
  for (int64_t e = 0; e < experts; row += sizes[e], ++e) {
    if (sizes[e] == 0)
      continue;
    LinearShape s{int64_t(sizes[e]), n, k};
    FP8LinearCache cache;
    llvm::cantFail(fp8LinearForward(x.data() + row * k, w.data() + e * n * k,
                                    nullptr, s, config, y.data() + row * n,
                                    &cache));
    llvm::cantFail(fp8LinearBackward(
        cache, w.data() + e * n * k, dy.data() + row * n, s, config,
        dx.data() + row * k, dw.data() + e * n * k, nullptr));
  }
}

/// Runs `body` with the pool at `threads` threads, restoring the size after.
class ScopedThreads {
public:
  explicit ScopedThreads(int threads) : saved(numerics::getNumThreads()) {
    numerics::setNumThreads(threads);
  }
  ~ScopedThreads() { numerics::setNumThreads(saved); }

private:
  int saved;
};

} // namespace octet::cpu::test

#endif // OCTET_TEST_UNIT_CPU_TESTUTIL_H
