//===- Parallel.h - Thread pool for the CPU reference kernels ---*- C++ -*-===//
//
// A small fixed pool shared by the numerics library and the CPU kernels. Work
// is split into contiguous index ranges; callers keep results independent of
// the split (each output element is owned by one range), so outputs do not
// depend on the thread count.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_PARALLEL_H
#define OCTET_NUMERICS_PARALLEL_H

#include <cstdint>
#include <functional>

namespace octet::numerics {

/// Threads the pool uses: OCTET_NUM_THREADS if set, else the hardware's.
int getNumThreads();

/// Changes the pool size (tests use 1 and 2 to check determinism).
void setNumThreads(int threads);

/// Runs `body(begin, end)` over [0, n) split into at most getNumThreads()
/// contiguous ranges of at least `grain` indices, and waits for all.
/// Nested calls run inline on the calling thread.
void parallelFor(int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)> &body);

} // namespace octet::numerics

#endif // OCTET_NUMERICS_PARALLEL_H
