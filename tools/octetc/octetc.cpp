//===- octetc.cpp - The Octet compiler driver -----------------------------===//
//
// octetc MODEL [--train TRAIN.json] [--emit=STAGE] [-o OUT] [--plan]
//
// MODEL is a Hugging Face style DeepSeek-V3 config.json or a graph in the
// octet dialect (.mlir). octetc builds and verifies the forward graph, runs
// the precision recipe and autodiff, and writes the training step as an
// executable (a copy of octet-run carrying the program) or, with
// --emit=bundle, as a program document for octet-run; --emit=<stage> stops
// after a stage and prints it, --plan plans a training step.
//
// Every error is one line naming the file (and line) at fault and exits with
// status 1; -o is written through a temporary file and a rename, so an error
// never leaves a partial output behind.
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Frontends/GraphBuilder.h"
#include "octet/Frontends/ModelConfig.h"
#include "octet/Frontends/Plan.h"
#include "octet/Frontends/TrainConfig.h"
#include "octet/InitAll.h"
#include "octet/Schedule/PipelineSchedule.h"
#include "octet/Target/CUDA/GemmKernel.h"
#include "octet/Target/TrainingPipeline.h"
#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileOutputBuffer.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

using namespace llvm;
using namespace octet;

namespace {

cl::OptionCategory octetcCategory("octetc options");

cl::opt<std::string> modelPath(cl::Positional,
                               cl::desc("<MODEL: config.json or graph .mlir>"),
                               cl::cat(octetcCategory));

cl::opt<std::string> trainPath(
    "train",
    cl::desc("Training configuration (JSON); without it the documented "
             "defaults of docs/octetc.md apply"),
    cl::value_desc("TRAIN.json"), cl::cat(octetcCategory));

cl::opt<std::string> emitStage(
    "emit",
    cl::desc("Stop after a stage and print it: graph (the verified forward "
             "graph), training (after the recipe and autodiff), quantized "
             "(FP8 GEMMs lowered to octet_tq), scheduled (plus every "
             "pipeline rank's actions and transfers as octet_pipe IR), "
             "kernels (plus the generated "
             "Hopper GEMM kernels in NVVM IR), ptx or cubin (those kernels "
             "compiled for sm_90a), program or bundle (the program document "
             "octet-run takes). Without --emit: an executable"),
    cl::value_desc("stage"), cl::cat(octetcCategory));

cl::opt<int64_t> numSMs(
    "num-sms",
    cl::desc("Multiprocessors of the target GPU, for the GEMM tile "
             "heuristic of --emit=kernels, ptx and cubin (H100 SXM: 132)"),
    cl::init(132), cl::cat(octetcCategory));

cl::opt<bool> gemmOverlap(
    "gemm-overlap",
    cl::desc("Give the FP8 GEMM kernels of --emit=kernels, ptx and cubin "
             "the overlapped promotion schedule (the next interval's wgmmas "
             "start before the current one is promoted; not yet measured on "
             "a GPU)"),
    cl::init(false), cl::cat(octetcCategory));

cl::opt<std::string> cudaPath(
    "cuda-path",
    cl::desc("CUDA toolkit whose ptxas assembles --emit=cubin"),
    cl::value_desc("dir"), cl::init(OCTET_CUDA_TOOLKIT_DIR),
    cl::cat(octetcCategory));

cl::opt<std::string> kernelManifest(
    "kernel-manifest",
    cl::desc("With --emit=ptx or cubin: also write, as JSON, which kernel "
             "computes each FP8 GEMM (function, shape, operands to "
             "transpose) and each quantization (shape, granularity)"),
    cl::value_desc("FILE.json"), cl::cat(octetcCategory));

cl::opt<std::string>
    recipeOption("recipe",
                 cl::desc("Precision recipe, overriding the training config's: "
                          "deepseek-v3, bf16 or f32"),
                 cl::value_desc("name"), cl::cat(octetcCategory));

cl::opt<std::string> outputPath("o",
                                cl::desc("Output file, '-' for stdout; "
                                         "written atomically"),
                                cl::value_desc("OUT"), cl::init("-"),
                                cl::cat(octetcCategory));

cl::opt<bool> planMode("plan",
                       cl::desc("Print parameters, FLOPs per training step "
                                "and memory per rank, then stop"),
                       cl::cat(octetcCategory));

cl::opt<std::string> scheduleName(
    "schedule",
    cl::desc("With --plan: print the per-rank order of a pipeline schedule "
             "(1f1b, zb1p, interleaved-1f1b, dualpipe, dualpipev) for --pp "
             "ranks and --microbatches"),
    cl::value_desc("name"), cl::cat(octetcCategory));
cl::opt<int64_t> ppOption("pp", cl::desc("Pipeline ranks, for --schedule"),
                          cl::init(0), cl::cat(octetcCategory));
cl::opt<int64_t>
    microbatchesOption("microbatches",
                       cl::desc("Micro-batches per step, for --schedule"),
                       cl::init(0), cl::cat(octetcCategory));

cl::opt<std::string> scheduleCSV(
    "schedule-csv",
    cl::desc("With --schedule: also write the schedule as CSV in PyTorch "
             "pipelining's format (one row per rank)"),
    cl::value_desc("file"), cl::cat(octetcCategory));

cl::opt<bool> simulateOption(
    "simulate",
    cl::desc("With --schedule: instead of the order, simulate it and print "
             "the makespan, each rank's bubble, peak live activations and "
             "point-to-point messages"),
    cl::cat(octetcCategory));
cl::opt<std::string>
    costsOption("costs",
                cl::desc("With --simulate: durations F,B,I,W[,F&B] (default "
                         "1,2,1,1: the balanced case; F&B defaults to F+B)"),
                cl::value_desc("F,B,I,W"), cl::init("1,2,1,1"),
                cl::cat(octetcCategory));

cl::opt<std::string> dtypeName(
    "dtype", cl::desc("Activation type of the graph: f32 (default) or bf16"),
    cl::value_desc("f32|bf16"), cl::init("f32"), cl::cat(octetcCategory));

constexpr StringLiteral kTool = "octetc";

/// Prints "octetc: error: <message>" and returns the exit status 1.
int fail(const Twine &message) {
  WithColor::error(errs(), kTool) << message << "\n";
  return 1;
}
int fail(Error err) { return fail(toString(std::move(err))); }

void printTrainWarnings(const TrainConfig &train) {
  for (const ConfigNote &note : train.unknownKeys)
    WithColor::warning(errs(), kTool)
        << train.source << ":" << note.line << ": unknown key '" << note.key
        << "' ignored: " << note.message << "\n";
}

/// Writes `module` to -o through a temporary file.
int writeModule(mlir::ModuleOp module, bool namesFromLocations) {
  mlir::OpPrintingFlags flags;
  // Built graphs name every value after its role (l3_q_rot, ...), like the
  // hand-written examples.
  if (namesFromLocations)
    flags.printNameLocAsPrefix();
  if (Error err = writeToOutput(outputPath, [&](raw_ostream &os) {
        module.print(os, flags);
        os << "\n";
        return Error::success();
      }))
    return fail(std::move(err));
  return 0;
}

/// Writes `bytes` to -o through a temporary file; executable if asked.
int writeBytes(StringRef bytes, bool executable) {
  if (outputPath == "-") {
    outs() << bytes;
    return 0;
  }
  Expected<std::unique_ptr<FileOutputBuffer>> out =
      FileOutputBuffer::create(outputPath, bytes.size(),
                               executable ? FileOutputBuffer::F_executable : 0);
  if (!out)
    return fail("cannot write '" + outputPath +
                "': " + toString(out.takeError()));
  std::copy(bytes.begin(), bytes.end(), (*out)->getBufferStart());
  if (Error err = (*out)->commit())
    return fail("cannot write '" + outputPath +
                "': " + toString(std::move(err)));
  return 0;
}

/// A number as text that reads back to the same double.
std::string exactNumber(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  return buffer;
}

/// An op's location as the manifest names it.
std::string locationText(mlir::Operation *op) {
  std::string loc;
  raw_string_ostream os(loc);
  op->getLoc().print(os);
  return loc;
}

/// What every GEMM entry has: where the GEMM is, its operands'
/// granularities, which operands the runtime transposes (as the generator
/// recorded) and its kernel; none for a GEMM without a generated kernel.
std::optional<json::Object> gemmEntry(mlir::Operation *op) {
  auto kernel = op->getAttrOfType<mlir::SymbolRefAttr>("octet_tq.kernel");
  if (!kernel)
    return std::nullopt;
  auto transposed =
      op->getAttrOfType<mlir::DenseBoolArrayAttr>("octet_tq.transposed");
  auto granularity = [&](unsigned i) {
    auto type = cast<tq::QTensorType>(op->getOperand(i).getType());
    return tq::stringifyGranularity(type.getGranularity()).str();
  };
  auto func = op->getParentOfType<mlir::func::FuncOp>();
  return json::Object{
      {"function", func ? func.getSymName().str() : ""},
      {"location", locationText(op)},
      {"lhs", granularity(0)},
      {"rhs", granularity(1)},
      {"transpose_lhs", transposed && transposed[0]},
      {"transpose_rhs", transposed && transposed[1]},
      {"kernel", kernel.getLeafReference().str()},
  };
}

/// One entry per generated GEMM: where it is, its shape and its kernel.
void writeKernelManifest(mlir::ModuleOp module, raw_ostream &os) {
  json::Array gemms;
  module.walk([&](tq::ScaledMatmulOp op) {
    std::optional<json::Object> entry = gemmEntry(op);
    if (!entry)
      return;
    ArrayRef<int64_t> out = op.getResult().getType().getShape();
    (*entry)["m"] = out[0];
    (*entry)["n"] = out[1];
    (*entry)["k"] = op.getLhs().getType().getShape()[op.getLhsContractingDim()];
    gemms.push_back(std::move(*entry));
  });
  module.walk([&](tq::GroupedScaledMatmulOp op) {
    std::optional<json::Object> entry = gemmEntry(op);
    if (!entry)
      return;
    ArrayRef<int64_t> w = op.getRhs().getType().getShape();
    ArrayRef<int64_t> out = op.getResult().getType().getShape();
    (*entry)["m"] = out[0];
    (*entry)["n"] = out[1];
    (*entry)["k"] = w[op.getRhsContractingDim()];
    (*entry)["groups"] = w[0];
    (*entry)["grouping"] = "m";
    gemms.push_back(std::move(*entry));
  });
  module.walk([&](tq::KGroupedScaledMatmulOp op) {
    std::optional<json::Object> entry = gemmEntry(op);
    if (!entry)
      return;
    ArrayRef<int64_t> out = op.getResult().getType().getShape();
    (*entry)["m"] = out[1];
    (*entry)["n"] = out[2];
    (*entry)["k"] = op.getLhs().getType().getShape()[0];
    (*entry)["groups"] = out[0];
    (*entry)["grouping"] = "k";
    gemms.push_back(std::move(*entry));
  });
  json::Array quantizations;
  module.walk([&](mlir::Operation *op) {
    if (!isa<tq::QuantizeOp, tq::RequantizeTransposedOp, tq::RMSNormQuantizeOp,
             tq::SwiGLUQuantizeOp>(op))
      return;
    auto kernel = op->getAttrOfType<mlir::SymbolRefAttr>("octet_tq.kernel");
    if (!kernel)
      return;
    auto type = cast<tq::QTensorType>(op->getResult(0).getType());
    ArrayRef<int64_t> shape = type.getShape();
    int64_t batch = 1;
    for (int64_t d : shape.drop_back(2))
      batch *= d;
    auto func = op->getParentOfType<mlir::func::FuncOp>();
    json::Object entry{
        {"function", func ? func.getSymName().str() : ""},
        {"batch", batch},
        {"rows", shape[shape.size() - 2]},
        {"cols", shape.back()},
        {"granularity", tq::stringifyGranularity(type.getGranularity()).str()},
        {"kernel", kernel.getLeafReference().str()},
    };
    if (auto norm = dyn_cast<tq::RMSNormQuantizeOp>(op))
      entry["epsilon"] = norm.getEpsilon().convertToDouble();
    quantizations.push_back(std::move(entry));
  });
  os << formatv("{0:2}", json::Value(json::Object{
                             {"gemms", std::move(gemms)},
                             {"quantizations", std::move(quantizations)}}))
     << "\n";
}

bool isKernelStage() {
  return emitStage == "kernels" || emitStage == "ptx" || emitStage == "cubin";
}

/// --emit=kernels, ptx, cubin: generates the Hopper kernels of the lowered
/// module's FP8 GEMMs and writes them as IR, PTX or a cubin.
int emitKernels(mlir::ModuleOp module, const Twine &recipe) {
  if (numSMs <= 0)
    return fail("--num-sms=" + std::to_string(numSMs) + " must be positive");
  // The kernel generators' and the GPU pipeline's errors name the op or the
  // kernel; printing the whole operation would bury them.
  module.getContext()->printOpOnDiagnostic(false);
  if (failed(cuda::generateGemmKernels(module, numSMs, gemmOverlap)))
    return 1; // diagnosed at the op
  auto kernels = module.lookupSymbol<mlir::gpu::GPUModuleOp>("octet_kernels");
  if (!kernels)
    return fail("the model has no FP8 GEMM or quantization under " + recipe +
                ": there are no kernels to emit");
  if (emitStage == "kernels")
    return writeModule(module, /*namesFromLocations=*/true);
  if (emitStage == "cubin" && !cudaPath.empty()) {
    SmallString<256> ptxas(cudaPath.getValue());
    sys::path::append(ptxas, "bin", "ptxas");
    if (!sys::fs::can_execute(ptxas))
      return fail("--cuda-path=" + cudaPath + ": no ptxas at " + ptxas +
                  "; --emit=cubin needs the CUDA toolkit (or use --emit=ptx)");
  }
  // Lower the kernels alone; the training functions stay out of it.
  mlir::OpBuilder b(module.getContext());
  mlir::OwningOpRef<mlir::ModuleOp> device =
      mlir::ModuleOp::create(module.getLoc());
  (*device)->setAttr(mlir::gpu::GPUDialect::getContainerModuleAttrName(),
                     b.getUnitAttr());
  b.setInsertionPointToEnd(device->getBody());
  b.clone(*kernels);
  if (failed(cuda::compileGpuModules(*device,
                                     emitStage == "ptx"
                                         ? cuda::BinaryFormat::PTX
                                         : cuda::BinaryFormat::Cubin,
                                     cudaPath)))
    return 1;
  auto binary = device->lookupSymbol<mlir::gpu::BinaryOp>("octet_kernels");
  auto object = cast<mlir::gpu::ObjectAttr>(binary.getObjects()[0]);
  if (!kernelManifest.empty())
    if (Error err = writeToOutput(kernelManifest, [&](raw_ostream &os) {
          writeKernelManifest(module, os);
          return Error::success();
        }))
      return fail(std::move(err));
  return writeBytes(object.getObject().getValue(), /*executable=*/false);
}

/// The stages after the graph: the recipe and autodiff, then IR or a
/// program, bundle or executable.
int emitTraining(mlir::ModuleOp module, const TrainConfig &train,
                 int64_t vocabSize, double flopsPerStep, StringRef name) {
  TrainingPipelineOptions options;
  options.recipe = recipeOption.empty() ? stringifyRecipe(train.recipe).str()
                                        : recipeOption.getValue();
  options.overridePrecision = !recipeOption.empty();
  options.beta1 = train.optimizer.betas[0];
  options.beta2 = train.optimizer.betas[1];
  options.eps = train.optimizer.eps;
  options.weightDecay = train.optimizer.weightDecay;
  options.lowerFP8 = emitStage == "quantized" || isKernelStage();
  options.expertParallel = train.ep;
  for (const PrecisionOverride &o : train.overrides)
    options.overrides.push_back(
        {o.op, o.format, train.source + ":" + std::to_string(o.line)});
  if (failed(runTrainingPipeline(module, options)))
    return 1; // diagnosed at the op
  if (emitStage == "training" || emitStage == "quantized")
    return writeModule(module, /*namesFromLocations=*/true);
  if (emitStage == "scheduled") {
    // The ranks' actions and transfers under the training config's
    // schedule, next to the per-stage functions they run.
    mlir::PassManager pm(module.getContext());
    InsertPipelineCommPassOptions comm;
    comm.scheduleName = stringifySchedule(train.schedule).str();
    comm.numRanks = train.pp;
    comm.numMicrobatches = train.microBatches;
    comm.numChunks = getChunksPerRank(train.schedule);
    pm.addPass(createInsertPipelineCommPass(comm));
    if (failed(pm.run(module)))
      return 1;
    return writeModule(module, /*namesFromLocations=*/true);
  }
  if (isKernelStage())
    return emitKernels(module, "recipe '" + options.recipe + "'");

  std::map<std::string, std::string> settings = {
      {"model.name", name.str()},
      {"model.vocab_size", std::to_string(vocabSize)},
      {"train.recipe", options.recipe},
      {"train.micro_batches", std::to_string(train.microBatches)},
      // The pipeline schedule the ranks follow (programs with stages).
      {"pipeline.schedule", stringifySchedule(train.schedule).str()},
      {"pipeline.ranks", std::to_string(train.pp)},
      {"pipeline.dp", std::to_string(train.dp)},
      // Expert-parallel groups, formed from the data-parallel replicas.
      {"pipeline.ep", std::to_string(train.ep)},
      // ZeRO stage: 1 shards the optimizer over the replicas.
      {"pipeline.zero", std::to_string(train.zero)},
      {"train.lr", exactNumber(train.optimizer.lr)},
      {"train.warmup_steps", std::to_string(train.optimizer.warmupSteps)},
      {"train.seed", std::to_string(train.seed ? train.seed : 1)},
      {"train.flops_per_step", exactNumber(flopsPerStep)},
  };
  mlir::FailureOr<runtime::Program> program = compileProgram(module, settings);
  if (failed(program))
    return 1;
  std::string text;
  raw_string_ostream os(text);
  os << formatv("{0:2}", runtime::toJSON(*program)) << "\n";
  if (!emitStage.empty())
    return writeBytes(text, /*executable=*/false);

  // An executable: a copy of octet-run (installed beside octetc) with the
  // program appended, then its size and a magic that octet-run looks for.
  static int anchor;
  std::string self = sys::fs::getMainExecutable(nullptr, (void *)&anchor);
  SmallString<256> runner(sys::path::parent_path(self));
  sys::path::append(runner, "octet-run");
  ErrorOr<std::unique_ptr<MemoryBuffer>> stub = MemoryBuffer::getFile(
      runner, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!stub)
    return fail("cannot read the runtime '" + runner + "' (" +
                stub.getError().message() +
                "): an executable is octet-run with the program appended; "
                "use --emit=bundle to write the program alone");
  std::string exe = (*stub)->getBuffer().str();
  exe += text;
  uint64_t size = text.size();
  exe.append(reinterpret_cast<const char *>(&size), 8);
  exe += "OCTETPRG";
  return writeBytes(exe, /*executable=*/true);
}

/// Per-stage cost multipliers of a schedule from the model's pipeline
/// chunks (config.json models): each stage's chunk FLOPs over the mean.
Expected<std::vector<double>> getStageScale(const schedule::Schedule &s) {
  if (s.kind == schedule::Kind::Custom)
    return createStringError("--simulate with a model needs a built-in "
                             "--schedule: a custom CSV does not say which "
                             "layers its stages hold");
  if (StringRef(modelPath).ends_with(".mlir"))
    return createStringError("--simulate with a model needs a config.json; " +
                             modelPath + " is a graph");
  Expected<ModelConfig> model = loadModelConfig(modelPath);
  if (!model)
    return model.takeError();
  ModelFacts facts = ModelFacts::fromModel(*model);
  TrainConfig train;
  if (!trainPath.empty()) {
    Expected<TrainConfig> loaded = loadTrainConfig(trainPath, facts);
    if (!loaded)
      return loaded.takeError();
    train = std::move(*loaded);
  }
  // The layout is the flags', whatever the training config says.
  train.pp = s.ranks;
  train.schedule = *parseSchedule(schedule::kindName(s.kind));
  int64_t chunks = s.kind == schedule::Kind::DualPipe ? s.ranks : s.stages;
  if (chunks > model->numHiddenLayers)
    return createStringError(
        formatv("--schedule {0} --pp {1} needs {2} chunks; {3} has {4} "
                "decoder layers",
                schedule::kindName(s.kind), s.ranks, chunks, modelPath,
                model->numHiddenLayers)
            .str());
  if (!train.stageLayers.empty() && int64_t(train.stageLayers.size()) != chunks)
    return createStringError(
        formatv("{0}: parallel.stage_layers gives {1} chunk(s); --schedule "
                "{2} --pp {3} needs {4}",
                train.where("parallel.stage_layers"), train.stageLayers.size(),
                schedule::kindName(s.kind), s.ranks, chunks)
            .str());
  std::vector<PipelineChunk> parts = getPipelineChunks(*model, train);
  double mean = 0;
  for (const PipelineChunk &part : parts)
    mean += part.flopsPerToken / static_cast<double>(parts.size());
  std::vector<double> scale(s.stages);
  for (int64_t stage = 0; stage < s.stages; ++stage)
    // DualPipe's copy 1 stage N+s runs the model's chunk s.
    scale[stage] = parts[stage % chunks].flopsPerToken / mean;
  return scale;
}

/// The model is a config.json: parse, check, then plan or build.
int runOnConfig(mlir::MLIRContext &context, ActivationType dtype) {
  Expected<ModelConfig> model = loadModelConfig(modelPath);
  if (!model)
    return fail(model.takeError());
  model->notes.print(errs(), kTool, model->fileName);

  ModelFacts facts = ModelFacts::fromModel(*model);
  TrainConfig train;
  if (!trainPath.empty()) {
    Expected<TrainConfig> loaded = loadTrainConfig(trainPath, facts);
    if (!loaded)
      return fail(loaded.takeError());
    train = std::move(*loaded);
    printTrainWarnings(train);
  } else if (Error err = verifyTrainConfig(train, facts)) {
    return fail(std::move(err));
  }

  if (planMode)
    printPlan(outs(), *model, train, dtype);
  if (planMode && emitStage.empty())
    return 0;

  GraphOptions options;
  options.batch = train.getMicroBatchSize();
  options.sequenceLength = train.sequenceLength;
  options.dtype = dtype;
  options.mtpLossWeight = train.mtpLossWeight;
  std::vector<PipelineChunk> parts = getPipelineChunks(*model, train);
  if (parts.size() > 1)
    for (const PipelineChunk &part : parts)
      options.stageLayers.push_back(part.numLayers);
  // Verification failures are reported through the context's handler.
  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      buildForwardGraph(context, *model, options);
  if (!module)
    return fail(model->fileName + ": the generated graph does not verify "
                                  "(an octetc bug: please report it)");
  if (emitStage == "graph")
    return writeModule(*module, /*namesFromLocations=*/true);
  return emitTraining(*module, train, model->vocabSize,
                      countStepFlops(*model, train).getTotal(),
                      sys::path::stem(sys::path::parent_path(modelPath)));
}

/// The model is a graph: parse and verify, then plan or print it back.
int runOnGraph(mlir::MLIRContext &context) {
  std::string errorMessage;
  std::unique_ptr<MemoryBuffer> file =
      mlir::openInputFile(modelPath, &errorMessage);
  if (!file)
    return fail(errorMessage);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), SMLoc());
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1; // the handler printed file:line:col: error: ...

  // IR whose FP8 GEMMs are already lowered (--emit=quantized output, or
  // hand-written octet_tq GEMMs) goes straight to the kernel generator.
  bool lowered = false;
  module->walk([&](mlir::Operation *op) {
    lowered |= isa_and_present<tq::OctetTQDialect>(op->getDialect());
  });
  if (lowered) {
    if (!isKernelStage())
      return fail(modelPath +
                  " holds lowered octet_tq operations: octetc takes such IR "
                  "with --emit=kernels, ptx or cubin only");
    return emitKernels(*module, "the input IR");
  }

  Expected<GraphSummary> graph = summarizeGraph(*module, modelPath);
  if (!graph)
    return fail(graph.takeError());
  ModelFacts facts;
  facts.numRoutedExperts = graph->numRoutedExperts;
  facts.expertsWhere = modelPath;
  facts.numLayers = graph->numLayers;
  facts.layersWhere = modelPath;
  if (graph->numStages > 1) {
    facts.numStages = graph->numStages;
    facts.stagesWhere = modelPath + " (octet.num_stages)";
  }

  // The graph fixes the micro-batch shape; the defaults follow it.
  TrainConfig train;
  train.sequenceLength = graph->getSequenceLength();
  train.globalBatch = graph->batch;
  train.pp = graph->numStages;
  if (!trainPath.empty()) {
    Expected<TrainConfig> loaded = loadTrainConfig(trainPath, facts);
    if (!loaded)
      return fail(loaded.takeError());
    train = std::move(*loaded);
    printTrainWarnings(train);
    if (train.sequenceLength != graph->getSequenceLength())
      return fail(train.where("sequence_length") +
                  ": sequence_length = " + Twine(train.sequenceLength) +
                  " but the graph's %ids is " + Twine(graph->batch) + " x " +
                  Twine(graph->window) + " (sequence length " +
                  Twine(graph->getSequenceLength()) + ") in " + modelPath);
    if (train.getMicroBatchSize() != graph->batch)
      return fail(train.where("global_batch") + ": a micro-batch of " +
                  Twine(train.getMicroBatchSize()) +
                  " sequences (global_batch / (micro_batches x dp)) but the "
                  "graph's %ids has batch " +
                  Twine(graph->batch) + " in " + modelPath);
  } else if (Error err = verifyTrainConfig(train, facts)) {
    return fail(std::move(err));
  }

  if (planMode)
    printGraphPlan(outs(), *graph, modelPath, train);
  if (planMode && emitStage.empty())
    return 0;
  if (emitStage == "graph")
    return writeModule(*module, /*namesFromLocations=*/false);
  int64_t vocab = 0;
  module->walk([&](EmbeddingOp e) {
    vocab = std::max(vocab, e.getTable().getType().getDimSize(0));
  });
  return emitTraining(*module, train, vocab, /*flopsPerStep=*/0,
                      sys::path::stem(modelPath));
}

/// A config.json or a graph? By extension, else by the first character.
bool isConfigFile(StringRef path) {
  StringRef ext = sys::path::extension(path);
  if (ext == ".json")
    return true;
  if (ext == ".mlir")
    return false;
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer = MemoryBuffer::getFile(path);
  return buffer && (*buffer)->getBuffer().ltrim().starts_with("{");
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(octetcCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "octetc: the Octet compiler\n\n"
      "Compiles a model description into an FP8 training step. MODEL is a\n"
      "Hugging Face style DeepSeek-V3 config.json or a graph in the octet\n"
      "dialect (.mlir). Without --emit it writes an executable that trains\n"
      "the model (octet-run with the program inside); --emit=bundle writes\n"
      "the program for octet-run.\n\n"
      "Examples:\n"
      "  octetc examples/tiny-moe/config.json --train "
      "examples/tiny-moe/train.json -o tiny\n"
      "  ./tiny --data examples/data/kjv.txt --steps 300\n"
      "  octetc examples/tiny-moe/config.json --emit=graph -o tiny.mlir\n"
      "  octetc examples/tiny-moe/config.json --train "
      "examples/tiny-moe/train.json --plan\n"
      "  octetc examples/deepseek-v3/config.json --plan\n\n"
      "Config keys, defaults and formulas: docs/octetc.md\n");

  if (!scheduleName.empty()) {
    // The schedule alone: one line per rank, `rank R: 0F0, (0F1;7B0), ...`.
    if (!planMode)
      return fail("--schedule prints with --plan");
    std::string error;
    std::optional<schedule::Schedule> s;
    if (StringRef(scheduleName).ends_with(".csv")) {
      // A custom schedule: validated on import.
      ErrorOr<std::unique_ptr<MemoryBuffer>> csv =
          MemoryBuffer::getFile(scheduleName, /*IsText=*/true);
      if (!csv)
        return fail("cannot read schedule '" + scheduleName +
                    "': " + csv.getError().message());
      s = schedule::parseCSV((*csv)->getBuffer().str(), error);
      if (!s)
        return fail(scheduleName + ": " + error);
      ppOption = s->ranks;
      microbatchesOption = s->microbatches;
    } else {
      std::optional<schedule::Kind> kind = schedule::parseKind(scheduleName);
      if (!kind)
        return fail("--schedule=" + scheduleName +
                    " is not one of 1f1b, zb1p, interleaved-1f1b, dualpipe, "
                    "dualpipev (or a "
                    "schedule .csv)");
      if (ppOption < 1 || microbatchesOption < 1)
        return fail("--schedule needs --pp N and --microbatches C (positive)");
      s = schedule::build(*kind, ppOption, microbatchesOption, error);
      if (!s)
        return fail(error);
    }
    std::string problem =
        schedule::checkInvariants(*s) + schedule::checkDeadlockFree(*s);
    if (!problem.empty())
      return fail("the " + scheduleName + " schedule is inconsistent (an " +
                  "octetc bug): " + problem);
    if (!scheduleCSV.empty()) {
      std::string csv = schedule::toCSV(*s);
      if (Error err = writeToOutput(scheduleCSV, [&](raw_ostream &os) {
            os << csv;
            return Error::success();
          }))
        return fail(std::move(err));
    }
    if (!simulateOption) {
      outs() << s->str();
      return 0;
    }
    SmallVector<StringRef> parts;
    StringRef(costsOption).split(parts, ',');
    SmallVector<double> values;
    for (StringRef part : parts) {
      double v;
      if (part.trim().getAsDouble(v) || v < 0)
        return fail("--costs=" + costsOption +
                    ": expected non-negative numbers F,B,I,W[,F&B]");
      values.push_back(v);
    }
    if (values.size() != 4 && values.size() != 5)
      return fail("--costs=" + costsOption + ": expected 4 or 5 numbers");
    schedule::Costs costs{values[0], values[1], values[2], values[3],
                          std::nullopt};
    if (values.size() == 5)
      costs.forwardBackward = values[4];
    if (!modelPath.empty()) {
      // Scale each stage's durations by its chunk's FLOPs over the mean.
      Expected<std::vector<double>> scale = getStageScale(*s);
      if (!scale)
        return fail(scale.takeError());
      costs.stageScale = std::move(*scale);
    }
    schedule::Simulation sim = schedule::simulate(*s, costs);
    outs() << formatv(
        "{0} on {1} ranks, {2} micro-batches, costs F={3} B={4} "
        "I={5} W={6} F&B={7}: makespan {8}\n",
        scheduleName, ppOption, microbatchesOption, costs.forward,
        costs.backward, costs.inputGrad, costs.weightGrad,
        costs.forwardBackward.value_or(costs.forward + costs.backward),
        sim.makespan);
    if (!costs.stageScale.empty()) {
      outs() << "stage costs x chunk FLOPs / mean (" << modelPath << "):";
      for (double x : costs.stageScale)
        outs() << formatv(" {0:F2}", x);
      outs() << "\n";
    }
    for (size_t r = 0; r < sim.bubble.size(); ++r)
      outs() << formatv("rank {0}: busy {1}, bubble {2}, peak activations "
                        "{3}, sends {4} activations + {5} gradients\n",
                        r, sim.busy[r], sim.bubble[r], sim.peakActivations[r],
                        sim.activationSends[r], sim.gradientSends[r]);
    return 0;
  }
  if (modelPath.empty())
    return fail("no model: pass a config.json or a graph .mlir");

  static constexpr StringLiteral stages[] = {
      "graph",  "training",  "quantized", "kernels", "ptx",
      "cubin",  "scheduled", "program",   "bundle"};
  if (!emitStage.empty() && !llvm::is_contained(stages, emitStage)) {
    return fail("unknown stage '--emit=" + emitStage +
                "'; stages: graph, training, quantized, kernels, ptx, cubin, "
                "scheduled, program, bundle");
  }
  if (!recipeOption.empty() && recipeOption != "deepseek-v3" &&
      recipeOption != "bf16" && recipeOption != "f32")
    return fail("--recipe=" + recipeOption +
                " is not one of deepseek-v3, bf16, f32");
  // The executable and bundle run the runtime's built-in kernels.
  if (gemmOverlap && !isKernelStage())
    return fail("--gemm-overlap changes the kernels of --emit=kernels, ptx "
                "and cubin only");
  if (emitStage.empty() && !planMode && outputPath == "-")
    return fail("an executable needs a file name: -o OUT (or --emit=bundle "
                "to print the program)");
  if (planMode && !emitStage.empty() && outputPath == "-")
    return fail("--plan and --emit both print to stdout; write the "
                "output to a file with -o");
  if (planMode && emitStage.empty() && outputPath != "-")
    return fail("-o writes the --emit output; --plan prints to stdout");
  std::optional<ActivationType> dtype;
  if (dtypeName == "f32")
    dtype = ActivationType::F32;
  else if (dtypeName == "bf16")
    dtype = ActivationType::BF16;
  else
    return fail("--dtype=" + dtypeName + " is not one of f32, bf16");
  if (!sys::fs::exists(modelPath))
    return fail("cannot open '" + modelPath + "': no such file");

  mlir::DialectRegistry registry;
  registerAllDialects(registry);
  mlir::MLIRContext context(registry);
  if (isConfigFile(modelPath))
    return runOnConfig(context, *dtype);
  return runOnGraph(context);
}
