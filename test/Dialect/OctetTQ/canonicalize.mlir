// RUN: octet-opt %s -split-input-file --canonicalize | FileCheck %s

// Folding runs the numerics library: these are the exact FP8 payloads and
// scales of the recipe's quantization (s = amax / 448 per 1x128 tile).
// Row 0: amax 1000, s = 1000/448; 1/s = 0.448 rounds to 0.4375, -2/s to
// -0.875, 3.5/s = 1.568 to 1.625, 1000/s to 448. Row 1: amax 0.5.
// CHECK-LABEL: func.func @quantize_tile
// CHECK: %[[Q:.*]] = octet_tq.constant <tile_1x128, payload = dense<{{\[}}[4.375000e-01, -8.750000e-01, 1.625000e+00, 4.480000e+02], [8.750000e-01, 0.000000e+00, -4.480000e+02, 2.240000e+02]]> : tensor<2x4xf8E4M3FN>, scales = dense<{{\[}}[2.23214293], [0.00111607148]]> : tensor<2x1xf32>> : !octet_tq.qtensor<2x4xf8E4M3FN, tile_1x128>
// Dequantization multiplies back in FP32: 0.4375 * 1000/448.
// CHECK: %[[D:.*]] = arith.constant dense<{{\[}}[0.9765625, -1.953125, 3.62723231, 1.000000e+03], [9.765625E-4, 0.000000e+00, -5.000000e-01, 2.500000e-01]]> : tensor<2x4xf32>
// CHECK: return %[[Q]], %[[D]]
func.func @quantize_tile() -> (!octet_tq.qtensor<2x4xf8E4M3FN, tile_1x128>, tensor<2x4xf32>) {
  %x = arith.constant dense<[[1.0, -2.0, 3.5, 1000.0], [0.001, 0.0, -0.5, 0.25]]> : tensor<2x4xf32>
  %q = octet_tq.quantize %x : tensor<2x4xf32> -> !octet_tq.qtensor<2x4xf8E4M3FN, tile_1x128>
  %d = octet_tq.dequantize %q : !octet_tq.qtensor<2x4xf8E4M3FN, tile_1x128> -> tensor<2x4xf32>
  return %q, %d : !octet_tq.qtensor<2x4xf8E4M3FN, tile_1x128>, tensor<2x4xf32>
}

// -----

// Power-of-two scales: amax 1000 gives s = 2^ceil(log2(1000/448)) = 4, and
// 1000/4 = 250 rounds to 256; the second row (amax 2) gets 2^-7.
// CHECK-LABEL: func.func @quantize_pow2
// CHECK: octet_tq.constant <tile_1x128, payload = dense<{{\[}}[2.560000e+02, 2.500000e-01], [2.560000e+02, 1.920000e+02]]> : tensor<2x2xf8E4M3FN>, scales = dense<{{\[}}[4.000000e+00], [7.812500e-03]]> : tensor<2x1xf32>>
func.func @quantize_pow2() -> !octet_tq.qtensor<2x2xf8E4M3FN, tile_1x128> {
  %x = arith.constant dense<[[1000.0, 1.0], [2.0, 1.5]]> : tensor<2x2xf32>
  %q = octet_tq.quantize %x pow2 : tensor<2x2xf32> -> !octet_tq.qtensor<2x2xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<2x2xf8E4M3FN, tile_1x128>
}

// -----

// E5M2 saturates at 57344 and BF16 inputs are read exactly.
// CHECK-LABEL: func.func @quantize_e5m2_per_tensor
// CHECK: octet_tq.constant <per_tensor, payload = dense<{{\[}}[5.734400e+04, -1.433600e+04, 0.000000e+00]]> : tensor<1x3xf8E5M2>, scales = dense<1.562500e-02> : tensor<f32>>
func.func @quantize_e5m2_per_tensor() -> !octet_tq.qtensor<1x3xf8E5M2, per_tensor> {
  %x = arith.constant dense<[[896.0, -224.0, 0.0]]> : tensor<1x3xbf16>
  %q = octet_tq.quantize %x pow2 : tensor<1x3xbf16> -> !octet_tq.qtensor<1x3xf8E5M2, per_tensor>
  return %q : !octet_tq.qtensor<1x3xf8E5M2, per_tensor>
}

// -----

// The Fprop GEMM with exact values: 128 products of (2 * 3), every operand
// exactly representable: 2 = 256 * 2^-7 and 3 = 384 * 2^-7.
// CHECK-LABEL: func.func @fprop
// CHECK: %[[Y:.*]] = arith.constant dense<7.680000e+02> : tensor<1x1xf32>
// CHECK: return %[[Y]]
func.func @fprop() -> tensor<1x1xf32> {
  %x = arith.constant dense<2.0> : tensor<1x128xf32>
  %w = arith.constant dense<3.0> : tensor<1x128xf32>
  %qx = octet_tq.quantize %x pow2 : tensor<1x128xf32> -> !octet_tq.qtensor<1x128xf8E4M3FN, tile_1x128>
  %qw = octet_tq.quantize %w pow2 : tensor<1x128xf32> -> !octet_tq.qtensor<1x128xf8E4M3FN, block_128x128>
  %y = octet_tq.scaled_matmul %qx, %qw contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<1x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<1x128xf8E4M3FN, block_128x128>) -> tensor<1x1xf32>
  return %y : tensor<1x1xf32>
}

// -----

// Each K-group is promoted with its own scales: group 0 holds 1s, group 1
// 1024s (tile scales 2^-8 and 2^2), so Y = 128 * 1 + 128 * 1024 = 131200;
// in BF16 that rounds to 131072.
// CHECK-LABEL: func.func @two_groups_bf16
// CHECK: arith.constant dense<1.310720e+05> : tensor<1x1xbf16>
// CHECK-LABEL: func.func @two_groups_f32
// CHECK: arith.constant dense<1.312000e+05> : tensor<1x1xf32>
func.func @two_groups_bf16() -> tensor<1x1xbf16> {
  %x = arith.constant dense<[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0]]> : tensor<1x256xf32>
  %w = arith.constant dense<1.0> : tensor<1x256xf32>
  %qx = octet_tq.quantize %x pow2 : tensor<1x256xf32> -> !octet_tq.qtensor<1x256xf8E4M3FN, tile_1x128>
  %qw = octet_tq.quantize %w pow2 : tensor<1x256xf32> -> !octet_tq.qtensor<1x256xf8E4M3FN, block_128x128>
  %y = octet_tq.scaled_matmul %qx, %qw contract(1, 1) promotion(64)
      : (!octet_tq.qtensor<1x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<1x256xf8E4M3FN, block_128x128>) -> tensor<1x1xbf16>
  return %y : tensor<1x1xbf16>
}
func.func @two_groups_f32() -> tensor<1x1xf32> {
  %x = arith.constant dense<[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0]]> : tensor<1x256xf32>
  %w = arith.constant dense<1.0> : tensor<1x256xf32>
  %qx = octet_tq.quantize %x pow2 : tensor<1x256xf32> -> !octet_tq.qtensor<1x256xf8E4M3FN, tile_1x128>
  %qw = octet_tq.quantize %w pow2 : tensor<1x256xf32> -> !octet_tq.qtensor<1x256xf8E4M3FN, block_128x128>
  %y = octet_tq.scaled_matmul %qx, %qw contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<1x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<1x256xf8E4M3FN, block_128x128>) -> tensor<1x1xf32>
  return %y : tensor<1x1xf32>
}

// -----

// Wgrad operands: requantize_transposed regroups along rows (here one
// 128x1 group per column: column 0 has amax 4, column 1 amax 0.5).
// CHECK-LABEL: func.func @requantize
// CHECK: octet_tq.constant <tile_128x1, payload = dense<{{\[}}[1.120000e+02, 4.480000e+02], [4.480000e+02, -2.240000e+02]]> : tensor<2x2xf8E4M3FN>, scales = dense<{{\[}}[0.00892857183, 0.00111607148]]> : tensor<1x2xf32>>
func.func @requantize() -> !octet_tq.qtensor<2x2xf8E4M3FN, tile_128x1> {
  %x = arith.constant dense<[[1.0, 0.5], [4.0, -0.25]]> : tensor<2x2xf32>
  %q = octet_tq.quantize %x : tensor<2x2xf32> -> !octet_tq.qtensor<2x2xf8E4M3FN, tile_1x128>
  %t = octet_tq.requantize_transposed %q
      : !octet_tq.qtensor<2x2xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<2x2xf8E4M3FN, tile_128x1>
  return %t : !octet_tq.qtensor<2x2xf8E4M3FN, tile_128x1>
}

// -----

// Operands that are not constants do not fold.
// CHECK-LABEL: func.func @not_constant
// CHECK: octet_tq.quantize
// CHECK: octet_tq.dequantize
func.func @not_constant(%x: tensor<4x128xf32>) -> tensor<4x128xf32> {
  %q = octet_tq.quantize %x : tensor<4x128xf32> -> !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>
  %d = octet_tq.dequantize %q : !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128> -> tensor<4x128xf32>
  return %d : tensor<4x128xf32>
}
