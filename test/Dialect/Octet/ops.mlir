// RUN: octet-opt %s | FileCheck %s
// Round trip through the generic form too: the custom printer and parser
// must agree with the generic representation.
// RUN: octet-opt %s --mlir-print-op-generic | octet-opt | FileCheck %s

// CHECK-LABEL: func.func @dense_block
// CHECK-SAME: attributes {octet.num_stages = 4 : i64}
func.func @dense_block(%ids: tensor<2x128xi32>) -> tensor<f32>
    attributes {octet.num_stages = 4 : i64} {
  // CHECK: %[[EMB:.*]] = octet.param "model.embed_tokens.weight" : tensor<1024x256xf32>
  %emb = octet.param "model.embed_tokens.weight" : tensor<1024x256xf32>
  // CHECK: %[[G:.*]] = octet.param "model.norm.weight" : tensor<256xf32>
  %g = octet.param "model.norm.weight" : tensor<256xf32>
  %wq = octet.param "q_proj.weight" : tensor<512x256xf32>
  %wk = octet.param "k_proj.weight" : tensor<128x256xf32>
  %wv = octet.param "v_proj.weight" : tensor<128x256xf32>
  %wo = octet.param "o_proj.weight" : tensor<256x512xf32>
  %bias = octet.param "o_proj.bias" : tensor<256xf32>

  // CHECK: %[[H:.*]] = octet.embedding %[[EMB]], %{{.*}} precision<f32, out = f32> {octet.stage = 0 : i64} : (tensor<1024x256xf32>, tensor<2x128xi32>) -> tensor<2x128x256xf32>
  %h = octet.embedding %emb, %ids precision<f32, out = f32> {octet.stage = 0 : i64}
      : (tensor<1024x256xf32>, tensor<2x128xi32>) -> tensor<2x128x256xf32>
  // CHECK: octet.rmsnorm %[[H]], %[[G]] epsilon(1.0e-06) : (tensor<2x128x256xf32>, tensor<256xf32>) -> tensor<2x128x256xf32>
  %n = octet.rmsnorm %h, %g epsilon(1.0e-6)
      : (tensor<2x128x256xf32>, tensor<256xf32>) -> tensor<2x128x256xf32>
  // CHECK: octet.linear %{{.*}}, %{{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
  %q = octet.linear %n, %wq
      precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<2x128x256xf32>, tensor<512x256xf32>) -> tensor<2x128x512xf32>
  // CHECK: octet.linear %{{.*}}, %{{.*}} precision<e5m2, lhs = per_tensor, rhs = per_tensor, out = f32>
  %k = octet.linear %n, %wk precision<e5m2, lhs = per_tensor, rhs = per_tensor, out = f32>
      : (tensor<2x128x256xf32>, tensor<128x256xf32>) -> tensor<2x128x128xf32>
  // CHECK: octet.linear %{{.*}}, %{{.*}} precision<bf16, out = f32>
  %v = octet.linear %n, %wv precision<bf16, out = f32>
      : (tensor<2x128x256xf32>, tensor<128x256xf32>) -> tensor<2x128x128xf32>
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [2, 128, 8, 64]
      : tensor<2x128x512xf32> into tensor<2x128x8x64xf32>
  %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [2, 128, 2, 64]
      : tensor<2x128x128xf32> into tensor<2x128x2x64xf32>
  %v4 = tensor.expand_shape %v [[0], [1], [2, 3]] output_shape [2, 128, 2, 64]
      : tensor<2x128x128xf32> into tensor<2x128x2x64xf32>
  // CHECK: octet.rotary %{{.*}} theta(10000.0) : (tensor<2x128x8x64xf32>) -> tensor<2x128x8x64xf32>
  %qr = octet.rotary %q4 theta(10000.0) : (tensor<2x128x8x64xf32>) -> tensor<2x128x8x64xf32>
  %kr = octet.rotary %k4 theta(10000.0) : (tensor<2x128x2x64xf32>) -> tensor<2x128x2x64xf32>
  // CHECK: octet.causal_attention %{{.*}}, %{{.*}}, %{{.*}} scale(0.125) : (tensor<2x128x8x64xf32>, tensor<2x128x2x64xf32>, tensor<2x128x2x64xf32>) -> tensor<2x128x8x64xf32>
  %o = octet.causal_attention %qr, %kr, %v4 scale(0.125)
      : (tensor<2x128x8x64xf32>, tensor<2x128x2x64xf32>, tensor<2x128x2x64xf32>) -> tensor<2x128x8x64xf32>
  // CHECK: octet.causal_attention %{{.*}}, %{{.*}}, %{{.*}} : (
  %o2 = octet.causal_attention %qr, %kr, %v4
      : (tensor<2x128x8x64xf32>, tensor<2x128x2x64xf32>, tensor<2x128x2x64xf32>) -> tensor<2x128x8x64xf32>
  %o3 = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<2x128x8x64xf32> into tensor<2x128x512xf32>
  // CHECK: octet.linear %{{.*}}, %{{.*}}, %{{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 64, out = f32> {octet.stage = 3 : i64}
  %a = octet.linear %o3, %wo, %bias
      precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 64, out = f32>
      {octet.stage = 3 : i64}
      : (tensor<2x128x512xf32>, tensor<256x512xf32>, tensor<256xf32>) -> tensor<2x128x256xf32>
  // CHECK: octet.add %{{.*}}, %{{.*}} : (tensor<2x128x256xf32>, tensor<2x128x256xf32>) -> tensor<2x128x256xf32>
  %r = octet.add %h, %a : (tensor<2x128x256xf32>, tensor<2x128x256xf32>) -> tensor<2x128x256xf32>
  %logits = octet.linear %r, %emb : (tensor<2x128x256xf32>, tensor<1024x256xf32>) -> tensor<2x128x1024xf32>
  // CHECK: octet.cross_entropy %{{.*}}, %{{.*}} precision<f32, out = f32> : (tensor<2x128x1024xf32>, tensor<2x128xi32>) -> tensor<f32>
  %loss = octet.cross_entropy %logits, %ids precision<f32, out = f32>
      : (tensor<2x128x1024xf32>, tensor<2x128xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @moe
func.func @moe(%x: tensor<64x256xbf16>) -> tensor<64x256xbf16> {
  %wg = octet.param "gate.weight" : tensor<16x256xf32>
  // CHECK: octet.param "gate.e_score_correction_bias" frozen : tensor<16xf32>
  %bias = octet.param "gate.e_score_correction_bias" frozen : tensor<16xf32>
  %w1 = octet.param "experts.gate_proj" : tensor<16x128x256xbf16>
  %w3 = octet.param "experts.up_proj" : tensor<16x128x256xbf16>
  %w2 = octet.param "experts.down_proj" : tensor<16x256x128xbf16>
  // CHECK: %[[WTS:[^ ,]+]], %[[IDX:[^ ,]+]] = octet.moe_gate %{{.*}}, %{{.*}}, %{{.*}} top_k(4) groups(4, 2) scaling(2.5) sigmoid norm_topk_prob : (tensor<64x256xbf16>, tensor<16x256xf32>, tensor<16xf32>) -> (tensor<64x4xf32>, tensor<64x4xi32>)
  %wts, %idx = octet.moe_gate %x, %wg, %bias top_k(4) groups(4, 2) scaling(2.5) sigmoid norm_topk_prob
      : (tensor<64x256xbf16>, tensor<16x256xf32>, tensor<16xf32>) -> (tensor<64x4xf32>, tensor<64x4xi32>)
  // CHECK: octet.moe_gate %{{.*}}, %{{.*}} top_k(2) groups(1, 1) scaling(1.0) softmax precision<f32, out = f32> :
  %wts2, %idx2 = octet.moe_gate %x, %wg top_k(2) groups(1, 1) scaling(1.0) softmax precision<f32, out = f32>
      : (tensor<64x256xbf16>, tensor<16x256xf32>) -> (tensor<64x2xf32>, tensor<64x2xi32>)
  // CHECK: %[[ROWS:[^ ,]+]], %[[SIZES:[^ ,]+]] = octet.moe_dispatch %{{.*}}, %[[IDX]] experts(16) : (tensor<64x256xbf16>, tensor<64x4xi32>) -> (tensor<256x256xbf16>, tensor<16xi32>)
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(16)
      : (tensor<64x256xbf16>, tensor<64x4xi32>) -> (tensor<256x256xbf16>, tensor<16xi32>)
  // CHECK: octet.grouped_linear %{{.*}}, %{{.*}}, %{{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = bf16> : (tensor<256x256xbf16>, tensor<16x128x256xbf16>, tensor<16xi32>) -> tensor<256x128xbf16>
  %g = octet.grouped_linear %rows, %w1, %sizes
      precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = bf16>
      : (tensor<256x256xbf16>, tensor<16x128x256xbf16>, tensor<16xi32>) -> tensor<256x128xbf16>
  %u = octet.grouped_linear %rows, %w3, %sizes
      : (tensor<256x256xbf16>, tensor<16x128x256xbf16>, tensor<16xi32>) -> tensor<256x128xbf16>
  // CHECK: octet.swiglu %{{.*}}, %{{.*}} : (tensor<256x128xbf16>, tensor<256x128xbf16>) -> tensor<256x128xbf16>
  %act = octet.swiglu %g, %u : (tensor<256x128xbf16>, tensor<256x128xbf16>) -> tensor<256x128xbf16>
  %d = octet.grouped_linear %act, %w2, %sizes
      : (tensor<256x128xbf16>, tensor<16x256x128xbf16>, tensor<16xi32>) -> tensor<256x256xbf16>
  // CHECK: octet.moe_combine %{{.*}}, %{{.*}}, %{{.*}} : (tensor<256x256xbf16>, tensor<64x4xf32>, tensor<64x4xi32>) -> tensor<64x256xbf16>
  %y = octet.moe_combine %d, %wts, %idx
      : (tensor<256x256xbf16>, tensor<64x4xf32>, tensor<64x4xi32>) -> tensor<64x256xbf16>
  return %y : tensor<64x256xbf16>
}

// CHECK-LABEL: func.func @batched
func.func @batched(%a: tensor<4x64x128xbf16>, %b: tensor<4x128x32xbf16>, %c: tensor<4x32x128xbf16>,
                   %d: tensor<?x?x128xf32>, %e: tensor<?x?x128xf32>) -> tensor<4x64x32xf32> {
  // CHECK: octet.batch_matmul %{{.*}}, %{{.*}} : (tensor<4x64x128xbf16>, tensor<4x128x32xbf16>) -> tensor<4x64x32xbf16>
  %p = octet.batch_matmul %a, %b : (tensor<4x64x128xbf16>, tensor<4x128x32xbf16>) -> tensor<4x64x32xbf16>
  // CHECK: octet.batch_matmul %{{.*}}, %{{.*}} transpose_rhs precision<e4m3, lhs = tile_1x128, rhs = tile_1x128, promotion = 32, out = f32>
  %t = octet.batch_matmul %a, %c transpose_rhs
      precision<e4m3, lhs = tile_1x128, rhs = tile_1x128, promotion = 32, out = f32>
      : (tensor<4x64x128xbf16>, tensor<4x32x128xbf16>) -> tensor<4x64x32xf32>
  // Dynamic sizes are checked at run time.
  // CHECK: octet.batch_matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<?x?x128xf32>, tensor<?x?x128xf32>) -> tensor<?x?x?xf32>
  %dyn = octet.batch_matmul %d, %e transpose_rhs
      : (tensor<?x?x128xf32>, tensor<?x?x128xf32>) -> tensor<?x?x?xf32>
  return %t : tensor<4x64x32xf32>
}

// The training IR: gradient ops, accumulation and AdamW.
// CHECK-LABEL: func.func @training
func.func @training(%x: tensor<8x256xf32>, %dy: tensor<8x512xf32>, %ids: tensor<8xi32>,
                    %q: tensor<2x16x4x64xf32>, %kv: tensor<2x16x2x64xf32>,
                    %lr: f32, %step: i64) {
  %w = octet.param "w" : tensor<512x256xf32>
  %g = octet.param "g" : tensor<256xf32>
  // CHECK: octet.embedding_grad %{{.*}}, %{{.*}} : (tensor<8x256xf32>, tensor<8xi32>) -> tensor<1000x256xf32>
  %dt = octet.embedding_grad %x, %ids : (tensor<8x256xf32>, tensor<8xi32>) -> tensor<1000x256xf32>
  // CHECK: octet.linear_dgrad %{{.*}}, %{{.*}} precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> : (tensor<8x512xf32>, tensor<512x256xf32>) -> tensor<8x256xf32>
  %dx = octet.linear_dgrad %dy, %w precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32>
      : (tensor<8x512xf32>, tensor<512x256xf32>) -> tensor<8x256xf32>
  // CHECK: octet.linear_wgrad %{{.*}}, %{{.*}} : (tensor<8x512xf32>, tensor<8x256xf32>) -> tensor<512x256xf32>
  %dw = octet.linear_wgrad %dy, %x : (tensor<8x512xf32>, tensor<8x256xf32>) -> tensor<512x256xf32>
  // CHECK: octet.bias_grad %{{.*}} : (tensor<8x512xf32>) -> tensor<512xf32>
  %db = octet.bias_grad %dy : (tensor<8x512xf32>) -> tensor<512xf32>
  %b3 = tensor.expand_shape %x [[0, 1], [2]] output_shape [2, 4, 256] : tensor<8x256xf32> into tensor<2x4x256xf32>
  %dp = tensor.expand_shape %dy [[0, 1], [2]] output_shape [2, 4, 512] : tensor<8x512xf32> into tensor<2x4x512xf32>
  %b2 = arith.constant dense<1.0> : tensor<2x512x256xf32>
  // CHECK: octet.batch_matmul_grad %{{.*}}, %{{.*}}, %{{.*}} transpose_rhs : (tensor<2x4x256xf32>, tensor<2x512x256xf32>, tensor<2x4x512xf32>) -> (tensor<2x4x256xf32>, tensor<2x512x256xf32>)
  %dl, %dr = octet.batch_matmul_grad %b3, %b2, %dp transpose_rhs
      : (tensor<2x4x256xf32>, tensor<2x512x256xf32>, tensor<2x4x512xf32>) -> (tensor<2x4x256xf32>, tensor<2x512x256xf32>)
  %we = octet.param "experts" : tensor<4x512x256xf32>
  %sizes = arith.constant dense<2> : tensor<4xi32>
  // CHECK: octet.grouped_linear_dgrad %{{.*}} : (tensor<8x512xf32>, tensor<4x512x256xf32>, tensor<4xi32>) -> tensor<8x256xf32>
  %gdx = octet.grouped_linear_dgrad %dy, %we, %sizes : (tensor<8x512xf32>, tensor<4x512x256xf32>, tensor<4xi32>) -> tensor<8x256xf32>
  // CHECK: octet.grouped_linear_wgrad %{{.*}} : (tensor<8x512xf32>, tensor<8x256xf32>, tensor<4xi32>) -> tensor<4x512x256xf32>
  %gdw = octet.grouped_linear_wgrad %dy, %x, %sizes : (tensor<8x512xf32>, tensor<8x256xf32>, tensor<4xi32>) -> tensor<4x512x256xf32>
  // CHECK: octet.rmsnorm_grad %{{.*}} epsilon({{.*}}) : (tensor<8x256xf32>, tensor<256xf32>, tensor<8x256xf32>) -> (tensor<8x256xf32>, tensor<256xf32>)
  %ndx, %ndg = octet.rmsnorm_grad %x, %g, %x epsilon(1.0e-6)
      : (tensor<8x256xf32>, tensor<256xf32>, tensor<8x256xf32>) -> (tensor<8x256xf32>, tensor<256xf32>)
  // CHECK: octet.rotary_grad %{{.*}} theta(10000.0) : (tensor<2x16x4x64xf32>) -> tensor<2x16x4x64xf32>
  %rdx = octet.rotary_grad %q theta(10000.0) : (tensor<2x16x4x64xf32>) -> tensor<2x16x4x64xf32>
  // CHECK: octet.causal_attention_grad %{{.*}} scale(0.125) : (tensor<2x16x4x64xf32>, tensor<2x16x2x64xf32>, tensor<2x16x2x64xf32>, tensor<2x16x4x64xf32>) -> (tensor<2x16x4x64xf32>, tensor<2x16x2x64xf32>, tensor<2x16x2x64xf32>)
  %aq, %ak, %av = octet.causal_attention_grad %q, %kv, %kv, %q scale(0.125)
      : (tensor<2x16x4x64xf32>, tensor<2x16x2x64xf32>, tensor<2x16x2x64xf32>, tensor<2x16x4x64xf32>)
      -> (tensor<2x16x4x64xf32>, tensor<2x16x2x64xf32>, tensor<2x16x2x64xf32>)
  // CHECK: octet.swiglu_grad
  %sg, %su = octet.swiglu_grad %x, %x, %x : (tensor<8x256xf32>, tensor<8x256xf32>, tensor<8x256xf32>) -> (tensor<8x256xf32>, tensor<8x256xf32>)
  %wg = octet.param "gate" : tensor<4x256xf32>
  %idx = arith.constant dense<1> : tensor<8x2xi32>
  %dwts = arith.constant dense<0.5> : tensor<8x2xf32>
  // CHECK: octet.moe_gate_grad %{{.*}} scaling(2.5) softmax norm_topk_prob : (tensor<8x256xf32>, tensor<4x256xf32>, tensor<8x2xi32>, tensor<8x2xf32>) -> (tensor<8x256xf32>, tensor<4x256xf32>)
  %gx, %gw = octet.moe_gate_grad %x, %wg, %idx, %dwts scaling(2.5) softmax norm_topk_prob
      : (tensor<8x256xf32>, tensor<4x256xf32>, tensor<8x2xi32>, tensor<8x2xf32>) -> (tensor<8x256xf32>, tensor<4x256xf32>)
  %rows = arith.constant dense<1.0> : tensor<16x256xf32>
  // CHECK: octet.moe_dispatch_grad %{{.*}} experts(4) : (tensor<16x256xf32>, tensor<8x2xi32>) -> tensor<8x256xf32>
  %ddx = octet.moe_dispatch_grad %rows, %idx experts(4) : (tensor<16x256xf32>, tensor<8x2xi32>) -> tensor<8x256xf32>
  // CHECK: octet.moe_combine_grad
  %cr, %cw = octet.moe_combine_grad %rows, %dwts, %idx, %x
      : (tensor<16x256xf32>, tensor<8x2xf32>, tensor<8x2xi32>, tensor<8x256xf32>) -> (tensor<16x256xf32>, tensor<8x2xf32>)
  %one = arith.constant dense<1.0> : tensor<f32>
  // CHECK: octet.cross_entropy_grad %{{.*}} : (tensor<8x256xf32>, tensor<8xi32>, tensor<f32>) -> tensor<8x256xf32>
  %dlog = octet.cross_entropy_grad %x, %ids, %one : (tensor<8x256xf32>, tensor<8xi32>, tensor<f32>) -> tensor<8x256xf32>
  // CHECK: octet.grad_accumulate %{{.*}} into "w" : tensor<512x256xf32>
  octet.grad_accumulate %dw into "w" : tensor<512x256xf32>
  // CHECK: octet.adamw_step "w" lr(%{{.*}}) step(%{{.*}}) betas(0.9, 0.999) eps(1.0e-08) weight_decay(0.0) : tensor<512x256xf32>
  octet.adamw_step "w" lr(%lr) step(%step) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<512x256xf32>
  return
}
