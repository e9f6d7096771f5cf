//===- Norm.cpp - RMSNorm kernels -----------------------------------------===//

#include "octet/Runtime/CPUKernels.h"

#include "Common.h"

#include <cmath>
#include <vector>

using namespace octet::cpu;
using namespace octet::cpu::detail;

/// 1 / sqrt(mean(x^2) + epsilon) of one row, summed in order.
template <typename T>
static T inverseRms(const T *x, int64_t dim, double epsilon) {
  T sumSq = 0;
  for (int64_t d = 0; d < dim; ++d)
    sumSq += x[d] * x[d];
  return T(1) / std::sqrt(sumSq / T(dim) + T(epsilon));
}

template <typename T>
void octet::cpu::rmsnormForward(const T *x, const T *gamma, int64_t rows,
                                int64_t dim, double epsilon, T *y) {
  parallelFor(rows, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T *xr = x + r * dim;
      T *yr = y + r * dim;
      T inv = inverseRms(xr, dim, epsilon);
      for (int64_t d = 0; d < dim; ++d)
        yr[d] = xr[d] * inv * gamma[d];
    }
  });
}

template <typename T>
void octet::cpu::rmsnormBackward(const T *x, const T *gamma, const T *dy,
                                 int64_t rows, int64_t dim, double epsilon,
                                 T *dx, T *dGamma) {
  // With r = 1/rms(x): dx = r gamma dy - x r^3/dim sum(dy gamma x).
  std::vector<T> inv(rows);
  parallelFor(rows, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T *xr = x + r * dim;
      const T *gr = dy + r * dim;
      T rr = inverseRms(xr, dim, epsilon);
      inv[r] = rr;
      if (!dx)
        continue;
      T dot = 0;
      for (int64_t d = 0; d < dim; ++d)
        dot += gr[d] * gamma[d] * xr[d];
      T coef = rr * rr * rr * dot / T(dim);
      T *dxr = dx + r * dim;
      for (int64_t d = 0; d < dim; ++d)
        dxr[d] = rr * gamma[d] * gr[d] - xr[d] * coef;
    }
  });
  if (!dGamma)
    return;
  // dGamma sums over rows: split the columns so each is summed in row order
  // by one thread.
  int64_t grain =
      std::max<int64_t>(16, kMinTaskElements / std::max<int64_t>(1, rows));
  parallelFor(dim, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = x + r * dim;
      const T *gr = dy + r * dim;
      for (int64_t d = begin; d < end; ++d)
        dGamma[d] += gr[d] * xr[d] * inv[r];
    }
  });
}

namespace octet::cpu {
#define OCTET_INSTANTIATE(T)                                                   \
  template void rmsnormForward<T>(const T *, const T *, int64_t, int64_t,      \
                                  double, T *);                                \
  template void rmsnormBackward<T>(const T *, const T *, const T *, int64_t,   \
                                   int64_t, double, T *, T *);
OCTET_INSTANTIATE(float)
OCTET_INSTANTIATE(double)
#undef OCTET_INSTANTIATE
} // namespace octet::cpu
