//===- DenseTest.cpp - Embedding, linear, matmul, add, SwiGLU -------------===//
//
// Each op: the forward against a naive loop in double, the backward against
// central finite differences (see TestUtil.h for the tolerances), and the
// float forward against the double one.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "octet/Runtime/CPUKernels.h"

using namespace octet::cpu;
using namespace octet::cpu::test;

namespace {

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

TEST(EmbeddingTest, ForwardGathersRowsAndBackwardAccumulates) {
  const int64_t vocab = 7, dim = 5;
  // Repeated ids: their gradients must add up.
  std::vector<int64_t> ids = {3, 0, 6, 3, 3, 1};
  int64_t n = ids.size();
  auto table = randomVector(vocab * dim, 1);
  std::vector<double> out(n * dim);
  embeddingForward(table.data(), ids.data(), n, vocab, dim, out.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dim; ++d)
      EXPECT_EQ(out[i * dim + d], table[ids[i] * dim + d]);

  auto dOut = randomVector(n * dim, 2);
  auto loss = [&] {
    std::vector<double> y(n * dim);
    embeddingForward(table.data(), ids.data(), n, vocab, dim, y.data());
    return dot(dOut, y);
  };
  auto prefill = randomVector(vocab * dim, 3);
  std::vector<double> dTable = prefill;
  embeddingBackward(dOut.data(), ids.data(), n, vocab, dim, dTable.data());
  expectGradient("table", table, loss, added(dTable, prefill));

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto t = cast<T>(table);
    std::vector<int32_t> ids32(ids.begin(), ids.end());
    std::vector<T> y(n * dim);
    embeddingForward(t.data(), ids32.data(), n, vocab, dim, y.data());
    return cast<double>(y);
  };
  expectFloatMatchesDouble("embedding", run(float()), run(double()), 0);
}

//===----------------------------------------------------------------------===//
// Linear
//===----------------------------------------------------------------------===//

TEST(LinearTest, ForwardMatchesNaiveLoop) {
  LinearShape s{5, 4, 9};
  auto x = randomVector(s.m * s.k, 10), w = randomVector(s.n * s.k, 11),
       b = randomVector(s.n, 12);
  std::vector<double> y(s.m * s.n);
  linearForward(x.data(), w.data(), b.data(), s, y.data());
  std::vector<double> ref(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double sum = b[j];
      for (int64_t p = 0; p < s.k; ++p)
        sum += x[i * s.k + p] * w[j * s.k + p];
      ref[i * s.n + j] = sum;
    }
  EXPECT_LE(maxAbsDiff(y, ref), 1e-14);
  // Without bias.
  linearForward<double>(x.data(), w.data(), nullptr, s, y.data());
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j)
      EXPECT_NEAR(y[i * s.n + j], ref[i * s.n + j] - b[j], 1e-14);
}

TEST(LinearTest, BackwardMatchesFiniteDifferences) {
  LinearShape s{6, 5, 7};
  auto x = randomVector(s.m * s.k, 20), w = randomVector(s.n * s.k, 21),
       b = randomVector(s.n, 22), dy = randomVector(s.m * s.n, 23);
  auto loss = [&] {
    std::vector<double> y(s.m * s.n);
    linearForward(x.data(), w.data(), b.data(), s, y.data());
    return dot(dy, y);
  };
  auto dwPrefill = randomVector(w.size(), 24),
       dbPrefill = randomVector(s.n, 25);
  std::vector<double> dx = nanVector(x.size()), dw = dwPrefill, db = dbPrefill;
  linearBackward(x.data(), w.data(), dy.data(), s, dx.data(), dw.data(),
                 db.data());
  expectGradient("x", x, loss, dx);
  expectGradient("w", w, loss, added(dw, dwPrefill));
  expectGradient("b", b, loss, added(db, dbPrefill));
}

TEST(LinearTest, FloatForwardMatchesDouble) {
  LinearShape s{33, 20, 130};
  auto x = randomVector(s.m * s.k, 30), w = randomVector(s.n * s.k, 31),
       b = randomVector(s.n, 32);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(b);
    std::vector<T> y(s.m * s.n);
    linearForward(xt.data(), wt.data(), bt.data(), s, y.data());
    return cast<double>(y);
  };
  expectFloatMatchesDouble("linear", run(float()), run(double()));
}

//===----------------------------------------------------------------------===//
// Batched matmul
//===----------------------------------------------------------------------===//

class BatchMatmulTest : public ::testing::TestWithParam<bool> {};

TEST_P(BatchMatmulTest, ForwardBackwardAndFloat) {
  BatchMatmulShape s{3, 4, 5, 6, GetParam()};
  auto lhs = randomVector(s.batch * s.m * s.k, 40);
  auto rhs = randomVector(s.batch * s.k * s.n, 41);
  auto dOut = randomVector(s.batch * s.m * s.n, 42);
  auto rhsAt = [&](int64_t b, int64_t p, int64_t j) {
    return s.transposeRhs ? rhs[(b * s.n + j) * s.k + p]
                          : rhs[(b * s.k + p) * s.n + j];
  };
  std::vector<double> out(dOut.size());
  batchMatmulForward(lhs.data(), rhs.data(), s, out.data());
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < s.k; ++p)
          sum += lhs[(b * s.m + i) * s.k + p] * rhsAt(b, p, j);
        EXPECT_NEAR(out[(b * s.m + i) * s.n + j], sum, 1e-14);
      }

  auto loss = [&] {
    std::vector<double> y(dOut.size());
    batchMatmulForward(lhs.data(), rhs.data(), s, y.data());
    return dot(dOut, y);
  };
  std::vector<double> dLhs = nanVector(lhs.size()),
                      dRhs = nanVector(rhs.size());
  batchMatmulBackward(lhs.data(), rhs.data(), dOut.data(), s, dLhs.data(),
                      dRhs.data());
  expectGradient("lhs", lhs, loss, dLhs);
  expectGradient("rhs", rhs, loss, dRhs);

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto l = cast<T>(lhs), r = cast<T>(rhs);
    std::vector<T> y(dOut.size());
    batchMatmulForward(l.data(), r.data(), s, y.data());
    return cast<double>(y);
  };
  expectFloatMatchesDouble("batch_matmul", run(float()), run(double()));
}

INSTANTIATE_TEST_SUITE_P(Layouts, BatchMatmulTest, ::testing::Bool(),
                         [](const auto &info) {
                           return info.param ? "TransposeRhs" : "Plain";
                         });

//===----------------------------------------------------------------------===//
// Grouped linear
//===----------------------------------------------------------------------===//

TEST(GroupedLinearTest, ForwardBackwardAndFloat) {
  // Expert 2 gets no rows.
  std::vector<int32_t> sizes = {3, 1, 0, 4};
  GroupedLinearShape s{8, 5, 6, 4};
  auto x = randomVector(s.rows * s.k, 50);
  auto w = randomVector(s.experts * s.n * s.k, 51);
  auto dy = randomVector(s.rows * s.n, 52);
  std::vector<double> y(s.rows * s.n);
  groupedLinearForward(x.data(), w.data(), sizes.data(), s, y.data());
  int64_t row = 0;
  for (int64_t e = 0; e < s.experts; ++e)
    for (int64_t r = 0; r < sizes[e]; ++r, ++row)
      for (int64_t j = 0; j < s.n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < s.k; ++p)
          sum += x[row * s.k + p] * w[(e * s.n + j) * s.k + p];
        EXPECT_NEAR(y[row * s.n + j], sum, 1e-14);
      }

  auto loss = [&] {
    std::vector<double> out(s.rows * s.n);
    groupedLinearForward(x.data(), w.data(), sizes.data(), s, out.data());
    return dot(dy, out);
  };
  auto dwPrefill = randomVector(w.size(), 53);
  std::vector<double> dx = nanVector(x.size()), dw = dwPrefill;
  groupedLinearBackward(x.data(), w.data(), sizes.data(), dy.data(), s,
                        dx.data(), dw.data());
  expectGradient("x", x, loss, dx);
  // The empty expert's weight gets no gradient, which FD confirms; skip the
  // "saw a gradient" check by testing the used experts' slices.
  std::vector<double> dwAdded = added(dw, dwPrefill);
  for (int64_t i = 2 * s.n * s.k; i < 3 * s.n * s.k; ++i)
    EXPECT_EQ(dwAdded[i], 0.0);
  expectGradient("w", w, loss, dwAdded);

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xt = cast<T>(x), wt = cast<T>(w);
    std::vector<int64_t> sizes64(sizes.begin(), sizes.end());
    std::vector<T> out(s.rows * s.n);
    groupedLinearForward(xt.data(), wt.data(), sizes64.data(), s, out.data());
    return cast<double>(out);
  };
  expectFloatMatchesDouble("grouped_linear", run(float()), run(double()));
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

TEST(AddTest, ForwardBackward) {
  const int64_t n = 37;
  auto a = randomVector(n, 60), b = randomVector(n, 61),
       g = randomVector(n, 62);
  std::vector<double> out(n);
  addForward(a.data(), b.data(), n, out.data());
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(out[i], a[i] + b[i]);
  auto loss = [&] {
    std::vector<double> y(n);
    addForward(a.data(), b.data(), n, y.data());
    return dot(g, y);
  };
  std::vector<double> da = nanVector(n), db = nanVector(n);
  addBackward(g.data(), n, da.data(), db.data());
  expectGradient("lhs", a, loss, da);
  expectGradient("rhs", b, loss, db);
}

TEST(SwiGLUTest, ForwardBackwardAndFloat) {
  const int64_t n = 53;
  auto gate = randomVector(n, 70, -4, 4), up = randomVector(n, 71, -2, 2);
  auto g = randomVector(n, 72);
  std::vector<double> out(n);
  swigluForward(gate.data(), up.data(), n, out.data());
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(out[i], gate[i] / (1 + std::exp(-gate[i])) * up[i], 1e-15);
  auto loss = [&] {
    std::vector<double> y(n);
    swigluForward(gate.data(), up.data(), n, y.data());
    return dot(g, y);
  };
  std::vector<double> dGate = nanVector(n), dUp = nanVector(n);
  swigluBackward(gate.data(), up.data(), g.data(), n, dGate.data(), dUp.data());
  expectGradient("gate", gate, loss, dGate);
  expectGradient("up", up, loss, dUp);

  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto gt = cast<T>(gate), ut = cast<T>(up);
    std::vector<T> y(n);
    swigluForward(gt.data(), ut.data(), n, y.data());
    return cast<double>(y);
  };
  expectFloatMatchesDouble("swiglu", run(float()), run(double()));
}

} // namespace
