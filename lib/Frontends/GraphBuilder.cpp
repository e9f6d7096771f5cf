//===- GraphBuilder.cpp - Forward graph of a DeepSeek-V3 model ------------===//
//
// Emits the graph op by op in the order of examples/tiny-moe/model.mlir:
// each block declares its parameters where it starts using them, and every
// op is named (through a NameLoc) like the example's SSA values, so that a
// printout with name prefixes reads like the hand-written graph.
//
//===----------------------------------------------------------------------===//

#include "octet/Frontends/GraphBuilder.h"

#include "octet/Dialect/Octet/Octet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Verifier.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace octet;

namespace {

class ForwardBuilder {
public:
  ForwardBuilder(MLIRContext &ctx, const ModelConfig &model,
                 const GraphOptions &options)
      : b(&ctx), m(model), o(options),
        fileLoc(FileLineColLoc::get(&ctx, model.fileName, 1, 1)) {
    f32 = b.getF32Type();
    i32 = b.getI32Type();
    act = options.dtype == ActivationType::BF16 ? Type(b.getBF16Type()) : f32;
    stage = b.getI64IntegerAttr(0);
    batch = options.batch;
    seq = options.sequenceLength;
    tokens = batch * seq;
    hidden = model.hiddenSize;
  }

  OwningOpRef<ModuleOp> build();

private:
  Location loc(StringRef name) {
    return NameLoc::get(b.getStringAttr(name), fileLoc);
  }

  /// Creates an op named `name`, on the current pipeline stage.
  template <typename OpT, typename... Args>
  OpT create(StringRef name, Args &&...args) {
    OpT op = OpT::create(b, loc(name), std::forward<Args>(args)...);
    op->setAttr(OctetDialect::getStageAttrName(), stage);
    return op;
  }

  RankedTensorType tensorOf(ArrayRef<int64_t> shape, Type element) {
    return RankedTensorType::get(shape, element);
  }
  static ArrayRef<int64_t> shapeOf(Value v) {
    return cast<RankedTensorType>(v.getType()).getShape();
  }

  Value param(StringRef name, const Twine &key, ArrayRef<int64_t> shape,
              Type element, bool frozen = false) {
    return create<ParamOp>(name, tensorOf(shape, element), key.str(), frozen);
  }
  /// A weight of a matmul: in the activation type.
  Value weight(StringRef name, const Twine &key, ArrayRef<int64_t> shape) {
    return param(name, key, shape, act);
  }
  /// Norm gains, the router and its bias stay f32 whatever the activations.
  Value gain(StringRef name, const Twine &key, int64_t size) {
    return param(name, key, {size}, f32);
  }

  Value linear(StringRef name, Value x, Value w) {
    SmallVector<int64_t> shape(shapeOf(x).drop_back());
    shape.push_back(shapeOf(w)[0]);
    return create<LinearOp>(name, tensorOf(shape, act), x, w, Value(),
                            PrecisionAttr());
  }
  Value rmsnorm(StringRef name, Value x, Value gamma) {
    return create<RMSNormOp>(name, x.getType(), x, gamma, APFloat(m.rmsNormEps),
                             PrecisionAttr());
  }
  Value rotary(StringRef name, Value x) {
    return create<RotaryOp>(name, x.getType(), x, APFloat(m.ropeTheta),
                            PrecisionAttr());
  }
  Value add(StringRef name, Value lhs, Value rhs) {
    return create<AddOp>(name, lhs.getType(), lhs, rhs, PrecisionAttr());
  }
  Value swiglu(StringRef name, Value gate, Value up) {
    return create<SwiGLUOp>(name, gate.getType(), gate, up, PrecisionAttr());
  }
  Value slice(StringRef name, Value x, ArrayRef<int64_t> offsets,
              ArrayRef<int64_t> sizes) {
    SmallVector<OpFoldResult> offs, szs, strides;
    for (auto [off, size] : llvm::zip_equal(offsets, sizes)) {
      offs.push_back(b.getIndexAttr(off));
      szs.push_back(b.getIndexAttr(size));
      strides.push_back(b.getIndexAttr(1));
    }
    return create<tensor::ExtractSliceOp>(name, x, offs, szs, strides);
  }
  Value expand(StringRef name, Value x, ArrayRef<ReassociationIndices> groups,
               ArrayRef<int64_t> shape) {
    auto type =
        tensorOf(shape, cast<RankedTensorType>(x.getType()).getElementType());
    return create<tensor::ExpandShapeOp>(name, type, x, groups);
  }
  Value collapse(StringRef name, Value x,
                 ArrayRef<ReassociationIndices> groups) {
    return create<tensor::CollapseShapeOp>(name, x, groups);
  }
  Value concat(StringRef name, int64_t dim, ValueRange inputs) {
    if (inputs.size() == 1)
      return inputs.front();
    return create<tensor::ConcatOp>(name, dim, inputs);
  }

  /// Pre-norm attention block of decoder layer `layer`: returns h + MLA(h).
  Value attention(StringRef p, int64_t layer, Value h);
  /// Pre-norm MLP block (dense or MoE): returns h + MLP(h).
  Value mlp(StringRef p, int64_t layer, Value h);
  Value denseMLP(StringRef p, const std::string &key, Value x, int64_t width);
  /// Router, routed experts and shared experts; returns the MoE output.
  Value moe(StringRef p, const std::string &key, Value h, Value ln2);
  Value decoderLayer(int64_t layer, Value h) {
    std::string p = llvm::formatv("l{0}", layer).str();
    return mlp(p, layer, attention(p, layer, h));
  }

  /// Names like "l0_wqa".
  static std::string n(StringRef p, StringRef suffix) {
    return (p + "_" + suffix).str();
  }
  static std::string layerKey(int64_t layer) {
    return llvm::formatv("model.layers.{0}.", layer).str();
  }

  OpBuilder b;
  const ModelConfig &m;
  const GraphOptions &o;
  Location fileLoc;
  Type f32, i32, act;
  IntegerAttr stage;
  int64_t batch, seq, tokens, hidden;
};

Value ForwardBuilder::attention(StringRef p, int64_t layer, Value h) {
  std::string key = layerKey(layer);
  int64_t heads = m.numAttentionHeads, nope = m.qkNopeHeadDim,
          rope = m.qkRopeHeadDim, vDim = m.vHeadDim, kvLora = m.kvLoraRank;
  int64_t qkDim = m.getQKHeadDim();

  Value ln1 = gain(n(p, "ln1"), key + "input_layernorm.weight", hidden);
  Value wqa, qan, wq;
  if (m.qLoraRank) {
    wqa = weight(n(p, "wqa"), key + "self_attn.q_a_proj.weight",
                 {*m.qLoraRank, hidden});
    qan =
        gain(n(p, "qan"), key + "self_attn.q_a_layernorm.weight", *m.qLoraRank);
    wq = weight(n(p, "wqb"), key + "self_attn.q_b_proj.weight",
                {heads * qkDim, *m.qLoraRank});
  } else {
    wq = weight(n(p, "wq"), key + "self_attn.q_proj.weight",
                {heads * qkDim, hidden});
  }
  Value wkva = weight(n(p, "wkva"), key + "self_attn.kv_a_proj_with_mqa.weight",
                      {kvLora + rope, hidden});
  Value kvan =
      gain(n(p, "kvan"), key + "self_attn.kv_a_layernorm.weight", kvLora);
  Value wkvb = weight(n(p, "wkvb"), key + "self_attn.kv_b_proj.weight",
                      {heads * (nope + vDim), kvLora});
  Value wo = weight(n(p, "wo"), key + "self_attn.o_proj.weight",
                    {hidden, heads * vDim});

  Value xn = rmsnorm(n(p, "xn"), h, ln1);
  // Query path: through the q latent when there is one.
  Value qIn = xn;
  if (m.qLoraRank) {
    Value qa = linear(n(p, "qa"), xn, wqa);
    qIn = rmsnorm(n(p, "qan_out"), qa, qan);
  }
  Value qb = linear(n(p, m.qLoraRank ? "qb" : "qp"), qIn, wq);
  Value q4 =
      expand(n(p, "q4"), qb, {{0}, {1}, {2, 3}}, {batch, seq, heads, qkDim});
  // Each head's features are [nope | rope], as in the checkpoint's layout.
  Value qNope =
      slice(n(p, "q_nope"), q4, {0, 0, 0, 0}, {batch, seq, heads, nope});
  Value qPe =
      slice(n(p, "q_pe"), q4, {0, 0, 0, nope}, {batch, seq, heads, rope});
  Value qRot = rotary(n(p, "q_rot"), qPe);

  // Key/value path: one projection gives the kv latent and the rope key.
  Value kva = linear(n(p, "kva"), xn, wkva);
  Value ckv = slice(n(p, "ckv"), kva, {0, 0, 0}, {batch, seq, kvLora});
  Value kPe = slice(n(p, "k_pe"), kva, {0, 0, kvLora}, {batch, seq, rope});
  Value ckvn = rmsnorm(n(p, "ckvn"), ckv, kvan);
  Value kvb = linear(n(p, "kvb"), ckvn, wkvb);
  Value kv4 = expand(n(p, "kv4"), kvb, {{0}, {1}, {2, 3}},
                     {batch, seq, heads, nope + vDim});
  Value kNope =
      slice(n(p, "k_nope"), kv4, {0, 0, 0, 0}, {batch, seq, heads, nope});
  Value v = slice(n(p, "v"), kv4, {0, 0, 0, nope}, {batch, seq, heads, vDim});
  // The rope key is one head shared by all: rotate it once, copy it to each.
  Value kPe4 =
      expand(n(p, "k_pe4"), kPe, {{0}, {1}, {2, 3}}, {batch, seq, 1, rope});
  Value kRot = rotary(n(p, "k_rot"), kPe4);
  SmallVector<Value> copies(heads, kRot);
  Value kRotH = concat(n(p, "k_rot_h"), 2, copies);
  Value q = concat(n(p, "q"), 3, {qNope, qRot});
  Value k = concat(n(p, "k"), 3, {kNope, kRotH});
  // Scaled by the full query/key width; values may be narrower.
  double scale = 1.0 / std::sqrt(static_cast<double>(qkDim));
  Value attn = create<CausalAttentionOp>(
      n(p, "o"), tensorOf({batch, seq, heads, vDim}, act), q, k, v,
      b.getF64FloatAttr(scale), PrecisionAttr());
  Value o3 = collapse(n(p, "o3"), attn, {{0}, {1}, {2, 3}});
  Value out = linear(n(p, "attn"), o3, wo);
  return add(n(p, "h1"), h, out);
}

Value ForwardBuilder::denseMLP(StringRef p, const std::string &key, Value x,
                               int64_t width) {
  Value wg = weight(n(p, "wg"), key + "gate_proj.weight", {width, hidden});
  Value wu = weight(n(p, "wu"), key + "up_proj.weight", {width, hidden});
  Value wd = weight(n(p, "wd"), key + "down_proj.weight", {hidden, width});
  Value g = linear(n(p, "g"), x, wg);
  Value u = linear(n(p, "u"), x, wu);
  Value a = swiglu(n(p, "act"), g, u);
  return linear(n(p, "y"), a, wd);
}

Value ForwardBuilder::moe(StringRef p, const std::string &key, Value h,
                          Value ln2) {
  int64_t experts = m.nRoutedExperts, topK = m.numExpertsPerTok,
          width = m.moeIntermediateSize;
  Value wgate =
      param(n(p, "wgate"), key + "gate.weight", {experts, hidden}, f32);
  Value bias;
  if (m.topkMethod == TopkMethod::NoAuxTC)
    // Selection-only bias: DeepSeek-V3 updates it by its load-balancing
    // rule, not the optimizer.
    bias = param(n(p, "gbias"), key + "gate.e_score_correction_bias", {experts},
                 f32, /*frozen=*/true);
  // Stacked [E, N, K] expert weights (the checkpoint has one per expert).
  Value weG = weight(n(p, "we_g"), key + "experts.gate_proj.weight",
                     {experts, width, hidden});
  Value weU = weight(n(p, "we_u"), key + "experts.up_proj.weight",
                     {experts, width, hidden});
  Value weD = weight(n(p, "we_d"), key + "experts.down_proj.weight",
                     {experts, hidden, width});

  Value hn = rmsnorm(n(p, "hn"), h, ln2);
  // Routing works on a flat token list.
  Value tok = collapse(n(p, "tok"), hn, {{0, 1}, {2}});
  // greedy is group-limited routing with a single group.
  bool grouped = m.topkMethod != TopkMethod::Greedy;
  auto gate = create<MoEGateOp>(
      n(p, "gate"), tensorOf({tokens, topK}, f32),
      tensorOf({tokens, topK}, i32), tok, wgate, bias,
      static_cast<uint64_t>(topK),
      static_cast<uint64_t>(grouped ? m.nGroup : 1),
      static_cast<uint64_t>(grouped ? m.topkGroup : 1),
      APFloat(m.routedScalingFactor),
      m.scoringFunc == ScoringFunc::Sigmoid ? MoEScoring::Sigmoid
                                            : MoEScoring::Softmax,
      m.normTopkProb, PrecisionAttr());
  auto dispatch = create<MoEDispatchOp>(
      n(p, "dispatch"), tensorOf({tokens * topK, hidden}, act),
      tensorOf({experts}, i32), tok, gate.getIndices(),
      static_cast<uint64_t>(experts), PrecisionAttr());
  Value rows = dispatch.getRows(), sizes = dispatch.getGroupSizes();
  auto groupedLinear = [&](StringRef name, Value x, Value w) -> Value {
    return create<GroupedLinearOp>(
        name, tensorOf({tokens * topK, shapeOf(w)[1]}, act), x, w, sizes,
        PrecisionAttr());
  };
  Value eg = groupedLinear(n(p, "eg"), rows, weG);
  Value eu = groupedLinear(n(p, "eu"), rows, weU);
  Value eact = swiglu(n(p, "eact"), eg, eu);
  Value ed = groupedLinear(n(p, "ed"), eact, weD);
  Value out = create<MoECombineOp>(
      n(p, "routed"), tensorOf({tokens, hidden}, act), ed, gate.getWeights(),
      gate.getIndices(), PrecisionAttr());
  // Shared experts: one SwiGLU MLP as wide as all of them, seen by every
  // token.
  if (m.nSharedExperts > 0) {
    Value shared = denseMLP(n(p, "shared"), key + "shared_experts.", tok,
                            m.nSharedExperts * width);
    out = add(n(p, "moe"), out, shared);
  }
  return expand(n(p, "moe3"), out, {{0, 1}, {2}}, {batch, seq, hidden});
}

Value ForwardBuilder::mlp(StringRef p, int64_t layer, Value h) {
  std::string key = layerKey(layer);
  Value ln2 =
      gain(n(p, "ln2"), key + "post_attention_layernorm.weight", hidden);
  Value y;
  if (m.isMoELayer(layer)) {
    y = moe(p, key + "mlp.", h, ln2);
  } else {
    Value hn = rmsnorm(n(p, "hn"), h, ln2);
    y = denseMLP(n(p, "mlp"), key + "mlp.", hn, m.intermediateSize);
  }
  return add(n(p, "out"), h, y);
}

OwningOpRef<ModuleOp> ForwardBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  int64_t depth = m.numNextnPredictLayers;
  int64_t window = seq + depth;
  auto idsType = tensorOf({batch, window}, i32);
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(
      b, fileLoc, o.functionName,
      b.getFunctionType({idsType, idsType}, {tensorOf({}, f32)}));
  int64_t numStages =
      std::max<int64_t>(1, static_cast<int64_t>(o.stageLayers.size()));
  func->setAttr(OctetDialect::getNumStagesAttrName(),
                b.getI64IntegerAttr(numStages));
  // Chunk of each decoder layer.
  std::vector<int64_t> chunkOfLayer;
  for (int64_t c = 0; c < int64_t(o.stageLayers.size()); ++c)
    chunkOfLayer.insert(chunkOfLayer.end(), o.stageLayers[c], c);
  chunkOfLayer.resize(m.numHiddenLayers, numStages - 1);
  Block *body = func.addEntryBlock();
  Value ids = body->getArgument(0), labels = body->getArgument(1);
  body->getArgument(0).setLoc(loc("ids"));
  body->getArgument(1).setLoc(loc("labels"));
  b.setInsertionPointToEnd(body);

  // Main positions 0..S-1; MTP module k reads the window shifted by k.
  auto shifted = [&](StringRef name, Value v, int64_t k) -> Value {
    if (depth == 0)
      return v;
    return slice(name, v, {0, k}, {batch, seq});
  };
  Value embed =
      weight("embed", "model.embed_tokens.weight", {m.vocabSize, hidden});
  Value mainIds = shifted("ids_main", ids, 0);
  Value h = create<EmbeddingOp>("h0", tensorOf({batch, seq, hidden}, act),
                                embed, mainIds, PrecisionAttr());
  for (int64_t layer = 0; layer < m.numHiddenLayers; ++layer) {
    stage = b.getI64IntegerAttr(chunkOfLayer[layer]);
    h = decoderLayer(layer, h);
  }
  stage = b.getI64IntegerAttr(numStages - 1);

  Value norm = gain("norm", "model.norm.weight", hidden);
  Value head = m.tieWordEmbeddings
                   ? embed
                   : weight("head", "lm_head.weight", {m.vocabSize, hidden});
  Value hf = rmsnorm("hf", h, norm);
  Value logits = linear("logits", hf, head);
  Value loss = create<CrossEntropyOp>("loss", tensorOf({}, f32), logits,
                                      shifted("labels_main", labels, 0),
                                      PrecisionAttr());

  // Multi-token prediction: module k combines the previous depth's hidden
  // state (before any final norm) with the embedding of the token k ahead,
  // runs one decoder block and scores the token k+1 ahead with the shared
  // head.
  Value mtpSum;
  Value prev = h;
  for (int64_t j = 0; j < depth; ++j) {
    int64_t layer = m.numHiddenLayers + j, k = j + 1;
    std::string p = llvm::formatv("mtp{0}", j).str();
    std::string key = layerKey(layer);
    Value kIds = shifted(n(p, "ids"), ids, k);
    Value kLabels = shifted(n(p, "labels"), labels, k);
    Value enorm = gain(n(p, "enorm"), key + "enorm.weight", hidden);
    Value hnorm = gain(n(p, "hnorm"), key + "hnorm.weight", hidden);
    Value ehProj =
        weight(n(p, "eh_proj"), key + "eh_proj.weight", {hidden, 2 * hidden});
    Value emb =
        create<EmbeddingOp>(n(p, "emb"), tensorOf({batch, seq, hidden}, act),
                            embed, kIds, PrecisionAttr());
    Value en = rmsnorm(n(p, "en"), emb, enorm);
    Value hn = rmsnorm(n(p, "hn"), prev, hnorm);
    // [enorm(embedding); hnorm(hidden)], the order of the released weights.
    Value cat = concat(n(p, "cat"), 2, {en, hn});
    Value x = linear(n(p, "x"), cat, ehProj);
    prev = decoderLayer(layer, x);
    Value kNorm = gain(n(p, "norm"), key + "shared_head.norm.weight", hidden);
    Value kHf = rmsnorm(n(p, "hf"), prev, kNorm);
    Value kLogits = linear(n(p, "logits"), kHf, head);
    Value kLoss = create<CrossEntropyOp>(n(p, "loss"), tensorOf({}, f32),
                                         kLogits, kLabels, PrecisionAttr());
    mtpSum =
        mtpSum
            ? create<arith::AddFOp>(n(p, "loss_sum"), mtpSum, kLoss).getResult()
            : kLoss;
  }
  if (mtpSum) {
    auto scalar = tensorOf({}, f32);
    float w = static_cast<float>(o.mtpLossWeight / static_cast<double>(depth));
    Value weightValue = create<arith::ConstantOp>(
        "mtp_weight", DenseElementsAttr::get(scalar, ArrayRef<float>{w}));
    Value weighted =
        create<arith::MulFOp>("mtp_loss", mtpSum, weightValue).getResult();
    Value mainLoss = loss;
    loss = create<arith::AddFOp>("total_loss", loss, weighted).getResult();
    // The objective first, then the main model's loss as a metric (what a
    // training log compares with ln(vocab)).
    func::ReturnOp::create(b, fileLoc, ValueRange{loss, mainLoss});
    func.setFunctionType(b.getFunctionType(func.getFunctionType().getInputs(),
                                           {loss.getType(), loss.getType()}));
  } else {
    func::ReturnOp::create(b, fileLoc, loss);
  }

  if (failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> octet::buildForwardGraph(MLIRContext &context,
                                               const ModelConfig &model,
                                               const GraphOptions &options) {
  context.loadDialect<OctetDialect, func::FuncDialect, arith::ArithDialect,
                      tensor::TensorDialect>();
  return ForwardBuilder(context, model, options).build();
}
