//===- Dense.cpp - Embedding, linear, matmul, add and SwiGLU kernels ------===//

#include "octet/Runtime/CPUKernels.h"

#include "Common.h"

#include <cassert>
#include <cmath>
#include <cstring>

using namespace octet::cpu;
using namespace octet::cpu::detail;

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

template <typename T, typename Index>
void octet::cpu::embeddingForward(const T *table, const Index *ids,
                                  int64_t numIds, int64_t vocab, int64_t dim,
                                  T *out) {
  parallelFor(numIds, rowGrain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t id = static_cast<int64_t>(ids[i]);
      assert(id >= 0 && id < vocab && "embedding id out of range");
      (void)vocab;
      std::memcpy(out + i * dim, table + id * dim, sizeof(T) * dim);
    }
  });
}

template <typename T, typename Index>
void octet::cpu::embeddingBackward(const T *dOut, const Index *ids,
                                   int64_t numIds, int64_t vocab, int64_t dim,
                                   T *dTable) {
  if (!dTable)
    return;
  // Split the columns, not the tokens: a table row may receive several
  // tokens, and each column range adds them in token order on one thread.
  int64_t grain =
      std::max<int64_t>(16, kMinTaskElements / std::max<int64_t>(1, numIds));
  parallelFor(dim, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = 0; i < numIds; ++i) {
      int64_t id = static_cast<int64_t>(ids[i]);
      assert(id >= 0 && id < vocab && "embedding id out of range");
      (void)vocab;
      const T *src = dOut + i * dim;
      T *dst = dTable + id * dim;
      for (int64_t d = begin; d < end; ++d)
        dst[d] += src[d];
    }
  });
}

//===----------------------------------------------------------------------===//
// Linear
//===----------------------------------------------------------------------===//

/// Column sums of a [rows, cols] matrix added into sum, rows in order.
template <typename T>
static void accumulateColumnSums(const T *a, int64_t rows, int64_t cols,
                                 T *sum) {
  int64_t grain =
      std::max<int64_t>(16, kMinTaskElements / std::max<int64_t>(1, rows));
  parallelFor(cols, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = begin; c < end; ++c)
        sum[c] += a[r * cols + c];
  });
}

template <typename T>
void octet::cpu::linearForward(const T *x, const T *w, const T *bias,
                               const LinearShape &s, T *y) {
  gemm<T>(Trans::No, Trans::Yes, s.m, s.n, s.k, x, s.k, w, s.k, y, s.n,
          /*accumulate=*/false);
  if (!bias)
    return;
  parallelFor(s.m, rowGrain(s.n), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < s.n; ++j)
        y[i * s.n + j] += bias[j];
  });
}

template <typename T>
void octet::cpu::linearBackward(const T *x, const T *w, const T *dy,
                                const LinearShape &s, T *dx, T *dw, T *db) {
  if (dx)
    gemm<T>(Trans::No, Trans::No, s.m, s.k, s.n, dy, s.n, w, s.k, dx, s.k,
            /*accumulate=*/false);
  if (dw)
    gemm<T>(Trans::Yes, Trans::No, s.n, s.k, s.m, dy, s.n, x, s.k, dw, s.k,
            /*accumulate=*/true);
  if (db)
    accumulateColumnSums(dy, s.m, s.n, db);
}

//===----------------------------------------------------------------------===//
// Batched matmul
//===----------------------------------------------------------------------===//

template <typename T>
void octet::cpu::batchMatmulForward(const T *lhs, const T *rhs,
                                    const BatchMatmulShape &s, T *out) {
  Trans tr = s.transposeRhs ? Trans::Yes : Trans::No;
  int64_t ldr = s.transposeRhs ? s.k : s.n;
  // One batch per task; a single large batch is split inside gemm instead
  // (parallelFor does not nest).
  parallelFor(s.batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b)
      gemm<T>(Trans::No, tr, s.m, s.n, s.k, lhs + b * s.m * s.k, s.k,
              rhs + b * s.k * s.n, ldr, out + b * s.m * s.n, s.n,
              /*accumulate=*/false);
  });
}

template <typename T>
void octet::cpu::batchMatmulBackward(const T *lhs, const T *rhs, const T *dOut,
                                     const BatchMatmulShape &s, T *dLhs,
                                     T *dRhs) {
  parallelFor(s.batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T *l = lhs + b * s.m * s.k;
      const T *r = rhs + b * s.k * s.n;
      const T *g = dOut + b * s.m * s.n;
      if (dLhs) {
        // dLhs = dOut op(rhs)^T: rhs [k, n] is used transposed, [n, k] as is.
        if (s.transposeRhs)
          gemm<T>(Trans::No, Trans::No, s.m, s.k, s.n, g, s.n, r, s.k,
                  dLhs + b * s.m * s.k, s.k, false);
        else
          gemm<T>(Trans::No, Trans::Yes, s.m, s.k, s.n, g, s.n, r, s.n,
                  dLhs + b * s.m * s.k, s.k, false);
      }
      if (dRhs) {
        if (s.transposeRhs) // dRhs [n, k] = dOut^T lhs
          gemm<T>(Trans::Yes, Trans::No, s.n, s.k, s.m, g, s.n, l, s.k,
                  dRhs + b * s.k * s.n, s.k, false);
        else // dRhs [k, n] = lhs^T dOut
          gemm<T>(Trans::Yes, Trans::No, s.k, s.n, s.m, l, s.k, g, s.n,
                  dRhs + b * s.k * s.n, s.n, false);
      }
    }
  });
}

//===----------------------------------------------------------------------===//
// Grouped linear
//===----------------------------------------------------------------------===//

/// Checks the group sizes cover the rows exactly.
template <typename Index>
static void checkGroupSizes(const Index *groupSizes,
                            const GroupedLinearShape &s) {
  int64_t total = 0;
  for (int64_t e = 0; e < s.experts; ++e) {
    assert(groupSizes[e] >= 0 && "negative group size");
    total += static_cast<int64_t>(groupSizes[e]);
  }
  assert(total == s.rows && "group sizes must sum to the row count");
  (void)total;
}

template <typename T, typename Index>
void octet::cpu::groupedLinearForward(const T *x, const T *w,
                                      const Index *groupSizes,
                                      const GroupedLinearShape &s, T *y) {
  checkGroupSizes(groupSizes, s);
  // Experts in turn, each product split across threads by gemm: groups
  // differ in size, so splitting by expert would balance badly.
  int64_t row = 0;
  for (int64_t e = 0; e < s.experts; ++e) {
    int64_t rows = static_cast<int64_t>(groupSizes[e]);
    gemm<T>(Trans::No, Trans::Yes, rows, s.n, s.k, x + row * s.k, s.k,
            w + e * s.n * s.k, s.k, y + row * s.n, s.n, false);
    row += rows;
  }
}

template <typename T, typename Index>
void octet::cpu::groupedLinearBackward(const T *x, const T *w,
                                       const Index *groupSizes, const T *dy,
                                       const GroupedLinearShape &s, T *dx,
                                       T *dw) {
  checkGroupSizes(groupSizes, s);
  int64_t row = 0;
  for (int64_t e = 0; e < s.experts; ++e) {
    int64_t rows = static_cast<int64_t>(groupSizes[e]);
    if (dx)
      gemm<T>(Trans::No, Trans::No, rows, s.k, s.n, dy + row * s.n, s.n,
              w + e * s.n * s.k, s.k, dx + row * s.k, s.k, false);
    if (dw)
      gemm<T>(Trans::Yes, Trans::No, s.n, s.k, rows, dy + row * s.n, s.n,
              x + row * s.k, s.k, dw + e * s.n * s.k, s.k, true);
    row += rows;
  }
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

template <typename T>
void octet::cpu::addForward(const T *lhs, const T *rhs, int64_t n, T *out) {
  parallelElements(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = lhs[i] + rhs[i];
  });
}

template <typename T>
void octet::cpu::addBackward(const T *dOut, int64_t n, T *dLhs, T *dRhs) {
  if (dLhs)
    std::memcpy(dLhs, dOut, sizeof(T) * n);
  if (dRhs)
    std::memcpy(dRhs, dOut, sizeof(T) * n);
}

template <typename T> static T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
void octet::cpu::swigluForward(const T *gate, const T *up, int64_t n, T *out) {
  parallelElements(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  });
}

template <typename T>
void octet::cpu::swigluBackward(const T *gate, const T *up, const T *dOut,
                                int64_t n, T *dGate, T *dUp) {
  parallelElements(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T g = gate[i], s = sigmoid(g);
      // silu'(g) = s + g s (1 - s).
      if (dGate)
        dGate[i] = dOut[i] * up[i] * (s * (T(1) + g * (T(1) - s)));
      if (dUp)
        dUp[i] = dOut[i] * (g * s);
    }
  });
}

//===----------------------------------------------------------------------===//
// Instantiations
//===----------------------------------------------------------------------===//

namespace octet::cpu {
#define OCTET_INSTANTIATE_INDEXED(T, I)                                        \
  template void embeddingForward<T, I>(const T *, const I *, int64_t, int64_t, \
                                       int64_t, T *);                          \
  template void embeddingBackward<T, I>(const T *, const I *, int64_t,         \
                                        int64_t, int64_t, T *);                \
  template void groupedLinearForward<T, I>(const T *, const T *, const I *,    \
                                           const GroupedLinearShape &, T *);   \
  template void groupedLinearBackward<T, I>(                                   \
      const T *, const T *, const I *, const T *, const GroupedLinearShape &,  \
      T *, T *);
#define OCTET_INSTANTIATE(T)                                                   \
  template void linearForward<T>(const T *, const T *, const T *,              \
                                 const LinearShape &, T *);                    \
  template void linearBackward<T>(const T *, const T *, const T *,             \
                                  const LinearShape &, T *, T *, T *);         \
  template void batchMatmulForward<T>(const T *, const T *,                    \
                                      const BatchMatmulShape &, T *);          \
  template void batchMatmulBackward<T>(const T *, const T *, const T *,        \
                                       const BatchMatmulShape &, T *, T *);    \
  template void addForward<T>(const T *, const T *, int64_t, T *);             \
  template void addBackward<T>(const T *, int64_t, T *, T *);                  \
  template void swigluForward<T>(const T *, const T *, int64_t, T *);          \
  template void swigluBackward<T>(const T *, const T *, const T *, int64_t,    \
                                  T *, T *);                                   \
  OCTET_INSTANTIATE_INDEXED(T, int32_t)                                        \
  OCTET_INSTANTIATE_INDEXED(T, int64_t)
OCTET_INSTANTIATE(float)
OCTET_INSTANTIATE(double)
#undef OCTET_INSTANTIATE
#undef OCTET_INSTANTIATE_INDEXED
} // namespace octet::cpu
