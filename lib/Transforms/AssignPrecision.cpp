//===- AssignPrecision.cpp - Annotate graph ops with a recipe -------------===//
//
// Implements --octet-assign-precision: fills in the `precision` attribute of
// every octet op from a named training recipe.
//
//===----------------------------------------------------------------------===//

#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"

namespace octet {
#define GEN_PASS_DEF_ASSIGNPRECISIONPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;

namespace {

enum class Recipe { DeepSeekV3, BF16, F32 };

/// Looks through shape-only tensor ops to the op that computed `value`.
Operation *getComputingOp(Value value) {
  Operation *def = value.getDefiningOp();
  while (def && isa<tensor::ReshapeOp, tensor::CollapseShapeOp,
                    tensor::ExpandShapeOp, tensor::CastOp>(def))
    def = def->getOperand(0).getDefiningOp();
  return def;
}

/// True when `value` reaches an octet.cross_entropy through shape-only ops:
/// the output head, which the recipe keeps in high precision.
bool feedsLoss(Value value) {
  for (Operation *user : value.getUsers()) {
    if (isa<CrossEntropyOp>(user))
      return true;
    if (isa<tensor::ReshapeOp, tensor::CollapseShapeOp, tensor::ExpandShapeOp,
            tensor::CastOp>(user) &&
        feedsLoss(user->getResult(0)))
      return true;
  }
  return false;
}

/// The high-precision annotation of an op: its own element type, or BF16
/// or FP32 compute when forced.
PrecisionAttr getHighPrecision(MLIRContext *ctx, Type elementType,
                               bool forceBF16 = false, bool forceF32 = false) {
  ComputeFormat format =
      forceF32 ? ComputeFormat::F32
      : (forceBF16 || elementType.isBF16()) ? ComputeFormat::BF16
                                            : ComputeFormat::F32;
  return PrecisionAttr::get(ctx, format, ScalingGranularity::None,
                            ScalingGranularity::None, ScaleRounding::FP32, 0,
                            elementType);
}

struct AssignPrecisionPass
    : public octet::impl::AssignPrecisionPassBase<AssignPrecisionPass> {
  using Base::Base;

  void runOnOperation() override {
    std::optional<Recipe> parsed =
        llvm::StringSwitch<std::optional<Recipe>>(recipe)
            .Case("deepseek-v3", Recipe::DeepSeekV3)
            .Case("bf16", Recipe::BF16)
            .Case("f32", Recipe::F32)
            .Default(std::nullopt);
    if (!parsed) {
      getOperation()->emitError() << "unknown precision recipe '" << recipe
                                  << "'; expected deepseek-v3, bf16 or f32";
      return signalPassFailure();
    }

    getOperation()->walk([&](Operation *op) {
      // Parameters carry no precision; the training IR's accumulation and
      // optimizer ops have no result to annotate.
      if (!isa<OctetDialect>(op->getDialect()) || isa<ParamOp>(op) ||
          op->getNumResults() == 0)
        return;
      if (op->hasAttr("precision") && !overrideExisting)
        return;
      if (PrecisionAttr p = choose(op, *parsed))
        op->setAttr("precision", p);
    });
  }

  /// The recipe's annotation for `op`.
  PrecisionAttr choose(Operation *op, Recipe r) {
    MLIRContext *ctx = op->getContext();
    Type out =
        cast<RankedTensorType>(op->getResult(0).getType()).getElementType();
    if (r == Recipe::F32)
      return getHighPrecision(ctx, out, /*forceBF16=*/false, /*forceF32=*/true);
    Value x;
    int64_t k = ShapedType::kDynamic;
    if (auto linear = dyn_cast<LinearOp>(op)) {
      x = linear.getX();
      k = linear.getX().getType().getShape().back();
    } else if (auto grouped = dyn_cast<GroupedLinearOp>(op)) {
      x = grouped.getX();
      k = grouped.getX().getType().getShape().back();
    } else if (isa<MoECombineOp>(op) && r == Recipe::DeepSeekV3) {
      // The recipe keeps the combine (and its gradient) in BF16: the
      // expert outputs are read, and sent back across ranks, in BF16.
      return getHighPrecision(ctx, out, /*forceBF16=*/true);
    } else {
      // Everything else, the batched products of the attention core
      // included, stays in high precision.
      return getHighPrecision(ctx, out);
    }

    if (r == Recipe::BF16)
      return getHighPrecision(ctx, out, /*forceBF16=*/true);
    if (feedsLoss(op->getResult(0)))
      return getHighPrecision(ctx, out);
    if (ShapedType::isDynamic(k) || k % kScaleGroupSize != 0) {
      op->emitWarning() << "K = "
                        << (ShapedType::isDynamic(k) ? std::string("?")
                                                     : std::to_string(k))
                        << " is not a known multiple of " << kScaleGroupSize
                        << ": kept in bf16 instead of FP8";
      return getHighPrecision(ctx, out, /*forceBF16=*/true);
    }
    // The recipe requires power-of-two scales where activations are later
    // rescaled exactly: after attention and on the dispatched expert inputs.
    Operation *producer = getComputingOp(x);
    bool pow2 = producer && isa<CausalAttentionOp, MoEDispatchOp>(producer);
    return PrecisionAttr::get(
        ctx, ComputeFormat::E4M3, ScalingGranularity::Tile1x128,
        ScalingGranularity::Block128x128,
        pow2 ? ScaleRounding::Pow2 : ScaleRounding::FP32, kScaleGroupSize, out);
  }
};

} // namespace
