// RUN: octet-opt %s -split-input-file --octet-fuse-quantize | FileCheck %s

// An RMSNorm whose only user is a 1x128 quantization, through the
// collapse_shape that merges batch and sequence: fused, the norm erased,
// the collapse moved to the norm's input, stage tags kept.
// CHECK-LABEL: func.func @norm
// CHECK-NOT: octet.rmsnorm
// CHECK: %[[C:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2]] : tensor<8x64x256xf32> into tensor<512x256xf32>
// CHECK: octet_tq.rmsnorm_quantize %[[C]], %arg1 epsilon(1.0e-06) pow2 {octet.stage = 1 : i64} : (tensor<512x256xf32>, tensor<256xf32>) -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
// CHECK-NOT: octet_tq.quantize
func.func @norm(%x: tensor<8x64x256xf32>, %g: tensor<256xf32>) -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128> {
  %n = octet.rmsnorm %x, %g epsilon(1.0e-06) : (tensor<8x64x256xf32>, tensor<256xf32>) -> tensor<8x64x256xf32>
  %c = tensor.collapse_shape %n [[0, 1], [2]] : tensor<8x64x256xf32> into tensor<512x256xf32>
  %q = octet_tq.quantize %c pow2 {octet.stage = 1 : i64} : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
}

// -----

// The norm has another user: it stays, the quantization is still fused.
// CHECK-LABEL: func.func @shared_norm
// CHECK: %[[N:.*]] = octet.rmsnorm
// CHECK: octet_tq.rmsnorm_quantize %arg0, %arg1
// CHECK: return %[[N]]
func.func @shared_norm(%x: tensor<64x256xbf16>, %g: tensor<256xf32>)
    -> (tensor<64x256xbf16>, !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>) {
  %n = octet.rmsnorm %x, %g epsilon(1.0e-06) : (tensor<64x256xbf16>, tensor<256xf32>) -> tensor<64x256xbf16>
  %q = octet_tq.quantize %n : tensor<64x256xbf16> -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  return %n, %q : tensor<64x256xbf16>, !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
}

// -----

// SwiGLU, directly.
// CHECK-LABEL: func.func @swiglu
// CHECK-NOT: octet.swiglu
// CHECK: octet_tq.swiglu_quantize %arg0, %arg1 : (tensor<512x128xf32>, tensor<512x128xf32>) -> !octet_tq.qtensor<512x128xf8E4M3FN, tile_1x128>
func.func @swiglu(%a: tensor<512x128xf32>, %b: tensor<512x128xf32>) -> !octet_tq.qtensor<512x128xf8E4M3FN, tile_1x128> {
  %y = octet.swiglu %a, %b : (tensor<512x128xf32>, tensor<512x128xf32>) -> tensor<512x128xf32>
  %q = octet_tq.quantize %y : tensor<512x128xf32> -> !octet_tq.qtensor<512x128xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<512x128xf8E4M3FN, tile_1x128>
}

// -----

// Left alone: other granularities, a collapse that merges the last
// dimension, and producers that are neither RMSNorm nor SwiGLU.
// CHECK-LABEL: func.func @unfused
// CHECK-COUNT-3: octet_tq.quantize
// CHECK-NOT: _quantize
func.func @unfused(%x: tensor<8x64x256xf32>, %g: tensor<256xf32>, %a: tensor<512x256xf32>)
    -> (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<8x16384xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>) {
  %n = octet.rmsnorm %x, %g epsilon(1.0e-06) : (tensor<8x64x256xf32>, tensor<256xf32>) -> tensor<8x64x256xf32>
  %c = tensor.collapse_shape %n [[0, 1], [2]] : tensor<8x64x256xf32> into tensor<512x256xf32>
  %q1 = octet_tq.quantize %c : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>
  %d = tensor.collapse_shape %n [[0], [1, 2]] : tensor<8x64x256xf32> into tensor<8x16384xf32>
  %q2 = octet_tq.quantize %d : tensor<8x16384xf32> -> !octet_tq.qtensor<8x16384xf8E4M3FN, tile_1x128>
  %s = octet.add %a, %a : (tensor<512x256xf32>, tensor<512x256xf32>) -> tensor<512x256xf32>
  %q3 = octet_tq.quantize %s : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
  return %q1, %q2, %q3 : !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<8x16384xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
}
