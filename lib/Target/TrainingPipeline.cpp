//===- TrainingPipeline.cpp - From a forward graph to a program -----------===//

#include "octet/Target/TrainingPipeline.h"
#include "octet/Target/ProgramTranslation.h"
#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace octet;

/// The name an override is matched against: the op name and, for ops with
/// a weight, the weight parameter's name.
static bool overrideMatches(Operation *op, StringRef match) {
  if (op->getName().getStringRef().contains(match))
    return true;
  return llvm::any_of(op->getOperands(), [&](Value v) {
    auto param = v.getDefiningOp<ParamOp>();
    return param && param.getName().contains(match);
  });
}

/// Applies the user's precision overrides; FP8 only where the recipe can
/// quantize (GEMMs whose K is a multiple of 128).
static LogicalResult applyOverrides(ModuleOp module,
                                    ArrayRef<PrecisionOverrideSpec> specs) {
  MLIRContext *ctx = module.getContext();
  for (const PrecisionOverrideSpec &spec : specs) {
    std::optional<ComputeFormat> format = symbolizeComputeFormat(spec.format);
    if (!format)
      return module.emitError()
             << spec.where << ": precision override format '" << spec.format
             << "' is not one of e4m3, e5m2, bf16, f32";
    unsigned matched = 0;
    WalkResult walk = module.walk([&](Operation *op) -> WalkResult {
      if (!isa<OctetDialect>(op->getDialect()) || isa<ParamOp>(op) ||
          op->getNumResults() == 0 || !overrideMatches(op, spec.match))
        return WalkResult::advance();
      Type out =
          cast<RankedTensorType>(op->getResult(0).getType()).getElementType();
      PrecisionAttr p;
      if (*format == ComputeFormat::BF16 || *format == ComputeFormat::F32) {
        p = PrecisionAttr::get(ctx, *format, ScalingGranularity::None,
                               ScalingGranularity::None, ScaleRounding::FP32, 0,
                               out);
      } else {
        Value x;
        if (auto l = dyn_cast<LinearOp>(op))
          x = l.getX();
        else if (auto g = dyn_cast<GroupedLinearOp>(op))
          x = g.getX();
        if (!x) {
          op->emitError() << spec.where << ": precision override '"
                          << spec.match << "' asks for " << spec.format
                          << " but FP8 applies to linears only";
          return WalkResult::interrupt();
        }
        int64_t k = cast<RankedTensorType>(x.getType()).getShape().back();
        if (ShapedType::isDynamic(k) || k % kScaleGroupSize != 0) {
          op->emitError() << spec.where << ": precision override '"
                          << spec.match << "' asks for " << spec.format
                          << " but K = " << k << " is not a multiple of "
                          << kScaleGroupSize;
          return WalkResult::interrupt();
        }
        auto old = op->getAttrOfType<PrecisionAttr>("precision");
        ScaleRounding rounding =
            old ? old.getScaleRounding() : ScaleRounding::FP32;
        p = PrecisionAttr::get(ctx, *format, ScalingGranularity::Tile1x128,
                               ScalingGranularity::Block128x128, rounding,
                               kScaleGroupSize, out);
      }
      op->setAttr("precision", p);
      ++matched;
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    if (!matched)
      module.emitWarning() << spec.where << ": precision override '"
                           << spec.match << "' matches no op";
  }
  return success();
}

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

  PassManager recipe(module.getContext());
  AssignPrecisionPassOptions precision;
  precision.recipe = options.recipe;
  precision.overrideExisting = options.overridePrecision;
  recipe.addPass(createAssignPrecisionPass(precision));
  if (failed(recipe.run(module)) ||
      failed(applyOverrides(module, options.overrides)))
    return failure();

  PassManager pm(module.getContext());
  AutodiffPassOptions autodiff;
  autodiff.beta1 = options.beta1;
  autodiff.beta2 = options.beta2;
  autodiff.eps = options.eps;
  autodiff.weightDecay = options.weightDecay;
  pm.addPass(createAutodiffPass(autodiff));
  if (options.expertParallel > 1) {
    InsertExpertCommPassOptions experts;
    experts.numRanks = options.expertParallel;
    pm.addPass(createInsertExpertCommPass(experts));
  }
  if (options.lowerFP8)
    pm.addPass(createLowerFP8LinearsPass());
  // With pipeline stages, each stage's forward and backward become their
  // own functions (a no-op for one stage).
  pm.addPass(createSplitPipelineStagesPass());
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
  // The per-stage functions and how values flow between them
  // (--octet-split-pipeline-stages), for the pipeline executors.
  auto join = [](ArrayAttr list) {
    std::string out;
    for (Attribute a : list)
      out += (out.empty() ? "" : ",") + cast<StringAttr>(a).getValue().str();
    return out;
  };
  if (auto stages = fb->getAttrOfType<ArrayAttr>("octet.stage_functions")) {
    program->metadata["pipeline.functions"] = join(stages);
    program->metadata["pipeline.returns"] =
        join(fb->getAttrOfType<ArrayAttr>("octet.stage_returns"));
    for (Attribute name : stages) {
      auto fn = module.lookupSymbol<func::FuncOp>(cast<StringAttr>(name));
      program->metadata["pipeline." + fn.getSymName().str() + ".inputs"] =
          join(fn->getAttrOfType<ArrayAttr>("octet.inputs"));
      program->metadata["pipeline." + fn.getSymName().str() + ".stage"] =
          std::to_string(
              fn->getAttrOfType<IntegerAttr>("octet.stage").getInt());
    }
  }
  return program;
}
