// RUN: octet-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// !octet_tq.qtensor and #octet_tq.tile
//===----------------------------------------------------------------------===//

// expected-error @+1 {{quantized element type must be f8E4M3FN or f8E5M2, got 'f8E4M3'}}
func.func @ieee_e4m3(%q: !octet_tq.qtensor<4x128xf8E4M3, tile_1x128>) { return }

// -----

// expected-error @+1 {{unknown granularity 'tile_1x64'; expected tile_1x128, tile_128x1, block_128x128 or per_tensor}}
func.func @bad_granularity(%q: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x64>) { return }

// -----

// expected-error @+1 {{granularity 'block_128x128' needs rank >= 2, got [128]}}
func.func @block_rank1(%q: !octet_tq.qtensor<128xf8E4M3FN, block_128x128>) { return }

// -----

// expected-error @+1 {{tile M = 96 must be a positive multiple of 64}}
func.func @tile_m() attributes {t = #octet_tq.tile<96x128x128, stages = 4>} { return }

// -----

// expected-error @+1 {{tile N = 264 must be a multiple of 8 in [8, 256]}}
func.func @tile_n() attributes {t = #octet_tq.tile<128x264x128, stages = 4>} { return }

// -----

// expected-error @+1 {{tile K = 48 must be a positive multiple of 32}}
func.func @tile_k() attributes {t = #octet_tq.tile<128x128x48, stages = 4>} { return }

// -----

// expected-error @+1 {{pipeline stages = 0 must be in [1, 32]}}
func.func @tile_stages() attributes {t = #octet_tq.tile<128x128x128, stages = 0>} { return }

// -----

// expected-error @+1 {{the overlapped schedule holds one stage while it waits for the next: it needs at least 2 stages, got 1}}
func.func @tile_overlap_stages() attributes {t = #octet_tq.tile<128x128x128, stages = 1, overlap>} { return }

// -----

// expected-error @+1 {{expected 'overlap'}}
func.func @tile_option() attributes {t = #octet_tq.tile<128x128x128, stages = 4, overlapped>} { return }

// -----

// expected-error @+1 {{expected a tile shape MxNxK, got 2 dimensions}}
func.func @tile_rank() attributes {t = #octet_tq.tile<128x128, stages = 4>} { return }

// -----

//===----------------------------------------------------------------------===//
// quantize / dequantize / requantize_transposed
//===----------------------------------------------------------------------===//

func.func @quantize_shape(%x: tensor<4x128xf32>) {
  // expected-error @+1 {{result shape [4, 256] differs from the input shape [4, 128]}}
  %0 = octet_tq.quantize %x : tensor<4x128xf32> -> !octet_tq.qtensor<4x256xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @quantize_f16(%x: tensor<4x128xf16>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or bfloat16 type values}}
  %0 = octet_tq.quantize %x : tensor<4x128xf16> -> !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @dequantize_shape(%q: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>) {
  // expected-error @+1 {{result shape [128, 4] differs from the input shape [4, 128]}}
  %0 = octet_tq.dequantize %q : !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128> -> tensor<128x4xf32>
  return
}

// -----

func.func @requant_input(%q: !octet_tq.qtensor<256x128xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{input must be tile_1x128, got block_128x128}}
  %0 = octet_tq.requantize_transposed %q : !octet_tq.qtensor<256x128xf8E4M3FN, block_128x128> -> !octet_tq.qtensor<256x128xf8E4M3FN, tile_128x1>
  return
}

// -----

func.func @requant_result(%q: !octet_tq.qtensor<256x128xf8E4M3FN, tile_1x128>) {
  // expected-error @+1 {{result must be tile_128x1, got per_tensor}}
  %0 = octet_tq.requantize_transposed %q : !octet_tq.qtensor<256x128xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x128xf8E4M3FN, per_tensor>
  return
}

// -----

func.func @requant_shape(%q: !octet_tq.qtensor<256x128xf8E4M3FN, tile_1x128>) {
  // expected-error @+1 {{result shape [128, 256] differs from the input shape [256, 128]}}
  %0 = octet_tq.requantize_transposed %q : !octet_tq.qtensor<256x128xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<128x256xf8E4M3FN, tile_128x1>
  return
}

// -----

//===----------------------------------------------------------------------===//
// scaled_matmul
//===----------------------------------------------------------------------===//

func.func @mm_rank(%a: !octet_tq.qtensor<2x4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{operands must have rank 2, got [2, 4, 128] and [8, 128]}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<2x4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_dims(%a: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{contracting dimensions must be 0 or 1, got (2, 1)}}
  %0 = octet_tq.scaled_matmul %a, %b contract(2, 1) promotion(128)
      : (!octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_k(%a: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x256xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{contraction sizes differ: lhs dimension 1 is 128, rhs dimension 1 is 256}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x256xf8E4M3FN, block_128x128>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_lhs_groups(%a: !octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<128x64xf8E4M3FN, tile_128x1>) {
  // expected-error @+1 {{lhs is tile_1x128 (groups along dimension 1) but contracts dimension 0; regroup it with octet_tq.requantize_transposed}}
  %0 = octet_tq.scaled_matmul %a, %b contract(0, 0) promotion(128)
      : (!octet_tq.qtensor<128x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<128x64xf8E4M3FN, tile_128x1>) -> tensor<256x64xf32>
  return
}

// -----

func.func @mm_rhs_groups(%a: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x128xf8E4M3FN, tile_128x1>) {
  // expected-error @+1 {{rhs is tile_128x1 (groups along dimension 0) but contracts dimension 1}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x128xf8E4M3FN, tile_128x1>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_promotion_48(%a: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{promotion interval 48 is not a non-negative multiple of 32 (the K of one FP8 wgmma)}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(48)
      : (!octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_k_not_multiple(%a: !octet_tq.qtensor<4x200xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x200xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{contraction dimension K = 200 is not a multiple of the 128-element scaling group}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<4x200xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x200xf8E4M3FN, block_128x128>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_promotion_256(%a: !octet_tq.qtensor<4x512xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x512xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{promotion interval 256 must divide the 128-element scaling group (32, 64 or 128): scales change at every group boundary}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(256)
      : (!octet_tq.qtensor<4x512xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x512xf8E4M3FN, block_128x128>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_promotion_exceeds(%a: !octet_tq.qtensor<4x64xf8E4M3FN, per_tensor>, %b: !octet_tq.qtensor<8x64xf8E4M3FN, per_tensor>) {
  // expected-error @+1 {{promotion interval 128 exceeds the contraction dimension K = 64}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<4x64xf8E4M3FN, per_tensor>, !octet_tq.qtensor<8x64xf8E4M3FN, per_tensor>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_tile_k(%a: !octet_tq.qtensor<4x512xf8E4M3FN, per_tensor>, %b: !octet_tq.qtensor<8x512xf8E4M3FN, per_tensor>) {
  // expected-error @+1 {{tile K = 96 and promotion interval 128 must divide one another}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128) tile(<128x128x96, stages = 4>)
      : (!octet_tq.qtensor<4x512xf8E4M3FN, per_tensor>, !octet_tq.qtensor<8x512xf8E4M3FN, per_tensor>) -> tensor<4x8xf32>
  return
}

// -----

func.func @mm_result(%a: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{result shape [8, 4], expected [4, 8]}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) -> tensor<8x4xf32>
  return
}

// -----

func.func @mm_result_type(%a: !octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, %b: !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) {
  // expected-error @+1 {{result #0 must be ranked tensor of 32-bit float or bfloat16 type values}}
  %0 = octet_tq.scaled_matmul %a, %b contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<4x128xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x128xf8E4M3FN, block_128x128>) -> tensor<4x8xf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// constant / #octet_tq.qconst
//===----------------------------------------------------------------------===//

func.func @qconst_scales() {
  // expected-error @+1 {{scales type 'tensor<2x1xf32>' does not match the granularity's 'tensor<1x1xf32>'}}
  %q = octet_tq.constant <tile_1x128, payload = dense<[[1.0, 2.0]]> : tensor<1x2xf8E4M3FN>, scales = dense<[[1.0], [2.0]]> : tensor<2x1xf32>> : !octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @qconst_payload() {
  // expected-error @+1 {{quantized element type must be f8E4M3FN or f8E5M2, got 'f16'}}
  %q = octet_tq.constant <tile_1x128, payload = dense<[[1.0, 2.0]]> : tensor<1x2xf16>, scales = dense<[[1.0]]> : tensor<1x1xf32>> : !octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @constant_type() {
  // expected-error @+1 {{result type '!octet_tq.qtensor<1x2xf8E5M2, tile_1x128>' differs from the constant's type '!octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>'}}
  %q = octet_tq.constant <tile_1x128, payload = dense<[[1.0, 2.0]]> : tensor<1x2xf8E4M3FN>, scales = dense<[[1.0]]> : tensor<1x1xf32>> : !octet_tq.qtensor<1x2xf8E5M2, tile_1x128>
  return
}

//===----------------------------------------------------------------------===//
// grouped_scaled_matmul
//===----------------------------------------------------------------------===//

// -----

func.func @grouped_lhs(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{lhs must be a rank-2 tile_1x128 tensor [M, K], got [512, 256] tile_128x1}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_rhs(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<192x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{rhs must be a rank-3 block_128x128 tensor [experts, N, K], got [192, 256] block_128x128}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_k(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x384xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{contraction sizes differ: lhs has K = 256, rhs has K = 384}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x384xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_k_group(%x: !octet_tq.qtensor<512x200xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x200xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{contraction dimension K = 200 is not a multiple of the 128-element scaling group}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x200xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x200xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_index(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, %e: tensor<256xi32>) {
  // expected-error @+1 {{group_index must be tensor<512xi32>, one expert per row of lhs}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<256xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_promotion(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{promotion interval 96 must be 32, 64 or 128: a multiple of one FP8 wgmma that divides the scaling group}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(96) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_result(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{result shape [512, 256], expected [512, 192]}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xbf16>
  return
}

// -----

func.func @grouped_rhs_contract(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{rhs_contract must be 2 (Fprop, contracting K of [experts, N, K]) or 1 (Dgrad, contracting N), got 0}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e rhs_contract(0) promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

// -----

func.func @grouped_dgrad_n(%dy: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x384x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{contraction sizes differ: lhs has N = 256, rhs has N = 384}}
  %dx = octet_tq.grouped_scaled_matmul %dy, %w, %e rhs_contract(1) promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x384x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xbf16>
  return
}

// -----

func.func @grouped_dgrad_result(%dy: !octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x384x256xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{result shape [512, 384], expected [512, 256]}}
  %dx = octet_tq.grouped_scaled_matmul %dy, %w, %e rhs_contract(1) promotion(128) : (!octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x384x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x384xbf16>
  return
}

//===----------------------------------------------------------------------===//
// k_grouped_scaled_matmul
//===----------------------------------------------------------------------===//

// -----

func.func @k_grouped_lhs(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_1x128>, %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, %e: tensor<512xi32>) {
  // expected-error @+1 {{lhs must be a rank-2 tile_128x1 tensor (groups along the contracted rows), got [512, 192] tile_1x128}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_rhs(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<4x512x256xf8E4M3FN, tile_128x1>, %e: tensor<512xi32>) {
  // expected-error @+1 {{rhs must be a rank-2 tile_128x1 tensor (groups along the contracted rows), got [4, 512, 256] tile_128x1}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<4x512x256xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_rows(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<384x256xf8E4M3FN, tile_128x1>, %e: tensor<512xi32>) {
  // expected-error @+1 {{contraction sizes differ: lhs has 512 rows, rhs has 384}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<384x256xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_unaligned(%dy: !octet_tq.qtensor<500x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<500x256xf8E4M3FN, tile_128x1>, %e: tensor<500xi32>) {
  // expected-error @+1 {{contraction dimension M = 500 is not a multiple of the 128-element scaling group: lay the rows out with octet_tq.align_groups}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<500x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<500x256xf8E4M3FN, tile_128x1>, tensor<500xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_index(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, %e: tensor<4xi32>) {
  // expected-error @+1 {{group_index must be tensor<512xi32>, one expert per row of lhs}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, tensor<4xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_promotion(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, %e: tensor<512xi32>) {
  // expected-error @+1 {{promotion interval 256 must be 32, 64 or 128: a multiple of one FP8 wgmma that divides the scaling group}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(256) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_result(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, %e: tensor<512xi32>) {
  // expected-error @+1 {{result shape [192, 256], expected [experts, 192, 256]}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<192x256xf32>
  return
}

// -----

func.func @k_grouped_dynamic_lhs(%dy: !octet_tq.qtensor<?x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<500x256xf8E4M3FN, tile_128x1>, %e: tensor<500xi32>) {
  // expected-error @+1 {{contraction dimension M = 500 is not a multiple of the 128-element scaling group}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<?x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<500x256xf8E4M3FN, tile_128x1>, tensor<500xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @k_grouped_unranked_index(%dy: !octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, %e: tensor<*xi32>) {
  // expected-error @+1 {{invalid kind of type specified: expected builtin.tensor, but found 'tensor<*xi32>'}}
  %dw = octet_tq.k_grouped_scaled_matmul %dy, %x, %e promotion(128) : (!octet_tq.qtensor<512x192xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, tensor<*xi32>) -> tensor<4x192x256xf32>
  return
}

// -----

func.func @grouped_dynamic_lhs_k(%x: !octet_tq.qtensor<512x?xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x192x200xf8E4M3FN, block_128x128>, %e: tensor<512xi32>) {
  // expected-error @+1 {{contraction dimension K = 200 is not a multiple of the 128-element scaling group}}
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<512x?xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x200xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return
}

//===----------------------------------------------------------------------===//
// align_groups, unalign_groups
//===----------------------------------------------------------------------===//

// -----

func.func @align_rank(%x: tensor<4x256x64xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{operand and result must have rank 2, got [4, 256, 64] and [1920, 64]}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<4x256x64xf32>, tensor<8xi32>) -> (tensor<1920x64xf32>, tensor<1920xi32>)
  return
}

// -----

func.func @align_element(%x: tensor<1024x64xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{operand and result element types differ: 'f32' and 'bf16'}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x64xf32>, tensor<8xi32>) -> (tensor<1920x64xbf16>, tensor<1920xi32>)
  return
}

// -----

func.func @align_columns(%x: tensor<1024x64xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{column counts differ: 64 and 32}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x64xf32>, tensor<8xi32>) -> (tensor<1920x32xf32>, tensor<1920xi32>)
  return
}

// -----

func.func @align_sizes(%x: tensor<1024x64xf32>, %s: tensor<2x4xi32>) {
  // expected-error @+1 {{group_sizes must have rank 1, got [2, 4]}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x64xf32>, tensor<2x4xi32>) -> (tensor<1920x64xf32>, tensor<1920xi32>)
  return
}

// -----

func.func @align_multiple(%x: tensor<1024x64xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{the aligned side has 2000 rows, not a multiple of 128}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x64xf32>, tensor<8xi32>) -> (tensor<2000x64xf32>, tensor<2000xi32>)
  return
}

// -----

func.func @align_too_few(%x: tensor<1024x64xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{the aligned side has 1792 rows; 1024 rows of 8 experts may need 1920}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x64xf32>, tensor<8xi32>) -> (tensor<1792x64xf32>, tensor<1792xi32>)
  return
}

// -----

func.func @align_index(%x: tensor<1024x64xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{group_index must be tensor<1920xi32>, one expert per row of the result}}
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x64xf32>, tensor<8xi32>) -> (tensor<1920x64xf32>, tensor<1024xi32>)
  return
}

// -----

func.func @unalign_too_few(%y: tensor<1792x64xf32>, %s: tensor<8xi64>) {
  // expected-error @+1 {{the aligned side has 1792 rows; 1024 rows of 8 experts may need 1920}}
  %r = octet_tq.unalign_groups %y, %s : (tensor<1792x64xf32>, tensor<8xi64>) -> tensor<1024x64xf32>
  return
}

// -----

func.func @unalign_columns(%y: tensor<1920x64xf32>, %s: tensor<8xi64>) {
  // expected-error @+1 {{column counts differ: 32 and 64}}
  %r = octet_tq.unalign_groups %y, %s : (tensor<1920x64xf32>, tensor<8xi64>) -> tensor<1024x32xf32>
  return
}

//===----------------------------------------------------------------------===//
// rmsnorm_quantize, swiglu_quantize
//===----------------------------------------------------------------------===//

// -----

func.func @norm_gamma(%x: tensor<64x256xf32>, %g: tensor<128xf32>) {
  // expected-error @+1 {{gamma must be a vector of the last dimension of x (256), got [128]}}
  %q = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-6) : (tensor<64x256xf32>, tensor<128xf32>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @norm_epsilon(%x: tensor<64x256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %q = octet_tq.rmsnorm_quantize %x, %g epsilon(0.0) : (tensor<64x256xf32>, tensor<256xf32>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @norm_granularity(%x: tensor<64x256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{result must be tile_1x128, got block_128x128}}
  %q = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-6) : (tensor<64x256xf32>, tensor<256xf32>) -> !octet_tq.qtensor<64x256xf8E4M3FN, block_128x128>
  return
}

// -----

func.func @norm_shape(%x: tensor<64x256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{result shape [32, 256] differs from the input shape [64, 256]}}
  %q = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-6) : (tensor<64x256xf32>, tensor<256xf32>) -> !octet_tq.qtensor<32x256xf8E4M3FN, tile_1x128>
  return
}

// -----

func.func @swiglu_types(%a: tensor<64x256xf32>, %b: tensor<64x256xbf16>) {
  // expected-error @+1 {{gate and up must have one type, got 'tensor<64x256xf32>' and 'tensor<64x256xbf16>'}}
  %q = octet_tq.swiglu_quantize %a, %b : (tensor<64x256xf32>, tensor<64x256xbf16>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  return
}
