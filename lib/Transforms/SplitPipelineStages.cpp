//===- SplitPipelineStages.cpp - Per-stage forward and backward functions -===//
//
// The forward part of a stage is what the returned losses depend on (their
// use-def slice); everything else of the stage is its backward part. Ops
// without a stage tag (the loss seed) take the stage of their first tagged
// user. Ops without operands are rematerialized in every function that uses
// them, so parameters and constants never travel between ranks.
//
//===----------------------------------------------------------------------===//

#include "octet/Transforms/Passes.h"

#include "octet/Dialect/Octet/Octet.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringSet.h"

namespace octet {
#define GEN_PASS_DEF_SPLITPIPELINESTAGESPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;

namespace {

constexpr llvm::StringLiteral kStageAttr = "octet.stage";

/// One function to build: the ops of a (stage, phase), in program order.
struct Piece {
  int64_t stage;
  bool forward;
  std::string name;
  SmallVector<Operation *> ops;
  /// Values from outside, in the order they become arguments, and values
  /// that leave, in the order they become results.
  llvm::SetVector<Value> inputs, outputs;
};

bool rematerializable(Operation *op) {
  return op->getNumOperands() == 0 && op->getNumRegions() == 0 &&
         op->getNumResults() == 1;
}

struct SplitPipelineStagesPass
    : public octet::impl::SplitPipelineStagesPassBase<
          SplitPipelineStagesPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>(functionName);
    if (!func) {
      module.emitError() << "octet-split-pipeline-stages: no function @"
                         << functionName;
      return signalPassFailure();
    }
    auto stagesAttr = func->getAttrOfType<IntegerAttr>("octet.num_stages");
    int64_t numStages = stagesAttr ? stagesAttr.getInt() : 1;
    if (numStages <= 1)
      return;
    if (!func.getBody().hasOneBlock()) {
      func.emitOpError() << "has more than one block: only straight-line "
                            "training steps are split into stages";
      return signalPassFailure();
    }
    if (failed(split(module, func, numStages)))
      signalPassFailure();
  }

  LogicalResult split(ModuleOp module, func::FuncOp func, int64_t numStages);
};

LogicalResult SplitPipelineStagesPass::split(ModuleOp module,
                                             func::FuncOp func,
                                             int64_t numStages) {
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());

  // Forward: the use-def slice of the returned values.
  DenseSet<Operation *> forward;
  SmallVector<Value> work(ret.getOperands().begin(), ret.getOperands().end());
  while (!work.empty()) {
    Operation *def = work.pop_back_val().getDefiningOp();
    if (def && forward.insert(def).second)
      work.append(def->operand_begin(), def->operand_end());
  }

  // The stage of every op: its tag, else its first tagged user's.
  DenseMap<Operation *, int64_t> stageOf;
  for (Operation &op : body.without_terminator())
    if (auto tag = op.getAttrOfType<IntegerAttr>(kStageAttr)) {
      if (tag.getInt() < 0 || tag.getInt() >= numStages)
        return op.emitOpError()
               << "has octet.stage = " << tag.getInt() << " but @"
               << func.getSymName() << " has " << numStages << " stages";
      stageOf[&op] = tag.getInt();
    }
  for (Operation &op : llvm::reverse(body.without_terminator())) {
    if (stageOf.count(&op))
      continue;
    int64_t stage = -1;
    for (Operation *user : op.getUsers())
      if (auto it = stageOf.find(user); it != stageOf.end() && stage < 0)
        stage = it->second;
    if (stage < 0 && !rematerializable(&op))
      return op.emitOpError()
             << "has no octet.stage and no staged user: cannot place it in "
                "a pipeline stage";
    stageOf[&op] = std::max<int64_t>(stage, 0);
  }

  // Forward pieces in stage order, then backward pieces in reverse: every
  // value is made by an earlier piece than those that use it.
  SmallVector<Piece> pieces;
  // Keyed by 2 * stage + (forward ? 1 : 0).
  DenseMap<int64_t, unsigned> pieceOf;
  auto key = [](int64_t stage, bool fwd) { return 2 * stage + (fwd ? 1 : 0); };
  auto pieceFor = [&](int64_t stage, bool fwd) -> Piece & {
    auto [it, inserted] = pieceOf.try_emplace(key(stage, fwd), pieces.size());
    if (inserted) {
      Piece p;
      p.stage = stage;
      p.forward = fwd;
      p.name = (func.getSymName() + (fwd ? "_F" : "_B") + Twine(stage)).str();
      pieces.push_back(std::move(p));
    }
    return pieces[it->second];
  };
  for (int64_t s = 0; s < numStages; ++s)
    pieceFor(s, true);
  for (int64_t s = numStages - 1; s >= 0; --s)
    pieceFor(s, false);
  DenseMap<Operation *, unsigned> home;
  for (Operation &op : body.without_terminator()) {
    if (rematerializable(&op))
      continue;
    unsigned index = pieceOf[key(stageOf[&op], forward.contains(&op))];
    pieces[index].ops.push_back(&op);
    home[&op] = index;
  }

  // What crosses between pieces.
  for (auto [index, piece] : llvm::enumerate(pieces)) {
    for (Operation *op : piece.ops)
      for (Value v : op->getOperands()) {
        Operation *def = v.getDefiningOp();
        if (def && rematerializable(def))
          continue;
        if (!def || home[def] != index)
          piece.inputs.insert(v);
        if (def && home[def] != index)
          pieces[home[def]].outputs.insert(v);
      }
  }
  for (Value v : ret.getOperands())
    if (Operation *def = v.getDefiningOp(); def && !rematerializable(def))
      pieces[home[def]].outputs.insert(v);
  for (auto [index, piece] : llvm::enumerate(pieces))
    for (Value v : piece.inputs)
      if (Operation *def = v.getDefiningOp(); def && home[def] > index)
        return def->emitOpError()
               << "is used by " << piece.name
               << ", which runs before the function computing it: the stage "
                  "tags do not describe a pipeline";

  // Where each value can be found by a later piece: "arg<i>" or
  // "<function>:<j>".
  auto sourceOf = [&](Value v) -> std::string {
    if (auto arg = dyn_cast<BlockArgument>(v))
      return "arg" + std::to_string(arg.getArgNumber());
    const Piece &producer = pieces[home[v.getDefiningOp()]];
    return producer.name + ":" +
           std::to_string(std::distance(producer.outputs.begin(),
                                        llvm::find(producer.outputs, v)));
  };

  // octet.grad_accumulate names its parameter, whose octet.param must be in
  // the same function.
  llvm::StringMap<Operation *> paramOps;
  for (ParamOp p : body.getOps<ParamOp>())
    paramOps.try_emplace(p.getName(), p);

  OpBuilder b(module.getContext());
  b.setInsertionPointAfter(func);
  SmallVector<Attribute> names;
  for (Piece &piece : pieces) {
    if (piece.ops.empty() && piece.outputs.empty())
      continue;
    SmallVector<Type> argTypes, resultTypes;
    SmallVector<Attribute> sources;
    for (Value v : piece.inputs) {
      argTypes.push_back(v.getType());
      sources.push_back(b.getStringAttr(sourceOf(v)));
    }
    for (Value v : piece.outputs)
      resultTypes.push_back(v.getType());
    auto fn = func::FuncOp::create(b, func.getLoc(), piece.name,
                                   b.getFunctionType(argTypes, resultTypes));
    fn->setAttr(kStageAttr, b.getI64IntegerAttr(piece.stage));
    fn->setAttr("octet.phase", b.getStringAttr(piece.forward ? "F" : "B"));
    fn->setAttr("octet.inputs", b.getArrayAttr(sources));
    Block *entry = fn.addEntryBlock();
    OpBuilder inner = OpBuilder::atBlockEnd(entry);
    IRMapping map;
    for (auto [v, arg] : llvm::zip(piece.inputs, entry->getArguments()))
      map.map(v, arg);
    for (Operation *op : piece.ops) {
      // Parameters and constants are made where they are used.
      for (Value v : op->getOperands())
        if (Operation *def = v.getDefiningOp();
            def && rematerializable(def) && !map.contains(v))
          inner.clone(*def, map);
      inner.clone(*op, map);
    }
    llvm::StringSet<> present;
    for (ParamOp p : entry->getOps<ParamOp>())
      present.insert(p.getName());
    for (GradAccumulateOp acc : llvm::to_vector(entry->getOps<GradAccumulateOp>()))
      if (present.insert(acc.getParam()).second)
        if (Operation *param = paramOps.lookup(acc.getParam()))
          OpBuilder::atBlockBegin(entry).clone(*param);
    SmallVector<Value> results;
    for (Value v : piece.outputs) {
      if (!map.contains(v))
        inner.clone(*v.getDefiningOp(), map);
      results.push_back(map.lookup(v));
    }
    func::ReturnOp::create(inner, func.getLoc(), results);
    names.push_back(b.getStringAttr(piece.name));
    b.setInsertionPointAfter(fn);
  }
  SmallVector<Attribute> returns;
  for (Value v : ret.getOperands())
    returns.push_back(b.getStringAttr(sourceOf(v)));
  func->setAttr("octet.stage_functions", b.getArrayAttr(names));
  func->setAttr("octet.stage_returns", b.getArrayAttr(returns));
  return success();
}

} // namespace
