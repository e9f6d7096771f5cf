//===- Gemm.h - Deterministic cache-blocked CPU matrix product --*- C++ -*-===//
//
// The FP32/FP64 matrix product every CPU kernel builds on. Each output element
// is accumulated in increasing k order, starting from zero or from C's value,
// without fused multiply-adds: the result is bit-identical to the naive triple
// loop whatever the thread count, blocking or vector width, so the CPU
// backend is reproducible across machines.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_GEMM_H
#define OCTET_NUMERICS_GEMM_H

#include <cstdint>

namespace octet::numerics {

/// Layout of a matrix operand.
enum class Trans : bool { No = false, Yes = true };

/// C[M,N] = (accumulate ? C : 0) + op(A)[M,K] * op(B)[K,N], all row-major.
/// op(A) is A (M x K, leading dimension lda) or, with Trans::Yes, the
/// transpose of A stored K x M; likewise op(B) is B (K x N) or B^T with B
/// stored N x K. T is float or double.
template <typename T>
void gemm(Trans transA, Trans transB, int64_t m, int64_t n, int64_t k,
          const T *a, int64_t lda, const T *b, int64_t ldb, T *c, int64_t ldc,
          bool accumulate);

/// The same product computed by the naive triple loop: the reference the
/// blocked version must match bit for bit.
template <typename T>
void gemmNaive(Trans transA, Trans transB, int64_t m, int64_t n, int64_t k,
               const T *a, int64_t lda, const T *b, int64_t ldb, T *c,
               int64_t ldc, bool accumulate);

} // namespace octet::numerics

#endif // OCTET_NUMERICS_GEMM_H
