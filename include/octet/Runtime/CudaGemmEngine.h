//===- CudaGemmEngine.h - FP8 linears' GEMMs on the GPU ---------*- C++ -*-===//
//
// The first piece of `octet-run --device cuda`: a ScaledGemmEngine that runs
// every block-scaled GEMM of a program's FP8 linears (Fprop, Dgrad, Wgrad,
// dense and per expert) with the compiler-generated kernels, while the
// executor keeps everything else, quantization included, on the CPU. Each
// GEMM packs its operands (packScaledGemm), uploads them into device
// buffers that grow to the largest GEMM and are then reused, launches the
// kernel that selectGemmKernel picks from a kernel library on one stream,
// and reads the FP32 result back. Copies and launches all go on the
// engine's stream, never the legacy default one, so that engines of ranks
// sharing a GPU do not wait for each other. Calls from several threads
// (pipeline ranks) take turns.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUDAGEMMENGINE_H
#define OCTET_RUNTIME_CUDAGEMMENGINE_H

#include "octet/Runtime/CudaGemm.h"
#include "octet/Runtime/FP8Linear.h"
#include "octet/Runtime/GemmOperands.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace octet::runtime::cuda {

/// A cubin of generated GEMM kernels and the names of its kernels.
struct KernelLibrary {
  std::string image;                ///< The cubin.
  std::vector<std::string> kernels; ///< Kernel names (GemmKernelConfig).
  std::string origin;               ///< Where it came from, for messages.

  /// The library built into the runtime (runtime/cuda/FP8GemmLibrary.mlir:
  /// FP32-output 1d2d and 1d1d kernels, 64- and 128-row tiles, promotion
  /// every 32, 64 or 128); an error in builds without the CUDA toolkit.
  static llvm::Expected<KernelLibrary> builtin();
  /// A cubin written by `octetc --emit=cubin --kernel-manifest`, and its
  /// manifest (by default the cubin's path with .json for .cubin).
  static llvm::Expected<KernelLibrary> load(llvm::StringRef cubinPath,
                                            llvm::StringRef manifestPath = "");
};

class CudaGemmEngine : public cpu::ScaledGemmEngine {
public:
  /// Loads `library` on device `ordinal`, which must be an sm_90 GPU.
  static llvm::Expected<std::unique_ptr<CudaGemmEngine>>
  create(KernelLibrary library, int ordinal = 0);
  ~CudaGemmEngine() override;

  llvm::Error scaledGemm(const numerics::QuantizedTensor &lhs, int lhsContract,
                         const numerics::QuantizedTensor &rhs, int rhsContract,
                         int64_t promotion, float *out) override;
  /// With an expert kernel in the library: all experts in one launch over
  /// the contiguous layout (packGroupedScaledGemm); otherwise one GEMM per
  /// expert.
  llvm::Error groupedScaledGemm(const numerics::QuantizedTensor &x,
                                llvm::ArrayRef<int64_t> sizes,
                                const numerics::QuantizedTensor &w,
                                int wContract, int64_t promotion,
                                float *out) override;

  /// Fill the output buffer with NaN before every launch, so that a
  /// kernel that leaves part of it unwritten shows (tests).
  void setPoisonOutputs(bool poison) { poisonOutputs = poison; }

  const Context &getContext() const { return context; }
  const KernelLibrary &getLibrary() const { return library; }

  struct Stats {
    int64_t gemms = 0;
    double flops = 0;
    /// Time on the GPU, kernels only (events around each launch).
    double kernelSeconds = 0;
    /// Wall time in the engine, packing and copies included: what running
    /// the GEMMs from host memory costs beyond the kernels.
    double engineSeconds = 0;
    /// Launches per kernel name.
    std::map<std::string, int64_t> launches;
  };
  Stats getStats() const;

private:
  CudaGemmEngine(Context context, KernelLibrary library);

  /// A device buffer of at least `bytes` (Context::reserve); the prepared
  /// launches go when it moves.
  llvm::Error reserve(DeviceBuffer &buffer, size_t bytes,
                      const llvm::Twine &what);
  /// Uploads `p`, runs `name` on it (`groups` > 1: an expert kernel) and
  /// downloads D's rows `rows` (all of them when empty) into `out`.
  llvm::Error run(const PackedGemm &p, const std::string &name,
                  llvm::ArrayRef<int64_t> rows, float *out);

  Context context;
  std::optional<KernelModule> module; ///< Refers to `context`.
  KernelLibrary library;
  std::optional<TimedStream> stream; ///< Refers to `context`.
  DeviceBuffer a, b, scaleA, scaleB, d, groupIndex;
  /// Launches prepared for (kernel, M, N, K, groups) on the buffers above;
  /// cleared when a buffer is reallocated.
  std::map<std::tuple<std::string, int64_t, int64_t, int64_t, int64_t>,
           GemmLaunch>
      launches;
  mutable std::mutex mutex;
  Stats stats;
  bool poisonOutputs = false;
};

} // namespace octet::runtime::cuda

#endif // OCTET_RUNTIME_CUDAGEMMENGINE_H
