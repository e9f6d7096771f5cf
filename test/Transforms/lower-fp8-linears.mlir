// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-lower-fp8-linears | FileCheck %s

// Fprop, Dgrad and Wgrad of one linear, with the recipe's granularities;
// the Wgrad reads the forward's FP8 copy of X (the cache), regrouped.
// CHECK-LABEL: func.func @gemms
// CHECK-SAME: (%[[X:.*]]: tensor<2x64x256xf32>, %[[W:.*]]: tensor<512x256xf32>, %[[DY:.*]]: tensor<2x64x512xf32>)
// Fprop: tokens flattened, X in 1x128 tiles (pow2 scales), W in blocks.
// CHECK: %[[X2:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x64x256xf32> into tensor<128x256xf32>
// CHECK: %[[QX:.*]] = octet_tq.quantize %[[X2]] pow2 : tensor<128x256xf32> -> !octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>
// CHECK: %[[QW:.*]] = octet_tq.quantize %[[W]] : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, block_128x128>
// CHECK: %[[Y2:.*]] = octet_tq.scaled_matmul %[[QX]], %[[QW]] contract(1, 1) promotion(128) : {{.*}} -> tensor<128x512xf32>
// CHECK: %[[Y:.*]] = tensor.expand_shape %[[Y2]] {{\[}}[0, 1], [2]] {{.*}} : tensor<128x512xf32> into tensor<2x64x512xf32>
// Dgrad: dY in 1x128 tiles along N, W in blocks, contract (1, 0).
// CHECK: %[[DY2:.*]] = tensor.collapse_shape %[[DY]]
// CHECK: %[[QDY:.*]] = octet_tq.quantize %[[DY2]] : tensor<128x512xf32> -> !octet_tq.qtensor<128x512xf8E4M3FN, tile_1x128>
// CHECK: %[[QW2:.*]] = octet_tq.quantize %[[W]] : tensor<512x256xf32> -> !octet_tq.qtensor<512x256xf8E4M3FN, block_128x128>
// CHECK: %[[DX2:.*]] = octet_tq.scaled_matmul %[[QDY]], %[[QW2]] contract(1, 0) promotion(128) : {{.*}} -> tensor<128x256xf32>
// CHECK: tensor.expand_shape %[[DX2]]
// Wgrad: the cached FP8 X regrouped 128x1 (keeping its pow2 scales), dY
// quantized 128x1 along the tokens, contract (0, 0).
// CHECK: %[[QXT:.*]] = octet_tq.requantize_transposed %[[QX]] pow2 : !octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<128x256xf8E4M3FN, tile_128x1>
// CHECK: %[[QDYT:.*]] = octet_tq.quantize %{{.*}} : tensor<128x512xf32> -> !octet_tq.qtensor<128x512xf8E4M3FN, tile_128x1>
// CHECK: %[[DW:.*]] = octet_tq.scaled_matmul %[[QDYT]], %[[QXT]] contract(0, 0) promotion(128) : {{.*}} -> tensor<512x256xf32>
// CHECK-NOT: octet.linear
// CHECK: return %[[Y]], %{{.*}}, %[[DW]]
func.func @gemms(%x: tensor<2x64x256xf32>, %w: tensor<512x256xf32>, %dy: tensor<2x64x512xf32>)
    -> (tensor<2x64x512xf32>, tensor<2x64x256xf32>, tensor<512x256xf32>) {
  %y = octet.linear %x, %w precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<2x64x256xf32>, tensor<512x256xf32>) -> tensor<2x64x512xf32>
  %dx = octet.linear_dgrad %dy, %w precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<2x64x512xf32>, tensor<512x256xf32>) -> tensor<2x64x256xf32>
  %dw = octet.linear_wgrad %dy, %x precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<2x64x512xf32>, tensor<2x64x256xf32>) -> tensor<512x256xf32>
  return %y, %dx, %dw : tensor<2x64x512xf32>, tensor<2x64x256xf32>, tensor<512x256xf32>
}

// -----

// Contracted dimensions that are not multiples of 128 are zero-padded:
// N = 160 in Dgrad, 64 tokens in Wgrad (the cache is dequantized, padded
// and regrouped). The promotion interval and the E5M2 format carry over.
// CHECK-LABEL: func.func @padding
// CHECK: %[[Z:.*]] = arith.constant dense<0.000000e+00> : tensor<64x256xf32>
// CHECK: %[[P:.*]] = tensor.insert_slice %{{.*}} into %[[Z]][0, 0] [64, 160] [1, 1] : tensor<64x160xf32> into tensor<64x256xf32>
// CHECK: octet_tq.quantize %[[P]] : tensor<64x256xf32> -> !octet_tq.qtensor<64x256xf8E5M2, tile_1x128>
// CHECK: %[[DX:.*]] = octet_tq.scaled_matmul {{.*}} contract(1, 0) promotion(64) : {{.*}} -> tensor<64x128xf32>
// CHECK: %[[DEQ:.*]] = octet_tq.dequantize %{{.*}} : !octet_tq.qtensor<64x128xf8E5M2, tile_1x128> -> tensor<64x128xf32>
// CHECK: %[[PX:.*]] = tensor.insert_slice %[[DEQ]] into %{{.*}}[0, 0] [64, 128] [1, 1] : tensor<64x128xf32> into tensor<128x128xf32>
// CHECK: octet_tq.quantize %[[PX]] : tensor<128x128xf32> -> !octet_tq.qtensor<128x128xf8E5M2, tile_128x1>
// CHECK: octet_tq.scaled_matmul {{.*}} contract(0, 0) promotion(64) : {{.*}} -> tensor<160x128xf32>
func.func @padding(%x: tensor<64x128xf32>, %w: tensor<160x128xf32>, %dy: tensor<64x160xf32>)
    -> (tensor<64x160xf32>, tensor<64x128xf32>, tensor<160x128xf32>) {
  %y = octet.linear %x, %w precision<e5m2, lhs = tile_1x128, rhs = block_128x128, promotion = 64, out = f32>
      : (tensor<64x128xf32>, tensor<160x128xf32>) -> tensor<64x160xf32>
  %dx = octet.linear_dgrad %dy, %w precision<e5m2, lhs = tile_1x128, rhs = block_128x128, promotion = 64, out = f32>
      : (tensor<64x160xf32>, tensor<160x128xf32>) -> tensor<64x128xf32>
  %dw = octet.linear_wgrad %dy, %x precision<e5m2, lhs = tile_1x128, rhs = block_128x128, promotion = 64, out = f32>
      : (tensor<64x160xf32>, tensor<64x128xf32>) -> tensor<160x128xf32>
  return %y, %dx, %dw : tensor<64x160xf32>, tensor<64x128xf32>, tensor<160x128xf32>
}

// -----

// A Wgrad without an FP8 forward in the function quantizes X as the forward
// would, then regroups it.
// CHECK-LABEL: func.func @no_cache
// CHECK: %[[Q:.*]] = octet_tq.quantize %{{.*}} : tensor<128x128xf32> -> !octet_tq.qtensor<128x128xf8E4M3FN, tile_1x128>
// CHECK: octet_tq.requantize_transposed %[[Q]] :
func.func @no_cache(%x: tensor<128x128xf32>, %dy: tensor<128x256xf32>) -> tensor<256x128xf32> {
  %dw = octet.linear_wgrad %dy, %x precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<128x256xf32>, tensor<128x128xf32>) -> tensor<256x128xf32>
  return %dw : tensor<256x128xf32>
}

// -----

// High-precision linears, and biased FP8 ones (with a warning), stay.
// CHECK-LABEL: func.func @untouched
// CHECK: octet.linear %{{.*}}, %{{.*}} precision<bf16, out = f32>
// CHECK: octet.linear %{{.*}}, %{{.*}}, %{{.*}} precision<e4m3
// CHECK: octet.linear_dgrad %{{.*}}, %{{.*}} :
// CHECK-NOT: octet_tq
func.func @untouched(%x: tensor<128x128xf32>, %w: tensor<128x128xf32>, %b: tensor<128xf32>)
    -> (tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>) {
  %y = octet.linear %x, %w precision<bf16, out = f32> : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  // expected-warning @+1 {{FP8 linear with a bias is not lowered (the recipe's linears have none); it stays as is}}
  %z = octet.linear %x, %w, %b precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<128x128xf32>, tensor<128x128xf32>, tensor<128xf32>) -> tensor<128x128xf32>
  %dx = octet.linear_dgrad %x, %w : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  return %y, %z, %dx : tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>
}

// -----

// The MoE SwiGLU: its inputs are cached in FP8 right after the forward; the
// backward dequantizes them and recomputes the output for the down
// projection's Wgrad. New ops stay on their op's pipeline stage.
// CHECK-LABEL: func.func @moe_swiglu
// CHECK: %[[A:.*]] = octet.swiglu %[[G:[^,]+]], %[[U:[^ ]+]] {octet.stage = 1 : i64}
// CHECK-NEXT: %[[QG:.*]] = octet_tq.quantize %[[G]] {octet.stage = 1 : i64} : tensor<256x128xf32> -> !octet_tq.qtensor<256x128xf8E4M3FN, tile_1x128>
// CHECK-NEXT: %[[QU:.*]] = octet_tq.quantize %[[U]] {octet.stage = 1 : i64}
// CHECK: %[[DG:.*]] = octet_tq.dequantize %[[QG]] {octet.stage = 1 : i64}
// CHECK-NEXT: %[[DU:.*]] = octet_tq.dequantize %[[QU]]
// CHECK-NEXT: %[[A2:.*]] = octet.swiglu %[[DG]], %[[DU]]
// CHECK: octet_tq.align_groups %[[A2]], %{{.*}}
// CHECK: octet_tq.k_grouped_scaled_matmul
// CHECK: octet.swiglu_grad %[[DG]], %[[DU]], %{{.*}}
func.func @moe_swiglu(%g: tensor<256x128xf32>, %u: tensor<256x128xf32>, %w: tensor<4x128x128xf32>,
                      %sizes: tensor<4xi32>, %dy: tensor<256x128xf32>)
    -> (tensor<256x128xf32>, tensor<4x128x128xf32>, tensor<256x128xf32>, tensor<256x128xf32>) {
  %a = octet.swiglu %g, %u {octet.stage = 1 : i64} : (tensor<256x128xf32>, tensor<256x128xf32>) -> tensor<256x128xf32>
  %y = octet.grouped_linear %a, %w, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<256x128xf32>, tensor<4x128x128xf32>, tensor<4xi32>) -> tensor<256x128xf32>
  %dw = octet.grouped_linear_wgrad %dy, %a, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<256x128xf32>, tensor<256x128xf32>, tensor<4xi32>) -> tensor<4x128x128xf32>
  %dg, %du = octet.swiglu_grad %g, %u, %dy : (tensor<256x128xf32>, tensor<256x128xf32>, tensor<256x128xf32>) -> (tensor<256x128xf32>, tensor<256x128xf32>)
  return %y, %dw, %dg, %du : tensor<256x128xf32>, tensor<4x128x128xf32>, tensor<256x128xf32>, tensor<256x128xf32>
}

// -----

// The expert linears: rows laid out on 128-row boundaries per expert (300
// rows of 4 experts may need 768), the M-grouped GEMM for Fprop and Dgrad
// (contracting N of the weights), the K-grouped GEMM for Wgrad on the
// forward's aligned FP8 copy of X, regrouped with its pow2 scales.
// CHECK-LABEL: func.func @expert_linear
// CHECK-NOT: octet.grouped_linear
// CHECK: %[[XA:.*]], %[[IX:.*]] = octet_tq.align_groups %[[X:[^,]+]], %[[S:[^ ]+]] {octet.stage = 2 : i64} : (tensor<300x256xf32>, tensor<4xi32>) -> (tensor<768x256xf32>, tensor<768xi32>)
// CHECK-NEXT: %[[QX:.*]] = octet_tq.quantize %[[XA]] pow2 {octet.stage = 2 : i64} : tensor<768x256xf32> -> !octet_tq.qtensor<768x256xf8E4M3FN, tile_1x128>
// CHECK-NEXT: %[[QW:.*]] = octet_tq.quantize %[[W:[^ ]+]] {octet.stage = 2 : i64} : tensor<4x128x256xf32> -> !octet_tq.qtensor<4x128x256xf8E4M3FN, block_128x128>
// CHECK-NEXT: %[[YA:.*]] = octet_tq.grouped_scaled_matmul %[[QX]], %[[QW]], %[[IX]] promotion(64) {octet.stage = 2 : i64} : ({{.*}}) -> tensor<768x128xf32>
// CHECK-NEXT: %[[Y:.*]] = octet_tq.unalign_groups %[[YA]], %[[S]] {octet.stage = 2 : i64} : (tensor<768x128xf32>, tensor<4xi32>) -> tensor<300x128xf32>
// CHECK: %[[DYA:.*]], %[[ID:.*]] = octet_tq.align_groups %[[DY:[^,]+]], %[[S]] : (tensor<300x128xf32>, tensor<4xi32>) -> (tensor<768x128xf32>, tensor<768xi32>)
// CHECK-NEXT: %[[QDY:.*]] = octet_tq.quantize %[[DYA]] : tensor<768x128xf32> -> !octet_tq.qtensor<768x128xf8E4M3FN, tile_1x128>
// CHECK-NEXT: %[[QW2:.*]] = octet_tq.quantize %[[W]] : tensor<4x128x256xf32> -> !octet_tq.qtensor<4x128x256xf8E4M3FN, block_128x128>
// CHECK-NEXT: %[[DXA:.*]] = octet_tq.grouped_scaled_matmul %[[QDY]], %[[QW2]], %[[ID]] rhs_contract(1) promotion(128) : ({{.*}}) -> tensor<768x256xf32>
// CHECK-NEXT: %[[DX:.*]] = octet_tq.unalign_groups %[[DXA]], %[[S]] : (tensor<768x256xf32>, tensor<4xi32>) -> tensor<300x256xf32>
// CHECK: %[[DYB:.*]], %[[IW:.*]] = octet_tq.align_groups %[[DY]], %[[S]]
// CHECK-NEXT: %[[QXT:.*]] = octet_tq.requantize_transposed %[[QX]] pow2 : !octet_tq.qtensor<768x256xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<768x256xf8E4M3FN, tile_128x1>
// CHECK-NEXT: %[[QDYT:.*]] = octet_tq.quantize %[[DYB]] : tensor<768x128xf32> -> !octet_tq.qtensor<768x128xf8E4M3FN, tile_128x1>
// CHECK-NEXT: %[[DW:.*]] = octet_tq.k_grouped_scaled_matmul %[[QDYT]], %[[QXT]], %[[IW]] promotion(128) : ({{.*}}) -> tensor<4x128x256xf32>
// CHECK-NEXT: return %[[Y]], %[[DX]], %[[DW]]
func.func @expert_linear(%x: tensor<300x256xf32>, %w: tensor<4x128x256xf32>, %sizes: tensor<4xi32>,
                         %dy: tensor<300x128xf32>) -> (tensor<300x128xf32>, tensor<300x256xf32>, tensor<4x128x256xf32>) {
  %y = octet.grouped_linear %x, %w, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 64, out = f32> {octet.stage = 2 : i64}
      : (tensor<300x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<300x128xf32>
  %dx = octet.grouped_linear_dgrad %dy, %w, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<300x128xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<300x256xf32>
  %dw = octet.grouped_linear_wgrad %dy, %x, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<300x128xf32>, tensor<300x256xf32>, tensor<4xi32>) -> tensor<4x128x256xf32>
  return %y, %dx, %dw : tensor<300x128xf32>, tensor<300x256xf32>, tensor<4x128x256xf32>
}

// -----

// An expert Wgrad without an FP8 forward of its input quantizes the input
// as the forward would (aligned, 1x128, pow2), then regroups it.
// CHECK-LABEL: func.func @expert_wgrad_alone
// CHECK: %[[DYA:.*]], %[[I:.*]] = octet_tq.align_groups %[[DY:[^,]+]], %[[S:[^ ]+]] :
// CHECK-NEXT: %[[XA:.*]], %{{.*}} = octet_tq.align_groups %[[X:[^,]+]], %[[S]] : (tensor<128x256xbf16>, tensor<2xi64>) -> (tensor<256x256xbf16>, tensor<256xi32>)
// CHECK-NEXT: %[[QX:.*]] = octet_tq.quantize %[[XA]] pow2 : tensor<256x256xbf16> -> !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>
// CHECK-NEXT: %[[QXT:.*]] = octet_tq.requantize_transposed %[[QX]] pow2
// CHECK-NEXT: %[[QDY:.*]] = octet_tq.quantize %[[DYA]] : tensor<256x128xbf16> -> !octet_tq.qtensor<256x128xf8E4M3FN, tile_128x1>
// CHECK-NEXT: octet_tq.k_grouped_scaled_matmul %[[QDY]], %[[QXT]], %[[I]] promotion(128) : ({{.*}}) -> tensor<2x128x256xf32>
func.func @expert_wgrad_alone(%x: tensor<128x256xbf16>, %sizes: tensor<2xi64>, %dy: tensor<128x128xbf16>) -> tensor<2x128x256xf32> {
  %dw = octet.grouped_linear_wgrad %dy, %x, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<128x128xbf16>, tensor<128x256xbf16>, tensor<2xi64>) -> tensor<2x128x256xf32>
  return %dw : tensor<2x128x256xf32>
}

// -----

// Expert weights whose N or K is not a multiple of 128 stay as they are
// (the grouped GEMMs contract whole scaling groups of them); BF16 expert
// linears are not touched.
// CHECK-LABEL: func.func @expert_unlowered
// CHECK: octet.grouped_linear_dgrad
// CHECK: octet.grouped_linear {{.*}}tensor<?x256xf32>
// CHECK: octet.grouped_linear {{.*}}precision<bf16
// CHECK-NOT: octet_tq
func.func @expert_unlowered(%dy: tensor<256x96xf32>, %w: tensor<4x96x256xf32>, %sizes: tensor<4xi32>,
                            %x: tensor<256x256xf32>, %xd: tensor<?x256xf32>, %w2: tensor<4x128x256xf32>)
    -> (tensor<256x256xf32>, tensor<256x96xf32>) {
  // expected-warning @+1 {{FP8 expert linear with weights [4, 96, 256] is not lowered: the grouped GEMMs need N and K to be multiples of 128; it stays as is}}
  %dx = octet.grouped_linear_dgrad %dy, %w, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<256x96xf32>, tensor<4x96x256xf32>, tensor<4xi32>) -> tensor<256x256xf32>
  // expected-warning @+1 {{FP8 expert linear with dynamic shapes is not lowered: the aligned row layout needs static rows and experts; it stays as is}}
  %z = octet.grouped_linear %xd, %w2, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<?x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<?x128xf32>
  %y = octet.grouped_linear %x, %w, %sizes precision<bf16, out = f32>
      : (tensor<256x256xf32>, tensor<4x96x256xf32>, tensor<4xi32>) -> tensor<256x96xf32>
  return %dx, %y : tensor<256x256xf32>, tensor<256x96xf32>
}

// -----

// Linears reading the same input (an MLP's gate and up, MLA's q_a and
// kv_a) share one FP8 copy of it when they ask for the same format and
// scale rounding in the same stage; the expert gate and up also share the
// aligned rows and their expert index. Another scale rounding, or another
// pipeline stage, quantizes again.
// CHECK-LABEL: func.func @shared_inputs
// CHECK: %[[QX:.*]] = octet_tq.quantize %{{.*}} pow2 : tensor<128x256xf32> -> !octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>
// CHECK: octet_tq.scaled_matmul %[[QX]],
// CHECK-NOT: octet_tq.quantize %{{.*}} pow2 : tensor<128x256xf32>
// CHECK: octet_tq.scaled_matmul %[[QX]],
// CHECK: %[[QF:.*]] = octet_tq.quantize %{{.*}} : tensor<128x256xf32> -> !octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>
// CHECK: octet_tq.scaled_matmul %[[QF]],
// CHECK: %[[QS:.*]] = octet_tq.quantize %{{.*}} pow2 {octet.stage = 1 : i64} : tensor<128x256xf32>
// CHECK: octet_tq.scaled_matmul %[[QS]],
// CHECK: %[[A:.*]], %[[I:.*]] = octet_tq.align_groups %{{.*}}, %{{.*}} : (tensor<256x256xf32>, tensor<4xi32>)
// CHECK: %[[QA:.*]] = octet_tq.quantize %[[A]] pow2
// CHECK: octet_tq.grouped_scaled_matmul %[[QA]], %{{.*}}, %[[I]]
// CHECK-NOT: octet_tq.align_groups
// CHECK: octet_tq.grouped_scaled_matmul %[[QA]], %{{.*}}, %[[I]]
// CHECK-NOT: octet_tq.align_groups
// CHECK: return
func.func @shared_inputs(%x: tensor<2x64x256xf32>, %wg: tensor<128x256xf32>, %wu: tensor<128x256xf32>,
                         %r: tensor<256x256xf32>, %we: tensor<4x128x256xf32>, %sizes: tensor<4xi32>)
    -> (tensor<2x64x128xf32>, tensor<2x64x128xf32>, tensor<2x64x128xf32>, tensor<2x64x128xf32>,
        tensor<256x128xf32>, tensor<256x128xf32>) {
  %g = octet.linear %x, %wg precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %u = octet.linear %x, %wu precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %f = octet.linear %x, %wu precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %s = octet.linear %x, %wu precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %eg = octet.grouped_linear %r, %we, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<256x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<256x128xf32>
  %eu = octet.grouped_linear %r, %we, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
      : (tensor<256x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<256x128xf32>
  return %g, %u, %f, %s, %eg, %eu : tensor<2x64x128xf32>, tensor<2x64x128xf32>, tensor<2x64x128xf32>, tensor<2x64x128xf32>,
                                    tensor<256x128xf32>, tensor<256x128xf32>
}
