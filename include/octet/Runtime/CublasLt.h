//===- CublasLt.h - cuBLASLt GEMMs, loaded at run time ----------*- C++ -*-===//
//
// cuBLASLt serves the GEMMs the recipe keeps in BF16, and is the peer the
// generated FP8 kernels are measured against. The library is loaded at run
// time (libcublasLt.so.13, or the path in OCTET_CUBLASLT), so nothing links
// it and a machine without it gets a clear error.
//
// The peers' problems are row-major D[M, N] = A[M, K] . B[N, K]^T, both
// operands K-major, BF16 output (cuBLASLt's column-major D^T = B . A^T);
// the runtime's dense GEMMs (CublasDenseGemm) take any layout, batched,
// with FP32 output.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUBLASLT_H
#define OCTET_RUNTIME_CUBLASLT_H

#include "octet/Runtime/CudaDriver.h"

#include <cublasLt.h>

#include <memory>

namespace octet::runtime::cuda {

enum class CublasGemmKind {
  /// E4M3 operands; A scaled per row and 128-group of K (VEC128, FP32
  /// [K/128][M]), B per 128x128 block (BLK128x128, FP32
  /// [ceil(N/128)][K/128]).
  BlockScaledFP8,
  /// E4M3 operands, one FP32 scale each (device pointers).
  PerTensorFP8,
  /// BF16 operands, no scales.
  BF16,
};

struct CublasGemm {
  CublasGemmKind kind = CublasGemmKind::BF16;
  CUdeviceptr a = 0, b = 0, d = 0, scaleA = 0, scaleB = 0;
  int64_t m = 0, n = 0, k = 0;
};

/// A row-major dense GEMM with FP32 accumulation and FP32 output, as
/// cpu::DenseGemm describes one (device pointers, leading dimensions and
/// batch strides in elements): for b < batch, D_b = beta D_b + op(A_b)
/// op(B_b), beta 1 when accumulating.
struct CublasDenseGemm {
  bool bf16 = false; ///< BF16 operands; FP32 otherwise (no TF32).
  bool transA = false, transB = false;
  CUdeviceptr a = 0, b = 0, d = 0;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;
  int64_t strideA = 0, strideB = 0, strideD = 0, batch = 1;
  bool accumulate = false;
};

class CublasLt {
public:
  static llvm::Expected<std::unique_ptr<CublasLt>> load(const Context &context);
  ~CublasLt();

  /// A GEMM with its descriptors and the algorithm cuBLASLt's heuristic
  /// picked, ready to run.
  class Plan {
  public:
    ~Plan();
    Plan(Plan &&other);
    Plan &operator=(Plan &&) = delete;

  private:
    friend class CublasLt;
    Plan() = default;
    const CublasLt *lt = nullptr;
    CublasGemm gemm;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t layoutA = nullptr, layoutB = nullptr,
                           layoutD = nullptr;
    cublasLtMatmulAlgo_t algo;
    float beta = 0;
  };

  llvm::Expected<Plan> plan(const CublasGemm &gemm) const;
  llvm::Expected<Plan> plan(const CublasDenseGemm &gemm) const;
  llvm::Error run(const Plan &plan, CUstream stream) const;

private:
  struct Api;
  CublasLt() = default;
  llvm::Error check(cublasStatus_t status, llvm::StringRef call,
                    const llvm::Twine &what) const;
  /// The heuristic's first algorithm for p's descriptors.
  llvm::Error pickAlgorithm(Plan &p, const std::string &what) const;

  const Context *context = nullptr;
  std::unique_ptr<Api> api;
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer workspace;
};

} // namespace octet::runtime::cuda

#endif // OCTET_RUNTIME_CUBLASLT_H
