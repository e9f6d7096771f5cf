//===- OctetOps.td - Octet graph dialect operations ------*- tablegen -*-===//

#ifndef OCTET_DIALECT_OCTET_OPS_TD
#define OCTET_DIALECT_OCTET_OPS_TD

include "Octet/OctetBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Octet_Float : AnyTypeOf<[F32, BF16], "f32 or bf16">;
def Octet_FloatTensor : RankedTensorOf<[F32, BF16]>;
def Octet_IndexTensor : RankedTensorOf<[I32, I64]>;

class Octet_Op<string mnemonic, list<Trait> traits = []>
    : Op<Octet_Dialect, mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Octet_ParamOp : Octet_Op<"param"> {
  let summary = "A named parameter of the model";
  let description = [{
    Produces the current value of the parameter `name`. The name is the key
    the parameter has in checkpoints (safetensors), so it is unique in its
    block. Autodiff derives a gradient and an optimizer update for every
    `octet.param` except `frozen` ones: state that is saved and loaded with
    the model but not trained by the optimizer, such as DeepSeek-V3's MoE
    `e_score_correction_bias`, which only steers expert selection and is
    updated by its own load-balancing rule.

    ```mlir
    %wq = octet.param "model.layers.0.self_attn.q_proj.weight" : tensor<1536x7168xf32>
    %b = octet.param "model.layers.3.mlp.gate.e_score_correction_bias" frozen : tensor<256xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, UnitAttr:$frozen);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = "$name (`frozen` $frozen^)? attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Dense ops
//===----------------------------------------------------------------------===//

def Octet_EmbeddingOp : Octet_Op<"embedding"> {
  let summary = "Table lookup of token embeddings";
  let description = [{
    `result[i..., :] = table[ids[i...], :]`. The table is `V x D`; the result
    has the shape of `ids` followed by `D`. Embeddings stay in high precision.

    ```mlir
    %h = octet.embedding %table, %ids
           : (tensor<32000x1024xbf16>, tensor<4x256xi32>) -> tensor<4x256x1024xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$table, Octet_IndexTensor:$ids,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $ids (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_LinearOp : Octet_Op<"linear"> {
  let summary = "Linear layer: Y = X W^T (+ b)";
  let description = [{
    `x` is `[..., K]`, the weight `w` is `[N, K]` (PyTorch's layout: output
    features first), the optional bias is `[N]`; the result is `[..., N]`.
    This is the op the FP8 recipe quantizes: with an `e4m3` precision the
    activation uses 1x128 tiles and the weight 128x128 blocks along K, so K
    must be a multiple of 128, and the promotion interval may not exceed K.

    ```mlir
    %y = octet.linear %x, %w
           precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = bf16>
           : (tensor<8x512x7168xbf16>, tensor<2112x7168xbf16>) -> tensor<8x512x2112xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_FloatTensor:$w,
                       Optional<Octet_FloatTensor>:$bias,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $w (`,` $bias^)? (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_BatchMatmulOp : Octet_Op<"batch_matmul"> {
  let summary = "Batched matrix product of two activations";
  let description = [{
    `lhs` is `[B..., M, K]`; `rhs` is `[B..., K, N]`, or `[B..., N, K]` with
    `transpose_rhs`. The batch dimensions must agree. The result is
    `[B..., M, N]`. With an FP8 precision K must be a multiple of 128.

    ```mlir
    %s = octet.batch_matmul %q, %k transpose_rhs
           : (tensor<16x128x64xf32>, tensor<16x128x64xf32>) -> tensor<16x128x128xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$lhs, Octet_FloatTensor:$rhs,
                       UnitAttr:$transpose_rhs,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_rhs` $transpose_rhs^)? (`precision` `` $precision^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_GroupedLinearOp : Octet_Op<"grouped_linear"> {
  let summary = "Per-expert linear over rows grouped by expert (MoE experts)";
  let description = [{
    `x` is `[R, K]` with its rows sorted by expert, as `octet.moe_dispatch`
    leaves them; `w` is `[E, N, K]`, one weight per expert; `group_sizes[e]`
    rows belong to expert `e`. Row `r` of expert `e` computes
    `result[r] = x[r] W[e]^T`. The result is `[R, N]`. The sizes may add up
    to fewer than `R` rows: the rows past them are padding, zero in the
    result (an expert owner's rows under expert parallelism, sized for the
    worst case; see `octet_pipe.expert_dispatch`). The gradient ops take the
    same layout.

    ```mlir
    %y = octet.grouped_linear %xs, %w, %sizes
           : (tensor<2048x1024xbf16>, tensor<8x512x1024xbf16>, tensor<8xi32>) -> tensor<2048x512xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_FloatTensor:$w,
                       Octet_IndexTensor:$group_sizes,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $w `,` $group_sizes (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_RMSNormOp : Octet_Op<"rmsnorm"> {
  let summary = "Root-mean-square normalisation over the last dimension";
  let description = [{
    `result = x / sqrt(mean(x^2, -1) + epsilon) * gamma` with `gamma` of the
    size of the last dimension of `x`; `epsilon` must be positive.

    ```mlir
    %n = octet.rmsnorm %x, %gamma epsilon(1.0e-06)
           : (tensor<4x256x1024xbf16>, tensor<1024xf32>) -> tensor<4x256x1024xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_FloatTensor:$gamma,
                       F64Attr:$epsilon,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $gamma `epsilon` `(` custom<ShortFloat>($epsilon) `)`
    (`precision` `` $precision^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_RotaryOp : Octet_Op<"rotary"> {
  let summary = "Rotary position embedding";
  let description = [{
    Rotates each pair `(x[2i], x[2i+1])` of the head dimension of a
    `[B, S, H, D]` tensor by the angle `s * theta^(-2i/D)` of its sequence
    position `s` (positions count from 0 within each sequence). `D` must be
    even and `theta` positive.

    ```mlir
    %r = octet.rotary %q theta(10000.0)
           : (tensor<4x256x16x64xbf16>) -> tensor<4x256x16x64xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, F64Attr:$theta,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $x `theta` `(` custom<ShortFloat>($theta) `)` (`precision` `` $precision^)?
    attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_CausalAttentionOp : Octet_Op<"causal_attention"> {
  let summary = "Causal scaled-dot-product attention (one op, fusable)";
  let description = [{
    `softmax(mask(q k^T * scale)) v` per head, where position `i` attends to
    positions `<= i`. `q` is `[B, S, Hq, Dqk]`, `k` is `[B, S, Hkv, Dqk]`,
    `v` is `[B, S, Hkv, Dv]` (MLA has `Dqk != Dv`); `Hq` must be a multiple
    of `Hkv` (grouped-query attention). The result is `[B, S, Hq, Dv]`.
    `scale` defaults to `1/sqrt(Dqk)`. Kept as one op so a backend can map it
    to a fused kernel; the core runs in high precision.

    ```mlir
    %o = octet.causal_attention %q, %k, %v scale(0.0721)
           : (tensor<2x128x16x192xbf16>, tensor<2x128x16x192xbf16>, tensor<2x128x16x128xbf16>)
           -> tensor<2x128x16x128xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$q, Octet_FloatTensor:$k,
                       Octet_FloatTensor:$v, OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $k `,` $v custom<OptionalScale>($scale) (`precision` `` $precision^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_SwiGLUOp : Octet_Op<"swiglu"> {
  let summary = "SwiGLU activation: silu(gate) * up";
  let description = [{
    Elementwise `gate * sigmoid(gate) * up` of two tensors of equal shape.

    ```mlir
    %a = octet.swiglu %g, %u
           : (tensor<1024x2048xbf16>, tensor<1024x2048xbf16>) -> tensor<1024x2048xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$gate, Octet_FloatTensor:$up,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $gate `,` $up (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_AddOp : Octet_Op<"add", [Commutative]> {
  let summary = "Residual addition";
  let description = [{
    Elementwise sum of two tensors of equal shape (the residual stream).

    ```mlir
    %h2 = octet.add %h, %attn
           : (tensor<4x256x1024xbf16>, tensor<4x256x1024xbf16>) -> tensor<4x256x1024xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$lhs, Octet_FloatTensor:$rhs,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def Octet_MoEGateOp : Octet_Op<"moe_gate"> {
  let summary = "MoE router: scores, group-limited top-k, routing weights";
  let description = [{
    Routes each of `T` tokens `x: [T, D]` to `top_k` of `E` experts with the
    router weight `w: [E, D]`, as DeepSeek-V3 does:

    1. `scores = sigmoid(x w^T)` or `softmax(x w^T)` (`scoring`);
    2. the optional `bias: [E]` (load-balancing correction) is added to the
       scores for expert *selection only*;
    3. experts are split into `n_group` groups; each group is ranked by the
       sum of its two best biased scores and only the best `topk_group` groups
       stay eligible;
    4. the `top_k` best eligible experts are chosen; their unbiased scores,
       normalised to sum 1 when `norm_topk_prob` is set, times
       `routed_scaling_factor`, are the routing weights.

    Results: `weights: [T, top_k]` (f32) and `indices: [T, top_k]` (i32).
    `E` must divide into `n_group` groups and the eligible groups must hold at
    least `top_k` experts. The gate runs in high precision.

    ```mlir
    %wts, %idx = octet.moe_gate %x, %wg, %bias
        top_k(8) groups(8, 4) scaling(2.5) sigmoid norm_topk_prob
        : (tensor<4096x7168xbf16>, tensor<256x7168xf32>, tensor<256xf32>)
        -> (tensor<4096x8xf32>, tensor<4096x8xi32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_FloatTensor:$w,
                       Optional<Octet_FloatTensor>:$bias,
                       I64Attr:$top_k, I64Attr:$n_group, I64Attr:$topk_group,
                       F64Attr:$routed_scaling_factor,
                       Octet_MoEScoring:$scoring, UnitAttr:$norm_topk_prob,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs RankedTensorOf<[F32]>:$weights, RankedTensorOf<[I32]>:$indices);
  let assemblyFormat = [{
    $x `,` $w (`,` $bias^)? `top_k` `(` $top_k `)`
    `groups` `(` $n_group `,` $topk_group `)`
    `scaling` `(` custom<ShortFloat>($routed_scaling_factor) `)` $scoring
    (`norm_topk_prob` $norm_topk_prob^)? (`precision` `` $precision^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_MoEDispatchOp : Octet_Op<"moe_dispatch"> {
  let summary = "Permute token copies into a contiguous per-expert layout";
  let description = [{
    Copies each token of `x: [T, D]` once per chosen expert
    (`indices: [T, k]`) and sorts the copies by expert (stable in token
    order), so expert `e`'s rows are contiguous. Results: the permuted rows
    `[T*k, D]` and `group_sizes: [num_experts]` (i32), the row count of each
    expert. `octet.moe_combine` undoes the permutation.

    ```mlir
    %rows, %sizes = octet.moe_dispatch %x, %idx experts(8)
        : (tensor<1024x512xbf16>, tensor<1024x2xi32>) -> (tensor<2048x512xbf16>, tensor<8xi32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_IndexTensor:$indices,
                       I64Attr:$num_experts,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$rows, RankedTensorOf<[I32]>:$group_sizes);
  let assemblyFormat = [{
    $x `,` $indices `experts` `(` $num_experts `)` (`precision` `` $precision^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_MoECombineOp : Octet_Op<"moe_combine"> {
  let summary = "Weighted sum of expert outputs back in token order";
  let description = [{
    Inverse of `octet.moe_dispatch`: `rows: [T*k, D]` in expert order are
    returned to their tokens and summed with the routing weights
    `weights: [T, k]`; `indices: [T, k]` must be the ones given to the
    dispatch. The result is `[T, D]`. With a `bf16` precision (the
    deepseek-v3 recipe's: the combine stays in BF16) the rows are read
    rounded to BF16 and summed in FP32.

    ```mlir
    %y = octet.moe_combine %rows, %wts, %idx
        : (tensor<2048x512xbf16>, tensor<1024x2xf32>, tensor<1024x2xi32>) -> tensor<1024x512xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$rows, Octet_FloatTensor:$weights,
                       Octet_IndexTensor:$indices,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$result);
  let assemblyFormat = [{
    $rows `,` $weights `,` $indices (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def Octet_CrossEntropyOp : Octet_Op<"cross_entropy"> {
  let summary = "Mean softmax cross-entropy over tokens";
  let description = [{
    `logits` is `[..., V]` and `labels` holds class ids of the shape of the
    leading dimensions; the result is the scalar mean over all tokens of
    `-log softmax(logits)[label]`, in f32.

    ```mlir
    %loss = octet.cross_entropy %logits, %labels
        : (tensor<4x256x32000xf32>, tensor<4x256xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$logits, Octet_IndexTensor:$labels,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs 0DTensorOf<[F32]>:$loss);
  let assemblyFormat = [{
    $logits `,` $labels (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

include "Octet/OctetGradOps.td"

#endif // OCTET_DIALECT_OCTET_OPS_TD
