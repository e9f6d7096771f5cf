//===- Loss.cpp - Softmax cross-entropy kernels ---------------------------===//

#include "octet/Runtime/CPUKernels.h"

#include "Common.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

using namespace octet::cpu;
using namespace octet::cpu::detail;

/// log(sum(exp(row))), shifted by the row's maximum so exp cannot overflow.
template <typename T> static T logSumExp(const T *row, int64_t vocab) {
  T maxLogit = *std::max_element(row, row + vocab);
  T sum = 0;
  for (int64_t v = 0; v < vocab; ++v)
    sum += std::exp(row[v] - maxLogit);
  return maxLogit + std::log(sum);
}

template <typename Index>
static int64_t checkedLabel(const Index *labels, int64_t t, int64_t vocab) {
  int64_t label = static_cast<int64_t>(labels[t]);
  assert(label >= 0 && label < vocab && "label out of range");
  (void)vocab;
  return label;
}

template <typename T, typename Index>
T octet::cpu::crossEntropyForward(const T *logits, const Index *labels,
                                  int64_t tokens, int64_t vocab) {
  if (tokens == 0)
    return T(0);
  std::vector<T> losses(tokens);
  parallelFor(tokens, rowGrain(vocab), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const T *row = logits + t * vocab;
      losses[t] = logSumExp(row, vocab) - row[checkedLabel(labels, t, vocab)];
    }
  });
  // Summed in token order so the mean does not depend on the split.
  T sum = 0;
  for (T l : losses)
    sum += l;
  return sum / T(tokens);
}

template <typename T, typename Index>
void octet::cpu::crossEntropyBackward(const T *logits, const Index *labels,
                                      int64_t tokens, int64_t vocab, T dLoss,
                                      T *dLogits) {
  T scale = dLoss / T(tokens);
  parallelFor(tokens, rowGrain(vocab), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const T *row = logits + t * vocab;
      T *out = dLogits + t * vocab;
      T lse = logSumExp(row, vocab);
      for (int64_t v = 0; v < vocab; ++v)
        out[v] = std::exp(row[v] - lse) * scale;
      out[checkedLabel(labels, t, vocab)] -= scale;
    }
  });
}

namespace octet::cpu {
#define OCTET_INSTANTIATE(T, I)                                                \
  template T crossEntropyForward<T, I>(const T *, const I *, int64_t,          \
                                       int64_t);                               \
  template void crossEntropyBackward<T, I>(const T *, const I *, int64_t,      \
                                           int64_t, T, T *);
OCTET_INSTANTIATE(float, int32_t)
OCTET_INSTANTIATE(float, int64_t)
OCTET_INSTANTIATE(double, int32_t)
OCTET_INSTANTIATE(double, int64_t)
#undef OCTET_INSTANTIATE
} // namespace octet::cpu
