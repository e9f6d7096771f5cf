//===- PipelineSchedule.h - Per-rank pipeline schedules ---------*- C++ -*-===//
//
// The per-rank order of one training step's pipeline actions for 1F1B,
// DualPipe and DualPipeV, as ../shared/reference/dualpipe.md specifies
// (DualPipe's per-rank algorithm, steps 1-8), printed in the form
// `rank R: 0F0, 0F1, (0F2;7B0), 3I0, 3W0, ...`, plus checks of the
// schedule's invariants and a dependency simulation that proves it cannot
// deadlock. Plain C++: the compiler and the runtime can both use it.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_SCHEDULE_PIPELINESCHEDULE_H
#define OCTET_SCHEDULE_PIPELINESCHEDULE_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace octet::schedule {

enum class Kind {
  OneFOneB,
  ZB1P,
  Interleaved1F1B,
  DualPipe,
  DualPipeV,
  Custom
};

/// "1f1b", "zb1p", "interleaved-1f1b", "dualpipe", "dualpipev".
std::optional<Kind> parseKind(const std::string &name);
const char *kindName(Kind kind);

/// One action of a rank. Forward, Backward (input and weight gradients),
/// InputGrad and WeightGrad name one (global stage, micro-batch); an
/// overlapped F&B names the forward's and the backward's.
struct Action {
  enum Type { Forward, Backward, InputGrad, WeightGrad, ForwardBackward };
  Type type = Forward;
  int64_t stage = 0, mb = 0;
  int64_t bwdStage = 0, bwdMb = 0; ///< ForwardBackward only.

  /// "0F3", "7B1", "3I0", "3W0" or "(0F7;7B3)".
  std::string str() const;
};

struct Schedule {
  Kind kind;
  int64_t ranks = 0, microbatches = 0;
  /// Global stages: 1F1B has one per rank; DualPipe/V two per rank.
  int64_t stages = 0;
  std::vector<std::vector<Action>> perRank;

  /// "rank R: A, A, ..." for every rank, one line each.
  std::string str() const;
};

/// Builds the schedule or returns why these sizes are not valid for it
/// (DualPipe: even ranks, even micro-batches >= 2 x ranks; DualPipeV:
/// micro-batches >= 2 x ranks; interleaved 1F1B: micro-batches a multiple
/// of the ranks; 1F1B, ZB-H1: any). `chunks` is the interleaved schedule's
/// model chunks per rank (stage c x ranks + r on rank r).
std::optional<Schedule> build(Kind kind, int64_t ranks, int64_t microbatches,
                              std::string &error, int64_t chunks = 2);

/// Empty if every stage runs each micro-batch's forward once and its
/// backward once (as B, or as I and W), on the rank that holds the stage,
/// forwards and backwards in increasing micro-batch order, every I with a
/// later W; otherwise what is wrong.
std::string checkInvariants(const Schedule &s);

/// Empty if the ranks, each running its actions in order and waiting for
/// the data an action needs (the previous stage's forward, the next stage's
/// backward, the same stage's forward for the last stage's backward), all
/// finish; otherwise where they deadlock.
std::string checkDeadlockFree(const Schedule &s);

} // namespace octet::schedule

namespace octet::schedule {

/// Durations of one chunk's actions on one rank.
struct Costs {
  double forward = 1, backward = 2, inputGrad = 1, weightGrad = 1;
  /// An overlapped forward and full backward; F + B when not given.
  std::optional<double> forwardBackward;
  /// Per-stage multiplier of the durations, e.g. a stage's FLOPs over the
  /// mean (empty: 1 for every stage). An overlapped F&B scales its F and B
  /// parts by their own stages' (an explicit F&B by their mean).
  std::vector<double> stageScale;

  double scaleOf(int64_t stage) const {
    return stage < int64_t(stageScale.size()) ? stageScale[stage] : 1.0;
  }
};

struct Simulation {
  double makespan = 0;
  std::vector<double> busy, bubble; ///< per rank
  /// Largest number of micro-batch activations a rank holds at once: from
  /// a forward until the backward that frees them (B, or W when split).
  std::vector<int64_t> peakActivations;
  /// Point-to-point messages a rank sends, each one micro-batch's boundary
  /// tensor: activations to the next stage's rank, input gradients to the
  /// previous stage's; hand-offs between stages on one rank are not sent.
  std::vector<int64_t> activationSends, gradientSends;
};

/// The schedule in PyTorch pipelining's CSV form: one row per rank, one
/// action per cell (`0F0`, `3I1`, `(0F7;7B3)OVERLAP_F_B`).
std::string toCSV(const Schedule &s);

/// A custom schedule from such a CSV (the overlap suffix is optional). The
/// model is one chain of stages 0..S-1, each run by one rank; the schedule
/// must pass checkInvariants and checkDeadlockFree, else `error` says where
/// it fails (`row 2, cell 5: ...` for syntax).
std::optional<Schedule> parseCSV(const std::string &text, std::string &error);

/// Runs the schedule with these costs, each action starting when its rank
/// is free and its inputs exist (communication is free); the schedule must
/// be deadlock free.
Simulation simulate(const Schedule &s, const Costs &costs);

} // namespace octet::schedule

#endif // OCTET_SCHEDULE_PIPELINESCHEDULE_H
