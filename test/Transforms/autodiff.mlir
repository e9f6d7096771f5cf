// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-autodiff | FileCheck %s

// The pass description's example: the head's weight gradient, accumulated,
// and its AdamW step. The input is not a parameter: no dgrad.
// CHECK-LABEL: func.func @forward(
// CHECK-LABEL: func.func @forward_backward(
// CHECK-SAME: %[[X:.*]]: tensor<8x256xf32>, %[[L:.*]]: tensor<8xi32>) -> tensor<f32>
// CHECK: %[[W:.*]] = octet.param "head.weight"
// CHECK: %[[Y:.*]] = octet.linear %[[X]], %[[W]]
// CHECK: %[[LOSS:.*]] = octet.cross_entropy %[[Y]], %[[L]]
// CHECK: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[DY:.*]] = octet.cross_entropy_grad %[[Y]], %[[L]], %[[ONE]]
// CHECK-NOT: octet.linear_dgrad
// CHECK: %[[DW:.*]] = octet.linear_wgrad %[[DY]], %[[X]] : (tensor<8x16xf32>, tensor<8x256xf32>) -> tensor<16x256xf32>
// CHECK: octet.grad_accumulate %[[DW]] into "head.weight" : tensor<16x256xf32>
// CHECK: return %[[LOSS]]
// CHECK-LABEL: func.func @optimizer_step(
// CHECK-SAME: %[[LR:.*]]: f32, %[[STEP:.*]]: i64)
// CHECK: octet.adamw_step "head.weight" lr(%[[LR]]) step(%[[STEP]]) betas(0.9, 0.95) eps(1.0e-08) weight_decay(0.1) : tensor<16x256xf32>
func.func @forward(%x: tensor<8x256xf32>, %labels: tensor<8xi32>) -> tensor<f32> {
  %w = octet.param "head.weight" : tensor<16x256xf32>
  %y = octet.linear %x, %w : (tensor<8x256xf32>, tensor<16x256xf32>) -> tensor<8x16xf32>
  %l = octet.cross_entropy %y, %labels : (tensor<8x16xf32>, tensor<8xi32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Dgrad and Wgrad are separate ops carrying the forward's precision; a value
// used twice gets the sum of its gradients; the stage is the forward op's;
// frozen parameters get nothing.
// CHECK-LABEL: func.func @forward_backward
// CHECK: %[[EMB:.*]] = octet.param "embed"
// CHECK: %[[H:.*]] = octet.embedding %[[EMB]]
// CHECK: %[[DX:.*]] = octet.linear_dgrad {{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> {octet.stage = 1 : i64}
// CHECK: %[[SUM:.*]] = octet.add %{{.*}}, %[[DX]] {octet.stage = 1 : i64}
// CHECK: %[[DW:.*]] = octet.linear_wgrad {{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> {octet.stage = 1 : i64}
// CHECK: %[[DB:.*]] = octet.bias_grad
// Each gradient is accumulated as soon as it is complete, on its stage.
// CHECK-DAG: octet.grad_accumulate %[[DW]] into "w" {octet.stage = 1 : i64}
// CHECK-DAG: octet.grad_accumulate %[[DB]] into "b" {octet.stage = 1 : i64}
// CHECK: octet.embedding_grad %[[SUM]]
// CHECK: octet.grad_accumulate {{.*}} into "embed" {octet.stage = 0 : i64}
// CHECK-NOT: into "frozen"
// CHECK-LABEL: func.func @optimizer_step
// CHECK-DAG: octet.adamw_step "embed"
// CHECK-DAG: octet.adamw_step "w"
// CHECK-DAG: octet.adamw_step "b"
// CHECK-NOT: octet.adamw_step "frozen"
func.func @forward(%ids: tensor<8xi32>, %labels: tensor<8xi32>) -> tensor<f32> {
  %emb = octet.param "embed" : tensor<32x128xf32>
  %w = octet.param "w" : tensor<128x128xf32>
  %b = octet.param "b" : tensor<128xf32>
  %fz = octet.param "frozen" frozen : tensor<8x128xf32>
  %h = octet.embedding %emb, %ids {octet.stage = 0 : i64} : (tensor<32x128xf32>, tensor<8xi32>) -> tensor<8x128xf32>
  %y = octet.linear %h, %w, %b precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> {octet.stage = 1 : i64}
      : (tensor<8x128xf32>, tensor<128x128xf32>, tensor<128xf32>) -> tensor<8x128xf32>
  %r = octet.add %h, %y : (tensor<8x128xf32>, tensor<8x128xf32>) -> tensor<8x128xf32>
  %r2 = octet.add %r, %fz : (tensor<8x128xf32>, tensor<8x128xf32>) -> tensor<8x128xf32>
  %l = octet.cross_entropy %r2, %labels : (tensor<8x128xf32>, tensor<8xi32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Every op family of a transformer block: norm, rotary, attention, SwiGLU,
// batched products, the MoE path, and the tensor shape ops in between.
// CHECK-LABEL: func.func @forward_backward
// CHECK: octet.cross_entropy_grad
// The combine's gradient computes as the combine does (BF16 here).
// CHECK: octet.moe_combine_grad {{.*}} precision<bf16, out = f32>
// CHECK: octet.grouped_linear_dgrad
// CHECK: octet.grouped_linear_wgrad
// CHECK: octet.moe_dispatch_grad
// CHECK: octet.moe_gate_grad {{.*}} scaling(1.0) sigmoid norm_topk_prob
// CHECK: octet.batch_matmul_grad {{.*}} transpose_rhs
// CHECK: octet.swiglu_grad
// CHECK: tensor.expand_shape
// CHECK: octet.causal_attention_grad {{.*}} scale(0.125)
// CHECK: tensor.extract_slice
// CHECK: tensor.extract_slice
// CHECK: octet.rotary_grad {{.*}} theta(10000.0)
// CHECK: arith.constant dense<0.000000e+00> : tensor<2x8x2x64xf32>
// CHECK: tensor.insert_slice
// CHECK: tensor.collapse_shape
// CHECK: octet.rmsnorm_grad
// CHECK-NOT: into "bias"
func.func @forward(%x: tensor<2x8x128xf32>, %labels: tensor<16xi32>) -> tensor<f32> {
  %g = octet.param "norm" : tensor<128xf32>
  %n = octet.rmsnorm %x, %g epsilon(1.0e-6) : (tensor<2x8x128xf32>, tensor<128xf32>) -> tensor<2x8x128xf32>
  %n4 = tensor.expand_shape %n [[0], [1], [2, 3]] output_shape [2, 8, 2, 64] : tensor<2x8x128xf32> into tensor<2x8x2x64xf32>
  %part = tensor.extract_slice %n4[0, 0, 0, 0] [2, 8, 2, 32] [1, 1, 1, 1] : tensor<2x8x2x64xf32> to tensor<2x8x2x32xf32>
  %rot = octet.rotary %part theta(10000.0) : (tensor<2x8x2x32xf32>) -> tensor<2x8x2x32xf32>
  %q = tensor.concat dim(3) %rot, %rot : (tensor<2x8x2x32xf32>, tensor<2x8x2x32xf32>) -> tensor<2x8x2x64xf32>
  %o = octet.causal_attention %q, %n4, %n4 scale(0.125)
      : (tensor<2x8x2x64xf32>, tensor<2x8x2x64xf32>, tensor<2x8x2x64xf32>) -> tensor<2x8x2x64xf32>
  %o3 = tensor.collapse_shape %o [[0, 1], [2, 3]] : tensor<2x8x2x64xf32> into tensor<16x128xf32>
  %a = octet.swiglu %o3, %o3 : (tensor<16x128xf32>, tensor<16x128xf32>) -> tensor<16x128xf32>
  %a3 = tensor.expand_shape %a [[0, 1], [2]] output_shape [2, 8, 128] : tensor<16x128xf32> into tensor<2x8x128xf32>
  %s = octet.batch_matmul %a3, %a3 transpose_rhs : (tensor<2x8x128xf32>, tensor<2x8x128xf32>) -> tensor<2x8x8xf32>
  %t = tensor.collapse_shape %s [[0, 1], [2]] : tensor<2x8x8xf32> into tensor<16x8xf32>
  %wg = octet.param "gate" : tensor<4x8xf32>
  %bias = octet.param "bias" frozen : tensor<4xf32>
  %we = octet.param "experts" : tensor<4x8x8xf32>
  %wts, %idx = octet.moe_gate %t, %wg, %bias top_k(2) groups(1, 1) scaling(1.0) sigmoid norm_topk_prob
      : (tensor<16x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>)
  %rows, %sizes = octet.moe_dispatch %t, %idx experts(4)
      : (tensor<16x8xf32>, tensor<16x2xi32>) -> (tensor<32x8xf32>, tensor<4xi32>)
  %e = octet.grouped_linear %rows, %we, %sizes : (tensor<32x8xf32>, tensor<4x8x8xf32>, tensor<4xi32>) -> tensor<32x8xf32>
  %c = octet.moe_combine %e, %wts, %idx precision<bf16, out = f32> : (tensor<32x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>) -> tensor<16x8xf32>
  %l = octet.cross_entropy %c, %labels : (tensor<16x8xf32>, tensor<16xi32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A weighted sum of losses (multi-token prediction): arith on the scalars.
// CHECK-LABEL: func.func @forward_backward
// CHECK: %[[ONE:.*]] = arith.constant dense<1.000000e+00>
// CHECK: %[[D:.*]] = arith.divf %[[ONE]], %{{.*}} : tensor<f32>
// CHECK: arith.mulf %[[D]], %{{.*}} : tensor<f32>
func.func @forward(%x: tensor<4x16xf32>, %labels: tensor<4xi32>) -> tensor<f32> {
  %w = octet.param "w" : tensor<16x16xf32>
  %y = octet.linear %x, %w : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
  %l1 = octet.cross_entropy %y, %labels : (tensor<4x16xf32>, tensor<4xi32>) -> tensor<f32>
  %l2 = octet.cross_entropy %x, %labels : (tensor<4x16xf32>, tensor<4xi32>) -> tensor<f32>
  %lambda = arith.constant dense<0.3> : tensor<f32>
  %two = arith.constant dense<2.0> : tensor<f32>
  %w2 = arith.mulf %l1, %lambda : tensor<f32>
  %sum = arith.addf %w2, %l2 : tensor<f32>
  %mean = arith.divf %sum, %two : tensor<f32>
  return %mean : tensor<f32>
}

// -----

// expected-error @+1 {{autodiff: no function @forward to differentiate}}
module {
  func.func @other() { return }
}

// -----

// expected-error @+1 {{autodiff: @forward must have one block and return the loss (first; further results are metrics)}}
func.func @forward(%x: tensor<f32>) {
  return
}

// -----

// Results after the loss are metrics: returned, not differentiated.
// CHECK-LABEL: func.func @forward_backward
// CHECK-SAME: -> (tensor<f32>, tensor<f32>)
// CHECK: %[[L:.*]] = octet.cross_entropy
// CHECK: %[[M:.*]] = octet.cross_entropy
// CHECK: octet.grad_accumulate
// CHECK: return %[[L]], %[[M]]
func.func @forward(%x: tensor<4x16xf32>, %labels: tensor<4xi32>) -> (tensor<f32>, tensor<f32>) {
  %w = octet.param "w" : tensor<16x16xf32>
  %y = octet.linear %x, %w : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
  %l = octet.cross_entropy %y, %labels : (tensor<4x16xf32>, tensor<4xi32>) -> tensor<f32>
  %m = octet.cross_entropy %x, %labels : (tensor<4x16xf32>, tensor<4xi32>) -> tensor<f32>
  return %l, %m : tensor<f32>, tensor<f32>
}

// -----

// expected-error @+1 {{autodiff: @forward must return a scalar float loss tensor, got 'tensor<4xf32>'}}
func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @+1 {{autodiff: the module already has @optimizer_step}}
module {
  func.func @forward(%x: tensor<f32>) -> tensor<f32> { return %x : tensor<f32> }
  func.func @optimizer_step() { return }
}

// -----

func.func @forward(%x: tensor<4xf32>) -> tensor<f32> {
  %w = octet.param "w" : tensor<4xf32>
  // expected-error @+1 {{'arith.subf' op autodiff: no gradient rule for this op, but its result depends on trainable parameters}}
  %d = arith.subf %x, %w : tensor<4xf32>
  %c = arith.constant dense<0> : tensor<i32>
  %l = octet.cross_entropy %d, %c : (tensor<4xf32>, tensor<i32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

func.func @forward(%x: tensor<4xf32>) -> tensor<f32> {
  %w = octet.param "w" : tensor<f32>
  %c = arith.constant dense<0> : tensor<i32>
  %l = octet.cross_entropy %x, %c : (tensor<4xf32>, tensor<i32>) -> tensor<f32>
  // expected-error @+1 {{'arith.divf' op autodiff: division by an active value is not supported}}
  %d = arith.divf %l, %w : tensor<f32>
  return %d : tensor<f32>
}

// -----

func.func @forward(%x: tensor<4xf32>) -> tensor<f32> {
  // expected-warning @+1 {{parameter 'unused' receives no gradient; mark it frozen if that is intended}}
  %u = octet.param "unused" : tensor<4xf32>
  %c = arith.constant dense<0> : tensor<i32>
  %l = octet.cross_entropy %x, %c : (tensor<4xf32>, tensor<i32>) -> tensor<f32>
  return %l : tensor<f32>
}
