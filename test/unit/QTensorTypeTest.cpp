//===- QTensorTypeTest.cpp - !octet_tq.qtensor API tests ------------------===//

#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/InitAll.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace octet::tq;

namespace {

class QTensorTypeTest : public ::testing::Test {
protected:
  QTensorTypeTest() {
    DialectRegistry registry;
    octet::registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
    e4m3 = Float8E4M3FNType::get(&ctx);
  }
  QTensorType get(ArrayRef<int64_t> shape, Granularity g) {
    return QTensorType::get(&ctx, shape, e4m3, g);
  }

  MLIRContext ctx;
  Type e4m3;
};

TEST_F(QTensorTypeTest, ScaleShapesPerGranularity) {
  using V = SmallVector<int64_t>;
  EXPECT_EQ(get({4096, 7168}, Granularity::Tile1x128).getScaleShape(),
            V({4096, 56}));
  EXPECT_EQ(get({4096, 7168}, Granularity::Tile128x1).getScaleShape(),
            V({32, 7168}));
  EXPECT_EQ(get({2112, 7168}, Granularity::Block128x128).getScaleShape(),
            V({17, 56}));
  EXPECT_EQ(get({4096, 7168}, Granularity::PerTensor).getScaleShape(), V());
}

TEST_F(QTensorTypeTest, PartialGroupsRoundUp) {
  using V = SmallVector<int64_t>;
  // N = 2112 = 16.5 x 128: the last block row is half full.
  EXPECT_EQ(get({2112, 200}, Granularity::Block128x128).getScaleShape(),
            V({17, 2}));
  EXPECT_EQ(get({1, 129}, Granularity::Tile1x128).getScaleShape(), V({1, 2}));
  EXPECT_EQ(get({127, 5}, Granularity::Tile128x1).getScaleShape(), V({1, 5}));
}

TEST_F(QTensorTypeTest, BatchDimensionsAndDynamicSizesCarryThrough) {
  using V = SmallVector<int64_t>;
  EXPECT_EQ(get({8, 256, 1024}, Granularity::Block128x128).getScaleShape(),
            V({8, 2, 8}));
  int64_t dyn = ShapedType::kDynamic;
  EXPECT_EQ(get({dyn, 1024}, Granularity::Tile1x128).getScaleShape(),
            V({dyn, 8}));
  RankedTensorType scales =
      get({dyn, 1024}, Granularity::Tile1x128).getScalesType();
  EXPECT_TRUE(scales.getElementType().isF32());
  EXPECT_EQ(scales.getShape(), ArrayRef<int64_t>({dyn, 8}));
}

TEST_F(QTensorTypeTest, GroupedDims) {
  EXPECT_TRUE(get({4, 8}, Granularity::Tile1x128).isGroupedAlong(1));
  EXPECT_FALSE(get({4, 8}, Granularity::Tile1x128).isGroupedAlong(0));
  EXPECT_TRUE(get({4, 8}, Granularity::Tile128x1).isGroupedAlong(0));
  EXPECT_TRUE(get({4, 8}, Granularity::Block128x128).isGroupedAlong(0));
  EXPECT_TRUE(get({4, 8}, Granularity::Block128x128).isGroupedAlong(1));
  EXPECT_TRUE(get({4, 8}, Granularity::PerTensor).getGroupedDims().empty());
}

TEST_F(QTensorTypeTest, TextRoundTrip) {
  Type t = parseType("!octet_tq.qtensor<4096x?xf8E5M2, tile_128x1>", &ctx);
  ASSERT_TRUE(t);
  auto q = cast<QTensorType>(t);
  EXPECT_EQ(q.getGranularity(), Granularity::Tile128x1);
  EXPECT_TRUE(isa<Float8E5M2Type>(q.getElementType()));
  std::string printed;
  llvm::raw_string_ostream os(printed);
  Type(q).print(os);
  EXPECT_EQ(printed, "!octet_tq.qtensor<4096x?xf8E5M2, tile_128x1>");
}

TEST_F(QTensorTypeTest, GetCheckedRejectsWhatTheParserCannotSpell) {
  // Negative sizes cannot be written in the text form; the C++ API checks.
  std::string error;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    error = d.str();
    return success();
  });
  auto emit = [&]() { return emitError(UnknownLoc::get(&ctx)); };
  EXPECT_FALSE(QTensorType::getChecked(emit, &ctx, ArrayRef<int64_t>{4, -2},
                                       e4m3, Granularity::Tile1x128));
  EXPECT_EQ(error, "dimension sizes must be non-negative, got [4, -2]");
  EXPECT_TRUE(QTensorType::getChecked(emit, &ctx, ArrayRef<int64_t>{4, 0}, e4m3,
                                      Granularity::Tile1x128));
}

TEST_F(QTensorTypeTest, FP8Max) {
  EXPECT_EQ(getFP8Max(e4m3), 448.0);
  EXPECT_EQ(getFP8Max(Float8E5M2Type::get(&ctx)), 57344.0);
  EXPECT_EQ(getFP8Max(Float32Type::get(&ctx)), 0.0);
}

} // namespace
