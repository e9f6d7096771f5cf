//===- Attention.cpp - Rotary embedding and causal attention kernels ------===//
//
// Attention works on blocks of kBlock query rows per (batch, head): a block
// only needs the keys up to its last row, which skips most of the masked
// half of q k^T and keeps the score block in cache. The backward runs in two
// passes so that every gradient element has one owner: pass 1 owns dq rows
// per (batch, query head, query block); pass 2 owns dk and dv rows per
// (batch, kv head, key block) and sums over the query heads sharing that kv
// head and over query blocks in a fixed order.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CPUKernels.h"

#include "Common.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

using namespace octet::cpu;
using namespace octet::cpu::detail;

//===----------------------------------------------------------------------===//
// Rotary
//===----------------------------------------------------------------------===//

/// cos and sin of s * theta^(-2i/dim) for s < seq, i < dim/2, in double.
template <typename T>
static void rotaryTable(int64_t seq, int64_t dim, double theta,
                        std::vector<T> &cosTable, std::vector<T> &sinTable) {
  int64_t half = dim / 2;
  cosTable.resize(seq * half);
  sinTable.resize(seq * half);
  for (int64_t i = 0; i < half; ++i) {
    double freq = std::pow(theta, -2.0 * double(i) / double(dim));
    for (int64_t s = 0; s < seq; ++s) {
      double angle = double(s) * freq;
      cosTable[s * half + i] = static_cast<T>(std::cos(angle));
      sinTable[s * half + i] = static_cast<T>(std::sin(angle));
    }
  }
}

/// Rotates every pair of x by the table's angles times `sign` (+1 forward,
/// -1 for the transpose the backward needs).
template <typename T>
static void rotate(const T *x, const RotaryShape &s, double theta, T sign,
                   T *y) {
  assert(s.dim % 2 == 0 && "rotary needs an even head dimension");
  std::vector<T> cosTable, sinTable;
  rotaryTable(s.seq, s.dim, theta, cosTable, sinTable);
  int64_t half = s.dim / 2, rowSize = s.heads * s.dim;
  parallelFor(s.batch * s.seq, rowGrain(rowSize),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  int64_t pos = row % s.seq;
                  const T *c = cosTable.data() + pos * half;
                  const T *sn = sinTable.data() + pos * half;
                  for (int64_t h = 0; h < s.heads; ++h) {
                    const T *xr = x + row * rowSize + h * s.dim;
                    T *yr = y + row * rowSize + h * s.dim;
                    for (int64_t i = 0; i < half; ++i) {
                      T a = xr[2 * i], b = xr[2 * i + 1];
                      T sv = sign * sn[i];
                      yr[2 * i] = a * c[i] - b * sv;
                      yr[2 * i + 1] = a * sv + b * c[i];
                    }
                  }
                }
              });
}

template <typename T>
void octet::cpu::rotaryForward(const T *x, const RotaryShape &shape,
                               double theta, T *y) {
  rotate(x, shape, theta, T(1), y);
}

template <typename T>
void octet::cpu::rotaryBackward(const T *dy, const RotaryShape &shape,
                                double theta, T *dx) {
  rotate(dy, shape, theta, T(-1), dx);
}

//===----------------------------------------------------------------------===//
// Causal attention
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kBlock = 64;

/// Strided views of one (batch, head) slice: rows are sequence positions.
template <typename T> struct HeadViews {
  const T *q, *k, *v;
  int64_t ldq, ldk, ldv;
};

template <typename T>
HeadViews<T> headViews(const T *q, const T *k, const T *v,
                       const AttentionShape &s, int64_t b, int64_t h) {
  int64_t kvh = h / (s.qHeads / s.kvHeads);
  return {q + (b * s.seq * s.qHeads + h) * s.qkDim,
          k + (b * s.seq * s.kvHeads + kvh) * s.qkDim,
          v + (b * s.seq * s.kvHeads + kvh) * s.vDim,
          s.qHeads * s.qkDim,
          s.kvHeads * s.qkDim,
          s.kvHeads * s.vDim};
}

/// Probabilities of query rows [i0, i0 + rows) over keys [0, keys) into
/// p [rows, keys], masked entries zero; lse[r] gets each row's log-sum-exp
/// of the scaled scores.
template <typename T>
void blockProbabilities(const HeadViews<T> &hv, const AttentionShape &s,
                        int64_t i0, int64_t rows, int64_t keys, T scale, T *p,
                        T *lse) {
  gemm<T>(Trans::No, Trans::Yes, rows, keys, s.qkDim, hv.q + i0 * hv.ldq,
          hv.ldq, hv.k, hv.ldk, p, keys, false);
  for (int64_t r = 0; r < rows; ++r) {
    T *pr = p + r * keys;
    int64_t visible = i0 + r + 1;
    T maxScore = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < visible; ++j) {
      pr[j] *= scale;
      maxScore = std::max(maxScore, pr[j]);
    }
    T sum = 0;
    for (int64_t j = 0; j < visible; ++j) {
      pr[j] = std::exp(pr[j] - maxScore);
      sum += pr[j];
    }
    for (int64_t j = 0; j < visible; ++j)
      pr[j] /= sum;
    for (int64_t j = visible; j < keys; ++j)
      pr[j] = 0;
    lse[r] = maxScore + std::log(sum);
  }
}

} // namespace

template <typename T>
void octet::cpu::causalAttentionForward(const T *q, const T *k, const T *v,
                                        const AttentionShape &s, double scale,
                                        T *out) {
  assert(s.kvHeads > 0 && s.qHeads % s.kvHeads == 0 &&
         "query heads must be a multiple of kv heads");
  int64_t blocks = (s.seq + kBlock - 1) / kBlock;
  int64_t ldo = s.qHeads * s.vDim;
  parallelFor(s.batch * s.qHeads * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> p(kBlock * s.seq), lse(kBlock);
    for (int64_t unit = begin; unit < end; ++unit) {
      int64_t blk = unit % blocks, h = unit / blocks % s.qHeads,
              b = unit / blocks / s.qHeads;
      HeadViews<T> hv = headViews(q, k, v, s, b, h);
      int64_t i0 = blk * kBlock, rows = std::min(kBlock, s.seq - i0);
      int64_t keys = i0 + rows;
      blockProbabilities(hv, s, i0, rows, keys, T(scale), p.data(), lse.data());
      T *o = out + ((b * s.seq + i0) * s.qHeads + h) * s.vDim;
      gemm<T>(Trans::No, Trans::No, rows, s.vDim, keys, p.data(), keys, hv.v,
              hv.ldv, o, ldo, false);
    }
  });
}

template <typename T>
void octet::cpu::causalAttentionBackward(const T *q, const T *k, const T *v,
                                         const T *dOut, const AttentionShape &s,
                                         double scale, T *dq, T *dk, T *dv) {
  assert(s.kvHeads > 0 && s.qHeads % s.kvHeads == 0 &&
         "query heads must be a multiple of kv heads");
  int64_t blocks = (s.seq + kBlock - 1) / kBlock;
  int64_t ldo = s.qHeads * s.vDim;
  int64_t group = s.qHeads / s.kvHeads;
  T sc = T(scale);
  // Per query row: log-sum-exp and D = sum_j P dP, [batch, qHeads, seq].
  std::vector<T> lseAll(s.batch * s.qHeads * s.seq);
  std::vector<T> deltaAll(s.batch * s.qHeads * s.seq);

  // Pass 1: per query block, P, dP = dO V^T, dS = P (dP - D) scale and
  // dq = dS K.
  parallelFor(s.batch * s.qHeads * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> p(kBlock * s.seq), dp(kBlock * s.seq);
    for (int64_t unit = begin; unit < end; ++unit) {
      int64_t blk = unit % blocks, h = unit / blocks % s.qHeads,
              b = unit / blocks / s.qHeads;
      HeadViews<T> hv = headViews(q, k, v, s, b, h);
      int64_t i0 = blk * kBlock, rows = std::min(kBlock, s.seq - i0);
      int64_t keys = i0 + rows;
      T *lse = lseAll.data() + (b * s.qHeads + h) * s.seq + i0;
      T *delta = deltaAll.data() + (b * s.qHeads + h) * s.seq + i0;
      blockProbabilities(hv, s, i0, rows, keys, sc, p.data(), lse);
      const T *go = dOut + ((b * s.seq + i0) * s.qHeads + h) * s.vDim;
      gemm<T>(Trans::No, Trans::Yes, rows, keys, s.vDim, go, ldo, hv.v, hv.ldv,
              dp.data(), keys, false);
      for (int64_t r = 0; r < rows; ++r) {
        T *pr = p.data() + r * keys, *dpr = dp.data() + r * keys;
        int64_t visible = i0 + r + 1;
        T d = 0;
        for (int64_t j = 0; j < visible; ++j)
          d += pr[j] * dpr[j];
        delta[r] = d;
        for (int64_t j = 0; j < visible; ++j)
          dpr[j] = pr[j] * (dpr[j] - d) * sc;
        for (int64_t j = visible; j < keys; ++j)
          dpr[j] = 0;
      }
      if (dq)
        gemm<T>(Trans::No, Trans::No, rows, s.qkDim, keys, dp.data(), keys,
                hv.k, hv.ldk, dq + ((b * s.seq + i0) * s.qHeads + h) * s.qkDim,
                s.qHeads * s.qkDim, false);
    }
  });
  if (!dk && !dv)
    return;

  // Pass 2: per key block, transposed probabilities P^T = exp(K Q^T scale -
  // lse) and dS^T over the later query blocks of every query head of the
  // group; dv += P^T dO and dk += dS^T Q, in a fixed order.
  int64_t ldk = s.kvHeads * s.qkDim, ldv = s.kvHeads * s.vDim;
  parallelFor(s.batch * s.kvHeads * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> pt(kBlock * kBlock), dpt(kBlock * kBlock);
    for (int64_t unit = begin; unit < end; ++unit) {
      int64_t blk = unit % blocks, kvh = unit / blocks % s.kvHeads,
              b = unit / blocks / s.kvHeads;
      int64_t j0 = blk * kBlock, cols = std::min(kBlock, s.seq - j0);
      T *dkBlock =
          dk ? dk + ((b * s.seq + j0) * s.kvHeads + kvh) * s.qkDim : nullptr;
      T *dvBlock =
          dv ? dv + ((b * s.seq + j0) * s.kvHeads + kvh) * s.vDim : nullptr;
      bool first = true;
      for (int64_t g = 0; g < group; ++g) {
        int64_t h = kvh * group + g;
        HeadViews<T> hv = headViews(q, k, v, s, b, h);
        const T *lse = lseAll.data() + (b * s.qHeads + h) * s.seq;
        const T *delta = deltaAll.data() + (b * s.qHeads + h) * s.seq;
        for (int64_t i0 = j0; i0 < s.seq; i0 += kBlock) {
          int64_t rows = std::min(kBlock, s.seq - i0);
          const T *go = dOut + ((b * s.seq + i0) * s.qHeads + h) * s.vDim;
          const T *qi = hv.q + i0 * hv.ldq;
          gemm<T>(Trans::No, Trans::Yes, cols, rows, s.qkDim,
                  hv.k + j0 * hv.ldk, hv.ldk, qi, hv.ldq, pt.data(), rows,
                  false);
          gemm<T>(Trans::No, Trans::Yes, cols, rows, s.vDim, hv.v + j0 * hv.ldv,
                  hv.ldv, go, ldo, dpt.data(), rows, false);
          for (int64_t c = 0; c < cols; ++c) {
            int64_t j = j0 + c;
            T *ptr = pt.data() + c * rows, *dptr = dpt.data() + c * rows;
            for (int64_t r = 0; r < rows; ++r) {
              int64_t i = i0 + r;
              if (j > i) {
                ptr[r] = 0;
                dptr[r] = 0;
                continue;
              }
              T pij = std::exp(ptr[r] * sc - lse[i]);
              ptr[r] = pij;
              dptr[r] = pij * (dptr[r] - delta[i]) * sc;
            }
          }
          if (dvBlock)
            gemm<T>(Trans::No, Trans::No, cols, s.vDim, rows, pt.data(), rows,
                    go, ldo, dvBlock, ldv, !first);
          if (dkBlock)
            gemm<T>(Trans::No, Trans::No, cols, s.qkDim, rows, dpt.data(), rows,
                    qi, hv.ldq, dkBlock, ldk, !first);
          first = false;
        }
      }
    }
  });
}

namespace octet::cpu {
#define OCTET_INSTANTIATE(T)                                                   \
  template void rotaryForward<T>(const T *, const RotaryShape &, double, T *); \
  template void rotaryBackward<T>(const T *, const RotaryShape &, double,      \
                                  T *);                                        \
  template void causalAttentionForward<T>(                                     \
      const T *, const T *, const T *, const AttentionShape &, double, T *);   \
  template void causalAttentionBackward<T>(const T *, const T *, const T *,    \
                                           const T *, const AttentionShape &,  \
                                           double, T *, T *, T *);
OCTET_INSTANTIATE(float)
OCTET_INSTANTIATE(double)
#undef OCTET_INSTANTIATE
} // namespace octet::cpu
