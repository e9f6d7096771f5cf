//===- PipelineRunner.h - Pipeline ranks as threads on the CPU --*- C++ -*-===//
//
// Runs one training step of a pipeline-parallel program (one compiled with
// more than one stage: per-stage forward and backward functions and the
// pipeline.* metadata) with every rank a thread holding its own CPU
// executor. Each rank follows its actions in the order of the program's
// schedule (octet::schedule: 1F1B, ZB-H1, interleaved 1F1B, DualPipe,
// DualPipeV), waiting for the tensors an action needs from other ranks;
// the tensors travel through a mailbox keyed by (function, micro-batch).
// ZB-H1's weight-gradient actions are folded into its input-gradient ones
// (one backward function per stage), which leaves every gradient's
// accumulation order unchanged.
//
// During the step, one communication thread per pipeline rank reduces the
// gradients of its parameters in buckets, each as soon as every rank
// holding its parameters has run its last action touching them: copied
// from the one rank that holds a parameter, or summed over DualPipe's
// mirrored copies and over the data-parallel replicas (in rank order, then
// replica order). The sum goes to the parameter's updater: the pipeline
// rank holding it (the lower of DualPipe's two) on the first replica, or
// with ZeRO-1 (pipeline.zero = 1) on the replica whose share it is in
// (the shares balanced by size). In optimizerStep() every updater runs
// AdamW on its parameters and sends the new weights to the other ranks
// that read them; it alone keeps their AdamW moments. The master (rank 0)
// holds only its own share, and gathers the others' for a checkpoint
// (gatherState()). A rank that fails, or waits longer than the timeout,
// ends the step with an error on every rank.
//
// Expert parallelism (pipeline.ep = G > 1): the same pipeline rank of G
// consecutive replicas forms an expert-parallel group, through which the
// program's octet_pipe expert ops (--octet-insert-expert-comm) send each
// MoE layer's rows to their experts' owners and back (ExpertExchange);
// each group rank's experts are reduced and updated (a piece of each
// expert weight) by that group rank's first replica, and a rank holds of
// an expert weight only its own experts' weights and gradient (the
// weights of parameters a rank holds but neither reads nor updates are
// NaN, so that a read of them shows in the losses).
//
// Every executor is created holding only its rank's share of the state and
// the buffers of the functions it runs, and the caller initialises it
// (create()'s MakeRank): no rank ever holds a whole copy of the model.
//
// Ranks as processes (a ProcessGroup, octet-run --nproc): each process
// runs one rank (rank 0 the master), and everything the ranks share
// travels as messages: a stage function's results to the ranks whose
// functions take them (and the losses to the master), the expert
// exchanges, each final gradient to the rank that reduces and updates it,
// the new weights from each updater to the ranks reading them, the
// updaters' shares to the master for a checkpoint, and at the end every
// rank's events for the trace. The reductions sum in the same order as
// with threads, so the results are bit-identical. A rank that fails tells
// the others; one whose process dies is seen at once by every other (its
// connections close).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_PIPELINERUNNER_H
#define OCTET_RUNTIME_PIPELINERUNNER_H

#include "octet/Runtime/CpuExecutor.h"
#include "octet/Runtime/DataLoader.h"
#include "octet/Runtime/ProcessGroup.h"

#include "llvm/Support/Error.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace octet::runtime {

/// The per-stage functions a pipeline-parallel program records (metadata
/// pipeline.functions, pipeline.<fn>.inputs, pipeline.returns), read once.
struct StageFunctions {
  /// Where a value comes from: the step's argument `argument` (token ids 0,
  /// labels 1), or result `result` of stage function `function`.
  struct Source {
    int64_t argument = -1;
    std::string function;
    unsigned result = 0;
  };
  std::vector<std::string> order; ///< An order that runs a step.
  std::map<std::string, std::vector<Source>> inputs;
  std::vector<Source> returns; ///< The step's losses.

  /// Empty `order` when the program has no stage functions; an error when
  /// the metadata is malformed.
  static llvm::Expected<StageFunctions> read(const Program &program);
};

template <typename T> class PipelineRunner {
public:
  struct Loss {
    T objective = 0; ///< The returned (first) loss.
    T main = 0;      ///< The main-model loss (second result, if any).
  };

  /// Makes the executor of rank `rank` (pipeline rank `rank % ranks` of
  /// replica `rank / ranks`), created with `holding`, the share of the
  /// state that rank holds (CpuExecutor::create), with its state
  /// initialised: by initParameters, which draws a parameter alike on every
  /// rank, or from a checkpoint (the weights it holds, and the moments from
  /// element getMomentOffset on). It also sets the executor's GEMM engines.
  using MakeRank = std::function<llvm::Expected<CpuExecutor<T>>(
      int64_t rank, const typename CpuExecutor<T>::Holding &holding)>;

  /// Reads the schedule from `program`'s metadata, works out what each rank
  /// reads, accumulates and updates, and makes the executors of the ranks
  /// it runs with `makeRank`: every rank with threads; with a process group
  /// (of the program's number of ranks) only this process's. Every
  /// process of a group calls create() (as it calls every other member
  /// that says so: step(), optimizerStep(), awaitCheckpoint(), finish()).
  /// The runner owns the executors and closes the group when destroyed.
  static llvm::Expected<std::unique_ptr<PipelineRunner>>
  create(const Program &program, MakeRank makeRank,
         std::chrono::seconds timeout = std::chrono::seconds(120),
         size_t bucketBytes = size_t(25) << 20, ProcessGroup *group = nullptr);
  ~PipelineRunner();

  /// A watchdog: when one of this process's ranks computes a stage
  /// function (or its optimizer step) for longer than `limit`, the step
  /// fails on every rank, naming it, and `onExpired` gets why, on the
  /// watchdog's thread. A computation cannot be interrupted, so the caller
  /// ends the process there (octet-run --compute-timeout). Once; off
  /// until called.
  void setComputeLimit(std::chrono::seconds limit,
                       std::function<void(std::string why)> onExpired);

  int64_t getNumRanks() const;
  /// The ranks of an expert-parallel group (1: every rank has all experts).
  int64_t getExpertParallelism() const;

  /// What a rank did during a step, for traces: computing a stage function
  /// or waiting for another rank's tensors. Times in microseconds since
  /// `origin` (the runner's creation).
  struct Event {
    int64_t rank = 0;
    std::string name; ///< "F0 mb3", "B1 mb0", "wait F0 mb3", "wait experts".
    bool waiting = false;
    /// A wait inside a stage function (for an expert exchange): its time is
    /// also part of the function's.
    bool nested = false;
    /// A gradient reduction ("reduce bucket 2 (...)") by pipeline rank
    /// `rank`'s communication thread.
    bool communication = false;
    /// On the thread running the forward half of an overlapped F&B, beside
    /// the rank's own (the backward half).
    bool overlapped = false;
    /// Ranks as processes: a message going out to another rank ("send F0
    /// mb3 to rank 1"), on the rank's communication thread, beside its
    /// computation.
    bool transfer = false;
    double startUs = 0, durationUs = 0;
  };
  /// Per rank, over all steps so far: busy time (some thread of the rank
  /// computing), waiting time (none computing, one waiting for another
  /// rank's tensors or an expert exchange: the exposed communication), and
  /// the wall time of the steps.
  struct Summary {
    std::vector<double> busyUs, waitingUs;
    double stepsUs = 0;
    /// Per pipeline rank: gradient reduction time, the part of it after
    /// the rank's last computation of each step, and the buckets reduced.
    std::vector<double> reduceUs, exposedReduceUs;
    std::vector<int64_t> buckets;
    /// Per rank, with expert parallelism: the expert exchanges it ran and
    /// the bytes it sent to the other ranks of its group in them (rows in
    /// their wire format: FP8 for the routed rows).
    std::vector<int64_t> expertExchanges, expertBytes;
  };
  const std::vector<Event> &getEvents() const;
  Summary getSummary() const;
  /// The schedule simulated (octet::schedule::simulate) with the measured
  /// mean forward and backward times of each stage: the bubble each rank
  /// would have, as a fraction of the makespan.
  std::vector<double> getSimulatedBubble() const;

  /// The executor of rank `rank`, one this process runs (every rank with
  /// threads, its own in a group); rank 0's is the master, which holds
  /// what gatherState() brings. Its GEMM engines may be changed between
  /// steps (octet-run --virtual-ranks gives each rank a stream of its own).
  CpuExecutor<T> &getExecutor(int64_t rank);
  /// This process's rank (0 with threads): the master is rank 0. It has
  /// the losses, writes the checkpoints and has, after finish(), every
  /// rank's events.
  int64_t getRank() const;

  /// After gatherState(), the other processes wait here until the master
  /// has written its checkpoint (it calls this after writing); nothing
  /// otherwise. Every process of a group calls it after each optimizer
  /// step.
  llvm::Error awaitCheckpoint();

  /// The step's reduced gradient of parameter `name`, on the rank that
  /// updates it (std::nullopt in the other processes of a group, and for
  /// an expert weight under expert parallelism, which its experts' owners
  /// update in pieces).
  std::optional<llvm::MutableArrayRef<T>> gradient(llvm::StringRef name);
  /// Divides every reduced gradient this process holds by `by` (the mean
  /// over micro-batches). Every process of a group calls it.
  void divideGradients(T by);
  /// The reduced gradients the master does not update itself, from the
  /// ranks that do (for octet-run --save-gradients; nothing in the other
  /// processes). Every process of a group calls it.
  llvm::Expected<std::map<std::string, std::vector<T>>> gatherGradients();
  /// Whether the optimizer is sharded over the replicas (ZeRO-1); without
  /// it the first replica's ranks update their parameters.
  bool shardsOptimizer() const;
  /// Per replica: the parameter elements its ranks update (all on the
  /// first replica without ZeRO-1).
  std::vector<int64_t> getOptimizerShares() const;
  /// What a rank holds, in bytes: the FP32 weights of the parameters it
  /// reads, accumulates or updates, their gradient accumulators, the AdamW
  /// moments (BF16) of those it updates, and the buffers of the functions
  /// it runs (activations and their gradients, one micro-batch's of each
  /// function). -1: not known here.
  struct StateBytes {
    int64_t weights = -1, gradients = -1, moments = -1, buffers = -1;
  };
  /// Per rank (in a group, the other processes' known after finish()).
  std::vector<StateBytes> getStateBytes() const;
  /// The update: every rank runs @optimizer_step on the parameters it
  /// updates (in parallel: the pipeline ranks of the first replica their
  /// own stages', with ZeRO-1 every replica's ranks a share; each expert's
  /// first owner its experts' piece of an expert weight), then sends the
  /// new weights straight to the other ranks that read them (of an expert
  /// weight, the experts they own).
  /// The moments stay with their updaters. Every process of a group calls
  /// it.
  llvm::Error optimizerStep(T lr, int64_t step);

  /// A parameter's state from the rank that updates it: its weights
  /// (empty when the master keeps them itself) and AdamW moments (BF16
  /// bits).
  struct ParameterState {
    std::vector<T> weights;
    std::vector<uint16_t> first, second;
  };
  /// For a checkpoint: brings every updater's share to the master, and
  /// returns there the state of the parameters it does not update (the
  /// weights of those it keeps go into its executor; nothing in the other
  /// processes). A rank keeps only the parameters it reads, accumulates
  /// or updates, and current only the weights it reads or updates, so the
  /// master calls this before writing a checkpoint. Every process of a
  /// group calls it, then awaitCheckpoint().
  llvm::Expected<std::map<std::string, ParameterState>> gatherState();

  /// Runs the micro-batches of one step (one batch each, in order) through
  /// the schedule and leaves the gradients, as the whole step would have
  /// accumulated them, in the master executor; returns each micro-batch's
  /// losses.
  /// Every process of a group calls it with the same batches, and gets the
  /// same losses.
  llvm::Expected<std::vector<Loss>> step(llvm::ArrayRef<Batch> batches);

  /// In a group, sends every rank's events and counters to the master, for
  /// getEvents(), getSummary() and getStateBytes() there; nothing with
  /// threads. Every process calls it, after the last step.
  llvm::Error finish();

  struct Impl;

private:
  explicit PipelineRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

extern template class PipelineRunner<float>;

} // namespace octet::runtime

#endif // OCTET_RUNTIME_PIPELINERUNNER_H
