//===- QuantizeKernel.h - FP8 quantization kernels for Hopper ---*- C++ -*-===//
//
// The CUDA side of octet_tq.quantize and requantize_transposed: kernels
// written as gpu.funcs in the NVVM dialect, bit-identical to the numerics
// library's quantization. Their contract is QuantizeKernelABI.h.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TARGET_CUDA_QUANTIZEKERNEL_H
#define OCTET_TARGET_CUDA_QUANTIZEKERNEL_H

#include "octet/Runtime/QuantizeKernelABI.h"

#include "mlir/IR/Builders.h"

namespace mlir::gpu {
class GPUFuncOp;
} // namespace mlir::gpu

namespace octet::cuda {

using QuantizeKernelSpec = octet::runtime::QuantizeKernelConfig;

/// Builds the kernel for `spec` at the builder's insertion point, inside a
/// gpu.module.
mlir::gpu::GPUFuncOp buildQuantizeKernel(mlir::OpBuilder &builder,
                                         mlir::Location loc,
                                         const QuantizeKernelSpec &spec);

} // namespace octet::cuda

#endif // OCTET_TARGET_CUDA_QUANTIZEKERNEL_H
