//===- TrainingPipeline.cpp - From a forward graph to a program -----------===//

#include "octet/Target/TrainingPipeline.h"
#include "octet/Target/ProgramTranslation.h"
#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace octet;

LogicalResult
octet::runTrainingPipeline(ModuleOp module,
                           const TrainingPipelineOptions &options) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    auto funcs = module.getOps<func::FuncOp>();
    if (std::distance(funcs.begin(), funcs.end()) != 1)
      return module.emitError()
             << "the model must define @forward (or exactly one function)";
    forward = *funcs.begin();
    if (failed(SymbolTable::replaceAllSymbolUses(
            forward, StringAttr::get(module.getContext(), "forward"), module)))
      return failure();
    forward.setSymName("forward");
  }

  PassManager pm(module.getContext());
  AssignPrecisionPassOptions precision;
  precision.recipe = options.recipe;
  precision.overrideExisting = options.overridePrecision;
  pm.addPass(createAssignPrecisionPass(precision));
  AutodiffPassOptions autodiff;
  autodiff.beta1 = options.beta1;
  autodiff.beta2 = options.beta2;
  autodiff.eps = options.eps;
  autodiff.weightDecay = options.weightDecay;
  pm.addPass(createAutodiffPass(autodiff));
  if (options.lowerFP8)
    pm.addPass(createLowerFP8LinearsPass());
  return pm.run(module);
}

FailureOr<runtime::Program>
octet::compileProgram(ModuleOp module,
                      const std::map<std::string, std::string> &settings) {
  auto fb = module.lookupSymbol<func::FuncOp>("forward_backward");
  if (!fb)
    return module.emitError() << "no @forward_backward: run autodiff first";
  // The runtime feeds token ids and labels of the graph's shape.
  FunctionType type = fb.getFunctionType();
  auto ids = type.getNumInputs() == 2
                 ? dyn_cast<RankedTensorType>(type.getInput(0))
                 : RankedTensorType();
  if (!ids || ids.getRank() != 2 || !ids.hasStaticShape() ||
      type.getInput(1) != type.getInput(0))
    return fb.emitError() << "the runtime trains graphs taking (ids, labels) "
                             "of one static [batch, sequence] integer "
                             "shape, got "
                          << type;
  FailureOr<runtime::Program> program = translateToProgram(module);
  if (failed(program))
    return failure();
  program->metadata = settings;
  program->metadata["train.micro_batch_size"] =
      std::to_string(ids.getDimSize(0));
  program->metadata["train.sequence_length"] =
      std::to_string(ids.getDimSize(1));
  return program;
}
