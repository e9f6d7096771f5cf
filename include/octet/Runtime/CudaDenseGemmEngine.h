//===- CudaDenseGemmEngine.h - BF16 and FP32 GEMMs, cuBLASLt -*- C++ -*-===//
//
// The part of `octet-run --device cuda` that runs the GEMMs the recipe keeps
// in BF16 or FP32 (cpu::DenseGemmEngine) with cuBLASLt: each GEMM's
// operands are uploaded (BF16 operands as BF16, two bytes a value, which
// the executor's rounding makes exact) into device buffers that grow and
// are then reused, cuBLASLt runs it with FP32 accumulation and output (no
// TF32) on the engine's stream, and the result is read back. A plan
// (descriptors and the heuristic's algorithm) is made once per shape.
// Calls from several threads take turns.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUDADENSEGEMMENGINE_H
#define OCTET_RUNTIME_CUDADENSEGEMMENGINE_H

#include "octet/Runtime/CublasLt.h"
#include "octet/Runtime/DenseGemmEngine.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace octet::runtime::cuda {

class CudaDenseGemmEngine : public cpu::DenseGemmEngine {
public:
  /// Loads cuBLASLt (CublasLt::load) for device `ordinal`.
  static llvm::Expected<std::unique_ptr<CudaDenseGemmEngine>>
  create(int ordinal = 0);
  ~CudaDenseGemmEngine() override;

  llvm::Error gemm(const cpu::DenseGemm &g) override;

  struct Stats {
    int64_t gemms = 0;
    double flops = 0;
    double seconds = 0; ///< cuBLASLt's time on the GPU (events).
    /// Wall time in the engine, conversions and copies included.
    double engineSeconds = 0;
  };
  Stats getStats() const;
  const Context &getContext() const { return context; }

private:
  explicit CudaDenseGemmEngine(Context context);
  /// Context::reserve; the plans go when the buffer moves.
  llvm::Error reserve(DeviceBuffer &buffer, size_t bytes,
                      const llvm::Twine &what);

  Context context;
  std::unique_ptr<CublasLt> lt; ///< Refers to `context`.
  std::optional<TimedStream> stream; ///< Refers to `context`.
  DeviceBuffer a, b, d;
  /// Plans by shape, on the buffers above; cleared when one is reallocated.
  std::map<std::vector<int64_t>, CublasLt::Plan> plans;
  std::vector<uint16_t> staging; ///< BF16 operands on the host.
  mutable std::mutex mutex;
  Stats stats;
};

} // namespace octet::runtime::cuda

#endif // OCTET_RUNTIME_CUDADENSEGEMMENGINE_H
