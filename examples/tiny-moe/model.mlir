// Tiny DeepSeek-V3-style decoder: the forward training graph, in the `octet`
// dialect, of a model small enough to train on a CPU (f32 throughout).
//
// It keeps every structural feature of DeepSeek-V3 at toy sizes, so that the
// passes and the runtime exercise the same graph shapes as the real model:
//   vocabulary 256 (bytes)           hidden 256, 4 decoder layers
//   layers 0-1: dense SwiGLU MLP, intermediate 512
//   layers 2-3: MoE, 8 routed experts, top-2, n_group 2, topk_group 1,
//               sigmoid scores + e_score_correction_bias, norm_topk_prob,
//               routed_scaling_factor 1.0, moe_intermediate 128,
//               1 shared expert (SwiGLU, intermediate 128)
//   attention:  multi-head latent attention, 4 heads, q_lora_rank 128,
//               kv_lora_rank 128, qk_nope 64 + qk_rope 32, v_head_dim 64,
//               rotary theta 10000 (no YaRN), softmax scale 1/sqrt(96)
//   RMSNorm eps 1e-6, untied lm_head, batch 2 x sequence 64 (128 tokens).
// Every contraction size (256, 128, 512) is a multiple of 128, so no linear
// has to fall back from FP8 to bf16 for want of whole 128-element scale groups.
//
// Parameters are named with their Hugging Face DeepSeek-V3 checkpoint keys so
// that checkpoints map one to one (except the stacked expert weights, below).
// The graph is split over two pipeline stages: the embedding and layers 0-1
// on stage 0; layers 2-3, the final norm, the head and the loss on stage 1.
// Every op, parameters and shape ops included, names its stage, so a
// partitioner never has to guess where a value lives.
//
// No op carries a precision annotation: a recipe pass fills them in, e.g.
//   octet-opt examples/tiny-moe/model.mlir --octet-assign-precision

func.func @tiny_moe_forward(%ids: tensor<2x64xi32>, %labels: tensor<2x64xi32>) -> tensor<f32>
    attributes {octet.num_stages = 2 : i64} {
  // Token embedding: byte ids index a 256 x 256 table.
  %embed = octet.param "model.embed_tokens.weight" {octet.stage = 0 : i64} : tensor<256x256xf32>
  %h0 = octet.embedding %embed, %ids {octet.stage = 0 : i64}
      : (tensor<256x256xf32>, tensor<2x64xi32>) -> tensor<2x64x256xf32>

  // ---- Layer 0 (dense, stage 0): pre-norm residual block. ----
  // Attention (MLA): queries and keys/values go through low-rank latents; only
  // the 32-wide rope slice carries position, and its key part is one per token.
  %l0_ln1 = octet.param "model.layers.0.input_layernorm.weight" {octet.stage = 0 : i64} : tensor<256xf32>
  %l0_wqa = octet.param "model.layers.0.self_attn.q_a_proj.weight" {octet.stage = 0 : i64} : tensor<128x256xf32>
  %l0_qan = octet.param "model.layers.0.self_attn.q_a_layernorm.weight" {octet.stage = 0 : i64} : tensor<128xf32>
  %l0_wqb = octet.param "model.layers.0.self_attn.q_b_proj.weight" {octet.stage = 0 : i64} : tensor<384x128xf32>
  %l0_wkva = octet.param "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" {octet.stage = 0 : i64} : tensor<160x256xf32>
  %l0_kvan = octet.param "model.layers.0.self_attn.kv_a_layernorm.weight" {octet.stage = 0 : i64} : tensor<128xf32>
  %l0_wkvb = octet.param "model.layers.0.self_attn.kv_b_proj.weight" {octet.stage = 0 : i64} : tensor<512x128xf32>
  %l0_wo = octet.param "model.layers.0.self_attn.o_proj.weight" {octet.stage = 0 : i64} : tensor<256x256xf32>
  %l0_xn = octet.rmsnorm %h0, %l0_ln1 epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  // Query path: compress to the q latent, normalise, expand to all heads.
  %l0_qa = octet.linear %l0_xn, %l0_wqa {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %l0_qan_out = octet.rmsnorm %l0_qa, %l0_qan epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l0_qb = octet.linear %l0_qan_out, %l0_wqb {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<384x128xf32>) -> tensor<2x64x384xf32>
  %l0_q4 = tensor.expand_shape %l0_qb [[0], [1], [2, 3]] output_shape [2, 64, 4, 96] {octet.stage = 0 : i64}
      : tensor<2x64x384xf32> into tensor<2x64x4x96xf32>
  // Each head's 96 query features are [nope(64) | rope(32)], as in q_b_proj's checkpoint layout.
  %l0_q_nope = tensor.extract_slice %l0_q4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x64xf32>
  %l0_q_pe = tensor.extract_slice %l0_q4[0, 0, 0, 64] [2, 64, 4, 32] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x32xf32>
  %l0_q_rot = octet.rotary %l0_q_pe theta(10000.0) {octet.stage = 0 : i64}
      : (tensor<2x64x4x32xf32>) -> tensor<2x64x4x32xf32>
  // Key/value path: one projection yields the kv latent (128) and the shared rope key (32).
  %l0_kva = octet.linear %l0_xn, %l0_wkva {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<160x256xf32>) -> tensor<2x64x160xf32>
  %l0_ckv = tensor.extract_slice %l0_kva[0, 0, 0] [2, 64, 128] [1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x128xf32>
  %l0_k_pe = tensor.extract_slice %l0_kva[0, 0, 128] [2, 64, 32] [1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x32xf32>
  %l0_ckvn = octet.rmsnorm %l0_ckv, %l0_kvan epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l0_kvb = octet.linear %l0_ckvn, %l0_wkvb {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<512x128xf32>) -> tensor<2x64x512xf32>
  %l0_kv4 = tensor.expand_shape %l0_kvb [[0], [1], [2, 3]] output_shape [2, 64, 4, 128] {octet.stage = 0 : i64}
      : tensor<2x64x512xf32> into tensor<2x64x4x128xf32>
  %l0_k_nope = tensor.extract_slice %l0_kv4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l0_v = tensor.extract_slice %l0_kv4[0, 0, 0, 64] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  // The rope key is a single head: rotate it once, then copy it to every head.
  %l0_k_pe4 = tensor.expand_shape %l0_k_pe [[0], [1], [2, 3]] output_shape [2, 64, 1, 32] {octet.stage = 0 : i64}
      : tensor<2x64x32xf32> into tensor<2x64x1x32xf32>
  %l0_k_rot = octet.rotary %l0_k_pe4 theta(10000.0) {octet.stage = 0 : i64}
      : (tensor<2x64x1x32xf32>) -> tensor<2x64x1x32xf32>
  %l0_k_rot_h = tensor.concat dim(2) %l0_k_rot, %l0_k_rot, %l0_k_rot, %l0_k_rot {octet.stage = 0 : i64}
      : (tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>) -> tensor<2x64x4x32xf32>
  %l0_q = tensor.concat dim(3) %l0_q_nope, %l0_q_rot {octet.stage = 0 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l0_k = tensor.concat dim(3) %l0_k_nope, %l0_k_rot_h {octet.stage = 0 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  // Scale by the full query/key width 1/sqrt(64 + 32); values are only 64 wide.
  %l0_o = octet.causal_attention %l0_q, %l0_k, %l0_v scale(0.10206207261596577) {octet.stage = 0 : i64}
      : (tensor<2x64x4x96xf32>, tensor<2x64x4x96xf32>, tensor<2x64x4x64xf32>) -> tensor<2x64x4x64xf32>
  %l0_o3 = tensor.collapse_shape %l0_o [[0], [1], [2, 3]] {octet.stage = 0 : i64}
      : tensor<2x64x4x64xf32> into tensor<2x64x256xf32>
  %l0_attn = octet.linear %l0_o3, %l0_wo {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<256x256xf32>) -> tensor<2x64x256xf32>
  %l0_h1 = octet.add %h0, %l0_attn {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>
  // Dense SwiGLU MLP: like DeepSeek-V3 (first_k_dense_replace = 3), the first layers
  // are dense (here first_k_dense_replace = 2), the later ones MoE.
  %l0_ln2 = octet.param "model.layers.0.post_attention_layernorm.weight" {octet.stage = 0 : i64} : tensor<256xf32>
  %l0_hn = octet.rmsnorm %l0_h1, %l0_ln2 epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %l0_mlp_wg = octet.param "model.layers.0.mlp.gate_proj.weight" {octet.stage = 0 : i64} : tensor<512x256xf32>
  %l0_mlp_wu = octet.param "model.layers.0.mlp.up_proj.weight" {octet.stage = 0 : i64} : tensor<512x256xf32>
  %l0_mlp_wd = octet.param "model.layers.0.mlp.down_proj.weight" {octet.stage = 0 : i64} : tensor<256x512xf32>
  %l0_mlp_g = octet.linear %l0_hn, %l0_mlp_wg {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<512x256xf32>) -> tensor<2x64x512xf32>
  %l0_mlp_u = octet.linear %l0_hn, %l0_mlp_wu {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<512x256xf32>) -> tensor<2x64x512xf32>
  %l0_mlp_act = octet.swiglu %l0_mlp_g, %l0_mlp_u {octet.stage = 0 : i64}
      : (tensor<2x64x512xf32>, tensor<2x64x512xf32>) -> tensor<2x64x512xf32>
  %l0_mlp_y = octet.linear %l0_mlp_act, %l0_mlp_wd {octet.stage = 0 : i64}
      : (tensor<2x64x512xf32>, tensor<256x512xf32>) -> tensor<2x64x256xf32>
  %l0_out = octet.add %l0_h1, %l0_mlp_y {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>

  // ---- Layer 1 (dense, stage 0): pre-norm residual block. ----
  // Attention (MLA), as in layer 0.
  %l1_ln1 = octet.param "model.layers.1.input_layernorm.weight" {octet.stage = 0 : i64} : tensor<256xf32>
  %l1_wqa = octet.param "model.layers.1.self_attn.q_a_proj.weight" {octet.stage = 0 : i64} : tensor<128x256xf32>
  %l1_qan = octet.param "model.layers.1.self_attn.q_a_layernorm.weight" {octet.stage = 0 : i64} : tensor<128xf32>
  %l1_wqb = octet.param "model.layers.1.self_attn.q_b_proj.weight" {octet.stage = 0 : i64} : tensor<384x128xf32>
  %l1_wkva = octet.param "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" {octet.stage = 0 : i64} : tensor<160x256xf32>
  %l1_kvan = octet.param "model.layers.1.self_attn.kv_a_layernorm.weight" {octet.stage = 0 : i64} : tensor<128xf32>
  %l1_wkvb = octet.param "model.layers.1.self_attn.kv_b_proj.weight" {octet.stage = 0 : i64} : tensor<512x128xf32>
  %l1_wo = octet.param "model.layers.1.self_attn.o_proj.weight" {octet.stage = 0 : i64} : tensor<256x256xf32>
  %l1_xn = octet.rmsnorm %l0_out, %l1_ln1 epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %l1_qa = octet.linear %l1_xn, %l1_wqa {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %l1_qan_out = octet.rmsnorm %l1_qa, %l1_qan epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l1_qb = octet.linear %l1_qan_out, %l1_wqb {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<384x128xf32>) -> tensor<2x64x384xf32>
  %l1_q4 = tensor.expand_shape %l1_qb [[0], [1], [2, 3]] output_shape [2, 64, 4, 96] {octet.stage = 0 : i64}
      : tensor<2x64x384xf32> into tensor<2x64x4x96xf32>
  %l1_q_nope = tensor.extract_slice %l1_q4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x64xf32>
  %l1_q_pe = tensor.extract_slice %l1_q4[0, 0, 0, 64] [2, 64, 4, 32] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x32xf32>
  %l1_q_rot = octet.rotary %l1_q_pe theta(10000.0) {octet.stage = 0 : i64}
      : (tensor<2x64x4x32xf32>) -> tensor<2x64x4x32xf32>
  %l1_kva = octet.linear %l1_xn, %l1_wkva {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<160x256xf32>) -> tensor<2x64x160xf32>
  %l1_ckv = tensor.extract_slice %l1_kva[0, 0, 0] [2, 64, 128] [1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x128xf32>
  %l1_k_pe = tensor.extract_slice %l1_kva[0, 0, 128] [2, 64, 32] [1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x32xf32>
  %l1_ckvn = octet.rmsnorm %l1_ckv, %l1_kvan epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l1_kvb = octet.linear %l1_ckvn, %l1_wkvb {octet.stage = 0 : i64}
      : (tensor<2x64x128xf32>, tensor<512x128xf32>) -> tensor<2x64x512xf32>
  %l1_kv4 = tensor.expand_shape %l1_kvb [[0], [1], [2, 3]] output_shape [2, 64, 4, 128] {octet.stage = 0 : i64}
      : tensor<2x64x512xf32> into tensor<2x64x4x128xf32>
  %l1_k_nope = tensor.extract_slice %l1_kv4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l1_v = tensor.extract_slice %l1_kv4[0, 0, 0, 64] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 0 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l1_k_pe4 = tensor.expand_shape %l1_k_pe [[0], [1], [2, 3]] output_shape [2, 64, 1, 32] {octet.stage = 0 : i64}
      : tensor<2x64x32xf32> into tensor<2x64x1x32xf32>
  %l1_k_rot = octet.rotary %l1_k_pe4 theta(10000.0) {octet.stage = 0 : i64}
      : (tensor<2x64x1x32xf32>) -> tensor<2x64x1x32xf32>
  %l1_k_rot_h = tensor.concat dim(2) %l1_k_rot, %l1_k_rot, %l1_k_rot, %l1_k_rot {octet.stage = 0 : i64}
      : (tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>) -> tensor<2x64x4x32xf32>
  %l1_q = tensor.concat dim(3) %l1_q_nope, %l1_q_rot {octet.stage = 0 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l1_k = tensor.concat dim(3) %l1_k_nope, %l1_k_rot_h {octet.stage = 0 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l1_o = octet.causal_attention %l1_q, %l1_k, %l1_v scale(0.10206207261596577) {octet.stage = 0 : i64}
      : (tensor<2x64x4x96xf32>, tensor<2x64x4x96xf32>, tensor<2x64x4x64xf32>) -> tensor<2x64x4x64xf32>
  %l1_o3 = tensor.collapse_shape %l1_o [[0], [1], [2, 3]] {octet.stage = 0 : i64}
      : tensor<2x64x4x64xf32> into tensor<2x64x256xf32>
  %l1_attn = octet.linear %l1_o3, %l1_wo {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<256x256xf32>) -> tensor<2x64x256xf32>
  %l1_h1 = octet.add %l0_out, %l1_attn {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>
  // Dense SwiGLU MLP.
  %l1_ln2 = octet.param "model.layers.1.post_attention_layernorm.weight" {octet.stage = 0 : i64} : tensor<256xf32>
  %l1_hn = octet.rmsnorm %l1_h1, %l1_ln2 epsilon(1.0e-06) {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %l1_mlp_wg = octet.param "model.layers.1.mlp.gate_proj.weight" {octet.stage = 0 : i64} : tensor<512x256xf32>
  %l1_mlp_wu = octet.param "model.layers.1.mlp.up_proj.weight" {octet.stage = 0 : i64} : tensor<512x256xf32>
  %l1_mlp_wd = octet.param "model.layers.1.mlp.down_proj.weight" {octet.stage = 0 : i64} : tensor<256x512xf32>
  %l1_mlp_g = octet.linear %l1_hn, %l1_mlp_wg {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<512x256xf32>) -> tensor<2x64x512xf32>
  %l1_mlp_u = octet.linear %l1_hn, %l1_mlp_wu {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<512x256xf32>) -> tensor<2x64x512xf32>
  %l1_mlp_act = octet.swiglu %l1_mlp_g, %l1_mlp_u {octet.stage = 0 : i64}
      : (tensor<2x64x512xf32>, tensor<2x64x512xf32>) -> tensor<2x64x512xf32>
  %l1_mlp_y = octet.linear %l1_mlp_act, %l1_mlp_wd {octet.stage = 0 : i64}
      : (tensor<2x64x512xf32>, tensor<256x512xf32>) -> tensor<2x64x256xf32>
  %l1_out = octet.add %l1_h1, %l1_mlp_y {octet.stage = 0 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>

  // ---- Layer 2 (MoE, stage 1): pre-norm residual block. ----
  // Attention (MLA), as in layer 0.
  %l2_ln1 = octet.param "model.layers.2.input_layernorm.weight" {octet.stage = 1 : i64} : tensor<256xf32>
  %l2_wqa = octet.param "model.layers.2.self_attn.q_a_proj.weight" {octet.stage = 1 : i64} : tensor<128x256xf32>
  %l2_qan = octet.param "model.layers.2.self_attn.q_a_layernorm.weight" {octet.stage = 1 : i64} : tensor<128xf32>
  %l2_wqb = octet.param "model.layers.2.self_attn.q_b_proj.weight" {octet.stage = 1 : i64} : tensor<384x128xf32>
  %l2_wkva = octet.param "model.layers.2.self_attn.kv_a_proj_with_mqa.weight" {octet.stage = 1 : i64} : tensor<160x256xf32>
  %l2_kvan = octet.param "model.layers.2.self_attn.kv_a_layernorm.weight" {octet.stage = 1 : i64} : tensor<128xf32>
  %l2_wkvb = octet.param "model.layers.2.self_attn.kv_b_proj.weight" {octet.stage = 1 : i64} : tensor<512x128xf32>
  %l2_wo = octet.param "model.layers.2.self_attn.o_proj.weight" {octet.stage = 1 : i64} : tensor<256x256xf32>
  %l2_xn = octet.rmsnorm %l1_out, %l2_ln1 epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %l2_qa = octet.linear %l2_xn, %l2_wqa {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %l2_qan_out = octet.rmsnorm %l2_qa, %l2_qan epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l2_qb = octet.linear %l2_qan_out, %l2_wqb {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<384x128xf32>) -> tensor<2x64x384xf32>
  %l2_q4 = tensor.expand_shape %l2_qb [[0], [1], [2, 3]] output_shape [2, 64, 4, 96] {octet.stage = 1 : i64}
      : tensor<2x64x384xf32> into tensor<2x64x4x96xf32>
  %l2_q_nope = tensor.extract_slice %l2_q4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x64xf32>
  %l2_q_pe = tensor.extract_slice %l2_q4[0, 0, 0, 64] [2, 64, 4, 32] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x32xf32>
  %l2_q_rot = octet.rotary %l2_q_pe theta(10000.0) {octet.stage = 1 : i64}
      : (tensor<2x64x4x32xf32>) -> tensor<2x64x4x32xf32>
  %l2_kva = octet.linear %l2_xn, %l2_wkva {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<160x256xf32>) -> tensor<2x64x160xf32>
  %l2_ckv = tensor.extract_slice %l2_kva[0, 0, 0] [2, 64, 128] [1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x128xf32>
  %l2_k_pe = tensor.extract_slice %l2_kva[0, 0, 128] [2, 64, 32] [1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x32xf32>
  %l2_ckvn = octet.rmsnorm %l2_ckv, %l2_kvan epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l2_kvb = octet.linear %l2_ckvn, %l2_wkvb {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<512x128xf32>) -> tensor<2x64x512xf32>
  %l2_kv4 = tensor.expand_shape %l2_kvb [[0], [1], [2, 3]] output_shape [2, 64, 4, 128] {octet.stage = 1 : i64}
      : tensor<2x64x512xf32> into tensor<2x64x4x128xf32>
  %l2_k_nope = tensor.extract_slice %l2_kv4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l2_v = tensor.extract_slice %l2_kv4[0, 0, 0, 64] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l2_k_pe4 = tensor.expand_shape %l2_k_pe [[0], [1], [2, 3]] output_shape [2, 64, 1, 32] {octet.stage = 1 : i64}
      : tensor<2x64x32xf32> into tensor<2x64x1x32xf32>
  %l2_k_rot = octet.rotary %l2_k_pe4 theta(10000.0) {octet.stage = 1 : i64}
      : (tensor<2x64x1x32xf32>) -> tensor<2x64x1x32xf32>
  %l2_k_rot_h = tensor.concat dim(2) %l2_k_rot, %l2_k_rot, %l2_k_rot, %l2_k_rot {octet.stage = 1 : i64}
      : (tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>) -> tensor<2x64x4x32xf32>
  %l2_q = tensor.concat dim(3) %l2_q_nope, %l2_q_rot {octet.stage = 1 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l2_k = tensor.concat dim(3) %l2_k_nope, %l2_k_rot_h {octet.stage = 1 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l2_o = octet.causal_attention %l2_q, %l2_k, %l2_v scale(0.10206207261596577) {octet.stage = 1 : i64}
      : (tensor<2x64x4x96xf32>, tensor<2x64x4x96xf32>, tensor<2x64x4x64xf32>) -> tensor<2x64x4x64xf32>
  %l2_o3 = tensor.collapse_shape %l2_o [[0], [1], [2, 3]] {octet.stage = 1 : i64}
      : tensor<2x64x4x64xf32> into tensor<2x64x256xf32>
  %l2_attn = octet.linear %l2_o3, %l2_wo {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256x256xf32>) -> tensor<2x64x256xf32>
  %l2_h1 = octet.add %l1_out, %l2_attn {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>
  // MoE: 8 routed experts (top-2 from the best of 2 groups of 4) plus one always-on
  // shared expert.
  %l2_ln2 = octet.param "model.layers.2.post_attention_layernorm.weight" {octet.stage = 1 : i64} : tensor<256xf32>
  %l2_wgate = octet.param "model.layers.2.mlp.gate.weight" {octet.stage = 1 : i64} : tensor<8x256xf32>
  // Selection-only bias, frozen: it gets no gradient through top-k; DeepSeek-V3 adjusts it
  // by the auxiliary-loss-free balancing rule, not the optimizer.
  %l2_gbias = octet.param "model.layers.2.mlp.gate.e_score_correction_bias" frozen {octet.stage = 1 : i64} : tensor<8xf32>
  // Stacked [E, N, K] expert weights are Octet's layout; the HF checkpoint stores
  // model.layers.2.mlp.experts.<e>.<proj>.weight per expert.
  %l2_we_g = octet.param "model.layers.2.mlp.experts.gate_proj.weight" {octet.stage = 1 : i64} : tensor<8x128x256xf32>
  %l2_we_u = octet.param "model.layers.2.mlp.experts.up_proj.weight" {octet.stage = 1 : i64} : tensor<8x128x256xf32>
  %l2_we_d = octet.param "model.layers.2.mlp.experts.down_proj.weight" {octet.stage = 1 : i64} : tensor<8x256x128xf32>
  %l2_hn = octet.rmsnorm %l2_h1, %l2_ln2 epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  // Routing works on a flat token list.
  %l2_tok = tensor.collapse_shape %l2_hn [[0, 1], [2]] {octet.stage = 1 : i64}
      : tensor<2x64x256xf32> into tensor<128x256xf32>
  %l2_wts, %l2_idx = octet.moe_gate %l2_tok, %l2_wgate, %l2_gbias
      top_k(2) groups(2, 1) scaling(1.0) sigmoid norm_topk_prob {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<8x256xf32>, tensor<8xf32>) -> (tensor<128x2xf32>, tensor<128x2xi32>)
  %l2_rows, %l2_sizes = octet.moe_dispatch %l2_tok, %l2_idx experts(8) {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x2xi32>) -> (tensor<256x256xf32>, tensor<8xi32>)
  %l2_eg = octet.grouped_linear %l2_rows, %l2_we_g, %l2_sizes {octet.stage = 1 : i64}
      : (tensor<256x256xf32>, tensor<8x128x256xf32>, tensor<8xi32>) -> tensor<256x128xf32>
  %l2_eu = octet.grouped_linear %l2_rows, %l2_we_u, %l2_sizes {octet.stage = 1 : i64}
      : (tensor<256x256xf32>, tensor<8x128x256xf32>, tensor<8xi32>) -> tensor<256x128xf32>
  %l2_eact = octet.swiglu %l2_eg, %l2_eu {octet.stage = 1 : i64}
      : (tensor<256x128xf32>, tensor<256x128xf32>) -> tensor<256x128xf32>
  %l2_ed = octet.grouped_linear %l2_eact, %l2_we_d, %l2_sizes {octet.stage = 1 : i64}
      : (tensor<256x128xf32>, tensor<8x256x128xf32>, tensor<8xi32>) -> tensor<256x256xf32>
  %l2_routed = octet.moe_combine %l2_ed, %l2_wts, %l2_idx {octet.stage = 1 : i64}
      : (tensor<256x256xf32>, tensor<128x2xf32>, tensor<128x2xi32>) -> tensor<128x256xf32>
  // Shared expert: an ordinary SwiGLU MLP of width moe_intermediate, seen by every token.
  %l2_shared_wg = octet.param "model.layers.2.mlp.shared_experts.gate_proj.weight" {octet.stage = 1 : i64} : tensor<128x256xf32>
  %l2_shared_wu = octet.param "model.layers.2.mlp.shared_experts.up_proj.weight" {octet.stage = 1 : i64} : tensor<128x256xf32>
  %l2_shared_wd = octet.param "model.layers.2.mlp.shared_experts.down_proj.weight" {octet.stage = 1 : i64} : tensor<256x128xf32>
  %l2_shared_g = octet.linear %l2_tok, %l2_shared_wg {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x128xf32>
  %l2_shared_u = octet.linear %l2_tok, %l2_shared_wu {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x128xf32>
  %l2_shared_act = octet.swiglu %l2_shared_g, %l2_shared_u {octet.stage = 1 : i64}
      : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  %l2_shared_y = octet.linear %l2_shared_act, %l2_shared_wd {octet.stage = 1 : i64}
      : (tensor<128x128xf32>, tensor<256x128xf32>) -> tensor<128x256xf32>
  %l2_moe = octet.add %l2_routed, %l2_shared_y {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x256xf32>
  %l2_moe3 = tensor.expand_shape %l2_moe [[0, 1], [2]] output_shape [2, 64, 256] {octet.stage = 1 : i64}
      : tensor<128x256xf32> into tensor<2x64x256xf32>
  %l2_out = octet.add %l2_h1, %l2_moe3 {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>

  // ---- Layer 3 (MoE, stage 1): pre-norm residual block. ----
  // Attention (MLA), as in layer 0.
  %l3_ln1 = octet.param "model.layers.3.input_layernorm.weight" {octet.stage = 1 : i64} : tensor<256xf32>
  %l3_wqa = octet.param "model.layers.3.self_attn.q_a_proj.weight" {octet.stage = 1 : i64} : tensor<128x256xf32>
  %l3_qan = octet.param "model.layers.3.self_attn.q_a_layernorm.weight" {octet.stage = 1 : i64} : tensor<128xf32>
  %l3_wqb = octet.param "model.layers.3.self_attn.q_b_proj.weight" {octet.stage = 1 : i64} : tensor<384x128xf32>
  %l3_wkva = octet.param "model.layers.3.self_attn.kv_a_proj_with_mqa.weight" {octet.stage = 1 : i64} : tensor<160x256xf32>
  %l3_kvan = octet.param "model.layers.3.self_attn.kv_a_layernorm.weight" {octet.stage = 1 : i64} : tensor<128xf32>
  %l3_wkvb = octet.param "model.layers.3.self_attn.kv_b_proj.weight" {octet.stage = 1 : i64} : tensor<512x128xf32>
  %l3_wo = octet.param "model.layers.3.self_attn.o_proj.weight" {octet.stage = 1 : i64} : tensor<256x256xf32>
  %l3_xn = octet.rmsnorm %l2_out, %l3_ln1 epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %l3_qa = octet.linear %l3_xn, %l3_wqa {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<128x256xf32>) -> tensor<2x64x128xf32>
  %l3_qan_out = octet.rmsnorm %l3_qa, %l3_qan epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l3_qb = octet.linear %l3_qan_out, %l3_wqb {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<384x128xf32>) -> tensor<2x64x384xf32>
  %l3_q4 = tensor.expand_shape %l3_qb [[0], [1], [2, 3]] output_shape [2, 64, 4, 96] {octet.stage = 1 : i64}
      : tensor<2x64x384xf32> into tensor<2x64x4x96xf32>
  %l3_q_nope = tensor.extract_slice %l3_q4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x64xf32>
  %l3_q_pe = tensor.extract_slice %l3_q4[0, 0, 0, 64] [2, 64, 4, 32] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x96xf32> to tensor<2x64x4x32xf32>
  %l3_q_rot = octet.rotary %l3_q_pe theta(10000.0) {octet.stage = 1 : i64}
      : (tensor<2x64x4x32xf32>) -> tensor<2x64x4x32xf32>
  %l3_kva = octet.linear %l3_xn, %l3_wkva {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<160x256xf32>) -> tensor<2x64x160xf32>
  %l3_ckv = tensor.extract_slice %l3_kva[0, 0, 0] [2, 64, 128] [1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x128xf32>
  %l3_k_pe = tensor.extract_slice %l3_kva[0, 0, 128] [2, 64, 32] [1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x160xf32> to tensor<2x64x32xf32>
  %l3_ckvn = octet.rmsnorm %l3_ckv, %l3_kvan epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<128xf32>) -> tensor<2x64x128xf32>
  %l3_kvb = octet.linear %l3_ckvn, %l3_wkvb {octet.stage = 1 : i64}
      : (tensor<2x64x128xf32>, tensor<512x128xf32>) -> tensor<2x64x512xf32>
  %l3_kv4 = tensor.expand_shape %l3_kvb [[0], [1], [2, 3]] output_shape [2, 64, 4, 128] {octet.stage = 1 : i64}
      : tensor<2x64x512xf32> into tensor<2x64x4x128xf32>
  %l3_k_nope = tensor.extract_slice %l3_kv4[0, 0, 0, 0] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l3_v = tensor.extract_slice %l3_kv4[0, 0, 0, 64] [2, 64, 4, 64] [1, 1, 1, 1] {octet.stage = 1 : i64}
      : tensor<2x64x4x128xf32> to tensor<2x64x4x64xf32>
  %l3_k_pe4 = tensor.expand_shape %l3_k_pe [[0], [1], [2, 3]] output_shape [2, 64, 1, 32] {octet.stage = 1 : i64}
      : tensor<2x64x32xf32> into tensor<2x64x1x32xf32>
  %l3_k_rot = octet.rotary %l3_k_pe4 theta(10000.0) {octet.stage = 1 : i64}
      : (tensor<2x64x1x32xf32>) -> tensor<2x64x1x32xf32>
  %l3_k_rot_h = tensor.concat dim(2) %l3_k_rot, %l3_k_rot, %l3_k_rot, %l3_k_rot {octet.stage = 1 : i64}
      : (tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>, tensor<2x64x1x32xf32>) -> tensor<2x64x4x32xf32>
  %l3_q = tensor.concat dim(3) %l3_q_nope, %l3_q_rot {octet.stage = 1 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l3_k = tensor.concat dim(3) %l3_k_nope, %l3_k_rot_h {octet.stage = 1 : i64}
      : (tensor<2x64x4x64xf32>, tensor<2x64x4x32xf32>) -> tensor<2x64x4x96xf32>
  %l3_o = octet.causal_attention %l3_q, %l3_k, %l3_v scale(0.10206207261596577) {octet.stage = 1 : i64}
      : (tensor<2x64x4x96xf32>, tensor<2x64x4x96xf32>, tensor<2x64x4x64xf32>) -> tensor<2x64x4x64xf32>
  %l3_o3 = tensor.collapse_shape %l3_o [[0], [1], [2, 3]] {octet.stage = 1 : i64}
      : tensor<2x64x4x64xf32> into tensor<2x64x256xf32>
  %l3_attn = octet.linear %l3_o3, %l3_wo {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256x256xf32>) -> tensor<2x64x256xf32>
  %l3_h1 = octet.add %l2_out, %l3_attn {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>
  // MoE, as in layer 2.
  %l3_ln2 = octet.param "model.layers.3.post_attention_layernorm.weight" {octet.stage = 1 : i64} : tensor<256xf32>
  %l3_wgate = octet.param "model.layers.3.mlp.gate.weight" {octet.stage = 1 : i64} : tensor<8x256xf32>
  %l3_gbias = octet.param "model.layers.3.mlp.gate.e_score_correction_bias" frozen {octet.stage = 1 : i64} : tensor<8xf32>
  %l3_we_g = octet.param "model.layers.3.mlp.experts.gate_proj.weight" {octet.stage = 1 : i64} : tensor<8x128x256xf32>
  %l3_we_u = octet.param "model.layers.3.mlp.experts.up_proj.weight" {octet.stage = 1 : i64} : tensor<8x128x256xf32>
  %l3_we_d = octet.param "model.layers.3.mlp.experts.down_proj.weight" {octet.stage = 1 : i64} : tensor<8x256x128xf32>
  %l3_hn = octet.rmsnorm %l3_h1, %l3_ln2 epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %l3_tok = tensor.collapse_shape %l3_hn [[0, 1], [2]] {octet.stage = 1 : i64}
      : tensor<2x64x256xf32> into tensor<128x256xf32>
  %l3_wts, %l3_idx = octet.moe_gate %l3_tok, %l3_wgate, %l3_gbias
      top_k(2) groups(2, 1) scaling(1.0) sigmoid norm_topk_prob {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<8x256xf32>, tensor<8xf32>) -> (tensor<128x2xf32>, tensor<128x2xi32>)
  %l3_rows, %l3_sizes = octet.moe_dispatch %l3_tok, %l3_idx experts(8) {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x2xi32>) -> (tensor<256x256xf32>, tensor<8xi32>)
  %l3_eg = octet.grouped_linear %l3_rows, %l3_we_g, %l3_sizes {octet.stage = 1 : i64}
      : (tensor<256x256xf32>, tensor<8x128x256xf32>, tensor<8xi32>) -> tensor<256x128xf32>
  %l3_eu = octet.grouped_linear %l3_rows, %l3_we_u, %l3_sizes {octet.stage = 1 : i64}
      : (tensor<256x256xf32>, tensor<8x128x256xf32>, tensor<8xi32>) -> tensor<256x128xf32>
  %l3_eact = octet.swiglu %l3_eg, %l3_eu {octet.stage = 1 : i64}
      : (tensor<256x128xf32>, tensor<256x128xf32>) -> tensor<256x128xf32>
  %l3_ed = octet.grouped_linear %l3_eact, %l3_we_d, %l3_sizes {octet.stage = 1 : i64}
      : (tensor<256x128xf32>, tensor<8x256x128xf32>, tensor<8xi32>) -> tensor<256x256xf32>
  %l3_routed = octet.moe_combine %l3_ed, %l3_wts, %l3_idx {octet.stage = 1 : i64}
      : (tensor<256x256xf32>, tensor<128x2xf32>, tensor<128x2xi32>) -> tensor<128x256xf32>
  %l3_shared_wg = octet.param "model.layers.3.mlp.shared_experts.gate_proj.weight" {octet.stage = 1 : i64} : tensor<128x256xf32>
  %l3_shared_wu = octet.param "model.layers.3.mlp.shared_experts.up_proj.weight" {octet.stage = 1 : i64} : tensor<128x256xf32>
  %l3_shared_wd = octet.param "model.layers.3.mlp.shared_experts.down_proj.weight" {octet.stage = 1 : i64} : tensor<256x128xf32>
  %l3_shared_g = octet.linear %l3_tok, %l3_shared_wg {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x128xf32>
  %l3_shared_u = octet.linear %l3_tok, %l3_shared_wu {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x128xf32>
  %l3_shared_act = octet.swiglu %l3_shared_g, %l3_shared_u {octet.stage = 1 : i64}
      : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  %l3_shared_y = octet.linear %l3_shared_act, %l3_shared_wd {octet.stage = 1 : i64}
      : (tensor<128x128xf32>, tensor<256x128xf32>) -> tensor<128x256xf32>
  %l3_moe = octet.add %l3_routed, %l3_shared_y {octet.stage = 1 : i64}
      : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x256xf32>
  %l3_moe3 = tensor.expand_shape %l3_moe [[0, 1], [2]] output_shape [2, 64, 256] {octet.stage = 1 : i64}
      : tensor<128x256xf32> into tensor<2x64x256xf32>
  %l3_out = octet.add %l3_h1, %l3_moe3 {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>

  // Final norm, untied byte head, mean cross-entropy against %labels (ids shifted by one).
  %norm = octet.param "model.norm.weight" {octet.stage = 1 : i64} : tensor<256xf32>
  %head = octet.param "lm_head.weight" {octet.stage = 1 : i64} : tensor<256x256xf32>
  %hf = octet.rmsnorm %l3_out, %norm epsilon(1.0e-06) {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
  %logits = octet.linear %hf, %head {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<256x256xf32>) -> tensor<2x64x256xf32>
  %loss = octet.cross_entropy %logits, %labels {octet.stage = 1 : i64}
      : (tensor<2x64x256xf32>, tensor<2x64xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}
