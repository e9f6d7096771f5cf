//===- OctetDialect.cpp - octet dialect and its attributes ----------------===//

#include "octet/Dialect/Octet/Octet.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace octet;

#include "octet/Dialect/Octet/OctetDialect.cpp.inc"
#include "octet/Dialect/Octet/OctetEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "octet/Dialect/Octet/OctetAttrs.cpp.inc"

void OctetDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "octet/Dialect/Octet/OctetOps.cpp.inc"
      >();
  registerAttributes();
}

void OctetDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "octet/Dialect/Octet/OctetAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Discardable attributes: octet.stage, octet.num_stages
//===----------------------------------------------------------------------===//

LogicalResult OctetDialect::verifyOperationAttribute(Operation *op,
                                                     NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == getNumStagesAttrName()) {
    auto count = dyn_cast<IntegerAttr>(attr.getValue());
    if (!count || count.getInt() <= 0)
      return op->emitError()
             << "'" << name << "' must be a positive integer, got "
             << attr.getValue();
    return success();
  }
  if (name == getStageAttrName()) {
    auto stage = dyn_cast<IntegerAttr>(attr.getValue());
    if (!stage || stage.getInt() < 0)
      return op->emitError()
             << "'" << name << "' must be a non-negative integer, got "
             << attr.getValue();
    for (Operation *parent = op->getParentOp(); parent;
         parent = parent->getParentOp()) {
      auto count = parent->getAttrOfType<IntegerAttr>(getNumStagesAttrName());
      if (!count)
        continue;
      if (stage.getInt() >= count.getInt())
        return op->emitError()
               << "pipeline stage " << stage.getInt()
               << " is out of range: the enclosing '" << parent->getName()
               << "' has " << count.getInt() << " stages";
      break;
    }
    return success();
  }
  // The per-stage functions of --octet-split-pipeline-stages.
  if (name == "octet.phase") {
    auto phase = dyn_cast<StringAttr>(attr.getValue());
    if (!phase || (phase.getValue() != "F" && phase.getValue() != "B"))
      return op->emitError() << "'" << name
                             << "' must be \"F\" or \"B\", got "
                             << attr.getValue();
    return success();
  }
  if (name == "octet.inputs" || name == "octet.stage_functions" ||
      name == "octet.stage_returns") {
    auto list = dyn_cast<ArrayAttr>(attr.getValue());
    if (!list || !llvm::all_of(list, llvm::IsaPred<StringAttr>))
      return op->emitError() << "'" << name
                             << "' must be an array of strings, got "
                             << attr.getValue();
    return success();
  }
  return op->emitError()
         << "unknown attribute '" << name << "': the octet dialect defines '"
         << getStageAttrName() << "', '" << getNumStagesAttrName()
         << "', and on per-stage functions 'octet.phase', 'octet.inputs', "
            "'octet.stage_functions' and 'octet.stage_returns'";
}

//===----------------------------------------------------------------------===//
// PrecisionAttr
//===----------------------------------------------------------------------===//

bool PrecisionAttr::isFP8() const {
  return getFormat() == ComputeFormat::E4M3 ||
         getFormat() == ComputeFormat::E5M2;
}

LogicalResult PrecisionAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, ComputeFormat format,
    ScalingGranularity lhsScaling, ScalingGranularity rhsScaling,
    ScaleRounding scaleRounding, int64_t promotionInterval, Type outputType) {
  if (!outputType || !(outputType.isF32() || outputType.isBF16()))
    return emitError() << "output type must be f32 or bf16, got " << outputType;
  if (promotionInterval < 0)
    return emitError() << "promotion interval must be non-negative, got "
                       << promotionInterval;

  bool fp8 = format == ComputeFormat::E4M3 || format == ComputeFormat::E5M2;
  if (!fp8) {
    // High-precision formats have nothing to scale or promote.
    if (lhsScaling != ScalingGranularity::None ||
        rhsScaling != ScalingGranularity::None)
      return emitError() << "format '" << stringifyComputeFormat(format)
                         << "' takes no scaling granularity (only e4m3 and "
                            "e5m2 are scaled)";
    if (scaleRounding != ScaleRounding::FP32)
      return emitError() << "format '" << stringifyComputeFormat(format)
                         << "' takes no scale rounding";
    if (promotionInterval != 0)
      return emitError() << "format '" << stringifyComputeFormat(format)
                         << "' accumulates in full precision; promotion "
                            "interval must be 0";
    return success();
  }

  if (lhsScaling == ScalingGranularity::None ||
      rhsScaling == ScalingGranularity::None)
    return emitError() << "format '" << stringifyComputeFormat(format)
                       << "' needs a scaling granularity for both operands";
  if (promotionInterval % kFP8MmaK != 0)
    return emitError() << "promotion interval " << promotionInterval
                       << " is not a multiple of " << kFP8MmaK
                       << " (the K of one FP8 wgmma)";
  if (isGrouped(lhsScaling) || isGrouped(rhsScaling)) {
    // Scales change every 128 K-elements; partial sums of two groups can
    // only be added after each was multiplied by its own scales.
    if (promotionInterval == 0 || kScaleGroupSize % promotionInterval != 0)
      return emitError() << "promotion interval " << promotionInterval
                         << " must divide the " << kScaleGroupSize
                         << "-element scaling group (32, 64 or 128): scales "
                            "change at every group boundary";
  }
  return success();
}

namespace {
constexpr StringLiteral kFieldLhs = "lhs";
constexpr StringLiteral kFieldRhs = "rhs";
constexpr StringLiteral kFieldScale = "scale";
constexpr StringLiteral kFieldPromotion = "promotion";
constexpr StringLiteral kFieldOut = "out";
} // namespace

/// Parses a keyword naming a case of `EnumT`.
template <typename EnumT>
static FailureOr<EnumT> parseEnumKeyword(AsmParser &parser, StringRef what) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<EnumT> value = symbolizeEnum<EnumT>(keyword);
  if (!value) {
    parser.emitError(loc) << "unknown " << what << " '" << keyword << "'";
    return failure();
  }
  return *value;
}

Attribute PrecisionAttr::parse(AsmParser &parser, Type) {
  MLIRContext *ctx = parser.getContext();
  SMLoc start = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  FailureOr<ComputeFormat> format = parseEnumKeyword<ComputeFormat>(
      parser, "compute format (expected e4m3, e5m2, bf16 or f32)");
  if (failed(format))
    return {};

  ScalingGranularity lhs = ScalingGranularity::None;
  ScalingGranularity rhs = ScalingGranularity::None;
  ScaleRounding rounding = ScaleRounding::FP32;
  int64_t promotion = 0;
  Type out = Float32Type::get(ctx);
  llvm::StringSet<> seen;
  while (succeeded(parser.parseOptionalComma())) {
    SMLoc keyLoc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return {};
    if (!seen.insert(key).second) {
      parser.emitError(keyLoc)
          << "precision field '" << key << "' is given twice";
      return {};
    }
    if (key == kFieldLhs || key == kFieldRhs) {
      FailureOr<ScalingGranularity> g = parseEnumKeyword<ScalingGranularity>(
          parser,
          "scaling granularity (expected none, tile_1x128, block_128x128 or "
          "per_tensor)");
      if (failed(g))
        return {};
      (key == kFieldLhs ? lhs : rhs) = *g;
    } else if (key == kFieldScale) {
      FailureOr<ScaleRounding> r = parseEnumKeyword<ScaleRounding>(
          parser, "scale rounding (expected fp32 or pow2)");
      if (failed(r))
        return {};
      rounding = *r;
    } else if (key == kFieldPromotion) {
      if (parser.parseInteger(promotion))
        return {};
    } else if (key == kFieldOut) {
      if (parser.parseType(out))
        return {};
    } else {
      parser.emitError(keyLoc)
          << "unknown precision field '" << key
          << "'; expected one of lhs, rhs, scale, promotion, out";
      return {};
    }
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<PrecisionAttr>(start, ctx, *format, lhs, rhs,
                                          rounding, promotion, out);
}

void PrecisionAttr::print(AsmPrinter &printer) const {
  printer << '<' << stringifyComputeFormat(getFormat());
  if (getLhsScaling() != ScalingGranularity::None)
    printer << ", " << kFieldLhs << " = "
            << stringifyScalingGranularity(getLhsScaling());
  if (getRhsScaling() != ScalingGranularity::None)
    printer << ", " << kFieldRhs << " = "
            << stringifyScalingGranularity(getRhsScaling());
  if (getScaleRounding() != ScaleRounding::FP32)
    printer << ", " << kFieldScale << " = "
            << stringifyScaleRounding(getScaleRounding());
  if (getPromotionInterval() != 0)
    printer << ", " << kFieldPromotion << " = " << getPromotionInterval();
  printer << ", " << kFieldOut << " = " << getOutputType() << '>';
}
