//===- OctetTQBase.td - Tile-quantization dialect, types, attrs -*- tablegen -*-===//

#ifndef OCTET_DIALECT_OCTETTQ_BASE_TD
#define OCTET_DIALECT_OCTETTQ_BASE_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def OctetTQ_Dialect : Dialect {
  let name = "octet_tq";
  let cppNamespace = "::octet::tq";
  let summary = "Tile-quantized FP8 tensors and block-scaled matrix products";
  let description = [{
    The `octet_tq` dialect is where FP8 linears live after quantization
    lowering. A `!octet_tq.qtensor` is an FP8 payload together with its FP32
    scales; its granularity says how the scales are shared:

    | granularity      | one scale per                      | scales shape (for `M x K`) |
    |------------------|------------------------------------|----------------------------|
    | `tile_1x128`     | row, per 128 columns               | `M x ceil(K/128)`          |
    | `tile_128x1`     | column, per 128 rows               | `ceil(M/128) x K`          |
    | `block_128x128`  | 128 x 128 block                    | `ceil(M/128) x ceil(K/128)`|
    | `per_tensor`     | tensor                             | scalar                     |

    Groups at the end of a dimension that is not a multiple of 128 are
    partial. Leading dimensions of rank > 2 tensors are batch dimensions.
    Shapes are logical: physical layouts (K-major operands for wgmma) are the
    code generator's choice.

    quantize, dequantize, requantize_transposed and scaled_matmul fold when
    their operands are constants (up to 2^22 elements), through Octet's
    numerics library, the same code the CPU backend runs and the GPU kernels
    are tested against: `octet-opt --canonicalize` prints the exact FP8
    payload and scales, as `octet_tq.constant` values.

    Example: the forward GEMM of a linear.

    ```mlir
    %qx = octet_tq.quantize %x : tensor<4096x7168xbf16>
            -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
    %qw = octet_tq.quantize %w : tensor<2112x7168xf32>
            -> !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>
    %y = octet_tq.scaled_matmul %qx, %qw contract(1, 1) promotion(128)
           : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
              !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>)
           -> tensor<4096x2112xbf16>
    ```
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect"];
  let extraClassDeclaration = [{
  private:
    void registerTypes();
    void registerAttributes();
  public:
  }];
}

def OctetTQ_Granularity : I32EnumAttr<"Granularity",
    "how the scales of a quantized tensor are shared", [
      I32EnumAttrCase<"Tile1x128", 0, "tile_1x128">,
      I32EnumAttrCase<"Tile128x1", 1, "tile_128x1">,
      I32EnumAttrCase<"Block128x128", 2, "block_128x128">,
      I32EnumAttrCase<"PerTensor", 3, "per_tensor">
    ]> {
  let cppNamespace = "::octet::tq";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

def OctetTQ_QTensorType : TypeDef<OctetTQ_Dialect, "QTensor"> {
  let mnemonic = "qtensor";
  let summary = "FP8 payload with FP32 scales of a given granularity";
  let description = [{
    A tensor of the given shape whose elements are stored as `f8E4M3FN` or
    `f8E5M2` and whose FP32 scales are shared according to the granularity
    (see the dialect description). The value represented is
    `payload * scale(group)`.

    ```mlir
    !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
    !octet_tq.qtensor<8x2048x7168xf8E4M3FN, block_128x128>
    !octet_tq.qtensor<4096x?xf8E5M2, per_tensor>
    ```
  }];
  let parameters = (ins
    ArrayRefParameter<"int64_t">:$shape,
    "::mlir::Type":$elementType,
    "::octet::tq::Granularity":$granularity
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getRank() const { return getShape().size(); }
    /// Dimensions along which 128-element scaling groups run (the last for
    /// tile_1x128, the second to last for tile_128x1, both for blocks, none
    /// for per_tensor).
    ::llvm::SmallVector<int64_t, 2> getGroupedDims() const;
    /// True when the scales vary along dimension `dim`.
    bool isGroupedAlong(int64_t dim) const;
    /// Shape of the FP32 scales tensor (rank 0 for per_tensor).
    ::llvm::SmallVector<int64_t> getScaleShape() const;
    /// The scales as a tensor type: tensor<...xf32>.
    ::mlir::RankedTensorType getScalesType() const;
    /// The payload as a tensor type: tensor<...xf8...>.
    ::mlir::RankedTensorType getPayloadType() const;
  }];
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

def OctetTQ_TileConfigAttr : AttrDef<OctetTQ_Dialect, "TileConfig"> {
  let mnemonic = "tile";
  let summary = "Tile shape and pipeline depth of a block-scaled GEMM kernel";
  let description = [{
    `<M x N x K, stages = S>`: the CTA computes an `M x N` output tile, walks
    K in steps of `K` elements and keeps `S` K-steps of operands in flight in
    shared memory. `M` is a multiple of 64 (one wgmma warpgroup row block),
    `N` a multiple of 8 up to 256 (wgmma's N), `K` a multiple of 32 (one FP8
    wgmma), `S` between 1 and 32. Chosen by a heuristic pass; a user's pass
    may change it.

    A trailing `overlap` asks for the overlapped promotion schedule: the
    tensor-core work of the next promotion interval is started before the
    partial sums of the current one are promoted, so each interval's
    promotion runs while the next one computes. It keeps two partial-sum
    accumulators live and holds a K-step's shared-memory slot while it waits
    for the next one, so it needs `S >= 2`.

    ```mlir
    #octet_tq.tile<128x160x128, stages = 5>
    #octet_tq.tile<128x128x128, stages = 6, overlap>
    ```
  }];
  let parameters = (ins "int64_t":$m, "int64_t":$n, "int64_t":$k,
                        "int64_t":$stages,
                        DefaultValuedParameter<"bool", "false">:$overlap);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def OctetTQ_QuantizedConstantAttr
    : AttrDef<OctetTQ_Dialect, "QuantizedConstant"> {
  let mnemonic = "qconst";
  let summary = "A constant quantized tensor: FP8 payload and FP32 scales";
  let description = [{
    The value of a `!octet_tq.qtensor` known at compile time, as constant
    folding produces it: the granularity, the payload as dense FP8 elements
    (printed as their exact values) and the scales in the layout of the
    type's scales tensor.

    ```mlir
    #octet_tq.qconst<tile_1x128, payload = dense<[[448.0, -2.0]]> : tensor<1x2xf8E4M3FN>,
                     scales = dense<[[0.25]]> : tensor<1x1xf32>>
    ```
  }];
  let parameters = (ins "::octet::tq::Granularity":$granularity,
                        "::mlir::DenseElementsAttr":$payload,
                        "::mlir::DenseElementsAttr":$scales);
  let assemblyFormat = [{
    `<` $granularity `,` `payload` `=` $payload `,` `scales` `=` $scales `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The quantized tensor type this is a value of.
    ::octet::tq::QTensorType getQTensorType() const;
  }];
}

#endif // OCTET_DIALECT_OCTETTQ_BASE_TD
