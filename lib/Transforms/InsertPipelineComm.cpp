//===- InsertPipelineComm.cpp - Pipeline actions and transfers as IR ------===//
//
// The ranks' orders come from octet::schedule; this pass adds what moves
// between ranks and checks that both ends of every channel agree.
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/OctetPipe/OctetPipe.h"
#include "octet/Schedule/PipelineSchedule.h"
#include "octet/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>

namespace octet {
#define GEN_PASS_DEF_INSERTPIPELINECOMMPASS
#include "octet/Transforms/Passes.h.inc"
} // namespace octet

using namespace mlir;
using namespace octet;
namespace sched = octet::schedule;
using pipe::Payload;

namespace {

/// One transfer as its end sees it.
struct Message {
  int64_t peer;
  Payload payload;
  int64_t stage, mb;
};

struct InsertPipelineCommPass
    : public octet::impl::InsertPipelineCommPassBase<InsertPipelineCommPass> {
  using Base::Base;

  void runOnOperation() override;
};

void InsertPipelineCommPass::runOnOperation() {
  ModuleOp module = getOperation();
  std::optional<sched::Kind> kind = sched::parseKind(scheduleName);
  if (!kind || *kind == sched::Kind::Custom) {
    module.emitError() << "octet-insert-pipeline-comm: unknown schedule '"
                       << scheduleName
                       << "' (1f1b, zb1p, interleaved-1f1b, dualpipe, "
                          "dualpipev)";
    return signalPassFailure();
  }
  std::string error;
  std::optional<sched::Schedule> s =
      sched::build(*kind, numRanks, numMicrobatches, error, numChunks);
  if (!s) {
    module.emitError() << "octet-insert-pipeline-comm: " << error;
    return signalPassFailure();
  }
  if (std::string deadlock = sched::checkDeadlockFree(*s); !deadlock.empty()) {
    module.emitError() << "octet-insert-pipeline-comm: " << deadlock;
    return signalPassFailure();
  }

  // Who holds each stage, and each stage's neighbours in its data flow
  // (DualPipe: within its copy).
  std::map<int64_t, int64_t> holder;
  for (int64_t r = 0; r < s->ranks; ++r)
    for (const sched::Action &a : s->perRank[r]) {
      holder.try_emplace(a.stage, r);
      if (a.type == sched::Action::ForwardBackward)
        holder.try_emplace(a.bwdStage, r);
    }
  int64_t copyStages =
      *kind == sched::Kind::DualPipe ? s->stages / 2 : s->stages;
  auto previous = [&](int64_t g) -> std::optional<int64_t> {
    if (g % copyStages == 0)
      return std::nullopt;
    return g - 1;
  };
  auto next = [&](int64_t g) -> std::optional<int64_t> {
    if (g % copyStages == copyStages - 1)
      return std::nullopt;
    return g + 1;
  };

  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = module.getLoc();
  auto schedule = pipe::ScheduleOp::create(b, loc, sched::kindName(*kind),
                                           s->ranks, s->stages,
                                           s->microbatches);
  schedule.getBody().emplaceBlock();
  Type token = pipe::TokenType::get(module.getContext());

  for (int64_t r = 0; r < s->ranks; ++r) {
    b.setInsertionPointToEnd(&schedule.getBody().front());
    auto rank = pipe::RankOp::create(b, loc, r);
    rank.getBody().emplaceBlock();
    b.setInsertionPointToEnd(&rank.getBody().front());
    const std::vector<sched::Action> &actions = s->perRank[r];

    // What action `a` needs from other ranks (`receiving`), or what it
    // sends them: a forward moves activations down its copy's stages, a
    // backward gradients up.
    auto transfers = [&](const sched::Action &a, bool receiving) {
      std::vector<Message> messages;
      auto forward = [&](int64_t g, int64_t mb) {
        std::optional<int64_t> peer = receiving ? previous(g) : next(g);
        if (peer && holder[*peer] != r)
          messages.push_back({holder[*peer], Payload::Activation,
                              receiving ? *peer : g, mb});
      };
      auto backward = [&](int64_t g, int64_t mb) {
        std::optional<int64_t> peer = receiving ? next(g) : previous(g);
        if (peer && holder[*peer] != r)
          messages.push_back({holder[*peer], Payload::Gradient,
                              receiving ? *peer : g, mb});
      };
      switch (a.type) {
      case sched::Action::Forward:
        forward(a.stage, a.mb);
        break;
      case sched::Action::Backward:
      case sched::Action::InputGrad:
        backward(a.stage, a.mb);
        break;
      case sched::Action::WeightGrad:
        break;
      case sched::Action::ForwardBackward:
        forward(a.stage, a.mb);
        backward(a.bwdStage, a.bwdMb);
        break;
      }
      return messages;
    };
    auto post = [&](size_t k) {
      SmallVector<Value> tokens;
      if (k < actions.size())
        for (const Message &m : transfers(actions[k], /*receiving=*/true)) {
          tokens.push_back(pipe::RecvOp::create(b, loc, token, m.payload,
                                                m.stage, m.mb, m.peer));
        }
      return tokens;
    };

    SmallVector<Value> pending = post(0), sends;
    for (size_t k = 0; k < actions.size(); ++k) {
      const sched::Action &a = actions[k];
      if (!pending.empty())
        pipe::WaitOp::create(b, loc, pending);
      switch (a.type) {
      case sched::Action::Forward:
        pipe::ForwardOp::create(b, loc, a.stage, a.mb);
        break;
      case sched::Action::Backward:
        pipe::BackwardOp::create(b, loc, a.stage, a.mb);
        break;
      case sched::Action::InputGrad:
        pipe::BackwardInputOp::create(b, loc, a.stage, a.mb);
        break;
      case sched::Action::WeightGrad:
        pipe::BackwardWeightOp::create(b, loc, a.stage, a.mb);
        break;
      case sched::Action::ForwardBackward:
        pipe::OverlappedOp::create(b, loc, a.stage, a.mb, a.bwdStage,
                                   a.bwdMb);
        break;
      }
      for (const Message &m : transfers(a, /*receiving=*/false)) {
        sends.push_back(pipe::SendOp::create(b, loc, token, m.payload, m.stage,
                                             m.mb, m.peer));
      }
      pending = post(k + 1);
    }
    if (!sends.empty())
      pipe::WaitOp::create(b, loc, sends);
  }

  // The schedule op's verifier checks that both ends of every channel
  // agree (run it now, so that a mismatch names this pass).
  if (failed(verify(schedule))) {
    schedule.erase();
    return signalPassFailure();
  }
}

} // namespace
