//===- TrainConfig.h - Training configuration -------------------*- C++ -*-===//
//
// The training half of Octet's frontend: sequence length, batch, optimizer,
// pipeline schedule, parallel degrees and precision recipe, read from a JSON
// file or taken from documented defaults (docs/octetc.md) so that every mode
// of octetc works on a model description alone.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_FRONTENDS_TRAINCONFIG_H
#define OCTET_FRONTENDS_TRAINCONFIG_H

#include "octet/Frontends/ModelConfig.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace octet {

enum class PipelineSchedule {
  OneFOneB,
  ZeroBubble1P,
  Interleaved1F1B,
  DualPipe,
  DualPipeV
};
enum class PrecisionRecipe { DeepSeekV3, BF16, F32 };

llvm::StringRef stringifySchedule(PipelineSchedule schedule);
/// "1f1b", "zb1p", "interleaved-1f1b", "dualpipe", "dualpipev".
std::optional<PipelineSchedule> parseSchedule(llvm::StringRef name);
llvm::StringRef stringifyRecipe(PrecisionRecipe recipe);

/// Model chunks each pipeline rank holds: 2 for interleaved-1f1b (two
/// virtual stages), dualpipe (stages r and pp-1-r) and dualpipev (chunks r
/// and 2pp-1-r), else 1.
int64_t getChunksPerRank(PipelineSchedule schedule);

/// A per-op precision override: ops whose name (`octet.linear`) or whose
/// weight parameter's name contains `op` use `format`.
struct PrecisionOverride {
  std::string op;
  std::string format;
  unsigned line = 0;
};

struct TrainConfig {
  /// Where the values came from: a file name, or "defaults".
  std::string source = "defaults";

  /// Tokens per sequence seen by the main model. With multi-token prediction
  /// of depth D each sequence carries D more tokens (see GraphBuilder.h).
  int64_t sequenceLength = 64;
  /// Sequences per optimizer step, over all data-parallel ranks.
  int64_t globalBatch = 8;
  /// Micro-batches per step on each data-parallel rank.
  int64_t microBatches = 1;

  struct Optimizer {
    std::string name = "adamw";
    double lr = 3e-3;
    std::array<double, 2> betas = {0.9, 0.95};
    double eps = 1e-8;
    double weightDecay = 0.1;
    int64_t warmupSteps = 20;
  } optimizer;

  PipelineSchedule schedule = PipelineSchedule::OneFOneB;
  int64_t pp = 1, dp = 1, ep = 1;
  /// ZeRO stage: 0, or 1 to shard the optimizer state over the
  /// data-parallel replicas.
  int64_t zero = 0;
  /// Decoder layers of each pipeline chunk, first to last, when the user
  /// pins the split (`parallel.stage_layers`); empty: balanced by FLOPs.
  std::vector<int64_t> stageLayers;

  PrecisionRecipe recipe = PrecisionRecipe::DeepSeekV3;
  std::vector<PrecisionOverride> overrides;

  double mtpLossWeight = 0.3;
  uint64_t seed = 0;

  /// Keys that are not part of a training config, with their lines.
  std::vector<ConfigNote> unknownKeys;
  /// Line of each key given, by path ("parallel.ep").
  llvm::StringMap<unsigned> keyLines;

  /// Sequences per micro-batch: the batch dimension of the graph.
  int64_t getMicroBatchSize() const {
    return globalBatch / (microBatches * dp);
  }
  int64_t getTokensPerStep() const { return globalBatch * sequenceLength; }
  /// "<file>:<line>" of a key, or "<file> (default)" when not given.
  std::string where(llvm::StringRef path) const;
};

/// What a training configuration is checked against: taken from a
/// ModelConfig, or from a graph when the model is given as .mlir.
struct ModelFacts {
  /// Routed experts (0: no MoE) and where that number came from.
  int64_t numRoutedExperts = 0;
  std::string expertsWhere;
  /// Main decoder layers (0: unknown).
  int64_t numLayers = 0;
  std::string layersWhere;
  /// Longest sequence (0: unknown).
  int64_t maxPositions = 0;
  std::string maxPositionsWhere;
  /// Pipeline stages the model is already split into (0: not split).
  int64_t numStages = 0;
  std::string stagesWhere;

  static ModelFacts fromModel(const ModelConfig &model);
};

/// Parses a training config and checks it against the model; `fileName` is
/// used in messages ("<file>:<line>: <key> ...").
llvm::Expected<TrainConfig> parseTrainConfig(llvm::StringRef text,
                                             llvm::StringRef fileName,
                                             const ModelFacts &facts);
llvm::Expected<TrainConfig> loadTrainConfig(llvm::StringRef path,
                                            const ModelFacts &facts);

/// Checks a configuration (typically the defaults) against the model.
llvm::Error verifyTrainConfig(const TrainConfig &config,
                              const ModelFacts &facts);

} // namespace octet

#endif // OCTET_FRONTENDS_TRAINCONFIG_H
