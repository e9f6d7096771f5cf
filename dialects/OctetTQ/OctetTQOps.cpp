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
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  if (!dimsCompatible(l[1], r[2]))
    return emitOpError() << "contraction sizes differ: lhs has K = "
                         << formatDim(l[1]) << ", rhs has K = "
                         << formatDim(r[2]);
  if (!ShapedType::isDynamic(l[1]) && l[1] % kScaleGroupSize != 0)
    return emitOpError() << "contraction dimension K = " << l[1]
                         << " is not a multiple of the " << kScaleGroupSize
                         << "-element scaling group";
  auto groups = cast<RankedTensorType>(getGroupIndex().getType());
  if (groups.getRank() != 1 || !dimsCompatible(groups.getDimSize(0), l[0]))
    return emitOpError() << "group_index must be tensor<" << formatDim(l[0])
                         << "xi32>, one expert per row of lhs";
  int64_t promotion = getPromotion();
  if (promotion <= 0 || promotion % kFP8MmaK != 0 ||
      kScaleGroupSize % promotion != 0)
    return emitOpError() << "promotion interval " << promotion
                         << " must be 32, 64 or 128: a multiple of one FP8 "
                            "wgmma that divides the scaling group";
  SmallVector<int64_t, 2> expected = {l[0], r[1]};
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  if (!shapesCompatible(shape, expected))
    return emitOpError() << "result shape " << formatShape(shape)
                         << ", expected " << formatShape(expected);
  return success();
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
