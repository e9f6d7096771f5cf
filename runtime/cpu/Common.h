//===- Common.h - Helpers shared by the CPU kernels -------------*- C++ -*-===//

#ifndef OCTET_RUNTIME_CPU_COMMON_H
#define OCTET_RUNTIME_CPU_COMMON_H

#include "octet/Numerics/Gemm.h"
#include "octet/Numerics/Parallel.h"

#include <algorithm>
#include <cstdint>

namespace octet::cpu::detail {

using numerics::gemm;
using numerics::parallelFor;
using numerics::Trans;

/// Elements below which splitting work across threads costs more than it
/// saves.
constexpr int64_t kMinTaskElements = 1 << 14;

/// Rows per task for row-wise work on rows of `width` elements.
inline int64_t rowGrain(int64_t width) {
  return std::max<int64_t>(1, kMinTaskElements / std::max<int64_t>(1, width));
}

/// Runs body(begin, end) over [0, n) elements in parallel.
template <typename Body> void parallelElements(int64_t n, Body body) {
  parallelFor(n, kMinTaskElements, body);
}

} // namespace octet::cpu::detail

#endif // OCTET_RUNTIME_CPU_COMMON_H
