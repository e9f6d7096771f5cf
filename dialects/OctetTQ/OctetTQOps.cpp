//===- OctetTQOps.cpp - octet_tq operation verifiers ----------------------===//

#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Support/ShapeUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace octet;
using namespace octet::tq;

#include "octet/Dialect/ShortFloat.h"

#define GET_OP_CLASSES
#include "octet/Dialect/OctetTQ/OctetTQOps.cpp.inc"

static LogicalResult verifySameShape(Operation *op, ArrayRef<int64_t> input,
                                     ArrayRef<int64_t> result) {
  if (shapesCompatible(input, result))
    return success();
  return op->emitOpError() << "result shape " << formatShape(result)
                           << " differs from the input shape "
                           << formatShape(input);
}

LogicalResult QuantizeOp::verify() {
  return verifySameShape(*this, getInput().getType().getShape(),
                         getResult().getType().getShape());
}

LogicalResult DequantizeOp::verify() {
  return verifySameShape(*this, getInput().getType().getShape(),
                         getResult().getType().getShape());
}

LogicalResult RequantizeTransposedOp::verify() {
  QTensorType input = getInput().getType();
  QTensorType result = getResult().getType();
  if (input.getGranularity() != Granularity::Tile1x128)
    return emitOpError() << "input must be tile_1x128, got "
                         << stringifyGranularity(input.getGranularity());
  if (result.getGranularity() != Granularity::Tile128x1)
    return emitOpError() << "result must be tile_128x1, got "
                         << stringifyGranularity(result.getGranularity());
  return verifySameShape(*this, input.getShape(), result.getShape());
}

LogicalResult ScaledMatmulOp::verify() {
  QTensorType lhs = getLhs().getType();
  QTensorType rhs = getRhs().getType();
  if (lhs.getRank() != 2 || rhs.getRank() != 2)
    return emitOpError() << "operands must have rank 2, got "
                         << formatShape(lhs.getShape()) << " and "
                         << formatShape(rhs.getShape());
  int64_t lc = getLhsContractingDim(), rc = getRhsContractingDim();
  if ((lc != 0 && lc != 1) || (rc != 0 && rc != 1))
    return emitOpError() << "contracting dimensions must be 0 or 1, got (" << lc
                         << ", " << rc << ")";
  int64_t k = lhs.getShape()[lc];
  if (!dimsCompatible(k, rhs.getShape()[rc]))
    return emitOpError() << "contraction sizes differ: lhs dimension " << lc
                         << " is " << formatDim(k) << ", rhs dimension " << rc
                         << " is " << formatDim(rhs.getShape()[rc]);

  // A 1x128 tile's scale is constant along its groups' dimension only: that
  // must be the contracted one or the scale would change inside a dot
  // product.
  auto checkOperand = [&](StringRef name, QTensorType type,
                          int64_t contracting) -> LogicalResult {
    Granularity g = type.getGranularity();
    bool tiled = g == Granularity::Tile1x128 || g == Granularity::Tile128x1;
    if (tiled && !type.isGroupedAlong(contracting))
      return emitOpError()
             << name << " is " << stringifyGranularity(g)
             << " (groups along dimension " << type.getGroupedDims().front()
             << ") but contracts dimension " << contracting
             << "; regroup it with octet_tq.requantize_transposed";
    return success();
  };
  if (failed(checkOperand("lhs", lhs, lc)) ||
      failed(checkOperand("rhs", rhs, rc)))
    return failure();

  bool grouped = lhs.getGranularity() != Granularity::PerTensor ||
                 rhs.getGranularity() != Granularity::PerTensor;
  int64_t promotion = getPromotion();
  if (promotion < 0 || promotion % kFP8MmaK != 0)
    return emitOpError() << "promotion interval " << promotion
                         << " is not a non-negative multiple of " << kFP8MmaK
                         << " (the K of one FP8 wgmma)";
  if (grouped) {
    if (!ShapedType::isDynamic(k) && k % kScaleGroupSize != 0)
      return emitOpError() << "contraction dimension K = " << k
                           << " is not a multiple of the " << kScaleGroupSize
                           << "-element scaling group";
    if (promotion == 0 || kScaleGroupSize % promotion != 0)
      return emitOpError() << "promotion interval " << promotion
                           << " must divide the " << kScaleGroupSize
                           << "-element scaling group (32, 64 or 128): "
                              "scales change at every group boundary";
  }
  if (!ShapedType::isDynamic(k) && promotion > k)
    return emitOpError() << "promotion interval " << promotion
                         << " exceeds the contraction dimension K = " << k;

  if (std::optional<TileConfigAttr> tile = getTile()) {
    int64_t tk = tile->getK();
    if (promotion != 0 && promotion % tk != 0 && tk % promotion != 0)
      return emitOpError() << "tile K = " << tk << " and promotion interval "
                           << promotion << " must divide one another";
  }

  SmallVector<int64_t, 2> expected = {lhs.getShape()[1 - lc],
                                      rhs.getShape()[1 - rc]};
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  if (!shapesCompatible(shape, expected))
    return emitOpError() << "result shape " << formatShape(shape)
                         << ", expected " << formatShape(expected);
  return success();
}

//===----------------------------------------------------------------------===//
// GroupedScaledMatmulOp
//===----------------------------------------------------------------------===//

/// The promotion interval of a grouped GEMM: a whole number of FP8 wgmmas
/// that divides the scaling group.
static LogicalResult verifyGroupedPromotion(Operation *op, int64_t promotion) {
  if (promotion <= 0 || promotion % kFP8MmaK != 0 ||
      kScaleGroupSize % promotion != 0)
    return op->emitOpError()
           << "promotion interval " << promotion
           << " must be 32, 64 or 128: a multiple of one FP8 wgmma that "
              "divides the scaling group";
  return success();
}

static LogicalResult verifyGroupIndex(Operation *op, Value index, int64_t rows,
                                      StringRef of = "lhs") {
  auto type = cast<RankedTensorType>(index.getType());
  if (type.getRank() != 1 || !dimsCompatible(type.getDimSize(0), rows))
    return op->emitOpError() << "group_index must be tensor<" << formatDim(rows)
                             << "xi32>, one expert per row of " << of;
  return success();
}

LogicalResult GroupedScaledMatmulOp::verify() {
  QTensorType lhs = getLhs().getType();
  QTensorType rhs = getRhs().getType();
  if (lhs.getRank() != 2 || lhs.getGranularity() != Granularity::Tile1x128)
    return emitOpError() << "lhs must be a rank-2 tile_1x128 tensor [M, K], "
                            "got "
                         << formatShape(lhs.getShape()) << " "
                         << stringifyGranularity(lhs.getGranularity());
  if (rhs.getRank() != 3 || rhs.getGranularity() != Granularity::Block128x128)
    return emitOpError() << "rhs must be a rank-3 block_128x128 tensor "
                            "[experts, N, K], got "
                         << formatShape(rhs.getShape()) << " "
                         << stringifyGranularity(rhs.getGranularity());
  int64_t rc = getRhsContractingDim();
  if (rc != 1 && rc != 2)
    return emitOpError() << "rhs_contract must be 2 (Fprop, contracting K of "
                            "[experts, N, K]) or 1 (Dgrad, contracting N), "
                            "got "
                         << rc;
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  char dim = rc == 2 ? 'K' : 'N';
  if (!dimsCompatible(l[1], r[rc]))
    return emitOpError() << "contraction sizes differ: lhs has " << dim
                         << " = " << formatDim(l[1]) << ", rhs has " << dim
                         << " = " << formatDim(r[rc]);
  int64_t contracted = ShapedType::isDynamic(l[1]) ? r[rc] : l[1];
  if (!ShapedType::isDynamic(contracted) && contracted % kScaleGroupSize != 0)
    return emitOpError() << "contraction dimension " << dim << " = " << contracted
                         << " is not a multiple of the " << kScaleGroupSize
                         << "-element scaling group";
  if (failed(verifyGroupIndex(*this, getGroupIndex(), l[0])) ||
      failed(verifyGroupedPromotion(*this, getPromotion())))
    return failure();
  SmallVector<int64_t, 2> expected = {l[0], r[3 - rc]};
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  if (!shapesCompatible(shape, expected))
    return emitOpError() << "result shape " << formatShape(shape)
                         << ", expected " << formatShape(expected);
  return success();
}

LogicalResult KGroupedScaledMatmulOp::verify() {
  QTensorType lhs = getLhs().getType();
  QTensorType rhs = getRhs().getType();
  for (auto [name, type] : {std::pair{"lhs", lhs}, std::pair{"rhs", rhs}})
    if (type.getRank() != 2 || type.getGranularity() != Granularity::Tile128x1)
      return emitOpError() << name
                           << " must be a rank-2 tile_128x1 tensor (groups "
                              "along the contracted rows), got "
                           << formatShape(type.getShape()) << " "
                           << stringifyGranularity(type.getGranularity());
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  if (!dimsCompatible(l[0], r[0]))
    return emitOpError() << "contraction sizes differ: lhs has "
                         << formatDim(l[0]) << " rows, rhs has "
                         << formatDim(r[0]);
  int64_t rows = ShapedType::isDynamic(l[0]) ? r[0] : l[0];
  if (!ShapedType::isDynamic(rows) && rows % kScaleGroupSize != 0)
    return emitOpError() << "contraction dimension M = " << rows
                         << " is not a multiple of the " << kScaleGroupSize
                         << "-element scaling group: lay the rows out with "
                            "octet_tq.align_groups";
  if (failed(verifyGroupIndex(*this, getGroupIndex(), l[0])) ||
      failed(verifyGroupedPromotion(*this, getPromotion())))
    return failure();
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  if (shape.size() != 3 ||
      !shapesCompatible(shape.drop_front(), {l[1], r[1]}))
    return emitOpError() << "result shape " << formatShape(shape)
                         << ", expected [experts, " << formatDim(l[1]) << ", "
                         << formatDim(r[1]) << "]";
  return success();
}

//===----------------------------------------------------------------------===//
// AlignGroupsOp, UnalignGroupsOp
//===----------------------------------------------------------------------===//

int64_t AlignGroupsOp::getAlignedRows(int64_t rows, int64_t experts) {
  assert(!ShapedType::isDynamic(rows) && !ShapedType::isDynamic(experts) &&
         "the aligned row bound needs static sizes");
  // At most min(rows, experts) runs are not empty, each padded by at most
  // 127 rows; the total is a multiple of 128.
  return (rows + (kScaleGroupSize - 1) * std::min(rows, experts)) /
         kScaleGroupSize * kScaleGroupSize;
}

/// The checks align_groups and unalign_groups share: `dense` is the
/// [R, C] side, `aligned` the [P, C] side.
static LogicalResult verifyAlignment(Operation *op, RankedTensorType dense,
                                     RankedTensorType aligned,
                                     RankedTensorType sizes) {
  if (dense.getRank() != 2 || aligned.getRank() != 2)
    return op->emitOpError() << "operand and result must have rank 2, got "
                             << formatShape(dense.getShape()) << " and "
                             << formatShape(aligned.getShape());
  if (dense.getElementType() != aligned.getElementType())
    return op->emitOpError() << "operand and result element types differ: "
                             << dense.getElementType() << " and "
                             << aligned.getElementType();
  if (!dimsCompatible(dense.getDimSize(1), aligned.getDimSize(1)))
    return op->emitOpError() << "column counts differ: "
                             << formatDim(dense.getDimSize(1)) << " and "
                             << formatDim(aligned.getDimSize(1));
  if (sizes.getRank() != 1)
    return op->emitOpError() << "group_sizes must have rank 1, got "
                             << formatShape(sizes.getShape());
  int64_t rows = dense.getDimSize(0), experts = sizes.getDimSize(0);
  int64_t padded = aligned.getDimSize(0);
  if (ShapedType::isDynamic(padded))
    return success();
  if (padded % kScaleGroupSize != 0)
    return op->emitOpError() << "the aligned side has " << padded
                             << " rows, not a multiple of " << kScaleGroupSize;
  if (ShapedType::isDynamic(rows) || ShapedType::isDynamic(experts))
    return success();
  int64_t needed = AlignGroupsOp::getAlignedRows(rows, experts);
  if (padded < needed)
    return op->emitOpError()
           << "the aligned side has " << padded << " rows; " << rows
           << " rows of " << experts << " experts may need " << needed;
  return success();
}

LogicalResult AlignGroupsOp::verify() {
  if (failed(verifyAlignment(*this, getInput().getType(), getResult().getType(),
                             getGroupSizes().getType())))
    return failure();
  return verifyGroupIndex(*this, getGroupIndex(),
                          getResult().getType().getDimSize(0), "the result");
}

LogicalResult UnalignGroupsOp::verify() {
  return verifyAlignment(*this, getResult().getType(), getInput().getType(),
                         getGroupSizes().getType());
}

//===----------------------------------------------------------------------===//
// RMSNormQuantizeOp, SwiGLUQuantizeOp
//===----------------------------------------------------------------------===//

/// The result of a fused producer + quantize: 1x128 tiles over `shape`.
static LogicalResult verifyFusedQuantize(Operation *op, ArrayRef<int64_t> shape,
                                         QTensorType result) {
  if (result.getGranularity() != Granularity::Tile1x128)
    return op->emitOpError()
           << "result must be tile_1x128, got "
           << stringifyGranularity(result.getGranularity());
  return verifySameShape(op, shape, result.getShape());
}

LogicalResult RMSNormQuantizeOp::verify() {
  ArrayRef<int64_t> x = getX().getType().getShape();
  ArrayRef<int64_t> gamma = getGamma().getType().getShape();
  if (x.empty() || gamma.size() != 1 || !dimsCompatible(gamma[0], x.back()))
    return emitOpError() << "gamma must be a vector of the last dimension of x ("
                         << (x.empty() ? "none" : formatDim(x.back()))
                         << "), got " << formatShape(gamma);
  if (!(getEpsilon().convertToDouble() > 0))
    return emitOpError() << "epsilon must be positive";
  return verifyFusedQuantize(*this, x, getResult().getType());
}

LogicalResult SwiGLUQuantizeOp::verify() {
  if (getGate().getType() != getUp().getType())
    return emitOpError() << "gate and up must have one type, got "
                         << getGate().getType() << " and " << getUp().getType();
  return verifyFusedQuantize(*this, getGate().getType().getShape(),
                             getResult().getType());
}
