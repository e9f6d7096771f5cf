//===- CudaGemmEngine.cpp - FP8 linears' GEMMs on the GPU -----------------===//

#include "octet/Runtime/CudaGemmEngine.h"

#include "octet/Runtime/GemmOperands.h"
#include "octet/Runtime/KernelManifest.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <chrono>
#include <cstring>
#include <numeric>

using namespace octet;
using namespace octet::runtime;
using namespace octet::runtime::cuda;

// The built-in library, embedded by the assembler from the files the build
// generates (see runtime/CMakeLists.txt), so that octet-run and the
// executables octetc copies from it carry their kernels wherever they go.
#ifdef OCTET_BUILTIN_GEMM_CUBIN
asm(".pushsection .rodata\n"
    ".balign 16\n"
    ".globl octetBuiltinGemmCubin\n"
    ".hidden octetBuiltinGemmCubin\n"
    "octetBuiltinGemmCubin:\n"
    ".incbin \"" OCTET_BUILTIN_GEMM_CUBIN "\"\n"
    ".globl octetBuiltinGemmCubinEnd\n"
    ".hidden octetBuiltinGemmCubinEnd\n"
    "octetBuiltinGemmCubinEnd:\n"
    ".globl octetBuiltinGemmManifest\n"
    ".hidden octetBuiltinGemmManifest\n"
    "octetBuiltinGemmManifest:\n"
    ".incbin \"" OCTET_BUILTIN_GEMM_MANIFEST "\"\n"
    ".globl octetBuiltinGemmManifestEnd\n"
    ".hidden octetBuiltinGemmManifestEnd\n"
    "octetBuiltinGemmManifestEnd:\n"
    ".popsection\n");
extern "C" const char octetBuiltinGemmCubin[], octetBuiltinGemmCubinEnd[],
    octetBuiltinGemmManifest[], octetBuiltinGemmManifestEnd[];
#endif

static std::vector<std::string> kernelNames(const KernelManifest &manifest) {
  std::vector<std::string> names;
  for (const ManifestGemm &g : manifest.gemms)
    if (!llvm::is_contained(names, g.kernel))
      names.push_back(g.kernel);
  return names;
}

llvm::Expected<KernelLibrary> KernelLibrary::builtin() {
#ifdef OCTET_BUILTIN_GEMM_CUBIN
  KernelLibrary lib;
  lib.origin = "the runtime's built-in GEMM kernels";
  lib.image.assign(octetBuiltinGemmCubin,
                   octetBuiltinGemmCubinEnd - octetBuiltinGemmCubin);
  llvm::Expected<KernelManifest> manifest = parseKernelManifest(
      llvm::StringRef(octetBuiltinGemmManifest,
                      octetBuiltinGemmManifestEnd - octetBuiltinGemmManifest),
      lib.origin);
  if (!manifest)
    return manifest.takeError();
  lib.kernels = kernelNames(*manifest);
  return std::move(lib);
#else
  return llvm::createStringError(
      "this runtime was built without its GEMM kernels (no CUDA toolkit at "
      "build time); pass a cubin that octetc --emit=cubin wrote");
#endif
}

llvm::Expected<KernelLibrary>
KernelLibrary::load(llvm::StringRef cubinPath, llvm::StringRef manifestPath) {
  std::string manifestFile = manifestPath.str();
  if (manifestFile.empty()) {
    llvm::SmallString<256> p(cubinPath);
    llvm::sys::path::replace_extension(p, ".json");
    manifestFile = p.str().str();
  }
  auto image = llvm::MemoryBuffer::getFile(cubinPath, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!image)
    return llvm::createStringError("cannot read the kernels " + cubinPath +
                                   ": " + image.getError().message());
  llvm::Expected<KernelManifest> manifest = readKernelManifest(manifestFile);
  if (!manifest)
    return manifest.takeError();
  KernelLibrary lib;
  lib.origin = cubinPath.str();
  lib.image = (*image)->getBuffer().str();
  lib.kernels = kernelNames(*manifest);
  if (lib.kernels.empty())
    return llvm::createStringError(manifestFile +
                                   ": the manifest lists no GEMM kernel");
  return std::move(lib);
}

CudaGemmEngine::CudaGemmEngine(Context context, KernelLibrary library)
    : context(std::move(context)), library(std::move(library)) {}

CudaGemmEngine::~CudaGemmEngine() {
  // The members go next (launches, buffers, stream, module): with the
  // context current. Nothing is in flight: every GEMM waits for its result.
  if (llvm::Error e = context.makeCurrent())
    llvm::consumeError(std::move(e));
}

llvm::Expected<std::unique_ptr<CudaGemmEngine>>
CudaGemmEngine::create(KernelLibrary library, int ordinal) {
  llvm::Expected<Context> ctx = Context::create(ordinal);
  if (!ctx)
    return ctx.takeError();
  if (ctx->computeCapability() != 90)
    return llvm::createStringError(llvm::formatv(
        "the generated kernels need an sm_90 GPU (H100, H200); device {0} "
        "is {1}, sm_{2}",
        ordinal, ctx->deviceName(), ctx->computeCapability()));
  std::unique_ptr<CudaGemmEngine> engine(
      new CudaGemmEngine(std::move(*ctx), std::move(library)));
  llvm::Expected<KernelModule> module = KernelModule::load(
      engine->context, engine->library.image, engine->library.origin);
  if (!module)
    return module.takeError();
  engine->module.emplace(std::move(*module));
  llvm::Expected<TimedStream> stream =
      TimedStream::create(engine->context, "the GEMM");
  if (!stream)
    return stream.takeError();
  engine->stream.emplace(std::move(*stream));
  return std::move(engine);
}

llvm::Error CudaGemmEngine::reserve(DeviceBuffer &buffer, size_t bytes,
                                    const llvm::Twine &what) {
  llvm::Expected<bool> moved = context.reserve(buffer, bytes, what);
  if (!moved)
    return moved.takeError();
  if (*moved)
    launches.clear(); // the prepared launches point into the buffers
  return llvm::Error::success();
}

namespace {
/// Adds the wall time of its scope to `seconds` under `mutex`.
class EngineTimer {
public:
  EngineTimer(std::mutex &mutex, double &seconds)
      : mutex(mutex), seconds(seconds),
        start(std::chrono::steady_clock::now()) {}
  ~EngineTimer() {
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
    std::lock_guard<std::mutex> lock(mutex);
    seconds += d.count();
  }

private:
  std::mutex &mutex;
  double &seconds;
  std::chrono::steady_clock::time_point start;
};
} // namespace

llvm::Error CudaGemmEngine::scaledGemm(const numerics::QuantizedTensor &lhs,
                                       int lhsContract,
                                       const numerics::QuantizedTensor &rhs,
                                       int rhsContract, int64_t promotion,
                                       float *out) {
  EngineTimer timer(mutex, stats.engineSeconds);
  llvm::Expected<PackedGemm> packed =
      packScaledGemm(lhs, lhsContract, rhs, rhsContract);
  if (!packed)
    return packed.takeError();
  llvm::Expected<std::string> kernel = selectGemmKernel(
      library.kernels, packed->rhsScaling, packed->m, promotion);
  if (!kernel)
    return llvm::createStringError(library.origin + ": " +
                                   llvm::toString(kernel.takeError()));
  return run(*packed, *kernel, {}, out);
}

llvm::Error CudaGemmEngine::groupedScaledGemm(
    const numerics::QuantizedTensor &x, llvm::ArrayRef<int64_t> sizes,
    const numerics::QuantizedTensor &w, int wContract, int64_t promotion,
    float *out) {
  int64_t rows = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  if (rows == 0)
    return llvm::Error::success();
  llvm::Expected<std::string> kernel = selectGemmKernel(
      library.kernels, RhsScaling::Block128, rows, promotion, /*grouped=*/true);
  if (!kernel) {
    // A library without expert kernels (an older --kernels cubin): one
    // GEMM per expert.
    llvm::consumeError(kernel.takeError());
    return ScaledGemmEngine::groupedScaledGemm(x, sizes, w, wContract,
                                               promotion, out);
  }
  // (The fallback above is timed by the GEMMs it makes.)
  EngineTimer timer(mutex, stats.engineSeconds);
  std::optional<GemmKernelConfig> config = GemmKernelConfig::parse(*kernel);
  llvm::Expected<PackedGemm> packed =
      packGroupedScaledGemm(x, sizes, w, wContract, config->tileM);
  if (!packed)
    return packed.takeError();
  return run(*packed, *kernel, packed->packedRows, out);
}

llvm::Error CudaGemmEngine::run(const PackedGemm &p, const std::string &name,
                                llvm::ArrayRef<int64_t> rows, float *out) {
  // The epilogue stores pairs: an odd N gets an even row stride, and the
  // rows are compacted after the download.
  int64_t ldd = (p.n + 1) / 2 * 2;
  size_t outBytes = size_t(p.m) * ldd * sizeof(float);
  bool grouped = p.groups > 1 || !p.groupIndex.empty();

  std::lock_guard<std::mutex> lock(mutex);
  if (llvm::Error e = context.makeCurrent())
    return e;
  // Each operand into its buffer, grown first if it is too small.
  auto put = [&](DeviceBuffer &to, const auto &host,
                 const llvm::Twine &what) -> llvm::Error {
    size_t bytes = host.size() * sizeof(host[0]);
    if (llvm::Error e = reserve(to, bytes, what))
      return e;
    return context.upload(to, host.data(), bytes, what, stream->get());
  };
  if (llvm::Error e = put(a, p.a, "A of " + name))
    return e;
  if (llvm::Error e = put(b, p.b, "B of " + name))
    return e;
  if (llvm::Error e = put(scaleA, p.scaleA, "A's scales for " + name))
    return e;
  if (llvm::Error e = put(scaleB, p.scaleB, "B's scales for " + name))
    return e;
  if (grouped)
    if (llvm::Error e = put(groupIndex, p.groupIndex, "the experts of " + name))
      return e;
  if (llvm::Error e = reserve(d, outBytes, "D of " + name))
    return e;

  GemmArguments args;
  args.a = a.get();
  args.b = b.get();
  args.d = d.get();
  args.scaleA = scaleA.get();
  args.scaleB = scaleB.get();
  args.groupIndex = grouped ? groupIndex.get() : 0;
  args.m = p.m;
  args.n = p.n;
  args.k = p.k;
  args.ldd = ldd;
  args.groups = p.groups;
  // A training step repeats its shapes: the tensor maps are encoded and
  // uploaded once per shape, not once per GEMM.
  auto key = std::make_tuple(name, p.m, p.n, p.k, p.groups);
  auto cached = launches.find(key);
  if (cached == launches.end()) {
    llvm::Expected<GemmLaunch> prepared =
        GemmLaunch::prepare(context, *module, name, args);
    if (!prepared)
      return prepared.takeError();
    cached = launches.emplace(key, std::move(*prepared)).first;
  }
  const GemmLaunch *launch = &cached->second;
  const DriverApi &api = context.api();
  if (poisonOutputs)
    if (llvm::Error e =
            api.check(api.memsetD8Async(d.get(), 0xFF, outBytes, stream->get()),
                      "cuMemsetD8Async", "poisoning D of " + name))
      return e;
  // A fault inside the kernel surfaces in the wait: it names the kernel.
  llvm::Expected<float> ms = stream->time(
      [&] { return launch->launch(stream->get()); },
      llvm::formatv("{0} (M={1} N={2} K={3})", name, p.m, p.n, p.k));
  if (!ms)
    return ms.takeError();
  if (ldd == p.n && rows.empty()) {
    if (llvm::Error e =
            context.download(out, d, outBytes, "D of " + name, stream->get()))
      return e;
  } else {
    std::vector<float> padded(size_t(p.m) * ldd);
    if (llvm::Error e = context.download(padded.data(), d, outBytes,
                                         "D of " + name, stream->get()))
      return e;
    int64_t count = rows.empty() ? p.m : int64_t(rows.size());
    for (int64_t i = 0; i < count; ++i) {
      int64_t from = rows.empty() ? i : rows[i];
      std::memcpy(out + i * p.n, padded.data() + from * ldd,
                  p.n * sizeof(float));
    }
  }
  ++stats.gemms;
  // Useful work only: the expert kernels' padding rows do not count.
  int64_t usefulRows = rows.empty() ? p.m : int64_t(rows.size());
  stats.flops += 2.0 * double(usefulRows) * double(p.n) * double(p.k);
  stats.kernelSeconds += *ms * 1e-3;
  ++stats.launches[name];
  return llvm::Error::success();
}

CudaGemmEngine::Stats CudaGemmEngine::getStats() const {
  std::lock_guard<std::mutex> lock(mutex);
  return stats;
}
