//===- MoETest.cpp - MoE gate, dispatch and combine -----------------------===//

#include "TestUtil.h"

#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;

namespace {

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

/// Runs the gate on tokens whose router logits are exactly `logits` [tokens,
/// experts]: the router weight is the identity, so x w^T = x.
struct GateRun {
  std::vector<double> weights;
  std::vector<int32_t> indices;
};

GateRun gateOnLogits(const std::vector<double> &logits, MoEGateConfig c,
                     const std::vector<double> &bias = {}) {
  c.dim = c.experts;
  c.tokens = logits.size() / c.experts;
  std::vector<double> eye(c.experts * c.experts, 0.0);
  for (int64_t e = 0; e < c.experts; ++e)
    eye[e * c.experts + e] = 1;
  GateRun r{std::vector<double>(c.tokens * c.topK),
            std::vector<int32_t>(c.tokens * c.topK)};
  moeGateForward(logits.data(), eye.data(),
                 bias.empty() ? nullptr : bias.data(), c, r.weights.data(),
                 r.indices.data());
  return r;
}

MoEGateConfig config(int64_t experts, int64_t topK, int64_t nGroup,
                     int64_t topkGroup,
                     MoEScoring scoring = MoEScoring::Sigmoid,
                     bool norm = false, double scaling = 1.0) {
  return {0, 0, experts, topK, nGroup, topkGroup, scaling, scoring, norm};
}

//===----------------------------------------------------------------------===//
// Gate semantics
//===----------------------------------------------------------------------===//

TEST(MoEGateTest, GroupLimitingExcludesExpertsOfOtherGroups) {
  // Four groups of two. Expert 0 has the best single score, but its group's
  // two best sum to s(5) + s(-5) = 1.0, behind groups 1 (2 s(2) = 1.76) and
  // 2 (2 s(1.5) = 1.64): with two eligible groups, expert 0 is out.
  std::vector<double> logits = {5, -5, 2, 1.9, 1.5, 1.5, -1, -1};
  GateRun limited = gateOnLogits(logits, config(8, 2, 4, 2));
  EXPECT_EQ(limited.indices, (std::vector<int32_t>{2, 3}));
  EXPECT_DOUBLE_EQ(limited.weights[0], sigmoid(2));
  EXPECT_DOUBLE_EQ(limited.weights[1], sigmoid(1.9));
  // One eligible group: only group 1's experts.
  GateRun oneGroup = gateOnLogits(logits, config(8, 2, 4, 1));
  EXPECT_EQ(oneGroup.indices, (std::vector<int32_t>{2, 3}));
  // topK 3 over groups 1 and 2: the third pick comes from group 2 although
  // expert 0 beats it.
  GateRun three = gateOnLogits(logits, config(8, 3, 4, 2));
  EXPECT_EQ(three.indices, (std::vector<int32_t>{2, 3, 4}));
  // Without group limiting expert 0 wins.
  GateRun free = gateOnLogits(logits, config(8, 2, 1, 1));
  EXPECT_EQ(free.indices, (std::vector<int32_t>{0, 2}));
}

TEST(MoEGateTest, BiasSteersSelectionButNotWeights) {
  std::vector<double> logits = {1, 0.5, 0, -1};
  GateRun plain = gateOnLogits(logits, config(4, 2, 1, 1));
  EXPECT_EQ(plain.indices, (std::vector<int32_t>{0, 1}));
  // A large bias on expert 3 selects it first; its weight stays s(-1).
  std::vector<double> bias = {0, 0, 0, 3};
  GateRun biased = gateOnLogits(logits, config(4, 2, 1, 1), bias);
  EXPECT_EQ(biased.indices, (std::vector<int32_t>{3, 0}));
  EXPECT_DOUBLE_EQ(biased.weights[0], sigmoid(-1));
  EXPECT_DOUBLE_EQ(biased.weights[1], sigmoid(1));
  // Bias also enters the group ranking: it lifts group 1 (experts 2, 3)
  // above group 0.
  GateRun grouped = gateOnLogits(logits, config(4, 2, 2, 1), bias);
  EXPECT_EQ(grouped.indices, (std::vector<int32_t>{3, 2}));
  EXPECT_DOUBLE_EQ(grouped.weights[1], sigmoid(0));
}

TEST(MoEGateTest, NormalisationAndScalingFactor) {
  std::vector<double> logits = {0.3, -0.2, 1.1, 0.7, -1.4, 0.1};
  double s2 = sigmoid(1.1), s3 = sigmoid(0.7), s0 = sigmoid(0.3);
  GateRun scaled =
      gateOnLogits(logits, config(6, 3, 1, 1, MoEScoring::Sigmoid, false, 2.5));
  EXPECT_EQ(scaled.indices, (std::vector<int32_t>{2, 3, 0}));
  EXPECT_DOUBLE_EQ(scaled.weights[0], 2.5 * s2);
  EXPECT_DOUBLE_EQ(scaled.weights[2], 2.5 * s0);
  GateRun normed =
      gateOnLogits(logits, config(6, 3, 1, 1, MoEScoring::Sigmoid, true, 2.5));
  double z = s2 + s3 + s0;
  EXPECT_NEAR(normed.weights[0], 2.5 * s2 / z, 1e-15);
  EXPECT_NEAR(normed.weights[1], 2.5 * s3 / z, 1e-15);
  EXPECT_NEAR(normed.weights[0] + normed.weights[1] + normed.weights[2], 2.5,
              1e-15);
}

TEST(MoEGateTest, SoftmaxScoresNormaliseOverAllExperts) {
  std::vector<double> logits = {0.3, -0.2, 1.1, 0.7};
  double z = 0;
  for (double l : logits)
    z += std::exp(l);
  GateRun soft = gateOnLogits(logits, config(4, 2, 1, 1, MoEScoring::Softmax));
  EXPECT_EQ(soft.indices, (std::vector<int32_t>{2, 3}));
  EXPECT_NEAR(soft.weights[0], std::exp(1.1) / z, 1e-15);
  EXPECT_NEAR(soft.weights[1], std::exp(0.7) / z, 1e-15);
  // Softmax groups are ranked by the sum of their two best scores too.
  GateRun grouped =
      gateOnLogits(logits, config(4, 1, 2, 1, MoEScoring::Softmax));
  EXPECT_EQ(grouped.indices, (std::vector<int32_t>{2}));
  GateRun normed =
      gateOnLogits(logits, config(4, 2, 1, 1, MoEScoring::Softmax, true));
  EXPECT_NEAR(normed.weights[0],
              std::exp(1.1) / (std::exp(1.1) + std::exp(0.7)), 1e-15);
  // Sigmoid differs on the same logits.
  GateRun sig = gateOnLogits(logits, config(4, 2, 1, 1));
  EXPECT_DOUBLE_EQ(sig.weights[0], sigmoid(1.1));
}

//===----------------------------------------------------------------------===//
// Gate gradients
//===----------------------------------------------------------------------===//

struct GateCase {
  MoEScoring scoring;
  bool norm;
};

class MoEGateGradTest : public ::testing::TestWithParam<GateCase> {};

TEST_P(MoEGateGradTest, BackwardMatchesFiniteDifferencesThroughWeights) {
  MoEGateConfig c =
      config(8, 3, 4, 2, GetParam().scoring, GetParam().norm, 2.5);
  c.tokens = 6;
  c.dim = 5;
  auto x = randomVector(c.tokens * c.dim, 1, -2, 2);
  auto w = randomVector(c.experts * c.dim, 2);
  auto bias = randomVector(c.experts, 3, -0.2, 0.2);
  auto dWeights = randomVector(c.tokens * c.topK, 4);
  std::vector<double> weights(c.tokens * c.topK);
  std::vector<int32_t> indices(c.tokens * c.topK);
  moeGateForward(x.data(), w.data(), bias.data(), c, weights.data(),
                 indices.data());
  // The selection is piecewise constant: FD is valid only if no step flips
  // it, which random inputs (no near-ties at this scale) guarantee; check.
  auto loss = [&] {
    std::vector<double> wt(c.tokens * c.topK);
    std::vector<int32_t> idx(c.tokens * c.topK);
    moeGateForward(x.data(), w.data(), bias.data(), c, wt.data(), idx.data());
    EXPECT_EQ(idx, indices) << "a finite-difference step changed the routing";
    return dot(dWeights, wt);
  };
  auto prefill = randomVector(w.size(), 5);
  std::vector<double> dx = nanVector(x.size()), dw = prefill;
  moeGateBackward(x.data(), w.data(), indices.data(), dWeights.data(), c,
                  dx.data(), dw.data());
  expectGradient("x", x, loss, dx);
  expectGradient("w", w, loss, added(dw, prefill));

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(bias);
    std::vector<T> out(c.tokens * c.topK);
    std::vector<int32_t> idx(c.tokens * c.topK);
    moeGateForward(xt.data(), wt.data(), bt.data(), c, out.data(), idx.data());
    EXPECT_EQ(idx, indices);
    return cast<double>(out);
  };
  expectFloatMatchesDouble("moe_gate", run(float()), run(double()));
}

INSTANTIATE_TEST_SUITE_P(Scorings, MoEGateGradTest,
                         ::testing::Values(GateCase{MoEScoring::Sigmoid, false},
                                           GateCase{MoEScoring::Sigmoid, true},
                                           GateCase{MoEScoring::Softmax, false},
                                           GateCase{MoEScoring::Softmax, true}),
                         [](const auto &info) {
                           return std::string(info.param.scoring ==
                                                      MoEScoring::Sigmoid
                                                  ? "Sigmoid"
                                                  : "Softmax") +
                                  (info.param.norm ? "Norm" : "NoNorm");
                         });

//===----------------------------------------------------------------------===//
// Dispatch and combine
//===----------------------------------------------------------------------===//

TEST(MoEDispatchTest, SortsCopiesByExpertStablyInTokenOrder) {
  MoERoutingShape s{3, 2, 2};
  std::vector<double> x = {10, 11, 20, 21, 30, 31};
  std::vector<int32_t> indices = {1, 0, 0, 2, 1, 0};
  std::vector<double> rows(s.tokens * s.topK * s.dim);
  std::vector<int32_t> sizes(4, -1);
  moeDispatchForward(x.data(), indices.data(), s, 4, rows.data(), sizes.data());
  // Expert 0: tokens 0, 1, 2; expert 1: tokens 0, 2; expert 2: token 1;
  // expert 3: none.
  EXPECT_EQ(sizes, (std::vector<int32_t>{3, 2, 1, 0}));
  EXPECT_EQ(rows, (std::vector<double>{10, 11, 20, 21, 30, 31, 10, 11, 30, 31,
                                       20, 21}));
  std::vector<int64_t> rowOf(6);
  moeRowOfCopy(indices.data(), s.tokens, s.topK, rowOf.data());
  EXPECT_EQ(rowOf, (std::vector<int64_t>{3, 0, 1, 5, 4, 2}));
}

/// Distinct random experts per token.
std::vector<int64_t> randomRouting(int64_t tokens, int64_t topK,
                                   int64_t experts, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int64_t> all(experts), out;
  for (int64_t e = 0; e < experts; ++e)
    all[e] = e;
  for (int64_t t = 0; t < tokens; ++t) {
    std::shuffle(all.begin(), all.end(), gen);
    out.insert(out.end(), all.begin(), all.begin() + topK);
  }
  return out;
}

TEST(MoEDispatchTest, CombineUndoesDispatch) {
  MoERoutingShape s{11, 3, 4};
  const int64_t experts = 5;
  auto indices = randomRouting(s.tokens, s.topK, experts, 1);
  auto x = randomVector(s.tokens * s.dim, 2);
  auto weights = randomVector(s.tokens * s.topK, 3);
  std::vector<double> rows(s.tokens * s.topK * s.dim), out(x.size());
  std::vector<int32_t> sizes(experts);
  moeDispatchForward(x.data(), indices.data(), s, experts, rows.data(),
                     sizes.data());
  moeCombineForward(rows.data(), weights.data(), indices.data(), s, out.data());
  for (int64_t t = 0; t < s.tokens; ++t) {
    double wsum = 0;
    for (int64_t j = 0; j < s.topK; ++j)
      wsum += weights[t * s.topK + j];
    for (int64_t d = 0; d < s.dim; ++d)
      EXPECT_NEAR(out[t * s.dim + d], wsum * x[t * s.dim + d], 1e-15);
  }
  // Rows really are grouped by expert, in token order within a group.
  std::vector<int64_t> rowOf(s.tokens * s.topK);
  moeRowOfCopy(indices.data(), s.tokens, s.topK, rowOf.data());
  for (int64_t a = 0; a < s.tokens * s.topK; ++a)
    for (int64_t b = a + 1; b < s.tokens * s.topK; ++b) {
      bool before =
          indices[a] < indices[b] || (indices[a] == indices[b] && a < b);
      EXPECT_EQ(rowOf[a] < rowOf[b], before);
    }
}

TEST(MoEDispatchTest, DispatchBackwardMatchesFiniteDifferences) {
  MoERoutingShape s{7, 2, 3};
  auto indices = randomRouting(s.tokens, s.topK, 4, 10);
  auto x = randomVector(s.tokens * s.dim, 11);
  auto dRows = randomVector(s.tokens * s.topK * s.dim, 12);
  auto loss = [&] {
    std::vector<double> rows(dRows.size());
    std::vector<int32_t> sizes(4);
    moeDispatchForward(x.data(), indices.data(), s, 4, rows.data(),
                       sizes.data());
    return dot(dRows, rows);
  };
  std::vector<double> dx = nanVector(x.size());
  moeDispatchBackward(dRows.data(), indices.data(), s, dx.data());
  expectGradient("x", x, loss, dx);
}

TEST(MoECombineTest, BackwardMatchesFiniteDifferencesAndFloat) {
  MoERoutingShape s{7, 3, 4};
  auto indices = randomRouting(s.tokens, s.topK, 5, 20);
  auto rows = randomVector(s.tokens * s.topK * s.dim, 21);
  auto weights = randomVector(s.tokens * s.topK, 22);
  auto dOut = randomVector(s.tokens * s.dim, 23);
  auto loss = [&] {
    std::vector<double> out(dOut.size());
    moeCombineForward(rows.data(), weights.data(), indices.data(), s,
                      out.data());
    return dot(dOut, out);
  };
  std::vector<double> dRows = nanVector(rows.size()),
                      dWeights = nanVector(weights.size());
  moeCombineBackward(rows.data(), weights.data(), indices.data(), dOut.data(),
                     s, dRows.data(), dWeights.data());
  expectGradient("rows", rows, loss, dRows);
  expectGradient("weights", weights, loss, dWeights);

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto r = cast<T>(rows), w = cast<T>(weights);
    std::vector<int32_t> idx(indices.begin(), indices.end());
    std::vector<T> out(dOut.size());
    moeCombineForward(r.data(), w.data(), idx.data(), s, out.data());
    return cast<double>(out);
  };
  expectFloatMatchesDouble("moe_combine", run(float()), run(double()));
}

} // namespace
