// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-assign-precision | FileCheck %s
// The bf16 recipe never falls back to another format, so it never warns.
// RUN: octet-opt %s -split-input-file --octet-assign-precision=recipe=bf16 2>&1 | FileCheck %s --check-prefix=BF16
// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-assign-precision=override=true | FileCheck %s --check-prefix=OVERRIDE
// The f32 recipe computes everything in FP32, whatever the element types.
// RUN: octet-opt %s -split-input-file --octet-assign-precision=recipe=f32 2>&1 | FileCheck %s --check-prefix=F32
// RUN: octet-opt %s -split-input-file --octet-assign-precision="recipe=f32 override=true" 2>&1 | not grep -E "precision<(e4m3|e5m2|bf16)"
// RUN: not octet-opt %s -split-input-file --octet-assign-precision=recipe=fp4 2>&1 | FileCheck %s --check-prefix=RECIPE

// RECIPE: error: unknown precision recipe 'fp4'; expected deepseek-v3, bf16 or f32
// BF16-NOT: warning: K =
// F32-LABEL: func.func @attention_block
// F32-COUNT-2: octet.linear {{.*}} precision<f32, out = bf16>

// The DeepSeek-V3 recipe: FP8 linears, high precision elsewhere.
// CHECK-LABEL: func.func @attention_block
// BF16-LABEL: func.func @attention_block
func.func @attention_block(%x: tensor<2x64x256xbf16>, %g: tensor<256xf32>,
                           %wq: tensor<256x256xbf16>, %wo: tensor<256x256xbf16>)
    -> tensor<2x64x256xbf16> {
  // CHECK: octet.rmsnorm {{.*}} precision<bf16, out = bf16>
  // BF16: octet.rmsnorm {{.*}} precision<bf16, out = bf16>
  %n = octet.rmsnorm %x, %g epsilon(1.0e-6) : (tensor<2x64x256xbf16>, tensor<256xf32>) -> tensor<2x64x256xbf16>
  // CHECK: octet.linear {{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = bf16>
  // BF16: octet.linear {{.*}} precision<bf16, out = bf16>
  %q = octet.linear %n, %wq : (tensor<2x64x256xbf16>, tensor<256x256xbf16>) -> tensor<2x64x256xbf16>
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [2, 64, 4, 64]
      : tensor<2x64x256xbf16> into tensor<2x64x4x64xbf16>
  // CHECK: octet.causal_attention {{.*}} precision<bf16, out = bf16>
  %o = octet.causal_attention %q4, %q4, %q4
      : (tensor<2x64x4x64xbf16>, tensor<2x64x4x64xbf16>, tensor<2x64x4x64xbf16>) -> tensor<2x64x4x64xbf16>
  %o3 = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<2x64x4x64xbf16> into tensor<2x64x256xbf16>
  // The input of the linear after attention gets power-of-two scales, even
  // through a reshape.
  // CHECK: octet.linear {{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = bf16>
  // BF16: octet.linear {{.*}} precision<bf16, out = bf16>
  %y = octet.linear %o3, %wo : (tensor<2x64x256xbf16>, tensor<256x256xbf16>) -> tensor<2x64x256xbf16>
  // CHECK: octet.add {{.*}} precision<bf16, out = bf16>
  %r = octet.add %x, %y : (tensor<2x64x256xbf16>, tensor<2x64x256xbf16>) -> tensor<2x64x256xbf16>
  return %r : tensor<2x64x256xbf16>
}

// -----

// Experts: dispatched inputs get power-of-two scales; the gate stays in f32;
// the combine reads the expert outputs in BF16 (deepseek-v3 only).
// CHECK-LABEL: func.func @moe
// BF16-LABEL: func.func @moe
// BF16: octet.moe_combine {{.*}} precision<f32, out = f32>
func.func @moe(%x: tensor<32x128xf32>, %wg: tensor<8x128xf32>, %w: tensor<8x64x128xf32>)
    -> tensor<32x64xf32> {
  // CHECK: octet.moe_gate {{.*}} precision<f32, out = f32>
  %wts, %idx = octet.moe_gate %x, %wg top_k(2) groups(1, 1) scaling(1.0) softmax
      : (tensor<32x128xf32>, tensor<8x128xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>)
  // CHECK: octet.moe_dispatch {{.*}} precision<f32, out = f32>
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(8)
      : (tensor<32x128xf32>, tensor<32x2xi32>) -> (tensor<64x128xf32>, tensor<8xi32>)
  // CHECK: octet.grouped_linear {{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32>
  %h = octet.grouped_linear %rows, %w, %sizes
      : (tensor<64x128xf32>, tensor<8x64x128xf32>, tensor<8xi32>) -> tensor<64x64xf32>
  // CHECK: octet.moe_combine {{.*}} precision<bf16, out = f32>
  %y = octet.moe_combine %h, %wts, %idx
      : (tensor<64x64xf32>, tensor<32x2xf32>, tensor<32x2xi32>) -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}

// -----

// The output head stays in high precision, even behind a reshape.
// CHECK-LABEL: func.func @head
// BF16-LABEL: func.func @head
func.func @head(%h: tensor<2x8x128xf32>, %w: tensor<256x128xf32>, %labels: tensor<16xi32>) -> tensor<f32> {
  // CHECK: octet.linear {{.*}} precision<f32, out = f32>
  // BF16: octet.linear {{.*}} precision<bf16, out = f32>
  %logits = octet.linear %h, %w : (tensor<2x8x128xf32>, tensor<256x128xf32>) -> tensor<2x8x256xf32>
  %flat = tensor.collapse_shape %logits [[0, 1], [2]] : tensor<2x8x256xf32> into tensor<16x256xf32>
  %l = octet.cross_entropy %flat, %labels : (tensor<16x256xf32>, tensor<16xi32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A K that FP8 cannot tile stays in BF16, with a warning naming it.
// CHECK-LABEL: func.func @odd_k
func.func @odd_k(%x: tensor<4x96xbf16>, %w: tensor<64x96xbf16>) -> tensor<4x64xbf16> {
  // expected-warning @+2 {{K = 96 is not a known multiple of 128: kept in bf16 instead of FP8}}
  // CHECK: octet.linear {{.*}} precision<bf16, out = bf16>
  %y = octet.linear %x, %w : (tensor<4x96xbf16>, tensor<64x96xbf16>) -> tensor<4x64xbf16>
  return %y : tensor<4x64xbf16>
}

// -----

// User annotations win unless override is set.
// CHECK-LABEL: func.func @user_choice
// OVERRIDE-LABEL: func.func @user_choice
func.func @user_choice(%x: tensor<4x128xbf16>, %w: tensor<64x128xbf16>) -> tensor<4x64xbf16> {
  // CHECK: octet.linear {{.*}} precision<e5m2, lhs = per_tensor, rhs = per_tensor, out = bf16>
  // OVERRIDE: octet.linear {{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = bf16>
  %y = octet.linear %x, %w precision<e5m2, lhs = per_tensor, rhs = per_tensor, out = bf16>
      : (tensor<4x128xbf16>, tensor<64x128xbf16>) -> tensor<4x64xbf16>
  // Parameters carry no precision.
  // CHECK: octet.param "p" : tensor<4xf32>{{$}}
  %p = octet.param "p" : tensor<4xf32>
  return %y : tensor<4x64xbf16>
}
