//===- Passes.td - Octet graph transformation passes -----*- tablegen -*-===//
//
// One pass per file in lib/Transforms/, named after the pass. The reference
// page docs/generated/OctetPasses.md is generated from this file.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TRANSFORMS_PASSES_TD
#define OCTET_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AssignPrecisionPass : Pass<"octet-assign-precision"> {
  let summary = "Annotate graph ops with the precision of a training recipe";
  let description = [{
    Gives every `octet` op that has no `precision` attribute the one its
    recipe prescribes (see ../shared/reference/fp8-recipe.md), and leaves
    user annotations alone unless `override` is set.

    `deepseek-v3` (the default):
    - `octet.linear` and `octet.grouped_linear`: E4M3 with 1x128 activation
      tiles, 128x128 weight blocks and promotion every 128 K-elements; scales
      are powers of two for the input of the linear after attention and for
      the expert inputs after `octet.moe_dispatch`. A linear whose K is not a
      multiple of 128 stays in BF16 and gets a warning;
    - `octet.moe_combine`: BF16 (it reads the expert outputs rounded to
      BF16, and its gradient rounds theirs), as the recipe keeps the combine;
    - the output head (the linear whose result reaches `octet.cross_entropy`)
      and everything else (embedding, attention core, norms, gate, loss, ...):
      the op's own element type, f32 or bf16.

    `bf16` (the baseline): every GEMM in BF16, everything else as above.
    `f32`: everything in FP32 (the reference, e.g. for gradient checks).
    The output type is always the op's result element type.

    Before:

    ```mlir
    %y = octet.linear %x, %w
           : (tensor<64x256xbf16>, tensor<512x256xbf16>) -> tensor<64x512xbf16>
    ```

    After `--octet-assign-precision`:

    ```mlir
    %y = octet.linear %x, %w
           precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = bf16>
           : (tensor<64x256xbf16>, tensor<512x256xbf16>) -> tensor<64x512xbf16>
    ```
  }];
  let dependentDialects = ["::octet::OctetDialect"];
  let options = [
    Option<"recipe", "recipe", "std::string", /*default=*/"\"deepseek-v3\"",
           "Recipe to apply: deepseek-v3, bf16 or f32">,
    Option<"overrideExisting", "override", "bool", /*default=*/"false",
           "Replace precision annotations the graph already has">
  ];
}

def AutodiffPass : Pass<"octet-autodiff", "::mlir::ModuleOp"> {
  let summary = "Derive the backward graph, gradient accumulation and AdamW";
  let description = [{
    Differentiates the forward graph `@forward` (one block, returning the
    scalar loss first; further results, such as the main-model loss of a
    model with multi-token prediction, are metrics passed through) in
    reverse mode with respect to every trainable
    `octet.param`, and adds two functions to the module:

    - `@forward_backward`, with the forward's signature: the forward, then
      the backward, returning the loss. Every GEMM's input gradient
      (`octet.linear_dgrad`, `octet.grouped_linear_dgrad`) and weight
      gradient (`octet.linear_wgrad`, `octet.grouped_linear_wgrad`,
      `octet.embedding_grad`) are separate ops carrying the forward's
      precision, so a scheduler can defer weight gradients and the
      quantization lowering can pick each GEMM's granularity. Each
      parameter's gradient is added into its FP32 buffer by
      `octet.grad_accumulate` as soon as it is complete, so calling the
      function once per micro-batch accumulates the step's gradient.
    - `@optimizer_step(%lr: f32, %step: i64)`: one `octet.adamw_step` per
      trainable parameter (FP32 master weight, BF16 moments).

    Frozen parameters get neither; a trainable parameter that receives no
    gradient gets a warning. Values that do not depend on a trainable
    parameter (token ids, the frozen MoE bias) are not differentiated. Shape
    ops of the `tensor` dialect (expand/collapse_shape, extract_slice,
    concat) and `arith.addf`/`mulf`/`divf` (loss weighting) are supported.

    ```mlir
    // Forward
    func.func @forward(%x: tensor<8x256xf32>, %labels: tensor<8xi32>) -> tensor<f32> {
      %w = octet.param "head.weight" : tensor<16x256xf32>
      %y = octet.linear %x, %w : (tensor<8x256xf32>, tensor<16x256xf32>) -> tensor<8x16xf32>
      %l = octet.cross_entropy %y, %labels : (tensor<8x16xf32>, tensor<8xi32>) -> tensor<f32>
      return %l : tensor<f32>
    }
    // After --octet-autodiff, @forward_backward ends with
      %one = arith.constant dense<1.000000e+00> : tensor<f32>
      %dy = octet.cross_entropy_grad %y, %labels, %one
          : (tensor<8x16xf32>, tensor<8xi32>, tensor<f32>) -> tensor<8x16xf32>
      %dw = octet.linear_wgrad %dy, %x : (tensor<8x16xf32>, tensor<8x256xf32>) -> tensor<16x256xf32>
      octet.grad_accumulate %dw into "head.weight" : tensor<16x256xf32>
    // and @optimizer_step holds
      octet.adamw_step "head.weight" lr(%lr) step(%step) betas(0.9, 0.95)
          eps(1.0e-08) weight_decay(0.1) : tensor<16x256xf32>
    ```
  }];
  let dependentDialects = ["::octet::OctetDialect", "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect", "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"forward\"",
           "The forward function to differentiate">,
    Option<"beta1", "beta1", "double", /*default=*/"0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", /*default=*/"0.95", "AdamW beta2">,
    Option<"eps", "eps", "double", /*default=*/"1e-8", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"0.1",
           "AdamW decoupled weight decay">
  ];
}

def LowerFP8LinearsPass : Pass<"octet-lower-fp8-linears"> {
  let summary = "Lower FP8 linears to quantize + block-scaled matmul";
  let description = [{
    Rewrites the three GEMMs of every linear whose precision is FP8 into the
    `octet_tq` dialect with the recipe's granularities
    (fp8-recipe.md):

    | GEMM | op | lhs | rhs | contract |
    |---|---|---|---|---|
    | Fprop | `octet.linear` | X, 1x128 tiles | W, 128x128 blocks | (1, 1) |
    | Dgrad | `octet.linear_dgrad` | dY, 1x128 tiles along N | W, 128x128 blocks | (1, 0) |
    | Wgrad | `octet.linear_wgrad` | dY, 128x1 tiles along tokens | X, 128x1 tiles | (0, 0) |

    Each `octet_tq.scaled_matmul` promotes every `promotion` K-elements as
    the precision says. The forward's FP8 copy of X is the Wgrad's cache: the
    weight gradient regroups it with `octet_tq.requantize_transposed`
    instead of reading X in high precision. Power-of-two input scales
    (`scale = pow2`) carry over to the cache. Leading (token) dimensions are
    flattened; a contracted dimension that is not a multiple of 128 (N in
    Dgrad, the tokens in Wgrad) is zero-padded, which leaves every scale as
    the partial group has it. Biased FP8 linears are left alone with a
    warning (the recipe's linears have no bias).

    The MoE expert linears (`octet.grouped_linear` and its gradients, rows
    sorted by expert) become the grouped GEMMs over rows laid out on
    128-row boundaries per expert (`octet_tq.align_groups`, undone by
    `octet_tq.unalign_groups`): Fprop and Dgrad one
    `octet_tq.grouped_scaled_matmul` each (Dgrad with `rhs_contract(1)`),
    Wgrad one `octet_tq.k_grouped_scaled_matmul` on the forward's aligned
    FP8 copy of X, regrouped. Expert weights whose N or K is not a multiple
    of 128 are left alone with a warning. Each expert's rows are computed
    exactly as the FP8 linear of those rows alone would be.

    Forward linears reading the same input (an MLP's gate and up
    projections, MLA's q_a and kv_a, the experts' gate and up) share one
    FP8 copy of it (and, for experts, one aligned layout) when they ask for
    the same format and scale rounding in the same pipeline stage.

    The MoE SwiGLU (one whose output feeds an FP8 `octet.grouped_linear`)
    follows the recipe too: its two inputs are cached in FP8 (1x128 tiles)
    right after the forward, and the backward dequantizes them and
    recomputes the SwiGLU output, instead of keeping inputs and output in
    high precision until the backward.

    ```mlir
    %y = octet.linear %x, %w
           precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
           : (tensor<128x256xf32>, tensor<512x256xf32>) -> tensor<128x512xf32>
    // becomes
    %qx = octet_tq.quantize %x : tensor<128x256xf32> -> !octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>
    %qw = octet_tq.quantize %w : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, block_128x128>
    %y = octet_tq.scaled_matmul %qx, %qw contract(1, 1) promotion(128)
           : (!octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>,
              !octet_tq.qtensor<512x256xf8E4M3FN, block_128x128>) -> tensor<128x512xf32>
    ```
  }];
  let dependentDialects = ["::octet::tq::OctetTQDialect", "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FuseQuantizePass : Pass<"octet-fuse-quantize"> {
  let summary = "Fuse 1x128 quantizations into their RMSNorm and SwiGLU producers";
  let description = [{
    A 1x128 `octet_tq.quantize` of an `octet.rmsnorm` or `octet.swiglu`
    result (directly, or through a `tensor.collapse_shape` that merges
    leading dimensions) becomes one `octet_tq.rmsnorm_quantize` or
    `octet_tq.swiglu_quantize` on the producer's operands, so that a kernel
    reads the input once and writes FP8 directly. The producer stays for its
    other users and is erased when it has none. Producers whose result type
    differs from their input type are left alone (the fused op rounds to the
    input's element type).

    ```mlir
    %n = octet.rmsnorm %x, %g epsilon(1.0e-06) : (tensor<8x64x256xf32>, tensor<256xf32>) -> tensor<8x64x256xf32>
    %c = tensor.collapse_shape %n [[0, 1], [2]] : tensor<8x64x256xf32> into tensor<512x256xf32>
    %q = octet_tq.quantize %c : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
    ```

    becomes

    ```mlir
    %c = tensor.collapse_shape %x [[0, 1], [2]] : tensor<8x64x256xf32> into tensor<512x256xf32>
    %q = octet_tq.rmsnorm_quantize %c, %g epsilon(1.0e-06) : (tensor<512x256xf32>, tensor<256xf32>) -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
    ```
  }];
  let dependentDialects = ["::octet::tq::OctetTQDialect",
                           "::mlir::tensor::TensorDialect"];
}

def InsertExpertCommPass
    : Pass<"octet-insert-expert-comm", "::mlir::ModuleOp"> {
  let summary = "Split every MoE layer between the routing ranks and the experts' owners";
  let description = [{
    For expert parallelism over `ranks` ranks (group rank g owns experts
    `[g E/G, (g+1) E/G)` of every layer), rewrites each MoE layer of every
    function, forward and backward:

    - the rows `octet.moe_dispatch` routes go to their experts' owners with
      `octet_pipe.expert_dispatch`;
    - the grouped linears, and the SwiGLU, sums and gradients between them,
      run on the owner's rows (`G R` of them, for the worst case) with its
      own experts (`octet_pipe.local_experts`), their weight gradients
      placed into the whole parameter's (`octet_pipe.local_experts_grad`);
    - results return with `octet_pipe.expert_combine` to `moe_combine`,
      `moe_combine_grad` and `moe_dispatch_grad`, and the gradients
      `moe_combine_grad` makes for the experts go to the owners.

    Each transfer travels in a wire its rows are already exact in, so the
    split graph computes the same values: the routed rows in FP8 when only
    FP8 grouped linears with 1x128 tiles and power-of-two scales read them
    (they quantize the dequantized rows to the same values; the recipe's
    choice for the experts' input); in BF16 the BF16 values, the expert
    outputs that only BF16 combines read (they round them) and a BF16
    combine's gradient (rounded too), which is the recipe's BF16 combine
    both ways; anything else in FP32. Any other op reading a layer's rows is an error naming it. Run it
    after autodiff and before `--octet-split-pipeline-stages`; nothing
    happens when `ranks` is 1.

    ```mlir
    %rows, %sizes = octet.moe_dispatch %x, %idx experts(8) : ...
    %h = octet.grouped_linear %rows, %w, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
        : (tensor<256x256xf32>, tensor<8x128x256xf32>, tensor<8xi32>) -> tensor<256x128xf32>
    %y = octet.moe_combine %h2, %wts, %idx : ...
    ```

    becomes, with `ranks=2`,

    ```mlir
    %rows, %sizes = octet.moe_dispatch %x, %idx experts(8) : ...
    %recv, %local, %layout = octet_pipe.expert_dispatch %rows, %sizes ranks(2) wire(e4m3)
        : (tensor<256x256xf32>, tensor<8xi32>) -> (tensor<512x256xf32>, tensor<4xi32>, tensor<2x4xi32>)
    %wl = octet_pipe.local_experts %w ranks(2) : tensor<8x128x256xf32> -> tensor<4x128x256xf32>
    %h = octet.grouped_linear %recv, %wl, %local precision<...>
        : (tensor<512x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<512x128xf32>
    ...
    %back = octet_pipe.expert_combine %h2, %layout ranks(2) wire(f32)
        : (tensor<512x256xf32>, tensor<2x4xi32>) -> tensor<256x256xf32>
    %y = octet.moe_combine %back, %wts, %idx : ...
    ```
  }];
  let dependentDialects = ["::octet::pipe::OctetPipeDialect"];
  let options = [
    Option<"numRanks", "ranks", "int64_t", /*default=*/"1",
           "Ranks of an expert-parallel group (parallel.ep)">
  ];
}

def SplitPipelineStagesPass
    : Pass<"octet-split-pipeline-stages", "::mlir::ModuleOp"> {
  let summary = "Cut the training step into one forward and one backward function per pipeline stage";
  let description = [{
    Cuts `@forward_backward` (the `function` option), whose ops carry
    `octet.stage` and which says `octet.num_stages = S`, into the functions
    a pipeline rank runs: `@forward_backward_F<s>` (the ops of stage s that
    the returned losses depend on) and `@forward_backward_B<s>` (the rest of
    stage s: its gradients and their accumulation), each keeping the
    original order of its ops. A value one function makes and another uses
    becomes a result of the first and an argument of the second; ops
    without operands (parameters, constants) are repeated where they are
    used instead. Each new function records where its arguments come from
    in `octet.inputs` (`"arg<i>"`: the original function's argument i;
    `"<function>:<j>"`: result j of an earlier function), and the original
    function, which stays, records its stage functions in
    `octet.stage_functions` (forward functions in stage order, then backward
    functions in reverse stage order: an order that runs the step) and where
    its results come from in `octet.stage_returns`. Nothing happens when
    S = 1.

    ```mlir
    func.func @forward_backward(%ids: tensor<2x9xi32>, ...) -> tensor<f32>
        attributes {octet.num_stages = 2 : i64} {
      %e = octet.embedding ... {octet.stage = 0 : i64}
      ...
      %loss = octet.cross_entropy ... {octet.stage = 1 : i64}
      ... // backward, stage 1 then stage 0
      return %loss : tensor<f32>
    }
    ```

    gains `@forward_backward_F0`, `@forward_backward_F1`,
    `@forward_backward_B1` and `@forward_backward_B0`, e.g.

    ```mlir
    func.func @forward_backward_F1(%arg0: tensor<2x8x64xf32>, ...)
        -> (tensor<f32>, ...)
        attributes {octet.inputs = ["forward_backward_F0:0", "arg1"],
                    octet.phase = "F", octet.stage = 1 : i64}
    ```
  }];
  let options = [
    Option<"functionName", "function", "std::string",
           /*default=*/"\"forward_backward\"",
           "The training-step function to cut">
  ];
}

def InsertPipelineCommPass
    : Pass<"octet-insert-pipeline-comm", "::mlir::ModuleOp"> {
  let summary = "Write each pipeline rank's actions and point-to-point transfers as octet_pipe IR";
  let description = [{
    Builds the `schedule` (1f1b, zb1p, interleaved-1f1b, dualpipe,
    dualpipev) for `ranks` ranks and `microbatches` micro-batches and
    appends it to the module as an `octet_pipe.schedule`: one
    `octet_pipe.rank` per rank with its actions in order and the transfers
    they need. A forward needs the previous stage's activation and sends its
    own to the next stage's rank; a backward needs the next stage's gradient
    and sends its own to the previous stage's rank (DualPipe's two copies
    each in their own direction); transfers between stages of one rank stay
    local. Receives are posted one action ahead, so that they overlap the
    previous action, and waited on just before the action that uses them;
    sends start as soon as their action ends and are waited on at the end
    of the step.

    Then it verifies the messages: on every channel (sender, receiver,
    activation or gradient) the sender's sends and the receiver's receives
    must name the same (stage, micro-batch) in the same order, and the
    schedule must be free of deadlocks.

    ```mlir
    octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
      octet_pipe.rank 0 {
        octet_pipe.forward stage(0) mb(0)
        %0 = octet_pipe.send activation stage(0) mb(0) to(1)
        %1 = octet_pipe.recv gradient stage(1) mb(0) from(1)
        octet_pipe.wait %1
        octet_pipe.backward stage(0) mb(0)
        octet_pipe.wait %0
      }
      octet_pipe.rank 1 {
        ...
      }
    }
    ```
  }];
  let dependentDialects = ["::octet::pipe::OctetPipeDialect"];
  let options = [
    Option<"scheduleName", "schedule", "std::string", /*default=*/"\"1f1b\"",
           "1f1b, zb1p, interleaved-1f1b, dualpipe or dualpipev">,
    Option<"numRanks", "ranks", "int64_t", /*default=*/"2",
           "Pipeline ranks">,
    Option<"numMicrobatches", "microbatches", "int64_t", /*default=*/"4",
           "Micro-batches of a step">,
    Option<"numChunks", "chunks", "int64_t", /*default=*/"2",
           "Model chunks per rank of interleaved-1f1b">
  ];
}

#endif // OCTET_TRANSFORMS_PASSES_TD
