//===- CudaQuantize.h - Launching the generated quantization kernels -*- C++ -*-===//
//
// Launches the kernels of QuantizeKernelABI.h with their grids, after
// checking the shapes they require.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUDAQUANTIZE_H
#define OCTET_RUNTIME_CUDAQUANTIZE_H

#include "octet/Runtime/CudaGemm.h"
#include "octet/Runtime/QuantizeKernelABI.h"

namespace octet::runtime::cuda {

struct QuantizeArguments {
  /// BF16/FP32 input, or the FP8 input of a re-quantization.
  CUdeviceptr input = 0;
  /// The 1x128 scales of a re-quantization's input, RMSNorm's gamma or
  /// SwiGLU's up operand.
  CUdeviceptr inputScales = 0;
  /// RMSNorm's epsilon.
  float epsilon = 1e-6f;
  CUdeviceptr q = 0, scales = 0;
  int64_t rows = 0, cols = 0, batch = 1;
};

llvm::Error launchQuantize(const Context &context, const KernelModule &module,
                           llvm::StringRef kernelName,
                           const QuantizeArguments &args, CUstream stream);

} // namespace octet::runtime::cuda

#endif // OCTET_RUNTIME_CUDAQUANTIZE_H
