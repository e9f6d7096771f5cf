// The quantizations octet-bench quant measures, at DeepSeek-V3 sizes: an
// activation (4096 tokens x 7168) in 1x128 tiles from BF16, the same in
// 128x1 groups written transposed (the weight gradient's operand), its
// re-quantization from 1x128 tiles, a 7168 x 2048 weight in 128x128
// blocks, and the fused RMSNorm (hidden 7168) and SwiGLU (expert width
// 2048) quantizations.

func.func @tile_1x128(%x: tensor<4096x7168xbf16>) -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128> {
  %q = octet_tq.quantize %x : tensor<4096x7168xbf16> -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
}
func.func @tile_128x1(%x: tensor<4096x7168xbf16>) -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1> {
  %q = octet_tq.quantize %x : tensor<4096x7168xbf16> -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1>
  return %q : !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1>
}
func.func @requantize(%q: !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>) -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1> {
  %t = octet_tq.requantize_transposed %q : !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1>
  return %t : !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_128x1>
}
func.func @block_128x128(%w: tensor<7168x2048xbf16>) -> !octet_tq.qtensor<7168x2048xf8E4M3FN, block_128x128> {
  %q = octet_tq.quantize %w : tensor<7168x2048xbf16> -> !octet_tq.qtensor<7168x2048xf8E4M3FN, block_128x128>
  return %q : !octet_tq.qtensor<7168x2048xf8E4M3FN, block_128x128>
}
func.func @rmsnorm_quantize(%x: tensor<4096x7168xbf16>, %g: tensor<7168xf32>) -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128> {
  %q = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-06) : (tensor<4096x7168xbf16>, tensor<7168xf32>) -> !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>
}
func.func @swiglu_quantize(%gate: tensor<4096x2048xbf16>, %up: tensor<4096x2048xbf16>) -> !octet_tq.qtensor<4096x2048xf8E4M3FN, tile_1x128> {
  %q = octet_tq.swiglu_quantize %gate, %up : (tensor<4096x2048xbf16>, tensor<4096x2048xbf16>) -> !octet_tq.qtensor<4096x2048xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<4096x2048xf8E4M3FN, tile_1x128>
}
