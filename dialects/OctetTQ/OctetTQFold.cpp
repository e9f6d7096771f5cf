//===- OctetTQFold.cpp - Constant folding through the numerics library ----===//
//
// quantize, dequantize, requantize_transposed and scaled_matmul fold when
// their operands are constants, by calling the numerics library that is also
// the CPU backend and the oracle of the GPU kernels: what the folder prints
// is exactly what every backend must compute.
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/Quantize.h"
#include "octet/Numerics/ScaledGemm.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;
using namespace octet;
using namespace octet::tq;
namespace num = octet::numerics;

namespace {

/// Folding materializes every element: keep it to sizes a test or a small
/// model constant has.
constexpr int64_t kMaxFoldElements = int64_t(1) << 22;

num::FP8Format toFormat(Type elementType) {
  return isa<Float8E4M3FNType>(elementType) ? num::FP8Format::E4M3
                                            : num::FP8Format::E5M2;
}

num::Granularity toGranularity(Granularity g) {
  switch (g) {
  case Granularity::Tile1x128:
    return num::Granularity::Tile1x128;
  case Granularity::Tile128x1:
    return num::Granularity::Tile128x1;
  case Granularity::Block128x128:
    return num::Granularity::Block128x128;
  case Granularity::PerTensor:
    return num::Granularity::PerTensor;
  }
  llvm_unreachable("unknown granularity");
}

/// The numerics library's [batch, rows, cols] view of a logical shape: the
/// last two dimensions are the matrix, leading ones the batch.
struct MatrixDims {
  int64_t batch = 1, rows = 1, cols = 1;
};

std::optional<MatrixDims> matrixDims(ArrayRef<int64_t> shape) {
  if (shape.empty() || ShapedType::isDynamicShape(shape))
    return std::nullopt;
  MatrixDims d;
  d.cols = shape.back();
  if (shape.size() >= 2)
    d.rows = shape[shape.size() - 2];
  for (size_t i = 0; i + 2 < shape.size(); ++i)
    d.batch *= shape[i];
  if (d.batch * d.rows * d.cols > kMaxFoldElements)
    return std::nullopt;
  return d;
}

/// FP32 values of an f32 or bf16 constant.
std::vector<float> toFloats(DenseElementsAttr attr) {
  std::vector<float> values;
  values.reserve(attr.getNumElements());
  for (const APFloat &v : attr.getValues<APFloat>()) {
    APFloat f = v;
    bool losesInfo;
    f.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &losesInfo);
    values.push_back(f.convertToFloat());
  }
  return values;
}

/// A constant of `type` (f32 or bf16; bf16 rounds to nearest even).
DenseElementsAttr fromFloats(RankedTensorType type, ArrayRef<float> values) {
  if (type.getElementType().isF32())
    return DenseElementsAttr::get(type, values);
  SmallVector<APFloat> bf16;
  bf16.reserve(values.size());
  for (float v : values)
    bf16.emplace_back(APFloat::BFloat(), APInt(16, num::floatToBF16(v)));
  return DenseElementsAttr::get(type, bf16);
}

/// The numerics library's tensor of a folded operand: nothing unless it is a
/// quantized constant of a shape the library handles.
std::optional<num::QuantizedTensor> toNumerics(Attribute operand) {
  auto attr = dyn_cast_or_null<QuantizedConstantAttr>(operand);
  if (!attr)
    return std::nullopt;
  QTensorType type = attr.getQTensorType();
  std::optional<MatrixDims> dims = matrixDims(type.getShape());
  if (!dims)
    return std::nullopt;
  num::QuantizedTensor q;
  q.format = toFormat(type.getElementType());
  q.granularity = toGranularity(type.getGranularity());
  q.batch = dims->batch;
  q.rows = dims->rows;
  q.cols = dims->cols;
  q.payload.reserve(attr.getPayload().getNumElements());
  for (const APFloat &v : attr.getPayload().getValues<APFloat>())
    q.payload.push_back(uint8_t(v.bitcastToAPInt().getZExtValue()));
  q.scales = toFloats(attr.getScales());
  return q;
}

QuantizedConstantAttr fromNumerics(const num::QuantizedTensor &q,
                                   QTensorType type) {
  auto fp8 = cast<FloatType>(type.getElementType());
  SmallVector<APFloat> payload;
  payload.reserve(q.payload.size());
  for (uint8_t bits : q.payload)
    payload.emplace_back(fp8.getFloatSemantics(), APInt(8, bits));
  auto payloadAttr = DenseElementsAttr::get(type.getPayloadType(), payload);
  auto scalesAttr =
      DenseElementsAttr::get(type.getScalesType(), ArrayRef<float>(q.scales));
  return QuantizedConstantAttr::get(type.getContext(), type.getGranularity(),
                                    payloadAttr, scalesAttr);
}

} // namespace

//===----------------------------------------------------------------------===//
// Constants
//===----------------------------------------------------------------------===//

QTensorType QuantizedConstantAttr::getQTensorType() const {
  auto payload = cast<RankedTensorType>(getPayload().getType());
  return QTensorType::get(getContext(), payload.getShape(),
                          payload.getElementType(), getGranularity());
}

LogicalResult QuantizedConstantAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, Granularity granularity,
    DenseElementsAttr payload, DenseElementsAttr scales) {
  auto payloadType = cast<RankedTensorType>(payload.getType());
  if (failed(QTensorType::verify(emitError, payloadType.getShape(),
                                 payloadType.getElementType(), granularity)))
    return failure();
  RankedTensorType expected =
      QTensorType::get(payload.getContext(), payloadType.getShape(),
                       payloadType.getElementType(), granularity)
          .getScalesType();
  if (scales.getType() != expected)
    return emitError() << "scales type " << scales.getType()
                       << " does not match the granularity's " << expected;
  return success();
}

LogicalResult ConstantOp::verify() {
  if (getValue().getQTensorType() != getType())
    return emitOpError() << "result type " << getType()
                         << " differs from the constant's type "
                         << getValue().getQTensorType();
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

Operation *OctetTQDialect::materializeConstant(OpBuilder &builder,
                                               Attribute value, Type type,
                                               Location loc) {
  if (auto q = dyn_cast<QuantizedConstantAttr>(value))
    return ConstantOp::create(builder, loc, type, q);
  if (auto dense = dyn_cast<DenseElementsAttr>(value))
    return arith::ConstantOp::create(builder, loc, type, dense);
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Folders
//===----------------------------------------------------------------------===//

OpFoldResult QuantizeOp::fold(FoldAdaptor adaptor) {
  auto input = dyn_cast_or_null<DenseElementsAttr>(adaptor.getInput());
  QTensorType type = getResult().getType();
  std::optional<MatrixDims> dims = matrixDims(type.getShape());
  if (!input || !dims)
    return {};
  std::vector<float> x = toFloats(input);
  num::QuantizedTensor q = num::quantize(
      x.data(), dims->batch, dims->rows, dims->cols,
      toFormat(type.getElementType()), toGranularity(type.getGranularity()),
      getPow2() ? num::ScaleRounding::Pow2 : num::ScaleRounding::FP32);
  return fromNumerics(q, type);
}

OpFoldResult DequantizeOp::fold(FoldAdaptor adaptor) {
  std::optional<num::QuantizedTensor> q = toNumerics(adaptor.getInput());
  if (!q)
    return {};
  std::vector<float> out(q->payload.size());
  num::dequantize(*q, out.data());
  return fromFloats(getResult().getType(), out);
}

OpFoldResult RequantizeTransposedOp::fold(FoldAdaptor adaptor) {
  std::optional<num::QuantizedTensor> q = toNumerics(adaptor.getInput());
  if (!q)
    return {};
  QTensorType type = getResult().getType();
  num::QuantizedTensor t = num::requantizeTransposed(
      *q, getPow2() ? num::ScaleRounding::Pow2 : num::ScaleRounding::FP32);
  // The result may use the other FP8 format: requantize into it.
  if (toFormat(type.getElementType()) != t.format) {
    std::vector<float> values(t.payload.size());
    num::dequantize(*q, values.data());
    t = num::quantize(
        values.data(), t.batch, t.rows, t.cols, toFormat(type.getElementType()),
        num::Granularity::Tile128x1,
        getPow2() ? num::ScaleRounding::Pow2 : num::ScaleRounding::FP32);
  }
  return fromNumerics(t, type);
}

OpFoldResult ScaledMatmulOp::fold(FoldAdaptor adaptor) {
  RankedTensorType type = getResult().getType();
  if (!type.hasStaticShape())
    return {};
  std::optional<num::QuantizedTensor> a = toNumerics(adaptor.getLhs());
  std::optional<num::QuantizedTensor> b = toNumerics(adaptor.getRhs());
  if (!a || !b)
    return {};
  int64_t k = getLhsContractingDim() == 1 ? a->cols : a->rows;
  if (type.getNumElements() * k > kMaxFoldElements * 256)
    return {};
  num::ScaledGemmOptions options;
  options.promotionInterval = getPromotion();
  options.bf16Output = type.getElementType().isBF16();
  int lc = int(getLhsContractingDim()), rc = int(getRhsContractingDim());
  if (!num::checkScaledGemm(*a, lc, *b, rc, options).empty())
    return {};
  std::vector<float> y(type.getNumElements());
  num::scaledGemm(*a, lc, *b, rc, y.data(), options);
  return fromFloats(type, y);
}
