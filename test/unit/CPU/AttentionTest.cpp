//===- AttentionTest.cpp - Causal attention -------------------------------===//

#include "TestUtil.h"

#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;

namespace {

struct AttentionInputs {
  AttentionShape s;
  std::vector<double> q, k, v;
};

AttentionInputs makeInputs(AttentionShape s, uint32_t seed) {
  // Scores of order 1 so the softmax is neither flat nor one-hot.
  return {
      s, randomVector(s.batch * s.seq * s.qHeads * s.qkDim, seed, -1.5, 1.5),
      randomVector(s.batch * s.seq * s.kvHeads * s.qkDim, seed + 1, -1.5, 1.5),
      randomVector(s.batch * s.seq * s.kvHeads * s.vDim, seed + 2)};
}

size_t outSize(const AttentionShape &s) {
  return s.batch * s.seq * s.qHeads * s.vDim;
}

/// Attention written out with loops, in double.
std::vector<double> naiveAttention(const AttentionInputs &in, double scale) {
  const AttentionShape &s = in.s;
  std::vector<double> out(outSize(s));
  int64_t group = s.qHeads / s.kvHeads;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.qHeads; ++h)
      for (int64_t i = 0; i < s.seq; ++i) {
        int64_t kvh = h / group;
        std::vector<double> p(i + 1);
        double maxScore = -1e300, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dotQK = 0;
          for (int64_t d = 0; d < s.qkDim; ++d)
            dotQK += in.q[((b * s.seq + i) * s.qHeads + h) * s.qkDim + d] *
                     in.k[((b * s.seq + j) * s.kvHeads + kvh) * s.qkDim + d];
          p[j] = dotQK * scale;
          maxScore = std::max(maxScore, p[j]);
        }
        for (double &x : p) {
          x = std::exp(x - maxScore);
          sum += x;
        }
        for (int64_t d = 0; d < s.vDim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j)
            acc += p[j] / sum *
                   in.v[((b * s.seq + j) * s.kvHeads + kvh) * s.vDim + d];
          out[((b * s.seq + i) * s.qHeads + h) * s.vDim + d] = acc;
        }
      }
  return out;
}

std::vector<double> forward(const AttentionInputs &in, double scale) {
  std::vector<double> out(outSize(in.s));
  causalAttentionForward(in.q.data(), in.k.data(), in.v.data(), in.s, scale,
                         out.data());
  return out;
}

TEST(CausalAttentionTest, ForwardMatchesNaiveLoops) {
  // GQA (4 query heads on 2 kv heads), Dqk != Dv, and a sequence longer than
  // one 64-row block.
  AttentionInputs in = makeInputs({2, 70, 4, 2, 6, 5}, 1);
  double scale = defaultAttentionScale(in.s.qkDim);
  EXPECT_DOUBLE_EQ(scale, 1 / std::sqrt(6.0));
  EXPECT_LE(maxAbsDiff(forward(in, scale), naiveAttention(in, scale)), 1e-14);
  EXPECT_LE(maxAbsDiff(forward(in, 0.3), naiveAttention(in, 0.3)), 1e-14);
}

void checkBackward(AttentionInputs in, uint32_t seed) {
  const AttentionShape &s = in.s;
  double scale = 0.7;
  auto dOut = randomVector(outSize(s), seed);
  auto loss = [&] { return dot(dOut, forward(in, scale)); };
  std::vector<double> dq = nanVector(in.q.size()), dk = nanVector(in.k.size()),
                      dv = nanVector(in.v.size());
  causalAttentionBackward(in.q.data(), in.k.data(), in.v.data(), dOut.data(), s,
                          scale, dq.data(), dk.data(), dv.data());
  expectGradient("q", in.q, loss, dq);
  expectGradient("k", in.k, loss, dk);
  expectGradient("v", in.v, loss, dv);
}

TEST(CausalAttentionTest, BackwardMatchesFiniteDifferences) {
  checkBackward(makeInputs({2, 7, 4, 2, 6, 5}, 10), 13);
}

TEST(CausalAttentionTest, BackwardMatchesFiniteDifferencesAcrossBlocks) {
  // 67 positions: two query and key blocks, the second one partial; 3 query
  // heads per kv head.
  checkBackward(makeInputs({1, 67, 3, 1, 3, 2}, 20), 23);
}

TEST(CausalAttentionTest, FloatForwardMatchesDouble) {
  AttentionInputs in = makeInputs({2, 80, 4, 2, 32, 16}, 30);
  double scale = defaultAttentionScale(in.s.qkDim);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto q = cast<T>(in.q), k = cast<T>(in.k), v = cast<T>(in.v);
    std::vector<T> out(outSize(in.s));
    causalAttentionForward(q.data(), k.data(), v.data(), in.s, scale,
                           out.data());
    return cast<double>(out);
  };
  expectFloatMatchesDouble("attention", run(float()), run(double()));

  // The backward too: the two-pass recomputation keeps FP32 accuracy.
  auto dOut = randomVector(outSize(in.s), 33);
  auto runBackward = [&](auto tag) {
    using T = decltype(tag);
    auto q = cast<T>(in.q), k = cast<T>(in.k), v = cast<T>(in.v),
         g = cast<T>(dOut);
    std::vector<T> dq(q.size()), dk(k.size()), dv(v.size());
    causalAttentionBackward(q.data(), k.data(), v.data(), g.data(), in.s, scale,
                            dq.data(), dk.data(), dv.data());
    std::vector<double> all = cast<double>(dq);
    all.insert(all.end(), dk.begin(), dk.end());
    all.insert(all.end(), dv.begin(), dv.end());
    return all;
  };
  expectFloatMatchesDouble("attention backward", runBackward(float()),
                           runBackward(double()));
}

TEST(CausalAttentionTest, FutureTokensDoNotChangeEarlierOutputs) {
  AttentionInputs in = makeInputs({1, 70, 2, 1, 4, 4}, 40);
  const AttentionShape &s = in.s;
  double scale = defaultAttentionScale(s.qkDim);
  std::vector<double> before = forward(in, scale);
  // Change the key, value and query of position 50.
  const int64_t changed = 50;
  for (int64_t i = 0; i < s.kvHeads * s.qkDim; ++i)
    in.k[changed * s.kvHeads * s.qkDim + i] += 0.5;
  for (int64_t i = 0; i < s.kvHeads * s.vDim; ++i)
    in.v[changed * s.kvHeads * s.vDim + i] -= 0.5;
  for (int64_t i = 0; i < s.qHeads * s.qkDim; ++i)
    in.q[changed * s.qHeads * s.qkDim + i] *= -1;
  std::vector<double> after = forward(in, scale);
  int64_t row = s.qHeads * s.vDim;
  for (int64_t pos = 0; pos < s.seq; ++pos) {
    bool same =
        std::equal(before.begin() + pos * row, before.begin() + (pos + 1) * row,
                   after.begin() + pos * row);
    // Bit-identical before the change; different from it on.
    EXPECT_EQ(same, pos < changed) << "position " << pos;
  }
}

TEST(CausalAttentionTest, GroupedQueryHeadsShareTheirKVHead) {
  // With kv heads repeated so that every query head has its own, plain
  // multi-head attention must give bit-identical results: query head h
  // reads kv head h / (qHeads / kvHeads).
  AttentionInputs gqa = makeInputs({2, 9, 6, 2, 4, 3}, 50);
  AttentionInputs mha = gqa;
  const AttentionShape &s = gqa.s;
  mha.s.kvHeads = s.qHeads;
  int64_t group = s.qHeads / s.kvHeads;
  mha.k.resize(s.batch * s.seq * s.qHeads * s.qkDim);
  mha.v.resize(s.batch * s.seq * s.qHeads * s.vDim);
  for (int64_t bs = 0; bs < s.batch * s.seq; ++bs)
    for (int64_t h = 0; h < s.qHeads; ++h) {
      for (int64_t d = 0; d < s.qkDim; ++d)
        mha.k[(bs * s.qHeads + h) * s.qkDim + d] =
            gqa.k[(bs * s.kvHeads + h / group) * s.qkDim + d];
      for (int64_t d = 0; d < s.vDim; ++d)
        mha.v[(bs * s.qHeads + h) * s.vDim + d] =
            gqa.v[(bs * s.kvHeads + h / group) * s.vDim + d];
    }
  EXPECT_TRUE(bitIdentical(forward(gqa, 0.5), forward(mha, 0.5)));

  // The GQA kv gradients are the sums of the expanded ones over each group.
  auto dOut = randomVector(outSize(s), 51);
  std::vector<double> dq(gqa.q.size()), dk(gqa.k.size()), dv(gqa.v.size());
  causalAttentionBackward(gqa.q.data(), gqa.k.data(), gqa.v.data(), dOut.data(),
                          gqa.s, 0.5, dq.data(), dk.data(), dv.data());
  std::vector<double> dqM(mha.q.size()), dkM(mha.k.size()), dvM(mha.v.size());
  causalAttentionBackward(mha.q.data(), mha.k.data(), mha.v.data(), dOut.data(),
                          mha.s, 0.5, dqM.data(), dkM.data(), dvM.data());
  EXPECT_TRUE(bitIdentical(dq, dqM));
  for (int64_t bs = 0; bs < s.batch * s.seq; ++bs)
    for (int64_t kvh = 0; kvh < s.kvHeads; ++kvh)
      for (int64_t d = 0; d < s.qkDim; ++d) {
        double sum = 0;
        for (int64_t g = 0; g < group; ++g)
          sum += dkM[(bs * s.qHeads + kvh * group + g) * s.qkDim + d];
        EXPECT_NEAR(dk[(bs * s.kvHeads + kvh) * s.qkDim + d], sum, 1e-14);
      }
}

} // namespace
