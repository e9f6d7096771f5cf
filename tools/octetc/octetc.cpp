//===- octetc.cpp - The Octet compiler driver -----------------------------===//
//
// octetc MODEL [--train TRAIN.json] [--emit=graph] [-o OUT] [--plan]
//
// MODEL is a Hugging Face style DeepSeek-V3 config.json or a graph in the
// octet dialect (.mlir). Today octetc builds and verifies the forward graph
// (--emit=graph) and plans a training step (--plan); the later stages of the
// pipeline (training, quantized, scheduled, program, bundle, executable) are
// refused by name until they exist.
//
// Every error is one line naming the file (and line) at fault and exits with
// status 1; -o is written through a temporary file and a rename, so an error
// never leaves a partial output behind.
//
//===----------------------------------------------------------------------===//

#include "octet/Frontends/GraphBuilder.h"
#include "octet/Frontends/ModelConfig.h"
#include "octet/Frontends/Plan.h"
#include "octet/Frontends/TrainConfig.h"
#include "octet/InitAll.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace octet;

namespace {

cl::OptionCategory octetcCategory("octetc options");

cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                               cl::desc("<MODEL: config.json or graph .mlir>"),
                               cl::cat(octetcCategory));

cl::opt<std::string> trainPath(
    "train",
    cl::desc("Training configuration (JSON); without it the documented "
             "defaults of docs/octetc.md apply"),
    cl::value_desc("TRAIN.json"), cl::cat(octetcCategory));

cl::opt<std::string> emitStage(
    "emit",
    cl::desc("Stop after a stage and print its IR. Available: graph (the "
             "verified forward graph). Planned: training, quantized, "
             "scheduled, program, bundle"),
    cl::value_desc("stage"), cl::cat(octetcCategory));

cl::opt<std::string> outputPath("o",
                                cl::desc("Output file, '-' for stdout; "
                                         "written atomically"),
                                cl::value_desc("OUT"), cl::init("-"),
                                cl::cat(octetcCategory));

cl::opt<bool> planMode("plan",
                       cl::desc("Print parameters, FLOPs per training step "
                                "and memory per rank, then stop"),
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
  if (emitStage.empty())
    return 0;

  GraphOptions options;
  options.batch = train.getMicroBatchSize();
  options.sequenceLength = train.sequenceLength;
  options.dtype = dtype;
  options.mtpLossWeight = train.mtpLossWeight;
  // Verification failures are reported through the context's handler.
  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      buildForwardGraph(context, *model, options);
  if (!module)
    return fail(model->fileName + ": the generated graph does not verify "
                                  "(an octetc bug: please report it)");
  return writeModule(*module, /*namesFromLocations=*/true);
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
  if (emitStage.empty())
    return 0;
  return writeModule(*module, /*namesFromLocations=*/false);
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
      "dialect (.mlir). Available now: --emit=graph and --plan; building an\n"
      "executable or bundle comes with the later stages.\n\n"
      "Examples:\n"
      "  octetc examples/tiny-moe/config.json --emit=graph -o tiny.mlir\n"
      "  octetc examples/tiny-moe/config.json --train "
      "examples/tiny-moe/train.json --plan\n"
      "  octetc examples/deepseek-v3/config.json --plan\n\n"
      "Config keys, defaults and formulas: docs/octetc.md\n");

  static constexpr StringLiteral plannedStages[] = {
      "training", "quantized", "scheduled", "program", "bundle"};
  if (!emitStage.empty() && emitStage != "graph") {
    if (llvm::is_contained(plannedStages, emitStage))
      return fail("--emit=" + emitStage +
                  " is not available yet; available: --emit=graph (and "
                  "--plan)");
    return fail("unknown stage '--emit=" + emitStage +
                "'; stages: graph, training, quantized, scheduled, program, "
                "bundle (available now: graph)");
  }
  if (emitStage.empty() && !planMode)
    return fail("nothing to do: building an executable is not available "
                "yet; use --emit=graph or --plan");
  if (planMode && !emitStage.empty() && outputPath == "-")
    return fail("--plan and --emit=graph both print to stdout; write the "
                "graph to a file with -o");
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
