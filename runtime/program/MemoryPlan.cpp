//===- MemoryPlan.cpp - Static buffer placement from liveness -------------===//

#include "octet/Runtime/MemoryPlan.h"

#include <algorithm>
#include <map>
#include <set>

using namespace octet::runtime;

int64_t octet::runtime::bufferTypeSize(BufferType t) {
  switch (t) {
  case BufferType::F32:
  case BufferType::I32:
    return 4;
  case BufferType::BF16:
    return 2;
  case BufferType::I64:
    return 8;
  }
  return 4;
}

MemoryPlan octet::runtime::planMemory(const Program &program,
                                      const Function &function,
                                      int64_t alignment,
                                      ElementBytes elementBytes) {
  // Lifetimes of the values the body defines.
  std::map<int64_t, BufferPlacement> live;
  int64_t end = int64_t(function.body.size());
  for (int64_t i = 0; i < end; ++i) {
    const Instruction &inst = function.body[i];
    for (int64_t r : inst.results) {
      const Buffer &b = program.buffers[r];
      int64_t size = elementBytes ? elementBytes(r) : bufferTypeSize(b.dtype);
      if (size <= 0)
        continue;
      BufferPlacement &p = live[r];
      p.buffer = r;
      p.firstUse = p.lastUse = i;
      p.bytes = std::max<int64_t>(1, b.numElements()) * size;
    }
    for (int64_t o : inst.operands) {
      auto it = live.find(o);
      if (it != live.end())
        it->second.lastUse = i;
    }
  }
  for (int64_t r : function.results) {
    auto it = live.find(r);
    if (it != live.end())
      it->second.lastUse = end;
  }

  MemoryPlan plan;
  std::vector<BufferPlacement> order;
  for (auto &[id, p] : live) {
    plan.unsharedBytes += p.bytes;
    order.push_back(p);
  }
  // The lower bound: the most bytes live at once.
  for (int64_t i = 0; i <= end; ++i) {
    int64_t sum = 0;
    for (const BufferPlacement &p : order)
      if (p.firstUse <= i && i <= p.lastUse)
        sum += p.bytes;
    plan.peakLiveBytes = std::max(plan.peakLiveBytes, sum);
  }

  // Largest first, then earliest: the usual greedy for interval packing.
  std::sort(order.begin(), order.end(),
            [](const BufferPlacement &a, const BufferPlacement &b) {
              if (a.bytes != b.bytes)
                return a.bytes > b.bytes;
              return a.buffer < b.buffer;
            });
  auto alignUp = [&](int64_t v) {
    return (v + alignment - 1) / alignment * alignment;
  };
  std::vector<BufferPlacement> placed;
  for (BufferPlacement p : order) {
    // Occupied ranges of the placed values whose lifetimes overlap p's.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (const BufferPlacement &q : placed)
      if (q.firstUse <= p.lastUse && p.firstUse <= q.lastUse)
        busy.push_back({q.offset, q.offset + q.bytes});
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [begin, stop] : busy) {
      if (offset + p.bytes <= begin)
        break;
      offset = std::max(offset, alignUp(stop));
    }
    p.offset = offset;
    plan.arenaBytes = std::max(plan.arenaBytes, offset + p.bytes);
    placed.push_back(p);
  }
  std::sort(placed.begin(), placed.end(),
            [](const BufferPlacement &a, const BufferPlacement &b) {
              return a.buffer < b.buffer;
            });
  plan.placements = std::move(placed);
  return plan;
}
