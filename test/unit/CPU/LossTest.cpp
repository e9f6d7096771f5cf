//===- LossTest.cpp - Softmax cross-entropy -------------------------------===//

#include "TestUtil.h"

#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;

namespace {

TEST(CrossEntropyTest, MatchesHandComputedValue) {
  // Row 0: log(e + e^2 + e^3) - 3; row 1: log 3. Mean of the two.
  std::vector<double> logits = {1, 2, 3, 0, 0, 0};
  std::vector<int32_t> labels = {2, 1};
  EXPECT_NEAR(crossEntropyForward(logits.data(), labels.data(), 2, 3),
              0.753109126556245, 1e-15);
  std::vector<float> logitsF(logits.begin(), logits.end());
  EXPECT_NEAR(crossEntropyForward(logitsF.data(), labels.data(), 2, 3),
              0.753109126556245, 1e-7);
  // Shifting a row changes nothing, and large logits do not overflow.
  std::vector<double> shifted = {1001, 1002, 1003, -500, -500, -500};
  EXPECT_NEAR(crossEntropyForward(shifted.data(), labels.data(), 2, 3),
              0.753109126556245, 1e-13);
  std::vector<float> shiftedF(shifted.begin(), shifted.end());
  // FP32 holds 1003 to 6e-5 only; the loss inherits that absolute error.
  EXPECT_NEAR(crossEntropyForward(shiftedF.data(), labels.data(), 2, 3),
              0.753109126556245, 1e-4);
}

TEST(CrossEntropyTest, BackwardMatchesFiniteDifferencesAndFloat) {
  const int64_t tokens = 6, vocab = 9;
  auto logits = randomVector(tokens * vocab, 1, -3, 3);
  std::vector<int64_t> labels = {0, 8, 3, 3, 5, 1};
  const double dLoss = 0.7;
  auto loss = [&] {
    return dLoss *
           crossEntropyForward(logits.data(), labels.data(), tokens, vocab);
  };
  std::vector<double> dLogits = nanVector(logits.size());
  crossEntropyBackward(logits.data(), labels.data(), tokens, vocab, dLoss,
                       dLogits.data());
  expectGradient("logits", logits, loss, dLogits);

  auto large = randomVector(100 * 500, 2, -8, 8);
  std::vector<int32_t> largeLabels(100);
  for (int i = 0; i < 100; ++i)
    largeLabels[i] = (i * 37) % 500;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto l = cast<T>(large);
    return std::vector<double>{
        double(crossEntropyForward(l.data(), largeLabels.data(), 100, 500))};
  };
  expectFloatMatchesDouble("cross_entropy", run(float()), run(double()));
}

} // namespace
