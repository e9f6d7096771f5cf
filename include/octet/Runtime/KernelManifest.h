//===- KernelManifest.h - Which generated kernel computes what --*- C++ -*-===//
//
// The JSON that `octetc --emit=ptx|cubin --kernel-manifest` writes beside
// the kernels: per FP8 GEMM its function, shape, operand granularities,
// which operands the runtime passes transposed, how an expert GEMM is
// grouped and the kernel's name; per
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
  /// "" for a dense GEMM; "m" for the expert GEMM whose 128-row tiles each
  /// take one expert (one launch); "k" for the expert Wgrad, the dense
  /// kernel launched once per expert on its rows (m x n per expert, k the
  /// aligned rows of all experts).
  std::string grouping;
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
/// The same from the manifest's text; errors name it `path`.
llvm::Expected<KernelManifest> parseKernelManifest(llvm::StringRef text,
                                                   llvm::StringRef path);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_KERNELMANIFEST_H
