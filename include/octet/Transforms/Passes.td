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
    - the output head (the linear whose result reaches `octet.cross_entropy`)
      and everything else (embedding, attention core, norms, gate, loss, ...):
      the op's own element type, f32 or bf16.

    `bf16` (the baseline): every GEMM in BF16, everything else as above.
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
           "Recipe to apply: deepseek-v3 or bf16">,
    Option<"overrideExisting", "override", "bool", /*default=*/"false",
           "Replace precision annotations the graph already has">
  ];
}

#endif // OCTET_TRANSFORMS_PASSES_TD
