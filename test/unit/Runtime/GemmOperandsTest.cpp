//===- GemmOperandsTest.cpp - The FP8 GEMM kernels' host contract ---------===//
//
// Without a GPU: the kernel name round-trips its configuration, and the
// packed operands (K-major payloads, regrouped scales) reproduce the
// reference block-scaled GEMM when the kernels' arithmetic is applied to
// them on the CPU, for Fprop, Dgrad and Wgrad with partial tiles.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/ScaledGemm.h"
#include "octet/Runtime/GemmOperands.h"

#include "gtest/gtest.h"

#include <cstring>
#include <random>

using namespace octet;
using namespace octet::runtime;
using numerics::Granularity;

namespace {

/// Random normal data whose magnitude changes from row to row and column to
/// column, so neighbouring scaling groups get different scales.
numerics::QuantizedTensor randomQuantized(int64_t rows, int64_t cols,
                                          Granularity g, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> magnitude(-6.0f, 6.0f);
  std::vector<float> rowScale(rows), colScale(cols);
  for (float &s : rowScale)
    s = std::exp2(magnitude(rng));
  for (float &s : colScale)
    s = std::exp2(magnitude(rng) / 2);
  std::vector<float> x(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      x[r * cols + c] = normal(rng) * rowScale[r] * colScale[c];
  return numerics::quantize(x.data(), 1, rows, cols, numerics::FP8Format::E4M3,
                            g, numerics::ScaleRounding::FP32);
}

struct Case {
  const char *name;
  Granularity lhsG, rhsG;
  int64_t lhsRows, lhsCols, rhsRows, rhsCols;
  int lhsContract, rhsContract;
  int64_t promotion;
  bool bf16;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class PackedGemmTest : public ::testing::TestWithParam<Case> {};

TEST_P(PackedGemmTest, EmulationMatchesReference) {
  const Case &c = GetParam();
  auto lhs = randomQuantized(c.lhsRows, c.lhsCols, c.lhsG, 1);
  auto rhs = randomQuantized(c.rhsRows, c.rhsCols, c.rhsG, 2);
  numerics::ScaledGemmOptions options;
  options.promotionInterval = c.promotion;
  options.bf16Output = c.bf16;
  int64_t m = c.lhsContract == 1 ? c.lhsRows : c.lhsCols;
  int64_t n = c.rhsContract == 1 ? c.rhsRows : c.rhsCols;
  std::vector<float> reference(m * n);
  numerics::scaledGemm(lhs, c.lhsContract, rhs, c.rhsContract,
                       reference.data(), options);

  llvm::Expected<PackedGemm> packed =
      packScaledGemm(lhs, c.lhsContract, rhs, c.rhsContract);
  ASSERT_TRUE(bool(packed)) << llvm::toString(packed.takeError());
  EXPECT_EQ(packed->m, m);
  EXPECT_EQ(packed->n, n);
  std::vector<float> emulated = emulatePackedGemm(*packed, c.promotion, c.bf16);
  // Both sum each interval in FP32; the reference's blocked GEMM may add in
  // another order, so the results agree to FP32 rounding, not bitwise.
  double diff = gemmDifference(reference.data(), emulated.data(), m * n);
  EXPECT_LT(diff, 1e-10) << c.name;
  // A wrong scale layout moves whole groups by factors of up to 2^12.
  double norm = 0;
  for (float v : reference)
    norm += double(v) * v;
  EXPECT_GT(norm, 0.0) << "random data must not vanish";
}

INSTANTIATE_TEST_SUITE_P(
    Variants, PackedGemmTest,
    ::testing::Values(
        Case{"fprop", Granularity::Tile1x128, Granularity::Block128x128, 96,
             384, 200, 384, 1, 1, 128, true},
        Case{"fprop_p32", Granularity::Tile1x128, Granularity::Block128x128,
             33, 256, 257, 256, 1, 1, 32, false},
        Case{"dgrad", Granularity::Tile1x128, Granularity::Block128x128, 70,
             256, 256, 300, 1, 0, 128, true},
        Case{"wgrad", Granularity::Tile128x1, Granularity::Tile128x1, 256, 72,
             256, 140, 0, 0, 64, false}),
    [](const auto &info) { return std::string(info.param.name); });

TEST(PackedGemmTest, RejectsOperandsNoKernelTakes) {
  auto lhs = randomQuantized(128, 256, Granularity::Block128x128, 3);
  auto rhs = randomQuantized(128, 256, Granularity::Block128x128, 4);
  llvm::Expected<PackedGemm> packed = packScaledGemm(lhs, 1, rhs, 1);
  ASSERT_FALSE(bool(packed));
  EXPECT_NE(llvm::toString(packed.takeError()).find("no generated kernel"),
            std::string::npos);
}

// The expert GEMM in the grouped kernels' contiguous layout: expert 1 has
// no rows, the others partial tiles (64-row tiles here), so each expert's
// rows start on a tile boundary with zero rows between; the group index is
// the expert over each tile. Emulated from the packed buffers, each
// expert's rows equal the reference GEMM of its rows and weights
// (1e-12: the reference's blocked FP32 sums may add in another order); for
// the Dgrad too, whose weights are transposed into B.
TEST(PackedGemmTest, ExpertGemmInTheContiguousLayout) {
  const std::vector<int64_t> sizes = {70, 0, 64, 5};
  const int64_t rows = 139, n = 160, k = 256, experts = 4;
  auto x = randomQuantized(rows, k, Granularity::Tile1x128, 11);
  std::mt19937 rng(12);
  std::normal_distribution<float> normal;
  std::vector<float> wf(experts * n * k);
  for (float &v : wf)
    v = normal(rng);
  auto w = numerics::quantize(
      wf.data(), experts, n, k, numerics::FP8Format::E4M3,
      Granularity::Block128x128, numerics::ScaleRounding::FP32);
  llvm::Expected<PackedGemm> p = packGroupedScaledGemm(x, sizes, w, 1, 64);
  ASSERT_TRUE(bool(p)) << llvm::toString(p.takeError());
  EXPECT_EQ(p->m, 128 + 0 + 64 + 64);
  EXPECT_EQ(p->groups, experts);
  ASSERT_EQ(p->groupIndex.size(), size_t(p->m));
  EXPECT_EQ(p->groupIndex[0], 0);
  EXPECT_EQ(p->groupIndex[127], 0);
  EXPECT_EQ(p->groupIndex[128], 2);
  EXPECT_EQ(p->groupIndex[192], 3);
  EXPECT_EQ(p->groupIndex[255], 3);
  ASSERT_EQ(p->packedRows.size(), size_t(rows));
  EXPECT_EQ(p->packedRows[69], 69);
  EXPECT_EQ(p->packedRows[70], 128);
  EXPECT_EQ(p->packedRows[134], 192);
  // The padding rows are zero.
  for (int64_t kk = 0; kk < k; ++kk)
    EXPECT_EQ(p->a[100 * k + kk], 0);
  for (int64_t promotion : {128, 32}) {
    std::vector<float> d = emulatePackedGemm(*p, promotion, false);
    numerics::ScaledGemmOptions options;
    options.promotionInterval = promotion;
    int64_t first = 0;
    for (int64_t e = 0; e < experts; ++e) {
      if (sizes[e] == 0)
        continue;
      SCOPED_TRACE(testing::Message()
                   << "expert " << e << " promotion " << promotion);
      std::vector<float> ref(sizes[e] * n), got(sizes[e] * n);
      numerics::scaledGemm(cpu::rowsOf(x, first, sizes[e]), 1,
                           cpu::matrixOf(w, e), 1, ref.data(), options);
      for (int64_t i = 0; i < sizes[e]; ++i)
        std::copy_n(d.data() + p->packedRows[first + i] * n, n,
                    got.data() + i * n);
      EXPECT_LT(gemmDifference(ref.data(), got.data(), ref.size()), 1e-12);
      first += sizes[e];
    }
  }
  // The experts' Dgrad: the weights [experts][k'][n'] contracted over
  // their rows, which the packing transposes into each expert's B.
  const int64_t wide = 200;
  std::vector<float> wt(experts * k * wide);
  for (float &v : wt)
    v = normal(rng);
  auto wd = numerics::quantize(
      wt.data(), experts, k, wide, numerics::FP8Format::E4M3,
      Granularity::Block128x128, numerics::ScaleRounding::FP32);
  llvm::Expected<PackedGemm> dg = packGroupedScaledGemm(x, sizes, wd, 0, 64);
  ASSERT_TRUE(bool(dg)) << llvm::toString(dg.takeError());
  EXPECT_EQ(dg->n, wide);
  EXPECT_EQ(dg->k, k);
  std::vector<float> dd = emulatePackedGemm(*dg, 128, false);
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (sizes[e] == 0)
      continue;
    SCOPED_TRACE(testing::Message() << "Dgrad of expert " << e);
    std::vector<float> ref(sizes[e] * wide), got(sizes[e] * wide);
    numerics::ScaledGemmOptions options;
    numerics::scaledGemm(cpu::rowsOf(x, first, sizes[e]), 1,
                         cpu::matrixOf(wd, e), 0, ref.data(), options);
    for (int64_t i = 0; i < sizes[e]; ++i)
      std::copy_n(dd.data() + dg->packedRows[first + i] * wide, wide,
                  got.data() + i * wide);
    EXPECT_LT(gemmDifference(ref.data(), got.data(), ref.size()), 1e-12);
    first += sizes[e];
  }
  // Sizes that do not match the rows or the experts are refused.
  llvm::Expected<PackedGemm> wrong =
      packGroupedScaledGemm(x, {70, 0, 64, 4}, w, 1, 64);
  ASSERT_FALSE(bool(wrong));
  EXPECT_NE(llvm::toString(wrong.takeError()).find("add up to 138 rows"),
            std::string::npos);
  llvm::Expected<PackedGemm> few = packGroupedScaledGemm(x, {139}, w, 1, 64);
  ASSERT_FALSE(bool(few));
  EXPECT_NE(llvm::toString(few.takeError()).find("1 expert sizes for 4"),
            std::string::npos);
}

/// An engine with only scaledGemm: the default expert GEMM, per expert.
class PerExpertEngine : public cpu::ScaledGemmEngine {
public:
  llvm::Error scaledGemm(const numerics::QuantizedTensor &lhs, int lc,
                         const numerics::QuantizedTensor &rhs, int rc,
                         int64_t promotion, float *out) override {
    ++calls;
    numerics::ScaledGemmOptions options;
    options.promotionInterval = promotion;
    numerics::scaledGemm(lhs, lc, rhs, rc, out, options);
    return llvm::Error::success();
  }
  int calls = 0;
};

// The default expert GEMM runs one GEMM per expert with rows, which gives
// the reference's results bit for bit, and refuses sizes that do not match
// the rows or the experts instead of reading past them.
TEST(PackedGemmTest, DefaultExpertGemmIsOneGemmPerExpert) {
  const std::vector<int64_t> sizes = {3, 0, 130};
  auto x = randomQuantized(133, 256, Granularity::Tile1x128, 31);
  std::mt19937 rng(32);
  std::normal_distribution<float> normal;
  std::vector<float> wf(3 * 64 * 256);
  for (float &v : wf)
    v = normal(rng);
  auto w = numerics::quantize(wf.data(), 3, 64, 256, numerics::FP8Format::E4M3,
                              Granularity::Block128x128,
                              numerics::ScaleRounding::FP32);
  PerExpertEngine engine;
  std::vector<float> out(133 * 64);
  ASSERT_FALSE(bool(engine.groupedScaledGemm(x, sizes, w, 1, 128, out.data())));
  EXPECT_EQ(engine.calls, 2);
  std::vector<float> ref(130 * 64);
  numerics::scaledGemm(cpu::rowsOf(x, 3, 130), 1, cpu::matrixOf(w, 2), 1,
                       ref.data(), numerics::ScaledGemmOptions());
  EXPECT_EQ(std::memcmp(ref.data(), out.data() + 3 * 64, ref.size() * 4), 0);
  llvm::Error e =
      engine.groupedScaledGemm(x, {3, 0, 131}, w, 1, 128, out.data());
  ASSERT_TRUE(bool(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("adding up to 134 rows"),
            std::string::npos);
  e = engine.groupedScaledGemm(x, {133}, w, 1, 128, out.data());
  ASSERT_TRUE(bool(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("for 3 experts"),
            std::string::npos);
}

TEST(GemmKernelConfigTest, NameRoundTrips) {
  GemmKernelConfig c;
  c.rhsScaling = RhsScaling::PerRow;
  c.grouped = true;
  c.tileM = 64;
  c.tileN = 112;
  c.stages = 7;
  c.promotion = 64;
  c.outputBF16 = false;
  EXPECT_EQ(c.name(), "octet_gemm_1d1d_f32_m64n112k128_s7_p64_grouped");
  std::optional<GemmKernelConfig> parsed = GemmKernelConfig::parse(c.name());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->name(), c.name());
  EXPECT_EQ(parsed->numThreads(), 256);
  // Per stage: the tiles, the scales (per row of A and, 1d1d, per column of
  // B), then two mbarriers.
  EXPECT_EQ(parsed->sharedMemoryBytes(),
            7 * (64 + 112) * 128 + 7 * (64 + 112) * 4 + 7 * 16);
  for (const char *bad :
       {"octet_gemm_2d2d_f32_m64n112k128_s7_p64", "octet_gemm_1d2d_f16_m64",
        "octet_gemm_1d2d_f32_m64n112k128_s7", "gemm",
        "octet_gemm_1d2d_f32_m64n112k128_s7_p64x",
        "octet_gemm_1d2d_f32_m64n112k128_s7_p64_grouped_ov"})
    EXPECT_FALSE(GemmKernelConfig::parse(bad).has_value()) << bad;

  // The overlapped schedule, with and without grouping.
  c.overlap = true;
  EXPECT_EQ(c.name(), "octet_gemm_1d1d_f32_m64n112k128_s7_p64_ov_grouped");
  parsed = GemmKernelConfig::parse(c.name());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->overlap);
  EXPECT_TRUE(parsed->grouped);
  c.grouped = false;
  parsed = GemmKernelConfig::parse(c.name());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->name(), "octet_gemm_1d1d_f32_m64n112k128_s7_p64_ov");
  EXPECT_TRUE(parsed->overlap);
  EXPECT_FALSE(parsed->grouped);
  EXPECT_FALSE(GemmKernelConfig::parse("octet_gemm_1d2d_f32_m64n112k128_s7_p64")
                   ->overlap);
}

TEST(GemmKernelConfigTest, VerifySaysWhy) {
  GemmKernelConfig c;
  c.stages = 8; // 8 x 32 KiB > 227 KiB
  std::string why;
  llvm::raw_string_ostream os(why);
  EXPECT_TRUE(llvm::failed(c.verify(os)));
  EXPECT_NE(why.find("do not fit"), std::string::npos) << why;
  c.stages = 6;
  EXPECT_TRUE(llvm::succeeded(c.verify(os)));
  // The overlapped schedule holds a stage while it waits for the next.
  c.overlap = true;
  c.stages = 1;
  why.clear();
  EXPECT_TRUE(llvm::failed(c.verify(os)));
  EXPECT_NE(why.find("needs at least 2 stages"), std::string::npos) << why;
  c.stages = 2;
  EXPECT_TRUE(llvm::succeeded(c.verify(os)));
}

} // namespace

TEST(SelectGemmKernelTest, PicksByScalingPromotionAndRows) {
  const std::vector<std::string> kernels = {
      "octet_gemm_1d2d_bf16_m128n128k128_s6_p128",        // BF16 output: never
      "octet_gemm_1d2d_f32_m128n128k128_s6_p128_grouped", // grouped: never
      "octet_gemm_1d2d_f32_m128n64k128_s8_p128",
      "octet_gemm_1d2d_f32_m128n128k128_s6_p128",
      "octet_gemm_1d2d_f32_m64n128k128_s8_p128",
      "octet_gemm_1d1d_f32_m128n128k128_s6_p64",
      "octet_gemm_1d2d_f32_m128n128k128_s6_p32",
      "not_a_gemm_kernel"};
  auto pick = [&](RhsScaling s, int64_t m, int64_t p) {
    llvm::Expected<std::string> k = selectGemmKernel(kernels, s, m, p);
    return k ? *k : "error: " + llvm::toString(k.takeError());
  };
  // The widest N tile of the 128-row ones for a tall GEMM, the 64-row one
  // for a short one.
  EXPECT_EQ(pick(RhsScaling::Block128, 4096, 128),
            "octet_gemm_1d2d_f32_m128n128k128_s6_p128");
  EXPECT_EQ(pick(RhsScaling::Block128, 64, 128),
            "octet_gemm_1d2d_f32_m64n128k128_s8_p128");
  EXPECT_EQ(pick(RhsScaling::Block128, 65, 128),
            "octet_gemm_1d2d_f32_m128n128k128_s6_p128");
  // The expert GEMM takes the grouped kernel, and only it.
  llvm::Expected<std::string> experts =
      selectGemmKernel(kernels, RhsScaling::Block128, 4096, 128, true);
  ASSERT_TRUE(bool(experts)) << llvm::toString(experts.takeError());
  EXPECT_EQ(*experts, "octet_gemm_1d2d_f32_m128n128k128_s6_p128_grouped");
  llvm::Expected<std::string> noExperts =
      selectGemmKernel(kernels, RhsScaling::Block128, 4096, 64, true);
  ASSERT_FALSE(bool(noExperts));
  EXPECT_NE(llvm::toString(noExperts.takeError())
                .find("no kernel computes an expert 1x128 x 128x128"),
            std::string::npos);
  // Without a 64-row kernel, a short GEMM takes a 128-row one.
  EXPECT_EQ(pick(RhsScaling::Block128, 16, 32),
            "octet_gemm_1d2d_f32_m128n128k128_s6_p32");
  EXPECT_EQ(pick(RhsScaling::PerRow, 16, 64),
            "octet_gemm_1d1d_f32_m128n128k128_s6_p64");
  // Nothing with that promotion: the error names the need and the offer.
  std::string none = pick(RhsScaling::PerRow, 256, 128);
  EXPECT_NE(none.find("error: no kernel computes a 128x1 x 128x1 (1d1d) GEMM "
                      "with FP32 output and promotion every 128"),
            std::string::npos)
      << none;
  EXPECT_NE(none.find("octet_gemm_1d1d_f32_m128n128k128_s6_p64"),
            std::string::npos);
  EXPECT_EQ(none.find("not_a_gemm_kernel"), std::string::npos);
  // The order of the list does not change the choice.
  std::vector<std::string> reversed(kernels.rbegin(), kernels.rend());
  llvm::Expected<std::string> k =
      selectGemmKernel(reversed, RhsScaling::Block128, 4096, 128);
  ASSERT_TRUE(bool(k));
  EXPECT_EQ(*k, "octet_gemm_1d2d_f32_m128n128k128_s6_p128");
}

// The engine octet-run --emulate-gemm-kernels uses, under the FP8 linear's
// three GEMMs: packed as for the GPU, computed as the kernels compute, it
// gives the reference's results (the reference's blocked FP32 sums may add
// in another order, hence 1e-10, not bitwise), and refuses what no kernel
// computes.
TEST(KernelEmulationEngineTest, FP8LinearGemmsMatchTheReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto random = [&](int64_t n) {
    std::vector<float> v(n);
    for (float &x : v)
      x = normal(rng);
    return v;
  };
  // Partial tiles everywhere: K, N and M not multiples of 128, odd N.
  const int64_t m = 70, n = 133, k = 200;
  std::vector<float> x = random(m * k), w = random(n * k), dy = random(m * n);
  for (int64_t promotion : {128, 32}) {
    SCOPED_TRACE(promotion);
    cpu::FP8LinearConfig reference;
    reference.promotionInterval = promotion;
    KernelEmulationEngine engine;
    cpu::FP8LinearConfig emulated = reference;
    emulated.engine = &engine;
    std::vector<float> y0(m * n), y1(m * n), dx0(m * k), dx1(m * k),
        dw0(n * k, 0.0f), dw1(n * k, 0.0f);
    cpu::FP8LinearCache c0, c1;
    cpu::LinearShape shape{m, n, k};
    ASSERT_FALSE(bool(cpu::fp8LinearForward(x.data(), w.data(), nullptr, shape,
                                            reference, y0.data(), &c0)));
    ASSERT_FALSE(bool(cpu::fp8LinearForward(x.data(), w.data(), nullptr, shape,
                                            emulated, y1.data(), &c1)));
    ASSERT_FALSE(
        bool(cpu::fp8LinearBackward(c0, w.data(), dy.data(), shape, reference,
                                    dx0.data(), dw0.data(), nullptr)));
    ASSERT_FALSE(
        bool(cpu::fp8LinearBackward(c1, w.data(), dy.data(), shape, emulated,
                                    dx1.data(), dw1.data(), nullptr)));
    EXPECT_EQ(engine.getBlockScaledCount(), 2); // Fprop, Dgrad
    EXPECT_EQ(engine.getRowScaledCount(), 1);   // Wgrad
    EXPECT_LT(gemmDifference(y0.data(), y1.data(), y0.size()), 1e-10);
    EXPECT_LT(gemmDifference(dx0.data(), dx1.data(), dx0.size()), 1e-10);
    EXPECT_LT(gemmDifference(dw0.data(), dw1.data(), dw0.size()), 1e-10);
    double norm = 0;
    for (float v : dw1)
      norm += double(v) * v;
    EXPECT_GT(norm, 0.0);
  }
  // E5M2 operands and a promotion no kernel has are refused, by name.
  KernelEmulationEngine engine;
  cpu::FP8LinearConfig e5m2;
  e5m2.format = numerics::FP8Format::E5M2;
  e5m2.engine = &engine;
  std::vector<float> y(m * n);
  llvm::Error err = cpu::fp8LinearForward(x.data(), w.data(), nullptr,
                                          {m, n, k}, e5m2, y.data(), nullptr);
  ASSERT_TRUE(bool(err));
  EXPECT_NE(llvm::toString(std::move(err)).find("E4M3"), std::string::npos);
  // 16 divides 128 but is shorter than one wgmma step.
  for (int64_t promotion : {16, 48}) {
    SCOPED_TRACE(promotion);
    cpu::FP8LinearConfig odd;
    odd.promotionInterval = promotion;
    odd.engine = &engine;
    llvm::Error e = cpu::fp8LinearForward(x.data(), w.data(), nullptr,
                                          {m, n, k}, odd, y.data(), nullptr);
    ASSERT_TRUE(bool(e));
    EXPECT_NE(llvm::toString(std::move(e)).find("every 32, 64 or 128"),
              std::string::npos);
  }
}
