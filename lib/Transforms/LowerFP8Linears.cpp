//===- LowerFP8Linears.cpp - FP8 linears to quantize + scaled_matmul ------===//
//
// Implements --octet-lower-fp8-linears: the three GEMMs of every FP8 linear
// become explicit quantizations and block-scaled matrix products of the
// octet_tq dialect, with the forward's FP8 copy of the input reused
// (regrouped) by the weight gradient. The MoE expert linears become the
// grouped GEMMs over rows aligned to 128 per expert.
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Support/ShapeUtils.h"
#include "octet/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/TypeSwitch.h"

namespace octet {
#define GEN_PASS_DEF_LOWERFP8LINEARSPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;
using tq::Granularity;

namespace {

int64_t roundUp(int64_t v) {
  return (v + kScaleGroupSize - 1) / kScaleGroupSize * kScaleGroupSize;
}

Type fp8Type(MLIRContext *ctx, ComputeFormat format) {
  if (format == ComputeFormat::E5M2)
    return Float8E5M2Type::get(ctx);
  return Float8E4M3FNType::get(ctx);
}

class Lowering {
public:
  Lowering(OpBuilder &builder) : b(builder) {}

  /// x [..., K] as [M, K]: the GEMMs are rank 2.
  Value flatten(Location loc, Value v) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getRank() == 2)
      return v;
    SmallVector<ReassociationIndices> groups(2);
    for (int64_t i = 0; i + 1 < type.getRank(); ++i)
      groups[0].push_back(i);
    groups[1].push_back(type.getRank() - 1);
    return tensor::CollapseShapeOp::create(b, loc, v, groups);
  }

  /// The inverse of flatten, to `type`.
  Value unflatten(Location loc, Value v, RankedTensorType type) {
    if (type.getRank() == 2)
      return v;
    SmallVector<ReassociationIndices> groups(2);
    for (int64_t i = 0; i + 1 < type.getRank(); ++i)
      groups[0].push_back(i);
    groups[1].push_back(type.getRank() - 1);
    return tensor::ExpandShapeOp::create(b, loc, type, v, groups);
  }

  /// Zero-pads a rank-2 tensor to [rows, cols] (no-op when it has that
  /// shape). Padding a contracted dimension with zeros leaves every scale as
  /// the partial group would have it.
  Value pad(Location loc, Value v, int64_t rows, int64_t cols) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getDimSize(0) == rows && type.getDimSize(1) == cols)
      return v;
    auto padded = RankedTensorType::get({rows, cols}, type.getElementType());
    Value zeros = arith::ConstantOp::create(
        b, loc, padded,
        DenseElementsAttr::get(padded,
                               b.getFloatAttr(type.getElementType(), 0.0)));
    SmallVector<OpFoldResult> offsets(2, b.getIndexAttr(0)),
        strides(2, b.getIndexAttr(1)),
        sizes = {b.getIndexAttr(type.getDimSize(0)),
                 b.getIndexAttr(type.getDimSize(1))};
    return tensor::InsertSliceOp::create(b, loc, v, zeros, offsets, sizes,
                                         strides);
  }

  /// The leading [rows, cols] block of a rank-2 tensor.
  Value crop(Location loc, Value v, int64_t rows, int64_t cols) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getDimSize(0) == rows && type.getDimSize(1) == cols)
      return v;
    SmallVector<OpFoldResult> offsets(2, b.getIndexAttr(0)),
        strides(2, b.getIndexAttr(1)),
        sizes = {b.getIndexAttr(rows), b.getIndexAttr(cols)};
    return tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({rows, cols}, type.getElementType()), v,
        offsets, sizes, strides);
  }

  Value quantize(Location loc, Value v, PrecisionAttr p, Granularity g,
                 bool pow2) {
    auto type = cast<RankedTensorType>(v.getType());
    auto qtype =
        tq::QTensorType::get(b.getContext(), type.getShape(),
                             fp8Type(b.getContext(), p.getFormat()), g);
    return tq::QuantizeOp::create(b, loc, qtype, v,
                                  pow2 ? b.getUnitAttr() : UnitAttr());
  }

  Value matmul(Location loc, Value lhs, int64_t lc, Value rhs, int64_t rc,
               PrecisionAttr p, Type element) {
    auto l = cast<tq::QTensorType>(lhs.getType());
    auto r = cast<tq::QTensorType>(rhs.getType());
    auto type = RankedTensorType::get(
        {l.getShape()[1 - lc], r.getShape()[1 - rc]}, element);
    return tq::ScaledMatmulOp::create(
        b, loc, type, lhs, rhs, b.getI64IntegerAttr(lc),
        b.getI64IntegerAttr(rc), b.getI64IntegerAttr(p.getPromotionInterval()),
        tq::TileConfigAttr());
  }

  /// An FP8 copy of a forward input that `op` can share: made in the same
  /// block and pipeline stage, in the format and scale rounding `op` asks
  /// for. Gate and up projections (MLPs, experts) and MLA's q_a and kv_a
  /// read the same input: it is quantized (and aligned) once.
  static bool shareable(std::pair<Value, bool> cached, Operation *op,
                        PrecisionAttr p) {
    Value q = cached.first;
    if (!q || q.getParentBlock() != op->getBlock() ||
        cached.second != (p.getScaleRounding() == ScaleRounding::Pow2))
      return false;
    auto t = dyn_cast<tq::QTensorType>(q.getType());
    return t && t.getElementType() == fp8Type(op->getContext(), p.getFormat()) &&
           q.getDefiningOp()->getAttr(OctetDialect::getStageAttrName()) ==
               op->getAttr(OctetDialect::getStageAttrName());
  }

  /// Fprop: Y = X W^T with X in 1x128 tiles, W in 128x128 blocks. Records
  /// the FP8 copy of X (the Wgrad's cache) and of W.
  LogicalResult lower(LinearOp op) {
    PrecisionAttr p = op.getPrecisionAttr();
    Location loc = op.getLoc();
    auto xType = op.getX().getType();
    int64_t k = xType.getShape().back(), kp = roundUp(k);
    int64_t n = op.getW().getType().getDimSize(0);
    Value w = pad(loc, op.getW(), n, kp);
    bool pow2 = p.getScaleRounding() == ScaleRounding::Pow2;
    Value qx = cachedInput.lookup(op.getX()).first;
    if (!shareable(cachedInput.lookup(op.getX()), op, p)) {
      Value flat = flatten(loc, op.getX());
      Value x = pad(loc, flat,
                    cast<RankedTensorType>(flat.getType()).getDimSize(0), kp);
      qx = quantize(loc, x, p, Granularity::Tile1x128, pow2);
    }
    Value qw = quantize(loc, w, p, Granularity::Block128x128, false);
    cachedInput[op.getX()] = {qx, pow2};
    Value y = matmul(loc, qx, 1, qw, 1, p, op.getType().getElementType());
    op.replaceAllUsesWith(unflatten(loc, y, op.getType()));
    op.erase();
    return success();
  }

  /// Dgrad: dX = dY W with dY in 1x128 tiles along N, W in 128x128 blocks.
  LogicalResult lower(LinearDgradOp op) {
    PrecisionAttr p = op.getPrecisionAttr();
    Location loc = op.getLoc();
    Value dy = flatten(loc, op.getDy());
    int64_t m = cast<RankedTensorType>(dy.getType()).getDimSize(0);
    int64_t n = op.getW().getType().getDimSize(0);
    int64_t k = op.getW().getType().getDimSize(1);
    int64_t np = roundUp(n), kp = roundUp(k);
    Value qdy =
        quantize(loc, pad(loc, dy, m, np), p, Granularity::Tile1x128, false);
    Value qw = quantize(loc, pad(loc, op.getW(), np, kp), p,
                        Granularity::Block128x128, false);
    Value dx = matmul(loc, qdy, 1, qw, 0, p, op.getType().getElementType());
    op.replaceAllUsesWith(unflatten(loc, crop(loc, dx, m, k), op.getType()));
    op.erase();
    return success();
  }

  /// Wgrad: dW = dY^T X with both in 128x1 tiles along the tokens; X comes
  /// from the forward's FP8 copy, regrouped by requantize_transposed.
  LogicalResult lower(LinearWgradOp op) {
    PrecisionAttr p = op.getPrecisionAttr();
    Location loc = op.getLoc();
    Value dy = flatten(loc, op.getDy());
    auto dyType = cast<RankedTensorType>(dy.getType());
    int64_t m = dyType.getDimSize(0), n = dyType.getDimSize(1);
    int64_t k = op.getX().getType().getShape().back(), kp = roundUp(k);
    int64_t mp = roundUp(m);
    auto cached = cachedInput.lookup(op.getX());
    Value qx = cached.first;
    bool pow2 = cached.second;
    if (!qx) {
      // No FP8 forward in this function: quantize as the forward would.
      pow2 = p.getScaleRounding() == ScaleRounding::Pow2;
      Value x = flatten(loc, op.getX());
      qx = quantize(loc, pad(loc, x, m, kp), p, Granularity::Tile1x128, pow2);
    }
    Value qxt;
    if (m == mp) {
      auto t = cast<tq::QTensorType>(qx.getType());
      qxt = tq::RequantizeTransposedOp::create(
          b, loc,
          tq::QTensorType::get(b.getContext(), t.getShape(), t.getElementType(),
                               Granularity::Tile128x1),
          qx, pow2 ? b.getUnitAttr() : UnitAttr());
    } else {
      // Tokens are contracted here: pad them with zeros, which a quantized
      // tensor cannot be; the dequantized copy can, with the same result.
      auto t = cast<tq::QTensorType>(qx.getType());
      Value deq = tq::DequantizeOp::create(
          b, loc, RankedTensorType::get(t.getShape(), b.getF32Type()), qx);
      qxt =
          quantize(loc, pad(loc, deq, mp, kp), p, Granularity::Tile128x1, pow2);
    }
    Value qdy =
        quantize(loc, pad(loc, dy, mp, n), p, Granularity::Tile128x1, false);
    Value dw = matmul(loc, qdy, 0, qxt, 0, p, op.getType().getElementType());
    op.replaceAllUsesWith(crop(loc, dw, n, k));
    op.erase();
    return success();
  }

  /// Rows sorted by expert laid out on 128-row boundaries: the aligned rows
  /// and their expert index.
  std::pair<Value, Value> align(Location loc, Value v, Value sizes) {
    auto type = cast<RankedTensorType>(v.getType());
    int64_t rows = type.getDimSize(0);
    int64_t experts = cast<RankedTensorType>(sizes.getType()).getDimSize(0);
    int64_t padded = tq::AlignGroupsOp::getAlignedRows(rows, experts);
    auto aligned = RankedTensorType::get({padded, type.getDimSize(1)},
                                         type.getElementType());
    auto index = RankedTensorType::get({padded}, b.getI32Type());
    auto op = tq::AlignGroupsOp::create(b, loc, aligned, index, v, sizes);
    return {op.getResult(), op.getGroupIndex()};
  }

  Value unalign(Location loc, Value v, Value sizes, RankedTensorType type) {
    return tq::UnalignGroupsOp::create(b, loc, type, v, sizes);
  }

  Value groupedMatmul(Location loc, Value lhs, Value rhs, Value index,
                      int64_t rhsContract, PrecisionAttr p, Type element) {
    auto l = cast<tq::QTensorType>(lhs.getType());
    auto r = cast<tq::QTensorType>(rhs.getType());
    auto type = RankedTensorType::get(
        {l.getShape()[0], r.getShape()[3 - rhsContract]}, element);
    return tq::GroupedScaledMatmulOp::create(
        b, loc, type, lhs, rhs, index, b.getI64IntegerAttr(rhsContract),
        b.getI64IntegerAttr(p.getPromotionInterval()), tq::TileConfigAttr());
  }

  /// The M-grouped GEMM of `input` (rows sorted by expert, quantized 1x128
  /// with `pow2` scales, or `shared`: its aligned FP8 copy and expert
  /// index) with the expert weights contracted along `rhsContract`,
  /// replacing `op`'s result. Returns the aligned FP8 input and the index.
  std::pair<Value, Value> lowerMGrouped(Operation *op, Value input, Value w,
                                        Value sizes, PrecisionAttr p, bool pow2,
                                        int64_t rhsContract,
                                        std::pair<Value, Value> shared = {}) {
    Location loc = op->getLoc();
    auto type = cast<RankedTensorType>(op->getResult(0).getType());
    auto [qinput, index] = shared;
    if (!qinput) {
      Value aligned;
      std::tie(aligned, index) = align(loc, input, sizes);
      qinput = quantize(loc, aligned, p, Granularity::Tile1x128, pow2);
    }
    Value qw = quantize(loc, w, p, Granularity::Block128x128, false);
    Value y = groupedMatmul(loc, qinput, qw, index, rhsContract, p,
                            type.getElementType());
    op->getResult(0).replaceAllUsesWith(unalign(loc, y, sizes, type));
    op->erase();
    return {qinput, index};
  }

  /// Expert Fprop: each expert's rows times its weight, as one M-grouped
  /// GEMM over the aligned rows. Records the aligned FP8 copy of X for the
  /// expert Wgrad.
  LogicalResult lower(GroupedLinearOp op) {
    PrecisionAttr p = op.getPrecisionAttr();
    bool pow2 = p.getScaleRounding() == ScaleRounding::Pow2;
    Value x = op.getX(), sizes = op.getGroupSizes();
    std::pair<Value, bool> cached = cachedGroupedInput.lookup({x, sizes});
    std::pair<Value, Value> shared;
    if (shareable(cached, op, p))
      shared = {cached.first, cachedGroupedIndex.lookup({x, sizes})};
    auto [qx, index] = lowerMGrouped(op, x, op.getW(), sizes, p, pow2, 2,
                                     shared);
    cachedGroupedInput[{x, sizes}] = {qx, pow2};
    cachedGroupedIndex[{x, sizes}] = index;
    return success();
  }

  /// Expert Dgrad: dX = dY W per expert, the M-grouped GEMM contracting N.
  LogicalResult lower(GroupedLinearDgradOp op) {
    lowerMGrouped(op, op.getDy(), op.getW(), op.getGroupSizes(),
                  op.getPrecisionAttr(), false, 1);
    return success();
  }

  /// Expert Wgrad: dW[e] = dY_e^T X_e, the K-grouped GEMM over the aligned
  /// rows in 128x1 tiles; X comes from the forward's aligned FP8 copy.
  LogicalResult lower(GroupedLinearWgradOp op) {
    PrecisionAttr p = op.getPrecisionAttr();
    Location loc = op.getLoc();
    Value sizes = op.getGroupSizes();
    auto [dy, index] = align(loc, op.getDy(), sizes);
    auto [qx, pow2] = cachedGroupedInput.lookup({op.getX(), sizes});
    if (!qx) {
      // No FP8 forward of this input here (the recomputed SwiGLU of the
      // down-projection): quantize it as the forward would.
      pow2 = p.getScaleRounding() == ScaleRounding::Pow2;
      qx = quantize(loc, align(loc, op.getX(), sizes).first, p,
                    Granularity::Tile1x128, pow2);
    }
    auto t = cast<tq::QTensorType>(qx.getType());
    Value qxt = tq::RequantizeTransposedOp::create(
        b, loc,
        tq::QTensorType::get(b.getContext(), t.getShape(), t.getElementType(),
                             Granularity::Tile128x1),
        qx, pow2 ? b.getUnitAttr() : UnitAttr());
    Value qdy = quantize(loc, dy, p, Granularity::Tile128x1, false);
    Value dw = tq::KGroupedScaledMatmulOp::create(
        b, loc, op.getType(), qdy, qxt, index,
        b.getI64IntegerAttr(p.getPromotionInterval()), tq::TileConfigAttr());
    op.replaceAllUsesWith(dw);
    op.erase();
    return success();
  }

  /// The recipe's MoE SwiGLU: its inputs are cached in FP8 (1x128 tiles)
  /// right after the forward, and the backward dequantizes them and
  /// recomputes the SwiGLU output instead of keeping both in high
  /// precision until then.
  void cacheSwiGLU(SwiGLUOp op) {
    SmallVector<Operation *> backwardUsers;
    auto isBackward = [](Operation *user) {
      return isa<SwiGLUGradOp, GroupedLinearWgradOp, LinearWgradOp>(user);
    };
    for (Value v : {op.getGate(), op.getUp(), op.getResult()})
      for (Operation *user : v.getUsers())
        if (isBackward(user))
          backwardUsers.push_back(user);
    if (backwardUsers.empty())
      return;
    Operation *first = backwardUsers.front();
    for (Operation *user : backwardUsers)
      if (user->isBeforeInBlock(first))
        first = user;

    Location loc = op.getLoc();
    MLIRContext *ctx = b.getContext();
    auto fp8 = Float8E4M3FNType::get(ctx);
    auto cache = [&](Value v) {
      auto type = cast<RankedTensorType>(v.getType());
      return tq::QuantizeOp::create(
          b, loc,
          tq::QTensorType::get(ctx, type.getShape(), fp8,
                               Granularity::Tile1x128),
          v, UnitAttr());
    };
    b.setInsertionPointAfter(op);
    Value qg = cache(op.getGate()), qu = cache(op.getUp());

    b.setInsertionPoint(first);
    Value g = tq::DequantizeOp::create(b, loc, op.getGate().getType(), qg);
    Value u = tq::DequantizeOp::create(b, loc, op.getUp().getType(), qu);
    Value a =
        SwiGLUOp::create(b, loc, op.getType(), g, u, op.getPrecisionAttr());
    for (Operation *user : backwardUsers) {
      user->replaceUsesOfWith(op.getGate(), g);
      user->replaceUsesOfWith(op.getUp(), u);
      user->replaceUsesOfWith(op.getResult(), a);
    }
  }

private:
  OpBuilder &b;
  /// The FP8 copy of each linear input the forward made, and whether its
  /// scales are powers of two.
  llvm::DenseMap<Value, std::pair<Value, bool>> cachedInput;
  /// The same for expert linears, by input and group sizes: the aligned
  /// FP8 copy.
  llvm::DenseMap<std::pair<Value, Value>, std::pair<Value, bool>>
      cachedGroupedInput;
  /// And the expert index of its aligned rows.
  llvm::DenseMap<std::pair<Value, Value>, Value> cachedGroupedIndex;
};

bool isFP8(std::optional<PrecisionAttr> p) { return p && p->isFP8(); }

/// The grouped GEMMs contract whole 128-element groups of the expert
/// weights (their N and K); the dense lowering pads, an expert's weight
/// [E, N, K] is not padded here. Warns and keeps the op otherwise.
bool groupedLowerable(Operation *op) {
  // The aligned row count is a static bound on the rows and experts.
  auto hasStaticShape = [](Value v) {
    return cast<RankedTensorType>(v.getType()).hasStaticShape();
  };
  if (!llvm::all_of(op->getOperands(), hasStaticShape) ||
      !hasStaticShape(op->getResult(0))) {
    op->emitWarning() << "FP8 expert linear with dynamic shapes is not "
                         "lowered: the aligned row layout needs static rows "
                         "and experts; it stays as is";
    return false;
  }
  Value w = isa<GroupedLinearWgradOp>(op) ? op->getResult(0) : op->getOperand(1);
  ArrayRef<int64_t> shape = cast<RankedTensorType>(w.getType()).getShape();
  if (shape.size() == 3 && shape[1] % kScaleGroupSize == 0 &&
      shape[2] % kScaleGroupSize == 0)
    return true;
  op->emitWarning() << "FP8 expert linear with weights " << formatShape(shape)
                    << " is not lowered: the grouped GEMMs need N and K to be "
                       "multiples of "
                    << kScaleGroupSize << "; it stays as is";
  return false;
}

/// Puts every op the lowering creates on the pipeline stage of the op it
/// replaces.
struct StageTagger : public OpBuilder::Listener {
  Attribute stage;
  void notifyOperationInserted(Operation *op, OpBuilder::InsertPoint) override {
    if (stage)
      op->setAttr(OctetDialect::getStageAttrName(), stage);
  }
};

struct LowerFP8LinearsPass
    : public octet::impl::LowerFP8LinearsPassBase<LowerFP8LinearsPass> {
  using Base::Base;

  void runOnOperation() override {
    OpBuilder b(&getContext());
    StageTagger tagger;
    b.setListener(&tagger);
    Lowering lowering(b);
    // MoE SwiGLUs (their output feeds an FP8 expert GEMM) first: the
    // linears' lowering below does not touch them.
    SmallVector<SwiGLUOp> swiglus;
    getOperation()->walk([&](SwiGLUOp op) {
      if (llvm::any_of(op->getUsers(), [](Operation *user) {
            auto g = dyn_cast<GroupedLinearOp>(user);
            return g && isFP8(g.getPrecision());
          }))
        swiglus.push_back(op);
    });
    for (SwiGLUOp op : swiglus) {
      tagger.stage = op->getAttr(OctetDialect::getStageAttrName());
      lowering.cacheSwiGLU(op);
    }

    SmallVector<Operation *> work;
    getOperation()->walk([&](Operation *op) {
      if (auto l = dyn_cast<LinearOp>(op)) {
        if (!isFP8(l.getPrecision()))
          return;
        if (l.getBias()) {
          l.emitWarning() << "FP8 linear with a bias is not lowered (the "
                             "recipe's linears have none); it stays as is";
          return;
        }
        work.push_back(op);
      } else if (auto d = dyn_cast<LinearDgradOp>(op)) {
        if (isFP8(d.getPrecision()))
          work.push_back(op);
      } else if (auto w = dyn_cast<LinearWgradOp>(op)) {
        if (isFP8(w.getPrecision()))
          work.push_back(op);
      } else if (isa<GroupedLinearOp, GroupedLinearDgradOp,
                     GroupedLinearWgradOp>(op)) {
        auto p = op->getAttrOfType<PrecisionAttr>("precision");
        if (isFP8(p) && groupedLowerable(op))
          work.push_back(op);
      }
    });
    for (Operation *op : work) {
      b.setInsertionPoint(op);
      tagger.stage = op->getAttr(OctetDialect::getStageAttrName());
      LogicalResult result =
          llvm::TypeSwitch<Operation *, LogicalResult>(op)
              .Case<LinearOp, LinearDgradOp, LinearWgradOp, GroupedLinearOp,
                    GroupedLinearDgradOp, GroupedLinearWgradOp>(
                  [&](auto concrete) { return lowering.lower(concrete); });
      if (failed(result))
        return signalPassFailure();
    }
  }
};

} // namespace
