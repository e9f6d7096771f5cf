//===- ScheduleOpTest.cpp - octet_pipe.schedule helper tests --------------===//

#include "octet/Dialect/OctetPipe/OctetPipe.h"
#include "octet/InitAll.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace octet::pipe;

namespace {

class ScheduleOpTest : public ::testing::Test {
protected:
  ScheduleOpTest() {
    DialectRegistry registry;
    octet::registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  /// An empty-bodied schedule of `kind` (not verified: only the helpers,
  /// which read the attributes, are under test).
  ScheduleOp make(StringRef kind, int64_t ranks, int64_t stages, int64_t mbs) {
    OpBuilder b(&ctx);
    module = ModuleOp::create(UnknownLoc::get(&ctx));
    b.setInsertionPointToEnd(module->getBody());
    auto op =
        ScheduleOp::create(b, UnknownLoc::get(&ctx), kind, ranks, stages, mbs);
    op.getBody().emplaceBlock();
    return op;
  }

  MLIRContext ctx;
  OwningOpRef<ModuleOp> module;
};

TEST_F(ScheduleOpTest, DualPipeVPlacesStagesInAV) {
  ScheduleOp s = make("dualpipev", 4, 8, 8);
  EXPECT_EQ(s.getStagesOfRank(0), SmallVector<int64_t>({0, 7}));
  EXPECT_EQ(s.getStagesOfRank(3), SmallVector<int64_t>({3, 4}));
  EXPECT_TRUE(s.rankHoldsStage(1, 6));
  EXPECT_FALSE(s.rankHoldsStage(1, 5));
  EXPECT_EQ(s.getMicrobatchesPerStage(), 8);
}

TEST_F(ScheduleOpTest, DualPipeCountsMicrobatchesPerCopy) {
  ScheduleOp s = make("dualpipe", 4, 8, 12);
  // Copy 1's stage N-1-r is global stage 2N-1-r.
  EXPECT_EQ(s.getStagesOfRank(1), SmallVector<int64_t>({1, 6}));
  EXPECT_EQ(s.getMicrobatchesPerStage(), 6);
}

TEST_F(ScheduleOpTest, InterleavedAndOneStagePerRank) {
  ScheduleOp i = make("interleaved-1f1b", 2, 6, 4);
  EXPECT_EQ(i.getStagesOfRank(1), SmallVector<int64_t>({1, 3, 5}));
  ScheduleOp z = make("zb1p", 3, 3, 4);
  EXPECT_EQ(z.getStagesOfRank(2), SmallVector<int64_t>({2}));
  EXPECT_EQ(z.getScheduleKind(), ScheduleKind::ZB1P);
}

TEST_F(ScheduleOpTest, CustomHoldsAnythingAndUnknownKindsAreRecognised) {
  ScheduleOp c = make("custom", 2, 5, 3);
  EXPECT_TRUE(c.rankHoldsStage(0, 4));
  EXPECT_TRUE(c.getStagesOfRank(0).empty());
  ScheduleOp u = make("gpipe", 2, 2, 2);
  EXPECT_FALSE(u.getScheduleKind().has_value());
}

} // namespace
