//===- DeterminismTest.cpp - Results independent of the thread count ------===//
//
// Every kernel gives bit-identical FP32 results on 1 and 2 threads. Sizes are
// large enough that the work really is split.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;

namespace {

/// Runs `compute` (returning the float outputs) on 1 then 2 threads and
/// expects bit-identical results.
template <typename Fn>
void expectThreadIndependent(const char *name, Fn compute) {
  std::vector<std::vector<float>> one, two;
  {
    ScopedThreads threads(1);
    one = compute();
  }
  {
    ScopedThreads threads(2);
    two = compute();
  }
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_TRUE(bitIdentical(one[i], two[i])) << name << " output " << i;
}

std::vector<float> randomFloats(size_t n, uint32_t seed) {
  return cast<float>(randomVector(n, seed));
}

TEST(DeterminismTest, Linear) {
  LinearShape s{192, 96, 130};
  auto x = randomFloats(s.m * s.k, 1), w = randomFloats(s.n * s.k, 2),
       b = randomFloats(s.n, 3), dy = randomFloats(s.m * s.n, 4);
  expectThreadIndependent("linear", [&] {
    std::vector<float> y(s.m * s.n), dx(x.size()), dw(w.size(), 0.5f),
        db(s.n, 0.5f);
    linearForward(x.data(), w.data(), b.data(), s, y.data());
    linearBackward(x.data(), w.data(), dy.data(), s, dx.data(), dw.data(),
                   db.data());
    return std::vector<std::vector<float>>{y, dx, dw, db};
  });
}

TEST(DeterminismTest, CausalAttention) {
  AttentionShape s{2, 130, 4, 2, 32, 16};
  auto q = randomFloats(s.batch * s.seq * s.qHeads * s.qkDim, 10);
  auto k = randomFloats(s.batch * s.seq * s.kvHeads * s.qkDim, 11);
  auto v = randomFloats(s.batch * s.seq * s.kvHeads * s.vDim, 12);
  auto dOut = randomFloats(s.batch * s.seq * s.qHeads * s.vDim, 13);
  double scale = defaultAttentionScale(s.qkDim);
  expectThreadIndependent("attention", [&] {
    std::vector<float> out(dOut.size()), dq(q.size()), dk(k.size()),
        dv(v.size());
    causalAttentionForward(q.data(), k.data(), v.data(), s, scale, out.data());
    causalAttentionBackward(q.data(), k.data(), v.data(), dOut.data(), s, scale,
                            dq.data(), dk.data(), dv.data());
    return std::vector<std::vector<float>>{out, dq, dk, dv};
  });
}

TEST(DeterminismTest, NormsEmbeddingAndLoss) {
  const int64_t rows = 300, dim = 128, vocab = 200;
  auto x = randomFloats(rows * dim, 20), gamma = randomFloats(dim, 21);
  auto dy = randomFloats(rows * dim, 22), table = randomFloats(vocab * dim, 23);
  auto logits = randomFloats(rows * vocab, 24);
  std::vector<int32_t> ids(rows);
  for (int64_t i = 0; i < rows; ++i)
    ids[i] = static_cast<int32_t>((i * 7) % 50); // repeats: accumulation
  RotaryShape rs{3, 100, 1, dim};
  expectThreadIndependent("rows", [&] {
    std::vector<float> y(x.size()), dx(x.size()), dGamma(dim, 0.25f),
        emb(rows * dim), dTable(table.size(), 0.0f), rot(x.size()),
        dLogits(logits.size());
    rmsnormForward(x.data(), gamma.data(), rows, dim, 1e-6, y.data());
    rmsnormBackward(x.data(), gamma.data(), dy.data(), rows, dim, 1e-6,
                    dx.data(), dGamma.data());
    embeddingForward(table.data(), ids.data(), rows, vocab, dim, emb.data());
    embeddingBackward(dy.data(), ids.data(), rows, vocab, dim, dTable.data());
    rotaryForward(x.data(), rs, 10000.0, rot.data());
    std::vector<float> loss{
        crossEntropyForward(logits.data(), ids.data(), rows, vocab)};
    crossEntropyBackward(logits.data(), ids.data(), rows, vocab, 1.0f,
                         dLogits.data());
    return std::vector<std::vector<float>>{y,      dx,  dGamma, emb,
                                           dTable, rot, loss,   dLogits};
  });
}

TEST(DeterminismTest, MoE) {
  MoEGateConfig c{512, 64, 16, 4, 4, 2, 2.5, MoEScoring::Sigmoid, true};
  auto x = randomFloats(c.tokens * c.dim, 30),
       w = randomFloats(c.experts * c.dim, 31);
  auto bias = randomFloats(c.experts, 32),
       dWeights = randomFloats(c.tokens * c.topK, 33);
  MoERoutingShape rs{c.tokens, c.topK, c.dim};
  auto dOut = randomFloats(c.tokens * c.dim, 34);
  expectThreadIndependent("moe", [&] {
    std::vector<float> weights(c.tokens * c.topK), dx(x.size()),
        dw(w.size(), 0.0f), rows(c.tokens * c.topK * c.dim), out(x.size()),
        dRows(rows.size()), dWts(weights.size()), dxDispatch(x.size());
    std::vector<int32_t> indices(c.tokens * c.topK), sizes(c.experts);
    moeGateForward(x.data(), w.data(), bias.data(), c, weights.data(),
                   indices.data());
    moeGateBackward(x.data(), w.data(), indices.data(), dWeights.data(), c,
                    dx.data(), dw.data());
    moeDispatchForward(x.data(), indices.data(), rs, c.experts, rows.data(),
                       sizes.data());
    moeCombineForward(rows.data(), weights.data(), indices.data(), rs,
                      out.data());
    moeCombineBackward(rows.data(), weights.data(), indices.data(), dOut.data(),
                       rs, dRows.data(), dWts.data());
    moeDispatchBackward(dRows.data(), indices.data(), rs, dxDispatch.data());
    std::vector<float> idx(indices.begin(), indices.end());
    return std::vector<std::vector<float>>{
        weights, idx, dx, dw, rows, out, dRows, dWts, dxDispatch};
  });
}

} // namespace
