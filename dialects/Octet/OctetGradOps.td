//===- OctetGradOps.td - Backward and optimizer ops -------*- tablegen -*-===//
//
// The training IR: gradient ops that --octet-autodiff emits, one family per
// forward op, with the input gradient (dgrad) and the weight gradient (wgrad)
// of every GEMM kept apart so that a scheduler can defer weight gradients;
// and the ops that accumulate gradients over micro-batches and apply AdamW.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECT_OCTET_GRADOPS_TD
#define OCTET_DIALECT_OCTET_GRADOPS_TD

class Octet_GradOp<string mnemonic, string forward, list<Trait> traits = []>
    : Octet_Op<mnemonic, traits> {
  let summary = "Backward of `octet." # forward # "`";
}

def Octet_EmbeddingGradOp : Octet_GradOp<"embedding_grad", "embedding"> {
  let description = [{
    Weight gradient of `octet.embedding`: `dtable[ids[i...], :] += dout[i..., :]`
    into a zero `V x D` result.

    ```mlir
    %dt = octet.embedding_grad %dh, %ids
        : (tensor<4x256x1024xf32>, tensor<4x256xi32>) -> tensor<32000x1024xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dout, Octet_IndexTensor:$ids);
  let results = (outs Octet_FloatTensor:$dtable);
  let assemblyFormat = "$dout `,` $ids attr-dict `:` functional-type(operands, results)";
}

def Octet_LinearDgradOp : Octet_GradOp<"linear_dgrad", "linear"> {
  let description = [{
    Input gradient of a linear: `dx = dy W` with `dy: [..., N]` and
    `W: [N, K]`; the result is `[..., K]`. It carries the forward's
    precision: with FP8 this is the Dgrad GEMM (dY in 1x128 tiles along N,
    W in 128x128 blocks).

    ```mlir
    %dx = octet.linear_dgrad %dy, %w
        : (tensor<8x4096xbf16>, tensor<4096x1024xbf16>) -> tensor<8x1024xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dy, Octet_FloatTensor:$w,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$dx);
  let assemblyFormat = [{
    $dy `,` $w (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_LinearWgradOp : Octet_GradOp<"linear_wgrad", "linear"> {
  let description = [{
    Weight gradient of a linear: `dW = dy^T x` summed over all leading
    (token) dimensions, with `dy: [..., N]`, `x: [..., K]`; the result is
    `[N, K]`. With FP8 this is the Wgrad GEMM (both operands in 128x1 tiles
    along the tokens). Deferrable: nothing in the backward of earlier layers
    depends on it.

    ```mlir
    %dw = octet.linear_wgrad %dy, %x
        : (tensor<8x4096xbf16>, tensor<8x1024xbf16>) -> tensor<4096x1024xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dy, Octet_FloatTensor:$x,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$dw);
  let assemblyFormat = [{
    $dy `,` $x (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_BiasGradOp : Octet_GradOp<"bias_grad", "linear"> {
  let description = [{
    Bias gradient of a linear: the sum of `dy: [..., N]` over its leading
    dimensions, `[N]`.

    ```mlir
    %db = octet.bias_grad %dy : (tensor<8x4096xf32>) -> tensor<4096xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dy);
  let results = (outs Octet_FloatTensor:$db);
  let assemblyFormat = "$dy attr-dict `:` functional-type(operands, results)";
}

def Octet_BatchMatmulGradOp : Octet_GradOp<"batch_matmul_grad", "batch_matmul"> {
  let description = [{
    Both operand gradients of a batched product `dy = lhs op(rhs)`: `dlhs`
    and `drhs` have the types of `lhs` and `rhs`.

    ```mlir
    %dl, %dr = octet.batch_matmul_grad %l, %r, %dy transpose_rhs
        : (tensor<16x128x64xf32>, tensor<16x128x64xf32>, tensor<16x128x128xf32>)
        -> (tensor<16x128x64xf32>, tensor<16x128x64xf32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$lhs, Octet_FloatTensor:$rhs,
                       Octet_FloatTensor:$dy, UnitAttr:$transpose_rhs,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$dlhs, Octet_FloatTensor:$drhs);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $dy (`transpose_rhs` $transpose_rhs^)?
    (`precision` `` $precision^)? attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_GroupedLinearDgradOp
    : Octet_GradOp<"grouped_linear_dgrad", "grouped_linear"> {
  let description = [{
    Input gradient of the expert linears: row `r` of expert `e` gets
    `dx[r] = dy[r] W[e]`; `dy: [R, N]`, `w: [E, N, K]`, result `[R, K]`.

    ```mlir
    %dx = octet.grouped_linear_dgrad %dy, %w, %sizes
        : (tensor<2048x512xbf16>, tensor<8x512x1024xbf16>, tensor<8xi32>) -> tensor<2048x1024xbf16>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dy, Octet_FloatTensor:$w,
                       Octet_IndexTensor:$group_sizes,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$dx);
  let assemblyFormat = [{
    $dy `,` $w `,` $group_sizes (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_GroupedLinearWgradOp
    : Octet_GradOp<"grouped_linear_wgrad", "grouped_linear"> {
  let description = [{
    Weight gradient of the expert linears: `dW[e] = dy_e^T x_e` over the
    rows of expert `e`; `dy: [R, N]`, `x: [R, K]`, result `[E, N, K]`.

    ```mlir
    %dw = octet.grouped_linear_wgrad %dy, %x, %sizes
        : (tensor<2048x512xbf16>, tensor<2048x1024xbf16>, tensor<8xi32>) -> tensor<8x512x1024xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dy, Octet_FloatTensor:$x,
                       Octet_IndexTensor:$group_sizes,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$dw);
  let assemblyFormat = [{
    $dy `,` $x `,` $group_sizes (`precision` `` $precision^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_RMSNormGradOp : Octet_GradOp<"rmsnorm_grad", "rmsnorm"> {
  let description = [{
    Gradients of `octet.rmsnorm` with respect to its input (`dx`, type of
    `x`) and its scale (`dgamma`, type of `gamma`).

    ```mlir
    %dx, %dg = octet.rmsnorm_grad %x, %gamma, %dy epsilon(1.0e-06)
        : (tensor<8x1024xf32>, tensor<1024xf32>, tensor<8x1024xf32>)
        -> (tensor<8x1024xf32>, tensor<1024xf32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_FloatTensor:$gamma,
                       Octet_FloatTensor:$dy, F64Attr:$epsilon);
  let results = (outs Octet_FloatTensor:$dx, Octet_FloatTensor:$dgamma);
  let assemblyFormat = [{
    $x `,` $gamma `,` $dy `epsilon` `(` custom<ShortFloat>($epsilon) `)`
    attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_RotaryGradOp : Octet_GradOp<"rotary_grad", "rotary"> {
  let description = [{
    Input gradient of `octet.rotary`: the inverse rotation of `dy`.

    ```mlir
    %dx = octet.rotary_grad %dy theta(10000.0)
        : (tensor<4x256x16x64xf32>) -> tensor<4x256x16x64xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$dy, F64Attr:$theta);
  let results = (outs Octet_FloatTensor:$dx);
  let assemblyFormat = [{
    $dy `theta` `(` custom<ShortFloat>($theta) `)` attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_CausalAttentionGradOp
    : Octet_GradOp<"causal_attention_grad", "causal_attention"> {
  let description = [{
    Gradients of causal attention with respect to `q`, `k` and `v`, given the
    forward's operands and `dy` (the attention probabilities are recomputed).

    ```mlir
    %dq, %dk, %dv = octet.causal_attention_grad %q, %k, %v, %dy scale(0.125)
        : (tensor<2x128x8x64xf32>, tensor<2x128x2x64xf32>, tensor<2x128x2x64xf32>,
           tensor<2x128x8x64xf32>)
        -> (tensor<2x128x8x64xf32>, tensor<2x128x2x64xf32>, tensor<2x128x2x64xf32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$q, Octet_FloatTensor:$k,
                       Octet_FloatTensor:$v, Octet_FloatTensor:$dy,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Octet_FloatTensor:$dq, Octet_FloatTensor:$dk,
                      Octet_FloatTensor:$dv);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $dy custom<OptionalScale>($scale) attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_SwiGLUGradOp : Octet_GradOp<"swiglu_grad", "swiglu"> {
  let description = [{
    Gradients of `silu(gate) * up` with respect to both operands.

    ```mlir
    %dg, %du = octet.swiglu_grad %g, %u, %dy
        : (tensor<64x128xf32>, tensor<64x128xf32>, tensor<64x128xf32>)
        -> (tensor<64x128xf32>, tensor<64x128xf32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$gate, Octet_FloatTensor:$up,
                       Octet_FloatTensor:$dy);
  let results = (outs Octet_FloatTensor:$dgate, Octet_FloatTensor:$dup);
  let assemblyFormat = "$gate `,` $up `,` $dy attr-dict `:` functional-type(operands, results)";
}

def Octet_MoEGateGradOp : Octet_GradOp<"moe_gate_grad", "moe_gate"> {
  let description = [{
    Gradients of the router through the routing weights only: the selection
    (`indices`, from the forward) is held fixed, as it is piecewise constant;
    the selection-only bias gets no gradient. Results: `dx` (type of `x`)
    and `dw` (type of `w`).

    ```mlir
    %dx, %dw = octet.moe_gate_grad %x, %wg, %idx, %dwts scaling(2.5) sigmoid norm_topk_prob
        : (tensor<64x256xf32>, tensor<16x256xf32>, tensor<64x4xi32>, tensor<64x4xf32>)
        -> (tensor<64x256xf32>, tensor<16x256xf32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$x, Octet_FloatTensor:$w,
                       RankedTensorOf<[I32]>:$indices,
                       Octet_FloatTensor:$dweights,
                       F64Attr:$routed_scaling_factor,
                       Octet_MoEScoring:$scoring, UnitAttr:$norm_topk_prob);
  let results = (outs Octet_FloatTensor:$dx, Octet_FloatTensor:$dw);
  let assemblyFormat = [{
    $x `,` $w `,` $indices `,` $dweights
    `scaling` `(` custom<ShortFloat>($routed_scaling_factor) `)`
    $scoring (`norm_topk_prob` $norm_topk_prob^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_MoEDispatchGradOp : Octet_GradOp<"moe_dispatch_grad", "moe_dispatch"> {
  let description = [{
    Input gradient of the dispatch: each token's gradient is the sum of the
    gradients of its `k` dispatched copies. `drows: [T*k, D]`,
    `indices: [T, k]`, result `[T, D]`.

    ```mlir
    %dx = octet.moe_dispatch_grad %drows, %idx experts(16)
        : (tensor<256x256xf32>, tensor<64x4xi32>) -> tensor<64x256xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$drows, Octet_IndexTensor:$indices,
                       I64Attr:$num_experts);
  let results = (outs Octet_FloatTensor:$dx);
  let assemblyFormat = [{
    $drows `,` $indices `experts` `(` $num_experts `)` attr-dict `:`
    functional-type(operands, results)
  }];
}

def Octet_MoECombineGradOp : Octet_GradOp<"moe_combine_grad", "moe_combine"> {
  let description = [{
    Gradients of the combine with respect to the expert rows (types of
    `rows`) and the routing weights (type of `weights`). With a `bf16`
    precision (the combine's, which autodiff copies), the rows are read
    rounded to BF16, as the combine read them, and the rows' gradient is
    rounded to BF16: the recipe keeps the combine in BF16 both ways.

    ```mlir
    %drows, %dwts = octet.moe_combine_grad %rows, %wts, %idx, %dy
        : (tensor<256x256xf32>, tensor<64x4xf32>, tensor<64x4xi32>, tensor<64x256xf32>)
        -> (tensor<256x256xf32>, tensor<64x4xf32>)
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$rows, Octet_FloatTensor:$weights,
                       Octet_IndexTensor:$indices, Octet_FloatTensor:$dy,
                       OptionalAttr<Octet_PrecisionAttr>:$precision);
  let results = (outs Octet_FloatTensor:$drows, Octet_FloatTensor:$dweights);
  let assemblyFormat = [{
    $rows `,` $weights `,` $indices `,` $dy (`precision` `` $precision^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Octet_CrossEntropyGradOp : Octet_GradOp<"cross_entropy_grad", "cross_entropy"> {
  let description = [{
    `dlogits = dloss * (softmax(logits) - onehot(labels)) / tokens`.

    ```mlir
    %dl = octet.cross_entropy_grad %logits, %labels, %dloss
        : (tensor<4x256x32000xf32>, tensor<4x256xi32>, tensor<f32>) -> tensor<4x256x32000xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$logits, Octet_IndexTensor:$labels,
                       0DTensorOf<[F32]>:$dloss);
  let results = (outs Octet_FloatTensor:$dlogits);
  let assemblyFormat = [{
    $logits `,` $labels `,` $dloss attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Gradient accumulation and the optimizer
//===----------------------------------------------------------------------===//

def Octet_GradAccumulateOp : Op<Octet_Dialect, "grad_accumulate",
    [MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "Add a micro-batch gradient into a parameter's FP32 buffer";
  let description = [{
    Adds `grad` (a gradient of the parameter `param` of this function, of the
    parameter's shape) into the parameter's FP32 gradient buffer, which sums
    the micro-batches of a step until `octet.adamw_step` consumes it.

    ```mlir
    octet.grad_accumulate %dw into "model.layers.0.mlp.up_proj.weight" : tensor<512x256xf32>
    ```
  }];
  let arguments = (ins Octet_FloatTensor:$grad, StrAttr:$param);
  let assemblyFormat = "$grad `into` $param attr-dict `:` type($grad)";
  let hasVerifier = 1;
}

def Octet_AdamWStepOp : Op<Octet_Dialect, "adamw_step",
    [MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "AdamW update of one parameter (FP32 master, BF16 moments)";
  let description = [{
    Updates the FP32 master weight of `param` from its accumulated FP32
    gradient and its BF16 first and second moments, then clears the
    gradient buffer:

    ```
    m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
    p = p (1 - lr wd) - lr (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
    ```

    with `m` and `v` stored rounded to BF16. `lr` and `step` (counted from
    1) are run-time operands; the rest are attributes. `beta1`, `beta2` lie
    in [0, 1), `eps` is positive, `weight_decay` non-negative.

    ```mlir
    octet.adamw_step "model.norm.weight" lr(%lr) step(%step) betas(0.9, 0.95)
        eps(1.0e-08) weight_decay(0.1) : tensor<256xf32>
    ```
  }];
  let arguments = (ins StrAttr:$param, F32:$lr, I64:$step, F64Attr:$beta1,
                       F64Attr:$beta2, F64Attr:$eps, F64Attr:$weight_decay,
                       TypeAttrOf<Octet_FloatTensor>:$param_type);
  let assemblyFormat = [{
    $param `lr` `(` $lr `)` `step` `(` $step `)`
    `betas` `(` custom<ShortFloat>($beta1) `,` custom<ShortFloat>($beta2) `)`
    `eps` `(` custom<ShortFloat>($eps) `)`
    `weight_decay` `(` custom<ShortFloat>($weight_decay) `)` attr-dict `:` $param_type
  }];
  let hasVerifier = 1;
}

#endif // OCTET_DIALECT_OCTET_GRADOPS_TD
