//===- InsertExpertComm.cpp - Expert-parallel dispatch and combine --------===//
//
// Splits every MoE layer of a training graph between the ranks that route
// tokens (the senders) and the ranks that own the experts. A layer's
// routed rows, from octet.moe_dispatch, travel to their experts' owners
// (octet_pipe.expert_dispatch); the grouped linears and what lies between
// them (SwiGLU, its gradient, sums) run there on the owner's rows with the
// owner's experts (octet_pipe.local_experts); the results travel back
// (octet_pipe.expert_combine) to moe_combine, its gradient and
// moe_dispatch_grad. Gradients the senders make for the experts (from
// moe_combine_grad) travel to the owners the same way, and an owner's weight
// gradients are placed into the whole parameter's
// (octet_pipe.local_experts_grad).
//
// Each transfer's wire is one in which its rows are already exact, so the
// graph computes what it computed on one rank: FP8 for rows that only FP8
// grouped linears read, quantized as they quantize them (1x128 tiles,
// power-of-two scales); BF16 for BF16 values, for expert outputs that only
// BF16 combines read and for a BF16 combine's gradient (the recipe's
// combine, both ways); FP32 otherwise.
//
//===----------------------------------------------------------------------===//

#include "octet/Transforms/Passes.h"

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Dialect/OctetPipe/OctetPipe.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/TypeSwitch.h"

namespace octet {
#define GEN_PASS_DEF_INSERTEXPERTCOMMPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;

namespace {

constexpr llvm::StringLiteral kStageAttr = "octet.stage";

/// The wire of rows that FP8 grouped linears read only as their quantized
/// input: the format they quantize to, when every reader uses 1x128 tiles
/// and power-of-two scales (then the dequantized FP8 rows quantize to the
/// same values again); std::nullopt otherwise.
std::optional<pipe::WireFormat> fp8WireOf(Value rows) {
  std::optional<pipe::WireFormat> wire;
  for (OpOperand &use : rows.getUses()) {
    Operation *user = use.getOwner();
    bool quantizedInput =
        (isa<GroupedLinearOp>(user) && use.getOperandNumber() == 0) ||
        (isa<GroupedLinearWgradOp>(user) && use.getOperandNumber() == 1);
    auto p = user->getAttrOfType<PrecisionAttr>("precision");
    if (!quantizedInput || !p || !p.isFP8() ||
        p.getLhsScaling() != ScalingGranularity::Tile1x128 ||
        p.getScaleRounding() != ScaleRounding::Pow2)
      return std::nullopt;
    pipe::WireFormat format = p.getFormat() == ComputeFormat::E5M2
                                  ? pipe::WireFormat::E5M2
                                  : pipe::WireFormat::E4M3;
    if (wire && *wire != format)
      return std::nullopt;
    wire = format;
  }
  return wire;
}

bool isBF16Combine(Operation *op) {
  if (!isa_and_nonnull<MoECombineOp, MoECombineGradOp>(op))
    return false;
  auto p = op->getAttrOfType<PrecisionAttr>("precision");
  return p && p.getFormat() == ComputeFormat::BF16;
}

/// The wire of rows exact in BF16 or in their own type: BF16 tensors and
/// the rows' gradient of a BF16 combine (which rounds it) in BF16, else
/// FP32.
pipe::WireFormat valueWireOf(Value rows) {
  if (cast<RankedTensorType>(rows.getType()).getElementType().isBF16())
    return pipe::WireFormat::BF16;
  if (auto grad = rows.getDefiningOp<MoECombineGradOp>())
    if (rows == grad.getDrows() && isBF16Combine(grad))
      return pipe::WireFormat::BF16;
  return pipe::WireFormat::F32;
}

/// The wire of expert results that only BF16 combines read (they round
/// them): BF16; else as valueWireOf.
pipe::WireFormat resultWireOf(Value senders, Value owners) {
  if (!senders.use_empty() &&
      llvm::all_of(senders.getUsers(),
                   [](Operation *user) { return isBF16Combine(user); }))
    return pipe::WireFormat::BF16;
  return valueWireOf(owners);
}

/// One MoE layer being split: the values of its owners' side.
class LayerSplit {
public:
  LayerSplit(MoEDispatchOp dispatch, int64_t ranks)
      : dispatch(dispatch), ranks(ranks), builder(dispatch) {}

  LogicalResult run();

private:
  RankedTensorType withRows(Type t, int64_t rows) {
    auto tensor = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(tensor.getShape());
    shape[0] = rows;
    return RankedTensorType::get(shape, tensor.getElementType());
  }
  template <typename Op, typename... Args>
  Op create(Operation *stageOf, Args &&...args) {
    auto op =
        Op::create(builder, stageOf->getLoc(), std::forward<Args>(args)...);
    if (Attribute stage = stageOf->getAttr(kStageAttr))
      op->setAttr(kStageAttr, stage);
    return op;
  }
  /// `v` on the owners' side: a value made there, or a sender's rows sent.
  FailureOr<Value> toOwners(Value v, Operation *user);
  /// The owners' value of `v` back at its senders.
  Value toSenders(Value v, Operation *user);
  /// The local experts of weight `w`, for `user`.
  Value localExperts(Value w, Operation *user);
  /// Replaces `op` (which reads owner values) by its owners' form.
  LogicalResult place(Operation *op);

  MoEDispatchOp dispatch;
  int64_t ranks;
  OpBuilder builder;
  int64_t rows = 0, capacity = 0;
  Value layout;
  /// Sender value -> its owners' value; owners' value -> sent back.
  llvm::DenseMap<Value, Value> owners, senders;
  /// Replaced ops, erased at the end in reverse order.
  SmallVector<Operation *> replaced;
};

FailureOr<Value> LayerSplit::toOwners(Value v, Operation *user) {
  auto it = owners.find(v);
  if (it != owners.end())
    return it->second;
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type || type.getRank() != 2 || type.getDimSize(0) != rows)
    return user->emitOpError()
           << "reads " << v.getType()
           << " beside the expert rows of the MoE layer routed at "
           << dispatch.getLoc() << ": expected the layer's [" << rows
           << ", ...] rows";
  builder.setInsertionPoint(user);
  pipe::WireFormat wire = fp8WireOf(v).value_or(valueWireOf(v));
  auto sent = create<pipe::ExpertDispatchOp>(
      user,
      TypeRange{withRows(type, capacity),
                owners[dispatch.getGroupSizes()].getType(), layout.getType()},
      v, dispatch.getGroupSizes(), ranks, wire);
  owners[v] = sent.getReceived();
  return sent.getReceived();
}

Value LayerSplit::toSenders(Value v, Operation *user) {
  auto it = senders.find(v);
  if (it != senders.end())
    return it->second;
  builder.setInsertionPoint(user);
  Value owned = owners[v];
  auto back = create<pipe::ExpertCombineOp>(
      user, withRows(owned.getType(), rows), owned, layout, ranks,
      resultWireOf(v, owned));
  senders[v] = back.getResult();
  return back.getResult();
}

Value LayerSplit::localExperts(Value w, Operation *user) {
  // One per reader, so that stage functions need not pass weights around.
  builder.setInsertionPoint(user);
  auto type = cast<RankedTensorType>(w.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape[0] /= ranks;
  return create<pipe::LocalExpertsOp>(
      user, RankedTensorType::get(shape, type.getElementType()), w, ranks);
}

LogicalResult LayerSplit::place(Operation *op) {
  Value sizes = owners.lookup(dispatch.getGroupSizes());
  auto checkSizes = [&](Value s) -> LogicalResult {
    if (s == dispatch.getGroupSizes())
      return success();
    return op->emitOpError()
           << "groups the MoE layer's rows by other sizes than its dispatch's";
  };
  auto rowsOf = [&](Value v) -> FailureOr<Value> { return toOwners(v, op); };
  auto finish = [&](Operation *old, Operation *now) {
    for (auto [a, b] : llvm::zip_equal(old->getResults(), now->getResults()))
      owners[a] = b;
    replaced.push_back(old);
    return success();
  };
  // A grouped linear or its input gradient: (rows, w, sizes) -> rows.
  auto placeGroupedRows = [&](auto g, Value in) -> LogicalResult {
    FailureOr<Value> r = rowsOf(in);
    if (failed(checkSizes(g.getGroupSizes())) || failed(r))
      return failure();
    Value w = localExperts(g.getW(), g);
    auto now =
        create<decltype(g)>(g, withRows(g->getResult(0).getType(), capacity),
                            *r, w, sizes, g.getPrecisionAttr());
    return finish(g, now);
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case<MoECombineOp, MoECombineGradOp>([&](auto c) {
        c.getRowsMutable().assign(toSenders(c.getRows(), c));
        return success();
      })
      .Case([&](MoEDispatchGradOp d) {
        d.getDrowsMutable().assign(toSenders(d.getDrows(), d));
        return success();
      })
      .Case([&](GroupedLinearOp g) { return placeGroupedRows(g, g.getX()); })
      .Case([&](GroupedLinearDgradOp g) {
        return placeGroupedRows(g, g.getDy());
      })
      .Case([&](GroupedLinearWgradOp g) -> LogicalResult {
        FailureOr<Value> dy = rowsOf(g.getDy());
        FailureOr<Value> x = failed(dy) ? dy : rowsOf(g.getX());
        if (failed(checkSizes(g.getGroupSizes())) || failed(x))
          return failure();
        builder.setInsertionPoint(g);
        auto whole = cast<RankedTensorType>(g->getResult(0).getType());
        SmallVector<int64_t> shape(whole.getShape());
        shape[0] /= ranks;
        auto local = create<GroupedLinearWgradOp>(
            g, RankedTensorType::get(shape, whole.getElementType()), *dy, *x,
            sizes, g.getPrecisionAttr());
        auto placed = create<pipe::LocalExpertsGradOp>(
            g, whole, local.getResult(), ranks);
        g->getResult(0).replaceAllUsesWith(placed.getResult());
        replaced.push_back(g);
        return success();
      })
      .Case<SwiGLUOp, AddOp, SwiGLUGradOp>([&](Operation *o) -> LogicalResult {
        // Row-wise: same operands on the owners, results of their type.
        SmallVector<Value> operands;
        for (Value v : o->getOperands()) {
          FailureOr<Value> r = rowsOf(v);
          if (failed(r))
            return failure();
          operands.push_back(*r);
        }
        builder.setInsertionPoint(o);
        OperationState state(o->getLoc(), o->getName());
        state.addOperands(operands);
        state.addAttributes(o->getAttrs());
        for (Value r : o->getResults())
          state.addTypes(withRows(r.getType(), capacity));
        return finish(o, builder.create(state));
      })
      .Default([&](Operation *o) {
        return o->emitOpError()
               << "reads the expert rows of the MoE layer routed at "
               << dispatch.getLoc()
               << ", but only grouped linears, swiglu, add and their "
                  "gradients run on the experts' owners";
      });
}

LogicalResult LayerSplit::run() {
  auto rowsType = cast<RankedTensorType>(dispatch.getRows().getType());
  int64_t experts = dispatch.getNumExperts();
  if (experts % ranks != 0)
    return dispatch.emitOpError()
           << "routes to " << experts << " experts, which do not split over "
           << ranks << " expert-parallel ranks";
  if (!rowsType.hasStaticShape())
    return dispatch.emitOpError()
           << "needs static rows for expert parallelism, got " << rowsType;
  rows = rowsType.getDimSize(0);
  capacity = rows * ranks;
  int64_t local = experts / ranks;
  Type i32 = IntegerType::get(dispatch.getContext(), 32);
  builder.setInsertionPointAfter(dispatch);
  Value routed = dispatch.getRows();
  pipe::WireFormat wire = fp8WireOf(routed).value_or(valueWireOf(routed));
  auto sent = create<pipe::ExpertDispatchOp>(
      dispatch,
      TypeRange{withRows(rowsType, capacity),
                RankedTensorType::get({local}, i32),
                RankedTensorType::get({ranks, local}, i32)},
      routed, dispatch.getGroupSizes(), ranks, wire);
  owners[routed] = sent.getReceived();
  owners[dispatch.getGroupSizes()] = sent.getLocalSizes();
  layout = sent.getLayout();

  // Every later op of the block that reads an owners' value, in order, so
  // that each sees its operands placed already.
  SmallVector<Operation *> later;
  for (Operation *op = sent->getNextNode(); op; op = op->getNextNode())
    later.push_back(op);
  for (Operation *op : later) {
    bool readsOwners = llvm::any_of(op->getOperands(), [&](Value v) {
      return owners.count(v) && v != dispatch.getGroupSizes();
    });
    bool readsSizes =
        llvm::is_contained(op->getOperands(), dispatch.getGroupSizes());
    if (!readsOwners &&
        !(readsSizes &&
          isa<GroupedLinearOp, GroupedLinearDgradOp, GroupedLinearWgradOp>(op)))
      continue;
    if (failed(place(op)))
      return failure();
  }
  for (Operation *op : llvm::reverse(replaced)) {
    if (!op->use_empty())
      return op->emitOpError()
             << "is still read on the senders' side after its MoE layer "
                "was split over the experts' owners";
    op->erase();
  }
  return success();
}

struct InsertExpertCommPass
    : public octet::impl::InsertExpertCommPassBase<InsertExpertCommPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (numRanks < 1) {
      module.emitError() << "octet-insert-expert-comm: ranks must be at "
                            "least 1, got "
                         << int64_t(numRanks);
      return signalPassFailure();
    }
    if (numRanks == 1)
      return;
    SmallVector<MoEDispatchOp> layers;
    module.walk([&](MoEDispatchOp d) { layers.push_back(d); });
    for (MoEDispatchOp d : layers)
      if (failed(LayerSplit(d, int64_t(numRanks)).run()))
        return signalPassFailure();
  }
};

} // namespace
