//===- CudaGemm.cpp - Launching the generated FP8 GEMM kernels ------------===//

#include "octet/Runtime/CudaGemm.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <climits>

using namespace octet::runtime;
using namespace octet::runtime::cuda;

llvm::Expected<KernelModule> KernelModule::load(const Context &context,
                                                llvm::StringRef image,
                                                const llvm::Twine &what) {
  KernelModule m;
  m.context = &context;
  m.what = what.str();
  const DriverApi &d = context.api();
  // cuModuleLoadData reads an ELF image of any size; keep a terminated copy
  // in case the image is PTX text.
  std::string copy = image.str();
  if (llvm::Error e = d.check(d.moduleLoadData(&m.module, copy.c_str()),
                              "cuModuleLoadData", "loading " + m.what))
    return std::move(e);
  return std::move(m);
}

KernelModule &KernelModule::operator=(KernelModule &&other) {
  if (this != &other) {
    release();
    context = other.context;
    module = other.module;
    what = std::move(other.what);
    other.module = nullptr;
  }
  return *this;
}

KernelModule::~KernelModule() { release(); }

void KernelModule::release() {
  if (context && module)
    context->api().moduleUnload(module);
  module = nullptr;
}

llvm::Expected<CUfunction> KernelModule::function(llvm::StringRef name) const {
  CUfunction f = nullptr;
  const DriverApi &d = context->api();
  std::string symbol = name.str();
  if (llvm::Error e = d.check(d.moduleGetFunction(&f, module, symbol.c_str()),
                              "cuModuleGetFunction",
                              "finding kernel " + name + " in " + what))
    return std::move(e);
  return f;
}

namespace {

/// A 2-D uint8 tensor map over `rows` x `k` bytes (K innermost) with a box
/// of 128 bytes x `boxRows` and the 128-byte swizzle the kernels' wgmma
/// descriptors assume.
llvm::Error encodeOperand(const DriverApi &d, CUtensorMap &map, CUdeviceptr base,
                          int64_t rows, int64_t k, int64_t boxRows,
                          const llvm::Twine &what) {
  cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(rows)};
  cuuint64_t strides[1] = {cuuint64_t(k)};
  cuuint32_t box[2] = {128, cuuint32_t(boxRows)};
  cuuint32_t elementStrides[2] = {1, 1};
  return d.check(d.tensorMapEncodeTiled(
                     &map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2,
                     reinterpret_cast<void *>(base), dims, strides, box,
                     elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                     CU_TENSOR_MAP_SWIZZLE_128B,
                     CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                 "cuTensorMapEncodeTiled", what);
}

} // namespace

llvm::Expected<GemmLaunch> GemmLaunch::prepare(const Context &context,
                                               const KernelModule &module,
                                               llvm::StringRef kernelName,
                                               const GemmArguments &args) {
  auto fail = [&](const llvm::Twine &why) {
    return llvm::createStringError("GEMM kernel " + kernelName + " (M=" +
                                   llvm::Twine(args.m) + " N=" +
                                   llvm::Twine(args.n) + " K=" +
                                   llvm::Twine(args.k) + "): " + why);
  };
  std::optional<GemmKernelConfig> config = GemmKernelConfig::parse(kernelName);
  if (!config)
    return fail("not the name of a generated GEMM kernel "
                "(octet_gemm_<1d2d|1d1d>_<bf16|f32>_m<M>n<N>k<K>_s<S>_p<P>)");
  if (args.m <= 0 || args.n <= 0 || args.k <= 0)
    return fail("M, N and K must be positive");
  if (args.k % config->tileK != 0)
    return fail("K must be a multiple of " + llvm::Twine(config->tileK) +
                " (the scaling group)");
  if (args.ldd < args.n || args.ldd % 2 != 0)
    return fail("the output's row stride ldd=" + llvm::Twine(args.ldd) +
                " must be even and at least N");
  if (args.groups < 1 || (!config->grouped && args.groups != 1))
    return fail("groups=" + llvm::Twine(args.groups) +
                " needs a grouped kernel");
  if (std::max({args.m, args.groups * args.n, args.k, args.ldd}) > INT_MAX)
    return fail("a dimension exceeds the kernels' 32-bit indices");
  if (!args.a || !args.b || !args.d || !args.scaleA || !args.scaleB ||
      (config->grouped && !args.groupIndex))
    return fail("an operand pointer is null");
  // The epilogue stores pairs of outputs.
  int64_t pairBytes = config->outputBF16 ? 4 : 8;
  if (args.a % 16 || args.b % 16 || args.d % pairBytes)
    return fail("A and B must be 16-byte aligned (TMA), D " +
                llvm::Twine(pairBytes) + "-byte aligned (paired stores)");

  GemmLaunch launch;
  launch.context = &context;
  launch.config = *config;
  launch.args = args;
  launch.name = kernelName.str();
  llvm::Expected<CUfunction> f = module.function(kernelName);
  if (!f)
    return f.takeError();
  launch.function = *f;
  const DriverApi &d = context.api();
  if (llvm::Error e = d.check(
          d.funcSetAttribute(*f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                             int(config->sharedMemoryBytes())),
          "cuFuncSetAttribute",
          "giving " + kernelName + " " +
              llvm::Twine(config->sharedMemoryBytes()) +
              " bytes of shared memory"))
    return std::move(e);

  CUtensorMap maps[2];
  if (llvm::Error e = encodeOperand(d, maps[0], args.a, args.m, args.k,
                                    config->tileM,
                                    "the tensor map of A for " + kernelName))
    return std::move(e);
  if (llvm::Error e = encodeOperand(d, maps[1], args.b, args.groups * args.n,
                                    args.k, config->tileN,
                                    "the tensor map of B for " + kernelName))
    return std::move(e);
  llvm::Expected<DeviceBuffer> buffer =
      context.allocate(sizeof(maps), "the tensor maps of " + kernelName);
  if (!buffer)
    return buffer.takeError();
  if (llvm::Error e = context.upload(*buffer, maps, sizeof(maps),
                                     "the tensor maps of " + kernelName))
    return std::move(e);
  launch.tensorMaps = std::move(*buffer);

  int64_t tiles = (args.m + config->tileM - 1) / config->tileM *
                  ((args.n + config->tileN - 1) / config->tileN);
  launch.grid = unsigned(std::min<int64_t>(tiles, context.multiprocessorCount()));
  return std::move(launch);
}

llvm::Error GemmLaunch::launch(CUstream stream) const {
  CUdeviceptr mapA = tensorMaps.get();
  CUdeviceptr mapB = tensorMaps.get() + sizeof(CUtensorMap);
  CUdeviceptr d = args.d, sa = args.scaleA, sb = args.scaleB,
              gi = args.groupIndex;
  int32_t m = int32_t(args.m), n = int32_t(args.n), k = int32_t(args.k),
          ldd = int32_t(args.ldd);
  void *params[] = {&mapA, &mapB, &d, &sa, &sb, &gi, &m, &n, &k, &ldd};
  const DriverApi &api = context->api();
  return api.check(api.launchKernel(function, grid, 1, 1,
                                    unsigned(config.numThreads()), 1, 1,
                                    unsigned(config.sharedMemoryBytes()),
                                    stream, params, nullptr),
                   "cuLaunchKernel", "launching " + name);
}
