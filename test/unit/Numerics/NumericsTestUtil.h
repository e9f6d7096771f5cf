//===- NumericsTestUtil.h - Helpers for the numerics tests ------*- C++ -*-===//
//
// Random inputs and the comparison metric the numerics tests share.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TEST_UNIT_NUMERICS_NUMERICSTESTUTIL_H
#define OCTET_TEST_UNIT_NUMERICS_NUMERICSTESTUTIL_H

#include <cstdint>
#include <random>
#include <vector>

namespace octet::numerics::test {

/// `n` samples of N(mean, 1), reproducible from `seed`.
inline std::vector<float> normalData(int64_t n, uint32_t seed,
                                     float mean = 0.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(mean, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(gen);
  return v;
}

/// DeepGEMM's similarity metric: 1 - 2 sum(xy) / sum(x^2 + y^2), in FP64.
template <typename A, typename B>
double diffMetric(const std::vector<A> &x, const std::vector<B> &y) {
  double xy = 0, xx = 0, yy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    xy += double(x[i]) * double(y[i]);
    xx += double(x[i]) * double(x[i]);
    yy += double(y[i]) * double(y[i]);
  }
  return 1.0 - 2.0 * xy / (xx + yy);
}

} // namespace octet::numerics::test

#endif // OCTET_TEST_UNIT_NUMERICS_NUMERICSTESTUTIL_H
