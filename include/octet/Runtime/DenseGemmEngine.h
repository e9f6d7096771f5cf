//===- DenseGemmEngine.h - Where the BF16 and FP32 GEMMs run ----*- C++ -*-===//
//
// The GEMMs the recipe keeps in high precision (the BF16 and FP32 linears,
// the batched products, and their gradients; fused attention keeps its
// own) as one description each, so
// that a backend can take them over: the CPU executor hands every one of
// them to a DenseGemmEngine when it has one (CpuExecutor::
// setDenseGemmEngine), and computes them with numerics::gemm otherwise.
// The CUDA backend's engine runs them with cuBLASLt (CudaDenseGemmEngine.h).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_DENSEGEMMENGINE_H
#define OCTET_RUNTIME_DENSEGEMMENGINE_H

#include "octet/Numerics/Gemm.h"

#include "llvm/Support/Error.h"

#include <atomic>
#include <cstdint>

namespace octet::cpu {

/// For b < batch: C_b = (accumulate ? C_b : 0) + op(A_b) op(B_b), row-major,
/// as numerics::gemm defines it, with X_b = x + b * strideX.
struct DenseGemm {
  numerics::Trans transA = numerics::Trans::No, transB = numerics::Trans::No;
  int64_t m = 0, n = 0, k = 0;
  const float *a = nullptr;
  int64_t lda = 0, strideA = 0;
  const float *b = nullptr;
  int64_t ldb = 0, strideB = 0;
  float *c = nullptr;
  int64_t ldc = 0, strideC = 0;
  int64_t batch = 1;
  bool accumulate = false;
  /// A and B hold BF16 values (the recipe rounded them): an engine may
  /// convert them to BF16 without changing them. The sums are FP32.
  bool bf16Inputs = false;
};

class DenseGemmEngine {
public:
  virtual ~DenseGemmEngine() = default;
  /// Called from several threads at once by pipeline ranks.
  virtual llvm::Error gemm(const DenseGemm &g) = 0;
};

/// `g` on the CPU with numerics::gemm (the batches in parallel): what the
/// executor computes without an engine, bit for bit.
void runDenseGemm(const DenseGemm &g);

/// An error naming the first element of A or B that is not a BF16 value,
/// when g.bf16Inputs says they all are; success otherwise.
llvm::Error checkBF16Inputs(const DenseGemm &g);

/// The engine octet-run --emulate-gemm-kernels installs: checks what a GPU
/// engine relies on (BF16 inputs where promised), then runDenseGemm, and
/// counts the GEMMs.
class CheckedDenseGemmEngine : public DenseGemmEngine {
public:
  llvm::Error gemm(const DenseGemm &g) override;
  int64_t getCount() const { return count; }

private:
  std::atomic<int64_t> count{0};
};

} // namespace octet::cpu

#endif // OCTET_RUNTIME_DENSEGEMMENGINE_H
