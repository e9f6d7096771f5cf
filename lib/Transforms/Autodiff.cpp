//===- Autodiff.cpp - Derive the backward graph and the optimizer ---------===//
//
// Implements --octet-autodiff: reverse-mode differentiation of the forward
// graph into @forward_backward (forward, backward, gradient accumulation)
// and @optimizer_step (AdamW), both added to the module.
//
//===----------------------------------------------------------------------===//

#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

namespace octet {
#define GEN_PASS_DEF_AUTODIFFPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;

namespace {

bool isFloatTensor(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  return tensor && isa<FloatType>(tensor.getElementType());
}

/// Builds the backward of one function body, in place, after its forward.
class Differentiator {
public:
  Differentiator(OpBuilder &builder) : b(builder) {}

  /// Differentiates the ops of `block` (all but the terminator) with respect
  /// to the trainable parameters, seeding the adjoint of `loss` with 1.
  LogicalResult run(Block &block, Value loss) {
    markActive(block);
    b.setInsertionPoint(block.getTerminator());
    Location loc = loss.getLoc();
    auto lossType = cast<RankedTensorType>(loss.getType());
    Value one = arith::ConstantOp::create(
        b, loc, lossType,
        DenseElementsAttr::get(lossType,
                               b.getFloatAttr(lossType.getElementType(), 1.0)));
    adjoints[loss] = one;

    SmallVector<Operation *> ops;
    for (Operation &op : block.without_terminator())
      ops.push_back(&op);
    Operation *terminator = block.getTerminator();
    for (Operation *op : llvm::reverse(ops)) {
      Operation *last = terminator->getPrevNode();
      if (failed(visit(op)))
        return failure();
      flushParameters(op);
      // The backward of an op runs on the op's pipeline stage.
      if (Attribute stage = op->getAttr(OctetDialect::getStageAttrName()))
        for (Operation *n = last ? last->getNextNode() : &block.front();
             n != terminator; n = n->getNextNode())
          n->setAttr(OctetDialect::getStageAttrName(), stage);
    }
    return success();
  }

  /// Trainable parameters without a gradient, in program order.
  SmallVector<ParamOp> unreached;

private:
  /// A value is active when it depends on a trainable parameter: only active
  /// values get gradients.
  void markActive(Block &block) {
    for (Operation &op : block) {
      if (auto param = dyn_cast<ParamOp>(op)) {
        if (!param.getFrozen()) {
          active.insert(param.getResult());
          // Counted before the backward adds uses of its own.
          Value v = param.getResult();
          pendingUses[v] = std::distance(v.use_begin(), v.use_end());
        }
        continue;
      }
      bool anyActive = llvm::any_of(
          op.getOperands(), [&](Value v) { return active.contains(v); });
      if (anyActive)
        for (Value r : op.getResults())
          if (isFloatTensor(r.getType()))
            active.insert(r);
    }
  }

  bool needsGrad(Value v) { return active.contains(v); }

  Value adjointOf(Value v) { return adjoints.lookup(v); }

  /// Emits the gradient accumulation of every parameter whose last user
  /// `op` was: its gradient is complete, and accumulating it now lets its
  /// buffer be freed and lets a scheduler run the accumulation early.
  void flushParameters(Operation *op) {
    for (Value operand : op->getOperands()) {
      auto param = operand.getDefiningOp<ParamOp>();
      if (!param || !needsGrad(operand))
        continue;
      if (--pendingUses[operand] == 0)
        emitAccumulate(param);
    }
  }

  void emitAccumulate(ParamOp param) {
    Value grad = adjointOf(param.getResult());
    if (!grad || !flushed.insert(param.getResult()).second)
      return;
    GradAccumulateOp::create(b, param.getLoc(), grad, param.getName());
  }

  /// Adds `grad` into the adjoint of `v` (an octet.add when `v` already has
  /// one, as when a value feeds several ops).
  void accumulate(Value v, Value grad) {
    if (!needsGrad(v) || !grad)
      return;
    Value &slot = adjoints[v];
    if (!slot) {
      slot = grad;
      return;
    }
    slot = AddOp::create(b, grad.getLoc(), v.getType(), slot, grad,
                         /*precision=*/nullptr)
               .getResult();
  }

  Value zerosLike(Location loc, Type type) {
    auto tensor = cast<RankedTensorType>(type);
    return arith::ConstantOp::create(
        b, loc, tensor,
        DenseElementsAttr::get(tensor,
                               b.getFloatAttr(tensor.getElementType(), 0.0)));
  }

  LogicalResult visit(Operation *op);

  OpBuilder &b;
  llvm::DenseSet<Value> active;
  llvm::DenseMap<Value, Value> adjoints;
  llvm::DenseMap<Value, int64_t> pendingUses;
  llvm::DenseSet<Value> flushed;
};

LogicalResult Differentiator::visit(Operation *op) {
  // Only ops with an adjoint on some result contribute.
  if (llvm::none_of(op->getResults(),
                    [&](Value r) { return adjointOf(r) != nullptr; })) {
    if (auto param = dyn_cast<ParamOp>(op); param && !param.getFrozen())
      unreached.push_back(param);
    return success();
  }
  Location loc = op->getLoc();
  Value dy = adjointOf(op->getResult(0));

  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ParamOp param) {
        emitAccumulate(param);
        return success();
      })
      .Case([&](EmbeddingOp e) {
        if (needsGrad(e.getTable()))
          accumulate(e.getTable(),
                     EmbeddingGradOp::create(b, loc, e.getTable().getType(), dy,
                                             e.getIds()));
        return success();
      })
      .Case([&](LinearOp l) {
        auto precision = l.getPrecisionAttr();
        if (needsGrad(l.getX()))
          accumulate(l.getX(), LinearDgradOp::create(b, loc, l.getX().getType(),
                                                     dy, l.getW(), precision));
        if (needsGrad(l.getW()))
          accumulate(l.getW(), LinearWgradOp::create(b, loc, l.getW().getType(),
                                                     dy, l.getX(), precision));
        if (l.getBias() && needsGrad(l.getBias()))
          accumulate(l.getBias(),
                     BiasGradOp::create(b, loc, l.getBias().getType(), dy));
        return success();
      })
      .Case([&](BatchMatmulOp m) {
        auto grad = BatchMatmulGradOp::create(
            b, loc, m.getLhs().getType(), m.getRhs().getType(), m.getLhs(),
            m.getRhs(), dy, m.getTransposeRhs(), m.getPrecisionAttr());
        accumulate(m.getLhs(), grad.getDlhs());
        accumulate(m.getRhs(), grad.getDrhs());
        return success();
      })
      .Case([&](GroupedLinearOp g) {
        auto precision = g.getPrecisionAttr();
        if (needsGrad(g.getX()))
          accumulate(g.getX(), GroupedLinearDgradOp::create(
                                   b, loc, g.getX().getType(), dy, g.getW(),
                                   g.getGroupSizes(), precision));
        if (needsGrad(g.getW()))
          accumulate(g.getW(), GroupedLinearWgradOp::create(
                                   b, loc, g.getW().getType(), dy, g.getX(),
                                   g.getGroupSizes(), precision));
        return success();
      })
      .Case([&](RMSNormOp n) {
        auto grad = RMSNormGradOp::create(b, loc, n.getX().getType(),
                                          n.getGamma().getType(), n.getX(),
                                          n.getGamma(), dy, n.getEpsilonAttr());
        accumulate(n.getX(), grad.getDx());
        accumulate(n.getGamma(), grad.getDgamma());
        return success();
      })
      .Case([&](RotaryOp r) {
        accumulate(r.getX(), RotaryGradOp::create(b, loc, r.getX().getType(),
                                                  dy, r.getThetaAttr()));
        return success();
      })
      .Case([&](CausalAttentionOp a) {
        auto grad = CausalAttentionGradOp::create(
            b, loc, a.getQ().getType(), a.getK().getType(), a.getV().getType(),
            a.getQ(), a.getK(), a.getV(), dy, a.getScaleAttr());
        accumulate(a.getQ(), grad.getDq());
        accumulate(a.getK(), grad.getDk());
        accumulate(a.getV(), grad.getDv());
        return success();
      })
      .Case([&](SwiGLUOp s) {
        auto grad = SwiGLUGradOp::create(b, loc, s.getGate().getType(),
                                         s.getUp().getType(), s.getGate(),
                                         s.getUp(), dy);
        accumulate(s.getGate(), grad.getDgate());
        accumulate(s.getUp(), grad.getDup());
        return success();
      })
      .Case([&](AddOp a) {
        accumulate(a.getLhs(), dy);
        accumulate(a.getRhs(), dy);
        return success();
      })
      .Case([&](MoEGateOp g) {
        // Only the routing weights carry a gradient; the indices are ints.
        auto grad = MoEGateGradOp::create(
            b, loc, g.getX().getType(), g.getW().getType(), g.getX(), g.getW(),
            g.getIndices(), dy, g.getRoutedScalingFactorAttr(),
            g.getScoringAttr(), g.getNormTopkProbAttr());
        accumulate(g.getX(), grad.getDx());
        accumulate(g.getW(), grad.getDw());
        return success();
      })
      .Case([&](MoEDispatchOp d) {
        accumulate(d.getX(), MoEDispatchGradOp::create(
                                 b, loc, d.getX().getType(), dy, d.getIndices(),
                                 d.getNumExpertsAttr()));
        return success();
      })
      .Case([&](MoECombineOp c) {
        auto grad = MoECombineGradOp::create(
            b, loc, c.getRows().getType(), c.getWeights().getType(),
            c.getRows(), c.getWeights(), c.getIndices(), dy,
            c.getPrecisionAttr());
        accumulate(c.getRows(), grad.getDrows());
        accumulate(c.getWeights(), grad.getDweights());
        return success();
      })
      .Case([&](CrossEntropyOp c) {
        accumulate(c.getLogits(), CrossEntropyGradOp::create(
                                      b, loc, c.getLogits().getType(),
                                      c.getLogits(), c.getLabels(), dy));
        return success();
      })
      .Case([&](tensor::ExpandShapeOp e) {
        accumulate(e.getSrc(), tensor::CollapseShapeOp::create(
                                   b, loc, e.getSrcType(), dy,
                                   e.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::CollapseShapeOp c) {
        accumulate(c.getSrc(),
                   tensor::ExpandShapeOp::create(b, loc, c.getSrcType(), dy,
                                                 c.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::ExtractSliceOp s) {
        Value zeros = zerosLike(loc, s.getSourceType());
        accumulate(s.getSource(), tensor::InsertSliceOp::create(
                                      b, loc, dy, zeros, s.getMixedOffsets(),
                                      s.getMixedSizes(), s.getMixedStrides()));
        return success();
      })
      .Case([&](tensor::ConcatOp c) {
        int64_t dim = c.getDim(), offset = 0;
        auto resultType = c.getResultType();
        for (Value input : c.getInputs()) {
          auto inputType = cast<RankedTensorType>(input.getType());
          SmallVector<OpFoldResult> offsets(resultType.getRank(),
                                            b.getIndexAttr(0));
          SmallVector<OpFoldResult> sizes,
              strides(resultType.getRank(), b.getIndexAttr(1));
          offsets[dim] = b.getIndexAttr(offset);
          for (int64_t s : inputType.getShape())
            sizes.push_back(b.getIndexAttr(s));
          accumulate(input,
                     tensor::ExtractSliceOp::create(b, loc, inputType, dy,
                                                    offsets, sizes, strides));
          offset += inputType.getDimSize(dim);
        }
        return success();
      })
      .Case([&](arith::AddFOp a) {
        accumulate(a.getLhs(), dy);
        accumulate(a.getRhs(), dy);
        return success();
      })
      .Case([&](arith::MulFOp m) {
        if (needsGrad(m.getLhs()))
          accumulate(m.getLhs(), arith::MulFOp::create(b, loc, dy, m.getRhs()));
        if (needsGrad(m.getRhs()))
          accumulate(m.getRhs(), arith::MulFOp::create(b, loc, dy, m.getLhs()));
        return success();
      })
      .Case([&](arith::DivFOp d) {
        if (needsGrad(d.getRhs())) {
          d.emitOpError()
              << "autodiff: division by an active value is not supported";
          return failure();
        }
        accumulate(d.getLhs(), arith::DivFOp::create(b, loc, dy, d.getRhs()));
        return success();
      })
      .Default([&](Operation *other) {
        other->emitOpError()
            << "autodiff: no gradient rule for this op, but its result "
               "depends on trainable parameters";
        return failure();
      });
}

struct AutodiffPass : public octet::impl::AutodiffPassBase<AutodiffPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(function);
    if (!forward) {
      module.emitError() << "autodiff: no function @" << function
                         << " to differentiate";
      return signalPassFailure();
    }
    if (!forward.getBody().hasOneBlock() ||
        forward.getFunctionType().getNumResults() < 1) {
      forward.emitError() << "autodiff: @" << function
                          << " must have one block and return the loss "
                             "(first; further results are metrics)";
      return signalPassFailure();
    }
    auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
    auto lossType = dyn_cast<RankedTensorType>(ret.getOperand(0).getType());
    if (!lossType || lossType.getRank() != 0 ||
        !isa<FloatType>(lossType.getElementType())) {
      forward.emitError() << "autodiff: @" << function
                          << " must return a scalar float loss tensor, got "
                          << ret.getOperand(0).getType();
      return signalPassFailure();
    }
    for (StringRef name : {"forward_backward", "optimizer_step"})
      if (module.lookupSymbol(name)) {
        module.emitError() << "autodiff: the module already has @" << name;
        return signalPassFailure();
      }

    OpBuilder b(module.getContext());
    b.setInsertionPointAfter(forward);
    auto fb = cast<func::FuncOp>(b.clone(*forward));
    fb.setSymName("forward_backward");
    Block &body = fb.getBody().front();
    Value loss = body.getTerminator()->getOperand(0);
    Differentiator diff(b);
    if (failed(diff.run(body, loss)))
      return signalPassFailure();
    for (ParamOp p : diff.unreached)
      p.emitWarning() << "parameter '" << p.getName()
                      << "' receives no gradient; mark it frozen if that is "
                         "intended";

    // The optimizer: one AdamW step per trainable parameter of the forward.
    b.setInsertionPointAfter(fb);
    Location loc = forward.getLoc();
    auto opt = func::FuncOp::create(
        b, loc, "optimizer_step",
        b.getFunctionType({b.getF32Type(), b.getI64Type()}, {}));
    Block *entry = opt.addEntryBlock();
    b.setInsertionPointToStart(entry);
    forward.walk([&](ParamOp p) {
      if (p.getFrozen())
        return;
      AdamWStepOp::create(
          b, p.getLoc(), b.getStringAttr(p.getName()), entry->getArgument(0),
          entry->getArgument(1), b.getF64FloatAttr(beta1),
          b.getF64FloatAttr(beta2), b.getF64FloatAttr(eps),
          b.getF64FloatAttr(weightDecay), TypeAttr::get(p.getType()));
    });
    func::ReturnOp::create(b, loc);
  }
};

} // namespace
