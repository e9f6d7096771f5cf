// Three linears; after the plugin pass the first and the last compute in
// BF16 and the middle one keeps its FP8 annotation.
func.func @mlp(%x: tensor<8x256xf32>, %w0: tensor<256x256xf32>, %w1: tensor<256x256xf32>,
               %w2: tensor<256x256xf32>) -> tensor<8x256xf32> {
  %a = octet.linear %x, %w0 precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<8x256xf32>, tensor<256x256xf32>) -> tensor<8x256xf32>
  %b = octet.linear %a, %w1 precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<8x256xf32>, tensor<256x256xf32>) -> tensor<8x256xf32>
  %c = octet.linear %b, %w2
      : (tensor<8x256xf32>, tensor<256x256xf32>) -> tensor<8x256xf32>
  return %c : tensor<8x256xf32>
}
