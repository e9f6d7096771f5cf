// RUN: octet-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// #octet.precision
//===----------------------------------------------------------------------===//

// expected-error @+1 {{unknown compute format (expected e4m3, e5m2, bf16 or f32) 'fp8'}}
func.func @bad_format() attributes {p = #octet.precision<fp8>} { return }

// -----

// expected-error @+1 {{unknown scaling granularity (expected none, tile_1x128, block_128x128 or per_tensor) 'tile_1x64'}}
func.func @bad_granularity() attributes {p = #octet.precision<e4m3, lhs = tile_1x64>} { return }

// -----

// expected-error @+1 {{unknown scale rounding (expected fp32 or pow2) 'e8m0'}}
func.func @bad_rounding() attributes {p = #octet.precision<e4m3, scale = e8m0>} { return }

// -----

// expected-error @+1 {{precision field 'lhs' is given twice}}
func.func @twice() attributes {p = #octet.precision<e4m3, lhs = tile_1x128, lhs = per_tensor>} { return }

// -----

// expected-error @+1 {{unknown precision field 'accumulate'; expected one of lhs, rhs, scale, promotion, out}}
func.func @unknown_field() attributes {p = #octet.precision<e4m3, accumulate = 128>} { return }

// -----

// expected-error @+1 {{output type must be f32 or bf16, got 'f16'}}
func.func @bad_out() attributes {p = #octet.precision<f32, out = f16>} { return }

// -----

// expected-error @+1 {{promotion interval must be non-negative, got -32}}
func.func @negative_promotion() attributes {p = #octet.precision<e4m3, lhs = per_tensor, rhs = per_tensor, promotion = -32>} { return }

// -----

// expected-error @+1 {{format 'bf16' takes no scaling granularity (only e4m3 and e5m2 are scaled)}}
func.func @bf16_scaled() attributes {p = #octet.precision<bf16, lhs = tile_1x128>} { return }

// -----

// expected-error @+1 {{format 'f32' takes no scale rounding}}
func.func @f32_pow2() attributes {p = #octet.precision<f32, scale = pow2>} { return }

// -----

// expected-error @+1 {{format 'bf16' accumulates in full precision; promotion interval must be 0}}
func.func @bf16_promoted() attributes {p = #octet.precision<bf16, promotion = 128>} { return }

// -----

// expected-error @+1 {{format 'e4m3' needs a scaling granularity for both operands}}
func.func @fp8_unscaled() attributes {p = #octet.precision<e4m3, lhs = tile_1x128>} { return }

// -----

// expected-error @+1 {{promotion interval 48 is not a multiple of 32 (the K of one FP8 wgmma)}}
func.func @promotion_48() attributes {p = #octet.precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 48>} { return }

// -----

// expected-error @+1 {{promotion interval 256 must divide the 128-element scaling group (32, 64 or 128): scales change at every group boundary}}
func.func @promotion_256() attributes {p = #octet.precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 256>} { return }

// -----

// expected-error @+1 {{promotion interval 0 must divide the 128-element scaling group}}
func.func @promotion_0_grouped() attributes {p = #octet.precision<e5m2, lhs = per_tensor, rhs = block_128x128>} { return }

// -----

//===----------------------------------------------------------------------===//
// octet.stage / octet.num_stages
//===----------------------------------------------------------------------===//

// expected-error @+1 {{'octet.num_stages' must be a positive integer, got 0 : i64}}
func.func @zero_stages() attributes {octet.num_stages = 0 : i64} { return }

// -----

func.func @negative_stage(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'octet.stage' must be a non-negative integer, got "one"}}
  %0 = octet.add %a, %a {octet.stage = "one"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @stage_out_of_range(%a: tensor<4xf32>) -> tensor<4xf32> attributes {octet.num_stages = 2 : i64} {
  // expected-error @+1 {{pipeline stage 2 is out of range: the enclosing 'func.func' has 2 stages}}
  %0 = octet.add %a, %a {octet.stage = 2 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @+1 {{unknown attribute 'octet.stages': the octet dialect defines 'octet.stage', 'octet.num_stages', and on per-stage functions 'octet.phase', 'octet.inputs', 'octet.stage_functions' and 'octet.stage_returns'}}
func.func @misspelled() attributes {octet.stages = 2 : i64} { return }

// -----

//===----------------------------------------------------------------------===//
// Precision on ops
//===----------------------------------------------------------------------===//

func.func @fp8_norm(%x: tensor<4x128xbf16>, %g: tensor<128xf32>) -> tensor<4x128xbf16> {
  // expected-error @+1 {{precision format 'e4m3' is only valid on GEMM ops (linear, batch_matmul, grouped_linear); this op computes in bf16 or f32}}
  %0 = octet.rmsnorm %x, %g epsilon(1.0e-6) precision<e4m3, lhs = tile_1x128, rhs = tile_1x128, promotion = 128, out = bf16>
      : (tensor<4x128xbf16>, tensor<128xf32>) -> tensor<4x128xbf16>
  return %0 : tensor<4x128xbf16>
}

// -----

func.func @k_not_multiple(%x: tensor<4x100xbf16>, %w: tensor<256x100xbf16>) -> tensor<4x256xbf16> {
  // expected-error @+1 {{contraction dimension K = 100 is not a multiple of the 128-element FP8 scaling group}}
  %0 = octet.linear %x, %w precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = bf16>
      : (tensor<4x100xbf16>, tensor<256x100xbf16>) -> tensor<4x256xbf16>
  return %0 : tensor<4x256xbf16>
}

// -----

func.func @promotion_exceeds_k(%x: tensor<4x64xbf16>, %w: tensor<256x64xbf16>) -> tensor<4x256xbf16> {
  // expected-error @+1 {{promotion interval 128 exceeds the contraction dimension K = 64}}
  %0 = octet.linear %x, %w precision<e4m3, lhs = per_tensor, rhs = per_tensor, promotion = 128, out = bf16>
      : (tensor<4x64xbf16>, tensor<256x64xbf16>) -> tensor<4x256xbf16>
  return %0 : tensor<4x256xbf16>
}

// -----

func.func @out_mismatch(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{result element type 'f32' differs from the precision's output type 'bf16'}}
  %0 = octet.add %a, %a precision<bf16, out = bf16> : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

//===----------------------------------------------------------------------===//
// octet.param
//===----------------------------------------------------------------------===//

func.func @empty_name() {
  // expected-error @+1 {{parameter name must not be empty}}
  %0 = octet.param "" : tensor<4xf32>
  return
}

// -----

func.func @duplicate_param() {
  %0 = octet.param "w" : tensor<4xf32>
  // expected-error @+1 {{parameter 'w' is already declared in this block}}
  %1 = octet.param "w" : tensor<8xf32>
  return
}

// -----

func.func @param_type() {
  // expected-error @+1 {{result #0 must be ranked tensor of 32-bit float or bfloat16 type values}}
  %0 = octet.param "w" : tensor<4xf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.embedding
//===----------------------------------------------------------------------===//

func.func @embedding_table_rank(%t: tensor<16xf32>, %ids: tensor<4xi32>) {
  // expected-error @+1 {{table must have rank 2, got [16]}}
  %0 = octet.embedding %t, %ids : (tensor<16xf32>, tensor<4xi32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @embedding_result(%t: tensor<16x8xf32>, %ids: tensor<4xi32>) {
  // expected-error @+1 {{result has shape [4, 16], expected [4, 8]}}
  %0 = octet.embedding %t, %ids : (tensor<16x8xf32>, tensor<4xi32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @embedding_ids(%t: tensor<16x8xf32>, %ids: tensor<4xf32>) {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = octet.embedding %t, %ids : (tensor<16x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.linear
//===----------------------------------------------------------------------===//

func.func @linear_scalar(%x: tensor<f32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0 = octet.linear %x, %w : (tensor<f32>, tensor<4x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight must have rank 2, got [4]}}
  %0 = octet.linear %x, %w : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @linear_k(%x: tensor<2x256xf32>, %w: tensor<64x128xf32>) {
  // expected-error @+1 {{weight is [N, K] = [64, 128] but the input's last dimension is K = 256}}
  %0 = octet.linear %x, %w : (tensor<2x256xf32>, tensor<64x128xf32>) -> tensor<2x64xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<2x128xf32>, %w: tensor<64x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{bias has shape [128], expected [64]}}
  %0 = octet.linear %x, %w, %b : (tensor<2x128xf32>, tensor<64x128xf32>, tensor<128xf32>) -> tensor<2x64xf32>
  return
}

// -----

func.func @linear_result(%x: tensor<2x3x128xf32>, %w: tensor<64x128xf32>) {
  // expected-error @+1 {{result has shape [2, 64], expected [2, 3, 64]}}
  %0 = octet.linear %x, %w : (tensor<2x3x128xf32>, tensor<64x128xf32>) -> tensor<2x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.batch_matmul
//===----------------------------------------------------------------------===//

func.func @bmm_rank(%a: tensor<4x8xf32>, %b: tensor<2x8x4xf32>) {
  // expected-error @+1 {{operands must have the same rank >= 2, got [4, 8] and [2, 8, 4]}}
  %0 = octet.batch_matmul %a, %b : (tensor<4x8xf32>, tensor<2x8x4xf32>) -> tensor<4x4xf32>
  return
}

// -----

func.func @bmm_batch(%a: tensor<3x4x8xf32>, %b: tensor<2x8x4xf32>) {
  // expected-error @+1 {{batch dimensions differ: [3, 4, 8] vs [2, 8, 4]}}
  %0 = octet.batch_matmul %a, %b : (tensor<3x4x8xf32>, tensor<2x8x4xf32>) -> tensor<3x4x4xf32>
  return
}

// -----

func.func @bmm_k(%a: tensor<2x4x8xf32>, %b: tensor<2x4x8xf32>) {
  // expected-error @+1 {{contraction sizes differ: lhs K = 8, rhs K = 4 (rhs is [..., K, N])}}
  %0 = octet.batch_matmul %a, %b : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return
}

// -----

func.func @bmm_result(%a: tensor<2x4x8xf32>, %b: tensor<2x16x8xf32>) {
  // expected-error @+1 {{result has shape [2, 4, 8], expected [2, 4, 16]}}
  %0 = octet.batch_matmul %a, %b transpose_rhs : (tensor<2x4x8xf32>, tensor<2x16x8xf32>) -> tensor<2x4x8xf32>
  return
}

// -----

func.func @bmm_fp8_k(%a: tensor<2x4x64xbf16>, %b: tensor<2x64x8xbf16>) {
  // expected-error @+1 {{contraction dimension K = 64 is not a multiple of the 128-element FP8 scaling group}}
  %0 = octet.batch_matmul %a, %b precision<e4m3, lhs = tile_1x128, rhs = tile_1x128, promotion = 32, out = bf16>
      : (tensor<2x4x64xbf16>, tensor<2x64x8xbf16>) -> tensor<2x4x8xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.grouped_linear
//===----------------------------------------------------------------------===//

func.func @grouped_rank(%x: tensor<16x128xf32>, %w: tensor<32x128xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{weight must have rank 3, got [32, 128]}}
  %0 = octet.grouped_linear %x, %w, %s : (tensor<16x128xf32>, tensor<32x128xf32>, tensor<4xi32>) -> tensor<16x32xf32>
  return
}

// -----

func.func @grouped_k(%x: tensor<16x128xf32>, %w: tensor<4x32x64xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{weight is [E, N, K] = [4, 32, 64] but the input's K is 128}}
  %0 = octet.grouped_linear %x, %w, %s : (tensor<16x128xf32>, tensor<4x32x64xf32>, tensor<4xi32>) -> tensor<16x32xf32>
  return
}

// -----

func.func @grouped_sizes(%x: tensor<16x128xf32>, %w: tensor<4x32x128xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{group_sizes has shape [8], expected [4]}}
  %0 = octet.grouped_linear %x, %w, %s : (tensor<16x128xf32>, tensor<4x32x128xf32>, tensor<8xi32>) -> tensor<16x32xf32>
  return
}

// -----

func.func @grouped_result(%x: tensor<16x128xf32>, %w: tensor<4x32x128xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{result has shape [16, 128], expected [16, 32]}}
  %0 = octet.grouped_linear %x, %w, %s : (tensor<16x128xf32>, tensor<4x32x128xf32>, tensor<4xi32>) -> tensor<16x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.rmsnorm
//===----------------------------------------------------------------------===//

func.func @rmsnorm_scalar(%x: tensor<f32>, %g: tensor<1xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0 = octet.rmsnorm %x, %g epsilon(1.0e-6) : (tensor<f32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

func.func @rmsnorm_gamma(%x: tensor<4x64xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{gamma has shape [32], expected [64]}}
  %0 = octet.rmsnorm %x, %g epsilon(1.0e-6) : (tensor<4x64xf32>, tensor<32xf32>) -> tensor<4x64xf32>
  return
}

// -----

func.func @rmsnorm_eps(%x: tensor<4x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be positive, got 0}}
  %0 = octet.rmsnorm %x, %g epsilon(0.0) : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
  return
}

// -----

func.func @rmsnorm_result(%x: tensor<4x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{result has shape [64, 4], expected [4, 64]}}
  %0 = octet.rmsnorm %x, %g epsilon(1.0e-6) : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<64x4xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.rotary
//===----------------------------------------------------------------------===//

func.func @rotary_rank(%x: tensor<4x64xf32>) {
  // expected-error @+1 {{input must have rank 4, got [4, 64]}}
  %0 = octet.rotary %x theta(10000.0) : (tensor<4x64xf32>) -> tensor<4x64xf32>
  return
}

// -----

func.func @rotary_odd(%x: tensor<1x4x2x63xf32>) {
  // expected-error @+1 {{head dimension 63 must be even (rotary rotates pairs)}}
  %0 = octet.rotary %x theta(10000.0) : (tensor<1x4x2x63xf32>) -> tensor<1x4x2x63xf32>
  return
}

// -----

func.func @rotary_theta(%x: tensor<1x4x2x64xf32>) {
  // expected-error @+1 {{theta must be positive, got -1}}
  %0 = octet.rotary %x theta(-1.0) : (tensor<1x4x2x64xf32>) -> tensor<1x4x2x64xf32>
  return
}

// -----

func.func @rotary_result(%x: tensor<1x4x2x64xf32>) {
  // expected-error @+1 {{result has shape [1, 4, 2, 32], expected [1, 4, 2, 64]}}
  %0 = octet.rotary %x theta(10000.0) : (tensor<1x4x2x64xf32>) -> tensor<1x4x2x32xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.causal_attention
//===----------------------------------------------------------------------===//

func.func @attn_rank(%q: tensor<4x2x64xf32>, %k: tensor<1x4x2x64xf32>) {
  // expected-error @+1 {{q must have rank 4, got [4, 2, 64]}}
  %0 = octet.causal_attention %q, %k, %k : (tensor<4x2x64xf32>, tensor<1x4x2x64xf32>, tensor<1x4x2x64xf32>) -> tensor<4x2x64xf32>
  return
}

// -----

func.func @attn_k(%q: tensor<1x4x2x64xf32>, %k: tensor<1x8x2x64xf32>, %v: tensor<1x4x2x64xf32>) {
  // expected-error @+1 {{k has shape [1, 8, 2, 64], expected [1, 4, 2, 64]}}
  %0 = octet.causal_attention %q, %k, %v : (tensor<1x4x2x64xf32>, tensor<1x8x2x64xf32>, tensor<1x4x2x64xf32>) -> tensor<1x4x2x64xf32>
  return
}

// -----

func.func @attn_v(%q: tensor<1x4x2x64xf32>, %k: tensor<1x4x2x64xf32>, %v: tensor<1x4x1x64xf32>) {
  // expected-error @+1 {{v has shape [1, 4, 1, 64], expected [1, 4, 2, 64]}}
  %0 = octet.causal_attention %q, %k, %v : (tensor<1x4x2x64xf32>, tensor<1x4x2x64xf32>, tensor<1x4x1x64xf32>) -> tensor<1x4x2x64xf32>
  return
}

// -----

func.func @attn_heads(%q: tensor<1x4x6x64xf32>, %k: tensor<1x4x4x64xf32>) {
  // expected-error @+1 {{query heads (6) must be a multiple of key/value heads (4)}}
  %0 = octet.causal_attention %q, %k, %k : (tensor<1x4x6x64xf32>, tensor<1x4x4x64xf32>, tensor<1x4x4x64xf32>) -> tensor<1x4x6x64xf32>
  return
}

// -----

func.func @attn_scale(%q: tensor<1x4x2x64xf32>) {
  // expected-error @+1 {{scale must be positive, got 0}}
  %0 = octet.causal_attention %q, %q, %q scale(0.0) : (tensor<1x4x2x64xf32>, tensor<1x4x2x64xf32>, tensor<1x4x2x64xf32>) -> tensor<1x4x2x64xf32>
  return
}

// -----

func.func @attn_result(%q: tensor<1x4x2x192xf32>, %v: tensor<1x4x2x128xf32>) {
  // expected-error @+1 {{result has shape [1, 4, 2, 192], expected [1, 4, 2, 128]}}
  %0 = octet.causal_attention %q, %q, %v : (tensor<1x4x2x192xf32>, tensor<1x4x2x192xf32>, tensor<1x4x2x128xf32>) -> tensor<1x4x2x192xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.swiglu / octet.add
//===----------------------------------------------------------------------===//

func.func @swiglu_up(%g: tensor<4x8xf32>, %u: tensor<4x16xf32>) {
  // expected-error @+1 {{up has shape [4, 16], expected [4, 8]}}
  %0 = octet.swiglu %g, %u : (tensor<4x8xf32>, tensor<4x16xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @swiglu_result(%g: tensor<4x8xf32>) {
  // expected-error @+1 {{result has shape [8, 4], expected [4, 8]}}
  %0 = octet.swiglu %g, %g : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @add_rhs(%a: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{rhs has shape [8], expected [4, 8]}}
  %0 = octet.add %a, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @add_result(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{result has shape [4], expected [4, 8]}}
  %0 = octet.add %a, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.moe_gate
//===----------------------------------------------------------------------===//

func.func @gate_rank(%x: tensor<2x8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{input must have rank 2, got [2, 8, 64]}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(1.0) softmax
      : (tensor<2x8x64xf32>, tensor<16x64xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>)
  return
}

// -----

func.func @gate_d(%x: tensor<8x64xf32>, %w: tensor<16x32xf32>) {
  // expected-error @+1 {{router weight is [E, D] = [16, 32] but the input's D is 64}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(1.0) softmax
      : (tensor<8x64xf32>, tensor<16x32xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @gate_bias(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{bias has shape [8], expected [16]}}
  %0:2 = octet.moe_gate %x, %w, %b top_k(2) groups(1, 1) scaling(1.0) sigmoid
      : (tensor<8x64xf32>, tensor<16x64xf32>, tensor<8xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @gate_topk(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{top_k must be positive, got 0}}
  %0:2 = octet.moe_gate %x, %w top_k(0) groups(1, 1) scaling(1.0) softmax
      : (tensor<8x64xf32>, tensor<16x64xf32>) -> (tensor<8x0xf32>, tensor<8x0xi32>)
  return
}

// -----

func.func @gate_groups(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{groups(4, 8) must satisfy 0 < topk_group <= n_group}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(4, 8) scaling(1.0) softmax
      : (tensor<8x64xf32>, tensor<16x64xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @gate_scaling(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{routed_scaling_factor must be positive, got -2.5}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(-2.5) softmax
      : (tensor<8x64xf32>, tensor<16x64xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @gate_divisible(%x: tensor<8x64xf32>, %w: tensor<10x64xf32>) {
  // expected-error @+1 {{10 experts do not divide into 4 groups}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(4, 2) scaling(1.0) sigmoid
      : (tensor<8x64xf32>, tensor<10x64xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @gate_eligible(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{top_k = 6 exceeds the 4 experts of the 1 eligible groups}}
  %0:2 = octet.moe_gate %x, %w top_k(6) groups(4, 1) scaling(1.0) sigmoid
      : (tensor<8x64xf32>, tensor<16x64xf32>) -> (tensor<8x6xf32>, tensor<8x6xi32>)
  return
}

// -----

func.func @gate_weights(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{weights has shape [8, 4], expected [8, 2]}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(1.0) softmax
      : (tensor<8x64xf32>, tensor<16x64xf32>) -> (tensor<8x4xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @gate_indices(%x: tensor<8x64xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{indices has shape [4, 2], expected [8, 2]}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(1.0) softmax
      : (tensor<8x64xf32>, tensor<16x64xf32>) -> (tensor<8x2xf32>, tensor<4x2xi32>)
  return
}

// -----

func.func @gate_fp8(%x: tensor<8x128xf32>, %w: tensor<16x128xf32>) {
  // expected-error @+1 {{precision format 'e4m3' is only valid on GEMM ops}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(1.0) softmax
      precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128>
      : (tensor<8x128xf32>, tensor<16x128xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.moe_dispatch
//===----------------------------------------------------------------------===//

func.func @dispatch_rank(%x: tensor<8x64xf32>, %i: tensor<8xi32>) {
  // expected-error @+1 {{indices must have rank 2, got [8]}}
  %0:2 = octet.moe_dispatch %x, %i experts(4) : (tensor<8x64xf32>, tensor<8xi32>) -> (tensor<8x64xf32>, tensor<4xi32>)
  return
}

// -----

func.func @dispatch_experts(%x: tensor<8x64xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{number of experts must be positive, got 0}}
  %0:2 = octet.moe_dispatch %x, %i experts(0) : (tensor<8x64xf32>, tensor<8x2xi32>) -> (tensor<16x64xf32>, tensor<0xi32>)
  return
}

// -----

func.func @dispatch_tokens(%x: tensor<8x64xf32>, %i: tensor<4x2xi32>) {
  // expected-error @+1 {{indices cover 4 tokens, the input has 8}}
  %0:2 = octet.moe_dispatch %x, %i experts(4) : (tensor<8x64xf32>, tensor<4x2xi32>) -> (tensor<16x64xf32>, tensor<4xi32>)
  return
}

// -----

func.func @dispatch_rows(%x: tensor<8x64xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{rows has shape [8, 64], expected [16, 64]}}
  %0:2 = octet.moe_dispatch %x, %i experts(4) : (tensor<8x64xf32>, tensor<8x2xi32>) -> (tensor<8x64xf32>, tensor<4xi32>)
  return
}

// -----

func.func @dispatch_sizes(%x: tensor<8x64xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{group_sizes has shape [8], expected [4]}}
  %0:2 = octet.moe_dispatch %x, %i experts(4) : (tensor<8x64xf32>, tensor<8x2xi32>) -> (tensor<16x64xf32>, tensor<8xi32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.moe_combine
//===----------------------------------------------------------------------===//

func.func @combine_rank(%r: tensor<16xf32>, %w: tensor<8x2xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{rows must have rank 2, got [16]}}
  %0 = octet.moe_combine %r, %w, %i : (tensor<16xf32>, tensor<8x2xf32>, tensor<8x2xi32>) -> tensor<8x1xf32>
  return
}

// -----

func.func @combine_weights(%r: tensor<16x64xf32>, %w: tensor<8x4xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{weights has shape [8, 4], expected [8, 2]}}
  %0 = octet.moe_combine %r, %w, %i : (tensor<16x64xf32>, tensor<8x4xf32>, tensor<8x2xi32>) -> tensor<8x64xf32>
  return
}

// -----

func.func @combine_rows(%r: tensor<12x64xf32>, %w: tensor<8x2xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{rows has 12 rows, expected tokens x top_k = 16}}
  %0 = octet.moe_combine %r, %w, %i : (tensor<12x64xf32>, tensor<8x2xf32>, tensor<8x2xi32>) -> tensor<8x64xf32>
  return
}

// -----

func.func @combine_result(%r: tensor<16x64xf32>, %w: tensor<8x2xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{result has shape [16, 64], expected [8, 64]}}
  %0 = octet.moe_combine %r, %w, %i : (tensor<16x64xf32>, tensor<8x2xf32>, tensor<8x2xi32>) -> tensor<16x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// octet.cross_entropy
//===----------------------------------------------------------------------===//

func.func @ce_scalar(%l: tensor<f32>, %y: tensor<i32>) {
  // expected-error @+1 {{logits must have rank >= 1}}
  %0 = octet.cross_entropy %l, %y : (tensor<f32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

func.func @ce_labels(%l: tensor<4x8x32xf32>, %y: tensor<4x32xi32>) {
  // expected-error @+1 {{labels has shape [4, 32], expected [4, 8]}}
  %0 = octet.cross_entropy %l, %y : (tensor<4x8x32xf32>, tensor<4x32xi32>) -> tensor<f32>
  return
}

// -----

func.func @ce_result(%l: tensor<4x32xf32>, %y: tensor<4xi32>) {
  // expected-error @+1 {{result #0 must be 0D tensor of 32-bit float values}}
  %0 = octet.cross_entropy %l, %y : (tensor<4x32xf32>, tensor<4xi32>) -> tensor<4xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Remaining rank checks, one per call site
//===----------------------------------------------------------------------===//

func.func @grouped_input_rank(%x: tensor<2x16x128xf32>, %w: tensor<4x32x128xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{input must have rank 2, got [2, 16, 128]}}
  %0 = octet.grouped_linear %x, %w, %s : (tensor<2x16x128xf32>, tensor<4x32x128xf32>, tensor<4xi32>) -> tensor<16x32xf32>
  return
}

// -----

func.func @gate_weight_rank(%x: tensor<8x64xf32>, %w: tensor<16x64x1xf32>) {
  // expected-error @+1 {{router weight must have rank 2, got [16, 64, 1]}}
  %0:2 = octet.moe_gate %x, %w top_k(2) groups(1, 1) scaling(1.0) softmax
      : (tensor<8x64xf32>, tensor<16x64x1xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>)
  return
}

// -----

func.func @dispatch_input_rank(%x: tensor<8xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{input must have rank 2, got [8]}}
  %0:2 = octet.moe_dispatch %x, %i experts(4) : (tensor<8xf32>, tensor<8x2xi32>) -> (tensor<16x1xf32>, tensor<4xi32>)
  return
}

// -----

func.func @combine_indices_rank(%r: tensor<16x64xf32>, %w: tensor<8x2xf32>, %i: tensor<16xi32>) {
  // expected-error @+1 {{indices must have rank 2, got [16]}}
  %0 = octet.moe_combine %r, %w, %i : (tensor<16x64xf32>, tensor<8x2xf32>, tensor<16xi32>) -> tensor<8x64xf32>
  return
}

// -----

func.func @attn_k_rank(%q: tensor<1x4x2x64xf32>, %k: tensor<4x2x64xf32>) {
  // expected-error @+1 {{k must have rank 4, got [4, 2, 64]}}
  %0 = octet.causal_attention %q, %k, %q : (tensor<1x4x2x64xf32>, tensor<4x2x64xf32>, tensor<1x4x2x64xf32>) -> tensor<1x4x2x64xf32>
  return
}

// -----

func.func @attn_v_rank(%q: tensor<1x4x2x64xf32>, %v: tensor<4x2x64xf32>) {
  // expected-error @+1 {{v must have rank 4, got [4, 2, 64]}}
  %0 = octet.causal_attention %q, %q, %v : (tensor<1x4x2x64xf32>, tensor<1x4x2x64xf32>, tensor<4x2x64xf32>) -> tensor<1x4x2x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Gradient ops
//===----------------------------------------------------------------------===//

func.func @embedding_grad_rank(%d: tensor<8x16xf32>, %ids: tensor<8xi32>) {
  // expected-error @+1 {{table gradient must have rank 2, got [16]}}
  %0 = octet.embedding_grad %d, %ids : (tensor<8x16xf32>, tensor<8xi32>) -> tensor<16xf32>
  return
}

// -----

func.func @embedding_grad_dout(%d: tensor<8x16xf32>, %ids: tensor<4xi32>) {
  // expected-error @+1 {{output gradient has shape [8, 16], expected [4, 16]}}
  %0 = octet.embedding_grad %d, %ids : (tensor<8x16xf32>, tensor<4xi32>) -> tensor<100x16xf32>
  return
}

// -----

func.func @dgrad_scalar(%dy: tensor<f32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{output gradient must have rank >= 1}}
  %0 = octet.linear_dgrad %dy, %w : (tensor<f32>, tensor<4x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @dgrad_weight_rank(%dy: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight must have rank 2, got [4]}}
  %0 = octet.linear_dgrad %dy, %w : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @dgrad_n(%dy: tensor<2x8xf32>, %w: tensor<4x16xf32>) {
  // expected-error @+1 {{weight is [N, K] = [4, 16] but the output gradient's last dimension is 8}}
  %0 = octet.linear_dgrad %dy, %w : (tensor<2x8xf32>, tensor<4x16xf32>) -> tensor<2x16xf32>
  return
}

// -----

func.func @dgrad_result(%dy: tensor<2x4xf32>, %w: tensor<4x16xf32>) {
  // expected-error @+1 {{input gradient has shape [2, 4], expected [2, 16]}}
  %0 = octet.linear_dgrad %dy, %w : (tensor<2x4xf32>, tensor<4x16xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @wgrad_rank(%dy: tensor<2x4xf32>, %x: tensor<2x3x16xf32>) {
  // expected-error @+1 {{output gradient and input must have the same rank >= 1, got [2, 4] and [2, 3, 16]}}
  %0 = octet.linear_wgrad %dy, %x : (tensor<2x4xf32>, tensor<2x3x16xf32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @wgrad_tokens(%dy: tensor<2x4xf32>, %x: tensor<3x16xf32>) {
  // expected-error @+1 {{token dimensions differ: [2, 4] vs [3, 16]}}
  %0 = octet.linear_wgrad %dy, %x : (tensor<2x4xf32>, tensor<3x16xf32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @wgrad_result(%dy: tensor<2x4xf32>, %x: tensor<2x16xf32>) {
  // expected-error @+1 {{weight gradient has shape [16, 4], expected [4, 16]}}
  %0 = octet.linear_wgrad %dy, %x : (tensor<2x4xf32>, tensor<2x16xf32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @bias_grad_scalar(%dy: tensor<f32>) {
  // expected-error @+1 {{output gradient must have rank >= 1}}
  %0 = octet.bias_grad %dy : (tensor<f32>) -> tensor<1xf32>
  return
}

// -----

func.func @bias_grad_shape(%dy: tensor<2x4xf32>) {
  // expected-error @+1 {{bias gradient has shape [2], expected [4]}}
  %0 = octet.bias_grad %dy : (tensor<2x4xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @bmm_grad_type(%l: tensor<2x4x8xf32>, %r: tensor<2x8x4xf32>, %dy: tensor<2x4x4xf32>) {
  // expected-error @+1 {{lhs gradient has type 'tensor<2x4x8xbf16>', expected 'tensor<2x4x8xf32>'}}
  %0:2 = octet.batch_matmul_grad %l, %r, %dy : (tensor<2x4x8xf32>, tensor<2x8x4xf32>, tensor<2x4x4xf32>) -> (tensor<2x4x8xbf16>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @bmm_grad_rank(%l: tensor<4x8xf32>, %r: tensor<2x8x4xf32>, %dy: tensor<2x4x4xf32>) {
  // expected-error @+1 {{operands must have the same rank >= 2, got [4, 8] and [2, 8, 4]}}
  %0:2 = octet.batch_matmul_grad %l, %r, %dy : (tensor<4x8xf32>, tensor<2x8x4xf32>, tensor<2x4x4xf32>) -> (tensor<4x8xf32>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @bmm_grad_dy(%l: tensor<2x4x8xf32>, %r: tensor<2x8x4xf32>, %dy: tensor<2x4x8xf32>) {
  // expected-error @+1 {{output gradient has shape [2, 4, 8], expected [2, 4, 4]}}
  %0:2 = octet.batch_matmul_grad %l, %r, %dy : (tensor<2x4x8xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x8x4xf32>)
  return
}

// -----

func.func @gdgrad_rank(%dy: tensor<16xf32>, %w: tensor<4x8x8xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{output gradient must have rank 2, got [16]}}
  %0 = octet.grouped_linear_dgrad %dy, %w, %s : (tensor<16xf32>, tensor<4x8x8xf32>, tensor<4xi32>) -> tensor<16x8xf32>
  return
}

// -----

func.func @gdgrad_n(%dy: tensor<16x4xf32>, %w: tensor<4x8x8xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{weight is [E, N, K] = [4, 8, 8] but the output gradient's N is 4}}
  %0 = octet.grouped_linear_dgrad %dy, %w, %s : (tensor<16x4xf32>, tensor<4x8x8xf32>, tensor<4xi32>) -> tensor<16x8xf32>
  return
}

// -----

func.func @gdgrad_sizes(%dy: tensor<16x8xf32>, %w: tensor<4x8x8xf32>, %s: tensor<2xi32>) {
  // expected-error @+1 {{group_sizes has shape [2], expected [4]}}
  %0 = octet.grouped_linear_dgrad %dy, %w, %s : (tensor<16x8xf32>, tensor<4x8x8xf32>, tensor<2xi32>) -> tensor<16x8xf32>
  return
}

// -----

func.func @gwgrad_rows(%dy: tensor<16x8xf32>, %x: tensor<12x8xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{output gradient has 16 rows, the input 12}}
  %0 = octet.grouped_linear_wgrad %dy, %x, %s : (tensor<16x8xf32>, tensor<12x8xf32>, tensor<4xi32>) -> tensor<4x8x8xf32>
  return
}

// -----

func.func @gwgrad_input_rank(%dy: tensor<16x8xf32>, %x: tensor<16xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{input must have rank 2, got [16]}}
  %0 = octet.grouped_linear_wgrad %dy, %x, %s : (tensor<16x8xf32>, tensor<16xf32>, tensor<4xi32>) -> tensor<4x8x8xf32>
  return
}

// -----

func.func @gwgrad_result(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{weight gradient has shape [4, 4, 8], expected [4, 8, 4]}}
  %0 = octet.grouped_linear_wgrad %dy, %x, %s : (tensor<16x8xf32>, tensor<16x4xf32>, tensor<4xi32>) -> tensor<4x4x8xf32>
  return
}

// -----

func.func @rmsnorm_grad_type(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{gamma gradient has type 'tensor<4xf32>', expected 'tensor<8xf32>'}}
  %0:2 = octet.rmsnorm_grad %x, %g, %x epsilon(1.0e-6) : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @rmsnorm_grad_scalar(%x: tensor<f32>, %g: tensor<1xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0:2 = octet.rmsnorm_grad %x, %g, %x epsilon(1.0e-6) : (tensor<f32>, tensor<1xf32>, tensor<f32>) -> (tensor<f32>, tensor<1xf32>)
  return
}

// -----

func.func @rmsnorm_grad_dy(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %dy: tensor<8x4xf32>) {
  // expected-error @+1 {{output gradient has shape [8, 4], expected [4, 8]}}
  %0:2 = octet.rmsnorm_grad %x, %g, %dy epsilon(1.0e-6) : (tensor<4x8xf32>, tensor<8xf32>, tensor<8x4xf32>) -> (tensor<4x8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @rmsnorm_grad_eps(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be positive, got -1}}
  %0:2 = octet.rmsnorm_grad %x, %g, %x epsilon(-1.0) : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @rotary_grad_type(%dy: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{input gradient has type 'tensor<1x4x2x8xbf16>', expected 'tensor<1x4x2x8xf32>'}}
  %0 = octet.rotary_grad %dy theta(10000.0) : (tensor<1x4x2x8xf32>) -> tensor<1x4x2x8xbf16>
  return
}

// -----

func.func @rotary_grad_rank(%dy: tensor<4x8xf32>) {
  // expected-error @+1 {{output gradient must have rank 4, got [4, 8]}}
  %0 = octet.rotary_grad %dy theta(10000.0) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @rotary_grad_odd(%dy: tensor<1x4x2x7xf32>) {
  // expected-error @+1 {{head dimension 7 must be even (rotary rotates pairs)}}
  %0 = octet.rotary_grad %dy theta(10000.0) : (tensor<1x4x2x7xf32>) -> tensor<1x4x2x7xf32>
  return
}

// -----

func.func @rotary_grad_theta(%dy: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{theta must be positive, got 0}}
  %0 = octet.rotary_grad %dy theta(0.0) : (tensor<1x4x2x8xf32>) -> tensor<1x4x2x8xf32>
  return
}

// -----

func.func @attn_grad_type(%q: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{v gradient has type 'tensor<1x4x2x4xf32>', expected 'tensor<1x4x2x8xf32>'}}
  %0:3 = octet.causal_attention_grad %q, %q, %q, %q : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x4xf32>)
  return
}

// -----

func.func @attn_grad_rank(%q: tensor<4x2x8xf32>) {
  // expected-error @+1 {{q must have rank 4, got [4, 2, 8]}}
  %0:3 = octet.causal_attention_grad %q, %q, %q, %q : (tensor<4x2x8xf32>, tensor<4x2x8xf32>, tensor<4x2x8xf32>, tensor<4x2x8xf32>) -> (tensor<4x2x8xf32>, tensor<4x2x8xf32>, tensor<4x2x8xf32>)
  return
}

// -----

func.func @attn_grad_v_rank(%q: tensor<1x4x2x8xf32>, %v: tensor<4x2x8xf32>) {
  // expected-error @+1 {{v must have rank 4, got [4, 2, 8]}}
  %0:3 = octet.causal_attention_grad %q, %q, %v, %q : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<4x2x8xf32>, tensor<1x4x2x8xf32>) -> (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<4x2x8xf32>)
  return
}

// -----

func.func @attn_grad_scale(%q: tensor<1x4x2x8xf32>) {
  // expected-error @+1 {{scale must be positive, got -1}}
  %0:3 = octet.causal_attention_grad %q, %q, %q, %q scale(-1.0) : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>)
  return
}

// -----

func.func @attn_grad_dy(%q: tensor<1x4x2x8xf32>, %dy: tensor<1x4x2x4xf32>) {
  // expected-error @+1 {{output gradient has shape [1, 4, 2, 4], expected [1, 4, 2, 8]}}
  %0:3 = octet.causal_attention_grad %q, %q, %q, %dy : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x4xf32>) -> (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>)
  return
}

// -----

func.func @swiglu_grad_up(%g: tensor<4x8xf32>, %u: tensor<8x4xf32>) {
  // expected-error @+1 {{up has shape [8, 4], expected [4, 8]}}
  %0:2 = octet.swiglu_grad %g, %u, %g : (tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x4xf32>)
  return
}

// -----

func.func @swiglu_grad_dy(%g: tensor<4x8xf32>, %dy: tensor<4x4xf32>) {
  // expected-error @+1 {{output gradient has shape [4, 4], expected [4, 8]}}
  %0:2 = octet.swiglu_grad %g, %g, %dy : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x4xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @swiglu_grad_type(%g: tensor<4x8xf32>) {
  // expected-error @+1 {{up gradient has type 'tensor<4x8xbf16>', expected 'tensor<4x8xf32>'}}
  %0:2 = octet.swiglu_grad %g, %g, %g : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xbf16>)
  return
}

// -----

func.func @gate_grad_type(%x: tensor<8x16xf32>, %w: tensor<4x16xf32>, %i: tensor<8x2xi32>, %d: tensor<8x2xf32>) {
  // expected-error @+1 {{router weight gradient has type 'tensor<16x4xf32>', expected 'tensor<4x16xf32>'}}
  %0:2 = octet.moe_gate_grad %x, %w, %i, %d scaling(1.0) sigmoid : (tensor<8x16xf32>, tensor<4x16xf32>, tensor<8x2xi32>, tensor<8x2xf32>) -> (tensor<8x16xf32>, tensor<16x4xf32>)
  return
}

// -----

func.func @gate_grad_indices(%x: tensor<8x16xf32>, %w: tensor<4x16xf32>, %i: tensor<16xi32>, %d: tensor<8x2xf32>) {
  // expected-error @+1 {{indices must have rank 2, got [16]}}
  %0:2 = octet.moe_gate_grad %x, %w, %i, %d scaling(1.0) sigmoid : (tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xi32>, tensor<8x2xf32>) -> (tensor<8x16xf32>, tensor<4x16xf32>)
  return
}

// -----

func.func @gate_grad_weights(%x: tensor<8x16xf32>, %w: tensor<4x16xf32>, %i: tensor<8x2xi32>, %d: tensor<8x4xf32>) {
  // expected-error @+1 {{weights gradient has shape [8, 4], expected [8, 2]}}
  %0:2 = octet.moe_gate_grad %x, %w, %i, %d scaling(1.0) sigmoid : (tensor<8x16xf32>, tensor<4x16xf32>, tensor<8x2xi32>, tensor<8x4xf32>) -> (tensor<8x16xf32>, tensor<4x16xf32>)
  return
}

// -----

func.func @gate_grad_scaling(%x: tensor<8x16xf32>, %w: tensor<4x16xf32>, %i: tensor<8x2xi32>, %d: tensor<8x2xf32>) {
  // expected-error @+1 {{routed_scaling_factor must be positive, got 0}}
  %0:2 = octet.moe_gate_grad %x, %w, %i, %d scaling(0.0) sigmoid : (tensor<8x16xf32>, tensor<4x16xf32>, tensor<8x2xi32>, tensor<8x2xf32>) -> (tensor<8x16xf32>, tensor<4x16xf32>)
  return
}

// -----

func.func @dispatch_grad_rank(%r: tensor<16xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{rows gradient must have rank 2, got [16]}}
  %0 = octet.moe_dispatch_grad %r, %i experts(4) : (tensor<16xf32>, tensor<8x2xi32>) -> tensor<8x1xf32>
  return
}

// -----

func.func @dispatch_grad_experts(%r: tensor<16x4xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{number of experts must be positive, got 0}}
  %0 = octet.moe_dispatch_grad %r, %i experts(0) : (tensor<16x4xf32>, tensor<8x2xi32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @dispatch_grad_rows(%r: tensor<12x4xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{rows gradient has 12 rows, expected tokens x top_k = 16}}
  %0 = octet.moe_dispatch_grad %r, %i experts(4) : (tensor<12x4xf32>, tensor<8x2xi32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @dispatch_grad_result(%r: tensor<16x4xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{input gradient has shape [16, 4], expected [8, 4]}}
  %0 = octet.moe_dispatch_grad %r, %i experts(4) : (tensor<16x4xf32>, tensor<8x2xi32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @combine_grad_type(%r: tensor<16x4xf32>, %w: tensor<8x2xf32>, %i: tensor<8x2xi32>, %dy: tensor<8x4xf32>) {
  // expected-error @+1 {{weights gradient has type 'tensor<8x2xbf16>', expected 'tensor<8x2xf32>'}}
  %0:2 = octet.moe_combine_grad %r, %w, %i, %dy : (tensor<16x4xf32>, tensor<8x2xf32>, tensor<8x2xi32>, tensor<8x4xf32>) -> (tensor<16x4xf32>, tensor<8x2xbf16>)
  return
}

// -----

func.func @combine_grad_rank(%r: tensor<16xf32>, %w: tensor<8x2xf32>, %i: tensor<8x2xi32>, %dy: tensor<8x4xf32>) {
  // expected-error @+1 {{rows must have rank 2, got [16]}}
  %0:2 = octet.moe_combine_grad %r, %w, %i, %dy : (tensor<16xf32>, tensor<8x2xf32>, tensor<8x2xi32>, tensor<8x4xf32>) -> (tensor<16xf32>, tensor<8x2xf32>)
  return
}

// -----

func.func @combine_grad_indices(%r: tensor<16x4xf32>, %w: tensor<8x2xf32>, %i: tensor<16xi32>, %dy: tensor<8x4xf32>) {
  // expected-error @+1 {{indices must have rank 2, got [16]}}
  %0:2 = octet.moe_combine_grad %r, %w, %i, %dy : (tensor<16x4xf32>, tensor<8x2xf32>, tensor<16xi32>, tensor<8x4xf32>) -> (tensor<16x4xf32>, tensor<8x2xf32>)
  return
}

// -----

func.func @combine_grad_dy(%r: tensor<16x4xf32>, %w: tensor<8x2xf32>, %i: tensor<8x2xi32>, %dy: tensor<16x4xf32>) {
  // expected-error @+1 {{output gradient has shape [16, 4], expected [8, 4]}}
  %0:2 = octet.moe_combine_grad %r, %w, %i, %dy : (tensor<16x4xf32>, tensor<8x2xf32>, tensor<8x2xi32>, tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<8x2xf32>)
  return
}

// -----

func.func @ce_grad_type(%l: tensor<4x8xf32>, %y: tensor<4xi32>, %d: tensor<f32>) {
  // expected-error @+1 {{logits gradient has type 'tensor<4x8xbf16>', expected 'tensor<4x8xf32>'}}
  %0 = octet.cross_entropy_grad %l, %y, %d : (tensor<4x8xf32>, tensor<4xi32>, tensor<f32>) -> tensor<4x8xbf16>
  return
}

// -----

func.func @ce_grad_scalar(%l: tensor<f32>, %y: tensor<i32>, %d: tensor<f32>) {
  // expected-error @+1 {{logits must have rank >= 1}}
  %0 = octet.cross_entropy_grad %l, %y, %d : (tensor<f32>, tensor<i32>, tensor<f32>) -> tensor<f32>
  return
}

// -----

func.func @ce_grad_labels(%l: tensor<4x8xf32>, %y: tensor<8xi32>, %d: tensor<f32>) {
  // expected-error @+1 {{labels has shape [8], expected [4]}}
  %0 = octet.cross_entropy_grad %l, %y, %d : (tensor<4x8xf32>, tensor<8xi32>, tensor<f32>) -> tensor<4x8xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// grad_accumulate / adamw_step
//===----------------------------------------------------------------------===//

func.func @accumulate_empty(%g: tensor<4xf32>) {
  // expected-error @+1 {{parameter name must not be empty}}
  octet.grad_accumulate %g into "" : tensor<4xf32>
  return
}

// -----

func.func @accumulate_unknown(%g: tensor<4xf32>) {
  // expected-error @+1 {{no octet.param named 'w' in this function}}
  octet.grad_accumulate %g into "w" : tensor<4xf32>
  return
}

// -----

func.func @accumulate_frozen(%g: tensor<4xf32>) {
  %b = octet.param "bias" frozen : tensor<4xf32>
  // expected-error @+1 {{parameter 'bias' is frozen: it has no gradient}}
  octet.grad_accumulate %g into "bias" : tensor<4xf32>
  return
}

// -----

func.func @accumulate_shape(%g: tensor<8xf32>) {
  %w = octet.param "w" : tensor<4xf32>
  // expected-error @+1 {{gradient has shape [8], parameter 'w' has shape [4]}}
  octet.grad_accumulate %g into "w" : tensor<8xf32>
  return
}

// -----

func.func @adamw_name(%lr: f32, %s: i64) {
  // expected-error @+1 {{parameter name must not be empty}}
  octet.adamw_step "" lr(%lr) step(%s) betas(0.9, 0.95) eps(1.0e-8) weight_decay(0.1) : tensor<4xf32>
  return
}

// -----

func.func @adamw_betas(%lr: f32, %s: i64) {
  // expected-error @+1 {{betas must lie in [0, 1), got (9.000000e-01, 1.000000e+00)}}
  octet.adamw_step "w" lr(%lr) step(%s) betas(0.9, 1.0) eps(1.0e-8) weight_decay(0.1) : tensor<4xf32>
  return
}

// -----

func.func @adamw_eps(%lr: f32, %s: i64) {
  // expected-error @+1 {{eps must be positive, got 0}}
  octet.adamw_step "w" lr(%lr) step(%s) betas(0.9, 0.95) eps(0.0) weight_decay(0.1) : tensor<4xf32>
  return
}

// -----

func.func @adamw_decay(%lr: f32, %s: i64) {
  // expected-error @+1 {{weight_decay must be non-negative, got -1.000000e-01}}
  octet.adamw_step "w" lr(%lr) step(%s) betas(0.9, 0.95) eps(1.0e-8) weight_decay(-0.1) : tensor<4xf32>
  return
}
