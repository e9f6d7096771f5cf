//===- Plan.h - Parameters, FLOPs and memory of a training step -*- C++ -*-===//
//
// What `octetc --plan` prints: parameter counts under explicit definitions,
// FLOPs per training step and an estimate of memory per rank for the chosen
// parallel degrees. From a ModelConfig everything is computed in closed form
// (instantly, even for DeepSeek-V3); from a graph (.mlir) the parameters and
// FLOPs are read off the ops. docs/octetc.md states every formula.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_FRONTENDS_PLAN_H
#define OCTET_FRONTENDS_PLAN_H

#include "octet/Frontends/GraphBuilder.h"
#include "octet/Frontends/ModelConfig.h"
#include "octet/Frontends/TrainConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace octet {

/// Parameter counts of a ModelConfig, by part.
struct ParameterCounts {
  // The main model.
  int64_t embedding = 0;
  /// MLA projections and their latent norms, all main layers.
  int64_t attention = 0;
  int64_t denseMLP = 0;
  int64_t routedExperts = 0;
  int64_t sharedExperts = 0;
  /// Router weights and e_score_correction_bias.
  int64_t routers = 0;
  /// input/post-attention layer norms and the final norm.
  int64_t norms = 0;
  /// 0 when tied to the embedding.
  int64_t head = 0;
  /// Parameters of the MTP modules themselves (enorm, hnorm, eh_proj, their
  /// decoder blocks, shared_head.norm). They share the embedding and head.
  int64_t mtp = 0;
  /// The copies of the embedding and head that a Hugging Face checkpoint
  /// stores with each MTP module (model.layers.61.embed_tokens.weight and
  /// model.layers.61.shared_head.head.weight for DeepSeek-V3).
  int64_t mtpCheckpointCopies = 0;

  /// Per token, DeepSeek's way: every parameter the forward pass of one
  /// token multiplies by, i.e. all but the routed experts it was not sent
  /// to and the embedding table (a row lookup).
  int64_t activatedMain = 0;
  int64_t activatedWithMTP = 0;
  /// Matmul weights one token goes through in a training step (main model
  /// and MTP modules; the shared head once per use); the N of 6 N tokens.
  int64_t matmulPerToken = 0;
  /// Frozen parameters (e_score_correction_bias): no gradient, no moments.
  int64_t frozen = 0;

  int64_t getTotalMain() const {
    return embedding + attention + denseMLP + routedExperts + sharedExperts +
           routers + norms + head;
  }
  int64_t getTotalWithMTP() const { return getTotalMain() + mtp; }
  int64_t getCheckpointTotal() const {
    return getTotalWithMTP() + mtpCheckpointCopies;
  }
};

ParameterCounts countParameters(const ModelConfig &model);

/// FLOPs of one training step (forward and backward) of the config.
struct StepFlops {
  double matmul = 0;    // 6 x matmulPerToken x tokens
  double attention = 0; // QK^T and PV, causal, forward and backward
  double getTotal() const { return matmul + attention; }
};
StepFlops countStepFlops(const ModelConfig &model, const TrainConfig &train);

/// Decoder layers per pipeline chunk, contiguous and at least one each
/// (when there are as many layers as chunks), chosen to even out the chunks'
/// costs: the split with the least sum of squared chunk costs, the last
/// chunk also carrying `lastChunkExtra` (head and MTP modules).
std::vector<int64_t> balanceStageLayers(llvm::ArrayRef<double> layerCosts,
                                        int64_t chunks, double lastChunkExtra);

/// One pipeline chunk of a training config's layout (pp and schedule):
/// its decoder layers (`parallel.stage_layers`, else the FLOP-balanced
/// split) and its training FLOPs per token, as `--plan` prints them.
struct PipelineChunk {
  int64_t numLayers = 0;
  double flopsPerToken = 0;
};
std::vector<PipelineChunk> getPipelineChunks(const ModelConfig &model,
                                             const TrainConfig &train);

/// Prints the plan of a model config.
void printPlan(llvm::raw_ostream &os, const ModelConfig &model,
               const TrainConfig &train, ActivationType dtype);

/// What a forward graph (.mlir) says about its model and batch.
struct GraphSummary {
  mlir::Operation *function = nullptr;
  /// %ids is batch x window; window = sequence length + MTP depth.
  int64_t batch = 0, window = 0;
  int64_t mtpDepth = 0;
  /// octet.num_stages of the function (1 when absent).
  int64_t numStages = 1;
  /// Largest num_experts of the graph's moe_dispatch ops (0: none).
  int64_t numRoutedExperts = 0;
  /// Main decoder layers: distinct model.layers.<N> indices without MTP.
  int64_t numLayers = 0;

  int64_t getSequenceLength() const { return window - mtpDepth; }
};

/// Finds the forward function (the one returning a tensor<f32> loss from a
/// rank-2 %ids) and summarises it.
llvm::Expected<GraphSummary> summarizeGraph(mlir::ModuleOp module,
                                            llvm::StringRef fileName);

/// Prints the plan of a graph: parameters and FLOPs from its ops, memory of
/// the weights, gradients and moments per rank.
void printGraphPlan(llvm::raw_ostream &os, const GraphSummary &graph,
                    llvm::StringRef fileName, const TrainConfig &train);

} // namespace octet

#endif // OCTET_FRONTENDS_PLAN_H
