//===- CudaQuantizeTest.cpp - The generated quantization kernels on the GPU
//===//
//
// Runs every kernel of Inputs/quantize-variants.mlir (built by octetc at
// build time) on random data with infinities and NaN mixed in, and checks
// the FP8 payload and the scales bit for bit against numerics::quantize and
// requantizeTransposed (NaN codes compare as NaN). The fused RMSNorm and
// SwiGLU kernels use the GPU's square root and exponential, so they are
// compared after dequantization, by 1 - 2 sum(xy)/sum(x^2+y^2) < 1e-5, with
// the CPU kernels followed by numerics::quantize. Outputs are poisoned
// first. Skipped, with the reason, without an sm_90 GPU; the files can be
// named with OCTET_TEST_QUANTIZE_KERNELS / OCTET_TEST_QUANTIZE_MANIFEST.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CudaQuantize.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/Quantize.h"
#include "octet/Runtime/CPUKernels.h"
#include "octet/Runtime/GemmOperands.h"
#include "octet/Runtime/KernelManifest.h"

#include "CudaTestUtil.h"

#include "llvm/Support/MemoryBuffer.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>

using namespace octet;
using namespace octet::runtime;
using namespace octet::runtime::cuda;
using numerics::Granularity;

namespace {

bool sameFP8(uint8_t a, uint8_t b) {
  bool nanA = (a & 0x7F) == 0x7F, nanB = (b & 0x7F) == 0x7F;
  return nanA || nanB ? nanA && nanB : a == b;
}

class CudaQuantizeTest : public HopperTest {
protected:
  void runFused(const ManifestQuantization &e,
                const QuantizeKernelConfig &config, const KernelModule &module,
                std::mt19937 &rng);

  /// Runs `kernel` on `args`, whose outputs the caller poisoned, and
  /// returns the FP8 bytes and the scales it wrote.
  void runKernel(const std::string &kernel, const KernelModule &module,
                 QuantizeArguments &args, size_t qBytes, size_t scaleCount,
                 std::vector<uint8_t> &q, std::vector<float> &scales);
};

void CudaQuantizeTest::runKernel(const std::string &kernel,
                                 const KernelModule &module,
                                 QuantizeArguments &args, size_t qBytes,
                                 size_t scaleCount, std::vector<uint8_t> &q,
                                 std::vector<float> &scales) {
  std::optional<DeviceBuffer> dq = poisoned(qBytes, 0xEE);
  std::optional<DeviceBuffer> ds = poisoned(scaleCount * 4, 0xFF);
  ASSERT_TRUE(dq && ds);
  args.q = dq->get();
  args.scales = ds->get();
  llvm::Error run = launchQuantize(*context, module, kernel, args, nullptr);
  ASSERT_FALSE(bool(run)) << llvm::toString(std::move(run));
  synchronize("running " + kernel);
  q.resize(qBytes);
  scales.resize(scaleCount);
  ASSERT_FALSE(bool(context->download(q.data(), *dq, qBytes, "q")));
  ASSERT_FALSE(
      bool(context->download(scales.data(), *ds, scaleCount * 4, "scales")));
}

void CudaQuantizeTest::runFused(const ManifestQuantization &e,
                                const QuantizeKernelConfig &config,
                                const KernelModule &module, std::mt19937 &rng) {
  bool norm = config.kind == QuantizeKind::RMSNorm1x128;
  int64_t count = e.rows * e.cols;
  std::normal_distribution<float> normal;
  // Inputs as the kernel reads them (BF16-rounded where BF16).
  auto input = [&](int64_t n, bool bf16, float scale) {
    std::vector<float> v(n);
    for (float &x : v) {
      x = normal(rng) * scale;
      if (bf16)
        x = numerics::bf16ToFloat(numerics::floatToBF16(x));
    }
    return v;
  };
  std::vector<float> a = input(count, config.inputBF16, 3.0f);
  std::vector<float> second = norm ? input(e.cols, config.gammaBF16, 1.0f)
                                   : input(count, config.inputBF16, 2.0f);
  std::vector<float> y(count);
  if (norm)
    cpu::rmsnormForward<float>(a.data(), second.data(), e.rows, e.cols,
                               e.epsilon, y.data());
  else
    cpu::swigluForward<float>(a.data(), second.data(), count, y.data());
  if (config.inputBF16)
    for (float &v : y)
      v = numerics::bf16ToFloat(numerics::floatToBF16(v));
  numerics::QuantizedTensor expected =
      numerics::quantize(y.data(), 1, e.rows, e.cols, numerics::FP8Format::E4M3,
                         Granularity::Tile1x128,
                         config.pow2 ? numerics::ScaleRounding::Pow2
                                     : numerics::ScaleRounding::FP32);

  auto upload = [&](const std::vector<float> &v, bool bf16) {
    if (!bf16)
      return put(v);
    std::vector<uint16_t> half;
    for (float x : v)
      half.push_back(numerics::floatToBF16(x));
    return put(half);
  };
  QuantizeArguments args;
  args.input = upload(a, config.inputBF16);
  args.inputScales = upload(second, norm ? config.gammaBF16 : config.inputBF16);
  args.rows = e.rows;
  args.cols = e.cols;
  args.epsilon = float(e.epsilon);
  std::vector<uint8_t> gotQ;
  std::vector<float> gotS;
  runKernel(e.kernel, module, args, count, expected.scales.size(), gotQ, gotS);
  if (HasFatalFailure())
    return;
  // Dequantized, both sides; the GPU's scales are [cols/128][rows].
  int64_t groups = e.cols / 128;
  std::vector<float> want(count), got(count);
  for (int64_t r = 0; r < e.rows; ++r)
    for (int64_t c = 0; c < e.cols; ++c) {
      int64_t i = r * e.cols + c, g = c / 128;
      want[i] =
          numerics::fp8ToFloat(expected.payload[i], numerics::FP8Format::E4M3) *
          expected.scales[r * groups + g];
      got[i] = numerics::fp8ToFloat(gotQ[i], numerics::FP8Format::E4M3) *
               gotS[g * e.rows + r];
    }
  double diff = gemmDifference(want.data(), got.data(), count);
  EXPECT_LT(diff, 1e-5) << e.kernel;
  std::cout << e.function << " (" << e.kernel << "): difference " << diff
            << "\n";
}

TEST_F(CudaQuantizeTest, EveryKernelMatchesTheNumericsLibraryBitForBit) {
  std::string cubinPath =
      pathFromEnv("OCTET_TEST_QUANTIZE_KERNELS", OCTET_TEST_QUANTIZE_KERNELS);
  std::string manifestPath =
      pathFromEnv("OCTET_TEST_QUANTIZE_MANIFEST", OCTET_TEST_QUANTIZE_MANIFEST);
  auto image = llvm::MemoryBuffer::getFile(cubinPath, false, false);
  ASSERT_TRUE(bool(image)) << cubinPath;
  llvm::Expected<KernelManifest> manifest = readKernelManifest(manifestPath);
  ASSERT_TRUE(bool(manifest)) << llvm::toString(manifest.takeError());
  const std::vector<ManifestQuantization> &entries = manifest->quantizations;
  ASSERT_GE(entries.size(), 9u);
  llvm::Expected<KernelModule> module =
      KernelModule::load(*context, (*image)->getBuffer(), cubinPath);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  std::mt19937 rng(7);
  for (const ManifestQuantization &e : entries) {
    SCOPED_TRACE(e.function + " with " + e.kernel);
    // Flushed before the launch, so a kernel that hangs is named in the log.
    std::cout << "running " << e.function << " (" << e.kernel << ")"
              << std::endl;
    std::optional<QuantizeKernelConfig> config =
        QuantizeKernelConfig::parse(e.kernel);
    ASSERT_TRUE(config.has_value());
    if (config->kind == QuantizeKind::RMSNorm1x128 ||
        config->kind == QuantizeKind::SwiGLU1x128) {
      runFused(e, *config, *module, rng);
      continue;
    }
    numerics::ScaleRounding rounding = config->pow2
                                           ? numerics::ScaleRounding::Pow2
                                           : numerics::ScaleRounding::FP32;
    int64_t count = e.batch * e.rows * e.cols;
    // Rows of different magnitudes, a few infinities and NaNs.
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> magnitude(-8.0f, 8.0f);
    std::uniform_int_distribution<int> special(0, 499);
    std::vector<float> x(count);
    for (int64_t r = 0; r < e.batch * e.rows; ++r) {
      float scale = std::exp2(magnitude(rng));
      for (int64_t c = 0; c < e.cols; ++c) {
        float v = normal(rng) * scale;
        int s = special(rng);
        if (s == 0)
          v = INFINITY;
        else if (s == 1)
          v = -INFINITY;
        else if (s == 2)
          v = NAN;
        x[r * e.cols + c] = v;
      }
    }
    // BF16 inputs: the CPU sees the rounded values the GPU reads.
    std::vector<uint16_t> x16;
    if (config->inputBF16 && config->kind != QuantizeKind::Transpose128x1) {
      for (float &v : x) {
        x16.push_back(numerics::floatToBF16(v));
        v = numerics::bf16ToFloat(x16.back());
      }
    }

    numerics::QuantizedTensor expected, input;
    switch (config->kind) {
    case QuantizeKind::Tile1x128:
    case QuantizeKind::Block128x128:
    case QuantizeKind::Tile128x1:
      expected = numerics::quantize(
          x.data(), e.batch, e.rows, e.cols, numerics::FP8Format::E4M3,
          config->kind == QuantizeKind::Tile1x128 ? Granularity::Tile1x128
          : config->kind == QuantizeKind::Block128x128
              ? Granularity::Block128x128
              : Granularity::Tile128x1,
          rounding);
      break;
    case QuantizeKind::Transpose128x1:
      input = numerics::quantize(
          x.data(), 1, e.rows, e.cols, numerics::FP8Format::E4M3,
          Granularity::Tile1x128, numerics::ScaleRounding::FP32);
      expected = numerics::requantizeTransposed(input, rounding);
      break;
    case QuantizeKind::RMSNorm1x128:
    case QuantizeKind::SwiGLU1x128:
      llvm_unreachable("fused kernels are checked by runFused");
    }

    // Device operands.
    QuantizeArguments args;
    args.rows = e.rows;
    args.cols = e.cols;
    args.batch = e.batch;
    if (config->kind == QuantizeKind::Transpose128x1) {
      args.input = put(input.payload);
      // 1x128 scales as the GEMM kernels take them: [cols/128][rows].
      std::vector<float> scales(input.scales.size());
      int64_t groups = e.cols / 128;
      for (int64_t r = 0; r < e.rows; ++r)
        for (int64_t g = 0; g < groups; ++g)
          scales[g * e.rows + r] = input.scales[r * groups + g];
      args.inputScales = put(scales);
    } else if (!x16.empty()) {
      args.input = put(x16);
    } else {
      args.input = put(x);
    }
    std::vector<uint8_t> gotQ;
    std::vector<float> gotS;
    runKernel(e.kernel, *module, args, count, expected.scales.size(), gotQ,
              gotS);
    if (HasFatalFailure())
      return;

    // Expected layouts on the GPU side.
    bool transposed = config->kind == QuantizeKind::Tile128x1 ||
                      config->kind == QuantizeKind::Transpose128x1;
    int64_t badQ = 0, badS = 0;
    for (int64_t b = 0; b < e.batch; ++b)
      for (int64_t r = 0; r < e.rows; ++r)
        for (int64_t c = 0; c < e.cols; ++c) {
          uint8_t want = expected.payload[(b * e.rows + r) * e.cols + c];
          uint8_t got = transposed ? gotQ[c * e.rows + r]
                                   : gotQ[(b * e.rows + r) * e.cols + c];
          badQ += !sameFP8(want, got);
        }
    for (int64_t i = 0; i < int64_t(expected.scales.size()); ++i) {
      float want = expected.scales[i], got;
      if (config->kind == QuantizeKind::Tile1x128) {
        int64_t groups = e.cols / 128, r = i / groups, g = i % groups;
        got = gotS[g * e.rows + r];
      } else {
        got = gotS[i];
      }
      badS += std::memcmp(&want, &got, 4) != 0;
    }
    EXPECT_EQ(badQ, 0) << "payload bytes differ";
    EXPECT_EQ(badS, 0) << "scales differ";
  }
}

} // namespace
