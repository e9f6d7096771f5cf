//===- Plan.cpp - Parameters, FLOPs and memory of a training step ---------===//
//
// Closed-form counts for a ModelConfig and op-by-op counts for a graph. The
// two agree exactly on parameters and FLOPs for a graph GraphBuilder built
// (test/Tools/octetc/plan-graph.test checks this), which is what keeps the
// formulas honest.
//
//===----------------------------------------------------------------------===//

#include "octet/Frontends/Plan.h"
#include "octet/Schedule/PipelineSchedule.h"

#include "octet/Dialect/Octet/Octet.h"

#include "JsonSupport.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <map>
#include <set>

using namespace mlir;
using namespace octet;

//===----------------------------------------------------------------------===//
// Formatting
//===----------------------------------------------------------------------===//

namespace {

/// 671026404352 -> "671,026,404,352".
std::string withCommas(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

/// 671026404352 -> "671.03B", 3710224 -> "3.71M".
std::string scaled(double value) {
  static const std::pair<double, const char *> units[] = {
      {1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
  for (auto [size, suffix] : units)
    if (std::abs(value) >= size)
      return llvm::formatv("{0:f2}{1}", value / size, suffix).str();
  return llvm::formatv("{0:f0}", value).str();
}

std::string bytes(double value) {
  static const std::pair<double, const char *> units[] = {
      {1024.0 * 1024 * 1024 * 1024, "TiB"},
      {1024.0 * 1024 * 1024, "GiB"},
      {1024.0 * 1024, "MiB"},
      {1024.0, "KiB"}};
  for (auto [size, suffix] : units)
    if (value >= size)
      return llvm::formatv("{0:f2} {1}", value / size, suffix).str();
  return llvm::formatv("{0:f0} B", value).str();
}

/// FLOPs in SI units: "16.03 GFLOP".
std::string siFlops(double value) {
  static const std::pair<double, const char *> units[] = {
      {1e18, "EFLOP"}, {1e15, "PFLOP"}, {1e12, "TFLOP"},
      {1e9, "GFLOP"},  {1e6, "MFLOP"},  {1e3, "KFLOP"}};
  for (auto [size, suffix] : units)
    if (value >= size)
      return llvm::formatv("{0:f2} {1}", value / size, suffix).str();
  return llvm::formatv("{0:f0} FLOP", value).str();
}

/// FLOPs as an exact integer (while doubles hold one) and in SI units.
std::string flops(double value) {
  std::string exact = value < 9.0e15 ? llvm::formatv("{0:f0}", value).str()
                                     : llvm::formatv("{0:e4}", value).str();
  if (value < 1e3)
    return exact + " FLOP";
  return exact + " (" + siFlops(value) + ")";
}

/// One row of a table: a label, an exact count and its scaled form.
void row(llvm::raw_ostream &os, const llvm::Twine &label, int64_t count) {
  os << "  " << llvm::left_justify(label.str(), 58)
     << llvm::right_justify(withCommas(count), 20) << "  "
     << llvm::right_justify(scaled(static_cast<double>(count)), 9) << "\n";
}

void textRow(llvm::raw_ostream &os, const llvm::Twine &label,
             const llvm::Twine &value) {
  os << "  " << llvm::left_justify(label.str(), 34) << value << "\n";
}

double elementCount(ArrayRef<int64_t> shape) {
  double n = 1;
  for (int64_t d : shape)
    n *= static_cast<double>(d);
  return n;
}

//===----------------------------------------------------------------------===//
// Closed-form counts of a ModelConfig
//===----------------------------------------------------------------------===//

/// Parameters of one decoder layer.
struct LayerParams {
  int64_t attention = 0, attentionMatmul = 0, norms = 0, dense = 0, routed = 0,
          routedActive = 0, shared = 0, router = 0, routerMatmul = 0,
          frozen = 0;

  int64_t getTotal() const {
    return attention + norms + dense + routed + shared + router;
  }
  int64_t getActivated() const {
    return attention + norms + dense + routedActive + shared + router;
  }
  int64_t getMatmul() const {
    return attentionMatmul + dense + routedActive + shared + routerMatmul;
  }
};

LayerParams countLayer(const ModelConfig &m, int64_t layer) {
  LayerParams p;
  int64_t h = m.hiddenSize, heads = m.numAttentionHeads;
  int64_t q = m.qLoraRank
                  ? *m.qLoraRank * h + heads * m.getQKHeadDim() * *m.qLoraRank
                  : heads * m.getQKHeadDim() * h;
  int64_t kv = (m.kvLoraRank + m.qkRopeHeadDim) * h +
               heads * (m.qkNopeHeadDim + m.vHeadDim) * m.kvLoraRank;
  int64_t o = h * heads * m.vHeadDim;
  p.attentionMatmul = q + kv + o;
  // q_a_layernorm and kv_a_layernorm belong to self_attn.
  p.attention = p.attentionMatmul + m.qLoraRank.value_or(0) + m.kvLoraRank;
  p.norms = 2 * h;
  if (!m.isMoELayer(layer)) {
    p.dense = 3 * h * m.intermediateSize;
    return p;
  }
  int64_t expert = 3 * h * m.moeIntermediateSize;
  p.routed = m.nRoutedExperts * expert;
  p.routedActive = m.numExpertsPerTok * expert;
  p.shared = m.nSharedExperts * expert;
  p.routerMatmul = m.nRoutedExperts * h;
  p.frozen = m.topkMethod == TopkMethod::NoAuxTC ? m.nRoutedExperts : 0;
  p.router = p.routerMatmul + p.frozen;
  return p;
}

/// Parameters of MTP module `j` outside its decoder block: enorm, hnorm,
/// eh_proj, shared_head.norm.
int64_t mtpExtraParams(const ModelConfig &m) {
  int64_t h = m.hiddenSize;
  return 3 * h + 2 * h * h;
}

} // namespace

ParameterCounts octet::countParameters(const ModelConfig &m) {
  ParameterCounts c;
  int64_t h = m.hiddenSize, vocabRows = m.vocabSize * h;
  c.embedding = vocabRows;
  c.head = m.tieWordEmbeddings ? 0 : vocabRows;
  c.norms = h; // model.norm
  // The head is applied to every token (tied or not); the embedding table is
  // only looked up.
  c.activatedMain = vocabRows + h;
  c.matmulPerToken = vocabRows;
  for (int64_t layer = 0; layer < m.numHiddenLayers; ++layer) {
    LayerParams p = countLayer(m, layer);
    c.attention += p.attention;
    c.norms += p.norms;
    c.denseMLP += p.dense;
    c.routedExperts += p.routed;
    c.sharedExperts += p.shared;
    c.routers += p.router;
    c.frozen += p.frozen;
    c.activatedMain += p.getActivated();
    c.matmulPerToken += p.getMatmul();
  }
  c.activatedWithMTP = c.activatedMain;
  for (int64_t j = 0; j < m.numNextnPredictLayers; ++j) {
    LayerParams p = countLayer(m, m.numHiddenLayers + j);
    c.mtp += p.getTotal() + mtpExtraParams(m);
    c.frozen += p.frozen;
    c.activatedWithMTP += p.getActivated() + mtpExtraParams(m);
    // eh_proj, the block, and the shared head once more.
    c.matmulPerToken += 2 * h * h + p.getMatmul() + vocabRows;
    c.mtpCheckpointCopies += m.tieWordEmbeddings ? vocabRows : 2 * vocabRows;
  }
  return c;
}

StepFlops octet::countStepFlops(const ModelConfig &m, const TrainConfig &t) {
  StepFlops f;
  ParameterCounts c = countParameters(m);
  double tokens = static_cast<double>(t.getTokensPerStep());
  f.matmul = 6.0 * static_cast<double>(c.matmulPerToken) * tokens;
  // Per sequence, layer and head: S(S+1)/2 query-key pairs, each costing
  // Dqk MACs for the score and Dv for the value sum; x2 FLOPs per MAC, x3
  // for forward + backward.
  double s = static_cast<double>(t.sequenceLength);
  double pairs = s * (s + 1) / 2;
  double perLayer = 3.0 * 2.0 * static_cast<double>(m.numAttentionHeads) *
                    pairs * static_cast<double>(m.getQKHeadDim() + m.vHeadDim);
  f.attention =
      perLayer *
      static_cast<double>(m.numHiddenLayers + m.numNextnPredictLayers) *
      static_cast<double>(t.globalBatch);
  return f;
}

//===----------------------------------------------------------------------===//
// Memory per rank
//===----------------------------------------------------------------------===//

namespace {

/// The part of the model one pipeline chunk holds.
struct Chunk {
  double params = 0;       // non-expert parameters
  double expertParams = 0; // routed experts, divided by ep on a rank
  double frozen = 0;
  double activationBytesPerToken = 0;
  double flopsPerToken = 0; // training FLOPs of a token through the chunk
  int64_t firstLayer = 0, numLayers = 0;
  int64_t moeLayers = 0; // MTP modules' included
  bool hasEmbedding = false, hasHead = false;
};

/// Bytes a layer caches per token for its backward pass.
struct ActivationBytes {
  double high; // high-precision activations: the graph's element type
  double fp8;  // linear inputs: FP8 + one f32 scale per 128 (deepseek-v3)

  double attention(const ModelConfig &m) const {
    double h = m.hiddenSize, heads = m.numAttentionHeads,
           q = m.qLoraRank.value_or(0), kv = m.kvLoraRank,
           qk = m.getQKHeadDim(), v = m.vHeadDim;
    // Inputs of: input_layernorm, q_a_layernorm, kv_a_layernorm, attention
    // (q, k, v) and its output (for the softmax backward), and the residual
    // into post_attention_layernorm.
    double hi = h + q + kv + 2 * heads * qk + 2 * heads * v + h;
    // Linear inputs cached for Wgrad: q_a/kv_a (one copy), q_b, kv_b, o_proj.
    double lo = h + q + kv + heads * v;
    // Softmax statistics: one f32 per head.
    return high * hi + fp8 * lo + 4.0 * heads;
  }
  double dense(const ModelConfig &m) const {
    // gate/up input and the SwiGLU input (its output is recomputed).
    return fp8 * (m.hiddenSize + 2.0 * m.intermediateSize);
  }
  double moe(const ModelConfig &m) const {
    double h = m.hiddenSize, k = m.numExpertsPerTok, ns = m.nSharedExperts,
           w = m.moeIntermediateSize;
    // Router input and the expert outputs (for the combine weights'
    // gradient) in high precision; routing weights and indices; dispatched
    // rows, shared-expert input and SwiGLU inputs in FP8.
    return high * (h + k * h) + 8.0 * k +
           fp8 * (k * h + (ns > 0 ? h : 0) + 2 * k * w + 2 * ns * w);
  }
  double layer(const ModelConfig &m, int64_t index) const {
    return attention(m) + (m.isMoELayer(index) ? moe(m) : dense(m));
  }
  /// Final norm and head inputs, f32 logits for the loss backward.
  double head(const ModelConfig &m) const {
    return high * 2.0 * m.hiddenSize + 4.0 * m.vocabSize;
  }
  /// One MTP module besides its block: enorm/hnorm inputs, eh_proj input,
  /// and its own norm, head and logits.
  double mtpExtra(const ModelConfig &m) const {
    return high * 2.0 * m.hiddenSize + fp8 * 2.0 * m.hiddenSize + head(m);
  }
};

ActivationBytes getActivationBytes(const TrainConfig &t, ActivationType dt) {
  double high = dt == ActivationType::BF16 ? 2.0 : 4.0;
  switch (t.recipe) {
  case PrecisionRecipe::DeepSeekV3:
    return {high, 1.0 + 4.0 / 128.0};
  case PrecisionRecipe::BF16:
    return {high, 2.0};
  case PrecisionRecipe::F32:
    return {4.0, 4.0};
  }
  llvm_unreachable("unknown recipe");
}

/// Training FLOPs per token of decoder layer `layer` (matmuls x 6, and the
/// causal attention core at the configured sequence length).
double layerFlopsPerToken(const ModelConfig &m, const TrainConfig &t,
                          int64_t layer) {
  double s = static_cast<double>(t.sequenceLength);
  double attention = 3.0 * 2.0 * static_cast<double>(m.numAttentionHeads) *
                     (s + 1) / 2 *
                     static_cast<double>(m.getQKHeadDim() + m.vHeadDim);
  return 6.0 * static_cast<double>(countLayer(m, layer).getMatmul()) +
         attention;
}

/// The same for what the last chunk holds besides its layers: the head,
/// and each MTP module (eh_proj, its block and the shared head again).
double tailFlopsPerToken(const ModelConfig &m, const TrainConfig &t) {
  double h = m.hiddenSize, vocabRows = double(m.vocabSize) * h;
  double flops = 6.0 * vocabRows;
  for (int64_t j = 0; j < m.numNextnPredictLayers; ++j)
    flops += 6.0 * (2 * h * h + vocabRows) +
             layerFlopsPerToken(m, t, m.numHiddenLayers + j);
  return flops;
}

} // namespace

std::vector<int64_t> octet::balanceStageLayers(ArrayRef<double> layerCosts,
                                               int64_t chunks,
                                               double lastChunkExtra) {
  int64_t layers = static_cast<int64_t>(layerCosts.size());
  if (chunks <= 0)
    return {};
  if (layers < chunks) {
    // Too few layers to give each chunk one: even split, some empty.
    std::vector<int64_t> out(chunks);
    for (int64_t c = 0; c < chunks; ++c)
      out[c] = (c + 1) * layers / chunks - c * layers / chunks;
    return out;
  }
  std::vector<double> prefix(layers + 1, 0);
  for (int64_t l = 0; l < layers; ++l)
    prefix[l + 1] = prefix[l] + layerCosts[l];
  // best[c][l]: least sum of squared chunk costs putting layers [0, l) in
  // chunks [0, c), each chunk at least one layer. Squares favour the even
  // split among those with the same largest chunk, and keep it unique.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(chunks + 1,
                                        std::vector<double>(layers + 1, inf));
  std::vector<std::vector<int64_t>> from(chunks + 1,
                                         std::vector<int64_t>(layers + 1, -1));
  best[0][0] = 0;
  for (int64_t c = 1; c <= chunks; ++c)
    for (int64_t l = c; l <= layers - (chunks - c); ++l)
      for (int64_t k = c - 1; k < l; ++k) {
        if (best[c - 1][k] == inf)
          continue;
        double cost =
            prefix[l] - prefix[k] + (c == chunks ? lastChunkExtra : 0);
        double total = best[c - 1][k] + cost * cost;
        if (total < best[c][l]) {
          best[c][l] = total;
          from[c][l] = k;
        }
      }
  std::vector<int64_t> out(chunks);
  for (int64_t c = chunks, l = layers; c > 0; --c) {
    int64_t k = from[c][l];
    out[c - 1] = l - k;
    l = k;
  }
  return out;
}

namespace {

/// Splits the model into the chunks of the schedule: the main layers as
/// `parallel.stage_layers` pins them, else balanced by training FLOPs; the
/// embedding on the first chunk, the final norm, head and MTP modules on
/// the last (as DeepSeek-V3 places them).
std::vector<Chunk> splitModel(const ModelConfig &m, const TrainConfig &t,
                              const ActivationBytes &ab) {
  int64_t count = t.schedule == PipelineSchedule::DualPipe
                      ? t.pp
                      : t.pp * getChunksPerRank(t.schedule);
  std::vector<Chunk> chunks(count);
  std::vector<int64_t> sizes = t.stageLayers;
  if (sizes.empty()) {
    std::vector<double> costs;
    for (int64_t l = 0; l < m.numHiddenLayers; ++l)
      costs.push_back(layerFlopsPerToken(m, t, l));
    sizes = balanceStageLayers(costs, count, tailFlopsPerToken(m, t));
  }
  for (int64_t c = 0, first = 0; c < count; ++c) {
    chunks[c].firstLayer = first;
    chunks[c].numLayers = sizes[c];
    first += sizes[c];
  }
  auto addLayer = [&](Chunk &chunk, int64_t layer) {
    LayerParams p = countLayer(m, layer);
    chunk.params += p.getTotal() - p.routed;
    chunk.expertParams += p.routed;
    chunk.frozen += p.frozen;
    chunk.activationBytesPerToken += ab.layer(m, layer);
    chunk.flopsPerToken += layerFlopsPerToken(m, t, layer);
    chunk.moeLayers += m.isMoELayer(layer) ? 1 : 0;
  };
  for (Chunk &chunk : chunks)
    for (int64_t l = chunk.firstLayer; l < chunk.firstLayer + chunk.numLayers;
         ++l)
      addLayer(chunk, l);
  double vocabRows = static_cast<double>(m.vocabSize) * m.hiddenSize;
  chunks.front().params += vocabRows;
  chunks.front().hasEmbedding = true;
  Chunk &last = chunks.back();
  last.hasHead = true;
  // A tied head needs the table on the last chunk too when that is not the
  // first.
  if (!m.tieWordEmbeddings || count > 1)
    last.params += vocabRows;
  last.params += m.hiddenSize;
  last.activationBytesPerToken += ab.head(m);
  last.flopsPerToken += tailFlopsPerToken(m, t);
  for (int64_t j = 0; j < m.numNextnPredictLayers; ++j) {
    LayerParams p = countLayer(m, m.numHiddenLayers + j);
    last.params += p.getTotal() - p.routed;
    last.expertParams += p.routed;
    last.frozen += p.frozen;
    last.activationBytesPerToken += ab.layer(m, m.numHiddenLayers + j);
    last.moeLayers += m.isMoELayer(m.numHiddenLayers + j) ? 1 : 0;
    last.params += mtpExtraParams(m);
    last.activationBytesPerToken += ab.mtpExtra(m);
  }
  return chunks;
}

/// Chunks held by pipeline rank `r`.
SmallVector<int64_t, 2> chunksOfRank(const TrainConfig &t, int64_t r) {
  switch (t.schedule) {
  case PipelineSchedule::OneFOneB:
  case PipelineSchedule::ZeroBubble1P:
    return {r};
  case PipelineSchedule::Interleaved1F1B:
    return {r, r + t.pp};
  case PipelineSchedule::DualPipe:
    return {r, t.pp - 1 - r};
  case PipelineSchedule::DualPipeV:
    return {r, 2 * t.pp - 1 - r};
  }
  llvm_unreachable("unknown schedule");
}

/// Micro-batches whose activations rank `r` holds at its peak, in units of
/// "one micro-batch through every chunk of the rank".
double inFlight(const TrainConfig &t, int64_t r) {
  double m = t.microBatches, pp = t.pp;
  switch (t.schedule) {
  case PipelineSchedule::OneFOneB:
  case PipelineSchedule::ZeroBubble1P:
    return std::min(m, pp - r);
  case PipelineSchedule::Interleaved1F1B:
    // Megatron's estimate for two virtual stages per rank.
    return std::min(m, pp - r) * (1.0 + (pp - 1.0) / (2.0 * pp));
  case PipelineSchedule::DualPipe:
    // DualPipe holds PP + 1 stage-micro-batches, over the rank's 2 stages.
    return std::max(1.0, std::min(m, pp + 1.0) / 2.0);
  case PipelineSchedule::DualPipeV:
    // The same over 2 pp half-size chunks.
    return std::max(1.0, std::min(m, 2.0 * pp + 1.0) / 2.0);
  }
  llvm_unreachable("unknown schedule");
}

struct RankMemory {
  int64_t rank = 0;
  double params = 0, trainable = 0, activationBytesPerMicroBatch = 0,
         inFlight = 0;
  double getWeights() const { return 4.0 * params; }
  double getGrads() const { return 4.0 * trainable; }
  /// Of `trainable`, the routed experts' (this rank's 1 / ep of them).
  double expertTrainable = 0;
  /// ZeRO-1 shards the moments over the ranks holding the same weights:
  /// dp of them for the dense weights, dp / ep for the experts'.
  int64_t zeroDP = 0, zeroEP = 1;
  double getMoments() const {
    if (!zeroDP)
      return 4.0 * trainable;
    return 4.0 * ((trainable - expertTrainable) / double(zeroDP) +
                  expertTrainable * double(zeroEP) / double(zeroDP));
  }
  double getActivations() const {
    return activationBytesPerMicroBatch * inFlight;
  }
  double getTotal() const {
    return getWeights() + getGrads() + getMoments() + getActivations();
  }
};

void printMemory(llvm::raw_ostream &os, const TrainConfig &t,
                 const RankMemory &worst, bool withActivations,
                 StringRef activationNote) {
  os << "\nMemory per rank (estimate; the largest is rank " << worst.rank
     << " of pp " << t.pp << ", with ep " << t.ep << ")\n";
  textRow(os, "parameters held",
          scaled(worst.params) + " (routed experts divided by ep)");
  textRow(os, "FP32 master weights",
          "4 B x params          = " + bytes(worst.getWeights()));
  textRow(os, "FP32 gradients",
          "4 B x trainable       = " + bytes(worst.getGrads()));
  textRow(os, "BF16 AdamW moments",
          (t.zero ? "2 x 2 B x (dense / dp + experts / (dp / ep)) (ZeRO-1) = "
                  : "2 x 2 B x trainable   = ") +
              bytes(worst.getMoments()));
  if (withActivations) {
    textRow(os, "activations",
            llvm::formatv("{0:f2} micro-batches x {1} = {2}", worst.inFlight,
                          bytes(worst.activationBytesPerMicroBatch),
                          bytes(worst.getActivations())));
    if (!activationNote.empty())
      textRow(os, "", activationNote);
  } else {
    textRow(os, "activations", activationNote);
  }
  textRow(os, "total", bytes(worst.getTotal()));
}

/// What --octet-insert-expert-comm makes a rank send to its expert-parallel
/// group: per MoE layer and micro-batch, the routed rows (tokens x top-k)
/// whose experts another rank owns, (ep - 1) / ep of them with balanced
/// routing. With the deepseek-v3 recipe they go to the experts in FP8 with
/// one exponent byte per 128 values, and the results and the combine's
/// gradient in BF16 (the recipe's BF16 combine); the rest, and the experts'
/// input gradient back, in the graph's high-precision type.
void printExpertTraffic(llvm::raw_ostream &os, const ModelConfig &m,
                        const TrainConfig &t, ArrayRef<Chunk> chunks,
                        const ActivationBytes &ab, double microTokens) {
  double h = m.hiddenSize;
  double rows = microTokens * m.numExpertsPerTok *
                static_cast<double>(t.ep - 1) / static_cast<double>(t.ep);
  bool recipe = t.recipe == PrecisionRecipe::DeepSeekV3;
  double dispatch = rows * h * (recipe ? 1.0 + 1.0 / 128.0 : ab.high);
  double combine = rows * h * (recipe ? 2.0 : ab.high);
  double back = rows * h * ab.high;
  int64_t worstRank = 0, worstLayers = -1;
  for (int64_t r = 0; r < t.pp; ++r) {
    int64_t layers = 0;
    for (int64_t id : chunksOfRank(t, r))
      layers += chunks[id].moeLayers;
    if (layers > worstLayers) {
      worstLayers = layers;
      worstRank = r;
    }
  }
  double perLayer = dispatch + 2 * combine + back;
  os << "\nExpert all-to-all per rank (ep " << t.ep
     << ", balanced routing: " << octet::detail::formatNumber(rows)
     << " rows of a micro-batch's MoE layer leave the rank)\n";
  textRow(os, "dispatch",
          bytes(dispatch) + (recipe ? " (FP8, one exponent per 128 values)"
                                    : " (high precision)"));
  textRow(os, "combine, and its gradient",
          "2 x " + bytes(combine) + (recipe ? " (BF16)" : " (high precision)"));
  textRow(os, "experts' input gradient",
          bytes(back) + " (" + octet::detail::formatNumber(ab.high) +
              " B per value)");
  textRow(os, "per micro-batch",
          llvm::formatv("{0} MoE layers x {1} = {2} (rank {3})", worstLayers,
                        bytes(perLayer),
                        bytes(perLayer * static_cast<double>(worstLayers)),
                        worstRank));
  textRow(os, "per step",
          bytes(perLayer * static_cast<double>(worstLayers) *
                static_cast<double>(t.microBatches)) +
              " (" + std::to_string(t.microBatches) + " micro-batches)");
}

} // namespace

//===----------------------------------------------------------------------===//
// Plan of a ModelConfig
//===----------------------------------------------------------------------===//

void octet::printPlan(llvm::raw_ostream &os, const ModelConfig &m,
                      const TrainConfig &t, ActivationType dtype) {
  int64_t moeLayers = 0;
  for (int64_t l = 0; l < m.numHiddenLayers; ++l)
    moeLayers += m.isMoELayer(l);
  int64_t depth = m.numNextnPredictLayers;

  os << "Model     " << m.fileName << ": deepseek_v3, " << m.numHiddenLayers
     << " layers (" << m.numHiddenLayers - moeLayers << " dense, " << moeLayers
     << " MoE)";
  if (depth)
    os << " + " << depth << " MTP module" << (depth > 1 ? "s" : "");
  os << "\n          hidden " << m.hiddenSize << ", vocab " << m.vocabSize
     << ", MLA " << m.numAttentionHeads << " heads (q_lora "
     << (m.qLoraRank ? std::to_string(*m.qLoraRank) : std::string("none"))
     << ", kv_lora " << m.kvLoraRank << ", qk " << m.qkNopeHeadDim << "+"
     << m.qkRopeHeadDim << ", v " << m.vHeadDim << ")\n";
  if (m.hasMoE())
    os << "          MoE " << m.nRoutedExperts << " routed experts, top-"
       << m.numExpertsPerTok << " (" << m.topkGroup << " of " << m.nGroup
       << " groups), " << m.nSharedExperts << " shared, expert width "
       << m.moeIntermediateSize << "\n";
  os << "Training  " << t.source << ": " << t.globalBatch << " sequences x "
     << t.sequenceLength << " tokens = " << withCommas(t.getTokensPerStep())
     << " tokens per step; micro-batch " << t.getMicroBatchSize() << " x "
     << t.sequenceLength << ", " << t.microBatches << " per DP rank\n"
     << "          pp " << t.pp << " x dp " << t.dp << " = " << t.pp * t.dp
     << (t.pp * t.dp == 1 ? " rank" : " ranks") << " (ep " << t.ep
     << "), schedule " << stringifySchedule(t.schedule) << ", recipe "
     << stringifyRecipe(t.recipe) << ", activations "
     << (dtype == ActivationType::BF16 ? "bf16" : "f32") << "\n";

  ParameterCounts c = countParameters(m);
  os << "\nParameters\n";
  row(os, "embedding (model.embed_tokens)", c.embedding);
  row(os, llvm::formatv("attention (MLA), {0} layers", m.numHiddenLayers),
      c.attention);
  if (c.denseMLP)
    row(os,
        llvm::formatv("dense MLPs, {0} layers", m.numHiddenLayers - moeLayers),
        c.denseMLP);
  if (m.hasMoE()) {
    row(os,
        llvm::formatv("routed experts, {0} layers x {1}", moeLayers,
                      m.nRoutedExperts),
        c.routedExperts);
    if (c.sharedExperts)
      row(os,
          llvm::formatv("shared experts, {0} layers x {1}", moeLayers,
                        m.nSharedExperts),
          c.sharedExperts);
    row(os, "routers (gate weight, e_score_correction_bias)", c.routers);
  }
  row(os, "norms", c.norms);
  row(os,
      m.tieWordEmbeddings ? "output head (tied to the embedding)"
                          : "output head (lm_head)",
      c.head);
  row(os, "total without MTP", c.getTotalMain());
  if (depth) {
    row(os, llvm::formatv("MTP modules ({0}), own parameters", depth), c.mtp);
    row(os, "total with MTP (embedding and head shared)", c.getTotalWithMTP());
    row(os, "total as stored in a checkpoint (+ MTP copies of embed/head)",
        c.getCheckpointTotal());
  }
  row(os, "activated per token, without MTP", c.activatedMain);
  if (depth)
    row(os, "activated per token, with MTP", c.activatedWithMTP);
  os << "  (activated: what one token's forward pass multiplies by: all but "
        "the routed\n   experts it is not sent to and the embedding table, "
        "which is only looked up;\n   DeepSeek's convention, which gives its "
        "21B for V2 and 37B for V3)\n";

  StepFlops f = countStepFlops(m, t);
  os << "\nCompute per training step (" << withCommas(t.getTokensPerStep())
     << " tokens, forward + backward)\n";
  textRow(os, "matmul weights per token (N)",
          withCommas(c.matmulPerToken) + " (" +
              scaled(static_cast<double>(c.matmulPerToken)) +
              "; with MTP, head once per use)");
  textRow(os, "6 x N x tokens", flops(f.matmul));
  textRow(os, "attention (causal QK^T, PV) x 3", flops(f.attention));
  textRow(os, "total", flops(f.getTotal()));
  textRow(os, "per token",
          flops(f.getTotal() / static_cast<double>(t.getTokensPerStep())));

  // Memory: the worst pipeline rank.
  ActivationBytes ab = getActivationBytes(t, dtype);
  std::vector<Chunk> chunks = splitModel(m, t, ab);
  double microTokens =
      static_cast<double>(t.getMicroBatchSize()) * t.sequenceLength;
  RankMemory worst;
  for (int64_t r = 0; r < t.pp; ++r) {
    RankMemory mem;
    mem.rank = r;
    for (int64_t id : chunksOfRank(t, r)) {
      const Chunk &chunk = chunks[id];
      mem.params += chunk.params + chunk.expertParams / t.ep;
      mem.trainable += chunk.params + chunk.expertParams / t.ep - chunk.frozen;
      mem.expertTrainable += chunk.expertParams / t.ep;
      mem.activationBytesPerMicroBatch +=
          chunk.activationBytesPerToken * microTokens;
    }
    mem.inFlight = inFlight(t, r);
    mem.zeroDP = t.zero ? t.dp : 0;
    mem.zeroEP = t.ep;
    if (r == 0 || mem.getTotal() > worst.getTotal())
      worst = mem;
  }
  std::string note =
      llvm::formatv("micro-batch {0} x {1} tokens; {2} B per high-precision "
                    "value, {3} B per cached linear input",
                    t.getMicroBatchSize(), t.sequenceLength,
                    detail::formatNumber(ab.high), detail::formatNumber(ab.fp8))
          .str();
  printMemory(os, t, worst, /*withActivations=*/true, note);
  if (t.ep > 1)
    printExpertTraffic(os, m, t, chunks, ab, microTokens);

  if (chunks.size() < 2)
    return;
  std::vector<std::string> holders(chunks.size());
  for (int64_t r = 0; r < t.pp; ++r)
    for (int64_t id : chunksOfRank(t, r))
      holders[id] += (holders[id].empty() ? "" : ", ") + std::to_string(r);
  os << "\nPipeline chunks ("
     << (t.stageLayers.empty() ? "layers balanced by training FLOPs"
                               : "layers as parallel.stage_layers pins them")
     << ")\n";
  double largest = 0, sum = 0;
  for (size_t id = 0; id < chunks.size(); ++id) {
    const Chunk &chunk = chunks[id];
    std::string what;
    if (chunk.hasEmbedding)
      what += "embedding, ";
    if (chunk.numLayers == 1)
      what += llvm::formatv("layer {0}", chunk.firstLayer).str();
    else if (chunk.numLayers > 1)
      what += llvm::formatv("layers {0}-{1}", chunk.firstLayer,
                            chunk.firstLayer + chunk.numLayers - 1)
                  .str();
    if (chunk.hasHead)
      what += m.numNextnPredictLayers ? ", head, MTP" : ", head";
    os << llvm::formatv("  chunk {0,-3} rank {1,-8} {2,-28} {3,12} per "
                        "token\n",
                        id, holders[id], what, siFlops(chunk.flopsPerToken));
    largest = std::max(largest, chunk.flopsPerToken);
    sum += chunk.flopsPerToken;
  }
  double mean = sum / static_cast<double>(chunks.size());
  os << llvm::formatv("  largest chunk / mean: {0:F3}\n", largest / mean);

  // The schedule, simulated with each stage's durations scaled by its
  // chunk's FLOPs (F : B : W = 1 : 2 : 1 of a mean chunk's forward).
  std::string error;
  std::optional<schedule::Schedule> s = schedule::build(
      *schedule::parseKind(stringifySchedule(t.schedule).str()), t.pp,
      t.microBatches, error, getChunksPerRank(t.schedule));
  if (!s)
    return; // verifyTrainConfig has accepted the sizes; nothing to add
  schedule::Costs costs;
  for (int64_t stage = 0; stage < s->stages; ++stage)
    costs.stageScale.push_back(
        chunks[stage % static_cast<int64_t>(chunks.size())].flopsPerToken /
        mean);
  schedule::Simulation sim = schedule::simulate(*s, costs);
  size_t worstRank = 0;
  for (size_t r = 1; r < sim.bubble.size(); ++r)
    if (sim.bubble[r] > sim.bubble[worstRank])
      worstRank = r;
  os << "\nPipeline schedule (simulated: the chunk costs above, F : B : W = "
        "1 : 2 : 1,\n  communication free)\n";
  textRow(os, "schedule",
          llvm::formatv("{0}, {1} ranks, {2} micro-batches",
                        stringifySchedule(t.schedule), t.pp, t.microBatches));
  textRow(os, "largest bubble",
          llvm::formatv("{0:F1}% of the step (rank {1})",
                        100.0 * sim.bubble[worstRank] / sim.makespan,
                        worstRank));
  textRow(os, "peak activations on a rank",
          llvm::formatv("{0} (chunk, micro-batch) pairs",
                        *std::max_element(sim.peakActivations.begin(),
                                          sim.peakActivations.end())));
}

//===----------------------------------------------------------------------===//
// Plan of a graph
//===----------------------------------------------------------------------===//

namespace {

/// "model.layers.12.mlp..." -> 12.
std::optional<int64_t> layerIndex(StringRef name) {
  if (!name.consume_front("model.layers."))
    return std::nullopt;
  int64_t index = 0;
  StringRef digits = name.take_until([](char ch) { return ch == '.'; });
  if (digits.getAsInteger(10, index))
    return std::nullopt;
  return index;
}

} // namespace

llvm::Expected<GraphSummary> octet::summarizeGraph(ModuleOp module,
                                                   StringRef fileName) {
  GraphSummary s;
  for (auto func : module.getOps<func::FuncOp>()) {
    FunctionType type = func.getFunctionType();
    // The loss comes first; more results are metrics (the main-model loss
    // of a graph with multi-token prediction).
    if (func.isExternal() || type.getNumInputs() < 1 ||
        type.getNumResults() < 1)
      continue;
    auto ids = dyn_cast<RankedTensorType>(type.getInput(0));
    auto loss = dyn_cast<RankedTensorType>(type.getResult(0));
    if (!ids || ids.getRank() != 2 || !ids.hasStaticShape() || !loss ||
        loss.getRank() != 0)
      continue;
    s.function = func;
    s.batch = ids.getDimSize(0);
    s.window = ids.getDimSize(1);
    break;
  }
  if (!s.function)
    return llvm::createStringError(
        "%s: no forward function: expected a func.func taking token ids "
        "tensor<BxSxi32> (static shape) and returning a tensor<f32> loss",
        fileName.str().c_str());
  if (auto stages = s.function->getAttrOfType<IntegerAttr>(
          OctetDialect::getNumStagesAttrName()))
    s.numStages = stages.getInt();

  std::set<int64_t> layers, mtpLayers;
  s.function->walk([&](Operation *op) {
    if (auto param = dyn_cast<ParamOp>(op)) {
      if (std::optional<int64_t> l = layerIndex(param.getName())) {
        layers.insert(*l);
        if (param.getName().ends_with(".eh_proj.weight"))
          mtpLayers.insert(*l);
      }
    } else if (auto dispatch = dyn_cast<MoEDispatchOp>(op)) {
      s.numRoutedExperts =
          std::max<int64_t>(s.numRoutedExperts, dispatch.getNumExperts());
    }
  });
  s.mtpDepth = static_cast<int64_t>(mtpLayers.size());
  s.numLayers = static_cast<int64_t>(layers.size()) - s.mtpDepth;
  return s;
}

void octet::printGraphPlan(llvm::raw_ostream &os, const GraphSummary &g,
                           StringRef fileName, const TrainConfig &t) {
  enum Part {
    Embedding,
    Attention,
    Dense,
    Routed,
    Shared,
    Router,
    Norm,
    Head,
    MTP,
    Other,
    NumParts
  };
  static const char *partNames[NumParts] = {"embedding (model.embed_tokens)",
                                            "attention (self_attn)",
                                            "dense MLPs",
                                            "routed experts (mlp.experts)",
                                            "shared experts",
                                            "routers (mlp.gate)",
                                            "norms",
                                            "output head (lm_head)",
                                            "MTP modules, own parameters",
                                            "other"};
  int64_t parts[NumParts] = {};
  double activatedMain = 0, activatedWithMTP = 0;
  std::map<int64_t, double> stageParams, stageExperts, stageFrozen;

  std::set<int64_t> mtpLayers;
  g.function->walk([&](ParamOp param) {
    std::optional<int64_t> l = layerIndex(param.getName());
    if (l && param.getName().ends_with(".eh_proj.weight"))
      mtpLayers.insert(*l);
  });

  g.function->walk([&](ParamOp param) {
    StringRef name = param.getName();
    auto type = cast<RankedTensorType>(param.getType());
    double size = elementCount(type.getShape());
    std::optional<int64_t> l = layerIndex(name);
    bool isMTP = l && mtpLayers.count(*l);
    Part part = Other;
    if (name == "model.embed_tokens.weight")
      part = Embedding;
    else if (name == "lm_head.weight")
      part = Head;
    else if (isMTP)
      part = MTP;
    else if (name.contains(".mlp.experts."))
      part = Routed;
    else if (name.contains(".mlp.shared_experts."))
      part = Shared;
    else if (name.contains(".mlp.gate."))
      part = Router;
    else if (name.contains(".self_attn."))
      part = Attention;
    else if (name.ends_with("norm.weight"))
      part = Norm;
    else if (name.contains(".mlp."))
      part = Dense;
    parts[part] += static_cast<int64_t>(size);

    // Activated share: the table of an embedding that is only looked up
    // counts 0, stacked expert weights top_k / E, everything else 1.
    double share = 1.0;
    bool onlyLookedUp = !param->use_empty();
    for (Operation *user : param->getUsers()) {
      if (!isa<EmbeddingOp>(user))
        onlyLookedUp = false;
      if (auto gl = dyn_cast<GroupedLinearOp>(user)) {
        auto dispatch = gl.getGroupSizes().getDefiningOp<MoEDispatchOp>();
        double rows = cast<RankedTensorType>(gl.getX().getType()).getDimSize(0);
        double experts = type.getDimSize(0);
        if (dispatch) {
          double tokensIn =
              cast<RankedTensorType>(dispatch.getX().getType()).getDimSize(0);
          share = rows / tokensIn / experts;
        }
      }
    }
    if (onlyLookedUp)
      share = 0.0;
    activatedWithMTP += share * size;
    if (!isMTP)
      activatedMain += share * size;

    int64_t stage = 0;
    if (auto attr =
            param->getAttrOfType<IntegerAttr>(OctetDialect::getStageAttrName()))
      stage = attr.getInt();
    if (part == Routed || (isMTP && name.contains(".mlp.experts.")))
      stageExperts[stage] += size;
    else
      stageParams[stage] += size;
    if (param.getFrozen())
      stageFrozen[stage] += size;
  });

  // FLOPs of one forward call, read off the ops.
  double matmul = 0, attention = 0;
  auto dims = [](Value v) {
    return cast<RankedTensorType>(v.getType()).getShape();
  };
  g.function->walk([&](Operation *op) {
    if (auto linear = dyn_cast<LinearOp>(op)) {
      ArrayRef<int64_t> x = dims(linear.getX()), w = dims(linear.getW());
      matmul += 2.0 * elementCount(x.drop_back()) * w[0] * w[1];
    } else if (auto gl = dyn_cast<GroupedLinearOp>(op)) {
      ArrayRef<int64_t> x = dims(gl.getX()), w = dims(gl.getW());
      matmul += 2.0 * x[0] * w[1] * w[2];
    } else if (auto bmm = dyn_cast<BatchMatmulOp>(op)) {
      ArrayRef<int64_t> lhs = dims(bmm.getLhs()), out = dims(bmm.getResult());
      matmul += 2.0 * elementCount(out) * lhs.back();
    } else if (auto gate = dyn_cast<MoEGateOp>(op)) {
      ArrayRef<int64_t> w = dims(gate.getW());
      matmul += 2.0 * dims(gate.getX())[0] * w[0] * w[1];
    } else if (auto attn = dyn_cast<CausalAttentionOp>(op)) {
      ArrayRef<int64_t> q = dims(attn.getQ()), v = dims(attn.getV());
      double s = q[1];
      attention += 2.0 * q[0] * q[2] * (s * (s + 1) / 2) * (q[3] + v[3]);
    }
  });
  double calls = static_cast<double>(t.globalBatch) / g.batch;
  double tokens = static_cast<double>(t.getTokensPerStep());

  os << "Model     " << fileName << ": graph @"
     << cast<func::FuncOp>(g.function).getName() << ", %ids " << g.batch
     << " x " << g.window << ", " << g.numLayers << " decoder layers";
  if (g.mtpDepth)
    os << " + " << g.mtpDepth << " MTP module" << (g.mtpDepth > 1 ? "s" : "");
  os << ", " << g.numStages << " pipeline stage" << (g.numStages > 1 ? "s" : "")
     << "\n";
  os << "Training  " << t.source << ": " << t.globalBatch << " sequences x "
     << t.sequenceLength << " tokens = " << withCommas(t.getTokensPerStep())
     << " tokens per step; " << static_cast<int64_t>(calls) << " graph call"
     << (calls == 1 ? "" : "s") << " per step\n"
     << "          pp " << t.pp << " x dp " << t.dp << " = " << t.pp * t.dp
     << (t.pp * t.dp == 1 ? " rank" : " ranks") << " (ep " << t.ep << ")\n";

  os << "\nParameters (from the octet.param ops)\n";
  int64_t total = 0;
  for (int p = 0; p < NumParts; ++p) {
    if (p == MTP)
      continue;
    if (parts[p] || p == Embedding)
      row(os, partNames[p], parts[p]);
    total += parts[p];
  }
  row(os, "total without MTP", total);
  if (g.mtpDepth) {
    row(os, partNames[MTP], parts[MTP]);
    row(os, "total with MTP (embedding and head shared)", total + parts[MTP]);
  }
  row(os, "activated per token, without MTP",
      static_cast<int64_t>(activatedMain + 0.5));
  if (g.mtpDepth)
    row(os, "activated per token, with MTP",
        static_cast<int64_t>(activatedWithMTP + 0.5));

  os << "\nCompute per training step (" << withCommas(t.getTokensPerStep())
     << " tokens, forward + backward, from the ops' shapes)\n";
  double matmulStep = 3.0 * matmul * calls,
         attentionStep = 3.0 * attention * calls;
  textRow(
      os, "matmul weights per token (N)",
      withCommas(static_cast<int64_t>(matmul * calls / (2.0 * tokens) + 0.5)));
  textRow(os, "6 x N x tokens", flops(matmulStep));
  textRow(os, "attention (causal QK^T, PV) x 3", flops(attentionStep));
  textRow(os, "total", flops(matmulStep + attentionStep));
  textRow(os, "per token", flops((matmulStep + attentionStep) / tokens));

  // Stages are the schedule's chunks: rank r holds chunksOfRank(t, r).
  RankMemory worst;
  for (int64_t r = 0; r < std::max<int64_t>(t.pp, 1); ++r) {
    RankMemory mem;
    mem.rank = r;
    SmallVector<int64_t, 2> held;
    if (g.numStages > 1)
      held = chunksOfRank(t, r);
    else
      held = {0};
    for (int64_t stage : held) {
      mem.params += stageParams[stage] + stageExperts[stage] / t.ep;
      mem.trainable +=
          stageParams[stage] + stageExperts[stage] / t.ep - stageFrozen[stage];
      mem.expertTrainable += stageExperts[stage] / t.ep;
    }
    mem.zeroDP = t.zero ? t.dp : 0;
    mem.zeroEP = t.ep;
    if (r == 0 || mem.getTotal() > worst.getTotal())
      worst = mem;
  }
  printMemory(os, t, worst, /*withActivations=*/false,
              "not estimated from a graph (plan the config.json instead)");
}

std::vector<PipelineChunk> octet::getPipelineChunks(const ModelConfig &model,
                                                    const TrainConfig &train) {
  std::vector<PipelineChunk> out;
  for (const Chunk &chunk :
       splitModel(model, train, getActivationBytes(train, ActivationType::F32)))
    out.push_back({chunk.numLayers, chunk.flopsPerToken});
  return out;
}
