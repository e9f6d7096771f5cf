//===- octet-run.cpp - Run a compiled Octet training step -----------------===//
//
// Trains with a program that octetc compiled: loads it (from a bundle file,
// or from the payload octetc appended to a copy of this executable), draws
// batches, runs @forward_backward once per micro-batch and @optimizer_step
// once per step, logs, and writes checkpoints. Also checks the compiler's
// gradients against finite differences in FP64 (--gradcheck).
//
// Runtime only: no MLIR here.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/Checkpoint.h"
#include "octet/Runtime/CpuExecutor.h"
#include "octet/Runtime/DataLoader.h"
#include "octet/Runtime/GemmOperands.h"
#include "octet/Runtime/MemoryPlan.h"
#include "octet/Runtime/PipelineRunner.h"
#include "octet/Runtime/ProcessGroup.h"
#include "octet/Runtime/Program.h"
#ifdef OCTET_HAVE_CUDA
#include "octet/Runtime/CudaDenseGemmEngine.h"
#include "octet/Runtime/CudaGemmEngine.h"
#endif

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <optional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace llvm;
using namespace octet::runtime;

namespace {

cl::OptionCategory category("octet-run options");

cl::opt<std::string> bundlePath(cl::Positional,
                                cl::desc("<bundle> (omit in an executable "
                                         "that octetc built)"),
                                cl::init(""), cl::cat(category));
cl::opt<std::string> dataPath(
    "data",
    cl::desc("Token file: .u16/.u32 little-endian ids, anything else bytes"),
    cl::value_desc("file"), cl::cat(category));
cl::opt<unsigned> steps("steps", cl::desc("Optimizer steps to run"),
                        cl::init(100), cl::cat(category));
cl::opt<std::string> device(
    "device",
    cl::desc("cpu, cuda or auto (the CPU, until the CUDA backend runs whole "
             "steps). cuda: the FP8 linears' GEMMs run on the GPU with the "
             "generated kernels, the BF16/FP32 GEMMs with cuBLASLt (where it "
             "loads), the rest of the step on the CPU"),
    cl::init("auto"), cl::cat(category));
cl::opt<std::string> kernelsPath(
    "kernels",
    cl::desc("With --device cuda: the GEMM kernels to launch, a cubin that "
             "octetc --emit=cubin --kernel-manifest wrote (its manifest "
             "beside it, .json); default: the runtime's built-in kernels"),
    cl::value_desc("FILE.cubin"), cl::cat(category));
cl::opt<unsigned> nproc(
    "nproc",
    cl::desc("Run the program's N ranks as N processes on this machine "
             "(N = pipeline.ranks x pipeline.dp), which exchange their "
             "tensors through sockets; rank 0 logs, reports and writes the "
             "checkpoints. Under mpirun or srun, start N processes without "
             "it and set OCTET_RENDEZVOUS to a directory they share, or to "
             "tcp://HOST:PORT where rank 0 listens (several machines)"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));
cl::opt<unsigned> virtualRanks(
    "virtual-ranks",
    cl::desc("With --device cuda: run the program's N pipeline ranks and "
             "replicas all on GPU 0, each with its own GEMM stream and "
             "buffers (N must be the program's number of ranks); without "
             "it, rank r runs on GPU r"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));
cl::opt<bool> emulateKernels(
    "emulate-gemm-kernels",
    cl::desc("With --device cpu: compute the FP8 linears' GEMMs from their "
             "operands packed as the GPU kernels take them, as the kernels "
             "compute them, and the BF16/FP32 GEMMs from the descriptions "
             "the cuBLASLt engine takes, checked (the CUDA path's host side "
             "without a GPU; slower)"),
    cl::cat(category));
cl::opt<uint64_t> seed("seed",
                       cl::desc("Seed of initialisation and data "
                                "(default: the bundle's)"),
                       cl::init(0), cl::cat(category));
cl::opt<std::string> checkpointDir("checkpoint",
                                   cl::desc("Directory for checkpoints"),
                                   cl::value_desc("dir"), cl::cat(category));
cl::opt<unsigned> every("every",
                        cl::desc("Checkpoint every N steps (and at "
                                 "the end); 0: only at the end"),
                        cl::init(0), cl::cat(category));
cl::opt<unsigned> keep("keep", cl::desc("Checkpoints to keep (0: all)"),
                       cl::init(3), cl::cat(category));
cl::opt<bool> resume("resume",
                     cl::desc("Continue from the latest checkpoint in "
                              "--checkpoint"),
                     cl::cat(category));
cl::opt<std::string> logPath("log",
                             cl::desc("Write one JSON line per step here"),
                             cl::value_desc("file"), cl::cat(category));
cl::opt<double> lrOption("lr",
                         cl::desc("Peak learning rate (default: the "
                                  "bundle's)"),
                         cl::init(0), cl::cat(category));
cl::opt<bool> quiet("quiet", cl::desc("No progress output"), cl::cat(category));
cl::opt<bool>
    gradcheck("gradcheck",
              cl::desc("Compare the compiled gradients with central finite "
                       "differences in FP64 on one batch, and exit"),
              cl::cat(category));
cl::opt<std::string> pipelineMode(
    "pipeline",
    cl::desc("How a pipeline-parallel program (one with per-stage "
             "functions) runs: threads (one thread per rank following the "
             "schedule; the default), in-order (every stage function in "
             "turn, on this thread) or off (the whole step at once)"),
    cl::value_desc("threads|in-order|off"), cl::init("threads"),
    cl::cat(category));
cl::opt<std::string> tracePath(
    "trace",
    cl::desc("Write what every pipeline rank did (stage functions, waits "
             "for other ranks) as a Chrome/Perfetto trace (JSON)"),
    cl::value_desc("FILE"), cl::cat(category));
cl::opt<double> bucketMiB(
    "bucket-mb",
    cl::desc("Gradient bucket size in MiB: pipeline ranks and replicas "
             "reduce their gradients in buckets of this size while the "
             "backward runs"),
    cl::init(25), cl::cat(category));
cl::opt<unsigned> pipelineTimeout(
    "pipeline-timeout",
    cl::desc("Seconds a pipeline rank waits for another's tensors before "
             "the step fails"),
    cl::init(120), cl::cat(category));
cl::opt<unsigned> computeTimeout(
    "compute-timeout",
    cl::desc("Seconds a pipeline rank may compute one stage function or "
             "its optimizer step; one that takes longer fails the run on "
             "every rank (0: no limit)"),
    cl::init(0), cl::cat(category));
cl::opt<bool> noBufferReuse(
    "no-buffer-reuse",
    cl::desc("Give every value of a function storage of its own instead of "
             "sharing memory by liveness (more memory; the same results, a "
             "check of the memory plan)"),
    cl::cat(category));
cl::opt<std::string> gradientsPath(
    "save-gradients",
    cl::desc("Write the first step's gradients (the mean over its "
             "micro-batches, before AdamW) to this safetensors file"),
    cl::value_desc("FILE"), cl::cat(category));
cl::opt<unsigned> gradcheckSamples(
    "gradcheck-samples",
    cl::desc("Coordinates sampled per parameter by --gradcheck"), cl::init(2),
    cl::cat(category));

constexpr char kPayloadMagic[8] = {'O', 'C', 'T', 'E', 'T', 'P', 'R', 'G'};

/// In a process of a multi-process run: its rank, which its messages name.
std::string toolName = "octet-run";

/// An error line, in one write: the ranks of a multi-process run share
/// the terminal.
void printError(StringRef tool, const Twine &message) {
  std::string line;
  raw_string_ostream os(line);
  WithColor::error(os, tool) << message << "\n";
  errs() << line;
}

[[noreturn]] void fail(const Twine &message) {
  printError(toolName, message);
  std::exit(1);
}

void failOn(Error e, StringRef context = "") {
  if (!e)
    return;
  std::string message = toString(std::move(e));
  fail(context.empty() ? message : context + ": " + message);
}

template <typename T> T check(Expected<T> v, StringRef context = "") {
  if (!v)
    failOn(v.takeError(), context);
  return std::move(*v);
}

/// The program octetc appended to this executable, if any: the payload is
/// followed by its size (8 bytes, little endian) and the magic.
std::optional<std::string> embeddedProgram() {
  std::string self = sys::fs::getMainExecutable(nullptr, nullptr);
  auto file = MemoryBuffer::getFile(self, /*IsText=*/false,
                                    /*RequiresNullTerminator=*/false);
  if (!file)
    return std::nullopt;
  StringRef data = (*file)->getBuffer();
  if (data.size() < 16 || std::memcmp(data.end() - 8, kPayloadMagic, 8) != 0)
    return std::nullopt;
  uint64_t size = 0;
  std::memcpy(&size, data.end() - 16, 8);
  if (size > data.size() - 16)
    return std::nullopt;
  return data.substr(data.size() - 16 - size, size).str();
}

/// A metadata value of the bundle, as a number.
double metaNumber(const Program &p, StringRef key, double fallback) {
  auto it = p.metadata.find(key.str());
  if (it == p.metadata.end())
    return fallback;
  double v;
  if (StringRef(it->second).getAsDouble(v))
    fail("bundle metadata '" + key + "' = '" + it->second +
         "' is not a number");
  return v;
}

struct TrainSettings {
  uint64_t seqLen, batch, microBatches, vocab, warmup;
  double lr, minLrRatio, flopsPerStep;
  uint64_t seed;
};

TrainSettings settingsOf(const Program &p) {
  TrainSettings s;
  s.seqLen = uint64_t(metaNumber(p, "train.sequence_length", 0));
  s.batch = uint64_t(metaNumber(p, "train.micro_batch_size", 0));
  // A step's micro-batches over all data-parallel replicas.
  s.microBatches = uint64_t(metaNumber(p, "train.micro_batches", 1)) *
                   uint64_t(std::max(1.0, metaNumber(p, "pipeline.dp", 1)));
  s.vocab = uint64_t(metaNumber(p, "model.vocab_size", 0));
  s.warmup = uint64_t(metaNumber(p, "train.warmup_steps", 0));
  s.lr = lrOption > 0 ? double(lrOption) : metaNumber(p, "train.lr", 1e-3);
  s.minLrRatio = metaNumber(p, "train.min_lr_ratio", 0.1);
  s.flopsPerStep = metaNumber(p, "train.flops_per_step", 0);
  s.seed = seed ? uint64_t(seed) : uint64_t(metaNumber(p, "train.seed", 1));
  if (!s.seqLen || !s.batch || !s.vocab)
    fail("the bundle does not say its sequence length, micro-batch size and "
         "vocabulary (metadata train.sequence_length, "
         "train.micro_batch_size, model.vocab_size): compile it with octetc");
  return s;
}

/// Linear warm-up, then cosine decay to minLrRatio of the peak at the last
/// step.
double learningRate(const TrainSettings &s, uint64_t step, uint64_t last) {
  if (s.warmup && step <= s.warmup)
    return s.lr * double(step) / double(s.warmup);
  if (last <= s.warmup)
    return s.lr;
  double t = double(step - s.warmup) / double(last - s.warmup);
  double cosine = 0.5 * (1 + std::cos(M_PI * std::min(1.0, t)));
  return s.lr * (s.minLrRatio + (1 - s.minLrRatio) * cosine);
}

std::string formatDuration(double seconds) {
  int64_t s = int64_t(seconds + 0.5);
  if (s < 60)
    return formatv("{0}s", s).str();
  if (s < 3600)
    return formatv("{0}m{1:2}s", s / 60, s % 60).str();
  return formatv("{0}h{1:2}m", s / 3600, (s % 3600) / 60).str();
}

std::string formatRate(double v) {
  if (v >= 1e6)
    return formatv("{0:f1}M", v / 1e6).str();
  if (v >= 1e3)
    return formatv("{0:f1}k", v / 1e3).str();
  return formatv("{0:f0}", v).str();
}

DataLoader makeLoader(const TrainSettings &s) {
  if (dataPath.empty())
    fail("no training data: pass --data FILE (a text file is read as bytes; "
         ".u16/.u32 files as token ids)");
  auto file = check(TokenFile::open(dataPath, s.vocab));
  DataLoaderOptions options;
  options.batchSize = s.batch;
  options.seqLen = s.seqLen;
  options.seed = s.seed;
  return check(DataLoader::create(file, options));
}

/// Loss of @forward_backward (or @forward) on one batch; the main-model
/// loss, when the program returns it second, goes to `mainLoss`.
template <typename T>
T runLoss(CpuExecutor<T> &exec, StringRef fn, const Batch &batch,
          T *mainLoss = nullptr) {
  auto out =
      check(exec.run(fn, {typename CpuExecutor<T>::Argument(batch.inputs),
                          typename CpuExecutor<T>::Argument(batch.labels)}),
            "running @" + fn.str());
  if (out.empty() || out[0].values.size() != 1)
    fail("@" + fn + " must return the scalar loss");
  if (mainLoss)
    *mainLoss = out.size() > 1 && out[1].values.size() == 1 ? out[1].values[0]
                                                            : out[0].values[0];
  return out[0].values[0];
}

/// The loss of one micro-batch through the per-stage functions of a
/// pipeline-parallel build, run one after the other on this thread in the
/// order the compiler lists them, each taking the batch or earlier
/// functions' results as its inputs say. Computes what @forward_backward
/// computes, op for op.
template <typename T>
T runStagedLoss(CpuExecutor<T> &exec, const StageFunctions &stages,
                const Batch &batch, T *mainLoss) {
  using Argument = typename CpuExecutor<T>::Argument;
  using Output = typename CpuExecutor<T>::Output;
  std::map<std::string, std::vector<Output>> results;
  auto lookup = [&](const StageFunctions::Source &source) -> Argument {
    if (source.argument == 0)
      return Argument(batch.inputs);
    if (source.argument == 1)
      return Argument(batch.labels);
    auto it = results.find(source.function);
    if (it == results.end() || source.result >= it->second.size())
      fail(formatv("the program's pipeline metadata names result {0} of @{1}, "
                   "which no earlier stage function produced",
                   source.result, source.function));
    const Output &o = it->second[source.result];
    return o.ints.empty() ? Argument(o.values) : Argument(o.ints);
  };
  for (const std::string &fn : stages.order) {
    std::vector<Argument> args;
    for (const StageFunctions::Source &source : stages.inputs.at(fn))
      args.push_back(lookup(source));
    results[fn] = check(exec.run(fn, args), "running @" + fn);
  }
  auto scalar = [&](const StageFunctions::Source &source) {
    Argument a = lookup(source);
    if (a.getKind() != Argument::Kind::Real || a.reals().size() != 1)
      fail("the pipeline's result " + std::to_string(source.result) + " of @" +
           source.function + " is not the scalar loss");
    return a.reals()[0];
  };
  T loss = scalar(stages.returns[0]);
  if (mainLoss)
    *mainLoss = stages.returns.size() > 1 ? scalar(stages.returns[1]) : loss;
  return loss;
}

/// What each rank keeps: the parameters it reads, accumulates or updates,
/// the AdamW moments of those it updates, and its functions' buffers.
void printStateBytes(const PipelineRunner<float> &ranks, const Program &program,
                     raw_ostream &os) {
  std::vector<PipelineRunner<float>::StateBytes> bytes = ranks.getStateBytes();
  auto mib = [](int64_t b) { return double(b) / (1 << 20); };
  auto line = [&](StringRef what, auto field, std::string after = "") {
    std::string held;
    for (const PipelineRunner<float>::StateBytes &b : bytes)
      held +=
          formatv("{0}{1:f2}", held.empty() ? "" : ", ", mib(b.*field)).str();
    os << "octet-run: " << what << " each rank holds (MiB): " << held << after
       << "\n";
  };
  line("AdamW moments", &PipelineRunner<float>::StateBytes::moments);
  line("FP32 weights", &PipelineRunner<float>::StateBytes::weights);
  line("FP32 gradients", &PipelineRunner<float>::StateBytes::gradients);
  // As the float executor stores them: 4 bytes a float, 8 an integer.
  int64_t all = 0;
  for (const Buffer &b : program.buffers)
    all += b.numElements() *
           (b.dtype == BufferType::I32 || b.dtype == BufferType::I64 ? 8 : 4);
  line("buffers of its functions", &PipelineRunner<float>::StateBytes::buffers,
       formatv(" (all of the program's: {0:f2})", mib(all)).str());
}

/// Per rank: time computing, time waiting for other ranks' tensors (the
/// exposed communication of CPU ranks), and the bubble, the share of the
/// steps' wall time the rank did not compute; and --trace.
void reportPipeline(const PipelineRunner<float> &ranks, int64_t steps) {
  PipelineRunner<float>::Summary s = ranks.getSummary();
  std::vector<double> simulated = ranks.getSimulatedBubble();
  for (size_t r = 0; r < s.busyUs.size(); ++r)
    outs() << formatv("rank {0}: computing {1:f3} s, waiting for other ranks "
                      "{2:f3} s, bubble {3:f1}% of the steps (simulated with "
                      "these stage times: {4})\n",
                      r, s.busyUs[r] * 1e-6, s.waitingUs[r] * 1e-6,
                      s.stepsUs > 0 ? 100.0 * (1 - s.busyUs[r] / s.stepsUs)
                                    : 0.0,
                      r < simulated.size()
                          ? formatv("{0:f1}%", 100 * simulated[r]).str()
                          : std::string("-"));
  for (size_t r = 0; r < s.reduceUs.size(); ++r)
    outs() << formatv("rank {0} gradients: reduced in {1} bucket(s) a step "
                      "({2:f3} s), ending {3:f3} s after the rank's last "
                      "computation (exposed)\n",
                      r, s.buckets[r] / std::max<int64_t>(1, steps),
                      s.reduceUs[r] * 1e-6, s.exposedReduceUs[r] * 1e-6);
  if (ranks.getExpertParallelism() > 1)
    for (size_t r = 0; r < s.expertBytes.size(); ++r)
      outs() << formatv("rank {0} experts: {1} exchange(s) a step, {2:f2} MiB "
                        "a step sent to its expert-parallel group\n",
                        r, s.expertExchanges[r] / std::max<int64_t>(1, steps),
                        double(s.expertBytes[r]) /
                            double(std::max<int64_t>(1, steps)) /
                            double(1 << 20));
  if (tracePath.empty())
    return;
  json::Array events;
  int64_t numRanks = int64_t(s.busyUs.size());
  auto track = [&](int64_t tid, std::string name) {
    events.push_back(json::Object{{"name", "thread_name"},
                                  {"ph", "M"},
                                  {"pid", 0},
                                  {"tid", tid},
                                  {"args", json::Object{{"name", name}}}});
  };
  for (int64_t r = 0; r < numRanks; ++r)
    track(r, "rank " + std::to_string(r));
  for (size_t r = 0; r < s.reduceUs.size(); ++r)
    track(numRanks + int64_t(r),
          "rank " + std::to_string(r) + " gradient reduction");
  // The forward halves of overlapped F&B actions, beside each rank's track.
  int64_t beside = numRanks + int64_t(s.reduceUs.size());
  bool overlaps = llvm::any_of(ranks.getEvents(),
                               [](const auto &e) { return e.overlapped; });
  if (overlaps)
    for (int64_t r = 0; r < numRanks; ++r)
      track(beside + r, "rank " + std::to_string(r) + " overlapped forward");
  // Ranks as processes: the messages each sends, beside its computation.
  int64_t sends = beside + numRanks;
  bool transfers =
      llvm::any_of(ranks.getEvents(), [](const auto &e) { return e.transfer; });
  if (transfers)
    for (int64_t r = 0; r < numRanks; ++r)
      track(sends + r, "rank " + std::to_string(r) + " sends");
  for (const auto &e : ranks.getEvents())
    events.push_back(json::Object{{"name", e.name},
                                  {"cat", e.communication ? "communication"
                                          : e.transfer    ? "transfer"
                                          : e.waiting     ? "wait"
                                                          : "compute"},
                                  {"ph", "X"},
                                  {"pid", 0},
                                  {"tid", e.communication ? numRanks + e.rank
                                          : e.transfer    ? sends + e.rank
                                          : e.overlapped  ? beside + e.rank
                                                          : e.rank},
                                  {"ts", e.startUs},
                                  {"dur", e.durationUs}});
  json::Value trace = json::Object{{"traceEvents", std::move(events)},
                                   {"displayTimeUnit", "ms"}};
  failOn(writeFileAtomically(tracePath,
                             [&](raw_ostream &os) {
                               os << trace << "\n";
                               return Error::success();
                             }),
         "writing the trace " + tracePath);
}

int runGradcheck(const Program &program) {
  TrainSettings s = settingsOf(program);
  auto exec = check(CpuExecutor<double>::create(program));
  exec.initParameters(s.seed);
  DataLoader loader = makeLoader(s);
  Batch batch = loader.next();
  exec.zeroGradients();
  double loss = runLoss(exec, "forward_backward", batch);
  outs() << formatv("gradcheck: loss {0:f6} on one batch of {1} x {2} tokens, "
                    "FP64, central differences\n",
                    loss, s.batch, s.seqLen);

  // Relative step: the loss is smooth at this scale, and a flip of the MoE
  // routing (piecewise constant) is rare for steps this small.
  const double h = 1e-6;
  Xoshiro256 rng(s.seed ^ 0x9e3779b97f4a7c15ull);
  double xy = 0, xx = 0, yy = 0, worst = 0;
  std::string worstName;
  unsigned checked = 0;
  for (const Parameter &p : program.parameters) {
    if (p.frozen)
      continue;
    auto w = exec.masterWeight(p.name);
    auto g = exec.gradient(p.name);
    if (!w || !g)
      fail("no state for parameter '" + p.name + "'");
    for (unsigned i = 0; i < gradcheckSamples; ++i) {
      uint64_t index = rng.uniform(w->size());
      double saved = (*w)[index];
      (*w)[index] = saved + h;
      double plus = runLoss(exec, "forward", batch);
      (*w)[index] = saved - h;
      double minus = runLoss(exec, "forward", batch);
      (*w)[index] = saved;
      double fd = (plus - minus) / (2 * h), ad = (*g)[index];
      xy += fd * ad;
      xx += fd * fd;
      yy += ad * ad;
      double err = std::fabs(fd - ad) / std::max(1e-6, std::fabs(fd));
      if (err > worst) {
        worst = err;
        worstName = formatv("{0}[{1}]: autodiff {2:e}, differences {3:e}",
                            p.name, index, ad, fd)
                        .str();
      }
      ++checked;
    }
  }
  double diff = xx + yy > 0 ? 1 - 2 * xy / (xx + yy) : 0;
  outs() << formatv("gradcheck: {0} coordinates of {1} parameters; "
                    "1 - 2*sum(xy)/sum(x^2+y^2) = {2:e}; worst relative "
                    "error {3:e} at {4}\n",
                    checked, program.parameters.size(), diff, worst, worstName);
  // FP64 with h = 1e-6 resolves ~1e-9 relative; 1e-6 leaves room for the
  // curvature of the loss without hiding a wrong gradient.
  bool ok = diff < 1e-6;
  outs() << (ok ? "gradcheck: passed\n" : "gradcheck: FAILED\n");
  return ok ? 0 : 1;
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

/// Of the parameters the master does not update, their state from the
/// ranks that do (PipelineRunner::gatherState).
using GatheredState =
    std::map<std::string, PipelineRunner<float>::ParameterState>;

/// Every parameter's weights: the executor's, or those gathered from the
/// rank that updates it.
std::vector<Tensor> weightTensors(CpuExecutor<float> &exec,
                                  const Program &program,
                                  GatheredState &gathered) {
  std::vector<Tensor> out;
  for (const Parameter &p : program.parameters) {
    // Gathered, or whole in the executor (which may hold part of an
    // expert weight).
    std::optional<MutableArrayRef<float>> w;
    if (auto it = gathered.find(p.name);
        it != gathered.end() && !it->second.weights.empty())
      w = MutableArrayRef<float>(it->second.weights);
    else
      w = exec.masterWeight(p.name, 0, p.numElements());
    if (!w)
      fail("internal error: no weights of '" + p.name + "' for the checkpoint");
    out.push_back(Tensor::of<float>(p.name, DType::F32, p.shape,
                                    ArrayRef<float>(w->data(), w->size())));
  }
  return out;
}

/// The AdamW moments of every trainable parameter: the executor's, or
/// those gathered from the rank that updates it.
std::vector<Tensor> optimizerTensors(CpuExecutor<float> &exec,
                                     const Program &program,
                                     GatheredState &gathered) {
  std::vector<Tensor> out;
  for (const Parameter &p : program.parameters) {
    if (p.frozen)
      continue;
    auto m = exec.firstMoment(p.name), v = exec.secondMoment(p.name);
    if (auto it = gathered.find(p.name); it != gathered.end()) {
      m = MutableArrayRef<uint16_t>(it->second.first);
      v = MutableArrayRef<uint16_t>(it->second.second);
    }
    int64_t n = p.numElements();
    if (!m || !v || int64_t(m->size()) != n || int64_t(v->size()) != n)
      fail("internal error: no AdamW moments of '" + p.name +
           "' for the checkpoint");
    out.push_back(
        Tensor::of<uint16_t>(p.name + ".exp_avg", DType::BF16, p.shape,
                             ArrayRef<uint16_t>(m->data(), m->size())));
    out.push_back(
        Tensor::of<uint16_t>(p.name + ".exp_avg_sq", DType::BF16, p.shape,
                             ArrayRef<uint16_t>(v->data(), v->size())));
  }
  return out;
}

/// Checks that the checkpoint has tensor `name` of `dtype` and `elements`
/// elements.
Expected<const Tensor *> findTensor(const SafetensorsFile &file,
                                    const std::string &name, DType dtype,
                                    int64_t elements) {
  const Tensor *t = file.find(name);
  if (!t)
    return createStringError("checkpoint has no tensor '" + name + "'");
  if (t->dtype != dtype || t->numElements() != elements)
    return createStringError("checkpoint tensor '" + name +
                             "' does not match the program (" +
                             dtypeName(t->dtype) + ", " +
                             Twine(t->numElements()) + " elements; expected " +
                             dtypeName(dtype) + ", " + Twine(elements) + ")");
  return t;
}

/// Loads an executor's state from a checkpoint: of each parameter it
/// holds, its weights and its moments (those of the elements it updates,
/// from element getMomentOffset on). Every parameter's tensors are checked
/// first, whether this executor holds them or not, so that every rank
/// refuses a checkpoint that does not fit the program.
Error restoreState(CpuExecutor<float> &exec, const Program &program,
                   const Checkpoint &ckpt) {
  for (const Parameter &p : program.parameters) {
    int64_t n = p.numElements();
    Expected<const Tensor *> w = findTensor(ckpt.model, p.name, DType::F32, n);
    if (!w)
      return w.takeError();
    if (auto to = exec.masterWeight(p.name))
      std::memcpy(to->data(),
                  (*w)->data.data() +
                      exec.getWeightOffset(p.name) * sizeof(float),
                  to->size() * sizeof(float));
    if (p.frozen)
      continue;
    for (auto [suffix, moment] :
         {std::pair(".exp_avg", exec.firstMoment(p.name)),
          std::pair(".exp_avg_sq", exec.secondMoment(p.name))}) {
      Expected<const Tensor *> t =
          findTensor(ckpt.optimizer, p.name + suffix, DType::BF16, n);
      if (!t)
        return t.takeError();
      if (moment)
        std::memcpy(moment->data(),
                    (*t)->data.data() +
                        exec.getMomentOffset(p.name) * sizeof(uint16_t),
                    moment->size() * sizeof(uint16_t));
    }
  }
  return Error::success();
}

/// One line on where the memory goes: the planned activation arena of a
/// micro-batch and the parameters' state.
void printMemory(const Program &program) {
  const Function *fb = program.lookupFunction("forward_backward");
  if (!fb)
    return;
  MemoryPlan plan = planMemory(program, *fb);
  int64_t weights = 0, trainable = 0;
  for (const Parameter &p : program.parameters) {
    int64_t n = p.numElements();
    weights += n;
    if (!p.frozen)
      trainable += n;
  }
  auto mib = [](double bytes) {
    return formatv("{0:f1} MiB", bytes / 1048576);
  };
  errs() << "octet-run: memory: activations of a micro-batch "
         << mib(plan.arenaBytes) << " planned by liveness ("
         << mib(plan.unsharedBytes) << " without reuse, peak live "
         << mib(plan.peakLiveBytes) << "); FP32 weights " << mib(4.0 * weights)
         << ", FP32 gradients " << mib(4.0 * trainable) << ", BF16 moments "
         << mib(4.0 * trainable) << "\n";
}

/// Where the FP8 linears' GEMMs run, as --device and
/// --emulate-gemm-kernels say; null: the CPU reference.
/// Each kind holds rank 0's engine first and, with pipeline ranks, one for
/// every rank.
struct GemmEngines {
  std::vector<std::unique_ptr<KernelEmulationEngine>> emulation;
  /// The BF16/FP32 GEMMs' descriptions checked, computed on the CPU.
  std::vector<std::unique_ptr<octet::cpu::CheckedDenseGemmEngine>> checkedDense;
#ifdef OCTET_HAVE_CUDA
  std::vector<std::unique_ptr<cuda::CudaGemmEngine>> gpu;
  /// cuBLASLt's; empty where it could not be loaded.
  std::vector<std::unique_ptr<cuda::CudaDenseGemmEngine>> gpuDense;
#endif
  octet::cpu::ScaledGemmEngine *get() const {
#ifdef OCTET_HAVE_CUDA
    if (!gpu.empty())
      return gpu.front().get();
#endif
    return emulation.empty() ? nullptr : emulation.front().get();
  }
  octet::cpu::DenseGemmEngine *getDense() const {
#ifdef OCTET_HAVE_CUDA
    if (!gpuDense.empty())
      return gpuDense.front().get();
#endif
    return checkedDense.empty() ? nullptr : checkedDense.front().get();
  }
};

/// The pipeline ranks and replicas a program runs as threads.
int64_t programRanks(const Program &program) {
  return std::max<int64_t>(1, metaNumber(program, "pipeline.ranks", 1)) *
         std::max<int64_t>(1, metaNumber(program, "pipeline.dp", 1));
}

/// The engines of this process's GEMMs, on GPU `ordinal` with --device cuda.
GemmEngines makeGemmEngines(int ordinal) {
  GemmEngines engines;
  if (emulateKernels) {
    engines.emulation.push_back(std::make_unique<KernelEmulationEngine>());
    engines.checkedDense.push_back(
        std::make_unique<octet::cpu::CheckedDenseGemmEngine>());
  }
  if (device != "cuda")
    return engines;
#ifdef OCTET_HAVE_CUDA
  cuda::KernelLibrary library =
      check(kernelsPath.empty() ? cuda::KernelLibrary::builtin()
                                : cuda::KernelLibrary::load(kernelsPath),
            "--device cuda");
  engines.gpu.push_back(
      check(cuda::CudaGemmEngine::create(std::move(library), ordinal),
            ordinal ? formatv("--device cuda (GPU {0})", ordinal).str()
                    : std::string("--device cuda")));
  if (!quiet) {
    const cuda::CudaGemmEngine &engine = *engines.gpu.front();
    const cuda::Context &ctx = engine.getContext();
    errs() << formatv("octet-run: FP8 GEMMs on {0} ({1} SMs) with {2} ({3} "
                      "kernels); the rest of the step on the CPU\n",
                      ctx.deviceName(), ctx.multiprocessorCount(),
                      engine.getLibrary().origin,
                      engine.getLibrary().kernels.size());
  }
  // The BF16/FP32 GEMMs go to cuBLASLt where it loads (it ships with the
  // CUDA toolkit, not the driver); otherwise they stay here, and say so.
  llvm::Expected<std::unique_ptr<cuda::CudaDenseGemmEngine>> dense =
      cuda::CudaDenseGemmEngine::create(ordinal);
  if (dense) {
    engines.gpuDense.push_back(std::move(*dense));
    if (!quiet)
      errs() << "octet-run: BF16/FP32 GEMMs on the GPU with cuBLASLt\n";
  } else {
    std::string why = toString(dense.takeError());
    if (!quiet)
      errs() << "octet-run: BF16/FP32 GEMMs on the CPU: " << why << "\n";
  }
#else
  fail("--device cuda: this octet-run was built without the CUDA toolkit; "
       "rebuild where CUDA 13 is installed, or use --device cpu");
#endif
  return engines;
}

/// With pipeline ranks: an engine for every rank after the first. With
/// --device cuda, on GPU r (or all on GPU 0 with --virtual-ranks), so that
/// the ranks' GEMMs run on streams of their own instead of taking turns;
/// emulated, so that each rank's GEMMs are counted.
void addRankEngines(GemmEngines &engines, PipelineRunner<float> &ranks) {
  int64_t n = ranks.getNumRanks();
  if (!engines.emulation.empty())
    for (int64_t r = 1; r < n; ++r) {
      engines.emulation.push_back(std::make_unique<KernelEmulationEngine>());
      ranks.getExecutor(r).setScaledGemmEngine(engines.emulation.back().get());
      engines.checkedDense.push_back(
          std::make_unique<octet::cpu::CheckedDenseGemmEngine>());
      ranks.getExecutor(r).setDenseGemmEngine(
          engines.checkedDense.back().get());
    }
#ifdef OCTET_HAVE_CUDA
  if (engines.gpu.empty())
    return;
  int gpus = check(cuda::getDeviceCount(), "--device cuda");
  if (!virtualRanks && n > gpus)
    fail(formatv("--device cuda: the program runs {0} ranks and this "
                 "machine has {1} GPU(s); --virtual-ranks {0} runs them all "
                 "on GPU 0",
                 n, gpus));
  const cuda::KernelLibrary &library = engines.gpu.front()->getLibrary();
  for (int64_t r = 1; r < n; ++r) {
    int ordinal = virtualRanks ? 0 : int(r);
    engines.gpu.push_back(
        check(cuda::CudaGemmEngine::create(library, ordinal),
              formatv("--device cuda: the GEMM engine of rank {0} (GPU {1})", r,
                      ordinal)
                  .str()));
    ranks.getExecutor(r).setScaledGemmEngine(engines.gpu.back().get());
    if (!engines.gpuDense.empty()) {
      engines.gpuDense.push_back(
          check(cuda::CudaDenseGemmEngine::create(ordinal),
                formatv("--device cuda: the cuBLASLt engine of rank {0} "
                        "(GPU {1})",
                        r, ordinal)
                    .str()));
      ranks.getExecutor(r).setDenseGemmEngine(engines.gpuDense.back().get());
    }
  }
  if (!quiet)
    errs() << formatv("octet-run: each rank's GEMMs on streams of its own, "
                      "{0}\n",
                      virtualRanks
                          ? formatv("all {0} ranks on GPU 0", n).str()
                          : formatv("rank r on GPU r (0..{0})", n - 1).str());
#endif
}

/// What the GEMM engine did, after training.
void reportGemmEngines(const GemmEngines &engines) {
  if (!engines.emulation.empty()) {
    int64_t block = 0, row = 0, grouped = 0;
    std::string perRank;
    for (size_t r = 0; r < engines.emulation.size(); ++r) {
      const KernelEmulationEngine &e = *engines.emulation[r];
      block += e.getBlockScaledCount();
      row += e.getRowScaledCount();
      grouped += e.getGroupedCount();
      perRank += formatv("{0}rank {1}: {2}", r ? ", " : "", r,
                         e.getBlockScaledCount() + e.getRowScaledCount())
                     .str();
    }
    outs() << formatv("FP8 GEMMs emulated as the GPU kernels compute them: "
                      "{0} 1x128 x 128x128 ({2} of them experts' at once), "
                      "{1} 128x1 x 128x1\n",
                      block, row, grouped);
    if (engines.emulation.size() > 1)
      outs() << "  per rank: " << perRank << "\n";
    int64_t dense = 0;
    for (const auto &e : engines.checkedDense)
      dense += e->getCount();
    outs() << formatv("BF16/FP32 GEMMs checked as the cuBLASLt engine takes "
                      "them: {0}\n",
                      dense);
  }
#ifdef OCTET_HAVE_CUDA
  if (engines.gpu.empty())
    return;
  cuda::CudaGemmEngine::Stats st;
  std::string perRank;
  for (size_t r = 0; r < engines.gpu.size(); ++r) {
    cuda::CudaGemmEngine::Stats e = engines.gpu[r]->getStats();
    st.gemms += e.gemms;
    st.flops += e.flops;
    st.kernelSeconds += e.kernelSeconds;
    st.engineSeconds += e.engineSeconds;
    for (const auto &[name, n] : e.launches)
      st.launches[name] += n;
    perRank += formatv("{0}rank {1}: {2}", r ? ", " : "", r, e.gemms).str();
  }
  outs() << formatv("FP8 GEMMs on the GPU: {0} launches, {1:f1} ms in the "
                    "kernels ({2:f1} TFLOP/s) of {3:f1} ms in the engines "
                    "(packing and copies included)\n",
                    st.gemms, st.kernelSeconds * 1e3,
                    st.kernelSeconds > 0 ? st.flops / st.kernelSeconds * 1e-12
                                         : 0.0,
                    st.engineSeconds * 1e3);
  if (engines.gpu.size() > 1)
    outs() << "  per rank: " << perRank << "\n";
  for (const auto &[name, n] : st.launches)
    outs() << formatv("  {0}: {1}\n", name, n);
  if (engines.gpuDense.empty())
    return;
  cuda::CudaDenseGemmEngine::Stats dense;
  for (const auto &e : engines.gpuDense) {
    cuda::CudaDenseGemmEngine::Stats one = e->getStats();
    dense.gemms += one.gemms;
    dense.flops += one.flops;
    dense.seconds += one.seconds;
    dense.engineSeconds += one.engineSeconds;
  }
  outs() << formatv("BF16/FP32 GEMMs with cuBLASLt: {0}, {1:f1} ms "
                    "({2:f1} TFLOP/s) of {3:f1} ms in the engines\n",
                    dense.gemms, dense.seconds * 1e3,
                    dense.seconds > 0 ? dense.flops / dense.seconds * 1e-12
                                      : 0.0,
                    dense.engineSeconds * 1e3);
#endif
}

/// What the ranks as processes do not do (yet), checked before they start.
void checkProcessOptions(const Program &program) {
  if (pipelineMode != "threads")
    fail("--nproc runs the program's ranks as processes; it does not go "
         "with --pipeline=" +
         pipelineMode);
  if (virtualRanks)
    fail("--virtual-ranks runs every rank in one process; it does not go "
         "with --nproc");
}

/// The GPU of this process's rank: rank r on GPU r modulo the GPUs it
/// sees (a launcher may give each process one GPU, CUDA_VISIBLE_DEVICES).
int gpuOfRank(const ProcessGroup *group) {
  if (!group || device != "cuda")
    return 0;
#ifdef OCTET_HAVE_CUDA
  int gpus = check(cuda::getDeviceCount(), "--device cuda");
  return gpus > 0 ? int(group->getRank() % gpus) : 0;
#else
  return 0;
#endif
}

/// This process's place in a multi-process run (octet-run --nproc, or a
/// launcher's rank variables), connected to the other ranks; null when it
/// runs alone.
std::unique_ptr<ProcessGroup> joinRanks(const Program &program) {
  std::optional<ProcessGroup::Options> options =
      check(ProcessGroup::optionsFromEnvironment(), "the rank variables");
  if (!options)
    return nullptr;
  toolName = formatv("octet-run (rank {0})", options->rank).str();
  int64_t n = programRanks(program);
  if (options->size != n)
    fail(formatv("started as one of {0} processes, but the program runs {1} "
                 "rank(s) (pipeline.ranks x pipeline.dp): start {1}",
                 options->size, n));
  checkProcessOptions(program);
  options->timeout = std::chrono::seconds(pipelineTimeout);
  std::unique_ptr<ProcessGroup> group =
      check(ProcessGroup::connect(*options), "connecting the ranks");
  // Rank 0 logs, reports and writes the files; the others keep quiet.
  if (options->rank != 0)
    quiet = true;
  return group;
}

int runTraining(const Program &program, StringRef digest) {
  TrainSettings s = settingsOf(program);
  std::unique_ptr<ProcessGroup> group = joinRanks(program);
  bool leader = !group || group->getRank() == 0;
  if (!quiet)
    printMemory(program);
  // Checked before any GPU work, so that the message does not depend on
  // the machine.
  if (virtualRanks) {
    int64_t n = programRanks(program);
    if (n > 1 && pipelineMode != "threads")
      fail("--virtual-ranks runs the program's ranks as threads; it does not "
           "go with --pipeline=" +
           pipelineMode);
    if (int64_t(virtualRanks) != n)
      fail(formatv("--virtual-ranks {0}: the program runs {1} rank(s) "
                   "(pipeline.ranks x pipeline.dp); pass --virtual-ranks {1}",
                   unsigned(virtualRanks), n));
  }
  GemmEngines engines = makeGemmEngines(gpuOfRank(group.get()));
  DataLoader loader = makeLoader(s);
  uint64_t firstStep = 1;

  // Every executor's state comes from the checkpoint or the seed: each
  // rank loads (or draws) only its own share.
  std::optional<Checkpoint> ckpt;
  if (resume) {
    if (checkpointDir.empty())
      fail("--resume needs --checkpoint DIR");
    ckpt = check(loadLatestCheckpoint(checkpointDir),
                 "resuming from " + checkpointDir);
    if (ckpt->meta.configDigest != digest)
      fail("the checkpoint in " + ckpt->directory +
           " was written by a different program or configuration");
    failOn(loader.restore(ckpt->meta.dataLoader), "restoring the data loader");
    firstStep = uint64_t(ckpt->step) + 1;
  }
  auto prepare = [&](CpuExecutor<float> &e) -> Error {
    e.setScaledGemmEngine(engines.get());
    e.setDenseGemmEngine(engines.getDense());
    if (ckpt)
      return restoreState(e, program, *ckpt);
    e.initParameters(s.seed);
    return Error::success();
  };
  std::unique_ptr<raw_fd_ostream> log;
  if (!logPath.empty() && leader) {
    std::error_code ec;
    log = std::make_unique<raw_fd_ostream>(
        logPath, ec, resume ? sys::fs::OF_Append : sys::fs::OF_None);
    if (ec)
      fail("cannot open log file '" + logPath + "': " + ec.message());
  }

  uint64_t lastStep = firstStep + steps - 1;
  uint64_t tokensPerStep = s.batch * s.seqLen * s.microBatches;
  bool terminal = !quiet && sys::Process::StandardErrIsDisplayed();
  auto start = std::chrono::steady_clock::now();
  double ema = 0, lastLoss = 0;
  auto lastReport = start;
  Batch batch;
  // With pipeline ranks each keeps only the parameters it reads,
  // accumulates or updates, and the moments of those it updates: every
  // rank sends its share to the master, which writes the checkpoint, and
  // (awaitCheckpoint()) the others wait for it.
  std::unique_ptr<PipelineRunner<float>> ranks;
  // The master's executor: the only one without pipeline ranks.
  std::optional<CpuExecutor<float>> single;
  CpuExecutor<float> *master = nullptr;
  auto gatherState = [&]() {
    GatheredState state;
    if (ranks)
      state = check(ranks->gatherState(),
                    "gathering the ranks' state for the checkpoint");
    return state;
  };
  auto saveAt = [&](uint64_t step, GatheredState gathered) {
    CheckpointMeta meta;
    meta.seed = s.seed;
    meta.dataLoader = loader.state();
    meta.configDigest = digest.str();
    CheckpointOptions options;
    options.keepLast = keep;
    failOn(saveCheckpoint(checkpointDir, int64_t(step),
                          weightTensors(*master, program, gathered),
                          optimizerTensors(*master, program, gathered), meta,
                          options),
           "writing the checkpoint of step " + std::to_string(step));
  };

  if (pipelineMode != "threads" && pipelineMode != "in-order" &&
      pipelineMode != "off")
    fail("--pipeline=" + pipelineMode + " is not one of threads, in-order, off");
  StageFunctions stages = check(StageFunctions::read(program),
                                "reading the program's pipeline stages");
  bool pipelined =
      !stages.order.empty() || metaNumber(program, "pipeline.dp", 1) > 1;
  bool staged = !stages.order.empty() && pipelineMode == "in-order";
  if (pipelined && pipelineMode == "threads") {
    if (bucketMiB <= 0)
      fail("--bucket-mb must be positive");
    auto makeRank = [&](int64_t, const CpuExecutor<float>::Holding &holding)
        -> Expected<CpuExecutor<float>> {
      CpuExecutor<float>::Holding h = holding;
      h.reuseBuffers = !noBufferReuse;
      Expected<CpuExecutor<float>> e = CpuExecutor<float>::create(program, h);
      if (!e)
        return e.takeError();
      if (Error err = prepare(*e))
        return std::move(err);
      return e;
    };
    ranks = check(PipelineRunner<float>::create(
                      program, makeRank, std::chrono::seconds(pipelineTimeout),
                      size_t(double(bucketMiB) * (1 << 20)), group.get()),
                  "starting the pipeline ranks");
    master = &ranks->getExecutor(ranks->getRank());
    if (!quiet)
      errs() << formatv("octet-run: {0} ranks as {4} (pipeline schedule "
                        "{1}, {2} data-parallel replica(s){3})\n",
                        ranks->getNumRanks(),
                        program.metadata.at("pipeline.schedule"),
                        int64_t(metaNumber(program, "pipeline.dp", 1)),
                        (ranks->getExpertParallelism() > 1
                             ? formatv(", experts split over {0}",
                                       ranks->getExpertParallelism())
                                   .str()
                             : std::string()) +
                            (ranks->shardsOptimizer()
                                 ? ", optimizer sharded over the replicas "
                                   "(ZeRO-1)"
                                 : ""),
                        group ? "processes" : "threads");
    if (!group)
      addRankEngines(engines, *ranks);
    // A computation that never returns cannot be stopped: once the other
    // ranks know, this process ends.
    ranks->setComputeLimit(std::chrono::seconds(computeTimeout),
                           [](std::string why) {
                             printError(toolName, why);
                             _exit(1);
                           });
    if (!quiet && ranks->shardsOptimizer()) {
      std::string shares;
      for (int64_t n : ranks->getOptimizerShares())
        shares += (shares.empty() ? "" : ", ") + std::to_string(n);
      errs() << "octet-run: parameter elements each replica updates: " << shares
             << "\n";
    }
    // With processes, known here only at the end (finish()).
    if (!quiet && !group)
      printStateBytes(*ranks, program, errs());
  }
  if (!ranks) {
    CpuExecutor<float>::Holding all;
    all.reuseBuffers = !noBufferReuse;
    single = check(CpuExecutor<float>::create(program, all));
    failOn(prepare(*single), "loading the checkpoint");
    master = &*single;
  }
  if (resume && !quiet)
    errs() << "octet-run: resumed from " << ckpt->directory << " (step "
           << ckpt->step << ")\n";
  ckpt.reset(); // its files' mappings
  CpuExecutor<float> &exec = *master;
  if (!ranks && !tracePath.empty())
    fail("--trace records pipeline ranks: this program has one stage (or "
         "--pipeline is not threads)");
  std::vector<Batch> microBatches(s.microBatches);
  for (uint64_t step = firstStep; step <= lastStep; ++step) {
    if (!ranks)
      exec.zeroGradients();
    double objective = 0, loss = 0;
    std::vector<float> microBatchLosses;
    if (ranks) {
      for (Batch &b : microBatches)
        loader.next(b);
      for (const auto &l : check(ranks->step(microBatches),
                                 "running step " + std::to_string(step))) {
        objective += l.objective;
        loss += l.main;
        microBatchLosses.push_back(l.objective);
      }
    }
    for (uint64_t mb = 0; mb < s.microBatches && !ranks; ++mb) {
      loader.next(batch);
      float main = 0;
      float l = staged ? runStagedLoss(exec, stages, batch, &main)
                       : runLoss(exec, "forward_backward", batch, &main);
      objective += l;
      loss += main;
      microBatchLosses.push_back(l);
    }
    objective /= double(s.microBatches);
    loss /= double(s.microBatches);
    // The step's reduced gradient, on the rank that updates the parameter.
    auto gradient = [&](const Parameter &p) {
      return ranks ? ranks->gradient(p.name) : exec.gradient(p.name);
    };
    // The step's loss is the mean over micro-batches: so is its gradient.
    if (s.microBatches > 1 && ranks)
      ranks->divideGradients(float(s.microBatches));
    else if (s.microBatches > 1)
      for (const Parameter &p : program.parameters)
        if (auto g = exec.gradient(p.name))
          for (float &v : *g)
            v /= float(s.microBatches);
    // Those the master does not update come from their updaters.
    std::map<std::string, std::vector<float>> gathered;
    if (!gradientsPath.empty() && step == firstStep && ranks)
      gathered =
          check(ranks->gatherGradients(), "gathering the reduced gradients");
    if (!gradientsPath.empty() && step == firstStep && leader) {
      std::vector<Tensor> grads;
      for (const Parameter &p : program.parameters) {
        auto it = gathered.find(p.name);
        if (it != gathered.end())
          grads.push_back(
              Tensor::of<float>(p.name, DType::F32, p.shape, it->second));
        else if (auto g = gradient(p))
          grads.push_back(
              Tensor::of<float>(p.name, DType::F32, p.shape,
                                ArrayRef<float>(g->data(), g->size())));
      }
      // The micro-batches' losses too, exactly (C99 hexadecimal floats).
      std::string losses;
      for (float l : microBatchLosses)
        losses += (losses.empty() ? "" : ",") + formatv("{0}", format("%a", double(l))).str();
      failOn(writeSafetensors(gradientsPath, grads,
                              {{"micro_batch_losses", losses}}),
             "writing the gradients to " + gradientsPath);
    }
    if (!std::isfinite(objective))
      fail(formatv("the loss is {0} at step {1}: training diverged", objective,
                   step));
    double lr = learningRate(s, step, lastStep);
    if (ranks) {
      // Every rank updates its parameters, and sends them where they are
      // read.
      failOn(ranks->optimizerStep(float(lr), int64_t(step)),
             "running the optimizer step");
    } else {
      check(exec.run("optimizer_step",
                     {CpuExecutor<float>::Argument::scalar(float(lr)),
                      CpuExecutor<float>::Argument::integer(int64_t(step))}),
            "running @optimizer_step");
    }
    // The checkpoint before the other ranks go on: as processes, they wait
    // in awaitCheckpoint() (not in the next step's first transfer, which is
    // bounded by --pipeline-timeout) while rank 0 writes it.
    if (!checkpointDir.empty() && every && step % every == 0 &&
        step != lastStep) {
      GatheredState state = gatherState();
      if (leader)
        saveAt(step, std::move(state));
    }
    if (ranks)
      failOn(ranks->awaitCheckpoint(),
             "waiting for the checkpoint of step " + std::to_string(step));

    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start).count();
    uint64_t done = step - firstStep + 1;
    double tokensPerSecond = double(done * tokensPerStep) / elapsed;
    ema = done == 1 ? loss : 0.9 * ema + 0.1 * loss;
    lastLoss = loss;
    if (log)
      *log << formatv("{{\"step\": {0}, \"loss\": {1:f6}, \"loss_ema\": "
                      "{2:f6}, \"objective\": {3:f6}, \"lr\": {4:e}, "
                      "\"tokens_per_s\": {5:f1}, \"elapsed_s\": {6:f2}}\n",
                      step, loss, ema, objective, lr, tokensPerSecond, elapsed);
    if (log)
      log->flush(); // Whole lines, for whoever tails the log.

    if (!quiet) {
      double eta = elapsed / double(done) * double(lastStep - step);
      std::string line = formatv(
          "step {0}/{1}  loss {2:f4} (ema {3:f4})  lr {4:e2}  {5} tok/s{6}  "
          "ETA {7}",
          step, lastStep, loss, ema, lr, formatRate(tokensPerSecond),
          s.flopsPerStep > 0 ? formatv("  {0:f1} GFLOP/s",
                                       s.flopsPerStep * done / elapsed * 1e-9)
                                   .str()
                             : std::string(),
          formatDuration(eta));
      if (terminal) {
        const int width = 24;
        int filled = int(width * double(step) / double(lastStep));
        errs() << "\r[" << std::string(filled, '=')
               << std::string(width - filled, ' ') << "] " << line << "\x1b[K";
      } else if (step == lastStep || done == 1 ||
                 std::chrono::duration<double>(now - lastReport).count() >
                     10.0) {
        errs() << line << "\n";
        lastReport = now;
      }
    }
  }
  if (terminal)
    errs() << "\n";
  GatheredState finalState;
  if (!checkpointDir.empty())
    finalState = gatherState();
  if (ranks)
    failOn(ranks->finish(), "gathering the ranks' events");
  if (!leader)
    return 0;
  if (!checkpointDir.empty())
    saveAt(lastStep, std::move(finalState));

  double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  uint64_t trained = lastStep - firstStep + 1;
  outs() << formatv("trained steps {0}..{1} ({2} tokens) in {3}: final loss "
                    "{4:f4}, smoothed {5:f4}; {6} tokens/s",
                    firstStep, lastStep, trained * tokensPerStep,
                    formatDuration(total), lastLoss, ema,
                    formatRate(double(trained * tokensPerStep) / total));
  if (!checkpointDir.empty())
    outs() << formatv("; checkpoint {0}/step-{1}", checkpointDir, lastStep);
  outs() << "\n";
  if (ranks)
    reportPipeline(*ranks, int64_t(lastStep - firstStep + 1));
  if (ranks && group)
    printStateBytes(*ranks, program, outs());
  reportGemmEngines(engines);
  return 0;
}

/// The ranks --nproc started, for the signal handler: SIGINT and SIGTERM
/// go on to them, so that none outlives octet-run.
std::vector<pid_t> *startedRanks = nullptr;
extern "C" void passSignalOn(int signal) {
  if (startedRanks)
    for (pid_t pid : *startedRanks)
      ::kill(pid, signal);
}

/// --nproc N: runs this command line as N processes, rank r with
/// OCTET_RANK=r, meeting in a fresh directory, and waits for them all;
/// fails when any of them does, naming it.
int launchRanks(const Program &program, int argc, char **argv) {
  int64_t n = programRanks(program);
  if (int64_t(nproc) != n)
    fail(formatv("--nproc {0}: the program runs {1} rank(s) (pipeline.ranks "
                 "x pipeline.dp); pass --nproc {1}",
                 unsigned(nproc), n));
  if (gradcheck)
    fail("--gradcheck runs in one process; it does not take --nproc");
  checkProcessOptions(program);
  // The ranks meet in a fresh directory, or where OCTET_RENDEZVOUS says
  // when it is tcp://HOST:PORT.
  SmallString<128> dir;
  const char *given = std::getenv("OCTET_RENDEZVOUS");
  bool tcp = given && StringRef(given).starts_with("tcp://");
  if (tcp)
    dir = given;
  else if (std::error_code ec =
               sys::fs::createUniqueDirectory("octet-run", dir))
    fail("creating the ranks' rendezvous directory: " + ec.message());
  auto removeDir = [&] {
    if (!tcp)
      sys::fs::remove_directories(dir);
  };
  std::string self = sys::fs::getMainExecutable(
      argv[0], reinterpret_cast<void *>(&launchRanks));
  std::vector<StringRef> args(argv, argv + argc);
  // The children's environment: this one's, less other rank variables.
  std::vector<std::string> inherited;
  for (char **e = environ; *e; ++e) {
    StringRef v(*e);
    if (!v.starts_with("OCTET_RANK=") && !v.starts_with("OCTET_WORLD_SIZE=") &&
        !v.starts_with("OCTET_RENDEZVOUS="))
      inherited.push_back(v.str());
  }
  std::vector<sys::ProcessInfo> children;
  static std::vector<pid_t> pids;
  pids.reserve(size_t(n)); // no reallocation under the signal handler
  startedRanks = &pids;
  struct sigaction pass {};
  pass.sa_handler = passSignalOn;
  ::sigaction(SIGINT, &pass, nullptr);
  ::sigaction(SIGTERM, &pass, nullptr);
  for (int64_t r = 0; r < n; ++r) {
    std::vector<std::string> env = inherited;
    env.push_back("OCTET_RANK=" + std::to_string(r));
    env.push_back("OCTET_WORLD_SIZE=" + std::to_string(n));
    env.push_back(("OCTET_RENDEZVOUS=" + dir).str());
    std::vector<StringRef> envRefs(env.begin(), env.end());
    std::string error;
    bool failed = false;
    sys::ProcessInfo child =
        sys::ExecuteNoWait(self, args, envRefs, {}, 0, &error, &failed);
    if (failed) {
      for (const sys::ProcessInfo &c : children)
        ::kill(c.Pid, SIGTERM);
      removeDir();
      fail(formatv("--nproc: starting rank {0}: {1}", r, error));
    }
    children.push_back(child);
    pids.push_back(child.Pid);
  }
  // The ranks in the order they end. After one fails the others end on
  // their own (they see it), within their timeouts; one that does not is
  // killed.
  int status = 0;
  std::vector<bool> ended(size_t(n), false), killed(size_t(n), false);
  std::optional<std::chrono::steady_clock::time_point> killAt;
  int64_t left = n;
  auto report = [](int64_t r, const Twine &what) {
    printError("octet-run", "rank " + Twine(r) + " " + what);
  };
  while (left > 0) {
    int wstatus = 0;
    pid_t pid = ::waitpid(-1, &wstatus, killAt ? WNOHANG : 0);
    if (pid < 0 && errno == EINTR)
      continue;
    if (pid < 0)
      break;
    if (pid == 0) {
      if (std::chrono::steady_clock::now() > *killAt) {
        for (int64_t r = 0; r < n; ++r)
          if (!ended[r]) {
            ::kill(pids[r], SIGKILL);
            killed[r] = true;
            report(r, "did not end after another rank failed: killed");
          }
        killAt = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    auto it = std::find(pids.begin(), pids.end(), pid);
    if (it == pids.end())
      continue;
    int64_t r = it - pids.begin();
    ended[r] = true;
    --left;
    if ((WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) || killed[r])
      continue;
    if (WIFEXITED(wstatus))
      report(r, formatv("exited with status {0}", WEXITSTATUS(wstatus)));
    else if (WIFSIGNALED(wstatus))
      report(r, formatv("was killed by signal {0} ({1})", WTERMSIG(wstatus),
                        strsignal(WTERMSIG(wstatus))));
    status = 1;
    if (!killAt)
      killAt = std::chrono::steady_clock::now() +
               2 * std::chrono::seconds(pipelineTimeout) +
               std::chrono::seconds(10);
  }
  startedRanks = nullptr;
  removeDir();
  return status;
}

} // namespace

int main(int argc, char **argv) {
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "Octet training runner: trains with a program compiled by octetc\n");

  if (steps == 0 && !gradcheck)
    fail("--steps must be at least 1");
  if (device != "cpu" && device != "auto" && device != "cuda")
    fail("--device must be cpu, cuda or auto, got '" + device + "'");
  if (emulateKernels && device == "cuda")
    fail("--emulate-gemm-kernels runs the GPU kernels' arithmetic on the "
         "CPU: use it with --device cpu, not cuda");
  if (gradcheck && (device == "cuda" || emulateKernels))
    fail("--gradcheck compares FP64 gradients on the CPU; it takes neither "
         "--device cuda nor --emulate-gemm-kernels");
  if (!kernelsPath.empty() && device != "cuda")
    fail("--kernels names the GEMM kernels of --device cuda");
  if (virtualRanks && device != "cuda")
    fail("--virtual-ranks puts the ranks' GPU work on one GPU: use it with "
         "--device cuda (on the CPU, ranks are threads already)");

  std::string text, source;
  if (std::optional<std::string> embedded = embeddedProgram()) {
    if (!bundlePath.empty())
      fail("this executable carries its program; do not pass a bundle");
    text = std::move(*embedded);
    source = sys::fs::getMainExecutable(argv[0], nullptr);
  } else {
    if (bundlePath.empty())
      fail("no program: pass the bundle octetc wrote (octetc MODEL "
           "--emit=bundle -o FILE)");
    auto file = MemoryBuffer::getFile(bundlePath, /*IsText=*/true);
    if (!file)
      fail("cannot read bundle '" + bundlePath +
           "': " + file.getError().message());
    text = (*file)->getBuffer().str();
    source = bundlePath;
  }
  Program program = check(parseProgram(text, source));
  std::string digest = utohexstr(xxh3_64bits(text));

  // --nproc starts the ranks; a rank it started (OCTET_RANK set) trains.
  if (nproc && !std::getenv("OCTET_RANK")) {
    if (check(ProcessGroup::optionsFromEnvironment(), "the rank variables"))
      fail("--nproc starts the ranks itself; under mpirun or srun, leave it "
           "out");
    return launchRanks(program, argc, argv);
  }
  if (gradcheck)
    return runGradcheck(program);
  return runTraining(program, digest);
}
