//===- MemoryPlanTest.cpp - Static buffer placement -----------------------===//

#include "octet/Runtime/MemoryPlan.h"

#include "gtest/gtest.h"

#include <random>

using namespace octet::runtime;

namespace {

/// A program whose one function is a random DAG of instructions over
/// buffers of random sizes.
Program randomProgram(uint32_t seed, int instructions) {
  std::mt19937 gen(seed);
  Program p;
  Function f;
  f.name = "f";
  auto newBuffer = [&](int64_t elements) {
    Buffer b;
    b.name = "%" + std::to_string(p.buffers.size());
    b.dtype = gen() % 4 == 0 ? BufferType::BF16 : BufferType::F32;
    b.shape = {elements};
    p.buffers.push_back(b);
    return int64_t(p.buffers.size() - 1);
  };
  f.arguments.push_back(newBuffer(100));
  std::vector<int64_t> defined = {f.arguments[0]};
  for (int i = 0; i < instructions; ++i) {
    Instruction inst;
    inst.op = "op";
    int operands = 1 + gen() % 3;
    for (int o = 0; o < operands; ++o)
      inst.operands.push_back(defined[gen() % defined.size()]);
    int64_t r = newBuffer(1 + gen() % 5000);
    inst.results.push_back(r);
    defined.push_back(r);
    f.body.push_back(inst);
  }
  f.results.push_back(defined.back());
  p.functions.push_back(f);
  return p;
}

/// x -> a -> b -> c -> d, 1024 f32 elements each: %0 the argument, %4 the
/// result.
Program chainProgram() {
  Program p;
  for (int i = 0; i < 5; ++i)
    p.buffers.push_back({"%" + std::to_string(i), BufferType::F32, {1024}});
  Function f;
  f.name = "chain";
  f.arguments = {0};
  for (int i = 1; i < 5; ++i)
    f.body.push_back({"op", {i - 1}, {i}, {}});
  f.results = {4};
  p.functions.push_back(f);
  return p;
}

TEST(MemoryPlanTest, LiveValuesNeverShareBytes) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    Program p = randomProgram(seed, 60);
    MemoryPlan plan = planMemory(p, p.functions[0], 256);
    ASSERT_EQ(plan.placements.size(), 60u);
    for (const BufferPlacement &a : plan.placements) {
      EXPECT_EQ(a.offset % 256, 0);
      for (const BufferPlacement &b : plan.placements) {
        if (a.buffer == b.buffer)
          continue;
        bool timeOverlap = a.firstUse <= b.lastUse && b.firstUse <= a.lastUse;
        bool spaceOverlap =
            a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
        ASSERT_FALSE(timeOverlap && spaceOverlap)
            << "seed " << seed << ": buffers " << a.buffer << " and "
            << b.buffer;
      }
    }
    EXPECT_GE(plan.arenaBytes, plan.peakLiveBytes);
    EXPECT_LE(plan.arenaBytes, plan.unsharedBytes + 256 * 60);
  }
}

TEST(MemoryPlanTest, AChainReusesMemory) {
  // x -> a -> b -> c -> d: at most two values are live at once.
  Program p = chainProgram();
  MemoryPlan plan = planMemory(p, p.functions[0]);
  EXPECT_EQ(plan.unsharedBytes, 4 * 4096);
  EXPECT_EQ(plan.peakLiveBytes, 2 * 4096);
  EXPECT_EQ(plan.arenaBytes, 2 * 4096);
}

TEST(MemoryPlanTest, ElementBytesSizeAndLeaveOutValues) {
  // The chain again, with 8-byte elements and %2 left out of the arena
  // (storage of its own).
  Program p = chainProgram();
  MemoryPlan plan = planMemory(p, p.functions[0], 64, [](int64_t id) {
    return id == 2 ? int64_t(0) : int64_t(8);
  });
  ASSERT_EQ(plan.placements.size(), 3u);
  for (const BufferPlacement &b : plan.placements)
    EXPECT_NE(b.buffer, 2);
  EXPECT_EQ(plan.unsharedBytes, 3 * 8192);
  // %1 (live over instructions 0..1), %3 (2..3), %4 (3..end): %3 and %4
  // overlap, %1 shares with one of them.
  EXPECT_EQ(plan.arenaBytes, 2 * 8192);
}

TEST(MemoryPlanTest, ResultsLiveToTheEnd) {
  Program p;
  for (int i = 0; i < 3; ++i)
    p.buffers.push_back({"%" + std::to_string(i), BufferType::BF16, {10}});
  Function f;
  f.name = "f";
  f.arguments = {0};
  f.body.push_back({"op", {0}, {1}, {}});
  f.body.push_back({"op", {0}, {2}, {}});
  f.results = {1, 2};
  p.functions.push_back(f);
  MemoryPlan plan = planMemory(p, p.functions[0], 64);
  // Both results live to the end: they cannot share.
  EXPECT_EQ(plan.arenaBytes, 64 + 20);
  EXPECT_EQ(plan.placements[0].lastUse, 2);
}

} // namespace
