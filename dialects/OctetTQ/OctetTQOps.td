//===- OctetTQOps.td - Tile-quantization dialect operations -*- tablegen -*-===//

#ifndef OCTET_DIALECT_OCTETTQ_OPS_TD
#define OCTET_DIALECT_OCTETTQ_OPS_TD

include "OctetTQ/OctetTQBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def OctetTQ_QTensor : Type<CPred<"::llvm::isa<::octet::tq::QTensorType>($_self)">,
    "quantized tensor", "::octet::tq::QTensorType">;
def OctetTQ_HighPrecisionTensor : RankedTensorOf<[F32, BF16]>;

class OctetTQ_Op<string mnemonic, list<Trait> traits = []>
    : Op<OctetTQ_Dialect, mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
}

def OctetTQ_ConstantOp : OctetTQ_Op<"constant", [ConstantLike]> {
  let summary = "A constant quantized tensor";
  let description = [{
    Materializes an `#octet_tq.qconst` value; constant folding of the other
    ops produces it, so `octet-opt --canonicalize` shows the exact FP8 payload
    and scales of a quantization.

    ```mlir
    %q = octet_tq.constant <tile_1x128, payload = dense<[[448.0, -2.0]]> : tensor<1x2xf8E4M3FN>,
                            scales = dense<[[0.25]]> : tensor<1x1xf32>>
           : !octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>
    ```
  }];
  let arguments = (ins OctetTQ_QuantizedConstantAttr:$value);
  let results = (outs OctetTQ_QTensor:$result);
  let assemblyFormat = "$value attr-dict `:` qualified(type($result))";
  let hasFolder = 1;
}

def OctetTQ_QuantizeOp : OctetTQ_Op<"quantize"> {
  let summary = "Quantize a tensor to FP8 with online scales";
  let description = [{
    For every scaling group of the result's granularity:
    `amax = max |x|` over the group, `s = max(amax, 1e-4) / fmax` (or, with
    `pow2`, `s = 2^ceil(log2(amax / fmax))`), `q = saturate(round(x / s))`,
    where `fmax` is 448 for `f8E4M3FN` and 57344 for `f8E5M2`. Rounding is to
    nearest even; values beyond the finite range saturate; NaN stays NaN.
    The shape is unchanged; partial groups at dimension ends are allowed.

    ```mlir
    %q = octet_tq.quantize %x pow2 : tensor<256x1024xbf16>
           -> !octet_tq.qtensor<256x1024xf8E4M3FN, tile_1x128>
    ```
  }];
  let arguments = (ins OctetTQ_HighPrecisionTensor:$input, UnitAttr:$pow2);
  let results = (outs OctetTQ_QTensor:$result);
  let hasFolder = 1;
  let assemblyFormat = [{
    $input (`pow2` $pow2^)? attr-dict `:` type($input) `->` qualified(type($result))
  }];
}

def OctetTQ_DequantizeOp : OctetTQ_Op<"dequantize"> {
  let summary = "Expand a quantized tensor to f32 or bf16";
  let description = [{
    `result = payload * scale(group)`, computed in FP32 and rounded to the
    result element type (nearest even for bf16).

    ```mlir
    %x = octet_tq.dequantize %q : !octet_tq.qtensor<256x1024xf8E4M3FN, tile_1x128>
           -> tensor<256x1024xf32>
    ```
  }];
  let arguments = (ins OctetTQ_QTensor:$input);
  let results = (outs OctetTQ_HighPrecisionTensor:$result);
  let hasFolder = 1;
  let assemblyFormat = [{
    $input attr-dict `:` qualified(type($input)) `->` type($result)
  }];
}

def OctetTQ_RequantizeTransposedOp : OctetTQ_Op<"requantize_transposed"> {
  let summary = "Regroup a 1x128-tiled tensor into 128x1 tiles";
  let description = [{
    Reads a `tile_1x128` tensor (groups along the last dimension),
    dequantizes it and quantizes it again with `tile_128x1` groups (along the
    second-to-last dimension), as the weight-gradient GEMM needs for the
    cached FP8 input and the output gradient (both contract over tokens).
    The logical shape is unchanged; `pow2` selects power-of-two scales.

    ```mlir
    %t = octet_tq.requantize_transposed %q
           : !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
           -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1>
    ```
  }];
  let arguments = (ins OctetTQ_QTensor:$input, UnitAttr:$pow2);
  let results = (outs OctetTQ_QTensor:$result);
  let hasFolder = 1;
  let assemblyFormat = [{
    $input (`pow2` $pow2^)? attr-dict `:` qualified(type($input)) `->`
    qualified(type($result))
  }];
}

def OctetTQ_ScaledMatmulOp : OctetTQ_Op<"scaled_matmul"> {
  let summary = "Block-scaled FP8 matrix product with FP32 promotion";
  let description = [{
    Contracts dimension `contract(i, j)` of `lhs` with dimension `j` of `rhs`
    (both rank 2); the result is `[free dim of lhs, free dim of rhs]`:

    | GEMM  | lhs                         | rhs                          | contract | result  |
    |-------|-----------------------------|------------------------------|----------|---------|
    | Fprop | X `[M, K]` tile_1x128       | W `[N, K]` block_128x128     | (1, 1)   | `[M, N]`|
    | Dgrad | dY `[M, N]` tile_1x128      | W `[N, K]` block_128x128     | (1, 0)   | `[M, K]`|
    | Wgrad | dY `[M, N]` tile_128x1      | X `[M, K]` tile_128x1        | (0, 0)   | `[N, K]`|

    `Y = sum over K-groups g of (sa[g] * sb[g]) * (qa_g . qb_g)`: the tensor
    cores accumulate each FP8 partial product for `promotion` K-elements;
    the partial sum is then multiplied by the group's two scales and added to
    an FP32 accumulator. Scales may not vary inside a dot product, so a tiled
    operand must be grouped along its contracting dimension; with grouped
    scales K must be a multiple of 128 and the promotion interval must divide
    128. The interval is a multiple of 32 (one FP8 wgmma) and at most K; 0
    (accumulate all of K in the tensor core) is only allowed when both
    operands are scaled per tensor. `tile` optionally fixes the kernel's tile
    configuration.

    ```mlir
    %dx = octet_tq.scaled_matmul %qdy, %qw contract(1, 0) promotion(128)
            tile(<128x128x128, stages = 4>)
            : (!octet_tq.qtensor<4096x2112xf8E4M3FN, tile_1x128>,
               !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>)
            -> tensor<4096x7168xbf16>
    ```
  }];
  let arguments = (ins OctetTQ_QTensor:$lhs, OctetTQ_QTensor:$rhs,
                       I64Attr:$lhs_contracting_dim,
                       I64Attr:$rhs_contracting_dim,
                       I64Attr:$promotion,
                       OptionalAttr<OctetTQ_TileConfigAttr>:$tile);
  let results = (outs OctetTQ_HighPrecisionTensor:$result);
  let hasFolder = 1;
  let assemblyFormat = [{
    $lhs `,` $rhs `contract` `(` $lhs_contracting_dim `,` $rhs_contracting_dim `)`
    `promotion` `(` $promotion `)` (`tile` `(` $tile^ `)`)? attr-dict `:`
    `(` qualified(type($lhs)) `,` qualified(type($rhs)) `)` `->` type($result)
  }];
}

def OctetTQ_RMSNormQuantizeOp : OctetTQ_Op<"rmsnorm_quantize"> {
  let summary = "RMSNorm fused with its 1x128 quantization";
  let description = [{
    `quantize(rmsnorm(x, gamma))` in one pass over `x`: per row,
    `y = x / sqrt(mean(x^2) + epsilon) * gamma` in FP32, rounded to the
    element type of `x` (as `octet.rmsnorm`'s result would be), then
    quantized in 1x128 tiles as `octet_tq.quantize` does. `gamma` has the
    size of the last dimension. Made by `--octet-fuse-quantize`.

    ```mlir
    %q = octet_tq.rmsnorm_quantize %x, %gamma epsilon(1.0e-06)
           : (tensor<4096x7168xbf16>, tensor<7168xf32>)
           -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
    ```
  }];
  let arguments = (ins OctetTQ_HighPrecisionTensor:$x,
                       OctetTQ_HighPrecisionTensor:$gamma, F64Attr:$epsilon,
                       UnitAttr:$pow2);
  let results = (outs OctetTQ_QTensor:$result);
  let assemblyFormat = [{
    $x `,` $gamma `epsilon` `(` custom<ShortFloat>($epsilon) `)`
    (`pow2` $pow2^)? attr-dict `:`
    `(` type($x) `,` type($gamma) `)` `->` qualified(type($result))
  }];
}

def OctetTQ_SwiGLUQuantizeOp : OctetTQ_Op<"swiglu_quantize"> {
  let summary = "SwiGLU fused with its 1x128 quantization";
  let description = [{
    `quantize(swiglu(gate, up))` in one pass: `y = gate * sigmoid(gate) *
    up` in FP32, rounded to the operands' element type (as `octet.swiglu`'s
    result would be), then quantized in 1x128 tiles. Made by
    `--octet-fuse-quantize`.

    ```mlir
    %q = octet_tq.swiglu_quantize %gate, %up
           : (tensor<4096x2048xbf16>, tensor<4096x2048xbf16>)
           -> !octet_tq.qtensor<4096x2048xf8E4M3FN, tile_1x128>
    ```
  }];
  let arguments = (ins OctetTQ_HighPrecisionTensor:$gate,
                       OctetTQ_HighPrecisionTensor:$up, UnitAttr:$pow2);
  let results = (outs OctetTQ_QTensor:$result);
  let assemblyFormat = [{
    $gate `,` $up (`pow2` $pow2^)? attr-dict `:`
    `(` type($gate) `,` type($up) `)` `->` qualified(type($result))
  }];
}

def OctetTQ_AlignGroupsOp : OctetTQ_Op<"align_groups"> {
  let summary = "Lay rows grouped by expert out on 128-row boundaries";
  let description = [{
    `input` is `[R, C]` with its rows sorted by expert, `group_sizes[e]` of
    them for expert `e`, as `octet.moe_dispatch` leaves them. The result
    holds the same rows with each expert's run starting at a multiple of
    128; `group_index[i]` is the expert of row `i`. The rows between runs
    and after the last one are zeros with group index -1.

    This is the layout of the grouped GEMMs: a 128-row tile never holds
    rows of two experts, so the M-grouped GEMM can take one expert per tile
    and the K-grouped GEMM's 128x1 scaling groups never cross experts. The
    result needs at most `R + 127 min(R, E)` rows, rounded down to a
    multiple of 128; the verifier asks for at least that many.

    ```mlir
    %xa, %index = octet_tq.align_groups %x, %sizes
        : (tensor<1024x256xf32>, tensor<8xi32>)
        -> (tensor<1920x256xf32>, tensor<1920xi32>)
    ```
  }];
  let arguments = (ins OctetTQ_HighPrecisionTensor:$input,
                       RankedTensorOf<[I32, I64]>:$group_sizes);
  let results = (outs OctetTQ_HighPrecisionTensor:$result,
                      1DTensorOf<[I32]>:$group_index);
  let assemblyFormat = [{
    $input `,` $group_sizes attr-dict `:` `(` type($input) `,`
    type($group_sizes) `)` `->` `(` type($result) `,` type($group_index) `)`
  }];
  let extraClassDeclaration = [{
    /// The fewest rows that hold `rows` rows of `experts` experts in any
    /// split, each expert's run padded to 128 rows.
    static int64_t getAlignedRows(int64_t rows, int64_t experts);
  }];
}

def OctetTQ_UnalignGroupsOp : OctetTQ_Op<"unalign_groups"> {
  let summary = "Drop the padding rows that align_groups added";
  let description = [{
    The inverse of `octet_tq.align_groups` for the same `group_sizes`: the
    result `[R, C]` holds the rows of `input` that belong to an expert, in
    order, and none of the padding.

    ```mlir
    %y = octet_tq.unalign_groups %ya, %sizes
        : (tensor<1920x128xf32>, tensor<8xi32>) -> tensor<1024x128xf32>
    ```
  }];
  let arguments = (ins OctetTQ_HighPrecisionTensor:$input,
                       RankedTensorOf<[I32, I64]>:$group_sizes);
  let results = (outs OctetTQ_HighPrecisionTensor:$result);
  let assemblyFormat = [{
    $input `,` $group_sizes attr-dict `:` `(` type($input) `,`
    type($group_sizes) `)` `->` type($result)
  }];
}

def OctetTQ_GroupedScaledMatmulOp : OctetTQ_Op<"grouped_scaled_matmul"> {
  let summary = "Block-scaled FP8 products of token rows with their experts";
  let description = [{
    The MoE expert GEMM over a contiguous layout (M-grouped): row `i` of
    `lhs` (`[M, K]`, 1x128 tiles) is multiplied by the weight of expert
    `group_index[i]` in `rhs` (`[E, N, K]`, 128x128 blocks), contracting K
    with FP32 promotion every `promotion` K-elements as in
    `octet_tq.scaled_matmul`: `result[i] = rhs[group_index[i]] . lhs[i]`.

    `rhs_contract` says which dimension of `rhs` is contracted: 2 (the
    default, Fprop: `x W^T`, result `[M, N]`) or 1 (Dgrad: `dy W`, where
    `lhs` is `[M, N]` and the result `[M, K]`).

    The rows of one expert are contiguous and each expert's run is padded
    to a multiple of 128 rows (`octet_tq.align_groups`); padding rows carry
    a negative group index and their results are unspecified (a kernel
    computes whole 128-row tiles with the tile's expert). Nothing may read
    them. `tile` optionally fixes the kernel's tile configuration.

    ```mlir
    %y = octet_tq.grouped_scaled_matmul %x, %w, %experts promotion(128)
           : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
              !octet_tq.qtensor<8x4096x7168xf8E4M3FN, block_128x128>,
              tensor<4096xi32>) -> tensor<4096x4096xbf16>
    %dx = octet_tq.grouped_scaled_matmul %dy, %w, %experts rhs_contract(1)
            promotion(128)
           : (!octet_tq.qtensor<4096x4096xf8E4M3FN, tile_1x128>,
              !octet_tq.qtensor<8x4096x7168xf8E4M3FN, block_128x128>,
              tensor<4096xi32>) -> tensor<4096x7168xbf16>
    ```
  }];
  let arguments = (ins OctetTQ_QTensor:$lhs, OctetTQ_QTensor:$rhs,
                       1DTensorOf<[I32]>:$group_index,
                       DefaultValuedOptionalAttr<I64Attr, "2">:$rhs_contracting_dim,
                       I64Attr:$promotion,
                       OptionalAttr<OctetTQ_TileConfigAttr>:$tile);
  let results = (outs OctetTQ_HighPrecisionTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $group_index
    (`rhs_contract` `(` $rhs_contracting_dim^ `)`)?
    `promotion` `(` $promotion `)`
    (`tile` `(` $tile^ `)`)? attr-dict `:`
    `(` qualified(type($lhs)) `,` qualified(type($rhs)) `,`
    type($group_index) `)` `->` type($result)
  }];
}

def OctetTQ_KGroupedScaledMatmulOp : OctetTQ_Op<"k_grouped_scaled_matmul"> {
  let summary = "Per-expert FP8 products contracting each expert's token rows";
  let description = [{
    The MoE expert weight gradient (K-grouped): for every expert `e`,
    `result[e] = sum over rows i with group_index[i] = e of
    lhs[i]^T rhs[i]`, where `lhs` is `dY [M, N]` and `rhs` is `X [M, K]`,
    both in 128x1 tiles along the M (token) rows that are contracted, with
    FP32 promotion every `promotion` rows as in `octet_tq.scaled_matmul`.
    The result is `[E, N, K]`; an expert without rows gets zeros.

    The operands are in the layout of `octet_tq.align_groups`: M is a
    multiple of 128 and every 128-row tile holds the rows of one expert or
    padding (negative index, zero rows), so no scaling group crosses two
    experts.

    ```mlir
    %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %experts promotion(128)
           : (!octet_tq.qtensor<4096x4096xf8E4M3FN, tile_128x1>,
              !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1>,
              tensor<4096xi32>) -> tensor<8x4096x7168xf32>
    ```
  }];
  let arguments = (ins OctetTQ_QTensor:$lhs, OctetTQ_QTensor:$rhs,
                       1DTensorOf<[I32]>:$group_index,
                       I64Attr:$promotion,
                       OptionalAttr<OctetTQ_TileConfigAttr>:$tile);
  let results = (outs OctetTQ_HighPrecisionTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $group_index `promotion` `(` $promotion `)`
    (`tile` `(` $tile^ `)`)? attr-dict `:`
    `(` qualified(type($lhs)) `,` qualified(type($rhs)) `,`
    type($group_index) `)` `->` type($result)
  }];
}

#endif // OCTET_DIALECT_OCTETTQ_OPS_TD
