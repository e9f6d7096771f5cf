//===- CudaGemmTest.cpp - The generated FP8 GEMM kernels on the GPU -------===//
//
// Runs every kernel of Inputs/gemm-variants.mlir (built into a cubin by
// octetc at build time) on random operands and compares it with the CPU
// reference GEMM by DeepGEMM's metric, 1 - 2 sum(xy) / sum(x^2 + y^2) <
// 1e-3. Outputs are poisoned (NaN) before each run, and the columns past N
// in each output row must stay poisoned. The expert GEMM is checked expert
// by expert on its real rows. A kernel with the overlapped promotion
// schedule must also match its default-schedule partner (same GEMM, same
// tile, same inputs) bit for bit: both do the same arithmetic in the same
// order. Skipped, with the reason, without
// an sm_90 GPU. OCTET_TEST_GEMM_KERNELS and OCTET_TEST_GEMM_MANIFEST name
// other kernel files (e.g. on a GPU machine the build tree is copied to).
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CudaGemm.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/ScaledGemm.h"
#include "octet/Runtime/GemmOperands.h"
#include "octet/Runtime/KernelManifest.h"

#include "CudaTestUtil.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <random>

using namespace octet;
using namespace octet::runtime;
using namespace octet::runtime::cuda;
using numerics::Granularity;

namespace {

Granularity granularityOf(llvm::StringRef name) {
  if (name == "tile_1x128")
    return Granularity::Tile1x128;
  if (name == "tile_128x1")
    return Granularity::Tile128x1;
  if (name == "block_128x128")
    return Granularity::Block128x128;
  return Granularity::PerTensor;
}

numerics::QuantizedTensor randomQuantized(int64_t rows, int64_t cols,
                                          Granularity g, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> magnitude(-4.0f, 4.0f);
  std::vector<float> rowScale(rows);
  for (float &s : rowScale)
    s = std::exp2(magnitude(rng));
  std::vector<float> x(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      x[r * cols + c] = normal(rng) * rowScale[r];
  return numerics::quantize(x.data(), 1, rows, cols, numerics::FP8Format::E4M3,
                            g, numerics::ScaleRounding::FP32);
}

class CudaGemmTest : public HopperTest {
protected:
  /// The expert GEMM: runs of 100, 200 and 128 rows for experts 0, 1 and 2
  /// (none for expert 3), each padded to 128 rows with index -1; only the
  /// real rows are compared, each with its expert's reference GEMM. The
  /// weights are made as the kernel reads them, [experts][n][k] K-major,
  /// which for the expert Dgrad (transpose_rhs) are the transposed weights.
  void runGrouped(const ManifestGemm &g, const GemmKernelConfig &config,
                  const KernelModule &module, unsigned seed);

  /// The GEMM a kernel computes and how, all but its promotion schedule:
  /// the two schedules of one GEMM get the same key, hence the same inputs.
  static std::string gemmKey(const ManifestGemm &g, GemmKernelConfig config) {
    config.overlap = false;
    return llvm::formatv("{0} {1}x{2}x{3}x{4} {5} {6} {7}{8}", config.name(),
                         g.groups, g.m, g.n, g.k, g.lhs, g.rhs,
                         int(g.transposeLhs), int(g.transposeRhs))
        .str();
  }
  static unsigned seedOf(const std::string &key) {
    size_t hash = std::hash<std::string>()(key);
    return unsigned(hash % 1000003);
  }
  struct Output {
    std::string kernel;
    bool overlap;
    std::vector<uint8_t> raw;
  };
  /// The raw outputs of each GEMM key, by kernel.
  std::map<std::string, std::vector<Output>> outputs;
  void record(const ManifestGemm &g, const GemmKernelConfig &config,
              std::vector<uint8_t> raw) {
    outputs[gemmKey(g, config)].push_back(
        {g.kernel, config.overlap, std::move(raw)});
  }
  /// Every overlapped kernel has a default-schedule partner with the same
  /// output bytes.
  void checkSchedulesAgree() {
    int pairs = 0;
    for (const auto &[key, runs] : outputs) {
      const Output *plain = nullptr;
      for (const Output &o : runs)
        if (!o.overlap)
          plain = &o;
      for (const Output &o : runs) {
        if (!o.overlap)
          continue;
        if (!plain) {
          ADD_FAILURE() << o.kernel << " has no default-schedule partner ("
                        << key << ") in the manifest";
          continue;
        }
        size_t differ = 0;
        for (size_t i = 0; i < o.raw.size() && i < plain->raw.size(); ++i)
          differ += o.raw[i] != plain->raw[i];
        EXPECT_EQ(o.raw.size(), plain->raw.size());
        EXPECT_EQ(differ, 0u) << o.kernel << " against " << plain->kernel;
        std::cout << o.kernel << " against " << plain->kernel << ": " << differ
                  << " of " << o.raw.size() << " output bytes differ\n";
        ++pairs;
      }
    }
    std::cout << pairs << " overlapped kernel(s) checked against their "
              << "default-schedule partner\n";
  }
};

void CudaGemmTest::runGrouped(const ManifestGemm &g,
                              const GemmKernelConfig &config,
                              const KernelModule &module, unsigned seed) {
  const int64_t runs[][2] = {{0, 100}, {1, 200}, {2, 128}};
  std::vector<int32_t> index(g.m, -1);
  std::vector<std::pair<int64_t, int64_t>> segments; // start, rows
  int64_t start = 0;
  for (auto [expert, rows] : runs) {
    ASSERT_LE(start + rows, g.m);
    for (int64_t i = 0; i < rows; ++i)
      index[start + i] = int32_t(expert);
    segments.push_back({start, rows});
    start += (rows + 127) / 128 * 128;
  }
  auto x = randomQuantized(g.m, g.k, Granularity::Tile1x128, seed);
  // Experts stacked as one batch of 128x128-blocked weights.
  std::mt19937 rng(seed + 1);
  std::normal_distribution<float> normal;
  std::vector<float> wf(g.groups * g.n * g.k);
  for (float &v : wf)
    v = normal(rng);
  auto w = numerics::quantize(
      wf.data(), g.groups, g.n, g.k, numerics::FP8Format::E4M3,
      Granularity::Block128x128, numerics::ScaleRounding::FP32);

  int64_t kGroups = g.k / 128;
  std::vector<float> scaleA(kGroups * g.m);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t q = 0; q < kGroups; ++q)
      scaleA[q * g.m + i] = x.scales[i * kGroups + q];
  GemmArguments args;
  args.a = put(x.payload);
  args.b = put(w.payload); // [E][N][K]: K-major already
  args.scaleA = put(scaleA);
  args.scaleB = put(w.scales); // [E][ceil(N/128)][K/128]
  args.groupIndex = put(index);
  args.m = g.m;
  args.n = g.n;
  args.k = g.k;
  args.ldd = g.n;
  args.groups = g.groups;
  size_t element = config.outputBF16 ? 2 : 4;
  std::optional<DeviceBuffer> d = poisoned(g.m * g.n * element, 0xFF);
  ASSERT_TRUE(d.has_value());
  args.d = d->get();
  llvm::Expected<GemmLaunch> launch =
      GemmLaunch::prepare(*context, module, g.kernel, args);
  ASSERT_TRUE(bool(launch)) << llvm::toString(launch.takeError());
  llvm::Error run = launch->launch(nullptr);
  ASSERT_FALSE(bool(run)) << llvm::toString(std::move(run));
  synchronize("running " + g.kernel);
  std::vector<uint8_t> raw(d->size());
  ASSERT_FALSE(bool(context->download(raw.data(), *d, raw.size(), "D")));
  record(g, config, raw);

  numerics::ScaledGemmOptions options;
  options.promotionInterval = config.promotion;
  options.bf16Output = config.outputBF16;
  for (size_t e = 0; e < segments.size(); ++e) {
    auto [first, rows] = segments[e];
    numerics::QuantizedTensor xs, we;
    xs.granularity = Granularity::Tile1x128;
    xs.rows = rows;
    xs.cols = g.k;
    xs.payload.assign(x.payload.begin() + first * g.k,
                      x.payload.begin() + (first + rows) * g.k);
    xs.scales.assign(x.scales.begin() + first * kGroups,
                     x.scales.begin() + (first + rows) * kGroups);
    int64_t blocks = (g.n + 127) / 128 * kGroups;
    we.granularity = Granularity::Block128x128;
    we.rows = g.n;
    we.cols = g.k;
    we.payload.assign(w.payload.begin() + e * g.n * g.k,
                      w.payload.begin() + (e + 1) * g.n * g.k);
    we.scales.assign(w.scales.begin() + e * blocks,
                     w.scales.begin() + (e + 1) * blocks);
    std::vector<float> reference(rows * g.n), result(rows * g.n);
    numerics::scaledGemm(xs, 1, we, 1, reference.data(), options);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < g.n; ++j) {
        const uint8_t *p = raw.data() + ((first + i) * g.n + j) * element;
        if (config.outputBF16) {
          uint16_t h;
          std::memcpy(&h, p, 2);
          result[i * g.n + j] = numerics::bf16ToFloat(h);
        } else {
          std::memcpy(&result[i * g.n + j], p, 4);
        }
      }
    double diff =
        gemmDifference(reference.data(), result.data(), result.size());
    EXPECT_LT(diff, 1e-3) << "expert " << e;
    std::cout << g.function << " expert " << e << " (" << rows
              << " rows): difference " << diff << "\n";
  }
}

TEST_F(CudaGemmTest, EveryVariantMatchesTheReference) {
  std::string cubinPath =
      pathFromEnv("OCTET_TEST_GEMM_KERNELS", OCTET_TEST_GEMM_KERNELS);
  std::string manifestPath =
      pathFromEnv("OCTET_TEST_GEMM_MANIFEST", OCTET_TEST_GEMM_MANIFEST);
  auto image = llvm::MemoryBuffer::getFile(cubinPath, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  ASSERT_TRUE(bool(image)) << cubinPath << ": " << image.getError().message();
  llvm::Expected<KernelManifest> manifest = readKernelManifest(manifestPath);
  ASSERT_TRUE(bool(manifest)) << llvm::toString(manifest.takeError());
  const std::vector<ManifestGemm> &gemms = manifest->gemms;
  ASSERT_GE(gemms.size(), 5u);
  llvm::Expected<KernelModule> module =
      KernelModule::load(*context, (*image)->getBuffer(), cubinPath);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());

  for (const ManifestGemm &g : gemms) {
    SCOPED_TRACE(g.function + " with " + g.kernel);
    // Flushed before the launch, so a kernel that hangs is named in the log.
    std::cout << "running " << g.function << " (" << g.kernel << ")"
              << std::endl;
    std::optional<GemmKernelConfig> config = GemmKernelConfig::parse(g.kernel);
    ASSERT_TRUE(config.has_value());
    unsigned seed = seedOf(gemmKey(g, *config));
    if (config->grouped) {
      runGrouped(g, *config, *module, seed);
      continue;
    }
    int lc = g.transposeLhs ? 0 : 1, rc = g.transposeRhs ? 0 : 1;
    auto lhs = lc == 1
                   ? randomQuantized(g.m, g.k, granularityOf(g.lhs), ++seed)
                   : randomQuantized(g.k, g.m, granularityOf(g.lhs), ++seed);
    auto rhs = rc == 1
                   ? randomQuantized(g.n, g.k, granularityOf(g.rhs), ++seed)
                   : randomQuantized(g.k, g.n, granularityOf(g.rhs), ++seed);
    numerics::ScaledGemmOptions options;
    options.promotionInterval = config->promotion;
    options.bf16Output = config->outputBF16;
    std::vector<float> reference(g.m * g.n);
    numerics::scaledGemm(lhs, lc, rhs, rc, reference.data(), options);

    llvm::Expected<PackedGemm> packed = packScaledGemm(lhs, lc, rhs, rc);
    ASSERT_TRUE(bool(packed)) << llvm::toString(packed.takeError());
    size_t element = config->outputBF16 ? 2 : 4;
    int64_t ldd = (g.n + 1) / 2 * 2 + 2; // two poisoned columns past N
    std::optional<DeviceBuffer> d = poisoned(g.m * ldd * element, 0xFF);
    ASSERT_TRUE(d.has_value());
    GemmArguments args;
    args.a = put(packed->a);
    args.b = put(packed->b);
    args.d = d->get();
    args.scaleA = put(packed->scaleA);
    args.scaleB = put(packed->scaleB);
    args.m = g.m;
    args.n = g.n;
    args.k = g.k;
    args.ldd = ldd;
    llvm::Expected<GemmLaunch> launch =
        GemmLaunch::prepare(*context, *module, g.kernel, args);
    ASSERT_TRUE(bool(launch)) << llvm::toString(launch.takeError());
    llvm::Error run = launch->launch(nullptr);
    ASSERT_FALSE(bool(run)) << llvm::toString(std::move(run));
    synchronize("running " + g.kernel);

    std::vector<uint8_t> raw(d->size());
    ASSERT_FALSE(bool(context->download(raw.data(), *d, raw.size(), "D")));
    record(g, *config, raw);
    std::vector<float> result(g.m * g.n);
    int64_t leftPoison = 0, overwritten = 0;
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t j = 0; j < ldd; ++j) {
        const uint8_t *p = raw.data() + (i * ldd + j) * element;
        float v;
        if (config->outputBF16) {
          uint16_t h;
          std::memcpy(&h, p, 2);
          v = numerics::bf16ToFloat(h);
        } else {
          std::memcpy(&v, p, 4);
        }
        if (j < g.n) {
          result[i * g.n + j] = v;
          leftPoison += std::isnan(v);
        } else {
          overwritten += !std::isnan(v);
        }
      }
    EXPECT_EQ(leftPoison, 0) << "outputs the kernel did not write";
    EXPECT_EQ(overwritten, 0) << "writes past column N";
    double diff =
        gemmDifference(reference.data(), result.data(), result.size());
    EXPECT_LT(diff, 1e-3);
    std::cout << g.function << " (" << g.kernel << ", M=" << g.m << " N=" << g.n
              << " K=" << g.k << "): difference " << diff << "\n";
  }
  checkSchedulesAgree();
}

} // namespace
