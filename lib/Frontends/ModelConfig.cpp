//===- ModelConfig.cpp - DeepSeek-V3 style config.json parsing ------------===//
//
// Reads a Hugging Face DeepSeek-V3 config.json: typed reads first (a value
// of the wrong type names its key and line), then the checks between keys
// (contradictions name the line of the key the message starts with), then
// the inventory of keys Octet does not use, approximates or does not know.
//
//===----------------------------------------------------------------------===//

#include "octet/Frontends/ModelConfig.h"

#include "JsonSupport.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/WithColor.h"

#include <cmath>

using namespace llvm;
using namespace octet;
using namespace octet::detail;

std::string ModelConfig::where(StringRef key) const {
  unsigned line = keyLines.lookup(key);
  if (!line)
    return fileName;
  return formatv("{0}:{1}", fileName, line).str();
}

void ConfigNotes::print(raw_ostream &os, StringRef tool,
                        StringRef fileName) const {
  if (!unused.empty()) {
    WithColor::warning(os, tool)
        << fileName << ": " << unused.size()
        << (unused.size() == 1 ? " key is" : " keys are")
        << " not used by Octet (see docs/octetc.md): ";
    llvm::interleaveComma(unused, os, [&](const ConfigNote &note) {
      os << note.key << " (line " << note.line << ")";
    });
    os << "\n";
  }
  for (const ConfigNote &note : approximated)
    WithColor::warning(os, tool)
        << fileName << ":" << note.line << ": " << note.key
        << " is approximated: " << note.message << "\n";
  for (const ConfigNote &note : unknown)
    WithColor::warning(os, tool)
        << fileName << ":" << note.line << ": unknown key '" << note.key
        << "' ignored: " << note.message << "\n";
}

namespace {

/// Keys of a DeepSeek-V3 config that do not change what Octet builds. Each
/// is listed back to the user; docs/octetc.md says why each is unused.
constexpr StringLiteral kUnusedKeys[] = {"architectures",
                                         "auto_map",
                                         "transformers_version",
                                         "torch_dtype",
                                         "bos_token_id",
                                         "eos_token_id",
                                         "pad_token_id",
                                         "initializer_range",
                                         "use_cache",
                                         "pretraining_tp",
                                         "ep_size",
                                         "seq_aux",
                                         "num_key_value_heads",
                                         "quantization_config",
                                         "attention_bias",
                                         "attention_dropout",
                                         "rope_interleave",
                                         "_name_or_path"};

class ModelConfigParser {
public:
  ModelConfigParser(const JsonDocument &doc, ObjectReader &reader,
                    ModelConfig &config)
      : doc(doc), r(reader), c(config) {}

  Error run() {
    if (Error err = readModelType())
      return err;
    if (Error err = readShapes())
      return err;
    if (Error err = readAttention())
      return err;
    if (Error err = readMoE())
      return err;
    if (Error err = readMisc())
      return err;
    if (Error err = checkSize())
      return err;
    return takeInventory();
  }

private:
  Error missing(StringRef key, StringRef what) {
    return createStringError(formatv("{0}: missing required key '{1}' ({2})",
                                     doc.getFileName(), key, what)
                                 .str());
  }

  Error requireInt(StringRef key, int64_t &out, StringRef what) {
    if (!r.has(key) || r.isNull(key))
      return missing(key, what);
    return r.getInt(key, out);
  }

  /// `key` = `value` must be at least `min`.
  Error atLeast(StringRef key, int64_t value, int64_t min) {
    if (value >= min)
      return Error::success();
    return r.error(key, formatv("{0} = {1} must be {2}", key, value,
                                min == 1 ? std::string("positive")
                                         : formatv(">= {0}", min).str()));
  }

  /// "n_group on line 17", for messages about two keys.
  std::string lineOf(StringRef key) {
    unsigned line = r.getLine(key);
    return line ? formatv("{0} on line {1}", key, line).str()
                : (key + " by default").str();
  }

  Error readModelType() {
    std::string modelType;
    if (!r.has("model_type"))
      return missing("model_type", "\"deepseek_v3\"");
    if (Error err = r.getString("model_type", modelType))
      return err;
    if (modelType != "deepseek_v3")
      return r.error("model_type",
                     formatv("model_type = \"{0}\" is not supported: Octet "
                             "imports DeepSeek-V3-family configs "
                             "(\"deepseek_v3\")",
                             modelType));
    return Error::success();
  }

  Error readShapes() {
    if (Error err = requireInt("hidden_size", c.hiddenSize, "the model width"))
      return err;
    if (Error err = requireInt("vocab_size", c.vocabSize, "the vocabulary"))
      return err;
    if (Error err = requireInt("num_hidden_layers", c.numHiddenLayers,
                               "the number of decoder layers"))
      return err;
    if (Error err = atLeast("hidden_size", c.hiddenSize, 1))
      return err;
    if (Error err = atLeast("vocab_size", c.vocabSize, 1))
      return err;
    if (Error err = atLeast("num_hidden_layers", c.numHiddenLayers, 1))
      return err;
    if (Error err = r.getInt("first_k_dense_replace", c.firstKDenseReplace))
      return err;
    if (Error err = atLeast("first_k_dense_replace", c.firstKDenseReplace, 0))
      return err;
    if (c.firstKDenseReplace > c.numHiddenLayers)
      return r.error("first_k_dense_replace",
                     formatv("first_k_dense_replace = {0} exceeds "
                             "num_hidden_layers = {1} ({2})",
                             c.firstKDenseReplace, c.numHiddenLayers,
                             lineOf("num_hidden_layers")));
    if (Error err = r.getInt("moe_layer_freq", c.moeLayerFreq))
      return err;
    if (Error err = atLeast("moe_layer_freq", c.moeLayerFreq, 1))
      return err;
    if (Error err = r.getInt("intermediate_size", c.intermediateSize))
      return err;
    // Read here because the MTP blocks' layer indices decide whether a dense
    // MLP width is needed.
    std::optional<int64_t> depth;
    if (Error err = r.getOptionalInt("num_nextn_predict_layers", depth))
      return err;
    c.numNextnPredictLayers = depth.value_or(0);
    if (Error err =
            atLeast("num_nextn_predict_layers", c.numNextnPredictLayers, 0))
      return err;
    return Error::success();
  }

  Error readAttention() {
    if (Error err = requireInt("num_attention_heads", c.numAttentionHeads,
                               "the number of attention heads"))
      return err;
    if (Error err = atLeast("num_attention_heads", c.numAttentionHeads, 1))
      return err;
    c.numKeyValueHeads = c.numAttentionHeads;
    if (Error err = r.getInt("num_key_value_heads", c.numKeyValueHeads))
      return err;
    if (Error err = atLeast("num_key_value_heads", c.numKeyValueHeads, 1))
      return err;
    if (c.numAttentionHeads % c.numKeyValueHeads != 0)
      return r.error("num_attention_heads",
                     formatv("num_attention_heads = {0} is not a multiple of "
                             "num_key_value_heads = {1} ({2})",
                             c.numAttentionHeads, c.numKeyValueHeads,
                             lineOf("num_key_value_heads")));

    if (Error err = r.getOptionalInt("q_lora_rank", c.qLoraRank))
      return err;
    if (c.qLoraRank)
      if (Error err = atLeast("q_lora_rank", *c.qLoraRank, 1))
        return err;
    for (auto [key, field] :
         {std::pair<StringRef, int64_t *>{"kv_lora_rank", &c.kvLoraRank},
          {"qk_nope_head_dim", &c.qkNopeHeadDim},
          {"qk_rope_head_dim", &c.qkRopeHeadDim},
          {"v_head_dim", &c.vHeadDim}}) {
      if (Error err = requireInt(key, *field, "multi-head latent attention"))
        return err;
      if (Error err = atLeast(key, *field, 1))
        return err;
    }
    if (c.qkRopeHeadDim % 2 != 0)
      return r.error("qk_rope_head_dim",
                     formatv("qk_rope_head_dim = {0} must be even (rotary "
                             "embedding rotates pairs of features)",
                             c.qkRopeHeadDim));
    return Error::success();
  }

  Error readMoE() {
    std::optional<int64_t> experts;
    if (Error err = r.getOptionalInt("n_routed_experts", experts))
      return err;
    c.nRoutedExperts = experts.value_or(0);
    if (Error err = atLeast("n_routed_experts", c.nRoutedExperts, 0))
      return err;

    std::optional<int64_t> shared;
    if (Error err = r.getOptionalInt("n_shared_experts", shared))
      return err;
    c.nSharedExperts = shared.value_or(0);
    if (Error err = atLeast("n_shared_experts", c.nSharedExperts, 0))
      return err;

    std::optional<int64_t> perTok, moeWidth, groups, topkGroups;
    if (Error err = r.getOptionalInt("num_experts_per_tok", perTok))
      return err;
    if (Error err = r.getOptionalInt("moe_intermediate_size", moeWidth))
      return err;
    if (Error err = r.getOptionalInt("n_group", groups))
      return err;
    if (Error err = r.getOptionalInt("topk_group", topkGroups))
      return err;
    if (Error err = r.getNumber("routed_scaling_factor", c.routedScalingFactor))
      return err;
    if (Error err = r.getBool("norm_topk_prob", c.normTopkProb))
      return err;
    std::string scoring = "sigmoid", method = "noaux_tc";
    if (Error err = r.getString("scoring_func", scoring))
      return err;
    if (Error err = r.getString("topk_method", method))
      return err;

    std::optional<ScoringFunc> scoringFunc =
        StringSwitch<std::optional<ScoringFunc>>(scoring)
            .Case("sigmoid", ScoringFunc::Sigmoid)
            .Case("softmax", ScoringFunc::Softmax)
            .Default(std::nullopt);
    if (!scoringFunc)
      return r.error("scoring_func",
                     formatv("scoring_func = \"{0}\" is not supported; "
                             "expected \"sigmoid\" or \"softmax\"",
                             scoring));
    c.scoringFunc = *scoringFunc;
    std::optional<TopkMethod> topkMethod =
        StringSwitch<std::optional<TopkMethod>>(method)
            .Case("noaux_tc", TopkMethod::NoAuxTC)
            .Case("greedy", TopkMethod::Greedy)
            .Case("group_limited_greedy", TopkMethod::GroupLimitedGreedy)
            .Default(std::nullopt);
    if (!topkMethod)
      return r.error("topk_method",
                     formatv("topk_method = \"{0}\" is not supported; "
                             "expected \"noaux_tc\", \"group_limited_greedy\" "
                             "or \"greedy\"",
                             method));
    c.topkMethod = *topkMethod;

    bool anyDense = false;
    for (int64_t layer = 0, e = c.numHiddenLayers + c.numNextnPredictLayers;
         layer < e && !anyDense; ++layer)
      anyDense = !c.isMoELayer(layer);
    if (anyDense) {
      if (!r.has("intermediate_size") || r.isNull("intermediate_size"))
        return missing("intermediate_size", "the width of the dense MLPs");
      if (Error err = atLeast("intermediate_size", c.intermediateSize, 1))
        return err;
    } else if (r.has("intermediate_size")) {
      c.notes.unused.push_back({"intermediate_size",
                                r.getLine("intermediate_size"),
                                "every layer is MoE"});
    }
    if (!c.hasMoE()) {
      // A dense model: whatever the MoE keys say is not used.
      for (StringRef key :
           {"n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
            "n_group", "topk_group", "routed_scaling_factor", "norm_topk_prob",
            "scoring_func", "topk_method", "moe_layer_freq"})
        if (r.has(key))
          c.notes.unused.push_back({key.str(), r.getLine(key), "no MoE"});
      return Error::success();
    }

    // From here on the model has routed experts.
    if (!perTok)
      return missing("num_experts_per_tok",
                     "experts per token, needed with n_routed_experts");
    if (!moeWidth)
      return missing("moe_intermediate_size",
                     "the width of each expert, needed with n_routed_experts");
    c.numExpertsPerTok = *perTok;
    c.moeIntermediateSize = *moeWidth;
    c.nGroup = groups.value_or(1);
    c.topkGroup = topkGroups.value_or(1);
    for (auto [key, value] : {std::pair<StringRef, int64_t>{
                                  "num_experts_per_tok", c.numExpertsPerTok},
                              {"moe_intermediate_size", c.moeIntermediateSize},
                              {"n_group", c.nGroup},
                              {"topk_group", c.topkGroup}})
      if (Error err = atLeast(key, value, 1))
        return err;
    if (!(c.routedScalingFactor > 0.0))
      return r.error("routed_scaling_factor",
                     formatv("routed_scaling_factor = {0} must be positive",
                             formatNumber(c.routedScalingFactor)));

    if (c.nRoutedExperts % c.nGroup != 0)
      return r.error("n_routed_experts",
                     formatv("n_routed_experts = {0} does not divide into "
                             "n_group = {1} groups ({2})",
                             c.nRoutedExperts, c.nGroup, lineOf("n_group")));
    if (c.topkGroup > c.nGroup)
      return r.error("topk_group",
                     formatv("topk_group = {0} exceeds n_group = {1} ({2})",
                             c.topkGroup, c.nGroup, lineOf("n_group")));
    if (c.topkMethod == TopkMethod::Greedy) {
      if (c.numExpertsPerTok > c.nRoutedExperts)
        return r.error("num_experts_per_tok",
                       formatv("num_experts_per_tok = {0} exceeds "
                               "n_routed_experts = {1} ({2})",
                               c.numExpertsPerTok, c.nRoutedExperts,
                               lineOf("n_routed_experts")));
      return Error::success();
    }
    int64_t perGroup = c.nRoutedExperts / c.nGroup;
    int64_t eligible = perGroup * c.topkGroup;
    if (c.numExpertsPerTok > eligible)
      return r.error(
          "num_experts_per_tok",
          formatv("num_experts_per_tok = {0} exceeds the {1} experts of the "
                  "topk_group = {2} eligible groups (n_routed_experts = {3} / "
                  "n_group = {4} = {5} per group)",
                  c.numExpertsPerTok, eligible, c.topkGroup, c.nRoutedExperts,
                  c.nGroup, perGroup));
    // Groups are ranked by the sum of their two best scores (the noaux_tc
    // rule octet.moe_gate implements), so each group needs two experts.
    if (c.nGroup > 1 && perGroup < 2)
      return r.error("n_group",
                     formatv("n_group = {0} leaves {1} expert per group; "
                             "groups are ranked by their two best experts, "
                             "so each needs at least 2",
                             c.nGroup, perGroup));
    return Error::success();
  }

  Error readMisc() {
    std::string act = "silu";
    if (Error err = r.getString("hidden_act", act))
      return err;
    if (act != "silu")
      return r.error("hidden_act",
                     formatv("hidden_act = \"{0}\" is not supported: "
                             "DeepSeek-V3 MLPs are SwiGLU (\"silu\")",
                             act));
    if (Error err = r.getNumber("rope_theta", c.ropeTheta))
      return err;
    if (!(c.ropeTheta > 0.0))
      return r.error("rope_theta", formatv("rope_theta = {0} must be positive",
                                           formatNumber(c.ropeTheta)));
    if (Error err = r.getNumber("rms_norm_eps", c.rmsNormEps))
      return err;
    if (!(c.rmsNormEps > 0.0))
      return r.error("rms_norm_eps",
                     formatv("rms_norm_eps = {0} must be positive",
                             formatNumber(c.rmsNormEps)));
    if (Error err =
            r.getInt("max_position_embeddings", c.maxPositionEmbeddings))
      return err;
    if (Error err =
            atLeast("max_position_embeddings", c.maxPositionEmbeddings, 1))
      return err;
    if (Error err = r.getBool("tie_word_embeddings", c.tieWordEmbeddings))
      return err;

    // Keys that are unused only at their DeepSeek-V3 values: anything else
    // would change the model and is refused rather than ignored.
    bool attentionBias = false;
    if (Error err = r.getBool("attention_bias", attentionBias))
      return err;
    if (attentionBias)
      return r.error("attention_bias",
                     "attention_bias = true is not supported: DeepSeek-V3's "
                     "attention projections have no bias");
    double dropout = 0.0;
    if (Error err = r.getNumber("attention_dropout", dropout))
      return err;
    if (dropout != 0.0)
      return r.error("attention_dropout",
                     formatv("attention_dropout = {0} is not supported: "
                             "Octet trains without dropout",
                             formatNumber(dropout)));
    bool interleave = true;
    if (Error err = r.getBool("rope_interleave", interleave))
      return err;
    if (!interleave)
      return r.error("rope_interleave",
                     "rope_interleave = false is not supported: "
                     "octet.rotary rotates adjacent pairs (x[2i], x[2i+1]), "
                     "DeepSeek-V3's interleaved layout");
    for (StringRef key : {"quantization_config", "rope_scaling", "auto_map"}) {
      const json::Value *v = r.get(key);
      if (v && v->kind() != json::Value::Null && !v->getAsObject())
        return r.error(key, formatv("{0} must be an object or null, got {1}",
                                    key, describeValue(*v)));
    }
    return Error::success();
  }

  /// Rejects sizes whose products would overflow: parameter and FLOP
  /// counts are int64 and doubles, exact below 2^53.
  Error checkSize() {
    double h = c.hiddenSize, heads = c.numAttentionHeads;
    double q = c.qLoraRank.value_or(c.hiddenSize);
    double attention = q * (h + heads * c.getQKHeadDim()) +
                       (c.kvLoraRank + c.qkRopeHeadDim) * h +
                       heads * (c.qkNopeHeadDim + c.vHeadDim) * c.kvLoraRank +
                       h * heads * c.vHeadDim;
    double mlp = std::max(3.0 * h * c.intermediateSize,
                          3.0 * h * c.moeIntermediateSize *
                                  (c.nRoutedExperts + c.nSharedExperts) +
                              (c.nRoutedExperts + 1.0) * h);
    double layers = c.numHiddenLayers + c.numNextnPredictLayers;
    double total =
        layers * (attention + mlp + 4 * h + 2 * h * h) + 3.0 * c.vocabSize * h;
    if (total < 0x1p53)
      return Error::success();
    return r.error("hidden_size",
                   formatv("the sizes describe about {0:e2} parameters, more "
                           "than Octet counts exactly (2^53)",
                           total));
  }

  /// Sorts every key Octet did not build from into unused, approximated and
  /// unknown, with lines.
  Error takeInventory() {
    ConfigNotes &notes = c.notes;
    auto note = [&](StringRef key, std::string message) {
      return ConfigNote{key.str(), r.getLine(key), std::move(message)};
    };

    // rope_scaling: recorded, not modelled.
    const json::Value *scaling = r.get("rope_scaling");
    if (scaling && scaling->getAsObject()) {
      const json::Object &o = *scaling->getAsObject();
      std::string type = "unknown";
      if (std::optional<StringRef> t = o.getString("type"))
        type = t->str();
      else if (std::optional<StringRef> t = o.getString("rope_type"))
        type = t->str();
      c.ropeScalingType = type;
      double factor = o.getNumber("factor").value_or(1.0);
      std::string message =
          formatv("\"{0}\" scaling (factor {1}) is not modelled: positions "
                  "use plain rotary embedding with rope_theta = {2}",
                  type, formatNumber(factor), formatNumber(c.ropeTheta))
              .str();
      double mscaleAllDim = o.getNumber("mscale_all_dim").value_or(0.0);
      if (type == "yarn" && factor > 1.0 && mscaleAllDim != 0.0) {
        // DeepSeek-V3 scales the softmax by mscale^2 under YaRN.
        double mscale = 0.1 * mscaleAllDim * std::log(factor) + 1.0;
        message += formatv(", and the softmax scale is not multiplied by "
                           "YaRN's mscale^2 = {0:f3}",
                           mscale * mscale)
                       .str();
      }
      notes.approximated.push_back(note("rope_scaling", message));
    }
    if (c.hasMoE() && c.topkMethod == TopkMethod::GroupLimitedGreedy)
      notes.approximated.push_back(
          note("topk_method",
               "groups are ranked by the sum of their two best scores "
               "(noaux_tc's rule, which octet.moe_gate implements) instead "
               "of their best score"));
    double auxAlpha = 0.0;
    if (Error err = r.getNumber("aux_loss_alpha", auxAlpha))
      return err;
    if (r.has("aux_loss_alpha")) {
      if (auxAlpha != 0.0 && c.hasMoE())
        notes.approximated.push_back(note(
            "aux_loss_alpha",
            formatv("the sequence-wise auxiliary balance loss (alpha = {0}) "
                    "is not part of the training loss",
                    formatNumber(auxAlpha))));
      else
        notes.unused.push_back(note("aux_loss_alpha", ""));
    }

    for (StringRef key : kUnusedKeys)
      if (r.has(key)) {
        r.consume(key);
        notes.unused.push_back(note(key, ""));
      }
    llvm::sort(notes.unused, [](const ConfigNote &a, const ConfigNote &b) {
      return a.line < b.line;
    });

    for (const std::string &key : r.getUnconsumedKeys())
      notes.unknown.push_back(
          note(key, "not a key of a DeepSeek-V3 config.json"));

    if (const json::Object *root = doc.getRoot().getAsObject())
      for (const auto &entry : *root)
        c.keyLines[entry.first] = doc.getLine(entry.first);
    return Error::success();
  }

  const JsonDocument &doc;
  ObjectReader &r;
  ModelConfig &c;
};

} // namespace

Expected<ModelConfig> octet::parseModelConfig(StringRef text,
                                              StringRef fileName) {
  Expected<JsonDocument> doc = JsonDocument::parse(text, fileName);
  if (!doc)
    return doc.takeError();
  Expected<ObjectReader> reader =
      ObjectReader::create(*doc, doc->getRoot(), "");
  if (!reader)
    return reader.takeError();
  ModelConfig config;
  config.fileName = fileName.str();
  if (Error err = ModelConfigParser(*doc, *reader, config).run())
    return std::move(err);
  return std::move(config);
}

Expected<ModelConfig> octet::loadModelConfig(StringRef path) {
  Expected<std::string> text = readFile(path);
  if (!text)
    return text.takeError();
  return parseModelConfig(*text, path);
}
