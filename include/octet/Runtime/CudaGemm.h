//===- CudaGemm.h - Launching the generated FP8 GEMM kernels ----*- C++ -*-===//
//
// Loads a cubin of compiler-generated kernels and launches its block-scaled
// FP8 GEMMs by the contract of GemmKernelABI.h: the launcher encodes the
// TMA tensor maps, sizes the persistent grid and the shared memory from the
// kernel's name, and checks the operands before the GPU sees them.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUDAGEMM_H
#define OCTET_RUNTIME_CUDAGEMM_H

#include "octet/Runtime/CudaDriver.h"
#include "octet/Runtime/GemmKernelABI.h"

namespace octet::runtime::cuda {

/// A loaded cubin.
class KernelModule {
public:
  static llvm::Expected<KernelModule> load(const Context &context,
                                           llvm::StringRef image,
                                           const llvm::Twine &what);
  KernelModule(KernelModule &&other) { *this = std::move(other); }
  KernelModule &operator=(KernelModule &&other);
  ~KernelModule();

  llvm::Expected<CUfunction> function(llvm::StringRef name) const;

private:
  KernelModule() = default;
  /// Unloads the module (destructor and move assignment).
  void release();
  const Context *context = nullptr;
  CUmodule module = nullptr;
  std::string what;
};

/// Device operands of one GEMM; layouts in GemmKernelABI.h.
struct GemmArguments {
  CUdeviceptr a = 0, b = 0, d = 0, scaleA = 0, scaleB = 0, groupIndex = 0;
  int64_t m = 0, n = 0, k = 0, ldd = 0;
  /// Experts stacked in B (grouped kernels).
  int64_t groups = 1;
};

/// One kernel bound to its operands: the tensor maps are encoded and
/// uploaded once, then the GEMM can be launched any number of times.
class GemmLaunch {
public:
  static llvm::Expected<GemmLaunch> prepare(const Context &context,
                                            const KernelModule &module,
                                            llvm::StringRef kernelName,
                                            const GemmArguments &args);
  llvm::Error launch(CUstream stream) const;
  const GemmKernelConfig &getConfig() const { return config; }
  unsigned getGridSize() const { return grid; }

private:
  GemmLaunch() = default;
  const Context *context = nullptr;
  CUfunction function = nullptr;
  GemmKernelConfig config;
  GemmArguments args;
  DeviceBuffer tensorMaps;
  std::string name;
  unsigned grid = 0;
};

} // namespace octet::runtime::cuda

#endif // OCTET_RUNTIME_CUDAGEMM_H
