//===- GemmBench.cpp - octet-bench gemm and quant --------------------------===//
//
// The compiler-generated block-scaled FP8 GEMMs against cuBLASLt in the same
// process, on the same operands: cuBLASLt block-scaled FP8 (VEC128 x
// BLK128x128), per-tensor FP8 and BF16. Each kernel's output is compared
// with the CPU reference on a sample of rows (DeepGEMM's metric). Times are
// CUDA-event times of back-to-back launches after warm-up. The quantization
// benchmark measures the generated quantization kernels against a device
// copy and checks their bytes against the numerics library.
//
//===----------------------------------------------------------------------===//

#include "BenchCommon.h"

#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/ScaledGemm.h"
#include "octet/Runtime/CPUKernels.h"
#include "octet/Runtime/CublasLt.h"
#include "octet/Runtime/CudaGemm.h"
#include "octet/Runtime/CudaQuantize.h"
#include "octet/Numerics/Quantize.h"
#include "octet/Runtime/GemmOperands.h"
#include "octet/Runtime/KernelManifest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

using namespace octet;
using namespace octet::runtime;
using namespace octet::runtime::cuda;
using octet::bench::fail;

namespace {

/// A benchmarked GEMM: an Fprop-shaped, BF16-output entry of the manifest
/// (groups > 1 for an expert GEMM, m / groups rows per expert).
using Shape = ManifestGemm;

/// The kernel files: --kernels/--manifest, else the ones installed beside
/// octet-bench (lib/octet/bench-gemm.*).
std::string benchFile(const char *flag, const char *suffix,
                      const std::vector<std::string> &args,
                      const char *base = "bench-gemm") {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag)
      return args[i + 1];
  static int anchor;
  std::string self =
      llvm::sys::fs::getMainExecutable(nullptr, reinterpret_cast<void *>(&anchor));
  llvm::SmallString<256> path(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(path, "..", "lib", "octet");
  llvm::sys::path::append(path, std::string(base) + suffix);
  return path.str().str();
}

llvm::Expected<std::vector<Shape>> readShapes(llvm::StringRef path) {
  llvm::Expected<KernelManifest> manifest = readKernelManifest(path);
  if (!manifest)
    return manifest.takeError();
  std::vector<Shape> shapes;
  for (const ManifestGemm &g : manifest->gemms)
    // The benchmark compares Fprop-shaped BF16-output GEMMs.
    if (!g.transposeRhs && g.kernel.find("_1d2d_bf16_") != std::string::npos)
      shapes.push_back(g);
  return shapes;
}

/// Random finite E4M3 payload bytes (every code but the two NaNs).
std::vector<uint8_t> randomFP8(size_t count, std::mt19937 &rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> out(count);
  for (uint8_t &b : out) {
    int v;
    do
      v = byte(rng);
    while ((v & 0x7F) == 0x7F);
    b = uint8_t(v);
  }
  return out;
}

std::vector<float> randomScales(size_t count, std::mt19937 &rng) {
  std::uniform_int_distribution<int> exponent(-12, -4);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::vector<float> out(count);
  for (float &s : out)
    s = std::ldexp(mantissa(rng), exponent(rng));
  return out;
}

class Bench {
public:
  explicit Bench(Context &context) : context(context), api(context.api()) {}

  llvm::Expected<DeviceBuffer> upload(const void *data, size_t bytes,
                                      const llvm::Twine &what) {
    llvm::Expected<DeviceBuffer> b = context.allocate(bytes, what);
    if (!b)
      return b.takeError();
    if (llvm::Error e = context.upload(*b, data, bytes, what))
      return std::move(e);
    return b;
  }

  /// One GEMM's operands on the device, a BF16 output buffer of M x N, and
  /// the kernel arguments that point at them.
  struct DeviceGemm {
    DeviceBuffer a, b, scaleA, scaleB, groupIndex, d;
    GemmArguments args;
  };
  llvm::Expected<DeviceGemm>
  uploadGemm(const Shape &s, const std::vector<uint8_t> &a,
             const std::vector<uint8_t> &b, const std::vector<float> &scaleA,
             const std::vector<float> &scaleB,
             llvm::ArrayRef<int32_t> groupIndex = {}) {
    DeviceGemm g;
    auto put = [&](DeviceBuffer &to, const void *data, size_t bytes,
                   const char *what) -> llvm::Error {
      llvm::Expected<DeviceBuffer> buffer = upload(data, bytes, what);
      if (!buffer)
        return buffer.takeError();
      to = std::move(*buffer);
      return llvm::Error::success();
    };
    if (llvm::Error e = put(g.a, a.data(), a.size(), "A"))
      return std::move(e);
    if (llvm::Error e = put(g.b, b.data(), b.size(), "B"))
      return std::move(e);
    if (llvm::Error e =
            put(g.scaleA, scaleA.data(), scaleA.size() * 4, "the scales of A"))
      return std::move(e);
    if (llvm::Error e =
            put(g.scaleB, scaleB.data(), scaleB.size() * 4, "the scales of B"))
      return std::move(e);
    if (!groupIndex.empty())
      if (llvm::Error e = put(g.groupIndex, groupIndex.data(),
                              groupIndex.size() * 4, "the group index"))
        return std::move(e);
    llvm::Expected<DeviceBuffer> d = context.allocate(s.m * s.n * 2, "D");
    if (!d)
      return d.takeError();
    g.d = std::move(*d);
    g.args.a = g.a.get();
    g.args.b = g.b.get();
    g.args.d = g.d.get();
    g.args.scaleA = g.scaleA.get();
    g.args.scaleB = g.scaleB.get();
    g.args.groupIndex = g.groupIndex.get();
    g.args.m = s.m;
    g.args.n = s.n;
    g.args.k = s.k;
    g.args.ldd = s.n;
    g.args.groups = s.groups;
    return std::move(g);
  }

  /// Mean milliseconds per run of `run` over `iters` runs after `warmup`.
  llvm::Expected<double> time(const std::function<llvm::Error()> &run,
                              int warmup, int iters) {
    for (int i = 0; i < warmup; ++i)
      if (llvm::Error e = run())
        return std::move(e);
    CUevent start, stop;
    if (llvm::Error e = api.check(api.eventCreate(&start, CU_EVENT_DEFAULT),
                                  "cuEventCreate", "timing"))
      return std::move(e);
    if (llvm::Error e = api.check(api.eventCreate(&stop, CU_EVENT_DEFAULT),
                                  "cuEventCreate", "timing"))
      return std::move(e);
    api.eventRecord(start, nullptr);
    for (int i = 0; i < iters; ++i)
      if (llvm::Error e = run())
        return std::move(e);
    api.eventRecord(stop, nullptr);
    float ms = 0;
    llvm::Error e =
        api.check(api.eventSynchronize(stop), "cuEventSynchronize", "timing");
    if (!e)
      e = api.check(api.eventElapsedTime(&ms, start, stop),
                    "cuEventElapsedTime", "timing");
    api.eventDestroy(start);
    api.eventDestroy(stop);
    if (e)
      return std::move(e);
    return double(ms) / iters;
  }

  /// The BF16 rows `rows` of a [M][ldd] output, as floats.
  llvm::Expected<std::vector<float>>
  sampleRows(const DeviceBuffer &d, int64_t n,
             const std::vector<int64_t> &rows) {
    std::vector<uint16_t> all(d.size() / 2);
    if (llvm::Error e = context.download(all.data(), d, d.size(), "the output"))
      return std::move(e);
    std::vector<float> out;
    out.reserve(rows.size() * n);
    for (int64_t r : rows)
      for (int64_t j = 0; j < n; ++j)
        out.push_back(numerics::bf16ToFloat(all[r * n + j]));
    return out;
  }

  llvm::Error poison(const DeviceBuffer &d) {
    return api.check(api.memsetD8(d.get(), 0xFF, d.size()), "cuMemsetD8",
                     "poisoning the output");
  }

  /// Runs `kernel` once on `gemm` (output `d`, poisoned first) for its
  /// difference from `reference` on `rows`, then times it: {difference,
  /// TFLOP/s}.
  llvm::Expected<std::pair<double, double>>
  measureOurs(const KernelModule &module, llvm::StringRef kernel,
              const GemmArguments &gemm, const DeviceBuffer &d, int64_t n,
              const std::vector<int64_t> &rows,
              const std::vector<float> &reference, double flops, int warmup,
              int iters) {
    llvm::Expected<GemmLaunch> launch =
        GemmLaunch::prepare(context, module, kernel, gemm);
    if (!launch)
      return launch.takeError();
    if (llvm::Error e = poison(d))
      return std::move(e);
    if (llvm::Error e = launch->launch(nullptr))
      return std::move(e);
    auto ours = sampleRows(d, n, rows);
    if (!ours)
      return ours.takeError();
    double diff = gemmDifference(reference.data(), ours->data(), ours->size());
    auto ms = time([&] { return launch->launch(nullptr); }, warmup, iters);
    if (!ms)
      return ms.takeError();
    return std::make_pair(diff, flops / (*ms * 1e-3) * 1e-12);
  }

  Context &context;
  const DriverApi &api;
};

std::string formatCell(double v, const char *format = "{0:F0}") {
  return v > 0 ? llvm::formatv(format, v).str() : "-";
}

} // namespace

/// An expert GEMM: `groups` experts of m / groups rows each (contiguous
/// layout, no padding). The peer is cuBLASLt's block-scaled GEMM run once
/// per expert, which is what a user without a grouped kernel would do.
static int benchExperts(Bench &bench, const KernelModule &module, CublasLt *lt,
                        const Shape &s, std::mt19937 &rng, int warmup,
                        int iters, int sampleCount, int &failures) {
  int64_t rowsPer = s.m / s.groups, kGroups = s.k / 128,
          blocksN = (s.n + 127) / 128;
  if (s.m % s.groups || rowsPer % 128)
    return fail(llvm::createStringError(
        s.function + ": the expert GEMM benchmark needs M / groups to be a "
                     "multiple of 128"));
  std::vector<uint8_t> a = randomFP8(s.m * s.k, rng);
  std::vector<uint8_t> b = randomFP8(s.groups * s.n * s.k, rng);
  std::vector<float> scaleA = randomScales(kGroups * s.m, rng);
  std::vector<float> scaleB = randomScales(s.groups * blocksN * kGroups, rng);
  std::vector<int32_t> index(s.m);
  for (int64_t i = 0; i < s.m; ++i)
    index[i] = int32_t(i / rowsPer);

  // The reference on evenly spaced rows, expert by expert.
  std::vector<int64_t> rows;
  int64_t count = std::min<int64_t>(sampleCount, s.m);
  for (int64_t i = 0; i < count; ++i)
    rows.push_back(count == 1 ? 0 : i * (s.m - 1) / (count - 1));
  std::vector<float> reference(rows.size() * s.n);
  numerics::ScaledGemmOptions options;
  options.bf16Output = true;
  for (int64_t e = 0; e < s.groups; ++e) {
    std::vector<size_t> mine;
    for (size_t i = 0; i < rows.size(); ++i)
      if (index[rows[i]] == e)
        mine.push_back(i);
    if (mine.empty())
      continue;
    numerics::QuantizedTensor lhs, rhs;
    lhs.granularity = numerics::Granularity::Tile1x128;
    lhs.rows = int64_t(mine.size());
    lhs.cols = s.k;
    for (size_t i : mine) {
      lhs.payload.insert(lhs.payload.end(), a.begin() + rows[i] * s.k,
                         a.begin() + (rows[i] + 1) * s.k);
      for (int64_t g = 0; g < kGroups; ++g)
        lhs.scales.push_back(scaleA[g * s.m + rows[i]]);
    }
    rhs.granularity = numerics::Granularity::Block128x128;
    rhs.rows = s.n;
    rhs.cols = s.k;
    rhs.payload.assign(b.begin() + e * s.n * s.k,
                       b.begin() + (e + 1) * s.n * s.k);
    rhs.scales.assign(scaleB.begin() + e * blocksN * kGroups,
                      scaleB.begin() + (e + 1) * blocksN * kGroups);
    std::vector<float> y(mine.size() * s.n);
    numerics::scaledGemm(lhs, 1, rhs, 1, y.data(), options);
    for (size_t j = 0; j < mine.size(); ++j)
      std::copy(y.begin() + j * s.n, y.begin() + (j + 1) * s.n,
                reference.begin() + mine[j] * s.n);
  }

  llvm::Expected<Bench::DeviceGemm> dev =
      bench.uploadGemm(s, a, b, scaleA, scaleB, index);
  if (!dev)
    return fail(dev.takeError());
  double flops = 2.0 * s.m * s.n * s.k;
  auto ours = bench.measureOurs(module, s.kernel, dev->args, dev->d, s.n, rows,
                                reference, flops, warmup, iters);
  if (!ours)
    return fail(ours.takeError());
  auto [diffOurs, tOurs] = *ours;

  // cuBLASLt, one block-scaled GEMM per expert; its VEC128 scales want each
  // expert's rows M-major on their own.
  double tPeer = 0, diffPeer = -1;
  if (lt) {
    std::vector<float> perExpert(scaleA.size());
    for (int64_t e = 0; e < s.groups; ++e)
      for (int64_t g = 0; g < kGroups; ++g)
        for (int64_t i = 0; i < rowsPer; ++i)
          perExpert[e * kGroups * rowsPer + g * rowsPer + i] =
              scaleA[g * s.m + e * rowsPer + i];
    auto dPA = bench.upload(perExpert.data(), perExpert.size() * 4,
                            "per-expert scales of A");
    if (!dPA)
      return fail(dPA.takeError());
    std::vector<CublasLt::Plan> plans;
    for (int64_t e = 0; e < s.groups; ++e) {
      CublasGemm g;
      g.kind = CublasGemmKind::BlockScaledFP8;
      g.a = dev->a.get() + e * rowsPer * s.k;
      g.b = dev->b.get() + e * s.n * s.k;
      g.d = dev->d.get() + e * rowsPer * s.n * 2;
      g.scaleA = dPA->get() + e * kGroups * rowsPer * 4;
      g.scaleB = dev->scaleB.get() + e * blocksN * kGroups * 4;
      g.m = rowsPer;
      g.n = s.n;
      g.k = s.k;
      llvm::Expected<CublasLt::Plan> plan = lt->plan(g);
      if (!plan) {
        llvm::errs() << "octet-bench: " << llvm::toString(plan.takeError())
                     << "\n";
        plans.clear();
        break;
      }
      plans.push_back(std::move(*plan));
    }
    if (!plans.empty()) {
      auto all = [&]() -> llvm::Error {
        for (const CublasLt::Plan &p : plans)
          if (llvm::Error e = lt->run(p, nullptr))
            return e;
        return llvm::Error::success();
      };
      if (llvm::Error e = bench.poison(dev->d))
        return fail(std::move(e));
      if (llvm::Error e = all())
        return fail(std::move(e));
      auto theirs = bench.sampleRows(dev->d, s.n, rows);
      if (!theirs)
        return fail(theirs.takeError());
      diffPeer =
          gemmDifference(reference.data(), theirs->data(), theirs->size());
      auto ms = bench.time(all, warmup, iters);
      if (!ms)
        return fail(ms.takeError());
      tPeer = flops / (*ms * 1e-3) * 1e-12;
    }
  }
  bool bad = !(diffOurs < 1e-3);
  failures += bad;
  llvm::outs() << llvm::formatv(
      "{0,6} {1,6} {2,6} | {3,7} {4,9} {5,6} | {6,8} {7,6} | {8,9} {9,9} | "
      "{10} ({11} experts; peer: one cuBLASLt GEMM per expert){12}\n",
      s.m, s.n, s.k, formatCell(tOurs), formatCell(tPeer),
      formatCell(tPeer > 0 ? tOurs / tPeer : 0, "{0:F2}x"), "-", "-",
      llvm::formatv("{0:e1}", diffOurs).str(),
      diffPeer >= 0 ? llvm::formatv("{0:e1}", diffPeer).str() : "-", s.kernel,
      s.groups, bad ? "  <- WRONG" : "");
  return 0;
}

int octet::bench::benchGemm(const std::vector<std::string> &args) {
  int iters = 20, warmup = 5, sampleCount = 128;
  std::string only; // --shape MxNxK: that shape alone (for a profiler)
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--iters")
      iters = std::max(1, std::atoi(args[i + 1].c_str()));
    if (args[i] == "--check-rows")
      sampleCount = std::max(1, std::atoi(args[i + 1].c_str()));
    if (args[i] == "--shape")
      only = args[i + 1];
  }
  std::string cubinPath = benchFile("--kernels", ".cubin", args);
  std::string manifestPath = benchFile("--manifest", ".json", args);
  llvm::Expected<std::vector<Shape>> shapes = readShapes(manifestPath);
  if (!shapes)
    return fail(shapes.takeError());
  if (!only.empty()) {
    llvm::erase_if(*shapes, [&](const Shape &s) {
      return llvm::formatv("{0}x{1}x{2}", s.m, s.n, s.k).str() != only;
    });
    if (shapes->empty())
      return fail(llvm::createStringError(
          "--shape " + only + ": no such GEMM in " + manifestPath +
          " (write it as MxNxK, e.g. 4096x7168x16384)"));
  }
  auto image = llvm::MemoryBuffer::getFile(cubinPath, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!image)
    return fail(llvm::createStringError("cannot read the kernels " + cubinPath +
                                        ": " + image.getError().message()));
  llvm::Expected<Context> context = Context::create(0);
  if (!context)
    return fail(context.takeError());
  if (context->computeCapability() != 90)
    return fail(llvm::createStringError(
        "the generated FP8 kernels need sm_90 (Hopper); device 0 is " +
        context->deviceName()));
  llvm::Expected<KernelModule> module =
      KernelModule::load(*context, (*image)->getBuffer(), cubinPath);
  if (!module)
    return fail(module.takeError());
  llvm::Expected<std::unique_ptr<CublasLt>> lt = CublasLt::load(*context);
  std::string ltError;
  if (!lt) {
    ltError = llvm::toString(lt.takeError());
    llvm::errs() << "octet-bench: warning: " << ltError
                 << "; the cuBLASLt columns are left empty\n";
  }
  Bench bench(*context);
  llvm::outs() << llvm::formatv(
      "FP8 block-scaled GEMM (1x128 x 128x128 scales, BF16 out) on {0}, {1} "
      "SMs; TFLOP/s, mean of {2} runs after {3}\n"
      "difference: 1 - 2 sum(xy)/sum(x^2+y^2) against the CPU reference on "
      "{4} rows\n\n",
      context->deviceName(), context->multiprocessorCount(), iters, warmup,
      sampleCount);
  llvm::outs() << llvm::formatv(
      "{0,6} {1,6} {2,6} | {3,7} {4,9} {5,6} | {6,8} {7,6} | {8,9} {9,9} | "
      "{10}\n",
      "M", "N", "K", "octet", "cuBLASLt", "ratio", "FP8-pt", "BF16", "diff-oct",
      "diff-cub", "kernel");

  double logRatioSum = 0;
  int ratioCount = 0;
  int failures = 0;
  std::mt19937 rng(2026);
  for (const Shape &s : *shapes) {
    llvm::outs().flush();
    if (s.groups > 1) {
      if (int rc = benchExperts(bench, *module, lt ? lt->get() : nullptr, s,
                                rng, warmup, iters, sampleCount, failures))
        return rc;
      continue;
    }
    int64_t groups = s.k / 128, blocksN = (s.n + 127) / 128;
    std::vector<uint8_t> a = randomFP8(s.m * s.k, rng);
    std::vector<uint8_t> b = randomFP8(s.n * s.k, rng);
    std::vector<float> scaleA = randomScales(groups * s.m, rng);
    std::vector<float> scaleB = randomScales(blocksN * groups, rng);

    // The reference on evenly spaced rows, the last one included.
    std::vector<int64_t> rows;
    int64_t count = std::min<int64_t>(sampleCount, s.m);
    for (int64_t i = 0; i < count; ++i)
      rows.push_back(count == 1 ? 0 : i * (s.m - 1) / (count - 1));
    numerics::QuantizedTensor lhs, rhs;
    lhs.granularity = numerics::Granularity::Tile1x128;
    lhs.rows = int64_t(rows.size());
    lhs.cols = s.k;
    lhs.payload.resize(lhs.rows * s.k);
    lhs.scales.resize(lhs.rows * groups);
    for (size_t i = 0; i < rows.size(); ++i) {
      std::memcpy(&lhs.payload[i * s.k], &a[rows[i] * s.k], s.k);
      for (int64_t g = 0; g < groups; ++g)
        lhs.scales[i * groups + g] = scaleA[g * s.m + rows[i]];
    }
    rhs.granularity = numerics::Granularity::Block128x128;
    rhs.rows = s.n;
    rhs.cols = s.k;
    rhs.payload = b;
    rhs.scales = scaleB; // [ceil(N/128)][K/128], as the kernels take them
    numerics::ScaledGemmOptions options;
    options.bf16Output = true;
    std::vector<float> reference(rows.size() * s.n);
    numerics::scaledGemm(lhs, 1, rhs, 1, reference.data(), options);

    llvm::Expected<Bench::DeviceGemm> dev =
        bench.uploadGemm(s, a, b, scaleA, scaleB);
    if (!dev)
      return fail(dev.takeError());
    double flops = 2.0 * s.m * s.n * s.k;

    // Ours.
    auto ours = bench.measureOurs(*module, s.kernel, dev->args, dev->d, s.n,
                                  rows, reference, flops, warmup, iters);
    if (!ours)
      return fail(ours.takeError());
    auto [diffOurs, tOurs] = *ours;

    // cuBLASLt: block-scaled FP8, per-tensor FP8, BF16.
    double tBlock = 0, tTensor = 0, tBF16 = 0, diffCublas = -1;
    if (lt && *lt) {
      CublasGemm g;
      g.kind = CublasGemmKind::BlockScaledFP8;
      g.a = dev->a.get();
      g.b = dev->b.get();
      g.d = dev->d.get();
      g.scaleA = dev->scaleA.get();
      g.scaleB = dev->scaleB.get();
      g.m = s.m;
      g.n = s.n;
      g.k = s.k;
      if (auto plan = (*lt)->plan(g)) {
        if (llvm::Error e = bench.poison(dev->d))
          return fail(std::move(e));
        if (llvm::Error e = (*lt)->run(*plan, nullptr))
          return fail(std::move(e));
        auto theirs = bench.sampleRows(dev->d, s.n, rows);
        if (!theirs)
          return fail(theirs.takeError());
        diffCublas =
            gemmDifference(reference.data(), theirs->data(), theirs->size());
        auto ms = bench.time([&] { return (*lt)->run(*plan, nullptr); }, warmup,
                             iters);
        if (!ms)
          return fail(ms.takeError());
        tBlock = flops / (*ms * 1e-3) * 1e-12;
      } else {
        llvm::errs() << "octet-bench: " << llvm::toString(plan.takeError())
                     << "\n";
      }
      float one = 1.0f;
      auto unit = bench.upload(&one, sizeof(one), "a unit scale");
      if (!unit)
        return fail(unit.takeError());
      g.kind = CublasGemmKind::PerTensorFP8;
      g.scaleA = g.scaleB = unit->get();
      if (auto plan = (*lt)->plan(g)) {
        auto ms = bench.time([&] { return (*lt)->run(*plan, nullptr); }, warmup,
                             iters);
        if (!ms)
          return fail(ms.takeError());
        tTensor = flops / (*ms * 1e-3) * 1e-12;
      } else {
        llvm::errs() << "octet-bench: " << llvm::toString(plan.takeError())
                     << "\n";
      }
      // BF16 operands: any finite values serve for timing.
      std::vector<uint16_t> a16(s.m * s.k), b16(s.n * s.k);
      std::normal_distribution<float> normal;
      for (uint16_t &v : a16)
        v = numerics::floatToBF16(normal(rng));
      for (uint16_t &v : b16)
        v = numerics::floatToBF16(normal(rng));
      auto dA16 = bench.upload(a16.data(), a16.size() * 2, "BF16 A");
      auto dB16 = bench.upload(b16.data(), b16.size() * 2, "BF16 B");
      if (!dA16)
        return fail(dA16.takeError());
      if (!dB16)
        return fail(dB16.takeError());
      g.kind = CublasGemmKind::BF16;
      g.a = dA16->get();
      g.b = dB16->get();
      if (auto plan = (*lt)->plan(g)) {
        auto ms = bench.time([&] { return (*lt)->run(*plan, nullptr); }, warmup,
                             iters);
        if (!ms)
          return fail(ms.takeError());
        tBF16 = flops / (*ms * 1e-3) * 1e-12;
      } else {
        llvm::errs() << "octet-bench: " << llvm::toString(plan.takeError())
                     << "\n";
      }
    }

    double ratio = tBlock > 0 ? tOurs / tBlock : 0;
    if (ratio > 0 && s.m == 4096) {
      logRatioSum += std::log(ratio);
      ++ratioCount;
    }
    bool bad = !(diffOurs < 1e-3);
    failures += bad;
    llvm::outs() << llvm::formatv(
        "{0,6} {1,6} {2,6} | {3,7} {4,9} {5,6} | {6,8} {7,6} | {8,9} {9,9} | "
        "{10}{11}\n",
        s.m, s.n, s.k, formatCell(tOurs), formatCell(tBlock),
        formatCell(ratio, "{0:F2}x"), formatCell(tTensor), formatCell(tBF16),
        llvm::formatv("{0:e1}", diffOurs).str(),
        diffCublas >= 0 ? llvm::formatv("{0:e1}", diffCublas).str() : "-",
        s.kernel, bad ? "  <- WRONG" : "");
  }
  if (ratioCount)
    llvm::outs() << llvm::formatv(
        "\ngeometric mean over the {0} M = 4096 shapes: octet / cuBLASLt "
        "block-scaled = {1:F3}x\n",
        ratioCount, std::exp(logRatioSum / ratioCount));
  if (failures) {
    llvm::errs() << "octet-bench: " << failures
                 << " kernel(s) differ from the reference by 1e-3 or more\n";
    return 1;
  }
  return 0;
}

int octet::bench::benchQuant(const std::vector<std::string> &args) {
  int iters = 20, warmup = 5;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--iters")
      iters = std::max(1, std::atoi(args[i + 1].c_str()));
  std::string cubinPath = benchFile("--kernels", "", args, "bench-quant.cubin");
  std::string manifestPath =
      benchFile("--manifest", "", args, "bench-quant.json");
  llvm::Expected<KernelManifest> manifest = readKernelManifest(manifestPath);
  if (!manifest)
    return fail(manifest.takeError());
  auto image = llvm::MemoryBuffer::getFile(cubinPath, false, false);
  if (!image)
    return fail(llvm::createStringError("cannot read the kernels " + cubinPath +
                                        ": " + image.getError().message()));
  llvm::Expected<Context> context = Context::create(0);
  if (!context)
    return fail(context.takeError());
  if (context->computeCapability() != 90)
    return fail(llvm::createStringError(
        "the generated kernels need sm_90 (Hopper); device 0 is " +
        context->deviceName()));
  llvm::Expected<KernelModule> module =
      KernelModule::load(*context, (*image)->getBuffer(), cubinPath);
  if (!module)
    return fail(module.takeError());
  const DriverApi &api = context->api();
  Bench bench(*context);

  // The ceiling: a device-to-device copy, bytes read plus written.
  size_t copyBytes = size_t(1) << 30;
  auto src = context->allocate(copyBytes, "the copy source");
  auto dst = context->allocate(copyBytes, "the copy destination");
  if (!src)
    return fail(src.takeError());
  if (!dst)
    return fail(dst.takeError());
  auto msCopy = bench.time(
      [&] {
        return api.check(
            api.memcpyDtoDAsync(dst->get(), src->get(), copyBytes, nullptr),
            "cuMemcpyDtoDAsync", "copying");
      },
      warmup, iters);
  if (!msCopy)
    return fail(msCopy.takeError());
  double copyTBs = 2.0 * copyBytes / (*msCopy * 1e-3) * 1e-12;
  llvm::outs() << llvm::formatv(
      "FP8 quantization on {0}; TB/s counting bytes read plus written, mean "
      "of {1} runs after {2}\ndevice copy: {3:F2} TB/s\n\n",
      context->deviceName(), iters, warmup, copyTBs);
  llvm::outs() << llvm::formatv("{0,-38} {1,6} {2,6} | {3,6} {4,8} | {5}\n",
                                "kernel", "rows", "cols", "TB/s", "of copy",
                                "bit-exact");

  std::mt19937 rng(11);
  int failures = 0;
  for (const ManifestQuantization &entry : manifest->quantizations) {
    const std::string &kernel = entry.kernel;
    int64_t rows = entry.rows, cols = entry.cols, batch = entry.batch;
    std::optional<QuantizeKernelConfig> config =
        QuantizeKernelConfig::parse(kernel);
    if (!config)
      return fail(llvm::createStringError("unknown kernel " + kernel));
    int64_t count = batch * rows * cols;
    std::normal_distribution<float> normal;
    std::vector<float> x(count);
    std::vector<uint16_t> x16(count);
    for (int64_t i = 0; i < count; ++i) {
      x16[i] = numerics::floatToBF16(normal(rng));
      x[i] = numerics::bf16ToFloat(x16[i]);
    }
    bool requantize = config->kind == QuantizeKind::Transpose128x1;
    bool transposed = requantize || config->kind == QuantizeKind::Tile128x1;
    bool norm = config->kind == QuantizeKind::RMSNorm1x128;
    bool fused = norm || config->kind == QuantizeKind::SwiGLU1x128;
    numerics::QuantizedTensor source, expected;
    numerics::Granularity g = config->kind == QuantizeKind::Block128x128
                                  ? numerics::Granularity::Block128x128
                              : config->kind == QuantizeKind::Tile128x1
                                  ? numerics::Granularity::Tile128x1
                                  : numerics::Granularity::Tile1x128;
    QuantizeArguments qa;
    qa.rows = rows;
    qa.cols = cols;
    qa.batch = batch;
    // The input, and the second input (scales, gain or up operand).
    std::optional<DeviceBuffer> in, inScales;
    auto put = [&](std::optional<DeviceBuffer> &to, const void *data,
                   size_t bytes, const char *what) -> llvm::Error {
      llvm::Expected<DeviceBuffer> b = bench.upload(data, bytes, what);
      if (!b)
        return b.takeError();
      to.emplace(std::move(*b));
      return llvm::Error::success();
    };
    size_t readBytes = 0;
    if (fused) {
      // The second input: RMSNorm's gain or SwiGLU's up operand, BF16 (the
      // benchmark's gains are FP32 unless the kernel takes BF16).
      bool secondBF16 = norm ? config->gammaBF16 : true;
      int64_t secondCount = norm ? cols : count;
      std::vector<float> second(secondCount);
      std::vector<uint16_t> second16;
      for (float &v : second) {
        v = normal(rng);
        if (secondBF16) {
          second16.push_back(numerics::floatToBF16(v));
          v = numerics::bf16ToFloat(second16.back());
        }
      }
      double epsilon = entry.epsilon;
      qa.epsilon = float(epsilon);
      std::vector<float> y(count);
      if (norm)
        cpu::rmsnormForward<float>(x.data(), second.data(), rows, cols, epsilon,
                                   y.data());
      else
        cpu::swigluForward<float>(x.data(), second.data(), count, y.data());
      for (float &e : y)
        e = numerics::bf16ToFloat(numerics::floatToBF16(e));
      expected =
          numerics::quantize(y.data(), 1, rows, cols, numerics::FP8Format::E4M3,
                             g, numerics::ScaleRounding::FP32);
      if (llvm::Error e = put(in, x16.data(), count * 2, "the BF16 input"))
        return fail(std::move(e));
      llvm::Error e = secondBF16 ? put(inScales, second16.data(),
                                       secondCount * 2, "the second input")
                                 : put(inScales, second.data(), secondCount * 4,
                                       "the second input");
      if (e)
        return fail(std::move(e));
      qa.inputScales = inScales->get();
      readBytes = count * 2 + secondCount * (secondBF16 ? 2 : 4);
    } else if (requantize) {
      source = numerics::quantize(
          x.data(), 1, rows, cols, numerics::FP8Format::E4M3,
          numerics::Granularity::Tile1x128, numerics::ScaleRounding::FP32);
      expected =
          numerics::requantizeTransposed(source, numerics::ScaleRounding::FP32);
      std::vector<float> scales(source.scales.size());
      int64_t groups = cols / 128;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < groups; ++c)
          scales[c * rows + r] = source.scales[r * groups + c];
      if (llvm::Error e =
              put(in, source.payload.data(), count, "the FP8 input"))
        return fail(std::move(e));
      if (llvm::Error e =
              put(inScales, scales.data(), scales.size() * 4, "its scales"))
        return fail(std::move(e));
      qa.inputScales = inScales->get();
      readBytes = count + scales.size() * 4;
    } else {
      expected = numerics::quantize(x.data(), batch, rows, cols,
                                    numerics::FP8Format::E4M3, g,
                                    numerics::ScaleRounding::FP32);
      if (llvm::Error e = put(in, x16.data(), count * 2, "the BF16 input"))
        return fail(std::move(e));
      readBytes = count * 2;
    }
    auto q = context->allocate(count, "the FP8 output");
    auto s = context->allocate(expected.scales.size() * 4, "the scales");
    if (!q)
      return fail(q.takeError());
    if (!s)
      return fail(s.takeError());
    qa.input = in->get();
    qa.q = q->get();
    qa.scales = s->get();
    auto run = [&] {
      return launchQuantize(*context, *module, kernel, qa, nullptr);
    };
    if (llvm::Error e = run())
      return fail(std::move(e));
    std::vector<uint8_t> got(count);
    if (llvm::Error e = context->download(got.data(), *q, count, "the output"))
      return fail(std::move(e));
    // The fused kernels use the GPU's square root and exponential: compared
    // after dequantization rather than bit for bit.
    std::string verdict;
    if (fused) {
      std::vector<float> scales(expected.scales.size());
      if (llvm::Error e =
              context->download(scales.data(), *s, scales.size() * 4, "scales"))
        return fail(std::move(e));
      int64_t groups = cols / 128;
      std::vector<float> want(count), have(count);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          int64_t i = r * cols + c;
          want[i] = numerics::fp8ToFloat(expected.payload[i],
                                         numerics::FP8Format::E4M3) *
                    expected.scales[r * groups + c / 128];
          have[i] = numerics::fp8ToFloat(got[i], numerics::FP8Format::E4M3) *
                    scales[(c / 128) * rows + r];
        }
      double diff = gemmDifference(want.data(), have.data(), count);
      verdict = llvm::formatv("{0} (difference {1:e1})",
                              diff < 1e-5 ? "close" : "DIFFERS", diff)
                    .str();
      failures += !(diff < 1e-5);
    }
    int64_t mismatches = 0;
    for (int64_t b = 0; b < batch && !fused; ++b)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          mismatches +=
              expected.payload[(b * rows + r) * cols + c] !=
              (transposed ? got[c * rows + r] : got[(b * rows + r) * cols + c]);
    auto ms = bench.time(run, warmup, iters);
    if (!ms)
      return fail(ms.takeError());
    double bytes = double(readBytes) + count + expected.scales.size() * 4.0;
    double tbs = bytes / (*ms * 1e-3) * 1e-12;
    failures += mismatches != 0;
    if (!fused)
      verdict =
          mismatches ? std::to_string(mismatches) + " bytes differ" : "yes";
    llvm::outs() << llvm::formatv(
        "{0,-38} {1,6} {2,6} | {3,6:F2} {4,7:F0}% | {5}\n", kernel, rows, cols,
        tbs, 100 * tbs / copyTBs, verdict);
  }
  if (failures) {
    llvm::errs() << "octet-bench: " << failures
                 << " quantization kernel(s) differ from the numerics "
                    "library\n";
    return 1;
  }
  return 0;
}
