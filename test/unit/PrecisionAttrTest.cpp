//===- PrecisionAttrTest.cpp - #octet.precision API tests -----------------===//

#include "octet/Dialect/Octet/Octet.h"
#include "octet/InitAll.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace octet;

namespace {

class PrecisionAttrTest : public ::testing::Test {
protected:
  PrecisionAttrTest() {
    DialectRegistry registry;
    octet::registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  /// Parses `text`; on failure returns null and keeps the diagnostic.
  PrecisionAttr parse(StringRef text) {
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
      lastError = d.str();
      return success();
    });
    return dyn_cast_or_null<PrecisionAttr>(parseAttribute(text, &ctx));
  }

  MLIRContext ctx;
  std::string lastError;
};

TEST_F(PrecisionAttrTest, ParsesAllFieldsAndDefaults) {
  PrecisionAttr p = parse("#octet.precision<e4m3, lhs = tile_1x128, rhs = "
                          "block_128x128, scale = pow2, promotion = 128, out = "
                          "bf16>");
  ASSERT_TRUE(p) << lastError;
  EXPECT_EQ(p.getFormat(), ComputeFormat::E4M3);
  EXPECT_EQ(p.getLhsScaling(), ScalingGranularity::Tile1x128);
  EXPECT_EQ(p.getRhsScaling(), ScalingGranularity::Block128x128);
  EXPECT_EQ(p.getScaleRounding(), ScaleRounding::Pow2);
  EXPECT_EQ(p.getPromotionInterval(), 128);
  EXPECT_TRUE(p.getOutputType().isBF16());
  EXPECT_TRUE(p.isFP8());

  PrecisionAttr d = parse("#octet.precision<bf16>");
  ASSERT_TRUE(d) << lastError;
  EXPECT_EQ(d.getLhsScaling(), ScalingGranularity::None);
  EXPECT_EQ(d.getScaleRounding(), ScaleRounding::FP32);
  EXPECT_EQ(d.getPromotionInterval(), 0);
  EXPECT_TRUE(d.getOutputType().isF32());
  EXPECT_FALSE(d.isFP8());
}

TEST_F(PrecisionAttrTest, FieldOrderDoesNotMatterAndPrintIsCanonical) {
  PrecisionAttr a = parse("#octet.precision<e4m3, out = bf16, promotion = 64, "
                          "rhs = block_128x128, lhs = tile_1x128>");
  PrecisionAttr b = parse("#octet.precision<e4m3, lhs = tile_1x128, rhs = "
                          "block_128x128, promotion = 64, out = bf16>");
  ASSERT_TRUE(a && b) << lastError;
  // Attributes are uniqued: same parameters, same attribute.
  EXPECT_EQ(a, b);
  std::string printed;
  llvm::raw_string_ostream os(printed);
  Attribute(a).print(os);
  EXPECT_EQ(printed, "#octet.precision<e4m3, lhs = tile_1x128, rhs = "
                     "block_128x128, promotion = 64, out = bf16>");
}

TEST_F(PrecisionAttrTest, PromotionIntervalsAreValidatedAgainstGroups) {
  // Multiples of 32 that divide the 128-element group are accepted...
  for (int interval : {32, 64, 128}) {
    std::string text = "#octet.precision<e4m3, lhs = tile_1x128, rhs = "
                       "block_128x128, promotion = " +
                       std::to_string(interval) + ">";
    EXPECT_TRUE(parse(text)) << text << ": " << lastError;
  }
  // ... others are not, with a message that names the interval.
  for (int interval : {0, 48, 96, 256}) {
    std::string text = "#octet.precision<e4m3, lhs = tile_1x128, rhs = "
                       "block_128x128, promotion = " +
                       std::to_string(interval) + ">";
    EXPECT_FALSE(parse(text)) << text;
    EXPECT_NE(lastError.find("promotion interval " + std::to_string(interval)),
              std::string::npos)
        << lastError;
  }
  // Per-tensor scales may accumulate all of K in the tensor cores.
  EXPECT_TRUE(
      parse("#octet.precision<e5m2, lhs = per_tensor, rhs = per_tensor>"));
  EXPECT_TRUE(parse("#octet.precision<e5m2, lhs = per_tensor, rhs = "
                    "per_tensor, promotion = 256>"));
}

TEST_F(PrecisionAttrTest, GetCheckedRejectsInvalidCombinations) {
  auto loc = UnknownLoc::get(&ctx);
  auto emit = [&]() { return emitError(loc); };
  ScopedDiagnosticHandler handler(&ctx, [](Diagnostic &) { return success(); });
  Type f32 = Float32Type::get(&ctx);
  EXPECT_FALSE(PrecisionAttr::getChecked(
      emit, &ctx, ComputeFormat::BF16, ScalingGranularity::Tile1x128,
      ScalingGranularity::None, ScaleRounding::FP32, int64_t(0), f32));
  EXPECT_FALSE(PrecisionAttr::getChecked(
      emit, &ctx, ComputeFormat::E4M3, ScalingGranularity::None,
      ScalingGranularity::Block128x128, ScaleRounding::FP32, int64_t(128),
      f32));
  EXPECT_FALSE(PrecisionAttr::getChecked(
      emit, &ctx, ComputeFormat::F32, ScalingGranularity::None,
      ScalingGranularity::None, ScaleRounding::FP32, int64_t(0),
      Type(IntegerType::get(&ctx, 32))));
  EXPECT_TRUE(PrecisionAttr::getChecked(
      emit, &ctx, ComputeFormat::E4M3, ScalingGranularity::Tile1x128,
      ScalingGranularity::Block128x128, ScaleRounding::FP32, int64_t(128),
      f32));
}

} // namespace
