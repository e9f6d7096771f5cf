//===- ModelConfig.h - DeepSeek-V3 style model descriptions -----*- C++ -*-===//
//
// The model half of Octet's config.json frontend: a Hugging Face style
// `config.json` of the DeepSeek-V3 family (`model_type: deepseek_v3`) parsed
// and checked into a ModelConfig, from which GraphBuilder builds the forward
// graph and the planner counts parameters.
//
// Nothing in a config is dropped silently: keys Octet reads but does not
// model, keys it only approximates, and keys it does not know are each
// recorded with their line, for the driver to print as warnings.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_FRONTENDS_MODELCONFIG_H
#define OCTET_FRONTENDS_MODELCONFIG_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace octet {

/// A configuration key worth telling the user about, with its line (0 when
/// it was not in the file).
struct ConfigNote {
  std::string key;
  unsigned line = 0;
  std::string message;
};

/// Everything a config file says that Octet does not fully honour.
struct ConfigNotes {
  /// Known keys that do not affect what Octet builds (bookkeeping, inference
  /// settings, the checkpoint's storage format).
  std::vector<ConfigNote> unused;
  /// Known keys that Octet models only approximately (YaRN, ...).
  std::vector<ConfigNote> approximated;
  /// Keys that are not part of a DeepSeek-V3 config at all.
  std::vector<ConfigNote> unknown;

  /// Prints one warning line per category (and one per approximation) as
  /// "<tool>: warning: <file>: ...".
  void print(llvm::raw_ostream &os, llvm::StringRef tool,
             llvm::StringRef fileName) const;
};

enum class ScoringFunc { Sigmoid, Softmax };

/// How the router picks experts. `NoAuxTC` (DeepSeek-V3): group-limited
/// top-k on scores plus the frozen `e_score_correction_bias`. `Greedy`:
/// plain top-k over all experts, no bias. `GroupLimitedGreedy`
/// (DeepSeek-V2): group-limited top-k without bias.
enum class TopkMethod { NoAuxTC, Greedy, GroupLimitedGreedy };

/// A DeepSeek-V3-family decoder, as its config.json describes it. Defaults
/// are those of docs/octetc.md.
struct ModelConfig {
  std::string fileName;

  int64_t hiddenSize = 0;
  int64_t vocabSize = 0;
  int64_t numHiddenLayers = 0;
  /// Layers [0, firstKDenseReplace) use the dense MLP.
  int64_t firstKDenseReplace = 0;
  /// Layer i >= firstKDenseReplace is MoE when i % moeLayerFreq == 0.
  int64_t moeLayerFreq = 1;
  int64_t intermediateSize = 0;

  // Multi-head latent attention.
  int64_t numAttentionHeads = 0;
  int64_t numKeyValueHeads = 0;
  /// Rank of the query compression; none: one q_proj.
  std::optional<int64_t> qLoraRank;
  int64_t kvLoraRank = 0;
  int64_t qkNopeHeadDim = 0;
  int64_t qkRopeHeadDim = 0;
  int64_t vHeadDim = 0;

  // Mixture of experts (nRoutedExperts == 0: a dense model).
  int64_t nRoutedExperts = 0;
  int64_t nSharedExperts = 0;
  int64_t numExpertsPerTok = 0;
  int64_t moeIntermediateSize = 0;
  int64_t nGroup = 1;
  int64_t topkGroup = 1;
  double routedScalingFactor = 1.0;
  ScoringFunc scoringFunc = ScoringFunc::Sigmoid;
  bool normTopkProb = true;
  TopkMethod topkMethod = TopkMethod::NoAuxTC;

  double ropeTheta = 10000.0;
  /// rope_scaling's "type" when present (recorded, not modelled).
  std::optional<std::string> ropeScalingType;
  double rmsNormEps = 1e-6;
  int64_t maxPositionEmbeddings = 4096;
  bool tieWordEmbeddings = false;
  /// Depth of multi-token prediction (DeepSeek-V3: 1).
  int64_t numNextnPredictLayers = 0;

  ConfigNotes notes;
  /// Line of each key present in the file, for messages that cross-check
  /// other files against this one.
  llvm::StringMap<unsigned> keyLines;

  bool hasMoE() const { return nRoutedExperts > 0; }
  /// Whether decoder layer `layer` (main layers first, then the MTP modules'
  /// blocks at numHiddenLayers + k, as in DeepSeek-V3's checkpoint) is MoE.
  bool isMoELayer(int64_t layer) const {
    return hasMoE() && layer >= firstKDenseReplace && layer % moeLayerFreq == 0;
  }
  int64_t getQKHeadDim() const { return qkNopeHeadDim + qkRopeHeadDim; }
  /// "<file>:<line>" of a key, or "<file>" when it was not given.
  std::string where(llvm::StringRef key) const;
};

/// Parses and checks a config.json text; `fileName` is used in messages.
/// Errors read "<file>:<line>: <key> ..." (syntax errors "<file>:<line>:<col>:
/// ...").
llvm::Expected<ModelConfig> parseModelConfig(llvm::StringRef text,
                                             llvm::StringRef fileName);

/// Reads and parses a config.json file.
llvm::Expected<ModelConfig> loadModelConfig(llvm::StringRef path);

} // namespace octet

#endif // OCTET_FRONTENDS_MODELCONFIG_H
