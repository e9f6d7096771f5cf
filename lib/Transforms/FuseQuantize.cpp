//===- FuseQuantize.cpp - Quantization fused into its producer ------------===//
//
// Looks through one tensor.collapse_shape that keeps the last dimension on
// its own (the 1x128 groups run along it), so that the fused op sees the
// same rows as the quantization did.
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace octet {
#define GEN_PASS_DEF_FUSEQUANTIZEPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;

namespace {

/// The collapse_shape between a producer and its quantization, if it only
/// merges leading dimensions.
tensor::CollapseShapeOp leadingCollapse(Value v) {
  auto collapse = v.getDefiningOp<tensor::CollapseShapeOp>();
  if (!collapse)
    return nullptr;
  SmallVector<ReassociationIndices> groups =
      collapse.getReassociationIndices();
  int64_t lastDim = collapse.getSrcType().getRank() - 1;
  if (groups.empty() || groups.back().size() != 1 ||
      groups.back().front() != lastDim)
    return nullptr;
  return collapse;
}

struct FuseQuantizePass
    : public octet::impl::FuseQuantizePassBase<FuseQuantizePass> {
  void runOnOperation() override {
    SmallVector<tq::QuantizeOp> candidates;
    getOperation()->walk([&](tq::QuantizeOp q) {
      if (q.getResult().getType().getGranularity() == tq::Granularity::Tile1x128)
        candidates.push_back(q);
    });
    for (tq::QuantizeOp q : candidates)
      fuse(q);
  }

  void fuse(tq::QuantizeOp q) {
    Value input = q.getInput();
    tensor::CollapseShapeOp collapse = leadingCollapse(input);
    Value produced = collapse ? collapse.getSrc() : input;
    Operation *producer = produced.getDefiningOp();
    if (!producer || !isa<RMSNormOp, SwiGLUOp>(producer))
      return;
    // The fused op rounds y to its input's type, as the producer's result.
    if (producer->getOperand(0).getType() != produced.getType())
      return;
    OpBuilder b(q);
    // The producer's row operands, collapsed like its result was.
    auto rows = [&](Value v) -> Value {
      if (!collapse)
        return v;
      return tensor::CollapseShapeOp::create(
          b, collapse.getLoc(), v, collapse.getReassociationIndices());
    };
    Operation *fused;
    if (auto norm = dyn_cast<RMSNormOp>(producer))
      fused = tq::RMSNormQuantizeOp::create(
          b, q.getLoc(), q.getResult().getType(), rows(norm.getX()),
          norm.getGamma(), norm.getEpsilonAttr(), q.getPow2Attr());
    else {
      auto swiglu = cast<SwiGLUOp>(producer);
      fused = tq::SwiGLUQuantizeOp::create(
          b, q.getLoc(), q.getResult().getType(), rows(swiglu.getGate()),
          rows(swiglu.getUp()), q.getPow2Attr());
    }
    // Pipeline stage tags and the like carry over.
    for (NamedAttribute attr : q->getDiscardableAttrs())
      fused->setAttr(attr.getName(), attr.getValue());
    q.getResult().replaceAllUsesWith(fused->getResult(0));
    q.erase();
    if (collapse && collapse.use_empty())
      collapse.erase();
    if (producer->use_empty())
      producer->erase();
  }
};

} // namespace
