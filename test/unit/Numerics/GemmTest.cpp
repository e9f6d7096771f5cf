//===- GemmTest.cpp - Blocked GEMM against the naive loop -----------------===//

#include "octet/Numerics/Gemm.h"
#include "octet/Numerics/Parallel.h"

#include "gtest/gtest.h"

#include <cstring>
#include <random>
#include <vector>

using namespace octet::numerics;

namespace {

template <typename T> std::vector<T> randomVector(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<T> v(n);
  for (T &x : v)
    x = static_cast<T>(dist(gen));
  return v;
}

struct Shape {
  int64_t m, n, k;
};

template <typename T>
void checkBitIdentical(Shape s, Trans ta, Trans tb, bool accumulate,
                       uint32_t seed) {
  auto a = randomVector<T>(s.m * s.k, seed);
  auto b = randomVector<T>(s.k * s.n, seed + 1);
  auto c0 = randomVector<T>(s.m * s.n, seed + 2);
  int64_t lda = ta == Trans::Yes ? s.m : s.k;
  int64_t ldb = tb == Trans::Yes ? s.k : s.n;
  std::vector<T> fast = c0, naive = c0;
  gemm<T>(ta, tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, fast.data(), s.n,
          accumulate);
  gemmNaive<T>(ta, tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb,
               naive.data(), s.n, accumulate);
  // Bit-identical, not merely close: the order of additions is the same.
  ASSERT_EQ(0, std::memcmp(fast.data(), naive.data(), fast.size() * sizeof(T)))
      << "m=" << s.m << " n=" << s.n << " k=" << s.k;
}

TEST(GemmTest, MatchesNaiveLoopBitForBitOnAllLayouts) {
  // Sizes straddle every block edge (MR=6, NR=16/8, KC=256, MC=96, NC=1024).
  const Shape shapes[] = {{1, 1, 1},     {7, 17, 3},    {96, 64, 256},
                          {97, 33, 257}, {13, 1030, 5}, {200, 40, 600},
                          {3, 500, 70}};
  uint32_t seed = 1;
  for (Shape s : shapes)
    for (Trans ta : {Trans::No, Trans::Yes})
      for (Trans tb : {Trans::No, Trans::Yes})
        for (bool acc : {false, true}) {
          checkBitIdentical<float>(s, ta, tb, acc, seed++);
          checkBitIdentical<double>(s, ta, tb, acc, seed++);
        }
}

TEST(GemmTest, ResultDoesNotDependOnThreadCount) {
  int saved = getNumThreads();
  Shape s{300, 260, 300};
  auto a = randomVector<float>(s.m * s.k, 7);
  auto b = randomVector<float>(s.k * s.n, 8);
  std::vector<float> one(s.m * s.n), many(s.m * s.n);
  setNumThreads(1);
  gemm<float>(Trans::No, Trans::Yes, s.m, s.n, s.k, a.data(), s.k, b.data(),
              s.k, one.data(), s.n, false);
  setNumThreads(4);
  gemm<float>(Trans::No, Trans::Yes, s.m, s.n, s.k, a.data(), s.k, b.data(),
              s.k, many.data(), s.n, false);
  setNumThreads(saved);
  EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * 4));
}

TEST(GemmTest, EmptyKZeroesOrKeeps) {
  std::vector<float> c = {1, 2, 3, 4};
  gemm<float>(Trans::No, Trans::No, 2, 2, 0, nullptr, 0, nullptr, 2, c.data(),
              2, true);
  EXPECT_EQ(c, (std::vector<float>{1, 2, 3, 4}));
  gemm<float>(Trans::No, Trans::No, 2, 2, 0, nullptr, 0, nullptr, 2, c.data(),
              2, false);
  EXPECT_EQ(c, (std::vector<float>{0, 0, 0, 0}));
}

TEST(ParallelTest, CoversEveryIndexOnceAndNests) {
  int saved = getNumThreads();
  setNumThreads(3);
  std::vector<int> hits(1000, 0);
  parallelFor(1000, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      ++hits[i];
    // A nested region runs inline instead of deadlocking the pool.
    parallelFor(4, 1, [](int64_t, int64_t) {});
  });
  setNumThreads(saved);
  for (int h : hits)
    ASSERT_EQ(h, 1);
}

} // namespace
