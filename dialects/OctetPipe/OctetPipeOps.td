//===- OctetPipeOps.td - Pipeline/communication operations -*- tablegen -*-===//

#ifndef OCTET_DIALECT_OCTETPIPE_OPS_TD
#define OCTET_DIALECT_OCTETPIPE_OPS_TD

include "OctetPipe/OctetPipeBase.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def OctetPipe_Transferable : Type<Or<[
      CPred<"::llvm::isa<::mlir::RankedTensorType>($_self)">,
      CPred<"::llvm::isa<::octet::tq::QTensorType>($_self)">]>,
    "ranked tensor or quantized tensor">;

class OctetPipe_Op<string mnemonic, list<Trait> traits = []>
    : Op<OctetPipe_Dialect, mnemonic, traits> {
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Schedules
//===----------------------------------------------------------------------===//

def OctetPipe_ScheduleOp : OctetPipe_Op<"schedule", [
    NoTerminator, SingleBlock, NoRegionArguments]> {
  let summary = "The per-rank order of one training step's pipeline actions";
  let description = [{
    Holds one `octet_pipe.rank` per rank, `0 .. ranks-1`, each once. `kind`
    names the schedule and fixes which stages each rank holds and what
    sizes are valid:

    | kind               | stages      | rank r holds           | micro-batches                 |
    |--------------------|-------------|------------------------|-------------------------------|
    | `1f1b`, `zb1p`     | ranks       | r                      | any                           |
    | `interleaved-1f1b` | v x ranks   | r, r+ranks, ...        | any                           |
    | `dualpipe`         | 2 x ranks   | r and 2 x ranks-1-r    | even, >= 2 x ranks (ranks even) |
    | `dualpipev`        | 2 x ranks   | r and 2 x ranks-1-r    | >= 2 x ranks                  |
    | `custom`           | any         | any                    | any                           |

    For `dualpipe` the stages `ranks .. 2 x ranks-1` are the second model
    copy (its stage `s` is global stage `ranks + s`) and each copy counts
    its `microbatches / 2` micro-batches from 0.

    ```mlir
    octet_pipe.schedule "zb1p" ranks(1) stages(1) microbatches(1) {
      octet_pipe.rank 0 {
        octet_pipe.forward stage(0) mb(0)
        octet_pipe.backward_input stage(0) mb(0)
        octet_pipe.backward_weight stage(0) mb(0)
      }
    }
    ```
  }];
  let arguments = (ins StrAttr:$kind, I64Attr:$num_ranks, I64Attr:$num_stages,
                       I64Attr:$num_microbatches);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $kind `ranks` `(` $num_ranks `)` `stages` `(` $num_stages `)`
    `microbatches` `(` $num_microbatches `)` attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The schedule kind, or std::nullopt when `kind` is not a known name.
    std::optional<::octet::pipe::ScheduleKind> getScheduleKind();
    /// True when `rank` holds global stage `stage` under this schedule.
    bool rankHoldsStage(int64_t rank, int64_t stage);
    /// The stages `rank` holds, for diagnostics (empty for `custom`).
    ::llvm::SmallVector<int64_t> getStagesOfRank(int64_t rank);
    /// Micro-batches each stage runs (half the total for `dualpipe`).
    int64_t getMicrobatchesPerStage();
  }];
}

def OctetPipe_RankOp : OctetPipe_Op<"rank", [
    HasParent<"ScheduleOp">, NoTerminator, SingleBlock, NoRegionArguments]> {
  let summary = "The ordered actions of one rank";
  let description = [{
    The actions and point-to-point transfers of rank `index`, in program
    order.

    ```mlir
    octet_pipe.rank 0 {
      octet_pipe.forward stage(0) mb(0)
    }
    ```
  }];
  let arguments = (ins I64Attr:$index);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$index attr-dict-with-keyword $body";
  let extraClassDeclaration = [{
    /// The enclosing schedule.
    ScheduleOp getSchedule();
  }];
}

class OctetPipe_ActionOp<string mnemonic, string letter, string what>
    : OctetPipe_Op<mnemonic, [HasParent<"RankOp">]> {
  let summary = "Pipeline action " # letter # ": " # what;
  let description = [{
    Runs }] # what # [{ of global stage `stage` for micro-batch `mb` on
    the compute stream (or the stream given with `on`). The rank must hold
    the stage and the micro-batch must exist.

    ```mlir
    octet_pipe.}] # mnemonic # [{ stage(1) mb(0)
    ```
  }];
  let arguments = (ins I64Attr:$stage, I64Attr:$mb,
                       DefaultValuedAttr<OctetPipe_Stream,
                           "::octet::pipe::Stream::Compute">:$stream);
  let assemblyFormat = [{
    `stage` `(` $stage `)` `mb` `(` $mb `)` (`on` $stream^)? attr-dict
  }];
}

def OctetPipe_ForwardOp
    : OctetPipe_ActionOp<"forward", "F", "the forward computation">;
def OctetPipe_BackwardOp
    : OctetPipe_ActionOp<"backward", "B",
                         "the full backward computation (input and weight gradients)">;
def OctetPipe_BackwardInputOp
    : OctetPipe_ActionOp<"backward_input", "I",
                         "the input-gradient part of the backward computation">;
def OctetPipe_BackwardWeightOp
    : OctetPipe_ActionOp<"backward_weight", "W",
                         "the deferred weight-gradient part of the backward computation">;

def OctetPipe_OverlappedOp : OctetPipe_Op<"overlapped", [HasParent<"RankOp">]> {
  let summary = "Pipeline action F&B: a forward overlapped with a full backward";
  let description = [{
    Runs the forward of one local stage and the full backward of the other
    local stage (DualPipe's F&B chunk pair), so that the communication of
    each hides behind the computation of the other. The two stages must both
    be held by the rank and differ.

    ```mlir
    octet_pipe.overlapped forward(stage(0) mb(7)) backward(stage(7) mb(3))
    ```
  }];
  let arguments = (ins I64Attr:$fwd_stage, I64Attr:$fwd_mb,
                       I64Attr:$bwd_stage, I64Attr:$bwd_mb,
                       DefaultValuedAttr<OctetPipe_Stream,
                           "::octet::pipe::Stream::Compute">:$stream);
  let assemblyFormat = [{
    `forward` `(` `stage` `(` $fwd_stage `)` `mb` `(` $fwd_mb `)` `)`
    `backward` `(` `stage` `(` $bwd_stage `)` `mb` `(` $bwd_mb `)` `)`
    (`on` $stream^)? attr-dict
  }];
}

class OctetPipe_P2POp<string mnemonic, string dir>
    : OctetPipe_Op<mnemonic, [HasParent<"RankOp">]> {
  let arguments = (ins OctetPipe_Payload:$payload, I64Attr:$stage,
                       I64Attr:$mb, I64Attr:$peer,
                       DefaultValuedAttr<OctetPipe_Stream,
                           "::octet::pipe::Stream::P2P">:$stream);
  let results = (outs OctetPipe_TokenType:$token);
  let assemblyFormat = [{
    $payload `stage` `(` $stage `)` `mb` `(` $mb `)` }] # dir #
    [{ `(` $peer `)` (`on` $stream^)? attr-dict
  }];
}

def OctetPipe_SendOp : OctetPipe_P2POp<"send", "`to`"> {
  let summary = "Asynchronously send an activation or gradient to a peer rank";
  let description = [{
    Starts sending the activation (output of `forward`) or the gradient
    (input gradient of `backward`/`backward_input`) of global stage `stage`
    for micro-batch `mb` to rank `peer`. The sending rank must hold the
    stage. The returned token is waited on once, in this block.

    ```mlir
    %t = octet_pipe.send activation stage(0) mb(0) to(1)
    octet_pipe.wait %t
    ```
  }];
}

def OctetPipe_RecvOp : OctetPipe_P2POp<"recv", "`from`"> {
  let summary = "Asynchronously receive an activation or gradient from a peer rank";
  let description = [{
    Posts the receive of the activation or gradient of global stage
    `stage` for micro-batch `mb` from rank `peer`, which must hold the stage.
    The data may be used after the `octet_pipe.wait` on the returned token.

    ```mlir
    %t = octet_pipe.recv activation stage(0) mb(0) from(0)
    octet_pipe.wait %t
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Waiting
//===----------------------------------------------------------------------===//

def OctetPipe_WaitOp : OctetPipe_Op<"wait"> {
  let summary = "Block until asynchronous operations complete";
  let description = [{
    Waits for every token; each token is waited on exactly once.

    ```mlir
    octet_pipe.wait %t0, %t1
    ```
  }];
  let arguments = (ins Variadic<OctetPipe_TokenType>:$tokens);
  let assemblyFormat = "$tokens attr-dict";
}

def OctetPipe_AwaitOp : OctetPipe_Op<"await"> {
  let summary = "Block until an asynchronous value is available and yield it";
  let description = [{
    ```mlir
    %y = octet_pipe.await %a : !octet_pipe.async<tensor<1024x512xbf16>> -> tensor<1024x512xbf16>
    ```
  }];
  let arguments = (ins OctetPipe_AsyncType:$value);
  let results = (outs OctetPipe_Transferable:$result);
  let assemblyFormat = [{
    $value attr-dict `:` qualified(type($value)) `->` qualified(type($result))
  }];
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

def OctetPipe_AllToAllOp : OctetPipe_Op<"all_to_all"> {
  let summary = "Expert-parallel all-to-all: MoE dispatch or combine";
  let description = [{
    Exchanges rows of `input` among the `size` ranks of `group`: rank `i`
    sends `split_sizes[j]` consecutive rows to rank `j` and receives the rows
    the others send it, concatenated in rank order. Only the row count
    (dimension 0) may differ between input and result. `dispatch` carries
    tokens to their experts (FP8 `!octet_tq.qtensor` values travel with their
    scales), `combine` brings expert outputs back (BF16 in the recipe).

    ```mlir
    %a = octet_pipe.all_to_all %rows, %splits dispatch group(ep, 4)
           : (!octet_tq.qtensor<2048x7168xf8E4M3FN, tile_1x128>, tensor<4xi32>)
           -> !octet_pipe.async<!octet_tq.qtensor<?x7168xf8E4M3FN, tile_1x128>>
    %r = octet_pipe.await %a : !octet_pipe.async<!octet_tq.qtensor<?x7168xf8E4M3FN, tile_1x128>>
           -> !octet_tq.qtensor<?x7168xf8E4M3FN, tile_1x128>
    ```
  }];
  let arguments = (ins OctetPipe_Transferable:$input,
                       Optional<RankedTensorOf<[I32, I64]>>:$split_sizes,
                       OctetPipe_AllToAllMode:$mode,
                       OctetPipe_ProcessGroup:$group, I64Attr:$group_size,
                       DefaultValuedAttr<OctetPipe_Stream,
                           "::octet::pipe::Stream::Collective">:$stream);
  let results = (outs OctetPipe_AsyncType:$result);
  let assemblyFormat = [{
    $input (`,` $split_sizes^)? $mode `group` `(` $group `,` $group_size `)`
    (`on` $stream^)? attr-dict `:` functional-type(operands, results)
  }];
}

def OctetPipe_AllReduceOp : OctetPipe_Op<"all_reduce"> {
  let summary = "Reduce a tensor over a process group, result on every rank";
  let description = [{
    ```mlir
    %a = octet_pipe.all_reduce %grad sum group(dp, 8)
           : (tensor<7168x2112xf32>) -> !octet_pipe.async<tensor<7168x2112xf32>>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, BF16]>:$input,
                       OctetPipe_Reduction:$reduction,
                       OctetPipe_ProcessGroup:$group, I64Attr:$group_size,
                       DefaultValuedAttr<OctetPipe_Stream,
                           "::octet::pipe::Stream::Collective">:$stream);
  let results = (outs OctetPipe_AsyncType:$result);
  let assemblyFormat = [{
    $input $reduction `group` `(` $group `,` $group_size `)` (`on` $stream^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def OctetPipe_ReduceScatterOp : OctetPipe_Op<"reduce_scatter"> {
  let summary = "Reduce a tensor over a process group, each rank keeping one shard";
  let description = [{
    Reduces `input` over the group and leaves rank `i` the `i`-th of `size`
    equal shards along dimension 0 (ZeRO-1 gradient sharding). Dimension 0
    of the input must be `size` times that of the result.

    ```mlir
    %a = octet_pipe.reduce_scatter %grad sum group(dp, 8)
           : (tensor<8192x1024xf32>) -> !octet_pipe.async<tensor<1024x1024xf32>>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, BF16]>:$input,
                       OctetPipe_Reduction:$reduction,
                       OctetPipe_ProcessGroup:$group, I64Attr:$group_size,
                       DefaultValuedAttr<OctetPipe_Stream,
                           "::octet::pipe::Stream::Collective">:$stream);
  let results = (outs OctetPipe_AsyncType:$result);
  let assemblyFormat = [{
    $input $reduction `group` `(` $group `,` $group_size `)` (`on` $stream^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Expert parallelism
//===----------------------------------------------------------------------===//

def OctetPipe_ExpertRows : RankedTensorOf<[F32, BF16]>;
def OctetPipe_ExpertCounts : RankedTensorOf<[I32, I64]>;

def OctetPipe_ExpertDispatchOp : OctetPipe_Op<"expert_dispatch"> {
  let summary = "Send routed rows to the ranks that own their experts";
  let description = [{
    The `ranks` ranks of an expert-parallel group split the `E` experts of
    an MoE layer: group rank `g` owns experts `[g E/G, (g+1) E/G)`. Each
    rank passes its rows `[R, D]`, sorted by expert, and `group_sizes: [E]`,
    the rows of each expert (as `octet.moe_dispatch` makes them). Every row
    goes to its expert's owner, which receives:

    - `received: [G R, D]`: the rows of its experts, sorted by local expert
      and, within an expert, by sending rank (each sender's rows in its own
      order); rows past the total are zero. `G R` holds the worst case, all
      rows of every rank routed to one owner;
    - `local_sizes: [E/G]`: the rows of each local expert, as the grouped
      linears take them;
    - `layout: [G, E/G]`: the rows each sender sent for each local expert,
      which `expert_combine` needs to send the results back.

    `wire` says how the rows travel, and the rows arrive rounded to it:
    `f32` exactly; `bf16` rounded to BF16; `e4m3`/`e5m2` quantized in 1x128
    tiles along `D` with power-of-two scales (one byte per element and one
    scale exponent per tile), arriving as their dequantized values.
    `--octet-insert-expert-comm` chooses a wire that the rows are already
    exact in, so the transfer changes no value.

    The op completes before it returns; every rank of the group must run
    the group's expert exchanges in the same order.

    ```mlir
    %recv, %sizes, %layout = octet_pipe.expert_dispatch %rows, %group_sizes
        ranks(2) wire(e4m3)
        : (tensor<1024x256xf32>, tensor<8xi32>)
        -> (tensor<2048x256xf32>, tensor<4xi32>, tensor<2x4xi32>)
    ```
  }];
  let arguments = (ins OctetPipe_ExpertRows:$rows,
                       OctetPipe_ExpertCounts:$group_sizes,
                       I64Attr:$ranks, OctetPipe_WireFormat:$wire);
  let results = (outs OctetPipe_ExpertRows:$received,
                      RankedTensorOf<[I32]>:$local_sizes,
                      RankedTensorOf<[I32]>:$layout);
  let assemblyFormat = [{
    $rows `,` $group_sizes `ranks` `(` $ranks `)` `wire` `(` $wire `)`
    attr-dict `:` functional-type(operands, results)
  }];
}

def OctetPipe_ExpertCombineOp : OctetPipe_Op<"expert_combine"> {
  let summary = "Send the experts' result rows back to the ranks they came from";
  let description = [{
    The inverse transfer of `octet_pipe.expert_dispatch`: `rows: [G R, D']`
    are an owner's result rows in the layout its dispatch received them
    (`layout: [G, E/G]`, from that dispatch), and every sender gets its
    rows back, `[R, D']`, in the order it dispatched them; rows past what
    it dispatched are zero. `wire` is as for the dispatch.

    ```mlir
    %back = octet_pipe.expert_combine %out, %layout ranks(2) wire(bf16)
        : (tensor<2048x256xf32>, tensor<2x4xi32>) -> tensor<1024x256xf32>
    ```
  }];
  let arguments = (ins OctetPipe_ExpertRows:$rows,
                       RankedTensorOf<[I32]>:$layout, I64Attr:$ranks,
                       OctetPipe_WireFormat:$wire);
  let results = (outs OctetPipe_ExpertRows:$result);
  let assemblyFormat = [{
    $rows `,` $layout `ranks` `(` $ranks `)` `wire` `(` $wire `)`
    attr-dict `:` functional-type(operands, results)
  }];
}

def OctetPipe_LocalExpertsOp : OctetPipe_Op<"local_experts", [Pure]> {
  let summary = "This rank's share of an expert weight";
  let description = [{
    Of `input: [E, ...]`, the experts that group rank `g` of `ranks` owns:
    `[g E/G, (g+1) E/G)`, as a `[E/G, ...]` tensor.

    ```mlir
    %w = octet_pipe.local_experts %we ranks(2)
        : tensor<8x128x256xf32> -> tensor<4x128x256xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, BF16]>:$input, I64Attr:$ranks);
  let results = (outs RankedTensorOf<[F32, BF16]>:$result);
  let assemblyFormat = [{
    $input `ranks` `(` $ranks `)` attr-dict `:` type($input) `->` type($result)
  }];
}

def OctetPipe_LocalExpertsGradOp : OctetPipe_Op<"local_experts_grad", [Pure]> {
  let summary = "Gradient of local_experts: a rank's expert gradients in the whole";
  let description = [{
    Places `input: [E/G, ...]` at group rank `g`'s experts of a zero
    `[E, ...]` tensor, so that a gradient computed for the local experts
    accumulates into the whole parameter's; the owners' contributions meet
    in the data-parallel reduction.

    ```mlir
    %dw = octet_pipe.local_experts_grad %dwl ranks(2)
        : tensor<4x128x256xf32> -> tensor<8x128x256xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, BF16]>:$input, I64Attr:$ranks);
  let results = (outs RankedTensorOf<[F32, BF16]>:$result);
  let assemblyFormat = [{
    $input `ranks` `(` $ranks `)` attr-dict `:` type($input) `->` type($result)
  }];
}

#endif // OCTET_DIALECT_OCTETPIPE_OPS_TD
