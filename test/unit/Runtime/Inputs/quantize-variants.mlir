// The quantizations the CUDA tests run (CudaQuantizeTest.cpp): every
// kernel kind, BF16 and FP32 inputs, power-of-two scales, partial blocks
// and a batch of weights. Built into a cubin by octetc at build time.

func.func @tile_bf16(%x: tensor<300x512xbf16>) -> !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128> {
  %q = octet_tq.quantize %x : tensor<300x512xbf16> -> !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>
}

func.func @tile_f32_pow2(%x: tensor<64x256xf32>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128> {
  %q = octet_tq.quantize %x pow2 : tensor<64x256xf32> -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
}

func.func @block_bf16(%w: tensor<2112x256xbf16>) -> !octet_tq.qtensor<2112x256xf8E4M3FN, block_128x128> {
  %q = octet_tq.quantize %w : tensor<2112x256xbf16> -> !octet_tq.qtensor<2112x256xf8E4M3FN, block_128x128>
  return %q : !octet_tq.qtensor<2112x256xf8E4M3FN, block_128x128>
}

func.func @block_experts_f32(%w: tensor<3x200x256xf32>) -> !octet_tq.qtensor<3x200x256xf8E4M3FN, block_128x128> {
  %q = octet_tq.quantize %w : tensor<3x200x256xf32> -> !octet_tq.qtensor<3x200x256xf8E4M3FN, block_128x128>
  return %q : !octet_tq.qtensor<3x200x256xf8E4M3FN, block_128x128>
}

func.func @columns_f32(%dy: tensor<512x160xf32>) -> !octet_tq.qtensor<512x160xf8E4M3FN, tile_128x1> {
  %q = octet_tq.quantize %dy : tensor<512x160xf32> -> !octet_tq.qtensor<512x160xf8E4M3FN, tile_128x1>
  return %q : !octet_tq.qtensor<512x160xf8E4M3FN, tile_128x1>
}

func.func @requantize(%t: !octet_tq.qtensor<256x384xf8E4M3FN, tile_1x128>)
    -> (!octet_tq.qtensor<256x384xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<256x384xf8E4M3FN, tile_128x1>) {
  %r = octet_tq.requantize_transposed %t : !octet_tq.qtensor<256x384xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x384xf8E4M3FN, tile_128x1>
  %p = octet_tq.requantize_transposed %t pow2 : !octet_tq.qtensor<256x384xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x384xf8E4M3FN, tile_128x1>
  return %r, %p : !octet_tq.qtensor<256x384xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<256x384xf8E4M3FN, tile_128x1>
}

// Fused producers: RMSNorm of BF16 rows with an FP32 gain, and SwiGLU.
func.func @rmsnorm(%x: tensor<256x512xbf16>, %g: tensor<512xf32>) -> !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128> {
  %q = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-06) : (tensor<256x512xbf16>, tensor<512xf32>) -> !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>
}

func.func @swiglu_pow2(%gate: tensor<300x256xf32>, %up: tensor<300x256xf32>) -> !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128> {
  %q = octet_tq.swiglu_quantize %gate, %up pow2 : (tensor<300x256xf32>, tensor<300x256xf32>) -> !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>
}
