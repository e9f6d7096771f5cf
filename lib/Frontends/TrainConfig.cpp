//===- TrainConfig.cpp - Training configuration parsing and checks --------===//

#include "octet/Frontends/TrainConfig.h"

#include "JsonSupport.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

using namespace llvm;
using namespace octet;
using namespace octet::detail;

StringRef octet::stringifySchedule(PipelineSchedule schedule) {
  switch (schedule) {
  case PipelineSchedule::OneFOneB:
    return "1f1b";
  case PipelineSchedule::ZeroBubble1P:
    return "zb1p";
  case PipelineSchedule::Interleaved1F1B:
    return "interleaved-1f1b";
  case PipelineSchedule::DualPipe:
    return "dualpipe";
  case PipelineSchedule::DualPipeV:
    return "dualpipev";
  }
  llvm_unreachable("unknown schedule");
}

StringRef octet::stringifyRecipe(PrecisionRecipe recipe) {
  switch (recipe) {
  case PrecisionRecipe::DeepSeekV3:
    return "deepseek-v3";
  case PrecisionRecipe::BF16:
    return "bf16";
  case PrecisionRecipe::F32:
    return "f32";
  }
  llvm_unreachable("unknown recipe");
}

std::optional<PipelineSchedule> octet::parseSchedule(StringRef name) {
  return StringSwitch<std::optional<PipelineSchedule>>(name)
      .Case("1f1b", PipelineSchedule::OneFOneB)
      .Case("zb1p", PipelineSchedule::ZeroBubble1P)
      .Case("interleaved-1f1b", PipelineSchedule::Interleaved1F1B)
      .Case("dualpipe", PipelineSchedule::DualPipe)
      .Case("dualpipev", PipelineSchedule::DualPipeV)
      .Default(std::nullopt);
}

int64_t octet::getChunksPerRank(PipelineSchedule schedule) {
  switch (schedule) {
  case PipelineSchedule::OneFOneB:
  case PipelineSchedule::ZeroBubble1P:
    return 1;
  case PipelineSchedule::Interleaved1F1B:
  case PipelineSchedule::DualPipe:
  case PipelineSchedule::DualPipeV:
    return 2;
  }
  llvm_unreachable("unknown schedule");
}

std::string TrainConfig::where(StringRef path) const {
  unsigned line = keyLines.lookup(path);
  if (line)
    return formatv("{0}:{1}", source, line).str();
  if (source == "defaults")
    return "default training config";
  return formatv("{0} (default {1})", source, path).str();
}

ModelFacts ModelFacts::fromModel(const ModelConfig &model) {
  ModelFacts facts;
  facts.numRoutedExperts = model.nRoutedExperts;
  facts.expertsWhere = model.where("n_routed_experts");
  facts.numLayers = model.numHiddenLayers;
  facts.layersWhere = model.where("num_hidden_layers");
  facts.maxPositions = model.maxPositionEmbeddings;
  facts.maxPositionsWhere = model.where("max_position_embeddings");
  return facts;
}

namespace {

Error errorAt(const TrainConfig &c, StringRef path, const Twine &message) {
  return createStringError(c.where(path) + ": " + message);
}

class TrainConfigParser {
public:
  TrainConfigParser(const JsonDocument &doc, TrainConfig &config)
      : doc(doc), c(config) {}

  Error run(ObjectReader &root) {
    if (Error err = root.getInt("sequence_length", c.sequenceLength))
      return err;
    if (Error err = root.getInt("global_batch", c.globalBatch))
      return err;
    if (Error err = root.getInt("micro_batches", c.microBatches))
      return err;
    if (Error err = root.getNumber("mtp_loss_weight", c.mtpLossWeight))
      return err;
    int64_t seed = 0;
    if (Error err = root.getInt("seed", seed))
      return err;
    if (seed < 0)
      return root.error("seed", formatv("seed = {0} must be >= 0", seed));
    c.seed = seed;

    std::string schedule = std::string(stringifySchedule(c.schedule));
    if (Error err = root.getString("schedule", schedule))
      return err;
    std::optional<PipelineSchedule> parsed = parseSchedule(schedule);
    if (!parsed)
      return root.error("schedule",
                        formatv("schedule = \"{0}\" is not one of 1f1b, zb1p, "
                                "interleaved-1f1b, dualpipe, dualpipev",
                                schedule));
    c.schedule = *parsed;

    if (Error err = readOptimizer(root))
      return err;
    if (Error err = readParallel(root))
      return err;
    if (Error err = readPrecision(root))
      return err;
    collectUnknown(root);
    return Error::success();
  }

private:
  /// Opens the object `key` of `parent` if present.
  Expected<std::optional<ObjectReader>> openObject(ObjectReader &parent,
                                                   StringRef key) {
    const json::Value *v = parent.get(key);
    if (!v || v->kind() == json::Value::Null)
      return std::optional<ObjectReader>();
    Expected<ObjectReader> child =
        ObjectReader::create(doc, *v, parent.pathOf(key));
    if (!child)
      return child.takeError();
    return std::optional<ObjectReader>(std::move(*child));
  }

  void collectUnknown(const ObjectReader &reader) {
    for (const std::string &key : reader.getUnconsumedKeys())
      c.unknownKeys.push_back({reader.pathOf(key), reader.getLine(key),
                               "not a training config key"});
  }

  Error readOptimizer(ObjectReader &root) {
    Expected<std::optional<ObjectReader>> opt = openObject(root, "optimizer");
    if (!opt)
      return opt.takeError();
    if (!*opt)
      return Error::success();
    ObjectReader &o = **opt;
    TrainConfig::Optimizer &p = c.optimizer;
    if (Error err = o.getString("name", p.name))
      return err;
    if (p.name != "adamw")
      return o.error("name", formatv("optimizer.name = \"{0}\" is not "
                                     "supported; expected \"adamw\"",
                                     p.name));
    if (Error err = o.getNumber("lr", p.lr))
      return err;
    if (Error err = o.getNumber("eps", p.eps))
      return err;
    if (Error err = o.getNumber("weight_decay", p.weightDecay))
      return err;
    if (Error err = o.getInt("warmup_steps", p.warmupSteps))
      return err;
    if (const json::Value *betas = o.get("betas")) {
      const json::Array *array = betas->getAsArray();
      std::optional<double> b1, b2;
      if (array && array->size() == 2) {
        b1 = (*array)[0].getAsNumber();
        b2 = (*array)[1].getAsNumber();
      }
      if (!b1 || !b2)
        return o.error("betas", formatv("optimizer.betas must be an array of "
                                        "two numbers, got {0}",
                                        describeValue(*betas)));
      p.betas = {*b1, *b2};
    }
    collectUnknown(o);
    return Error::success();
  }

  Error readParallel(ObjectReader &root) {
    Expected<std::optional<ObjectReader>> par = openObject(root, "parallel");
    if (!par)
      return par.takeError();
    if (!*par)
      return Error::success();
    ObjectReader &p = **par;
    if (Error err = p.getInt("pp", c.pp))
      return err;
    if (Error err = p.getInt("dp", c.dp))
      return err;
    if (Error err = p.getInt("ep", c.ep))
      return err;
    if (Error err = p.getInt("zero", c.zero))
      return err;
    if (const json::Value *layers = p.get("stage_layers")) {
      const json::Array *array = layers->getAsArray();
      if (!array || array->empty())
        return p.error("stage_layers",
                       formatv("parallel.stage_layers must be a non-empty "
                               "array of layer counts, got {0}",
                               describeValue(*layers)));
      for (const json::Value &v : *array) {
        std::optional<int64_t> n = v.getAsInteger();
        if (!n || *n < 1)
          return p.error("stage_layers",
                         formatv("parallel.stage_layers must hold positive "
                                 "integers (decoder layers per chunk), got "
                                 "{0}",
                                 describeValue(v)));
        c.stageLayers.push_back(*n);
      }
    }
    collectUnknown(p);
    return Error::success();
  }

  Error readPrecision(ObjectReader &root) {
    Expected<std::optional<ObjectReader>> prec = openObject(root, "precision");
    if (!prec)
      return prec.takeError();
    if (!*prec)
      return Error::success();
    ObjectReader &p = **prec;
    std::string recipe = std::string(stringifyRecipe(c.recipe));
    if (Error err = p.getString("recipe", recipe))
      return err;
    std::optional<PrecisionRecipe> parsed =
        StringSwitch<std::optional<PrecisionRecipe>>(recipe)
            .Case("deepseek-v3", PrecisionRecipe::DeepSeekV3)
            .Case("bf16", PrecisionRecipe::BF16)
            .Case("f32", PrecisionRecipe::F32)
            .Default(std::nullopt);
    if (!parsed)
      return p.error("recipe", formatv("precision.recipe = \"{0}\" is not "
                                       "one of deepseek-v3, bf16, f32",
                                       recipe));
    c.recipe = *parsed;

    const json::Value *overrides = p.get("overrides");
    if (!overrides || overrides->kind() == json::Value::Null) {
      collectUnknown(p);
      return Error::success();
    }
    const json::Array *array = overrides->getAsArray();
    if (!array)
      return p.error("overrides",
                     formatv("precision.overrides must be an array of "
                             "{{\"op\": ..., \"format\": ...} objects, got {0}",
                             describeValue(*overrides)));
    for (auto [i, element] : llvm::enumerate(*array)) {
      std::string path = formatv("precision.overrides[{0}]", i).str();
      Expected<ObjectReader> o = ObjectReader::create(doc, element, path);
      if (!o)
        return o.takeError();
      PrecisionOverride entry;
      entry.line = doc.getLine(path);
      if (!o->has("op") || !o->has("format"))
        return doc.error(path, path + " needs both \"op\" (a substring of an "
                                      "op or parameter name) and \"format\"");
      if (Error err = o->getString("op", entry.op))
        return err;
      if (Error err = o->getString("format", entry.format))
        return err;
      if (entry.op.empty())
        return o->error("op", path + ".op must not be empty: it would match "
                                     "every op");
      if (!llvm::is_contained(
              ArrayRef<StringRef>{"e4m3", "e5m2", "bf16", "f32"}, entry.format))
        return o->error("format", formatv("{0}.format = \"{1}\" is not one "
                                          "of e4m3, e5m2, bf16, f32",
                                          path, entry.format));
      collectUnknown(*o);
      c.overrides.push_back(std::move(entry));
    }
    collectUnknown(p);
    return Error::success();
  }

  const JsonDocument &doc;
  TrainConfig &c;
};

/// Records the line of every key path of the document that the config uses.
void recordLines(const JsonDocument &doc, TrainConfig &c) {
  for (StringRef path : {"sequence_length",
                         "global_batch",
                         "micro_batches",
                         "mtp_loss_weight",
                         "seed",
                         "schedule",
                         "optimizer",
                         "optimizer.name",
                         "optimizer.lr",
                         "optimizer.betas",
                         "optimizer.eps",
                         "optimizer.weight_decay",
                         "optimizer.warmup_steps",
                         "parallel",
                         "parallel.pp",
                         "parallel.dp",
                         "parallel.ep",
                         "parallel.zero",
                         "parallel.stage_layers",
                         "precision",
                         "precision.recipe",
                         "precision.overrides"})
    if (unsigned line = doc.getLine(path))
      c.keyLines[path] = line;
}

} // namespace

Error octet::verifyTrainConfig(const TrainConfig &c, const ModelFacts &facts) {
  auto atLeast = [&](StringRef path, int64_t value, int64_t min) -> Error {
    if (value >= min)
      return Error::success();
    return errorAt(c, path,
                   formatv("{0} = {1} must be {2}", path, value,
                           min == 1 ? std::string("positive")
                                    : formatv(">= {0}", min).str()));
  };
  for (auto [path, value, min] :
       {std::tuple<StringRef, int64_t, int64_t>{"sequence_length",
                                                c.sequenceLength, 1},
        {"global_batch", c.globalBatch, 1},
        {"micro_batches", c.microBatches, 1},
        {"parallel.pp", c.pp, 1},
        {"parallel.dp", c.dp, 1},
        {"parallel.ep", c.ep, 1},
        {"optimizer.warmup_steps", c.optimizer.warmupSteps, 0}})
    if (Error err = atLeast(path, value, min))
      return err;

  // Token and FLOP counts are int64 and doubles, exact below 2^53.
  if (static_cast<double>(c.globalBatch) * c.sequenceLength >= 0x1p53)
    return errorAt(c, "global_batch",
                   formatv("global_batch x sequence_length = {0} x {1} "
                           "tokens per step is more than Octet counts exactly "
                           "(2^53)",
                           c.globalBatch, c.sequenceLength));
  if (facts.maxPositions > 0 && c.sequenceLength > facts.maxPositions)
    return errorAt(c, "sequence_length",
                   formatv("sequence_length = {0} exceeds the model's {1} "
                           "positions ({2})",
                           c.sequenceLength, facts.maxPositions,
                           facts.maxPositionsWhere));
  if (c.globalBatch % (c.microBatches * c.dp) != 0)
    return errorAt(c, "global_batch",
                   formatv("global_batch = {0} is not divisible by "
                           "micro_batches x parallel.dp = {1} x {2} = {3}",
                           c.globalBatch, c.microBatches, c.dp,
                           c.microBatches * c.dp));

  // Expert parallelism: ep ranks are taken from the data-parallel ranks of a
  // stage (DeepSeek-V3: 64-way EP within 128-way DP), and split the experts.
  if (c.ep > 1 && facts.numRoutedExperts == 0)
    return errorAt(c, "parallel.ep",
                   formatv("parallel.ep = {0} but the model has no routed "
                           "experts ({1})",
                           c.ep, facts.expertsWhere));
  if (facts.numRoutedExperts > 0 && facts.numRoutedExperts % c.ep != 0)
    return errorAt(c, "parallel.ep",
                   formatv("parallel.ep = {0} does not divide the {1} routed "
                           "experts ({2})",
                           c.ep, facts.numRoutedExperts, facts.expertsWhere));
  if (c.dp % c.ep != 0)
    return errorAt(c, "parallel.ep",
                   formatv("parallel.ep = {0} does not divide parallel.dp = "
                           "{1}: expert-parallel groups are formed from the "
                           "data-parallel ranks",
                           c.ep, c.dp));

  if (c.zero != 0 && c.zero != 1)
    return errorAt(c, "parallel.zero",
                   formatv("parallel.zero = {0}: Octet implements ZeRO "
                           "stage 0 (no sharding) and 1 (the optimizer state "
                           "sharded over the data-parallel ranks)",
                           c.zero));
  if (c.zero == 1 && c.dp == 1)
    return errorAt(c, "parallel.zero",
                   "parallel.zero = 1 shards the optimizer state over the "
                   "data-parallel ranks: it needs parallel.dp > 1");

  int64_t chunks = getChunksPerRank(c.schedule);
  // dualpipe puts stages r and pp-1-r on rank r: pp chunks in all.
  int64_t modelChunks =
      c.schedule == PipelineSchedule::DualPipe ? c.pp : c.pp * chunks;
  if (facts.numLayers > 0 && modelChunks > facts.numLayers)
    return errorAt(c, "parallel.pp",
                   formatv("parallel.pp = {0} with schedule {1} splits the "
                           "model into {2} chunks, more than its {3} decoder "
                           "layers ({4})",
                           c.pp, stringifySchedule(c.schedule), modelChunks,
                           facts.numLayers, facts.layersWhere));
  if (!c.stageLayers.empty()) {
    int64_t sum = 0;
    for (int64_t n : c.stageLayers)
      sum += n;
    if (int64_t(c.stageLayers.size()) != modelChunks)
      return errorAt(c, "parallel.stage_layers",
                     formatv("parallel.stage_layers gives {0} chunk(s); "
                             "parallel.pp = {1} with schedule {2} splits the "
                             "model into {3}",
                             c.stageLayers.size(), c.pp,
                             stringifySchedule(c.schedule), modelChunks));
    if (facts.numLayers > 0 && sum != facts.numLayers)
      return errorAt(c, "parallel.stage_layers",
                     formatv("parallel.stage_layers sums to {0} layers; the "
                             "model has {1} decoder layers ({2})",
                             sum, facts.numLayers, facts.layersWhere));
  }
  if (facts.numStages > 0 && modelChunks != facts.numStages)
    return errorAt(c, "parallel.pp",
                   formatv("parallel.pp = {0} with schedule {1} splits the "
                           "model into {2} chunk(s), but the graph is split "
                           "into {3} pipeline stages ({4})",
                           c.pp, stringifySchedule(c.schedule), modelChunks,
                           facts.numStages, facts.stagesWhere));
  switch (c.schedule) {
  case PipelineSchedule::DualPipe:
    if (c.pp % 2 != 0)
      return errorAt(c, "schedule",
                     formatv("schedule dualpipe pairs ranks r and pp-1-r, so "
                             "parallel.pp = {0} must be even",
                             c.pp));
    [[fallthrough]];
  case PipelineSchedule::DualPipeV:
    if (c.pp > 1 && (c.microBatches < 2 * c.pp || c.microBatches % 2 != 0))
      return errorAt(c, "micro_batches",
                     formatv("micro_batches = {0}: schedule {1} needs an even "
                             "number of at least 2 x parallel.pp = {2}",
                             c.microBatches, stringifySchedule(c.schedule),
                             2 * c.pp));
    break;
  case PipelineSchedule::Interleaved1F1B:
    if (c.pp > 1 && c.microBatches % c.pp != 0)
      return errorAt(c, "micro_batches",
                     formatv("micro_batches = {0}: schedule interleaved-1f1b "
                             "needs a multiple of parallel.pp = {1}",
                             c.microBatches, c.pp));
    break;
  default:
    break;
  }

  const TrainConfig::Optimizer &o = c.optimizer;
  if (!(o.lr > 0.0))
    return errorAt(
        c, "optimizer.lr",
        formatv("optimizer.lr = {0} must be positive", formatNumber(o.lr)));
  for (double beta : o.betas)
    if (!(beta >= 0.0 && beta < 1.0))
      return errorAt(c, "optimizer.betas",
                     formatv("optimizer.betas = [{0}, {1}]: each must be in "
                             "[0, 1)",
                             formatNumber(o.betas[0]),
                             formatNumber(o.betas[1])));
  if (!(o.eps > 0.0))
    return errorAt(
        c, "optimizer.eps",
        formatv("optimizer.eps = {0} must be positive", formatNumber(o.eps)));
  if (!(o.weightDecay >= 0.0))
    return errorAt(c, "optimizer.weight_decay",
                   formatv("optimizer.weight_decay = {0} must be >= 0",
                           formatNumber(o.weightDecay)));
  if (!(c.mtpLossWeight >= 0.0))
    return errorAt(c, "mtp_loss_weight",
                   formatv("mtp_loss_weight = {0} must be >= 0",
                           formatNumber(c.mtpLossWeight)));
  return Error::success();
}

Expected<TrainConfig> octet::parseTrainConfig(StringRef text,
                                              StringRef fileName,
                                              const ModelFacts &facts) {
  Expected<JsonDocument> doc = JsonDocument::parse(text, fileName);
  if (!doc)
    return doc.takeError();
  Expected<ObjectReader> root = ObjectReader::create(*doc, doc->getRoot(), "");
  if (!root)
    return root.takeError();
  TrainConfig config;
  config.source = fileName.str();
  if (Error err = TrainConfigParser(*doc, config).run(*root))
    return std::move(err);
  recordLines(*doc, config);
  if (Error err = verifyTrainConfig(config, facts))
    return std::move(err);
  return std::move(config);
}

Expected<TrainConfig> octet::loadTrainConfig(StringRef path,
                                             const ModelFacts &facts) {
  Expected<std::string> text = readFile(path);
  if (!text)
    return text.takeError();
  return parseTrainConfig(*text, path, facts);
}
