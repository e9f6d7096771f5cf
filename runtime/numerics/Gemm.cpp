//===- Gemm.cpp - Deterministic cache-blocked CPU matrix product ----------===//
//
// Goto-style blocking: B is packed per (KC x NC) panel into NR-wide strips,
// A per (MC x KC) block into MR-tall strips, and a register-blocked micro-
// kernel updates an MR x NR tile of C. K blocks are visited in increasing
// order and each micro-kernel walks its K block in order, so every C element
// sees exactly the additions of the naive loop, in the same order. The
// library is compiled with -ffp-contract=off so no multiply-add is fused.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/Gemm.h"
#include "octet/Numerics/Parallel.h"

#include <algorithm>
#include <cstring>
#include <vector>

using namespace octet::numerics;

namespace {

template <typename T> struct Tile;
// MR x NR accumulators fill most of the 16 (AVX2) or 32 (AVX-512) vector
// registers.
template <> struct Tile<float> { static constexpr int MR = 6, NR = 16; };
template <> struct Tile<double> { static constexpr int MR = 6, NR = 8; };

constexpr int64_t kKC = 256;  // K block: an A strip and a B strip stay in L1.
constexpr int64_t kMC = 96;   // M block: the packed A block stays in L2.
constexpr int64_t kNC = 1024; // N block: the packed B panel stays in L2/L3.

template <typename T, int MR, int NR>
inline void microKernelImpl(int64_t kc, const T *ap, const T *bp, T *acc) {
  T c[MR * NR];
  std::memcpy(c, acc, sizeof(c));
  for (int64_t p = 0; p < kc; ++p) {
    const T *a = ap + p * MR;
    const T *b = bp + p * NR;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j)
        c[i * NR + j] += a[i] * b[j];
  }
  std::memcpy(acc, c, sizeof(c));
}

// One clone per instruction set, chosen when the library loads. None of
// them has FMA enabled: the rounding is the same on every machine.
__attribute__((target_clones("avx512f", "avx2", "default"))) void
microKernel(int64_t kc, const float *ap, const float *bp, float *acc) {
  microKernelImpl<float, Tile<float>::MR, Tile<float>::NR>(kc, ap, bp, acc);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void
microKernel(int64_t kc, const double *ap, const double *bp, double *acc) {
  microKernelImpl<double, Tile<double>::MR, Tile<double>::NR>(kc, ap, bp, acc);
}

template <typename T> struct Operand {
  const T *data;
  int64_t ld;
  bool trans;
  /// Element (row, col) of op(X).
  T at(int64_t row, int64_t col) const {
    return trans ? data[col * ld + row] : data[row * ld + col];
  }
};

/// C[m0:m1, n0:n1] for one thread, blocked.
template <typename T>
void gemmBlock(Operand<T> a, Operand<T> b, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, int64_t k, T *c, int64_t ldc, bool accumulate) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  thread_local std::vector<T> packedA, packedB;
  packedA.resize(kMC * kKC + MR * kKC);
  packedB.resize(kKC * kNC + NR * kKC);

  for (int64_t jc = n0; jc < n1; jc += kNC) {
    int64_t nc = std::min(kNC, n1 - jc);
    int64_t nStrips = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < k; pc += kKC) {
      int64_t kc = std::min(kKC, k - pc);
      bool first = pc == 0 && !accumulate;
      // Pack B[pc:pc+kc, jc:jc+nc] as NR-wide strips, zero-padded.
      for (int64_t s = 0; s < nStrips; ++s) {
        T *dst = packedB.data() + s * kc * NR;
        for (int64_t p = 0; p < kc; ++p)
          for (int j = 0; j < NR; ++j) {
            int64_t col = jc + s * NR + j;
            dst[p * NR + j] = col < jc + nc ? b.at(pc + p, col) : T(0);
          }
      }
      for (int64_t ic = m0; ic < m1; ic += kMC) {
        int64_t mc = std::min(kMC, m1 - ic);
        int64_t mStrips = (mc + MR - 1) / MR;
        for (int64_t s = 0; s < mStrips; ++s) {
          T *dst = packedA.data() + s * kc * MR;
          for (int64_t p = 0; p < kc; ++p)
            for (int i = 0; i < MR; ++i) {
              int64_t row = ic + s * MR + i;
              dst[p * MR + i] = row < ic + mc ? a.at(row, pc + p) : T(0);
            }
        }
        for (int64_t si = 0; si < mStrips; ++si) {
          for (int64_t sj = 0; sj < nStrips; ++sj) {
            int64_t row0 = ic + si * MR, col0 = jc + sj * NR;
            int rows = static_cast<int>(std::min<int64_t>(MR, ic + mc - row0));
            int cols = static_cast<int>(std::min<int64_t>(NR, jc + nc - col0));
            T acc[MR * NR];
            for (int i = 0; i < MR; ++i)
              for (int j = 0; j < NR; ++j)
                acc[i * NR + j] = (!first && i < rows && j < cols)
                                      ? c[(row0 + i) * ldc + col0 + j]
                                      : T(0);
            microKernel(kc, packedA.data() + si * kc * MR,
                        packedB.data() + sj * kc * NR, acc);
            for (int i = 0; i < rows; ++i)
              for (int j = 0; j < cols; ++j)
                c[(row0 + i) * ldc + col0 + j] = acc[i * NR + j];
          }
        }
      }
    }
  }
}

} // namespace

template <typename T>
void octet::numerics::gemm(Trans transA, Trans transB, int64_t m, int64_t n,
                           int64_t k, const T *a, int64_t lda, const T *b,
                           int64_t ldb, T *c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0)
    return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i)
        std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  Operand<T> opA{a, lda, transA == Trans::Yes};
  Operand<T> opB{b, ldb, transB == Trans::Yes};
  // Split the larger of M and N across threads; each thread owns its C
  // elements, so the split cannot change any result.
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  double work = double(m) * double(n) * double(k);
  int64_t minWork = 1 << 18;
  if (m >= n) {
    int64_t strips = (m + MR - 1) / MR;
    int64_t grain = std::max<int64_t>(1, minWork / (MR * n * k + 1));
    parallelFor(work < minWork ? 1 : strips, grain,
                [&](int64_t s0, int64_t s1) {
                  int64_t m0 = work < minWork ? 0 : s0 * MR;
                  int64_t m1 = work < minWork ? m : std::min(m, s1 * MR);
                  gemmBlock(opA, opB, m0, m1, 0, n, k, c, ldc, accumulate);
                });
  } else {
    int64_t strips = (n + NR - 1) / NR;
    int64_t grain = std::max<int64_t>(1, minWork / (NR * m * k + 1));
    parallelFor(work < minWork ? 1 : strips, grain,
                [&](int64_t s0, int64_t s1) {
                  int64_t n0 = work < minWork ? 0 : s0 * NR;
                  int64_t n1 = work < minWork ? n : std::min(n, s1 * NR);
                  gemmBlock(opA, opB, 0, m, n0, n1, k, c, ldc, accumulate);
                });
  }
}

template <typename T>
void octet::numerics::gemmNaive(Trans transA, Trans transB, int64_t m,
                                int64_t n, int64_t k, const T *a, int64_t lda,
                                const T *b, int64_t ldb, T *c, int64_t ldc,
                                bool accumulate) {
  Operand<T> opA{a, lda, transA == Trans::Yes};
  Operand<T> opB{b, ldb, transB == Trans::Yes};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T sum = accumulate ? c[i * ldc + j] : T(0);
      for (int64_t p = 0; p < k; ++p)
        sum += opA.at(i, p) * opB.at(p, j);
      c[i * ldc + j] = sum;
    }
}

namespace octet::numerics {
template void gemm<float>(Trans, Trans, int64_t, int64_t, int64_t,
                          const float *, int64_t, const float *, int64_t,
                          float *, int64_t, bool);
template void gemm<double>(Trans, Trans, int64_t, int64_t, int64_t,
                           const double *, int64_t, const double *, int64_t,
                           double *, int64_t, bool);
template void gemmNaive<float>(Trans, Trans, int64_t, int64_t, int64_t,
                               const float *, int64_t, const float *, int64_t,
                               float *, int64_t, bool);
template void gemmNaive<double>(Trans, Trans, int64_t, int64_t, int64_t,
                                const double *, int64_t, const double *,
                                int64_t, double *, int64_t, bool);
} // namespace octet::numerics
