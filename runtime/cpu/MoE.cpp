//===- MoE.cpp - MoE gate, dispatch and combine kernels -------------------===//

#include "octet/Runtime/CPUKernels.h"

#include "Common.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

using namespace octet::cpu;
using namespace octet::cpu::detail;

//===----------------------------------------------------------------------===//
// Gate
//===----------------------------------------------------------------------===//

/// Guards the normalisation when every selected score underflows to zero.
static constexpr double kNormGuard = 1e-20;

/// Router scores [tokens, experts] = sigmoid or softmax of x w^T.
template <typename T>
static std::vector<T> routerScores(const T *x, const T *w,
                                   const MoEGateConfig &c) {
  std::vector<T> scores(c.tokens * c.experts);
  gemm<T>(Trans::No, Trans::Yes, c.tokens, c.experts, c.dim, x, c.dim, w, c.dim,
          scores.data(), c.experts, false);
  parallelFor(c.tokens, rowGrain(c.experts), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      T *s = scores.data() + t * c.experts;
      if (c.scoring == MoEScoring::Sigmoid) {
        for (int64_t e = 0; e < c.experts; ++e)
          s[e] = T(1) / (T(1) + std::exp(-s[e]));
        continue;
      }
      T maxLogit = *std::max_element(s, s + c.experts);
      T sum = 0;
      for (int64_t e = 0; e < c.experts; ++e) {
        s[e] = std::exp(s[e] - maxLogit);
        sum += s[e];
      }
      for (int64_t e = 0; e < c.experts; ++e)
        s[e] /= sum;
    }
  });
  return scores;
}

/// Denominator of the routing weights of one token: the sum of its selected
/// scores (plus a guard) with normalisation, else 1.
template <typename T>
static T weightDenominator(const T *scores, const int32_t *idx,
                           const MoEGateConfig &c) {
  if (!c.normTopkProb)
    return T(1);
  T sum = 0;
  for (int64_t j = 0; j < c.topK; ++j)
    sum += scores[idx[j]];
  return sum + T(kNormGuard);
}

template <typename T>
void octet::cpu::moeGateForward(const T *x, const T *w, const T *bias,
                                const MoEGateConfig &c, T *weights,
                                int32_t *indices) {
  assert(c.nGroup > 0 && c.experts % c.nGroup == 0 &&
         "experts must split into n_group groups");
  assert(c.topkGroup > 0 && c.topkGroup <= c.nGroup);
  int64_t groupSize = c.experts / c.nGroup;
  assert(c.topK > 0 && c.topK <= c.topkGroup * groupSize &&
         "eligible groups must hold at least top_k experts");
  std::vector<T> scores = routerScores(x, w, c);
  parallelFor(c.tokens, rowGrain(c.experts), [&](int64_t begin, int64_t end) {
    std::vector<T> biased(c.experts), groupScore(c.nGroup);
    std::vector<int64_t> groups(c.nGroup), candidates;
    candidates.reserve(c.experts);
    for (int64_t t = begin; t < end; ++t) {
      const T *s = scores.data() + t * c.experts;
      for (int64_t e = 0; e < c.experts; ++e)
        biased[e] = bias ? s[e] + bias[e] : s[e];
      // Rank groups by the sum of their two best biased scores (the best
      // alone for groups of one); ties go to the lower group.
      for (int64_t g = 0; g < c.nGroup; ++g) {
        T best = biased[g * groupSize], second = T(0);
        bool haveSecond = false;
        for (int64_t e = g * groupSize + 1; e < (g + 1) * groupSize; ++e) {
          T b = biased[e];
          if (b > best) {
            second = best;
            best = b;
          } else if (!haveSecond || b > second) {
            second = b;
          }
          haveSecond = true;
        }
        groupScore[g] = haveSecond ? best + second : best;
        groups[g] = g;
      }
      auto byGroupScore = [&](int64_t a, int64_t b) {
        return groupScore[a] > groupScore[b] ||
               (groupScore[a] == groupScore[b] && a < b);
      };
      std::partial_sort(groups.begin(), groups.begin() + c.topkGroup,
                        groups.end(), byGroupScore);
      // Experts of the eligible groups, then the top_k by biased score.
      candidates.clear();
      for (int64_t i = 0; i < c.topkGroup; ++i)
        for (int64_t e = groups[i] * groupSize; e < (groups[i] + 1) * groupSize;
             ++e)
          candidates.push_back(e);
      auto byScore = [&](int64_t a, int64_t b) {
        return biased[a] > biased[b] || (biased[a] == biased[b] && a < b);
      };
      std::partial_sort(candidates.begin(), candidates.begin() + c.topK,
                        candidates.end(), byScore);
      int32_t *idx = indices + t * c.topK;
      for (int64_t j = 0; j < c.topK; ++j)
        idx[j] = static_cast<int32_t>(candidates[j]);
      // Weights use the unbiased scores.
      T denom = weightDenominator(s, idx, c);
      T factor = T(c.routedScalingFactor);
      for (int64_t j = 0; j < c.topK; ++j)
        weights[t * c.topK + j] = s[idx[j]] / denom * factor;
    }
  });
}

template <typename T>
void octet::cpu::moeGateBackward(const T *x, const T *w, const int32_t *indices,
                                 const T *dWeights, const MoEGateConfig &c,
                                 T *dx, T *dw) {
  if (!dx && !dw)
    return;
  std::vector<T> scores = routerScores(x, w, c);
  // Gradient with respect to the logits x w^T, [tokens, experts].
  std::vector<T> dLogits(c.tokens * c.experts);
  parallelFor(c.tokens, rowGrain(c.experts), [&](int64_t begin, int64_t end) {
    std::vector<T> dScores(c.experts);
    for (int64_t t = begin; t < end; ++t) {
      const T *s = scores.data() + t * c.experts;
      const int32_t *idx = indices + t * c.topK;
      const T *dwt = dWeights + t * c.topK;
      T factor = T(c.routedScalingFactor);
      // weight_j = factor s_j / Z, Z = sum of the selected s (or 1).
      std::fill(dScores.begin(), dScores.end(), T(0));
      T denom = weightDenominator(s, idx, c);
      T weighted = 0; // sum_j dw_j s_j
      for (int64_t j = 0; j < c.topK; ++j)
        weighted += dwt[j] * s[idx[j]];
      for (int64_t j = 0; j < c.topK; ++j) {
        T g = dwt[j] / denom;
        if (c.normTopkProb)
          g -= weighted / (denom * denom);
        dScores[idx[j]] += g * factor;
      }
      T *dl = dLogits.data() + t * c.experts;
      if (c.scoring == MoEScoring::Sigmoid) {
        for (int64_t e = 0; e < c.experts; ++e)
          dl[e] = dScores[e] * s[e] * (T(1) - s[e]);
      } else {
        T dot = 0;
        for (int64_t e = 0; e < c.experts; ++e)
          dot += dScores[e] * s[e];
        for (int64_t e = 0; e < c.experts; ++e)
          dl[e] = s[e] * (dScores[e] - dot);
      }
    }
  });
  if (dx)
    gemm<T>(Trans::No, Trans::No, c.tokens, c.dim, c.experts, dLogits.data(),
            c.experts, w, c.dim, dx, c.dim, false);
  if (dw)
    gemm<T>(Trans::Yes, Trans::No, c.experts, c.dim, c.tokens, dLogits.data(),
            c.experts, x, c.dim, dw, c.dim, true);
}

//===----------------------------------------------------------------------===//
// Dispatch and combine
//===----------------------------------------------------------------------===//

template <typename Index>
void octet::cpu::moeRowOfCopy(const Index *indices, int64_t tokens,
                              int64_t topK, int64_t *rowOfCopy) {
  // Counting sort by expert: stable, so copies keep their (token, slot)
  // order within an expert.
  int64_t copies = tokens * topK, experts = 0;
  for (int64_t i = 0; i < copies; ++i) {
    assert(indices[i] >= 0 && "negative expert index");
    experts = std::max<int64_t>(experts, static_cast<int64_t>(indices[i]) + 1);
  }
  std::vector<int64_t> next(experts + 1, 0);
  for (int64_t i = 0; i < copies; ++i)
    ++next[static_cast<int64_t>(indices[i]) + 1];
  for (int64_t e = 0; e < experts; ++e)
    next[e + 1] += next[e];
  for (int64_t i = 0; i < copies; ++i)
    rowOfCopy[i] = next[static_cast<int64_t>(indices[i])]++;
}

template <typename T, typename Index>
void octet::cpu::moeDispatchForward(const T *x, const Index *indices,
                                    const MoERoutingShape &s,
                                    int64_t numExperts, T *rows,
                                    int32_t *groupSizes) {
  int64_t copies = s.tokens * s.topK;
  std::fill(groupSizes, groupSizes + numExperts, 0);
  for (int64_t i = 0; i < copies; ++i) {
    assert(indices[i] >= 0 && indices[i] < numExperts &&
           "expert index out of range");
    ++groupSizes[static_cast<int64_t>(indices[i])];
  }
  std::vector<int64_t> rowOf(copies);
  moeRowOfCopy(indices, s.tokens, s.topK, rowOf.data());
  parallelFor(copies, rowGrain(s.dim), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      std::memcpy(rows + rowOf[i] * s.dim, x + (i / s.topK) * s.dim,
                  sizeof(T) * s.dim);
  });
}

template <typename T, typename Index>
void octet::cpu::moeDispatchBackward(const T *dRows, const Index *indices,
                                     const MoERoutingShape &s, T *dx) {
  std::vector<int64_t> rowOf(s.tokens * s.topK);
  moeRowOfCopy(indices, s.tokens, s.topK, rowOf.data());
  parallelFor(s.tokens, rowGrain(s.dim * s.topK),
              [&](int64_t begin, int64_t end) {
                for (int64_t t = begin; t < end; ++t) {
                  T *out = dx + t * s.dim;
                  std::fill(out, out + s.dim, T(0));
                  for (int64_t j = 0; j < s.topK; ++j) {
                    const T *src = dRows + rowOf[t * s.topK + j] * s.dim;
                    for (int64_t d = 0; d < s.dim; ++d)
                      out[d] += src[d];
                  }
                }
              });
}

template <typename T, typename Index>
void octet::cpu::moeCombineForward(const T *rows, const T *weights,
                                   const Index *indices,
                                   const MoERoutingShape &s, T *out) {
  std::vector<int64_t> rowOf(s.tokens * s.topK);
  moeRowOfCopy(indices, s.tokens, s.topK, rowOf.data());
  parallelFor(s.tokens, rowGrain(s.dim * s.topK),
              [&](int64_t begin, int64_t end) {
                for (int64_t t = begin; t < end; ++t) {
                  T *o = out + t * s.dim;
                  std::fill(o, o + s.dim, T(0));
                  for (int64_t j = 0; j < s.topK; ++j) {
                    const T *src = rows + rowOf[t * s.topK + j] * s.dim;
                    T wt = weights[t * s.topK + j];
                    for (int64_t d = 0; d < s.dim; ++d)
                      o[d] += wt * src[d];
                  }
                }
              });
}

template <typename T, typename Index>
void octet::cpu::moeCombineBackward(const T *rows, const T *weights,
                                    const Index *indices, const T *dOut,
                                    const MoERoutingShape &s, T *dRows,
                                    T *dWeights) {
  std::vector<int64_t> rowOf(s.tokens * s.topK);
  moeRowOfCopy(indices, s.tokens, s.topK, rowOf.data());
  parallelFor(s.tokens, rowGrain(s.dim * s.topK),
              [&](int64_t begin, int64_t end) {
                for (int64_t t = begin; t < end; ++t) {
                  const T *g = dOut + t * s.dim;
                  for (int64_t j = 0; j < s.topK; ++j) {
                    int64_t row = rowOf[t * s.topK + j];
                    if (dRows) {
                      T wt = weights[t * s.topK + j];
                      T *dr = dRows + row * s.dim;
                      for (int64_t d = 0; d < s.dim; ++d)
                        dr[d] = wt * g[d];
                    }
                    if (dWeights) {
                      const T *r = rows + row * s.dim;
                      T dot = 0;
                      for (int64_t d = 0; d < s.dim; ++d)
                        dot += g[d] * r[d];
                      dWeights[t * s.topK + j] = dot;
                    }
                  }
                }
              });
}

namespace octet::cpu {
#define OCTET_INSTANTIATE_INDEXED(T, I)                                        \
  template void moeDispatchForward<T, I>(                                      \
      const T *, const I *, const MoERoutingShape &, int64_t, T *, int32_t *); \
  template void moeDispatchBackward<T, I>(const T *, const I *,                \
                                          const MoERoutingShape &, T *);       \
  template void moeCombineForward<T, I>(const T *, const T *, const I *,       \
                                        const MoERoutingShape &, T *);         \
  template void moeCombineBackward<T, I>(const T *, const T *, const I *,      \
                                         const T *, const MoERoutingShape &,   \
                                         T *, T *);
#define OCTET_INSTANTIATE(T)                                                   \
  template void moeGateForward<T>(const T *, const T *, const T *,             \
                                  const MoEGateConfig &, T *, int32_t *);      \
  template void moeGateBackward<T>(const T *, const T *, const int32_t *,      \
                                   const T *, const MoEGateConfig &, T *,      \
                                   T *);                                       \
  OCTET_INSTANTIATE_INDEXED(T, int32_t)                                        \
  OCTET_INSTANTIATE_INDEXED(T, int64_t)
OCTET_INSTANTIATE(float)
OCTET_INSTANTIATE(double)
template void moeRowOfCopy<int32_t>(const int32_t *, int64_t, int64_t,
                                    int64_t *);
template void moeRowOfCopy<int64_t>(const int64_t *, int64_t, int64_t,
                                    int64_t *);
#undef OCTET_INSTANTIATE
#undef OCTET_INSTANTIATE_INDEXED
} // namespace octet::cpu
