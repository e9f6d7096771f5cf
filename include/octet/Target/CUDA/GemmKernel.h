//===- GemmKernel.h - Block-scaled FP8 GEMM kernels for Hopper --*- C++ -*-===//
//
// The CUDA side of `octet_tq.scaled_matmul`: a description of one generated
// kernel (GemmKernelSpec), the builder that writes it as a `gpu.func` in
// the NVVM dialect, and the compilation of `gpu.module`s to PTX or cubin.
//
// The kernel ABI (arguments, launch shape) is GemmKernelABI.h.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TARGET_CUDA_GEMMKERNEL_H
#define OCTET_TARGET_CUDA_GEMMKERNEL_H

#include "octet/Runtime/GemmKernelABI.h"

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

/// The kernel configuration is the runtime's contract (GemmKernelABI.h).
using GemmKernelSpec = octet::runtime::GemmKernelConfig;
using octet::runtime::kSm90MaxSharedMemory;
using octet::runtime::RhsScaling;

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

/// Runs --octet-fuse-quantize, --octet-select-gemm-tiles (for `numSMs`
/// multiprocessors, the overlapped promotion schedule if `overlap`),
/// --octet-generate-gemm-kernels and --octet-generate-quantize-kernels on
/// `module`.
llvm::LogicalResult generateGemmKernels(mlir::ModuleOp module, int64_t numSMs,
                                        bool overlap = false);

/// Registers what compileGpuModules needs (NVVM target, LLVM IR
/// translations, conversion interfaces) in `registry`.
void registerGpuCompilation(mlir::DialectRegistry &registry);

} // namespace octet::cuda

#endif // OCTET_TARGET_CUDA_GEMMKERNEL_H
