//===- BenchCommon.h - Shared by octet-bench's benchmarks -------*- C++ -*-===//

#ifndef OCTET_TOOLS_OCTET_BENCH_BENCHCOMMON_H
#define OCTET_TOOLS_OCTET_BENCH_BENCHCOMMON_H

#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace octet::bench {

/// Prints "octet-bench: error: <message>" and returns the exit code 1.
inline int fail(llvm::Error error) {
  llvm::errs() << "octet-bench: error: " << llvm::toString(std::move(error))
               << "\n";
  return 1;
}

/// GPU benchmarks (GemmBench.cpp), built with the CUDA toolkit.
int benchGemm(const std::vector<std::string> &args);
int benchQuant(const std::vector<std::string> &args);

} // namespace octet::bench

#endif // OCTET_TOOLS_OCTET_BENCH_BENCHCOMMON_H
