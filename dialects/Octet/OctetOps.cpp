//===- OctetOps.cpp - octet dialect operation verifiers -------------------===//

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Support/ShapeUtils.h"

#include "VerifyUtils.h"
#include "octet/Dialect/ShortFloat.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/Support/Format.h"

#include <charconv>
#include <cmath>

using namespace mlir;
using namespace octet;
using namespace octet::detail;

//===----------------------------------------------------------------------===//
// Assembly helpers
//===----------------------------------------------------------------------===//

/// ` scale(<float>)` when the attention scale is set.
static void printOptionalScale(OpAsmPrinter &printer, Operation *op,
                               FloatAttr attr) {
  if (!attr)
    return;
  printer << "scale(";
  printShortFloat(printer, op, attr);
  printer << ")";
}

static ParseResult parseOptionalScale(OpAsmParser &parser, FloatAttr &attr) {
  if (failed(parser.parseOptionalKeyword("scale")))
    return success();
  if (parser.parseLParen() || parseShortFloat(parser, attr) ||
      parser.parseRParen())
    return failure();
  return success();
}

#define GET_OP_CLASSES
#include "octet/Dialect/Octet/OctetOps.cpp.inc"

//===----------------------------------------------------------------------===//
// ParamOp
//===----------------------------------------------------------------------===//

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("parameter name must not be empty");
  // Names are checkpoint keys: a duplicate would make two parameters share
  // one tensor in every checkpoint. Only earlier siblings are scanned, so
  // each duplicate is reported once, at its second occurrence.
  for (Operation *prev = getOperation()->getPrevNode(); prev;
       prev = prev->getPrevNode()) {
    auto other = dyn_cast<ParamOp>(prev);
    if (other && other.getName() == getName())
      return emitOpError() << "parameter '" << getName()
                           << "' is already declared in this block";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  auto table = getTable().getType();
  auto ids = getIds().getType();
  if (failed(verifyRank(*this, "table", table, 2)))
    return failure();
  SmallVector<int64_t> expected(ids.getShape());
  expected.push_back(table.getDimSize(1));
  if (failed(verifyShapeIs(*this, "result", getType(), expected)))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/false,
                         ShapedType::kDynamic, getResult());
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  auto x = getX().getType();
  auto w = getW().getType();
  if (x.getRank() < 1)
    return emitOpError("input must have rank >= 1");
  if (failed(verifyRank(*this, "weight", w, 2)))
    return failure();
  int64_t k = x.getDimSize(x.getRank() - 1);
  int64_t n = w.getDimSize(0);
  if (!dimsCompatible(w.getDimSize(1), k))
    return emitOpError() << "weight is [N, K] = " << formatShape(w.getShape())
                         << " but the input's last dimension is K = "
                         << formatDim(k);
  if (getBias()) {
    auto bias = getBias().getType();
    if (failed(verifyShapeIs(*this, "bias", bias, {n})))
      return failure();
  }
  SmallVector<int64_t> expected(x.getShape().drop_back());
  expected.push_back(n);
  if (failed(verifyShapeIs(*this, "result", getType(), expected)))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true, k,
                         getResult());
}

//===----------------------------------------------------------------------===//
// BatchMatmulOp
//===----------------------------------------------------------------------===//

LogicalResult BatchMatmulOp::verify() {
  auto lhs = getLhs().getType();
  auto rhs = getRhs().getType();
  if (lhs.getRank() < 2 || lhs.getRank() != rhs.getRank())
    return emitOpError() << "operands must have the same rank >= 2, got "
                         << formatShape(lhs.getShape()) << " and "
                         << formatShape(rhs.getShape());
  int64_t rank = lhs.getRank();
  ArrayRef<int64_t> batch = lhs.getShape().drop_back(2);
  if (!shapesCompatible(batch, rhs.getShape().drop_back(2)))
    return emitOpError() << "batch dimensions differ: "
                         << formatShape(lhs.getShape()) << " vs "
                         << formatShape(rhs.getShape());
  int64_t m = lhs.getDimSize(rank - 2);
  int64_t k = lhs.getDimSize(rank - 1);
  int64_t rhsK = rhs.getDimSize(getTransposeRhs() ? rank - 1 : rank - 2);
  int64_t n = rhs.getDimSize(getTransposeRhs() ? rank - 2 : rank - 1);
  if (!dimsCompatible(k, rhsK))
    return emitOpError() << "contraction sizes differ: lhs K = " << formatDim(k)
                         << ", rhs K = " << formatDim(rhsK)
                         << (getTransposeRhs() ? " (rhs is [..., N, K])"
                                               : " (rhs is [..., K, N])");
  SmallVector<int64_t> expected(batch);
  expected.push_back(m);
  expected.push_back(n);
  if (failed(verifyShapeIs(*this, "result", getType(), expected)))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true, k,
                         getResult());
}

//===----------------------------------------------------------------------===//
// GroupedLinearOp
//===----------------------------------------------------------------------===//

LogicalResult GroupedLinearOp::verify() {
  auto x = getX().getType();
  auto w = getW().getType();
  auto sizes = getGroupSizes().getType();
  if (failed(verifyRank(*this, "input", x, 2)) ||
      failed(verifyRank(*this, "weight", w, 3)))
    return failure();
  int64_t e = w.getDimSize(0);
  int64_t n = w.getDimSize(1);
  int64_t k = x.getDimSize(1);
  if (!dimsCompatible(w.getDimSize(2), k))
    return emitOpError() << "weight is [E, N, K] = "
                         << formatShape(w.getShape())
                         << " but the input's K is " << formatDim(k);
  if (failed(verifyShapeIs(*this, "group_sizes", sizes, {e})))
    return failure();
  if (failed(verifyShapeIs(*this, "result", getType(), {x.getDimSize(0), n})))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true, k,
                         getResult());
}

//===----------------------------------------------------------------------===//
// Normalisation, rotary, attention, elementwise
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  auto x = getX().getType();
  if (x.getRank() < 1)
    return emitOpError("input must have rank >= 1");
  if (failed(verifyShapeIs(*this, "gamma", getGamma().getType(),
                           {x.getDimSize(x.getRank() - 1)})))
    return failure();
  if (!(getEpsilon().convertToDouble() > 0.0))
    return emitOpError() << "epsilon must be positive, got "
                         << getEpsilon().convertToDouble();
  if (failed(verifyShapeIs(*this, "result", getType(), x.getShape())))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getResult());
}

LogicalResult RotaryOp::verify() {
  auto x = getX().getType();
  if (failed(verifyRotary(*this, "input", x, getTheta())))
    return failure();
  if (failed(verifyShapeIs(*this, "result", getType(), x.getShape())))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getResult());
}

LogicalResult CausalAttentionOp::verify() {
  auto q = getQ().getType();
  auto k = getK().getType();
  auto v = getV().getType();
  if (failed(verifyRank(*this, "q", q, 4)) ||
      failed(verifyRank(*this, "k", k, 4)) ||
      failed(verifyRank(*this, "v", v, 4)))
    return failure();
  int64_t b = q.getDimSize(0), s = q.getDimSize(1), hq = q.getDimSize(2);
  int64_t hkv = k.getDimSize(2), dqk = q.getDimSize(3);
  if (failed(verifyShapeIs(*this, "k", k, {b, s, hkv, dqk})) ||
      failed(verifyShapeIs(*this, "v", v, {b, s, hkv, v.getDimSize(3)})))
    return failure();
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hkv) &&
      (hkv == 0 || hq % hkv != 0))
    return emitOpError() << "query heads (" << hq
                         << ") must be a multiple of key/value heads (" << hkv
                         << ")";
  if (getScale() && !(getScale()->convertToDouble() > 0.0))
    return emitOpError() << "scale must be positive, got "
                         << getScale()->convertToDouble();
  if (failed(verifyShapeIs(*this, "result", getType(),
                           {b, s, hq, v.getDimSize(3)})))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getResult());
}

LogicalResult SwiGLUOp::verify() {
  auto gate = getGate().getType();
  if (failed(verifyShapeIs(*this, "up", getUp().getType(), gate.getShape())) ||
      failed(verifyShapeIs(*this, "result", getType(), gate.getShape())))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getResult());
}

LogicalResult AddOp::verify() {
  auto lhs = getLhs().getType();
  if (failed(verifyShapeIs(*this, "rhs", getRhs().getType(), lhs.getShape())) ||
      failed(verifyShapeIs(*this, "result", getType(), lhs.getShape())))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getResult());
}

//===----------------------------------------------------------------------===//
// MoE
//===----------------------------------------------------------------------===//

LogicalResult MoEGateOp::verify() {
  auto x = getX().getType();
  auto w = getW().getType();
  if (failed(verifyRank(*this, "input", x, 2)) ||
      failed(verifyRank(*this, "router weight", w, 2)))
    return failure();
  int64_t t = x.getDimSize(0);
  int64_t e = w.getDimSize(0);
  if (!dimsCompatible(w.getDimSize(1), x.getDimSize(1)))
    return emitOpError() << "router weight is [E, D] = "
                         << formatShape(w.getShape())
                         << " but the input's D is "
                         << formatDim(x.getDimSize(1));
  if (getBias() &&
      failed(verifyShapeIs(*this, "bias", getBias().getType(), {e})))
    return failure();

  int64_t topK = getTopK(), groups = getNGroup(), topkGroup = getTopkGroup();
  if (topK <= 0)
    return emitOpError() << "top_k must be positive, got " << topK;
  if (groups <= 0 || topkGroup <= 0 || topkGroup > groups)
    return emitOpError() << "groups(" << groups << ", " << topkGroup
                         << ") must satisfy 0 < topk_group <= n_group";
  if (!(getRoutedScalingFactor().convertToDouble() > 0.0))
    return emitOpError() << "routed_scaling_factor must be positive, got "
                         << getRoutedScalingFactor().convertToDouble();
  if (!ShapedType::isDynamic(e)) {
    if (e % groups != 0)
      return emitOpError() << e << " experts do not divide into " << groups
                           << " groups";
    int64_t eligible = (e / groups) * topkGroup;
    if (topK > eligible)
      return emitOpError() << "top_k = " << topK << " exceeds the " << eligible
                           << " experts of the " << topkGroup
                           << " eligible groups";
  }
  if (failed(
          verifyShapeIs(*this, "weights", getWeights().getType(), {t, topK})) ||
      failed(
          verifyShapeIs(*this, "indices", getIndices().getType(), {t, topK})))
    return failure();
  // Outputs are fixed to f32/i32; only the compute format is checked.
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         Value());
}

LogicalResult MoEDispatchOp::verify() {
  auto x = getX().getType();
  auto indices = getIndices().getType();
  if (failed(verifyRank(*this, "input", x, 2)) ||
      failed(verifyRank(*this, "indices", indices, 2)))
    return failure();
  int64_t experts = getNumExperts();
  if (experts <= 0)
    return emitOpError() << "number of experts must be positive, got "
                         << experts;
  int64_t t = x.getDimSize(0);
  int64_t k = indices.getDimSize(1);
  if (!dimsCompatible(indices.getDimSize(0), t))
    return emitOpError() << "indices cover " << formatDim(indices.getDimSize(0))
                         << " tokens, the input has " << formatDim(t);
  int64_t rows = ShapedType::isDynamic(t) || ShapedType::isDynamic(k)
                     ? ShapedType::kDynamic
                     : t * k;
  if (failed(verifyShapeIs(*this, "rows", getRows().getType(),
                           {rows, x.getDimSize(1)})) ||
      failed(verifyShapeIs(*this, "group_sizes", getGroupSizes().getType(),
                           {experts})))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getRows());
}

LogicalResult MoECombineOp::verify() {
  auto rows = getRows().getType();
  auto weights = getWeights().getType();
  auto indices = getIndices().getType();
  if (failed(verifyRank(*this, "rows", rows, 2)) ||
      failed(verifyRank(*this, "indices", indices, 2)))
    return failure();
  int64_t t = indices.getDimSize(0), k = indices.getDimSize(1);
  if (failed(verifyShapeIs(*this, "weights", weights, indices.getShape())))
    return failure();
  int64_t expectedRows = ShapedType::isDynamic(t) || ShapedType::isDynamic(k)
                             ? ShapedType::kDynamic
                             : t * k;
  if (!dimsCompatible(rows.getDimSize(0), expectedRows))
    return emitOpError() << "rows has " << formatDim(rows.getDimSize(0))
                         << " rows, expected tokens x top_k = "
                         << formatDim(expectedRows);
  if (failed(
          verifyShapeIs(*this, "result", getType(), {t, rows.getDimSize(1)})))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getResult());
}

//===----------------------------------------------------------------------===//
// CrossEntropyOp
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyOp::verify() {
  auto logits = getLogits().getType();
  auto labels = getLabels().getType();
  if (logits.getRank() < 1)
    return emitOpError("logits must have rank >= 1");
  if (failed(verifyShapeIs(*this, "labels", labels,
                           logits.getShape().drop_back())))
    return failure();
  return verifyPrecision(*this, getPrecision(), false, ShapedType::kDynamic,
                         getLoss());
}
