//===- Passes.td - An example Octet pass built as a plugin -*- tablegen -*-===//

#ifndef OCTET_EXAMPLE_PASSES_TD
#define OCTET_EXAMPLE_PASSES_TD

include "mlir/Pass/PassBase.td"

def KeepEdgeLinearsBF16Pass
    : Pass<"octet-example-keep-edge-linears-bf16", "::mlir::func::FuncOp"> {
  let summary = "Keep the first and last linears of each graph in BF16";
  let description = [{
    A common FP8 practice is to keep the layers nearest the input and the
    output in higher precision. This pass rewrites the `precision` of the
    first `count` and the last `count` `octet.linear` ops of each function
    (in program order) to BF16 compute with the op's own output type,
    whatever they had before. Run it after `--octet-assign-precision`.

    ```mlir
    // Before
    %y = octet.linear %x, %w
           precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
           : (tensor<8x256xf32>, tensor<256x256xf32>) -> tensor<8x256xf32>
    // After --octet-example-keep-edge-linears-bf16
    %y = octet.linear %x, %w precision<bf16, out = f32>
           : (tensor<8x256xf32>, tensor<256x256xf32>) -> tensor<8x256xf32>
    ```
  }];
  let options = [
    Option<"count", "count", "unsigned", /*default=*/"1",
           "How many linears to keep in BF16 at each end">
  ];
}

#endif // OCTET_EXAMPLE_PASSES_TD
