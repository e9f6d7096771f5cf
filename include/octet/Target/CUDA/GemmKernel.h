//===- GemmKernel.h - Block-scaled FP8 GEMM kernels for Hopper --*- C++ -*-===//
//
// The CUDA side of `octet_tq.scaled_matmul`: a description of one generated
// kernel (GemmKernelSpec), the builder that writes it as a `gpu.func` in
// the NVVM dialect, and the compilation of `gpu.module`s to PTX or cubin.
//
// Kernel ABI (every variant; all matrices row-major, FP8 operands K-major):
//   (tmapA, tmapB : !llvm.ptr   CUtensorMap (128 bytes) in global memory,
//    d            : !llvm.ptr<1> output, ldd elements per row,
//    scaleA       : !llvm.ptr<1> f32 [K/128][M] (one scale per row and group),
//    scaleB       : !llvm.ptr<1> f32; Block128: [groups][ceil(N/128)][K/128],
//                                     PerRow:   [K/128][N],
//    groupIndex   : !llvm.ptr<1> i32 [M] expert of each row (grouped only;
//                                 -1 marks padding rows),
//    m, n, k, ldd : i32)
// tmapA covers A [M, K] (uint8, box 128 x tileM, 128-byte swizzle); tmapB
// covers B [groups * N, K] (box 128 x tileN). The grid is persistent: at most
// one CTA per SM, each walking output tiles with a stride of gridDim.x.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TARGET_CUDA_GEMMKERNEL_H
#define OCTET_TARGET_CUDA_GEMMKERNEL_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/LogicalResult.h"

#include <cstdint>
#include <string>

namespace mlir::gpu {
class GPUFuncOp;
} // namespace mlir::gpu

namespace octet::cuda {

/// How the right-hand operand is scaled.
enum class RhsScaling {
  /// One scale per 128x128 block (Fprop, Dgrad): `*_1d2d` kernels.
  Block128,
  /// One scale per row of B and 128-group of K (Wgrad, both operands
  /// 1x128 along K after the transposition): `*_1d1d` kernels.
  PerRow,
};

struct GemmKernelSpec {
  RhsScaling rhsScaling = RhsScaling::Block128;
  /// MoE grouped GEMM over a contiguous expert layout: each tileM rows of A
  /// belong to one expert, whose B is rows [e*N, (e+1)*N) of tmapB.
  bool grouped = false;
  int64_t tileM = 128; ///< 64 per consumer warpgroup: 64 or 128.
  int64_t tileN = 128; ///< wgmma N: a multiple of 8, at most 128.
  int64_t tileK = 128; ///< One scaling group (128 FP8 = one swizzled row).
  int64_t stages = 4;  ///< Shared-memory ring depth.
  int64_t promotion = 128; ///< K-elements between promotions: 32, 64, 128.
  bool outputBF16 = true;  ///< Otherwise FP32 output.

  /// Checks the combination is one the generator supports.
  llvm::LogicalResult verify(llvm::raw_ostream &os) const;

  int64_t numConsumers() const { return tileM / 64; }
  /// One producer warpgroup plus the consumers.
  int64_t numThreads() const { return 128 * (1 + numConsumers()); }
  int64_t stageBytes() const { return (tileM + tileN) * tileK; }
  /// Dynamic shared memory the launch must provide.
  int64_t sharedMemoryBytes() const { return stages * stageBytes() + stages * 16; }
  /// e.g. `octet_gemm_1d2d_bf16_m128n128k128_s5_p128` (`_grouped` suffix).
  std::string name() const;
};

/// The largest dynamic shared memory of one CTA on sm_90 (227 KiB).
constexpr int64_t kSm90MaxSharedMemory = 232448;
/// Registers per thread after `setmaxnreg` (producer, consumers).
constexpr int64_t kProducerRegisters = 40;
constexpr int64_t kConsumerRegisters = 232;

/// Builds the kernel for `spec` at the builder's insertion point, which must
/// be inside a `gpu.module` that holds (or will get, see
/// getOrCreateSharedMemoryGlobal) the dynamic shared memory symbol.
mlir::gpu::GPUFuncOp buildGemmKernel(mlir::OpBuilder &builder,
                                     mlir::Location loc,
                                     const GemmKernelSpec &spec);

/// Output of compileGpuModules.
enum class BinaryFormat { PTX, Cubin };

/// Attaches the sm_90a NVVM target to every `gpu.module` in `module`, lowers
/// them to LLVM and serializes them (PTX via LLVM's NVPTX backend; cubin by
/// also running the CUDA toolkit's ptxas). The gpu.modules become
/// `gpu.binary` ops. `toolkitPath` may be empty (then CUDA_ROOT, PATH and
/// /usr/local/cuda are searched).
llvm::LogicalResult compileGpuModules(mlir::ModuleOp module,
                                      BinaryFormat format,
                                      llvm::StringRef toolkitPath = "");

/// Runs --octet-select-gemm-tiles (for `numSMs` multiprocessors) and
/// --octet-generate-gemm-kernels on `module`.
llvm::LogicalResult generateGemmKernels(mlir::ModuleOp module, int64_t numSMs);

/// Registers what compileGpuModules needs (NVVM target, LLVM IR
/// translations, conversion interfaces) in `registry`.
void registerGpuCompilation(mlir::DialectRegistry &registry);

} // namespace octet::cuda

#endif // OCTET_TARGET_CUDA_GEMMKERNEL_H
