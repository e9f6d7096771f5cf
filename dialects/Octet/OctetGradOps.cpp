//===- OctetGradOps.cpp - Verifiers of the backward and optimizer ops -----===//
//
// A gradient has the type of the value it is the gradient of; these checks
// pin that and the shape of the incoming output gradient. The contraction
// dimensions of backward GEMMs are not required to be multiples of 128: the
// quantization lowering pads them (zero padding leaves every scale as the
// partial group has it).
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/Octet/Octet.h"

#include "VerifyUtils.h"

using namespace mlir;
using namespace octet;
using namespace octet::detail;

/// `grad` must have exactly the type of `primal`.
static LogicalResult verifySameType(Operation *op, StringRef what, Value grad,
                                    Value primal) {
  if (grad.getType() == primal.getType())
    return success();
  return op->emitOpError() << what << " has type " << grad.getType()
                           << ", expected " << primal.getType();
}

LogicalResult EmbeddingGradOp::verify() {
  auto table = getDtable().getType();
  if (failed(verifyRank(*this, "table gradient", table, 2)))
    return failure();
  SmallVector<int64_t> expected(getIds().getType().getShape());
  expected.push_back(table.getDimSize(1));
  return verifyShapeIs(*this, "output gradient", getDout().getType(), expected);
}

LogicalResult LinearDgradOp::verify() {
  auto dy = getDy().getType();
  auto w = getW().getType();
  if (dy.getRank() < 1)
    return emitOpError("output gradient must have rank >= 1");
  if (failed(verifyRank(*this, "weight", w, 2)))
    return failure();
  if (!dimsCompatible(dy.getDimSize(dy.getRank() - 1), w.getDimSize(0)))
    return emitOpError() << "weight is [N, K] = " << formatShape(w.getShape())
                         << " but the output gradient's last dimension is "
                         << formatDim(dy.getDimSize(dy.getRank() - 1));
  SmallVector<int64_t> expected(dy.getShape().drop_back());
  expected.push_back(w.getDimSize(1));
  if (failed(
          verifyShapeIs(*this, "input gradient", getDx().getType(), expected)))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true,
                         ShapedType::kDynamic, Value());
}

LogicalResult LinearWgradOp::verify() {
  auto dy = getDy().getType();
  auto x = getX().getType();
  if (dy.getRank() < 1 || x.getRank() != dy.getRank())
    return emitOpError() << "output gradient and input must have the same "
                            "rank >= 1, got "
                         << formatShape(dy.getShape()) << " and "
                         << formatShape(x.getShape());
  if (!shapesCompatible(dy.getShape().drop_back(), x.getShape().drop_back()))
    return emitOpError() << "token dimensions differ: "
                         << formatShape(dy.getShape()) << " vs "
                         << formatShape(x.getShape());
  if (failed(verifyShapeIs(*this, "weight gradient", getDw().getType(),
                           {dy.getShape().back(), x.getShape().back()})))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true,
                         ShapedType::kDynamic, Value());
}

LogicalResult BiasGradOp::verify() {
  auto dy = getDy().getType();
  if (dy.getRank() < 1)
    return emitOpError("output gradient must have rank >= 1");
  return verifyShapeIs(*this, "bias gradient", getDb().getType(),
                       {dy.getShape().back()});
}

LogicalResult BatchMatmulGradOp::verify() {
  if (failed(verifySameType(*this, "lhs gradient", getDlhs(), getLhs())) ||
      failed(verifySameType(*this, "rhs gradient", getDrhs(), getRhs())))
    return failure();
  auto lhs = getLhs().getType();
  auto rhs = getRhs().getType();
  if (lhs.getRank() < 2 || lhs.getRank() != rhs.getRank())
    return emitOpError() << "operands must have the same rank >= 2, got "
                         << formatShape(lhs.getShape()) << " and "
                         << formatShape(rhs.getShape());
  int64_t rank = lhs.getRank();
  SmallVector<int64_t> expected(lhs.getShape().drop_back(2));
  expected.push_back(lhs.getDimSize(rank - 2));
  expected.push_back(rhs.getDimSize(getTransposeRhs() ? rank - 2 : rank - 1));
  if (failed(
          verifyShapeIs(*this, "output gradient", getDy().getType(), expected)))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true,
                         ShapedType::kDynamic, Value());
}

LogicalResult GroupedLinearDgradOp::verify() {
  auto dy = getDy().getType();
  auto w = getW().getType();
  if (failed(verifyRank(*this, "output gradient", dy, 2)) ||
      failed(verifyRank(*this, "weight", w, 3)))
    return failure();
  if (!dimsCompatible(dy.getDimSize(1), w.getDimSize(1)))
    return emitOpError() << "weight is [E, N, K] = "
                         << formatShape(w.getShape())
                         << " but the output gradient's N is "
                         << formatDim(dy.getDimSize(1));
  if (failed(verifyShapeIs(*this, "group_sizes", getGroupSizes().getType(),
                           {w.getDimSize(0)})) ||
      failed(verifyShapeIs(*this, "input gradient", getDx().getType(),
                           {dy.getDimSize(0), w.getDimSize(2)})))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true,
                         ShapedType::kDynamic, Value());
}

LogicalResult GroupedLinearWgradOp::verify() {
  auto dy = getDy().getType();
  auto x = getX().getType();
  if (failed(verifyRank(*this, "output gradient", dy, 2)) ||
      failed(verifyRank(*this, "input", x, 2)))
    return failure();
  if (!dimsCompatible(dy.getDimSize(0), x.getDimSize(0)))
    return emitOpError() << "output gradient has "
                         << formatDim(dy.getDimSize(0)) << " rows, the input "
                         << formatDim(x.getDimSize(0));
  auto sizes = getGroupSizes().getType();
  if (failed(verifyRank(*this, "group_sizes", sizes, 1)) ||
      failed(verifyShapeIs(
          *this, "weight gradient", getDw().getType(),
          {sizes.getDimSize(0), dy.getDimSize(1), x.getDimSize(1)})))
    return failure();
  return verifyPrecision(*this, getPrecision(), /*isGemm=*/true,
                         ShapedType::kDynamic, Value());
}

LogicalResult RMSNormGradOp::verify() {
  if (failed(verifySameType(*this, "input gradient", getDx(), getX())) ||
      failed(verifySameType(*this, "gamma gradient", getDgamma(), getGamma())))
    return failure();
  auto x = getX().getType();
  if (x.getRank() < 1)
    return emitOpError("input must have rank >= 1");
  if (failed(verifyShapeIs(*this, "gamma", getGamma().getType(),
                           {x.getShape().back()})) ||
      failed(verifyShapeIs(*this, "output gradient", getDy().getType(),
                           x.getShape())))
    return failure();
  if (!(getEpsilon().convertToDouble() > 0.0))
    return emitOpError() << "epsilon must be positive, got "
                         << getEpsilon().convertToDouble();
  return success();
}

LogicalResult RotaryGradOp::verify() {
  if (failed(verifySameType(*this, "input gradient", getDx(), getDy())))
    return failure();
  return verifyRotary(*this, "output gradient", getDy().getType(), getTheta());
}

LogicalResult CausalAttentionGradOp::verify() {
  if (failed(verifySameType(*this, "q gradient", getDq(), getQ())) ||
      failed(verifySameType(*this, "k gradient", getDk(), getK())) ||
      failed(verifySameType(*this, "v gradient", getDv(), getV())))
    return failure();
  auto q = getQ().getType();
  auto v = getV().getType();
  if (failed(verifyRank(*this, "q", q, 4)) ||
      failed(verifyRank(*this, "v", v, 4)))
    return failure();
  if (getScale() && !(getScale()->convertToDouble() > 0.0))
    return emitOpError() << "scale must be positive, got "
                         << getScale()->convertToDouble();
  return verifyShapeIs(
      *this, "output gradient", getDy().getType(),
      {q.getDimSize(0), q.getDimSize(1), q.getDimSize(2), v.getDimSize(3)});
}

LogicalResult SwiGLUGradOp::verify() {
  auto gate = getGate().getType();
  if (failed(verifyShapeIs(*this, "up", getUp().getType(), gate.getShape())) ||
      failed(verifyShapeIs(*this, "output gradient", getDy().getType(),
                           gate.getShape())) ||
      failed(verifySameType(*this, "gate gradient", getDgate(), getGate())) ||
      failed(verifySameType(*this, "up gradient", getDup(), getUp())))
    return failure();
  return success();
}

LogicalResult MoEGateGradOp::verify() {
  if (failed(verifySameType(*this, "input gradient", getDx(), getX())) ||
      failed(verifySameType(*this, "router weight gradient", getDw(), getW())))
    return failure();
  auto indices = getIndices().getType();
  if (failed(verifyRank(*this, "indices", indices, 2)) ||
      failed(verifyShapeIs(*this, "weights gradient", getDweights().getType(),
                           indices.getShape())))
    return failure();
  if (!(getRoutedScalingFactor().convertToDouble() > 0.0))
    return emitOpError() << "routed_scaling_factor must be positive, got "
                         << getRoutedScalingFactor().convertToDouble();
  return success();
}

LogicalResult MoEDispatchGradOp::verify() {
  auto drows = getDrows().getType();
  auto indices = getIndices().getType();
  if (failed(verifyRank(*this, "rows gradient", drows, 2)) ||
      failed(verifyRank(*this, "indices", indices, 2)))
    return failure();
  int64_t experts = getNumExperts();
  if (experts <= 0)
    return emitOpError() << "number of experts must be positive, got "
                         << experts;
  int64_t t = indices.getDimSize(0), k = indices.getDimSize(1);
  int64_t rows = ShapedType::isDynamic(t) || ShapedType::isDynamic(k)
                     ? ShapedType::kDynamic
                     : t * k;
  if (!dimsCompatible(drows.getDimSize(0), rows))
    return emitOpError() << "rows gradient has "
                         << formatDim(drows.getDimSize(0))
                         << " rows, expected tokens x top_k = "
                         << formatDim(rows);
  return verifyShapeIs(*this, "input gradient", getDx().getType(),
                       {t, drows.getDimSize(1)});
}

LogicalResult MoECombineGradOp::verify() {
  if (failed(verifySameType(*this, "rows gradient", getDrows(), getRows())) ||
      failed(verifySameType(*this, "weights gradient", getDweights(),
                            getWeights())))
    return failure();
  auto rows = getRows().getType();
  auto indices = getIndices().getType();
  if (failed(verifyRank(*this, "rows", rows, 2)) ||
      failed(verifyRank(*this, "indices", indices, 2)))
    return failure();
  return verifyShapeIs(*this, "output gradient", getDy().getType(),
                       {indices.getDimSize(0), rows.getDimSize(1)});
}

LogicalResult CrossEntropyGradOp::verify() {
  if (failed(
          verifySameType(*this, "logits gradient", getDlogits(), getLogits())))
    return failure();
  auto logits = getLogits().getType();
  if (logits.getRank() < 1)
    return emitOpError("logits must have rank >= 1");
  return verifyShapeIs(*this, "labels", getLabels().getType(),
                       logits.getShape().drop_back());
}

LogicalResult GradAccumulateOp::verify() {
  if (getParam().empty())
    return emitOpError("parameter name must not be empty");
  // The parameter must be declared in the same function, trainable, and of
  // the gradient's shape.
  Operation *scope = (*this)->getParentOp();
  while (scope && !scope->hasTrait<OpTrait::IsIsolatedFromAbove>())
    scope = scope->getParentOp();
  if (!scope)
    return success();
  ParamOp found;
  scope->walk([&](ParamOp p) {
    if (p.getName() == getParam()) {
      found = p;
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (!found)
    return emitOpError() << "no octet.param named '" << getParam()
                         << "' in this function";
  if (found.getFrozen())
    return emitOpError() << "parameter '" << getParam()
                         << "' is frozen: it has no gradient";
  if (!shapesCompatible(found.getType().getShape(),
                        getGrad().getType().getShape()))
    return emitOpError() << "gradient has shape "
                         << formatShape(getGrad().getType().getShape())
                         << ", parameter '" << getParam() << "' has shape "
                         << formatShape(found.getType().getShape());
  return success();
}

LogicalResult AdamWStepOp::verify() {
  if (getParam().empty())
    return emitOpError("parameter name must not be empty");
  auto inUnitInterval = [](double v) { return v >= 0.0 && v < 1.0; };
  if (!inUnitInterval(getBeta1().convertToDouble()) ||
      !inUnitInterval(getBeta2().convertToDouble()))
    return emitOpError() << "betas must lie in [0, 1), got ("
                         << getBeta1().convertToDouble() << ", "
                         << getBeta2().convertToDouble() << ")";
  if (!(getEps().convertToDouble() > 0.0))
    return emitOpError() << "eps must be positive, got "
                         << getEps().convertToDouble();
  if (!(getWeightDecay().convertToDouble() >= 0.0))
    return emitOpError() << "weight_decay must be non-negative, got "
                         << getWeightDecay().convertToDouble();
  return success();
}
