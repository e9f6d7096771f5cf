//===- PipelineRunner.cpp - Pipeline ranks as threads on the CPU ----------===//

#include "octet/Runtime/PipelineRunner.h"

#include "octet/Schedule/PipelineSchedule.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <cassert>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <unistd.h>

using namespace octet::runtime;
namespace sched = octet::schedule;

llvm::Expected<StageFunctions>
octet::runtime::StageFunctions::read(const Program &program) {
  auto meta = [&](const std::string &key) -> std::string {
    auto it = program.metadata.find(key);
    return it == program.metadata.end() ? "" : it->second;
  };
  auto parse = [](llvm::StringRef text) -> std::optional<Source> {
    Source s;
    if (text.consume_front("arg"))
      return text.getAsInteger(10, s.argument) || s.argument < 0
                 ? std::nullopt
                 : std::optional<Source>(s);
    auto [fn, index] = text.rsplit(':');
    if (fn.empty() || index.getAsInteger(10, s.result))
      return std::nullopt;
    s.function = fn.str();
    return s;
  };
  auto list = [&](const std::string &key,
                  std::vector<Source> &out) -> llvm::Error {
    std::string text = meta(key);
    llvm::SmallVector<llvm::StringRef> items;
    llvm::StringRef(text).split(items, ',', -1, false);
    for (llvm::StringRef item : items) {
      std::optional<Source> s = parse(item);
      if (!s)
        return llvm::createStringError("the program's " + key + " names '" +
                                       item +
                                       "': expected arg<i> or <function>:<j>");
      out.push_back(*s);
    }
    return llvm::Error::success();
  };
  StageFunctions f;
  std::string order = meta("pipeline.functions");
  llvm::SmallVector<llvm::StringRef> names;
  llvm::StringRef(order).split(names, ',', -1, false);
  for (llvm::StringRef fn : names) {
    f.order.push_back(fn.str());
    if (llvm::Error e = list("pipeline." + fn.str() + ".inputs",
                             f.inputs[fn.str()]))
      return std::move(e);
  }
  if (llvm::Error e = list("pipeline.returns", f.returns))
    return std::move(e);
  if (!f.order.empty() && f.returns.empty())
    return llvm::createStringError(
        "the program's pipeline returns no loss (pipeline.returns)");
  return f;
}

namespace {
template <typename T> class RankExchange;
/// Set on the thread that runs the forward half of an overlapped F&B, so
/// that what it records goes to the rank's second track.
thread_local bool overlappedForward = false;

/// The messages between the processes of a group. Those of a step
/// (kResult to kFail, and kEnded) carry the step's index first.
enum MessageKind : uint32_t {
  kResult = 1,   ///< A stage function's results, to the ranks taking them.
  kExperts,      ///< One rank's rows of an expert exchange for another.
  kGradient,     ///< A final gradient, to the rank reducing it.
  kDone,         ///< A rank is done with the step, its reductions too.
  kFail,         ///< A rank failed: why.
  kLosses,       ///< The step's losses, from the master.
  kCheckpointed, ///< The master has written its checkpoint.
  kShard,        ///< An updater's new weights, to the ranks reading them.
  kStats,        ///< A rank's events and counters, to the master (finish).
  kAlive,        ///< The rank computes (a heartbeat, for the bounded waits).
  kEnded,        ///< A rank's actions of the step ended (its reductions go on).
  kGather,       ///< An updater's weights and moments, for a checkpoint.
  kGradients,    ///< An updater's reduced gradients (--save-gradients).
};

/// Microseconds on the steady clock, which the processes of one machine
/// share.
double steadyUs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::micro>(t.time_since_epoch())
      .count();
}
} // namespace

template <typename T> struct PipelineRunner<T>::Impl {
  using Executor = CpuExecutor<T>;
  using Message = typename ExpertExchange<T>::Message;
  using Output = typename Executor::Output;
  using Argument = typename Executor::Argument;

  const Program *program = nullptr;
  std::chrono::seconds timeout{120};
  sched::Schedule schedule;
  int64_t modelStages = 0;
  /// Pipeline ranks per replica, and data-parallel replicas: executor
  /// d * pp + r is pipeline rank r of replica d.
  int64_t pp = 1, replicas = 1;
  /// A one-stage program run data-parallel: @forward_backward whole.
  bool wholeStep = false;
  std::vector<Executor *> ranks; ///< ranks[0] is the master.
  std::vector<std::unique_ptr<Executor>> owned;
  StageFunctions stages;
  /// Expert parallelism: ranks per group, each executor's exchange, and the
  /// experts' weights (parameter name, number of experts).
  int64_t ep = 1;
  std::vector<std::unique_ptr<RankExchange<T>>> exchanges;
  std::vector<std::pair<std::string, int64_t>> expertWeights;

  // Gradient reduction. Each pipeline rank's parameters are reduced over
  // the replicas (and DualPipe's mirrored copies) in buckets, by one
  // communication thread per pipeline rank, as soon as every rank holding
  // a bucket's parameters has done its last accumulation of them.
  struct Bucket {
    std::vector<std::string> params;
    size_t bytes = 0;
    /// The parameters this process reduces: all, or in a group those it
    /// updates (set once the updaters are known).
    std::vector<std::string> here;
  };
  size_t bucketBytes = size_t(25) << 20;
  std::vector<std::vector<Bucket>> buckets; ///< Per pipeline rank.
  /// Per executor: the accumulations of each parameter's gradient a step
  /// makes, and those made so far in this step.
  std::vector<std::map<std::string, int64_t>> expected, accumulated;
  /// Per parameter: the executors holding its gradient, and how many are
  /// final in this step.
  std::map<std::string, std::vector<size_t>> holders;
  std::map<std::string, size_t> finals;
  /// Who reduces and updates what: each trainable parameter with a
  /// gradient in pieces, each piece's elements [begin, end) and the
  /// executor that receives their reduced gradient and updates them. One
  /// piece, on a rank holding the parameter, of the first replica or
  /// (ZeRO-1, `zero`) of the replica whose share it is in; an expert
  /// weight under expert parallelism has one piece per group rank, its
  /// experts, on that group rank's first replica. A parameter without
  /// pieces (no gradient) is the master's.
  struct Piece {
    size_t begin = 0, end = 0, updater = 0;
  };
  bool zero = false;
  std::map<std::string, std::vector<Piece>> pieces;
  /// A gatherState() since the last awaitCheckpoint(), which then holds
  /// the other processes until the master has written its checkpoint.
  bool gathered = false;

  size_t numel(const std::string &name) const {
    const Parameter *p = program->lookupParameter(name);
    return p ? size_t(p->numElements()) : 1;
  }
  /// Parameter `name`'s pieces: none without a gradient.
  llvm::ArrayRef<Piece> piecesOf(const std::string &name) const {
    auto it = pieces.find(name);
    if (it == pieces.end())
      return {};
    return it->second;
  }
  /// Whether executor `e` updates (a piece of) parameter `name`.
  bool updates(size_t e, const std::string &name) const {
    auto it = pieces.find(name);
    if (it == pieces.end())
      return e == 0;
    return llvm::any_of(it->second,
                        [&](const Piece &p) { return p.updater == e; });
  }
  int64_t groupRankOf(size_t e) const { return (int64_t(e) / pp) % ep; }
  /// Whether holder `e`'s gradient of `name` goes into piece `piece`: the
  /// only one, or of an expert weight its group rank's.
  bool contributes(size_t e, const std::string &name,
                   const Piece &piece) const {
    auto [begin, end] = readRange(e, name, numel(name));
    return begin <= piece.begin && piece.end <= end;
  }
  /// The piece holder `e`'s gradient of `name` goes into.
  const Piece *pieceFor(size_t e, const std::string &name) const {
    for (const Piece &p : piecesOf(name))
      if (contributes(e, name, p))
        return &p;
    return nullptr;
  }
  /// Per parameter: the executors whose functions read its weights.
  std::map<std::string, std::set<size_t>> readers;
  /// Whether executor `e` needs parameter `name`'s weights after each
  /// update: it runs functions that read them.
  bool uses(size_t e, const std::string &name) const {
    auto it = readers.find(name);
    return it != readers.end() && it->second.count(e);
  }
  /// Whether executor `e` keeps parameter `name`'s state at all: it reads
  /// the weights, accumulates the gradient or updates it.
  bool keeps(size_t e, const std::string &name) const {
    auto it = holders.find(name);
    return uses(e, name) || updates(e, name) ||
           (it != holders.end() && llvm::is_contained(it->second, e));
  }

  /// The elements [begin, end) of parameter `name` (`size` of them) that
  /// executor `e` reads: all, except under expert parallelism its own
  /// experts'.
  std::pair<size_t, size_t> readRange(size_t e, const std::string &name,
                                      size_t size) const {
    for (const auto &[weight, experts] : expertWeights)
      if (weight == name && experts > 0 && experts % ep == 0) {
        size_t perExpert = size / size_t(experts), local = size_t(experts / ep),
               mine = size_t(groupRankOf(e));
        return {mine * local * perExpert, (mine + 1) * local * perExpert};
      }
    return {0, size};
  }
  /// The part of piece `piece` of `name` that executor `e` reads (maybe
  /// empty).
  std::pair<size_t, size_t> readOf(size_t e, const std::string &name,
                                   const Piece &piece) const {
    auto [begin, end] = readRange(e, name, numel(name));
    begin = std::max(begin, piece.begin);
    end = std::min(end, piece.end);
    return {begin, std::max(begin, end)};
  }

  /// Sets to NaN, in executor `e`, the weights it must not read, so that a
  /// read would show in the losses: the parameters it neither uses nor
  /// updates (stale between updates; gatherState() brings them to the
  /// master), and of what it holds of another, any part it does not read
  /// (none: of an expert weight it holds its own experts alone).
  void maskForeignWeights(size_t e) {
    if (!ranks[e])
      return;
    constexpr T nan = std::numeric_limits<T>::quiet_NaN();
    for (const Parameter &p : program->parameters) {
      std::optional<llvm::MutableArrayRef<T>> w =
          ranks[e]->masterWeight(p.name);
      if (!w || p.frozen)
        continue;
      if (!uses(e, p.name) && !updates(e, p.name)) {
        std::fill(w->begin(), w->end(), nan);
        continue;
      }
      // Of what it holds (from element `first` on), what it does not read.
      size_t first = size_t(ranks[e]->getWeightOffset(p.name)),
             last = first + w->size();
      auto [begin, end] = readRange(e, p.name, numel(p.name));
      begin = std::clamp(begin, first, last);
      end = std::clamp(end, begin, last);
      std::fill(w->begin(), w->begin() + (begin - first), nan);
      std::fill(w->begin() + (end - first), w->end(), nan);
    }
  }

  /// Per pipeline rank: reduction time, and the part of it after the
  /// rank's last computation of the step (exposed), over all steps.
  std::vector<double> reduceUs, exposedUs;
  std::vector<int64_t> bucketsReduced;
  /// Per executor, over all steps: expert exchanges and the bytes it sent
  /// to the other ranks of its group in them.
  std::vector<int64_t> expertExchanges, expertBytes;

  // Trace of every step so far.
  std::chrono::steady_clock::time_point origin =
      std::chrono::steady_clock::now();
  std::vector<Event> events;
  double stepsUs = 0;
  double sinceOrigin(std::chrono::steady_clock::time_point t) const {
    return std::chrono::duration<double, std::micro>(t - origin).count();
  }
  void record(int64_t rank, std::string name, bool waiting,
              std::chrono::steady_clock::time_point start, bool nested = false,
              bool communication = false, bool transfer = false) {
    auto end = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex);
    if (!waiting && !communication && !transfer &&
        size_t(rank) < computeEnds.size())
      computeEnds[rank] = std::max(computeEnds[rank], steadyUs(end));
    events.push_back({rank, std::move(name), waiting, nested, communication,
                      overlappedForward && !transfer, transfer,
                      sinceOrigin(start),
                      sinceOrigin(end) - sinceOrigin(start)});
  }
  static std::string label(const std::string &fn, int64_t mb) {
    // forward_backward_F3 -> "F3 mb<mb>"
    return fn.substr(fn.rfind('_') + 1) + " mb" + std::to_string(mb);
  }

  // The step's mailbox: results by (function, micro-batch).
  std::mutex mutex;
  std::condition_variable posted;
  std::map<std::pair<std::string, int64_t>, std::vector<Output>> mailbox;
  /// Expert exchanges in flight: messages by (exchange, sending executor,
  /// receiving executor), an exchange named by its instruction and how
  /// many times the sender ran it before in the step.
  std::map<std::tuple<std::string, int64_t, int64_t>, Message> exchanged;
  /// Counts what the ranks post (results, exchanges, accumulations).
  uint64_t progress = 0;
  /// Stage functions running now, and rank threads that have ended.
  int64_t running = 0;
  size_t ranksDone = 0;
  /// Ranks whose actions of the step ended (for the reduction, which names
  /// a rank that stopped early once every rank ended); ranksDone counts,
  /// as processes, those done with the whole step, their reductions too.
  size_t ranksEnded = 0;
  std::string failure;

  // Ranks as processes (group set): this process runs executor `self`, the
  // others' ranks[] are null, and what they share arrives as messages,
  // which a receiving thread per peer files here (under `mutex`).
  ProcessGroup *group = nullptr;
  int64_t self = 0;
  bool local(int64_t e) const { return !group || e == self; }
  /// The executors whose stage functions take the results of (function,
  /// micro-batch); the master takes the losses.
  std::map<std::pair<std::string, int64_t>, std::vector<int64_t>> consumers;
  /// Steps begun so far, and whether one runs. A message of a step a
  /// faster rank has begun before this one waits in `early`.
  uint64_t stepIndex = 0;
  bool stepOpen = false;
  struct Early {
    uint32_t kind;
    int64_t from;
    std::vector<uint8_t> payload;
  };
  std::vector<Early> early;
  /// The other processes' final gradients this one reduces, by
  /// (parameter, executor).
  /// Each holds the piece the receiver reduces, from its first element.
  std::map<std::pair<std::string, size_t>, std::vector<T>> remoteGradients;
  /// Per parameter: the final gradients this process's reductions of it
  /// wait for (from every holder with threads).
  std::map<std::string, size_t> needed;
  /// Per executor: when its last computation of the step ended (steadyUs).
  std::vector<double> computeEnds;
  /// The messages outside the steps, in the order they came.
  std::deque<std::vector<uint8_t>> lossesInbox, checkpointInbox;
  std::map<int64_t, std::deque<std::vector<uint8_t>>> shardsInbox;
  std::map<int64_t, std::vector<uint8_t>> statsInbox, gatherInbox,
      gradientsInbox;
  /// A peer whose process ended: every later wait fails with it.
  std::string lost;
  /// The step's failure came from another rank (which told the others
  /// itself), or was sent to them already.
  bool failureFromPeer = false, failureSent = false;
  /// Per executor, the state it holds (-1: not known here).
  std::vector<StateBytes> stateBytes;
  StateBytes stateOf(size_t e) const {
    return {ranks[e]->getWeightBytes(), ranks[e]->getGradientBytes(),
            ranks[e]->getMomentBytes(), ranks[e]->getBufferBytes()};
  }

  std::string meta(const std::string &key) const {
    auto it = program->metadata.find(key);
    return it == program->metadata.end() ? "" : it->second;
  }

  /// The model stage and micro-batch of a schedule's (global stage, mb).
  std::pair<int64_t, int64_t> place(int64_t stage, int64_t mb) const {
    // DualPipe's second copy runs stages N..2N-1 (model stage s as N + s)
    // on the second half of the micro-batches, counted from 0.
    if (schedule.kind == sched::Kind::DualPipe && stage >= modelStages)
      return {stage - modelStages, schedule.microbatches / 2 + mb};
    return {stage, mb};
  }

  std::string function(bool forward, int64_t modelStage) const {
    if (wholeStep)
      return forward ? "forward_backward" : "";
    return llvm::formatv("forward_backward_{0}{1}", forward ? "F" : "B",
                         modelStage)
        .str();
  }

  void fail(const std::string &why) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (failure.empty())
        failure = why;
      posted.notify_all();
    }
    tellFailure();
  }

  // Messages. Never sent holding `mutex`: the peer's receiving thread may
  // wait for its own runner's lock while its rank sends to this one.

  // Sending: one thread per peer, this process's communication stream to
  // it, so that a rank goes on computing while its messages go out, each
  // connection's in the order they were posted.
  using Bytes = std::shared_ptr<const std::vector<uint8_t>>;
  struct Outgoing {
    uint32_t kind;
    Bytes bytes;
    std::string what; ///< For the trace ("F0 mb3"); empty: not traced.
  };
  struct Sender {
    std::deque<Outgoing> queue;
    bool busy = false;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Sender>> senders; ///< By peer; null self.
  std::condition_variable sendable;
  bool stopSending = false;
  /// The first send that failed: it persists, for flush().
  std::string sendFailure;

  void post(int64_t peer, uint32_t kind, Bytes bytes, std::string what = "") {
    std::lock_guard<std::mutex> lock(mutex);
    senders[peer]->queue.push_back({kind, std::move(bytes), std::move(what)});
    sendable.notify_all();
  }
  void sendTo(int64_t peer, uint32_t kind, std::vector<uint8_t> bytes,
              std::string what = "") {
    post(peer, kind, std::make_shared<std::vector<uint8_t>>(std::move(bytes)),
         std::move(what));
  }
  void sendToAll(uint32_t kind, std::vector<uint8_t> bytes) {
    Bytes shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    for (int64_t q = 0; q < group->getSize(); ++q)
      if (q != self)
        post(q, kind, shared);
  }
  void sending(int64_t peer) {
    Sender &s = *senders[peer];
    std::unique_lock<std::mutex> lock(mutex);
    while (true) {
      sendable.wait(lock, [&] { return stopSending || !s.queue.empty(); });
      if (s.queue.empty())
        return; // stopped, and all sent
      Outgoing o = std::move(s.queue.front());
      s.queue.pop_front();
      s.busy = true;
      lock.unlock();
      auto start = std::chrono::steady_clock::now();
      llvm::Error e = group->send(peer, o.kind, *o.bytes);
      std::string why = e ? llvm::toString(std::move(e)) : "";
      if (why.empty() && !o.what.empty())
        record(self,
               llvm::formatv("send {0} to rank {1} ({2} KiB)", o.what, peer,
                             o.bytes->size() >> 10),
               /*waiting=*/false, start, /*nested=*/false,
               /*communication=*/false, /*transfer=*/true);
      lock.lock();
      s.busy = false;
      if (!why.empty()) {
        // The connection is cut (ProcessGroup::send): the rest cannot go.
        s.queue.clear();
        if (sendFailure.empty())
          sendFailure = why;
        if (lost.empty())
          lost = why;
        if (failure.empty()) {
          failure = why;
          failureFromPeer = true;
        }
        posted.notify_all();
      }
      sendable.notify_all();
    }
  }
  /// Waits until every message posted so far went out (each send is
  /// bounded by the timeout); the first send that failed, if one did.
  llvm::Error flush() {
    std::unique_lock<std::mutex> lock(mutex);
    sendable.wait(lock, [&] {
      for (const auto &s : senders)
        if (s && (s->busy || !s->queue.empty()))
          return false;
      return true;
    });
    if (!sendFailure.empty())
      return llvm::createStringError(sendFailure);
    return llvm::Error::success();
  }
  /// Tells the other processes why this one's step failed (once; not a
  /// failure they told it, nor a lost peer, which they see themselves).
  void tellFailure() {
    if (!group)
      return;
    WireWriter w;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (failure.empty() || failureFromPeer || failureSent)
        return;
      failureSent = true;
      w.u64(stepIndex);
      w.str(failure);
    }
    sendToAll(kFail, w.take());
  }

  static void writeOutputs(WireWriter &w, const std::vector<Output> &out) {
    w.u64(out.size());
    for (const Output &o : out) {
      w.u64(uint64_t(o.dtype));
      w.array<int64_t>(o.shape);
      w.array<T>(o.values);
      w.array<int64_t>(o.ints);
    }
  }
  static std::vector<Output> readOutputs(WireReader &r) {
    std::vector<Output> out;
    for (uint64_t n = r.u64(), i = 0; i < n && !r.failed(); ++i) {
      Output o;
      o.dtype = BufferType(r.u64());
      o.shape = r.array<int64_t>();
      o.values = r.array<T>();
      o.ints = r.array<int64_t>();
      out.push_back(std::move(o));
    }
    return out;
  }

  /// A frame from process `peer`: those of a step are filed at once when
  /// this process runs that step, kept for later when it has not begun it,
  /// and dropped when it ended it.
  void receive(int64_t peer, uint32_t kind, std::vector<uint8_t> payload) {
    std::lock_guard<std::mutex> lock(mutex);
    switch (kind) {
    case kLosses:
      lossesInbox.push_back(std::move(payload));
      break;
    case kCheckpointed:
      checkpointInbox.push_back(std::move(payload));
      break;
    case kShard:
      shardsInbox[peer].push_back(std::move(payload));
      break;
    case kGather:
      gatherInbox[peer] = std::move(payload);
      break;
    case kGradients:
      gradientsInbox[peer] = std::move(payload);
      break;
    case kStats:
      statsInbox[peer] = std::move(payload);
      break;
    case kAlive:
      break;
    default: {
      if (payload.size() < sizeof(uint64_t)) {
        malformed(peer, kind);
        break;
      }
      uint64_t step = WireReader(payload).u64();
      if (step > stepIndex)
        early.push_back({kind, peer, std::move(payload)});
      else if (step == stepIndex && stepOpen)
        file(peer, kind, payload);
    }
    }
    ++progress;
    posted.notify_all();
  }

  /// Files a step's message from `peer` (holding `mutex`).
  void file(int64_t peer, uint32_t kind, llvm::ArrayRef<uint8_t> payload) {
    WireReader r(payload);
    r.u64(); // the step
    bool known = true;
    int64_t n = int64_t(ranks.size());
    switch (kind) {
    case kResult: {
      std::string fn = r.str();
      int64_t mb = r.i64();
      std::vector<Output> out = readOutputs(r);
      if (!r.failed())
        mailbox[{fn, mb}] = std::move(out);
      break;
    }
    case kExperts: {
      std::string key = r.str();
      int64_t from = r.i64();
      Message m;
      m.tag = r.str();
      m.bytes = r.array<uint8_t>();
      m.sizes = r.array<int64_t>();
      if (!r.failed())
        exchanged[{key, from, self}] = std::move(m);
      break;
    }
    case kGradient: {
      std::string param = r.str();
      int64_t e = r.i64();
      std::vector<T> values = r.array<T>();
      const Piece *piece = e >= 0 && e < n && holders.count(param)
                               ? pieceFor(size_t(e), param)
                               : nullptr;
      known = piece && piece->updater == size_t(self) &&
              values.size() == piece->end - piece->begin;
      if (!r.failed() && known) {
        remoteGradients[{param, size_t(e)}] = std::move(values);
        ++finals[param];
      }
      break;
    }
    case kDone: {
      int64_t e = r.i64();
      double end = r.f64();
      known = e >= 0 && e < n;
      if (!r.failed() && known) {
        ++ranksDone;
        computeEnds[e] = end;
      }
      break;
    }
    case kEnded: {
      int64_t e = r.i64();
      known = e >= 0 && e < n;
      if (!r.failed() && known)
        ++ranksEnded;
      break;
    }
    case kFail: {
      std::string why = r.str();
      if (!r.failed() && failure.empty()) {
        failure = why;
        failureFromPeer = true;
      }
      break;
    }
    default:
      known = false;
    }
    if (r.failed() || !r.atEnd() || !known)
      malformed(peer, kind);
  }
  /// Fails the step for a message that does not read (holding `mutex`).
  void malformed(int64_t peer, uint32_t kind) {
    if (failure.empty())
      failure = llvm::formatv("rank {0} sent a malformed message (kind {1})",
                              peer, kind)
                    .str();
  }

  /// A peer's process ended (or sent garbage): every rank fails the step.
  void lose(int64_t peer, const std::string &why) {
    std::lock_guard<std::mutex> lock(mutex);
    std::string text = llvm::formatv("rank {0}: {1}", peer, why).str();
    if (lost.empty())
      lost = text;
    if (failure.empty()) {
      failure = text;
      failureFromPeer = true;
    }
    posted.notify_all();
  }

  /// Waits (holding `lock`) for `ready`: an error naming `what` when a
  /// peer is lost, the step failed, or twice the timeout passed without a
  /// message from any rank (a rank that computes, anywhere outside the
  /// runner's waits, sends heartbeats: see `beat`).
  template <typename Ready>
  llvm::Error awaitMessage(std::unique_lock<std::mutex> &lock, Ready ready,
                           const std::string &what) {
    uint64_t seen = progress;
    auto deadline = std::chrono::steady_clock::now() + 2 * timeout;
    auto done = [&] {
      return ready() || !lost.empty() || (stepOpen && !failure.empty());
    };
    while (!done()) {
      if (posted.wait_until(lock, deadline) != std::cv_status::timeout)
        continue;
      if (progress == seen)
        break;
      seen = progress;
      deadline = std::chrono::steady_clock::now() + 2 * timeout;
    }
    if (ready())
      return llvm::Error::success();
    if (stepOpen && !failure.empty())
      return llvm::createStringError(failure);
    if (!lost.empty())
      return llvm::createStringError(lost);
    return llvm::createStringError(
        llvm::formatv("rank {0} waited {1} s for {2}: a rank died or hangs",
                      self, 2 * timeout.count(), what));
  }

  // Heartbeats: while this process computes (a stage function runs, or it
  // is outside the runner: its optimizer, checkpoints), it tells the
  // others every quarter of the timeout, so that their waits for it do not
  // give up. A rank stuck in one of the runner's waits sends none.
  std::thread beat;
  bool stopBeat = false;
  /// Calls into the runner in progress (step, awaitCheckpoint, ...).
  int64_t inCall = 0;
  void heartbeats() {
    auto period = std::max<std::chrono::milliseconds>(
        std::chrono::milliseconds(50),
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout) / 4);
    std::unique_lock<std::mutex> lock(mutex);
    auto next = std::chrono::steady_clock::now() + period;
    while (!stopBeat) {
      // On the clock, not on every message (which would echo beats).
      if (posted.wait_until(lock, next, [&] { return stopBeat; }))
        break;
      next += period;
      if (!lost.empty() || (inCall > 0 && running == 0))
        continue;
      lock.unlock();
      for (int64_t q = 0; q < group->getSize(); ++q)
        if (q != self)
          (void)group->send(q, kAlive, {});
      lock.lock();
    }
  }
  /// Marks a call into the runner (no heartbeats while it waits).
  struct InCall {
    Impl &m;
    explicit InCall(Impl &m) : m(m) {
      std::lock_guard<std::mutex> lock(m.mutex);
      ++m.inCall;
    }
    ~InCall() {
      std::lock_guard<std::mutex> lock(m.mutex);
      --m.inCall;
    }
  };
  /// Whether finish() went through: the runner then says goodbye to the
  /// other processes; otherwise it leaves them at once, as a failed rank.
  bool finished = false;

  /// The gradient of `param` that executor `e` accumulated: its own, or
  /// the one it sent (null when there is none).
  /// Of it, the elements of `piece` (which a reduction of it sums).
  std::optional<llvm::ArrayRef<T>>
  gradientOf(size_t e, const std::string &param, const Piece &piece) {
    size_t n = piece.end - piece.begin;
    if (local(int64_t(e))) {
      std::optional<llvm::MutableArrayRef<T>> g =
          ranks[e]->gradient(param, piece.begin, piece.end);
      if (!g)
        return std::nullopt;
      return llvm::ArrayRef<T>(*g);
    }
    std::lock_guard<std::mutex> lock(mutex);
    auto it = remoteGradients.find({param, e});
    if (it == remoteGradients.end() || it->second.size() != n)
      return std::nullopt;
    return llvm::ArrayRef<T>(it->second);
  }

  /// The results of (fn, mb), waiting for them; empty (and the step failed)
  /// when they do not come in time.
  const std::vector<Output> *await(int64_t rank, const std::string &fn,
                                   int64_t mb) {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex);
    auto key = std::make_pair(fn, mb);
    bool waited = !mailbox.count(key);
    bool ready = posted.wait_for(lock, timeout, [&] {
      return !failure.empty() || mailbox.count(key);
    });
    if (waited && ready && failure.empty()) {
      lock.unlock();
      record(rank, "wait " + label(fn, mb), /*waiting=*/true, start);
      lock.lock();
    }
    if (!failure.empty())
      return nullptr;
    if (!ready) {
      failure = llvm::formatv("rank {0} waited {1} s for the results of @{2} "
                              "on micro-batch {3}: a rank died or the "
                              "schedule deadlocks",
                              rank, timeout.count(), fn, mb)
                    .str();
      posted.notify_all();
      return nullptr;
    }
    return &mailbox.at(key);
  }

  /// Executor `rank`'s exchange `key` with the executors of its
  /// expert-parallel `group` (itself included): posts send[p] for group[p],
  /// then waits for what each of them posted for it.
  llvm::Expected<std::vector<Message>> allToAll(int64_t rank,
                                                llvm::ArrayRef<int64_t> group,
                                                const std::string &key,
                                                std::vector<Message> send) {
    auto start = std::chrono::steady_clock::now();
    std::string tag = send.empty() ? "" : send.front().tag;
    // What goes to other processes, sent once the lock is released.
    std::vector<std::pair<int64_t, std::vector<uint8_t>>> remote;
    std::unique_lock<std::mutex> lock(mutex);
    ++expertExchanges[rank];
    for (size_t p = 0; p < group.size(); ++p) {
      if (group[p] != rank)
        expertBytes[rank] += int64_t(send[p].bytes.size());
      if (local(group[p])) {
        exchanged[{key, rank, group[p]}] = std::move(send[p]);
        continue;
      }
      WireWriter w;
      w.u64(stepIndex);
      w.str(key);
      w.i64(rank);
      w.str(send[p].tag);
      w.array<uint8_t>(send[p].bytes);
      w.array<int64_t>(send[p].sizes);
      remote.push_back({group[p], w.take()});
    }
    ++progress;
    posted.notify_all();
    if (!remote.empty()) {
      lock.unlock();
      for (auto &[peer, bytes] : remote)
        sendTo(peer, kExperts, std::move(bytes), tag);
      lock.lock();
    }
    auto missing = [&] {
      std::vector<int64_t> absent;
      for (int64_t peer : group)
        if (!exchanged.count({key, peer, rank}))
          absent.push_back(peer);
      return absent;
    };
    bool waited = !missing().empty();
    bool ready = posted.wait_for(lock, timeout, [&] {
      return !failure.empty() || missing().empty();
    });
    if (!failure.empty())
      return llvm::createStringError("stopped: another rank failed");
    if (!ready) {
      std::vector<int64_t> absent = missing();
      failure = llvm::formatv(
                    "rank {0} waited {1} s for rank(s) {2} of its "
                    "expert-parallel group to exchange rows for {3}: a rank "
                    "died or the ranks run different schedules",
                    rank, timeout.count(),
                    llvm::join(llvm::map_range(absent,
                                               [](int64_t r) {
                                                 return std::to_string(r);
                                               }),
                               ", "),
                    tag)
                    .str();
      posted.notify_all();
      return llvm::createStringError(failure);
    }
    std::vector<Message> received;
    for (int64_t peer : group) {
      auto it = exchanged.find({key, peer, rank});
      received.push_back(std::move(it->second));
      exchanged.erase(it);
    }
    lock.unlock();
    if (waited)
      record(rank, "wait experts", /*waiting=*/true, start, /*nested=*/true);
    return received;
  }

  /// Runs stage function `fn` for micro-batch `mb` on `rank`.
  bool run(int64_t rank, const std::string &fn, int64_t mb,
           llvm::ArrayRef<Batch> batches) {
    std::vector<Argument> args;
    auto sources = stages.inputs.find(fn);
    if (sources == stages.inputs.end()) {
      fail("the program has no stage function @" + fn +
           " for its schedule's actions");
      return false;
    }
    for (const StageFunctions::Source &source : sources->second) {
      if (source.argument >= 0) {
        const Batch &b = batches[mb];
        if (source.argument > 1) {
          fail("@" + fn + " takes step argument " +
               std::to_string(source.argument) +
               "; a step has token ids and labels");
          return false;
        }
        args.push_back(Argument(source.argument == 0 ? b.inputs : b.labels));
        continue;
      }
      const std::vector<Output> *out = await(rank, source.function, mb);
      if (!out)
        return false;
      if (source.result >= out->size()) {
        fail(llvm::formatv("@{0} takes result {1} of @{2}, which has {3}", fn,
                           source.result, source.function, out->size())
                 .str());
        return false;
      }
      const Output &o = (*out)[source.result];
      args.push_back(o.ints.empty() ? Argument(o.values) : Argument(o.ints));
    }
    auto start = std::chrono::steady_clock::now();
    uint64_t activity = beginComputing(
        rank, llvm::formatv("@{0} on micro-batch {1}", fn, mb).str());
    llvm::Expected<std::vector<Output>> out = ranks[rank]->run(fn, args);
    endComputing(activity);
    record(rank, label(fn, mb), /*waiting=*/false, start);
    if (!out) {
      fail(llvm::formatv("rank {0}, micro-batch {1}: {2}", rank, mb,
                         llvm::toString(out.takeError()))
               .str());
      return false;
    }
    // The results go to the other processes whose functions take them.
    std::vector<int64_t> to;
    if (group) {
      auto it = consumers.find({fn, mb});
      if (it != consumers.end())
        for (int64_t q : it->second)
          if (q != self)
            to.push_back(q);
    }
    Bytes bytes;
    if (!to.empty()) {
      WireWriter w;
      w.u64(stepIndex);
      w.str(fn);
      w.i64(mb);
      writeOutputs(w, *out);
      bytes = std::make_shared<std::vector<uint8_t>>(w.take());
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      mailbox[{fn, mb}] = std::move(*out);
      ++progress;
      posted.notify_all();
    }
    for (int64_t q : to)
      post(q, kResult, bytes, label(fn, mb));
    return true;
  }

  /// Fault injection for tests: OCTET_PIPELINE_FAIL_RANK=R makes rank R
  /// stop with an error at its second action; R:silent makes it stop
  /// without a word, as a hung process would (the others then time out);
  /// R:exit ends its process there, as a crash would (ranks as processes).
  enum class Fault { Error, Silent, Exit };
  std::optional<std::pair<int64_t, Fault>> injectedFault() const {
    const char *env = std::getenv("OCTET_PIPELINE_FAIL_RANK");
    if (!env || !*env)
      return std::nullopt;
    auto [rank, how] = llvm::StringRef(env).split(':');
    int64_t r = 0;
    if (rank.getAsInteger(10, r))
      return std::nullopt;
    return std::make_pair(r, how == "silent" ? Fault::Silent
                             : how == "exit" ? Fault::Exit
                                             : Fault::Error);
  }

  /// For tests of the timeouts: OCTET_PIPELINE_SLOW_RANK=R:MS makes rank R
  /// compute MS milliseconds longer before its last action of a step,
  /// while the ranks done before it wait.
  std::optional<std::pair<int64_t, int64_t>> injectedDelay() const {
    const char *env = std::getenv("OCTET_PIPELINE_SLOW_RANK");
    if (!env || !*env)
      return std::nullopt;
    auto [rank, ms] = llvm::StringRef(env).split(':');
    int64_t r = 0, d = 0;
    if (rank.getAsInteger(10, r) || ms.getAsInteger(10, d))
      return std::nullopt;
    return std::make_pair(r, d);
  }
  void computeFor(int64_t rank, std::chrono::milliseconds d) {
    uint64_t id = beginComputing(rank, "an injected delay "
                                       "(OCTET_PIPELINE_SLOW_RANK)");
    std::this_thread::sleep_for(d);
    endComputing(id);
  }

  // Computations in progress (heartbeats go on while there are any), and
  // the watchdog over them (setComputeLimit).
  struct Activity {
    int64_t rank;
    std::string what;
    std::chrono::steady_clock::time_point since;
  };
  std::map<uint64_t, Activity> activities;
  uint64_t nextActivity = 0;
  uint64_t beginComputing(int64_t rank, std::string what) {
    std::lock_guard<std::mutex> lock(mutex);
    ++running;
    activities[nextActivity] = {rank, std::move(what),
                                std::chrono::steady_clock::now()};
    return nextActivity++;
  }
  void endComputing(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex);
    --running;
    activities.erase(id);
  }
  std::chrono::seconds computeLimit{0};
  std::function<void(std::string)> onComputeLimit;
  std::thread watchdog;
  bool stopWatchdog = false;
  /// Checks the computations every eighth of the limit: one older than it
  /// fails the step on every rank and goes to onComputeLimit.
  void watching() {
    auto period = std::max<std::chrono::milliseconds>(
        std::chrono::milliseconds(50),
        std::chrono::duration_cast<std::chrono::milliseconds>(computeLimit) /
            8);
    std::unique_lock<std::mutex> lock(mutex);
    while (!posted.wait_for(lock, period, [&] { return stopWatchdog; })) {
      auto now = std::chrono::steady_clock::now();
      const Activity *stuck = nullptr;
      for (const auto &[id, a] : activities)
        if (now - a.since > computeLimit && (!stuck || a.since < stuck->since))
          stuck = &a;
      if (!stuck)
        continue;
      std::string why =
          llvm::formatv("rank {0} computed {1} for more than {2} s (the "
                        "compute limit): it does not return",
                        stuck->rank, stuck->what, computeLimit.count())
              .str();
      lock.unlock();
      fail(why);
      if (group)
        (void)llvm::errorToBool(flush());
      if (onComputeLimit)
        onComputeLimit(why);
      return;
    }
  }

  void runRank(int64_t rank, llvm::ArrayRef<Batch> batches) {
    runActions(rank, batches);
    WireWriter w;
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++ranksDone;
      ++ranksEnded;
      posted.notify_all();
      w.u64(stepIndex);
      w.i64(rank);
    }
    if (!group)
      return;
    // A failure of these actions first, so that the others see it before
    // they see this rank ended (which makes their reductions look for a
    // rank that stopped early).
    tellFailure();
    sendToAll(kEnded, w.take());
  }

  void runActions(int64_t rank, llvm::ArrayRef<Batch> batches) {
    std::optional<std::pair<int64_t, Fault>> fault = injectedFault();
    int64_t done = 0;
    // This replica's micro-batches follow the previous replicas'.
    int64_t firstMb = (rank / pp) * schedule.microbatches;
    const std::vector<sched::Action> &actions = schedule.perRank[rank % pp];
    std::optional<std::pair<int64_t, int64_t>> slow = injectedDelay();
    for (const sched::Action &a : actions) {
      {
        // Another rank failed: stop here rather than finish the step.
        std::lock_guard<std::mutex> lock(mutex);
        if (!failure.empty())
          return;
      }
      if (slow && slow->first == rank && &a == &actions.back())
        computeFor(rank, std::chrono::milliseconds(slow->second));
      if (fault && fault->first == rank && done++ == 1) {
        if (fault->second == Fault::Exit)
          _exit(3);
        if (fault->second == Fault::Error)
          fail(llvm::formatv("rank {0} stopped (OCTET_PIPELINE_FAIL_RANK)",
                             rank)
                   .str());
        return;
      }
      auto call = [&](const Call &c) {
        auto [s, m] = place(c.stage, c.mb);
        std::string fn = function(c.forward, s);
        return fn.empty() || run(rank, fn, firstMb + m, batches);
      };
      llvm::SmallVector<Call, 2> calls = callsOf(a);
      if (a.type == sched::Action::ForwardBackward) {
        // DualPipe's overlapped F&B: the forward on a second thread beside
        // the backward, so that either computes while the other waits for
        // its transfers (the other rank's activations or gradients, the
        // expert exchanges). The two run different stage functions, whose
        // buffers are their own; only the backward accumulates gradients.
        bool forwardDone = false;
        std::thread beside([&] {
          overlappedForward = true;
          forwardDone = call(calls[0]);
        });
        bool backwardDone = call(calls[1]);
        beside.join();
        if (!forwardDone || !backwardDone)
          return;
        continue;
      }
      for (const Call &c : calls)
        if (!call(c))
          return;
    }
  }

  /// A stage function an action runs: forward or backward, of global stage
  /// `stage`, on micro-batch `mb`.
  struct Call {
    bool forward;
    int64_t stage, mb;
  };
  /// The calls of action `a`, in order. ZB-H1's weight gradient has none:
  /// it is done with the input gradient (one backward per stage).
  static llvm::SmallVector<Call, 2> callsOf(const sched::Action &a) {
    switch (a.type) {
    case sched::Action::Forward:
      return {{true, a.stage, a.mb}};
    case sched::Action::Backward:
    case sched::Action::InputGrad:
      return {{false, a.stage, a.mb}};
    case sched::Action::WeightGrad:
      return {};
    case sched::Action::ForwardBackward:
      return {{true, a.stage, a.mb}, {false, a.bwdStage, a.bwdMb}};
    }
    return {};
  }

  /// Executor `rank` accumulated into `param`'s gradient: the last time in
  /// the step makes it final there.
  void accumulatedInto(int64_t rank, llvm::StringRef param) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++progress;
      auto it = expected[rank].find(param.str());
      if (it == expected[rank].end() ||
          ++accumulated[rank][it->first] != it->second)
        return;
      ++finals[it->first];
      posted.notify_all();
    }
    // Final here: its piece to the process that reduces it, if another.
    const Piece *to = pieceFor(size_t(rank), param.str());
    if (!group || !to || to->updater == size_t(rank))
      return;
    WireWriter w;
    w.u64(stepIndex);
    w.str(param);
    w.i64(rank);
    w.array<T>(*ranks[rank]->gradient(param, to->begin, to->end));
    sendTo(int64_t(to->updater), kGradient, w.take(),
           "gradient of " + param.str());
  }

  /// The holders of `param` whose gradients go into `piece`, in order.
  std::vector<size_t> contributors(const std::string &param,
                                   const Piece &piece) const {
    std::vector<size_t> from;
    for (size_t e : holders.at(param))
      if (contributes(e, param, piece))
        from.push_back(e);
    return from;
  }

  /// The step's gradient of `param`, reduced over its holders piece by
  /// piece (the pieces this process updates): within a replica the one
  /// holder's, or the sum of the mirrored copies' in rank order; then the
  /// replicas' sum, in replica order. Written to the piece's updater.
  void reduce(const std::string &param) {
    for (const Piece &piece : piecesOf(param))
      if (local(int64_t(piece.updater)))
        reducePiece(param, piece);
  }
  void reducePiece(const std::string &param, const Piece &piece) {
    std::vector<size_t> from = contributors(param, piece);
    std::optional<llvm::MutableArrayRef<T>> held =
        ranks[piece.updater]->gradient(param, piece.begin, piece.end);
    if (!held)
      return;
    llvm::MutableArrayRef<T> target = *held;
    auto holderGradient = [&](size_t e) {
      std::optional<llvm::ArrayRef<T>> g = gradientOf(e, param, piece);
      if (!g)
        fail(llvm::formatv("the gradient of {0} from rank {1} is missing or "
                           "of another size",
                           param, e)
                 .str());
      return g;
    };
    if (from.size() == 1) {
      if (from[0] != piece.updater)
        if (auto g = holderGradient(from[0]))
          std::copy(g->begin(), g->end(), target.begin());
      return;
    }
    std::vector<T> sum;
    for (int64_t d = 0; d < replicas; ++d) {
      std::vector<T> replica;
      for (size_t e : from) {
        if (int64_t(e) / pp != d)
          continue;
        auto g = holderGradient(e);
        if (!g)
          return;
        if (replica.empty())
          replica.assign(g->begin(), g->end());
        else
          for (size_t k = 0; k < replica.size(); ++k)
            replica[k] += (*g)[k];
      }
      if (replica.empty())
        continue;
      if (sum.empty())
        sum = std::move(replica);
      else
        for (size_t k = 0; k < sum.size(); ++k)
          sum[k] += replica[k];
    }
    std::copy(sum.begin(), sum.end(), target.begin());
  }

  bool reducesFor(int64_t r) const {
    return llvm::any_of(buckets[r],
                        [](const Bucket &b) { return !b.here.empty(); });
  }

  /// Pipeline rank r's communication thread: reduces its buckets in order,
  /// each once every holder's gradients of it are final.
  void reduceBuckets(int64_t r) {
    std::chrono::steady_clock::time_point lastEnd{};
    for (size_t b = 0; b < buckets[r].size(); ++b) {
      const Bucket &bucket = buckets[r][b];
      const std::vector<std::string> &params = bucket.here;
      if (params.empty())
        continue;
      {
        std::unique_lock<std::mutex> lock(mutex);
        auto pending = [&]() -> const std::string * {
          for (const std::string &p : params)
            if (finals[p] < needed[p])
              return &p;
          return nullptr;
        };
        // Waiting is normal while the ranks progress; give up after twice
        // the timeout without progress, so that a rank waiting for a dead
        // peer says so first.
        uint64_t seen = progress;
        auto deadline = std::chrono::steady_clock::now() + 2 * timeout;
        while (failure.empty() && pending()) {
          if (ranksEnded == ranks.size()) {
            // Every rank ended, yet a gradient is not final: name it.
            const std::string &p = *pending();
            for (size_t e : holders[p])
              if (const Piece *piece = pieceFor(e, p);
                  !piece || !local(int64_t(piece->updater)))
                continue; // it goes to another process
              else if (!local(int64_t(e)) && !remoteGradients.count({p, e}))
                failure =
                    llvm::formatv("rank {0} ended the step without sending its "
                                  "final gradient of {1}: it stopped early",
                                  e, p)
                        .str();
              else if (local(int64_t(e)) && accumulated[e][p] != expected[e][p])
                failure = llvm::formatv(
                              "rank {0} ended the step with {1} of the {2} "
                              "accumulations of the gradient of {3} its "
                              "schedule makes: it stopped early",
                              e, accumulated[e][p], expected[e][p], p)
                              .str();
            posted.notify_all();
            return;
          }
          if (!posted.wait_until(lock, deadline, [&] {
                return !failure.empty() || !pending() || progress != seen ||
                       ranksEnded == ranks.size();
              })) {
            if (running > 0) { // a long stage function is progress too
              deadline = std::chrono::steady_clock::now() + 2 * timeout;
              continue;
            }
            failure = llvm::formatv("the gradient reduction of rank {0} "
                                    "waited {1} s for the gradient of {2}: a "
                                    "rank died or the schedule deadlocks",
                                    r, 2 * timeout.count(), *pending())
                          .str();
            posted.notify_all();
            return;
          }
          if (progress != seen) {
            seen = progress;
            deadline = std::chrono::steady_clock::now() + 2 * timeout;
          }
        }
        if (!failure.empty())
          return;
      }
      auto start = std::chrono::steady_clock::now();
      for (const std::string &p : params)
        reduce(p);
      lastEnd = std::chrono::steady_clock::now();
      record(r,
             llvm::formatv("reduce bucket {0} ({1} parameters, {2} KiB)", b,
                           params.size(), bucket.bytes >> 10),
             /*waiting=*/false, start, /*nested=*/false,
             /*communication=*/true);
      std::lock_guard<std::mutex> lock(mutex);
      reduceUs[r] += std::chrono::duration<double, std::micro>(lastEnd - start)
                         .count();
      ++bucketsReduced[r];
    }
  }
};

namespace {
/// An executor's expert-parallel group, exchanging through the runner.
template <typename T> class RankExchange final : public ExpertExchange<T> {
public:
  using Impl = typename PipelineRunner<T>::Impl;
  using Message = typename ExpertExchange<T>::Message;
  RankExchange(Impl &runner, int64_t rank, std::vector<int64_t> group,
               int64_t groupRank)
      : runner(runner), rank(rank), group(std::move(group)),
        groupRank(groupRank) {}
  int64_t getGroupSize() const override { return int64_t(group.size()); }
  int64_t getGroupRank() const override { return groupRank; }
  /// The ranks of a group run an instruction's exchanges in the same
  /// order, but an overlapped F&B runs two stage functions at once: an
  /// exchange pairs by its instruction and how often this rank ran it
  /// before, not by the order of all exchanges.
  llvm::Expected<std::vector<Message>>
  allToAll(std::vector<Message> send) override {
    std::string tag = send.empty() ? "" : send.front().tag;
    uint64_t n;
    {
      std::lock_guard<std::mutex> lock(mutex);
      n = count[tag]++;
    }
    return runner.allToAll(rank, group, tag + " #" + std::to_string(n),
                           std::move(send));
  }
  /// A step starts the exchange counts again on every rank.
  void restart() { count.clear(); }

private:
  Impl &runner;
  int64_t rank;
  std::vector<int64_t> group;
  int64_t groupRank;
  std::mutex mutex;
  std::map<std::string, uint64_t> count;
};
} // namespace

template <typename T>
PipelineRunner<T>::PipelineRunner(std::unique_ptr<Impl> impl)
    : impl(std::move(impl)) {}
template <typename T> PipelineRunner<T>::~PipelineRunner() {
  if (impl->watchdog.joinable()) {
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      impl->stopWatchdog = true;
      impl->posted.notify_all();
    }
    impl->watchdog.join();
  }
  // The receiving threads call into the runner: they end first.
  if (impl->group) {
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      impl->stopBeat = true;
      impl->posted.notify_all();
    }
    if (impl->beat.joinable())
      impl->beat.join();
    // What is still to go goes (after finish()), or is dropped.
    if (impl->finished)
      (void)llvm::errorToBool(impl->flush());
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      impl->stopSending = true;
      if (!impl->finished)
        for (auto &s : impl->senders)
          if (s)
            s->queue.clear();
      impl->sendable.notify_all();
    }
    if (impl->finished) {
      for (auto &s : impl->senders)
        if (s && s->thread.joinable())
          s->thread.join();
      impl->group->close();
    } else {
      // A send blocked on a stuck peer ends with the connections, which
      // are closed once no sender uses them.
      impl->group->shutdown();
      for (auto &s : impl->senders)
        if (s && s->thread.joinable())
          s->thread.join();
      impl->group->abort();
    }
  }
}

template <typename T>
llvm::Expected<std::unique_ptr<PipelineRunner<T>>>
PipelineRunner<T>::create(const Program &program, MakeRank makeRank,
                          std::chrono::seconds timeout, size_t bucketBytes,
                          ProcessGroup *group) {
  auto impl = std::make_unique<Impl>();
  impl->program = &program;
  impl->timeout = timeout;
  auto number = [&](const std::string &key) -> int64_t {
    int64_t v = 0;
    return llvm::StringRef(impl->meta(key)).getAsInteger(10, v) ? -1 : v;
  };
  std::optional<sched::Kind> kind =
      sched::parseKind(impl->meta("pipeline.schedule"));
  int64_t ranks = number("pipeline.ranks"), mbs = number("train.micro_batches");
  llvm::Expected<StageFunctions> stages = StageFunctions::read(program);
  if (!stages)
    return stages.takeError();
  impl->stages = std::move(*stages);
  const std::vector<std::string> &functions = impl->stages.order;
  int64_t dp = std::max<int64_t>(1, number("pipeline.dp"));
  impl->wholeStep = functions.empty() && dp > 1 && ranks == 1;
  if (!kind || ranks <= 0 || mbs <= 0 || (functions.empty() && !impl->wholeStep))
    return llvm::createStringError(
        "the program is not pipeline- or data-parallel: it needs the "
        "metadata pipeline.schedule, pipeline.ranks, pipeline.functions (or "
        "pipeline.dp > 1) and train.micro_batches (compile it with octetc "
        "and parallel.pp or parallel.dp > 1)");
  impl->pp = ranks;
  impl->replicas = dp;
  impl->modelStages =
      impl->wholeStep ? 1 : int64_t(functions.size()) / 2;
  int64_t chunks = std::max<int64_t>(1, impl->modelStages / ranks);
  std::string error;
  std::optional<sched::Schedule> s =
      sched::build(*kind, ranks, mbs, error, chunks);
  if (!s)
    return llvm::createStringError("the program's pipeline schedule: " +
                                   error);
  impl->schedule = std::move(*s);
  int64_t expected = impl->schedule.stages;
  if (*kind == sched::Kind::DualPipe)
    expected /= 2; // two copies of the model's stages
  if (expected != impl->modelStages)
    return llvm::createStringError(llvm::formatv(
        "the program has {0} pipeline stages but its {1} schedule on {2} "
        "ranks runs {3}",
        impl->modelStages, sched::kindName(*kind), ranks, expected));

  if (impl->wholeStep) {
    // The whole step is one forward action per micro-batch.
    const Function *fb = program.lookupFunction("forward_backward");
    if (!fb)
      return llvm::createStringError("the program has no @forward_backward");
    StageFunctions::Source ids, labels;
    ids.argument = 0;
    labels.argument = 1;
    impl->stages.inputs["forward_backward"] = {ids, labels};
    for (size_t j = 0; j < fb->results.size(); ++j) {
      StageFunctions::Source loss;
      loss.function = "forward_backward";
      loss.result = unsigned(j);
      impl->stages.returns.push_back(loss);
    }
  }
  if (impl->stages.returns.empty())
    return llvm::createStringError("the program's pipeline returns no loss");

  // How often each rank accumulates each parameter's gradient in a step.
  std::map<std::string, std::vector<std::string>> accumulationsOfFunction;
  for (const Function &f : program.functions)
    for (const Instruction &i : f.body)
      if (i.op == "octet.grad_accumulate")
        if (std::optional<llvm::StringRef> p = i.attrs.getString("param"))
          accumulationsOfFunction[f.name].push_back(p->str());
  // The parameters each function reads (a stage may read one whose
  // gradient it does not make: DeepSeek's MTP module, the embedding).
  std::map<std::string, std::set<std::string>> readsOfFunction;
  for (const Function &f : program.functions)
    for (const Instruction &i : f.body)
      if (i.op == "octet.param")
        if (std::optional<llvm::StringRef> p = i.attrs.getString("name"))
          readsOfFunction[f.name].insert(p->str());
  impl->expected.resize(ranks * dp);
  impl->accumulated.resize(ranks * dp);
  // Per rank: its trainable parameters in the order their gradients
  // become final.
  std::vector<std::vector<std::string>> finishOrder(ranks * dp);
  // Per rank: the functions it runs (its stages' and the optimizer step),
  // the only ones its executor compiles and allocates buffers for.
  std::vector<std::set<std::string>> runsOf(ranks * dp);
  for (int64_t r = 0; r < ranks * dp; ++r) {
    std::vector<std::string> run;
    for (const sched::Action &a : impl->schedule.perRank[r % ranks])
      for (const typename Impl::Call &c : Impl::callsOf(a))
        run.push_back(
            impl->function(c.forward, impl->place(c.stage, 0).first));
    runsOf[r].insert(run.begin(), run.end());
    runsOf[r].insert("optimizer_step");
    std::map<std::string, int64_t> &count = impl->expected[r];
    for (const std::string &fn : run)
      for (const std::string &p : accumulationsOfFunction[fn])
        ++count[p];
    std::map<std::string, int64_t> seen;
    for (const std::string &fn : run)
      for (const std::string &p : accumulationsOfFunction[fn])
        if (++seen[p] == count[p])
          finishOrder[r].push_back(p);
    for (const auto &[p, n] : count)
      impl->holders[p].push_back(size_t(r));
    for (const std::string &fn : run)
      for (const std::string &p : readsOfFunction[fn])
        impl->readers[p].insert(size_t(r));
  }

  if (group && group->getSize() != ranks * dp)
    return llvm::createStringError(llvm::formatv(
        "the program runs {0} rank(s) ({1} pipeline rank(s) x {2} "
        "replica(s)) but {3} processes were started",
        ranks * dp, ranks, dp, group->getSize()));
  // In a group, this process's rank is the only executor here.
  impl->group = group;
  impl->self = group ? group->getRank() : 0;
  // Created below, once it is known what each holds.
  impl->ranks.assign(size_t(ranks * dp), nullptr);
  // Expert-parallel groups: pipeline rank r of ep consecutive replicas.
  int64_t ep = std::max<int64_t>(1, number("pipeline.ep"));
  if (ep > 1) {
    if (dp % ep != 0)
      return llvm::createStringError(llvm::formatv(
          "the program's expert parallelism (pipeline.ep = {0}) does not "
          "divide its {1} data-parallel replicas",
          ep, dp));
    impl->ep = ep;
    for (int64_t e = 0; e < ranks * dp; ++e) {
      int64_t d = e / ranks, r = e % ranks;
      std::vector<int64_t> group;
      for (int64_t q = 0; q < ep; ++q)
        group.push_back(((d / ep) * ep + q) * ranks + r);
      impl->exchanges.push_back(std::make_unique<RankExchange<T>>(
          *impl, e, std::move(group), d % ep));
    }
    // The experts' weights: the parameters split by local_experts.
    std::set<std::string> seen;
    for (const Function &f : program.functions) {
      std::map<int64_t, std::string> paramOf;
      for (const Instruction &i : f.body) {
        if (i.op == "octet.param" && !i.results.empty())
          if (std::optional<llvm::StringRef> n = i.attrs.getString("name"))
            paramOf[i.results[0]] = n->str();
        if (i.op == "octet_pipe.local_experts" && !i.operands.empty()) {
          auto it = paramOf.find(i.operands[0]);
          if (it == paramOf.end() || !seen.insert(it->second).second)
            continue;
          const Parameter *p = program.lookupParameter(it->second);
          if (p && !p->shape.empty())
            impl->expertWeights.push_back({it->second, p->shape[0]});
        }
      }
    }
  }
  // Buckets: each parameter goes to the first pipeline rank holding it, in
  // the order replica 0's rank finishes them, bucketBytes at most (or one
  // parameter).
  impl->bucketBytes = std::max<size_t>(1, bucketBytes);
  impl->buckets.assign(ranks, {});
  impl->reduceUs.assign(ranks, 0);
  impl->expertExchanges.assign(ranks * dp, 0);
  impl->expertBytes.assign(ranks * dp, 0);
  impl->exposedUs.assign(ranks, 0);
  impl->bucketsReduced.assign(ranks, 0);
  for (int64_t r = 0; r < ranks; ++r) {
    auto &list = impl->buckets[r];
    for (const std::string &name : finishOrder[r]) {
        if (impl->holders[name].front() != size_t(r))
          continue; // a mirrored copy's: reduced by the lower rank
        size_t bytes = sizeof(T) * impl->numel(name);
        if (list.empty() || list.back().bytes + bytes > impl->bucketBytes)
          if (list.empty() || !list.back().params.empty())
            list.emplace_back();
        list.back().params.push_back(name);
        list.back().bytes += bytes;
    }
  }
  // Who updates each parameter: the pipeline rank holding it (the lower
  // of DualPipe's mirrored copies), of the first replica; with ZeRO-1 that
  // of the replica whose share it balances (by size, largest first, after
  // the experts). Under expert parallelism each group rank's experts are
  // updated by that group rank's first replica, which owns them.
  impl->zero = number("pipeline.zero") == 1 && dp > 1;
  {
    std::vector<size_t> load(dp, 0);
    std::vector<std::pair<size_t, std::string>> bySize;
    for (const auto &[name, from] : impl->holders) {
      size_t n = impl->numel(name), r = from.front();
      auto [begin, end] = impl->readRange(0, name, n);
      if (end - begin == n) {
        impl->pieces[name] = {{0, n, r}};
        bySize.push_back({n, name});
        continue;
      }
      for (int64_t g = 0; g < impl->ep; ++g) {
        size_t size = end - begin;
        impl->pieces[name].push_back(
            {size_t(g) * size, size_t(g + 1) * size, size_t(g * ranks) + r});
        load[size_t(g)] += size;
      }
    }
    std::stable_sort(
        bySize.begin(), bySize.end(),
        [](const auto &a, const auto &b) { return a.first > b.first; });
    for (const auto &[n, name] : bySize) {
      if (!impl->zero)
        break;
      int64_t d = std::min_element(load.begin(), load.end()) - load.begin();
      load[d] += n;
      impl->pieces[name][0].updater =
          size_t(d * ranks) + impl->holders[name].front();
    }
    for (const auto &[name, list] : impl->pieces) {
      size_t count = 0;
      for (const typename Impl::Piece &piece : list)
        if (!group || piece.updater == size_t(group->getRank()))
          count += impl->contributors(name, piece).size();
      impl->needed[name] = count;
    }
  }
  // This process's executors, each created with only its share: the
  // parameters it reads, accumulates or updates, the moments of the
  // elements it updates, and the buffers of the functions it runs. The caller
  // initialises it (every rank draws a parameter's initial weights alike) or
  // loads it from a checkpoint, so that no rank, the master included, ever
  // holds a whole copy.
  for (int64_t e = 0; e < ranks * dp; ++e) {
    if (group && e != impl->self)
      continue;
    using Range = typename CpuExecutor<T>::Range;
    typename CpuExecutor<T>::Holding holding;
    holding.keeps = [&](llvm::StringRef name) {
      return impl->keeps(size_t(e), name.str());
    };
    auto frozen = [&](llvm::StringRef name) {
      const Parameter *p = program.lookupParameter(name);
      return p && p->frozen;
    };
    holding.updates = [&](llvm::StringRef name) -> std::optional<Range> {
      if (frozen(name))
        return std::nullopt;
      if (impl->piecesOf(name.str()).empty()) // no gradient: the master's
        return e == 0 ? std::optional<Range>(Range{0, -1}) : std::nullopt;
      for (const typename Impl::Piece &piece : impl->piecesOf(name.str()))
        if (piece.updater == size_t(e))
          return Range{int64_t(piece.begin), int64_t(piece.end)};
      return std::nullopt;
    };
    holding.runs = [&](llvm::StringRef fn) {
      return runsOf[e].count(fn.str()) > 0;
    };
    // Of an expert weight, its own experts' weights and gradient only (a
    // frozen one whole, for the master's checkpoint).
    holding.part = [&](llvm::StringRef name) {
      if (frozen(name))
        return Range{};
      auto [begin, end] =
          impl->readRange(size_t(e), name.str(), impl->numel(name.str()));
      return Range{int64_t(begin), int64_t(end)};
    };
    llvm::Expected<CpuExecutor<T>> made = makeRank(e, holding);
    if (!made)
      return llvm::createStringError(
          llvm::formatv("rank {0}: {1}", e, llvm::toString(made.takeError()))
              .str());
    impl->owned.push_back(std::make_unique<CpuExecutor<T>>(std::move(*made)));
    CpuExecutor<T> &x = *impl->owned.back();
    impl->ranks[e] = &x;
    if (impl->ep > 1)
      x.setExpertExchange(impl->exchanges[e].get());
    x.setGradientCallback(
        [m = impl.get(), e](llvm::StringRef p) { m->accumulatedInto(e, p); });
    impl->maskForeignWeights(size_t(e));
  }
  for (auto &list : impl->buckets)
    for (typename Impl::Bucket &b : list)
      for (const std::string &p : b.params)
        if (!group || impl->updates(size_t(impl->self), p))
          b.here.push_back(p);
  impl->computeEnds.assign(size_t(ranks * dp), 0);
  impl->stateBytes.assign(size_t(ranks * dp), StateBytes());
  if (group) {
    // Who takes each stage function's results: the executors whose
    // functions name them as inputs, and the master the losses.
    for (int64_t e = 0; e < ranks * dp; ++e) {
      int64_t firstMb = (e / ranks) * mbs;
      for (const sched::Action &a : impl->schedule.perRank[e % ranks])
        for (const typename Impl::Call &c : Impl::callsOf(a)) {
          auto [st, m] = impl->place(c.stage, c.mb);
          auto it = impl->stages.inputs.find(impl->function(c.forward, st));
          if (it == impl->stages.inputs.end())
            continue;
          for (const StageFunctions::Source &source : it->second)
            if (source.argument < 0)
              impl->consumers[{source.function, firstMb + m}].push_back(e);
        }
    }
    for (int64_t mb = 0; mb < mbs * dp; ++mb)
      for (const StageFunctions::Source &source : impl->stages.returns)
        impl->consumers[{source.function, mb}].push_back(0);
    for (auto &[key, to] : impl->consumers) {
      std::sort(to.begin(), to.end());
      to.erase(std::unique(to.begin(), to.end()), to.end());
    }
    Impl *m = impl.get();
    group->listen(
        [m](int64_t peer, uint32_t kind, std::vector<uint8_t> payload) {
          m->receive(peer, kind, std::move(payload));
        },
        [m](int64_t peer, std::string why) { m->lose(peer, why); },
        // A large frame on its way counts as progress for the bounded
        // waits, however long it takes to cross.
        [m](int64_t) {
          std::lock_guard<std::mutex> lock(m->mutex);
          ++m->progress;
          m->posted.notify_all();
        });
    impl->beat = std::thread([m] { m->heartbeats(); });
    impl->senders.resize(size_t(group->getSize()));
    for (int64_t q = 0; q < group->getSize(); ++q)
      if (q != impl->self) {
        impl->senders[q] = std::make_unique<typename Impl::Sender>();
        impl->senders[q]->thread = std::thread([m, q] { m->sending(q); });
      }
  }
  return std::unique_ptr<PipelineRunner>(new PipelineRunner(std::move(impl)));
}

template <typename T>
void PipelineRunner<T>::setComputeLimit(
    std::chrono::seconds limit, std::function<void(std::string)> onExpired) {
  Impl &m = *impl;
  if (m.watchdog.joinable() || limit.count() <= 0)
    return;
  m.computeLimit = limit;
  m.onComputeLimit = std::move(onExpired);
  m.watchdog = std::thread([&m] { m.watching(); });
}

template <typename T> int64_t PipelineRunner<T>::getNumRanks() const {
  return int64_t(impl->ranks.size());
}

template <typename T>
int64_t PipelineRunner<T>::getExpertParallelism() const {
  return impl->ep;
}

template <typename T> int64_t PipelineRunner<T>::getRank() const {
  return impl->self;
}

template <typename T>
CpuExecutor<T> &PipelineRunner<T>::getExecutor(int64_t rank) {
  assert(rank >= 0 && rank < getNumRanks() && impl->ranks[size_t(rank)] &&
         "no such rank in this process");
  return *impl->ranks[size_t(rank)];
}

template <typename T>
auto PipelineRunner<T>::getStateBytes() const -> std::vector<StateBytes> {
  std::vector<StateBytes> bytes = impl->stateBytes;
  for (size_t e = 0; e < impl->ranks.size(); ++e)
    if (impl->ranks[e])
      bytes[e] = impl->stateOf(e);
  return bytes;
}

template <typename T>
const std::vector<typename PipelineRunner<T>::Event> &
PipelineRunner<T>::getEvents() const {
  return impl->events;
}

template <typename T>
typename PipelineRunner<T>::Summary PipelineRunner<T>::getSummary() const {
  Summary s;
  s.busyUs.assign(impl->ranks.size(), 0);
  s.waitingUs.assign(impl->ranks.size(), 0);
  s.reduceUs = impl->reduceUs;
  s.exposedReduceUs = impl->exposedUs;
  s.buckets = impl->bucketsReduced;
  s.expertExchanges = impl->expertExchanges;
  s.expertBytes = impl->expertBytes;
  // A rank is busy while one of its threads computes (a stage function
  // outside the waits nested in it), and waiting while none computes and
  // one waits: an overlapped F&B hides one half's waits behind the other.
  std::vector<std::vector<std::tuple<double, int, int>>> edges(
      impl->ranks.size());
  for (const Event &e : impl->events) {
    if (e.communication || e.transfer)
      continue;
    int computing = e.waiting ? (e.nested ? -1 : 0) : 1;
    int waiting = e.waiting ? 1 : 0;
    edges[e.rank].push_back({e.startUs, computing, waiting});
    edges[e.rank].push_back({e.startUs + e.durationUs, -computing, -waiting});
  }
  for (size_t r = 0; r < edges.size(); ++r) {
    std::sort(edges[r].begin(), edges[r].end());
    int computing = 0, waiting = 0;
    double last = 0;
    for (auto [t, dc, dw] : edges[r]) {
      if (computing > 0)
        s.busyUs[r] += t - last;
      else if (waiting > 0)
        s.waitingUs[r] += t - last;
      computing += dc;
      waiting += dw;
      last = t;
    }
  }
  s.stepsUs = impl->stepsUs;
  return s;
}

template <typename T>
std::vector<double> PipelineRunner<T>::getSimulatedBubble() const {
  const Impl &m = *impl;
  // Mean time of each model stage's forward and backward.
  std::vector<double> fwd(m.modelStages, 0), bwd(m.modelStages, 0);
  std::vector<int64_t> nf(m.modelStages, 0), nb(m.modelStages, 0);
  for (const Event &e : m.events) {
    if (e.waiting || e.communication || e.transfer || e.name.size() < 2)
      continue;
    int64_t stage = std::atoll(e.name.c_str() + 1);
    if (stage < 0 || stage >= m.modelStages)
      continue;
    bool forward = e.name[0] == 'F';
    (forward ? fwd : bwd)[stage] += e.durationUs;
    ++(forward ? nf : nb)[stage];
  }
  double meanF = 0, meanB = 0;
  int64_t stages = 0;
  for (int64_t st = 0; st < m.modelStages; ++st) {
    if (!nf[st] || !nb[st])
      return {};
    fwd[st] /= double(nf[st]);
    bwd[st] /= double(nb[st]);
    meanF += fwd[st];
    meanB += bwd[st];
    ++stages;
  }
  meanF /= double(stages);
  meanB /= double(stages);
  sched::Costs costs;
  costs.forward = meanF;
  costs.backward = meanB;
  // Weight gradients run with the input gradients (one backward function).
  costs.inputGrad = meanB;
  costs.weightGrad = 0;
  for (int64_t g = 0; g < m.schedule.stages; ++g) {
    int64_t st = m.place(g, 0).first;
    costs.stageScale.push_back((fwd[st] + bwd[st]) / (meanF + meanB));
  }
  sched::Simulation sim = sched::simulate(m.schedule, costs);
  std::vector<double> bubble;
  for (double b : sim.bubble)
    bubble.push_back(sim.makespan > 0 ? b / sim.makespan : 0);
  return bubble;
}

template <typename T> llvm::Error PipelineRunner<T>::awaitCheckpoint() {
  Impl &m = *impl;
  typename Impl::InCall call(m);
  // Only after a gatherState(): the other processes wait for the master,
  // which has written its checkpoint meanwhile.
  if (!m.gathered)
    return llvm::Error::success();
  m.gathered = false;
  if (m.group && m.self != 0) {
    std::vector<uint8_t> payload;
    {
      std::unique_lock<std::mutex> lock(m.mutex);
      if (llvm::Error e = m.awaitMessage(
              lock, [&] { return !m.checkpointInbox.empty(); },
              "the master to write its checkpoint"))
        return e;
      payload = std::move(m.checkpointInbox.front());
      m.checkpointInbox.pop_front();
    }
    if (!payload.empty())
      return llvm::createStringError(
          "the master sent a malformed message at the end of its checkpoint");
  } else if (m.group) {
    for (int64_t q = 1; q < m.group->getSize(); ++q)
      m.sendTo(q, kCheckpointed, {});
  }
  // The weights gatherState() brought to the master that it neither reads
  // nor updates are stale after the next update: NaN again.
  for (size_t e = 0; e < m.ranks.size(); ++e)
    m.maskForeignWeights(e);
  return llvm::Error::success();
}

template <typename T>
llvm::Expected<std::vector<typename PipelineRunner<T>::Loss>>
PipelineRunner<T>::step(llvm::ArrayRef<Batch> batches) {
  Impl &m = *impl;
  if (int64_t(batches.size()) != m.schedule.microbatches * m.replicas)
    return llvm::createStringError(
        llvm::formatv("the pipeline runs {0} micro-batches a step, got {1}",
                      m.schedule.microbatches * m.replicas, batches.size()));
  typename Impl::InCall call(m);
  for (auto &x : m.exchanges)
    x->restart();
  for (size_t r = 0; r < m.ranks.size(); ++r)
    if (m.ranks[r])
      m.ranks[r]->zeroGradients();
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    ++m.stepIndex;
    m.stepOpen = true;
    m.mailbox.clear();
    m.exchanged.clear();
    m.remoteGradients.clear();
    m.failure = m.lost;
    m.failureFromPeer = !m.lost.empty();
    m.failureSent = false;
    m.finals.clear();
    m.ranksDone = 0;
    m.ranksEnded = 0;
    m.running = 0;
    for (auto &a : m.accumulated)
      a.clear();
    m.computeEnds.assign(m.ranks.size(), 0);
    // What faster ranks sent for this step before it began here.
    std::vector<typename Impl::Early> later;
    for (typename Impl::Early &e : m.early) {
      uint64_t step = WireReader(e.payload).u64();
      if (step == m.stepIndex)
        m.file(e.from, e.kind, e.payload);
      else if (step > m.stepIndex)
        later.push_back(std::move(e));
    }
    m.early = std::move(later);
  }
  auto start = std::chrono::steady_clock::now();
  size_t firstEvent;
  {
    std::lock_guard<std::mutex> lock(m.mutex); // the senders record too
    firstEvent = m.events.size();
  }
  std::vector<std::thread> threads;
  for (size_t r = 0; r < m.ranks.size(); ++r)
    if (m.ranks[r])
      threads.emplace_back([&, r] { m.runRank(int64_t(r), batches); });
  // The gradient reduction runs beside the computation.
  for (int64_t r = 0; r < m.pp; ++r)
    if (m.reducesFor(r))
      threads.emplace_back([&, r] { m.reduceBuckets(r); });
  for (std::thread &t : threads)
    t.join();
  if (m.group) {
    // This process is done with the step, its reductions too: after its
    // failure, if any, so that the others see that first.
    m.tellFailure();
    WireWriter w;
    {
      std::lock_guard<std::mutex> lock(m.mutex);
      w.u64(m.stepIndex);
      w.i64(m.self);
      w.f64(m.computeEnds[m.self]);
    }
    m.sendToAll(kDone, w.take());
    // Every rank ends the step here: their last computations are known
    // (for the exposed reduction) and no message of it is still coming.
    // Like the reduction, this gives up after twice the timeout without a
    // message, so that a rank waiting for a hung one's tensors says so
    // first.
    std::unique_lock<std::mutex> lock(m.mutex);
    llvm::Error e = m.awaitMessage(
        lock, [&] { return m.ranksDone == m.ranks.size(); },
        "the other ranks to end the step");
    std::string why = e ? llvm::toString(std::move(e)) : "";
    if (m.failure.empty())
      m.failure = why;
  }
  m.tellFailure();
  m.stepsUs += std::chrono::duration<double, std::micro>(
                   std::chrono::steady_clock::now() - start)
                   .count();
  {
    // Exposed reduction: after the pipeline rank's last computation.
    std::lock_guard<std::mutex> lock(m.mutex);
    std::vector<double> computeEnd(m.pp, 0), reduceEnd(m.pp, 0);
    for (size_t e = 0; e < m.computeEnds.size(); ++e)
      if (m.computeEnds[e] > 0)
        computeEnd[e % m.pp] = std::max(computeEnd[e % m.pp],
                                        m.computeEnds[e] - steadyUs(m.origin));
    for (size_t i = firstEvent; i < m.events.size(); ++i)
      if (const Event &e = m.events[i]; e.communication)
        reduceEnd[e.rank] =
            std::max(reduceEnd[e.rank], e.startUs + e.durationUs);
    for (int64_t r = 0; r < m.pp; ++r)
      if (reduceEnd[r] > 0 && m.reducesFor(r))
        m.exposedUs[r] += std::max(0.0, reduceEnd[r] - computeEnd[r]);
  }
  auto close = [&] {
    std::lock_guard<std::mutex> lock(m.mutex);
    m.stepOpen = false;
  };
  std::string failure;
  {
    // A receiving thread may still write it (a peer lost just now).
    std::lock_guard<std::mutex> lock(m.mutex);
    failure = m.failure;
    if (!failure.empty())
      m.stepOpen = false;
  }
  if (!failure.empty()) {
    // Its failure reaches the others before this process may exit.
    if (m.group)
      (void)llvm::errorToBool(m.flush());
    return llvm::createStringError("pipeline step failed: " + failure);
  }

  std::vector<Loss> losses(batches.size());
  if (m.group && m.self != 0) {
    // The master's, for every rank to see the same.
    std::vector<uint8_t> payload;
    {
      std::unique_lock<std::mutex> lock(m.mutex);
      llvm::Error e = m.awaitMessage(
          lock, [&] { return !m.lossesInbox.empty(); }, "the step's losses");
      m.stepOpen = false;
      if (e)
        return llvm::createStringError("pipeline step failed: " +
                                       llvm::toString(std::move(e)));
      payload = std::move(m.lossesInbox.front());
      m.lossesInbox.pop_front();
    }
    WireReader r(payload);
    uint64_t step = r.u64();
    std::vector<T> values = r.array<T>();
    if (r.failed() || !r.atEnd() || step != m.stepIndex ||
        values.size() != 2 * losses.size())
      return llvm::createStringError(
          "the master sent a malformed message of the step's losses");
    for (size_t mb = 0; mb < losses.size(); ++mb)
      losses[mb] = {values[2 * mb], values[2 * mb + 1]};
    return losses;
  }

  // Each micro-batch's losses, from the functions that returned them.
  const std::vector<StageFunctions::Source> &returns = m.stages.returns;
  for (size_t mb = 0; mb < batches.size(); ++mb)
    for (size_t i = 0; i < returns.size() && i < 2; ++i) {
      auto it = m.mailbox.find({returns[i].function, int64_t(mb)});
      if (it == m.mailbox.end() || returns[i].result >= it->second.size() ||
          it->second[returns[i].result].values.size() != 1) {
        close();
        return llvm::createStringError(llvm::formatv(
            "the pipeline's loss, result {0} of @{1}, is not a scalar the "
            "step produced",
            returns[i].result, returns[i].function));
      }
      T v = it->second[returns[i].result].values[0];
      (i == 0 ? losses[mb].objective : losses[mb].main) = v;
      if (returns.size() == 1)
        losses[mb].main = v;
    }
  m.mailbox.clear();
  close();
  if (m.group) {
    WireWriter w;
    w.u64(m.stepIndex);
    std::vector<T> values;
    for (const Loss &l : losses) {
      values.push_back(l.objective);
      values.push_back(l.main);
    }
    w.array<T>(values);
    m.sendToAll(kLosses, w.take());
  }
  return losses;
}

template <typename T>
std::optional<llvm::MutableArrayRef<T>>
PipelineRunner<T>::gradient(llvm::StringRef name) {
  llvm::ArrayRef<typename Impl::Piece> pieces = impl->piecesOf(name.str());
  if (pieces.size() > 1)
    return std::nullopt; // in pieces: gatherGradients() assembles it
  size_t e = pieces.empty() ? 0 : pieces[0].updater;
  if (!impl->local(int64_t(e)))
    return std::nullopt;
  return impl->ranks[e]->gradient(name);
}

template <typename T> void PipelineRunner<T>::divideGradients(T by) {
  for (const Parameter &p : impl->program->parameters) {
    llvm::ArrayRef<typename Impl::Piece> pieces = impl->piecesOf(p.name);
    if (pieces.empty()) {
      if (auto g = gradient(p.name))
        for (T &v : *g)
          v /= by;
      continue;
    }
    for (const typename Impl::Piece &piece : pieces)
      if (impl->local(int64_t(piece.updater)))
        if (auto g = impl->ranks[piece.updater]->gradient(p.name, piece.begin,
                                                          piece.end))
          for (T &v : *g)
            v /= by;
  }
}

template <typename T> bool PipelineRunner<T>::shardsOptimizer() const {
  return impl->zero;
}

template <typename T>
std::vector<int64_t> PipelineRunner<T>::getOptimizerShares() const {
  std::vector<int64_t> shares(impl->replicas, 0);
  for (const auto &[name, pieces] : impl->pieces)
    for (const typename Impl::Piece &piece : pieces)
      shares[int64_t(piece.updater) / impl->pp] +=
          int64_t(piece.end - piece.begin);
  return shares;
}

template <typename T>
llvm::Error PipelineRunner<T>::optimizerStep(T lr, int64_t step) {
  Impl &m = *impl;
  using Piece = typename Impl::Piece;
  typename Impl::InCall call(m);
  std::set<size_t> updaters;
  for (const auto &[name, pieces] : m.pieces)
    for (const Piece &piece : pieces)
      updaters.insert(piece.updater);
  updaters.insert(0);
  std::vector<std::string> errors(m.ranks.size());
  std::vector<std::thread> threads;
  for (size_t e : updaters)
    if (m.ranks[e])
      threads.emplace_back([&, e] {
        // Computing: heartbeats go on, and the watchdog watches.
        uint64_t activity = m.beginComputing(int64_t(e), "its optimizer step");
        llvm::Expected<std::vector<typename Impl::Output>> out =
            m.ranks[e]->run("optimizer_step", {Impl::Argument::scalar(lr),
                                               Impl::Argument::integer(step)});
        m.endComputing(activity);
        if (!out)
          errors[e] = llvm::toString(out.takeError());
      });
  for (std::thread &t : threads)
    t.join();
  for (size_t e = 0; e < errors.size(); ++e)
    if (!errors[e].empty())
      return llvm::createStringError(
          llvm::formatv("rank {0}'s optimizer step: {1}", e, errors[e]));
  // The all-gather: each updater's new weights go straight to the other
  // executors that read them (of an expert weight, the experts they own);
  // the moments stay with the updaters. A parameter without a gradient is
  // the master's, in one piece.
  auto piecesOf = [&](const Parameter &p) {
    std::vector<Piece> list = m.piecesOf(p.name);
    if (list.empty())
      list.push_back({0, m.numel(p.name), 0});
    return list;
  };
  // What executor e reads of piece `piece` and does not update itself.
  auto readOf = [&](size_t e, const Parameter &p, const Piece &piece) {
    if (p.frozen || !m.uses(e, p.name) || piece.updater == e)
      return std::make_pair(size_t(0), size_t(0));
    return m.readOf(e, p.name, piece);
  };
  if (!m.group) {
    for (const Parameter &p : m.program->parameters)
      for (const Piece &piece : piecesOf(p))
        for (size_t e = 0; e < m.ranks.size(); ++e) {
          auto [begin, end] = readOf(e, p, piece);
          if (begin == end)
            continue;
          std::optional<llvm::MutableArrayRef<T>>
              from = m.ranks[piece.updater]->masterWeight(p.name, begin, end),
              to = m.ranks[e]->masterWeight(p.name, begin, end);
          if (from && to)
            std::copy(from->begin(), from->end(), to->begin());
        }
    return llvm::Error::success();
  }
  CpuExecutor<T> &mine = *m.ranks[m.self];
  size_t self = size_t(m.self);
  for (int64_t q = 0; q < m.group->getSize(); ++q) {
    if (q == m.self)
      continue;
    std::vector<std::tuple<const Parameter *, size_t, size_t>> parts;
    for (const Parameter &p : m.program->parameters)
      for (const Piece &piece : piecesOf(p))
        if (piece.updater == self) {
          auto [begin, end] = readOf(size_t(q), p, piece);
          if (begin != end)
            parts.push_back({&p, begin, end});
        }
    if (parts.empty())
      continue; // what q expects from this rank: nothing
    WireWriter w;
    w.u64(parts.size());
    for (auto [p, begin, end] : parts) {
      w.str(p->name);
      w.u64(begin);
      w.array<T>(*mine.masterWeight(p->name, begin, end));
    }
    m.sendTo(q, kShard, w.take(), "updated weights");
  }
  std::set<size_t> senders;
  for (const Parameter &p : m.program->parameters)
    for (const Piece &piece : piecesOf(p)) {
      auto [begin, end] = readOf(self, p, piece);
      if (begin != end)
        senders.insert(piece.updater);
    }
  for (size_t e : senders) {
    std::vector<uint8_t> payload;
    {
      std::unique_lock<std::mutex> lock(m.mutex);
      auto &inbox = m.shardsInbox[int64_t(e)];
      if (llvm::Error err = m.awaitMessage(
              lock, [&] { return !inbox.empty(); },
              llvm::formatv("rank {0}'s updated weights", e).str()))
        return err;
      payload = std::move(inbox.front());
      inbox.pop_front();
    }
    WireReader r(payload);
    for (uint64_t n = r.u64(), i = 0; i < n && !r.failed(); ++i) {
      std::string name = r.str();
      size_t begin = size_t(r.u64());
      std::vector<T> values = r.array<T>();
      const Parameter *p = m.program->lookupParameter(name);
      std::optional<llvm::MutableArrayRef<T>> to =
          p ? mine.masterWeight(name, begin, begin + values.size())
            : std::nullopt;
      bool expected = false;
      if (!r.failed() && to)
        for (const Piece &piece : piecesOf(*p))
          expected |= piece.updater == e &&
                      readOf(self, *p, piece) ==
                          std::make_pair(begin, begin + values.size());
      if (!expected)
        return llvm::createStringError(
            llvm::formatv("rank {0} sent updated weights of '{1}', which it "
                          "does not update or which do not fit",
                          e, name));
      std::copy(values.begin(), values.end(), to->begin());
    }
    if (r.failed() || !r.atEnd())
      return llvm::createStringError(
          llvm::formatv("rank {0} sent a malformed message of its updated "
                        "weights",
                        e));
  }
  return llvm::Error::success();
}

/// What gatherState() and gatherGradients() share: every updater other
/// than the master sends it its pieces of every parameter, and the master
/// reads them into the parameters it assembles (run()); the caller then
/// fills in the master's own pieces.
template <typename T> struct PieceGather {
  using Impl = typename PipelineRunner<T>::Impl;
  using Piece = typename Impl::Piece;
  Impl &m;
  std::set<size_t> updaters;
  explicit PieceGather(Impl &m) : m(m) {
    for (const auto &[name, pieces] : m.pieces)
      for (const Piece &piece : pieces)
        if (piece.updater != 0)
          updaters.insert(piece.updater);
  }
  /// The payload of updater `e`'s pieces: `write(w, e, name, piece)`
  /// appends one piece's values.
  template <typename Write> std::vector<uint8_t> share(size_t e, Write write) {
    WireWriter w;
    uint64_t n = 0;
    for (const auto &[name, pieces] : m.pieces)
      for (const Piece &piece : pieces)
        n += piece.updater == e;
    w.u64(n);
    for (const auto &[name, pieces] : m.pieces)
      for (const Piece &piece : pieces)
        if (piece.updater == e) {
          w.str(name);
          w.u64(piece.begin);
          write(w, e, name, piece);
        }
    return w.take();
  }
  /// Reads updater `e`'s payload: `read(r, name, piece)` takes one piece's
  /// values, false when they do not fit.
  template <typename Read>
  llvm::Error take(size_t e, llvm::ArrayRef<uint8_t> payload, Read read,
                   llvm::StringRef what) {
    WireReader r(payload);
    for (uint64_t n = r.u64(), i = 0; i < n && !r.failed(); ++i) {
      std::string name = r.str();
      size_t begin = size_t(r.u64());
      const Piece *found = nullptr;
      for (const Piece &piece : m.piecesOf(name))
        if (piece.updater == e && piece.begin == begin)
          found = &piece;
      if (r.failed() || !found || !read(r, name, *found))
        return llvm::createStringError(
            llvm::formatv("rank {0} sent {1} of '{2}', which is not its to "
                          "update or does not fit",
                          e, what, name));
    }
    if (r.failed() || !r.atEnd())
      return llvm::createStringError(
          llvm::formatv("rank {0} sent a malformed message of {1}", e, what));
    return llvm::Error::success();
  }
  /// The exchange. A process other than the master sends its share as a
  /// message of `kind` (`label` in the trace). The master takes every
  /// other updater's: from `inbox` (waiting for "rank e's `waiting`"), or
  /// with threads straight from that rank's executor. `what` names the
  /// values in errors.
  template <typename Write, typename Read>
  llvm::Error run(uint32_t kind, llvm::StringRef label,
                  std::map<int64_t, std::vector<uint8_t>> &inbox,
                  llvm::StringRef waiting, llvm::StringRef what, Write write,
                  Read read) {
    if (m.group && m.self != 0) {
      if (updaters.count(size_t(m.self)))
        m.sendTo(0, kind, share(size_t(m.self), write), label.str());
      return llvm::Error::success();
    }
    for (size_t e : updaters) {
      std::vector<uint8_t> payload;
      if (!m.group) {
        payload = share(e, write);
      } else {
        std::unique_lock<std::mutex> lock(m.mutex);
        if (llvm::Error err = m.awaitMessage(
                lock, [&] { return inbox.count(int64_t(e)) > 0; },
                llvm::formatv("rank {0}'s {1}", e, waiting).str()))
          return err;
        payload = std::move(inbox[int64_t(e)]);
        inbox.erase(int64_t(e));
      }
      if (llvm::Error err = take(e, payload, read, what))
        return err;
    }
    return llvm::Error::success();
  }
};

template <typename T>
llvm::Expected<
    std::map<std::string, typename PipelineRunner<T>::ParameterState>>
PipelineRunner<T>::gatherState() {
  Impl &m = *impl;
  using Piece = typename Impl::Piece;
  std::map<std::string, ParameterState> gathered;
  typename Impl::InCall call(m);
  m.gathered = true;
  // A piece: its weights and moments, as its updater holds them.
  auto write = [&](WireWriter &w, size_t e, const std::string &name,
                   const Piece &piece) {
    CpuExecutor<T> &owner = *m.ranks[e];
    size_t n = piece.end - piece.begin,
           offset = size_t(owner.getMomentOffset(name));
    w.array<T>(*owner.masterWeight(name, piece.begin, piece.end));
    w.array<uint16_t>(owner.firstMoment(name)->slice(piece.begin - offset, n));
    w.array<uint16_t>(owner.secondMoment(name)->slice(piece.begin - offset, n));
  };
  // On the master: each parameter with a piece updated elsewhere, whole;
  // its weights go into the master's executor if it keeps them.
  auto read = [&](WireReader &r, const std::string &name, const Piece &piece) {
    std::vector<T> w = r.array<T>();
    std::vector<uint16_t> m1 = r.array<uint16_t>(), m2 = r.array<uint16_t>();
    size_t n = piece.end - piece.begin;
    if (r.failed() || w.size() != n || m1.size() != n || m2.size() != n)
      return false;
    // Into the master's executor if it holds the whole parameter.
    std::optional<llvm::MutableArrayRef<T>> to = m.ranks[0]->masterWeight(name);
    if (to && to->size() != m.numel(name))
      to = std::nullopt;
    auto [it, fresh] = gathered.try_emplace(name);
    ParameterState &state = it->second;
    if (fresh) {
      size_t all = m.numel(name);
      if (!to)
        state.weights.resize(all);
      state.first.resize(all);
      state.second.resize(all);
    }
    T *weights = to ? to->data() : state.weights.data();
    std::copy(w.begin(), w.end(), weights + piece.begin);
    std::copy(m1.begin(), m1.end(), state.first.begin() + piece.begin);
    std::copy(m2.begin(), m2.end(), state.second.begin() + piece.begin);
    return true;
  };
  PieceGather<T> gather(m);
  if (llvm::Error err =
          gather.run(kGather, "state for the checkpoint", m.gatherInbox,
                     "optimizer state", "the state", write, read))
    return std::move(err);
  if (m.group && m.self != 0)
    return gathered;
  // The master's own pieces of the parameters assembled here.
  CpuExecutor<T> &master = *m.ranks[0];
  for (auto &[name, state] : gathered)
    for (const Piece &piece : m.piecesOf(name))
      if (piece.updater == 0) {
        size_t n = piece.end - piece.begin,
               offset = size_t(master.getMomentOffset(name));
        llvm::ArrayRef<uint16_t> m1 =
            master.firstMoment(name)->slice(piece.begin - offset, n);
        llvm::ArrayRef<uint16_t> m2 =
            master.secondMoment(name)->slice(piece.begin - offset, n);
        std::copy(m1.begin(), m1.end(), state.first.begin() + piece.begin);
        std::copy(m2.begin(), m2.end(), state.second.begin() + piece.begin);
        // Of a parameter it holds in part (an expert weight), its weights.
        if (!state.weights.empty()) {
          llvm::ArrayRef<T> w =
              *master.masterWeight(name, piece.begin, piece.end);
          std::copy(w.begin(), w.end(), state.weights.begin() + piece.begin);
        }
      }
  return gathered;
}

template <typename T>
llvm::Expected<std::map<std::string, std::vector<T>>>
PipelineRunner<T>::gatherGradients() {
  Impl &m = *impl;
  using Piece = typename Impl::Piece;
  std::map<std::string, std::vector<T>> gathered;
  typename Impl::InCall call(m);
  auto write = [&](WireWriter &w, size_t e, const std::string &name,
                   const Piece &piece) {
    w.array<T>(*m.ranks[e]->gradient(name, piece.begin, piece.end));
  };
  auto read = [&](WireReader &r, const std::string &name, const Piece &piece) {
    std::vector<T> g = r.array<T>();
    if (r.failed() || g.size() != piece.end - piece.begin)
      return false;
    auto [it, fresh] = gathered.try_emplace(name);
    if (fresh)
      it->second.resize(m.numel(name));
    std::copy(g.begin(), g.end(), it->second.begin() + piece.begin);
    return true;
  };
  PieceGather<T> gather(m);
  if (llvm::Error err =
          gather.run(kGradients, "gradients", m.gradientsInbox,
                     "reduced gradients", "the gradient", write, read))
    return std::move(err);
  if (m.group && m.self != 0)
    return gathered;
  for (auto &[name, g] : gathered)
    for (const Piece &piece : m.piecesOf(name))
      if (piece.updater == 0) {
        llvm::ArrayRef<T> own =
            *m.ranks[0]->gradient(name, piece.begin, piece.end);
        std::copy(own.begin(), own.end(), g.begin() + piece.begin);
      }
  return gathered;
}

template <typename T> llvm::Error PipelineRunner<T>::finish() {
  Impl &m = *impl;
  if (!m.group)
    return llvm::Error::success();
  typename Impl::InCall call(m);
  int64_t n = int64_t(m.ranks.size());
  if (m.self != 0) {
    WireWriter w;
    w.f64(steadyUs(m.origin));
    {
      std::lock_guard<std::mutex> lock(m.mutex);
      w.u64(m.events.size());
      for (const Event &e : m.events) {
        w.i64(e.rank);
        w.str(e.name);
        w.u64(uint64_t(e.waiting) | uint64_t(e.nested) << 1 |
              uint64_t(e.communication) << 2 | uint64_t(e.overlapped) << 3 |
              uint64_t(e.transfer) << 4);
        w.f64(e.startUs);
        w.f64(e.durationUs);
      }
    }
    w.array<double>(m.reduceUs);
    w.array<double>(m.exposedUs);
    w.array<int64_t>(m.bucketsReduced);
    w.i64(m.expertExchanges[m.self]);
    w.i64(m.expertBytes[m.self]);
    w.i64(m.ranks[m.self]->getWeightBytes());
    w.i64(m.ranks[m.self]->getGradientBytes());
    w.i64(m.ranks[m.self]->getMomentBytes());
    w.i64(m.ranks[m.self]->getBufferBytes());
    m.sendTo(0, kStats, w.take());
    if (llvm::Error e = m.flush())
      return e;
    m.finished = true;
    return llvm::Error::success();
  }
  m.stateBytes[0] = m.stateOf(0);
  // Every bucket is reduced once a step (its share on each updater).
  for (int64_t r = 0; r < m.pp; ++r)
    m.bucketsReduced[r] = int64_t(m.buckets[r].size() * m.stepIndex);
  for (int64_t q = 1; q < n; ++q) {
    std::vector<uint8_t> payload;
    {
      std::unique_lock<std::mutex> lock(m.mutex);
      if (llvm::Error e = m.awaitMessage(
              lock, [&] { return m.statsInbox.count(q) > 0; },
              llvm::formatv("rank {0}'s events", q).str()))
        return e;
      payload = std::move(m.statsInbox[q]);
      m.statsInbox.erase(q);
    }
    WireReader r(payload);
    // Their times from their creation: shifted to the master's.
    double shift = r.f64() - steadyUs(m.origin);
    std::vector<Event> events;
    bool known = true;
    for (uint64_t k = r.u64(), i = 0; i < k && !r.failed(); ++i) {
      Event e;
      e.rank = r.i64();
      known &= e.rank >= 0 && e.rank < n;
      e.name = r.str();
      uint64_t flags = r.u64();
      e.waiting = flags & 1;
      e.nested = flags & 2;
      e.communication = flags & 4;
      e.overlapped = flags & 8;
      e.transfer = flags & 16;
      e.startUs = r.f64() + shift;
      e.durationUs = r.f64();
      events.push_back(std::move(e));
    }
    std::vector<double> reduceUs = r.array<double>(),
                        exposedUs = r.array<double>();
    std::vector<int64_t> buckets = r.array<int64_t>();
    int64_t exchanges = r.i64(), bytes = r.i64();
    StateBytes held;
    held.weights = r.i64();
    held.gradients = r.i64();
    held.moments = r.i64();
    held.buffers = r.i64();
    if (r.failed() || !r.atEnd() || !known ||
        int64_t(reduceUs.size()) != m.pp || int64_t(exposedUs.size()) != m.pp ||
        int64_t(buckets.size()) != m.pp)
      return llvm::createStringError(
          llvm::formatv("rank {0} sent a malformed message of its events", q));
    for (int64_t r2 = 0; r2 < m.pp; ++r2) {
      m.reduceUs[r2] += reduceUs[r2];
      // With ZeRO-1 each process reduces its share of a bucket: the last
      // to end is the exposed part, and a bucket counts once.
      m.exposedUs[r2] = std::max(m.exposedUs[r2], exposedUs[r2]);
      (void)buckets;
    }
    m.expertExchanges[q] = exchanges;
    m.expertBytes[q] = bytes;
    m.stateBytes[q] = held;
    std::lock_guard<std::mutex> lock(m.mutex);
    for (Event &e : events)
      m.events.push_back(std::move(e));
  }
  m.finished = true;
  return llvm::Error::success();
}

template class octet::runtime::PipelineRunner<float>;
