//===- VerifyUtils.h - Checks shared by the octet op verifiers --*- C++ -*-===//
//
// Private to dialects/Octet: the forward ops (OctetOps.cpp) and their
// gradient ops (OctetGradOps.cpp) verify shapes and precisions alike.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECTS_OCTET_VERIFYUTILS_H
#define OCTET_DIALECTS_OCTET_VERIFYUTILS_H

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Support/ShapeUtils.h"

namespace octet::detail {

using namespace mlir;

/// Checks that `actual` (the type of the value called `what`) has exactly the
/// `expected` shape.
inline LogicalResult verifyShapeIs(Operation *op, StringRef what,
                                   RankedTensorType actual,
                                   ArrayRef<int64_t> expected) {
  if (shapesCompatible(actual.getShape(), expected))
    return success();
  return op->emitOpError() << what << " has shape "
                           << formatShape(actual.getShape()) << ", expected "
                           << formatShape(expected);
}

inline LogicalResult verifyRank(Operation *op, StringRef what,
                                RankedTensorType type, int64_t rank) {
  if (type.getRank() == rank)
    return success();
  return op->emitOpError() << what << " must have rank " << rank << ", got "
                           << formatShape(type.getShape());
}

/// Rotary embedding (forward and gradient): `type` is [B, S, H, D] with D
/// even, since the rotation acts on pairs, and theta is positive.
inline LogicalResult verifyRotary(Operation *op, StringRef what,
                                  RankedTensorType type, llvm::APFloat theta) {
  if (failed(verifyRank(op, what, type, 4)))
    return failure();
  int64_t d = type.getDimSize(3);
  if (!ShapedType::isDynamic(d) && d % 2 != 0)
    return op->emitOpError()
           << "head dimension " << d << " must be even (rotary rotates pairs)";
  if (!(theta.convertToDouble() > 0.0))
    return op->emitOpError()
           << "theta must be positive, got " << theta.convertToDouble();
  return success();
}

/// Verifies the precision annotation of `op` against its role: FP8 formats
/// only on GEMMs (`k` is then the contraction size), and the annotated output
/// type must be the element type of `result` (when given).
inline LogicalResult verifyPrecision(Operation *op,
                                     std::optional<PrecisionAttr> precision,
                                     bool isGemm, int64_t k, Value result) {
  if (!precision || !*precision)
    return success();
  PrecisionAttr p = *precision;
  if (p.isFP8()) {
    if (!isGemm)
      return op->emitOpError()
             << "precision format '" << stringifyComputeFormat(p.getFormat())
             << "' is only valid on GEMM ops (linear, batch_matmul, "
                "grouped_linear); this op computes in bf16 or f32";
    bool grouped = PrecisionAttr::isGrouped(p.getLhsScaling()) ||
                   PrecisionAttr::isGrouped(p.getRhsScaling());
    if (!ShapedType::isDynamic(k)) {
      if (grouped && k % kScaleGroupSize != 0)
        return op->emitOpError()
               << "contraction dimension K = " << k
               << " is not a multiple of the " << kScaleGroupSize
               << "-element FP8 scaling group";
      if (p.getPromotionInterval() > k)
        return op->emitOpError()
               << "promotion interval " << p.getPromotionInterval()
               << " exceeds the contraction dimension K = " << k;
    }
  }
  if (result) {
    Type elt = cast<RankedTensorType>(result.getType()).getElementType();
    if (elt != p.getOutputType())
      return op->emitOpError() << "result element type " << elt
                               << " differs from the precision's output type "
                               << p.getOutputType();
  }
  return success();
}

} // namespace octet::detail

#endif // OCTET_DIALECTS_OCTET_VERIFYUTILS_H
