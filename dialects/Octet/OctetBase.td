//===- OctetBase.td - Octet graph dialect, enums and attributes -*- tablegen -*-===//
//
// The `octet` dialect: tensor-level ops of a decoder-only transformer training
// graph, each with a precision annotation.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECT_OCTET_BASE_TD
#define OCTET_DIALECT_OCTET_BASE_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def Octet_Dialect : Dialect {
  let name = "octet";
  let cppNamespace = "::octet";
  let summary = "Model graphs of transformer training with precision annotations";
  let description = [{
    The `octet` dialect describes the forward graph of a decoder-only
    transformer (dense or mixture-of-experts) at tensor level. Values are
    builtin ranked tensors of `f32` or `bf16` (token ids and expert indices are
    integers). Every op may carry a `#octet.precision<...>` attribute that says
    in which format its arithmetic runs, how FP8 operands are scaled, how
    often FP8 partial sums are promoted to FP32 and what the output type is.
    A recipe pass fills in the annotations the user did not write.

    Ops may carry a discardable `octet.stage` integer attribute: the pipeline
    stage the op belongs to. When the enclosing function carries
    `octet.num_stages`, every stage index must be below it.

    Shape-only operations (reshape, slice, concatenation) use the upstream
    `tensor` dialect; scalar arithmetic uses `arith`.

    Example:

    ```mlir
    func.func @block(%x: tensor<4x256x1024xbf16>, %w: tensor<4096x1024xbf16>)
        -> tensor<4x256x4096xbf16> {
      %y = octet.linear %x, %w
             precision(#octet.precision<e4m3, lhs = tile_1x128,
                        rhs = block_128x128, promotion = 128, out = bf16>)
             {octet.stage = 0 : i64}
             : (tensor<4x256x1024xbf16>, tensor<4096x1024xbf16>) -> tensor<4x256x4096xbf16>
      return %y : tensor<4x256x4096xbf16>
    }
    ```
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    /// Name of the discardable attribute that assigns an op to a pipeline stage.
    static constexpr ::llvm::StringLiteral getStageAttrName() { return "octet.stage"; }
    /// Name of the function attribute that bounds the stage indices.
    static constexpr ::llvm::StringLiteral getNumStagesAttrName() { return "octet.num_stages"; }
  private:
    void registerAttributes();
  public:
  }];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Octet_ComputeFormat : I32EnumAttr<"ComputeFormat",
    "number format the op's arithmetic runs in", [
      I32EnumAttrCase<"E4M3", 0, "e4m3">,
      I32EnumAttrCase<"E5M2", 1, "e5m2">,
      I32EnumAttrCase<"BF16", 2, "bf16">,
      I32EnumAttrCase<"F32", 3, "f32">
    ]> {
  let cppNamespace = "::octet";
  let genSpecializedAttr = 0;
}

def Octet_ScalingGranularity : I32EnumAttr<"ScalingGranularity",
    "how FP8 scales are shared by the elements of an operand", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Tile1x128", 1, "tile_1x128">,
      I32EnumAttrCase<"Block128x128", 2, "block_128x128">,
      I32EnumAttrCase<"PerTensor", 3, "per_tensor">
    ]> {
  let cppNamespace = "::octet";
  let genSpecializedAttr = 0;
}

def Octet_ScaleRounding : I32EnumAttr<"ScaleRounding",
    "how a scale computed from an amax is rounded", [
      I32EnumAttrCase<"FP32", 0, "fp32">,
      I32EnumAttrCase<"Pow2", 1, "pow2">
    ]> {
  let cppNamespace = "::octet";
  let genSpecializedAttr = 0;
}

def Octet_MoEScoring : I32EnumAttr<"MoEScoring",
    "function turning router logits into expert scores", [
      I32EnumAttrCase<"Sigmoid", 0, "sigmoid">,
      I32EnumAttrCase<"Softmax", 1, "softmax">
    ]> {
  let cppNamespace = "::octet";
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class Octet_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Octet_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def Octet_PrecisionAttr : Octet_Attr<"Precision", "precision"> {
  let summary = "Precision annotation of a graph op";
  let description = [{
    Says how an op computes:

    - the compute format: `e4m3`, `e5m2` (FP8, GEMM ops only), `bf16` or `f32`;
    - `lhs` / `rhs`: scaling granularity of the two GEMM operands:
      `tile_1x128` (one scale per row per 128 elements of the contraction
      dimension), `block_128x128`, `per_tensor`, or `none`;
    - `scale`: rounding of the scales, `fp32` (`s = max(amax, 1e-4) / 448`)
      or `pow2` (`s = 2^ceil(log2(amax / 448))`);
    - `promotion`: every how many K-elements the tensor-core partial sums are
      promoted to FP32 and scaled (0 = never);
    - `out`: the output element type (`f32` or `bf16`).

    Only the format is required; the rest default to `none`, `fp32`, `0` and
    `f32`. FP8 formats need a scaling granularity for both operands and a
    promotion interval that is a multiple of 32 (the K of one FP8 wgmma);
    `bf16` and `f32` take neither scales nor promotion.

    ```mlir
    #octet.precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = bf16>
    #octet.precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = bf16>
    #octet.precision<bf16, out = bf16>
    ```
  }];
  let parameters = (ins
    "::octet::ComputeFormat":$format,
    DefaultValuedParameter<"::octet::ScalingGranularity",
        "::octet::ScalingGranularity::None">:$lhsScaling,
    DefaultValuedParameter<"::octet::ScalingGranularity",
        "::octet::ScalingGranularity::None">:$rhsScaling,
    DefaultValuedParameter<"::octet::ScaleRounding",
        "::octet::ScaleRounding::FP32">:$scaleRounding,
    DefaultValuedParameter<"int64_t", "0">:$promotionInterval,
    "::mlir::Type":$outputType
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// True for the FP8 formats (e4m3, e5m2).
    bool isFP8() const;
    /// True when the operand scaling uses 128-element groups along K.
    static bool isGrouped(::octet::ScalingGranularity g) {
      return g == ::octet::ScalingGranularity::Tile1x128 ||
             g == ::octet::ScalingGranularity::Block128x128;
    }
  }];
}

#endif // OCTET_DIALECT_OCTET_BASE_TD
