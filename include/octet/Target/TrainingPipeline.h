//===- TrainingPipeline.h - From a forward graph to a program ---*- C++ -*-===//
//
// The compile pipeline octetc runs after a frontend: the precision recipe,
// autodiff (and, for inspection, the FP8 lowering), then the translation to
// the runtime's program with the training settings as metadata.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TARGET_TRAININGPIPELINE_H
#define OCTET_TARGET_TRAININGPIPELINE_H

#include "octet/Runtime/Program.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <map>
#include <string>
#include <vector>

namespace octet {

/// A user's precision for some ops (training config `precision.overrides`):
/// ops whose name or weight parameter name contains `match` compute in
/// `format`.
struct PrecisionOverrideSpec {
  std::string match;
  std::string format; ///< e4m3, e5m2, bf16 or f32
  std::string where;  ///< "<file>:<line>" for diagnostics
};

struct TrainingPipelineOptions {
  /// deepseek-v3, bf16 or f32 (--octet-assign-precision's recipe).
  std::string recipe = "deepseek-v3";
  /// Replace the graph's own precision annotations.
  bool overridePrecision = false;
  /// Applied after the recipe, in order.
  std::vector<PrecisionOverrideSpec> overrides;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1;
  /// Also lower FP8 linears to octet_tq (what the GPU code generator takes;
  /// the CPU runtime executes FP8 precisions directly).
  bool lowerFP8 = false;
  /// Ranks of an expert-parallel group (parallel.ep): above 1, every MoE
  /// layer is split between the routing ranks and the experts' owners
  /// (--octet-insert-expert-comm).
  int64_t expertParallel = 1;
};

/// Runs the recipe, the user's precision overrides and autodiff (and
/// optionally the FP8 lowering) on a
/// module whose forward function is `@forward` (or its only function, which
/// is then renamed `@forward`). Leaves @forward, @forward_backward and
/// @optimizer_step in the module.
mlir::LogicalResult runTrainingPipeline(mlir::ModuleOp module,
                                        const TrainingPipelineOptions &options);

/// Translates the training module to a program and records, as metadata,
/// `settings` plus the micro-batch shape read from @forward_backward's token
/// arguments (train.micro_batch_size, train.sequence_length).
mlir::FailureOr<runtime::Program>
compileProgram(mlir::ModuleOp module,
               const std::map<std::string, std::string> &settings);

} // namespace octet

#endif // OCTET_TARGET_TRAININGPIPELINE_H
