//===- KernelManifest.h - Which generated kernel computes what --*- C++ -*-===//
//
// The JSON that `octetc --emit=ptx|cubin --kernel-manifest` writes beside
// the kernels: per FP8 GEMM its function, shape, operand granularities,
// which operands the runtime passes transposed and the kernel's name; per
// quantization its shape, granularity and kernel.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_KERNELMANIFEST_H
#define OCTET_RUNTIME_KERNELMANIFEST_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace octet::runtime {

struct ManifestGemm {
  std::string function, kernel, lhs, rhs;
  int64_t m = 0, n = 0, k = 0;
  int64_t groups = 1; ///< Experts of a grouped GEMM.
  bool transposeLhs = false, transposeRhs = false;
};

struct ManifestQuantization {
  std::string function, kernel, granularity;
  int64_t batch = 1, rows = 0, cols = 0;
  double epsilon = 1e-6; ///< RMSNorm's, for the fused kernel.
};

struct KernelManifest {
  std::vector<ManifestGemm> gemms;
  std::vector<ManifestQuantization> quantizations;
};

/// Reads a manifest; errors name the file and what is malformed.
llvm::Expected<KernelManifest> readKernelManifest(llvm::StringRef path);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_KERNELMANIFEST_H
