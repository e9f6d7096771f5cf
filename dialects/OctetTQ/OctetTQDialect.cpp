//===- OctetTQDialect.cpp - octet_tq dialect, types and attributes --------===//

#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Support/ShapeUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace octet;
using namespace octet::tq;

#include "octet/Dialect/OctetTQ/OctetTQDialect.cpp.inc"
#include "octet/Dialect/OctetTQ/OctetTQEnums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "octet/Dialect/OctetTQ/OctetTQTypes.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "octet/Dialect/OctetTQ/OctetTQAttrs.cpp.inc"

void OctetTQDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "octet/Dialect/OctetTQ/OctetTQOps.cpp.inc"
      >();
  registerTypes();
  registerAttributes();
}

void OctetTQDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "octet/Dialect/OctetTQ/OctetTQTypes.cpp.inc"
      >();
}

void OctetTQDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "octet/Dialect/OctetTQ/OctetTQAttrs.cpp.inc"
      >();
}

double octet::tq::getFP8Max(Type elementType) {
  if (isa<Float8E4M3FNType>(elementType))
    return 448.0;
  if (isa<Float8E5M2Type>(elementType))
    return 57344.0;
  return 0.0;
}

//===----------------------------------------------------------------------===//
// QTensorType
//===----------------------------------------------------------------------===//

LogicalResult QTensorType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  ArrayRef<int64_t> shape, Type elementType,
                                  Granularity granularity) {
  if (getFP8Max(elementType) == 0.0)
    return emitError() << "quantized element type must be f8E4M3FN or "
                          "f8E5M2, got "
                       << elementType;
  for (int64_t d : shape)
    if (d < 0 && !ShapedType::isDynamic(d))
      return emitError() << "dimension sizes must be non-negative, got "
                         << formatShape(shape);
  size_t minRank = (granularity == Granularity::Tile128x1 ||
                    granularity == Granularity::Block128x128)
                       ? 2
                       : 1;
  if (shape.size() < minRank)
    return emitError() << "granularity '" << stringifyGranularity(granularity)
                       << "' needs rank >= " << minRank << ", got "
                       << formatShape(shape);
  return success();
}

SmallVector<int64_t, 2> QTensorType::getGroupedDims() const {
  int64_t rank = getRank();
  switch (getGranularity()) {
  case Granularity::Tile1x128:
    return {rank - 1};
  case Granularity::Tile128x1:
    return {rank - 2};
  case Granularity::Block128x128:
    return {rank - 2, rank - 1};
  case Granularity::PerTensor:
    return {};
  }
  llvm_unreachable("unknown granularity");
}

bool QTensorType::isGroupedAlong(int64_t dim) const {
  return llvm::is_contained(getGroupedDims(), dim);
}

SmallVector<int64_t> QTensorType::getScaleShape() const {
  if (getGranularity() == Granularity::PerTensor)
    return {};
  SmallVector<int64_t> scales(getShape());
  for (int64_t dim : getGroupedDims()) {
    int64_t d = scales[dim];
    if (!ShapedType::isDynamic(d))
      scales[dim] = llvm::divideCeil(d, kScaleGroupSize);
  }
  return scales;
}

RankedTensorType QTensorType::getScalesType() const {
  return RankedTensorType::get(getScaleShape(), Float32Type::get(getContext()));
}

RankedTensorType QTensorType::getPayloadType() const {
  return RankedTensorType::get(getShape(), getElementType());
}

Type QTensorType::parse(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  SmallVector<int64_t> shape;
  Type elementType;
  StringRef keyword;
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/true,
                                /*withTrailingX=*/true) ||
      parser.parseType(elementType) || parser.parseComma())
    return {};
  SMLoc granLoc = parser.getCurrentLocation();
  if (parser.parseKeyword(&keyword))
    return {};
  std::optional<Granularity> granularity = symbolizeGranularity(keyword);
  if (!granularity) {
    parser.emitError(granLoc)
        << "unknown granularity '" << keyword
        << "'; expected tile_1x128, tile_128x1, block_128x128 or per_tensor";
    return {};
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<QTensorType>(loc, parser.getContext(), shape,
                                        elementType, *granularity);
}

void QTensorType::print(AsmPrinter &printer) const {
  printer << '<';
  printer.printDimensionList(getShape());
  if (!getShape().empty())
    printer << 'x';
  printer << getElementType() << ", " << stringifyGranularity(getGranularity())
          << '>';
}

//===----------------------------------------------------------------------===//
// TileConfigAttr
//===----------------------------------------------------------------------===//

LogicalResult
TileConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t m,
                       int64_t n, int64_t k, int64_t stages, bool overlap) {
  if (m <= 0 || m % 64 != 0)
    return emitError() << "tile M = " << m
                       << " must be a positive multiple of 64";
  if (n < 8 || n > 256 || n % 8 != 0)
    return emitError() << "tile N = " << n
                       << " must be a multiple of 8 in [8, 256]";
  if (k <= 0 || k % kFP8MmaK != 0)
    return emitError() << "tile K = " << k << " must be a positive multiple of "
                       << kFP8MmaK;
  if (stages < 1 || stages > 32)
    return emitError() << "pipeline stages = " << stages
                       << " must be in [1, 32]";
  if (overlap && stages < 2)
    return emitError() << "the overlapped schedule holds one stage while it "
                          "waits for the next: it needs at least 2 stages, "
                          "got "
                       << stages;
  return success();
}

Attribute TileConfigAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  SmallVector<int64_t, 3> dims;
  int64_t stages = 0;
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false,
                                /*withTrailingX=*/false))
    return {};
  if (dims.size() != 3) {
    parser.emitError(loc) << "expected a tile shape MxNxK, got " << dims.size()
                          << " dimensions";
    return {};
  }
  if (parser.parseComma() || parser.parseKeyword("stages") ||
      parser.parseEqual() || parser.parseInteger(stages))
    return {};
  bool overlap = false;
  if (succeeded(parser.parseOptionalComma())) {
    if (parser.parseKeyword("overlap"))
      return {};
    overlap = true;
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<TileConfigAttr>(loc, parser.getContext(), dims[0],
                                           dims[1], dims[2], stages, overlap);
}

void TileConfigAttr::print(AsmPrinter &printer) const {
  printer << '<' << getM() << 'x' << getN() << 'x' << getK()
          << ", stages = " << getStages();
  if (getOverlap())
    printer << ", overlap";
  printer << '>';
}
