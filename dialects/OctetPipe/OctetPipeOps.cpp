//===- OctetPipeOps.cpp - octet_pipe operation verifiers ------------------===//

#include "octet/Dialect/OctetPipe/OctetPipe.h"
#include "octet/Support/ShapeUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>
#include <set>
#include <tuple>

using namespace mlir;
using namespace octet;
using namespace octet::pipe;

#define GET_OP_CLASSES
#include "octet/Dialect/OctetPipe/OctetPipeOps.cpp.inc"

//===----------------------------------------------------------------------===//
// ScheduleOp
//===----------------------------------------------------------------------===//

std::optional<ScheduleKind> ScheduleOp::getScheduleKind() {
  return symbolizeScheduleKind(getKind());
}

bool ScheduleOp::rankHoldsStage(int64_t rank, int64_t stage) {
  std::optional<ScheduleKind> kind = getScheduleKind();
  if (!kind || *kind == ScheduleKind::Custom)
    return true;
  return llvm::is_contained(getStagesOfRank(rank), stage);
}

SmallVector<int64_t> ScheduleOp::getStagesOfRank(int64_t rank) {
  int64_t ranks = getNumRanks(), stages = getNumStages();
  std::optional<ScheduleKind> kind = getScheduleKind();
  if (!kind)
    return {};
  switch (*kind) {
  case ScheduleKind::OneFOneB:
  case ScheduleKind::ZB1P:
    return {rank};
  case ScheduleKind::Interleaved1F1B: {
    SmallVector<int64_t> held;
    for (int64_t s = rank; s < stages; s += ranks)
      held.push_back(s);
    return held;
  }
  case ScheduleKind::DualPipe:
  case ScheduleKind::DualPipeV:
    // DualPipe: copy 0's stage r and copy 1's stage N-1-r (global N+N-1-r).
    // DualPipeV: the V-shaped placement of one 2N-stage model.
    return {rank, 2 * ranks - 1 - rank};
  case ScheduleKind::Custom:
    return {};
  }
  llvm_unreachable("unknown schedule kind");
}

int64_t ScheduleOp::getMicrobatchesPerStage() {
  if (getScheduleKind() == ScheduleKind::DualPipe)
    return getNumMicrobatches() / 2;
  return getNumMicrobatches();
}

LogicalResult ScheduleOp::verify() {
  std::optional<ScheduleKind> kind = getScheduleKind();
  if (!kind)
    return emitOpError() << "unknown schedule kind '" << getKind()
                         << "'; expected 1f1b, zb1p, interleaved-1f1b, "
                            "dualpipe, dualpipev or custom";
  int64_t ranks = getNumRanks(), stages = getNumStages(),
          mbs = getNumMicrobatches();
  if (ranks <= 0 || stages <= 0 || mbs <= 0)
    return emitOpError() << "ranks, stages and micro-batches must be "
                            "positive, got ("
                         << ranks << ", " << stages << ", " << mbs << ")";
  switch (*kind) {
  case ScheduleKind::OneFOneB:
  case ScheduleKind::ZB1P:
    if (stages != ranks)
      return emitOpError() << "'" << getKind()
                           << "' has one stage per rank: " << stages
                           << " stages on " << ranks << " ranks";
    break;
  case ScheduleKind::Interleaved1F1B:
    if (stages % ranks != 0)
      return emitOpError() << "'interleaved-1f1b' needs a whole number of "
                              "stages per rank: "
                           << stages << " stages on " << ranks << " ranks";
    break;
  case ScheduleKind::DualPipe:
    if (ranks % 2 != 0)
      return emitOpError() << "'dualpipe' needs an even number of ranks, got "
                           << ranks;
    if (mbs % 2 != 0)
      return emitOpError()
             << "'dualpipe' needs an even number of micro-batches (half "
                "enter from each end), got "
             << mbs;
    [[fallthrough]];
  case ScheduleKind::DualPipeV:
    if (stages != 2 * ranks)
      return emitOpError() << "'" << getKind() << "' has two stages per rank: "
                           << "expected " << 2 * ranks << " stages, got "
                           << stages;
    if (mbs < 2 * ranks)
      return emitOpError() << "'" << getKind() << "' needs at least "
                           << 2 * ranks << " micro-batches (2 x ranks), got "
                           << mbs;
    break;
  case ScheduleKind::Custom:
    break;
  }
  return success();
}

LogicalResult ScheduleOp::verifyRegions() {
  llvm::SmallSet<int64_t, 8> seen;
  for (Operation &op : getBody().front()) {
    auto rank = dyn_cast<RankOp>(op);
    if (!rank)
      return op.emitOpError()
             << "is not allowed directly in an octet_pipe.schedule; "
                "expected octet_pipe.rank";
    if (!seen.insert(rank.getIndex()).second)
      return rank.emitOpError()
             << "rank " << rank.getIndex() << " appears twice in the schedule";
  }
  if (seen.size() != getNumRanks())
    return emitOpError() << "lists " << seen.size() << " of its "
                         << getNumRanks() << " ranks; every rank needs an "
                         << "octet_pipe.rank";

  // Message pairing: on every channel (sender, receiver, payload) the
  // sender's sends and the receiver's receives name the same (stage,
  // micro-batch) in the same order, as ordered point-to-point transfers
  // (NCCL's) require.
  using Key = std::tuple<int64_t, int64_t, Payload>;
  std::map<Key, SmallVector<std::pair<int64_t, int64_t>>> sends, recvs;
  std::map<Key, SmallVector<Operation *>> recvOps;
  for (auto rank : getBody().front().getOps<RankOp>())
    for (Operation &op : rank.getBody().front()) {
      if (auto send = dyn_cast<SendOp>(op))
        sends[{int64_t(rank.getIndex()), int64_t(send.getPeer()),
               send.getPayload()}]
            .push_back({int64_t(send.getStage()), int64_t(send.getMb())});
      if (auto recv = dyn_cast<RecvOp>(op)) {
        Key key{int64_t(recv.getPeer()), int64_t(rank.getIndex()),
                recv.getPayload()};
        recvs[key].push_back(
            {int64_t(recv.getStage()), int64_t(recv.getMb())});
        recvOps[key].push_back(recv);
      }
    }
  std::set<Key> channels;
  for (auto &[key, list] : sends)
    channels.insert(key);
  for (auto &[key, list] : recvs)
    channels.insert(key);
  for (const Key &key : channels) {
    auto &out = sends[key];
    auto &in = recvs[key];
    size_t i = 0;
    while (i < out.size() && i < in.size() && out[i] == in[i])
      ++i;
    if (i == out.size() && i == in.size())
      continue;
    auto describe = [&](auto &list) -> std::string {
      if (i >= list.size())
        return "nothing";
      return llvm::formatv("stage {0} mb {1}", list[i].first, list[i].second)
          .str();
    };
    auto [from, to, payload] = key;
    InFlightDiagnostic d = emitOpError()
                           << "channel " << from << " -> " << to << " ("
                           << stringifyPayload(payload) << "s): message " << i
                           << " is " << describe(out) << " at the sender but "
                           << describe(in) << " at the receiver";
    if (i < recvOps[key].size())
      d.attachNote(recvOps[key][i]->getLoc()) << "the receive";
    return d;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// RankOp and actions
//===----------------------------------------------------------------------===//

ScheduleOp RankOp::getSchedule() {
  return (*this)->getParentOfType<ScheduleOp>();
}

LogicalResult RankOp::verify() {
  int64_t ranks = getSchedule().getNumRanks();
  int64_t index = getIndex();
  if (index < 0 || index >= ranks)
    return emitOpError() << "rank " << index
                         << " is out of range: the schedule has " << ranks
                         << " ranks";
  return success();
}

static std::string formatStages(ArrayRef<int64_t> stages) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(stages, os, " and ");
  return s;
}

/// Checks a (stage, micro-batch) pair against the schedule; when `holder` is
/// set, that rank must hold the stage.
static LogicalResult verifyStageMb(Operation *op, ScheduleOp schedule,
                                   int64_t stage, int64_t mb,
                                   std::optional<int64_t> holder) {
  int64_t numStages = schedule.getNumStages();
  if (stage < 0 || stage >= numStages)
    return op->emitOpError()
           << "stage " << stage << " is out of range: the schedule has "
           << schedule.getNumStages() << " stages";
  int64_t perStage = schedule.getMicrobatchesPerStage();
  if (mb < 0 || mb >= perStage)
    return op->emitOpError()
           << "micro-batch " << mb << " is out of range: each stage of this '"
           << schedule.getKind() << "' schedule runs " << perStage
           << " micro-batches";
  if (holder && !schedule.rankHoldsStage(*holder, stage))
    return op->emitOpError()
           << "rank " << *holder << " does not hold stage " << stage
           << " under '" << schedule.getKind() << "' (it holds stage "
           << formatStages(schedule.getStagesOfRank(*holder)) << ")";
  return success();
}

template <typename ActionOp> static LogicalResult verifyAction(ActionOp op) {
  auto rank = op->template getParentOfType<RankOp>();
  return verifyStageMb(op, rank.getSchedule(), op.getStage(), op.getMb(),
                       rank.getIndex());
}

LogicalResult ForwardOp::verify() { return verifyAction(*this); }
LogicalResult BackwardOp::verify() { return verifyAction(*this); }
LogicalResult BackwardInputOp::verify() { return verifyAction(*this); }
LogicalResult BackwardWeightOp::verify() { return verifyAction(*this); }

LogicalResult OverlappedOp::verify() {
  auto rank = (*this)->getParentOfType<RankOp>();
  ScheduleOp schedule = rank.getSchedule();
  if (failed(verifyStageMb(*this, schedule, getFwdStage(), getFwdMb(),
                           rank.getIndex())) ||
      failed(verifyStageMb(*this, schedule, getBwdStage(), getBwdMb(),
                           rank.getIndex())))
    return failure();
  if (getFwdStage() == getBwdStage())
    return emitOpError() << "overlaps a forward and a backward of the same "
                            "stage "
                         << getFwdStage()
                         << "; F&B pairs two different local stages";
  return success();
}

//===----------------------------------------------------------------------===//
// Token discipline
//===----------------------------------------------------------------------===//

/// Every asynchronous result is waited on exactly once, in the block that
/// started the operation, so that on every path the transfer completes
/// before its buffers are reused and no completion is consumed twice.
static LogicalResult verifyWaitedOnce(Operation *op, Value result) {
  unsigned waits = 0;
  for (Operation *user : result.getUsers()) {
    if (!isa<WaitOp, AwaitOp>(user))
      return op->emitOpError()
             << "result may only be used by octet_pipe.wait or "
                "octet_pipe.await, but is used by '"
             << user->getName() << "'";
    if (user->getBlock() != op->getBlock())
      return op->emitOpError() << "result is waited on in another block; "
                                  "wait in the block that starts the transfer";
    ++waits;
  }
  if (waits == 0)
    return op->emitOpError()
           << "result is never waited on: the transfer would still be in "
              "flight when its buffers are reused";
  if (waits > 1)
    return op->emitOpError()
           << "result is waited on " << waits << " times; wait exactly once";
  return success();
}

template <typename P2POp>
static LogicalResult verifyP2P(P2POp op, bool isSend) {
  auto rank = op->template getParentOfType<RankOp>();
  ScheduleOp schedule = rank.getSchedule();
  int64_t peer = op.getPeer(), self = rank.getIndex();
  int64_t ranks = schedule.getNumRanks();
  if (peer < 0 || peer >= ranks)
    return op.emitOpError()
           << "peer rank " << peer << " is out of range: the schedule has "
           << schedule.getNumRanks() << " ranks";
  if (peer == self)
    return op.emitOpError()
           << "rank " << peer << " cannot "
           << (isSend ? "send to" : "receive from") << " itself";
  // The producer of the payload holds its stage: the sender, or the peer a
  // receive comes from.
  int64_t holder = isSend ? self : peer;
  if (failed(verifyStageMb(op, schedule, op.getStage(), op.getMb(), holder)))
    return failure();
  return verifyWaitedOnce(op, op.getToken());
}

LogicalResult SendOp::verify() { return verifyP2P(*this, /*isSend=*/true); }
LogicalResult RecvOp::verify() { return verifyP2P(*this, /*isSend=*/false); }

LogicalResult WaitOp::verify() {
  if (getTokens().empty())
    return emitOpError("needs at least one token");
  llvm::SmallPtrSet<Value, 8> seen;
  for (Value token : getTokens())
    if (!seen.insert(token).second)
      return emitOpError("lists the same token twice");
  return success();
}

LogicalResult AwaitOp::verify() {
  Type expected = getValue().getType().getValueType();
  if (getResult().getType() != expected)
    return emitOpError() << "result type " << getResult().getType()
                         << " differs from the awaited value's type "
                         << expected;
  return success();
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

static ArrayRef<int64_t> getTransferShape(Type type) {
  if (auto tensor = dyn_cast<RankedTensorType>(type))
    return tensor.getShape();
  return cast<tq::QTensorType>(type).getShape();
}

/// `result` must be `!octet_pipe.async<T>` with `T` like `input` except for
/// dimension 0, which must be `dim0` (dynamic: anything).
static LogicalResult verifyCollectiveResult(Operation *op, Type input,
                                            AsyncType result, int64_t dim0) {
  Type value = result.getValueType();
  auto mismatch = [&]() {
    return op->emitOpError() << "result " << result << " does not match the "
                             << "input " << input << " (only dimension 0 "
                             << "may change, to " << formatDim(dim0) << ")";
  };
  if (input.getTypeID() != value.getTypeID())
    return mismatch();
  ArrayRef<int64_t> in = getTransferShape(input);
  ArrayRef<int64_t> out = getTransferShape(value);
  if (in.empty() || in.size() != out.size() ||
      !shapesCompatible(in.drop_front(), out.drop_front()) ||
      !dimsCompatible(out.front(), dim0))
    return mismatch();
  if (auto tensor = dyn_cast<RankedTensorType>(input)) {
    if (tensor.getElementType() !=
        cast<RankedTensorType>(value).getElementType())
      return mismatch();
  } else {
    auto qin = cast<tq::QTensorType>(input);
    auto qout = cast<tq::QTensorType>(value);
    if (qin.getElementType() != qout.getElementType() ||
        qin.getGranularity() != qout.getGranularity())
      return mismatch();
  }
  return verifyWaitedOnce(op, op->getResult(0));
}

static LogicalResult verifyGroupSize(Operation *op, int64_t size) {
  if (size < 1)
    return op->emitOpError() << "group size must be positive, got " << size;
  return success();
}

LogicalResult AllToAllOp::verify() {
  if (failed(verifyGroupSize(*this, getGroupSize())))
    return failure();
  if (Value splits = getSplitSizes()) {
    auto type = cast<RankedTensorType>(splits.getType());
    int64_t size = getGroupSize();
    if (!shapesCompatible(type.getShape(), {size}))
      return emitOpError() << "split_sizes has shape "
                           << formatShape(type.getShape())
                           << ", expected one entry per rank of the group ["
                           << getGroupSize() << "]";
  }
  // Row counts after an all-to-all depend on the routing: any dimension 0.
  return verifyCollectiveResult(*this, getInput().getType(),
                                getResult().getType(), ShapedType::kDynamic);
}

LogicalResult AllReduceOp::verify() {
  if (failed(verifyGroupSize(*this, getGroupSize())))
    return failure();
  if (getResult().getType().getValueType() != getInput().getType())
    return emitOpError() << "result " << getResult().getType()
                         << " must be the async form of the input type "
                         << getInput().getType();
  return verifyWaitedOnce(*this, getResult());
}

LogicalResult ReduceScatterOp::verify() {
  if (failed(verifyGroupSize(*this, getGroupSize())))
    return failure();
  RankedTensorType input = getInput().getType();
  if (input.getRank() < 1)
    return emitOpError("input must have rank >= 1");
  int64_t rows = input.getDimSize(0);
  int64_t shard = ShapedType::kDynamic;
  if (!ShapedType::isDynamic(rows)) {
    if (rows % getGroupSize() != 0)
      return emitOpError() << "dimension 0 (" << rows
                           << ") does not split into " << getGroupSize()
                           << " equal shards";
    shard = rows / getGroupSize();
  }
  return verifyCollectiveResult(*this, input, getResult().getType(), shard);
}

//===----------------------------------------------------------------------===//
// Expert parallelism
//===----------------------------------------------------------------------===//

/// The expert count E of [E, ...] split over `ranks`: E / ranks, or dynamic.
static FailureOr<int64_t> localExperts(Operation *op, int64_t experts,
                                       int64_t ranks, StringRef what) {
  if (failed(verifyGroupSize(op, ranks)))
    return failure();
  if (ShapedType::isDynamic(experts))
    return ShapedType::kDynamic;
  if (experts % ranks != 0)
    return op->emitOpError() << "the " << experts << " experts of " << what
                             << " do not split over " << ranks << " ranks";
  return experts / ranks;
}

/// Whether the wire format can carry rows of `element`: FP8 wires quantize
/// from high precision, the others round to a type at most as wide.
static LogicalResult verifyWire(Operation *op, WireFormat wire, Type element) {
  if (wire == WireFormat::F32 && !element.isF32())
    return op->emitOpError() << "wire f32 carries f32 rows, got " << element;
  return success();
}

LogicalResult ExpertDispatchOp::verify() {
  RankedTensorType rows = getRows().getType();
  RankedTensorType sizes = getGroupSizes().getType();
  if (rows.getRank() != 2)
    return emitOpError() << "rows must be [rows, width], got " << rows;
  if (sizes.getRank() != 1)
    return emitOpError() << "group_sizes must be [experts], got " << sizes;
  FailureOr<int64_t> local = localExperts(*this, sizes.getDimSize(0),
                                          int64_t(getRanks()), "group_sizes");
  if (failed(local) ||
      failed(verifyWire(*this, getWire(), rows.getElementType())))
    return failure();
  int64_t n = rows.getDimSize(0);
  int64_t capacity =
      ShapedType::isDynamic(n) ? ShapedType::kDynamic : n * int64_t(getRanks());
  SmallVector<int64_t> received = {capacity, rows.getDimSize(1)};
  RankedTensorType got = getReceived().getType();
  if (got.getElementType() != rows.getElementType() ||
      !shapesCompatible(got.getShape(), received))
    return emitOpError() << "received must be " << formatShape(received)
                         << " of " << rows.getElementType()
                         << " (every rank's rows, for the worst case), got "
                         << got;
  if (!shapesCompatible(getLocalSizes().getType().getShape(), {*local}))
    return emitOpError() << "local_sizes must be " << formatShape({*local})
                         << ", one entry per local expert, got "
                         << getLocalSizes().getType();
  SmallVector<int64_t> layout = {int64_t(getRanks()), *local};
  if (!shapesCompatible(getLayout().getType().getShape(), layout))
    return emitOpError() << "layout must be " << formatShape(layout)
                         << " (rows from each rank per local expert), got "
                         << getLayout().getType();
  return success();
}

LogicalResult ExpertCombineOp::verify() {
  RankedTensorType rows = getRows().getType();
  RankedTensorType result = getResult().getType();
  RankedTensorType layout = getLayout().getType();
  if (failed(verifyGroupSize(*this, int64_t(getRanks()))))
    return failure();
  if (rows.getRank() != 2 || result.getRank() != 2)
    return emitOpError() << "rows and result must be [rows, width], got "
                         << rows << " and " << result;
  if (layout.getRank() != 2 ||
      !dimsCompatible(layout.getDimSize(0), int64_t(getRanks())))
    return emitOpError() << "layout must be [" << int64_t(getRanks())
                         << ", local experts], got " << layout;
  if (failed(verifyWire(*this, getWire(), rows.getElementType())))
    return failure();
  int64_t n = result.getDimSize(0), capacity = rows.getDimSize(0);
  if (result.getElementType() != rows.getElementType() ||
      !dimsCompatible(result.getDimSize(1), rows.getDimSize(1)) ||
      (!ShapedType::isDynamic(n) && !ShapedType::isDynamic(capacity) &&
       capacity != n * int64_t(getRanks())))
    return emitOpError() << "result must be "
                         << formatShape({ShapedType::isDynamic(capacity)
                                             ? ShapedType::kDynamic
                                             : capacity / int64_t(getRanks()),
                                         rows.getDimSize(1)})
                         << " of " << rows.getElementType()
                         << " (what each of the " << int64_t(getRanks())
                         << " ranks dispatched), got " << result;
  return success();
}

/// local_experts and its gradient: `whole` is [E, ...], `part` [E/G, ...].
static LogicalResult verifyExpertShare(Operation *op, RankedTensorType whole,
                                       RankedTensorType part, int64_t ranks) {
  if (whole.getRank() < 1)
    return op->emitOpError()
           << "expert tensors must be [experts, ...], got " << whole;
  FailureOr<int64_t> local =
      localExperts(op, whole.getDimSize(0), ranks, "the weight");
  if (failed(local))
    return failure();
  SmallVector<int64_t> shape(whole.getShape());
  shape[0] = *local;
  if (part.getElementType() != whole.getElementType() ||
      !shapesCompatible(part.getShape(), shape))
    return op->emitOpError()
           << "a rank's share of " << whole << " is " << formatShape(shape)
           << " of " << whole.getElementType() << ", got " << part;
  return success();
}

LogicalResult LocalExpertsOp::verify() {
  return verifyExpertShare(*this, getInput().getType(), getResult().getType(),
                           int64_t(getRanks()));
}

LogicalResult LocalExpertsGradOp::verify() {
  return verifyExpertShare(*this, getResult().getType(), getInput().getType(),
                           int64_t(getRanks()));
}
