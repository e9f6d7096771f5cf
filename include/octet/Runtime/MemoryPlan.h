//===- MemoryPlan.h - Static buffer placement from liveness -----*- C++ -*-===//
//
// Places the values a function computes in one arena, reusing the memory of
// values that are dead: each value lives from the instruction that defines
// it to its last use (to the end, for results), and two values share bytes
// only if their lifetimes do not overlap (an instruction's results never
// share its operands' bytes). Arguments, constants and the parameters'
// state live outside the arena. Placement is greedy: largest
// value first, at the lowest offset free for its lifetime (first fit), with
// every offset aligned.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_MEMORYPLAN_H
#define OCTET_RUNTIME_MEMORYPLAN_H

#include "octet/Runtime/Program.h"

#include "llvm/ADT/STLFunctionalExtras.h"

#include <cstdint>
#include <vector>

namespace octet::runtime {

/// Bytes per element of a buffer type (BF16 is 2, as on the device).
int64_t bufferTypeSize(BufferType t);

struct BufferPlacement {
  int64_t buffer = -1;
  int64_t offset = 0, bytes = 0;
  /// Index of the defining instruction and of the last instruction that
  /// reads it (the function's length for results).
  int64_t firstUse = 0, lastUse = 0;
};

struct MemoryPlan {
  std::vector<BufferPlacement> placements;
  /// Bytes of the arena, and what the same values would take unshared.
  int64_t arenaBytes = 0, unsharedBytes = 0;
  /// The largest sum of simultaneously live values: no placement beats it.
  int64_t peakLiveBytes = 0;
};

/// The bytes an element of buffer `id` takes in the arena; 0 leaves the
/// buffer out of it (it has storage of its own).
using ElementBytes = llvm::function_ref<int64_t(int64_t id)>;

/// Plans `function` of `program`; offsets are multiples of `alignment`.
/// Elements take bufferTypeSize bytes (as on the device) unless
/// `elementBytes` says otherwise (the CPU executor's storage).
MemoryPlan planMemory(const Program &program, const Function &function,
                      int64_t alignment = 256,
                      ElementBytes elementBytes = nullptr);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_MEMORYPLAN_H
