// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-insert-expert-comm=ranks=2 | FileCheck %s
// RUN: octet-opt %s -split-input-file --octet-insert-expert-comm=ranks=1 | FileCheck %s --check-prefix=ONE
// RUN: not octet-opt %s -split-input-file --octet-insert-expert-comm=ranks=0 2>&1 | FileCheck %s --check-prefix=ZERO

// ONE-LABEL: func.func @layer
// ONE-NOT: octet_pipe
// ZERO: error: octet-insert-expert-comm: ranks must be at least 1, got 0

// A layer forward and backward, as autodiff writes it. The routed rows go
// to the owners in FP8: only the FP8 grouped linears with 1x128 tiles and
// power-of-two scales (forward and weight gradient) read them. The owners
// run the grouped linears, SwiGLU and the sum of the input gradients on
// their rows (2 x 64) with their 2 of the 4 experts; the results return in
// BF16 (only the BF16 combine and its gradient read them), the combine's
// gradient (which it rounds to BF16) reaches the owners in BF16, the input
// gradient returns in FP32, and the weight gradients go into the whole
// parameter's.
// CHECK-LABEL: func.func @layer
// CHECK: %[[PWG:.*]] = octet.param "wg"
// CHECK: %[[PWU:.*]] = octet.param "wu"
// CHECK: %[[PWD:.*]] = octet.param "wd"
// CHECK: %[[ROWS:[^ ,]+]], %[[SIZES:[^ ]+]] = octet.moe_dispatch
// CHECK-NEXT: %[[RECV:[^ ,]+]], %[[LOCAL:[^ ,]+]], %[[LAYOUT:[^ ]+]] = octet_pipe.expert_dispatch %[[ROWS]], %[[SIZES]] ranks(2) wire(e4m3) {octet.stage = 0 : i64} : (tensor<64x256xf32>, tensor<4xi32>) -> (tensor<128x256xf32>, tensor<2xi32>, tensor<2x2xi32>)
// CHECK-NEXT: %[[WG:.*]] = octet_pipe.local_experts %[[PWG]] ranks(2) {octet.stage = 0 : i64} : tensor<4x128x256xf32> -> tensor<2x128x256xf32>
// CHECK-NEXT: %[[G:.*]] = octet.grouped_linear %[[RECV]], %[[WG]], %[[LOCAL]] precision<e4m3, {{.*}}scale = pow2{{.*}}> {octet.stage = 0 : i64} : (tensor<128x256xf32>, tensor<2x128x256xf32>, tensor<2xi32>) -> tensor<128x128xf32>
// CHECK-NEXT: %[[WU:.*]] = octet_pipe.local_experts %[[PWU]] ranks(2)
// CHECK-NEXT: %[[U:.*]] = octet.grouped_linear %[[RECV]], %[[WU]], %[[LOCAL]]
// CHECK-NEXT: %[[ACT:.*]] = octet.swiglu %[[G]], %[[U]] {{.*}}: (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
// CHECK-NEXT: %[[WD:.*]] = octet_pipe.local_experts %[[PWD]] ranks(2)
// CHECK-NEXT: %[[D:.*]] = octet.grouped_linear %[[ACT]], %[[WD]], %[[LOCAL]] {{.*}} -> tensor<128x256xf32>
// CHECK-NEXT: %[[BACK:.*]] = octet_pipe.expert_combine %[[D]], %[[LAYOUT]] ranks(2) wire(bf16) {octet.stage = 0 : i64} : (tensor<128x256xf32>, tensor<2x2xi32>) -> tensor<64x256xf32>
// CHECK-NEXT: %[[Y:.*]] = octet.moe_combine %[[BACK]], %arg2, %arg1
// CHECK-NEXT: %[[DROWS:[^ ,]+]], %{{.*}} = octet.moe_combine_grad %[[BACK]], %arg2, %arg1, %arg3
// CHECK-NEXT: %[[DRECV:[^ ,]+]], %{{[^ ,]+}}, %{{[^ ]+}} = octet_pipe.expert_dispatch %[[DROWS]], %[[SIZES]] ranks(2) wire(bf16)
// CHECK-NEXT: %[[WD2:.*]] = octet_pipe.local_experts %[[PWD]] ranks(2)
// CHECK-NEXT: %[[DACT:.*]] = octet.grouped_linear_dgrad %[[DRECV]], %[[WD2]], %[[LOCAL]] {{.*}} -> tensor<128x128xf32>
// CHECK-NEXT: %[[DWD:.*]] = octet.grouped_linear_wgrad %[[DRECV]], %[[ACT]], %[[LOCAL]] {{.*}} -> tensor<2x256x128xf32>
// CHECK-NEXT: %[[DWDALL:.*]] = octet_pipe.local_experts_grad %[[DWD]] ranks(2) {octet.stage = 0 : i64} : tensor<2x256x128xf32> -> tensor<4x256x128xf32>
// CHECK-NEXT: octet.grad_accumulate %[[DWDALL]] into "wd"
// CHECK-NEXT: %[[DG:[^ ,]+]], %[[DU:[^ ]+]] = octet.swiglu_grad %[[G]], %[[U]], %[[DACT]] {{.*}} -> (tensor<128x128xf32>, tensor<128x128xf32>)
// CHECK-NEXT: %[[WU2:.*]] = octet_pipe.local_experts %[[PWU]]
// CHECK-NEXT: %[[DXU:.*]] = octet.grouped_linear_dgrad %[[DU]], %[[WU2]], %[[LOCAL]]
// CHECK-NEXT: %[[DWU:.*]] = octet.grouped_linear_wgrad %[[DU]], %[[RECV]], %[[LOCAL]]
// CHECK-NEXT: octet_pipe.local_experts_grad %[[DWU]]
// CHECK-NEXT: octet.grad_accumulate {{.*}} into "wu"
// CHECK-NEXT: %[[WG2:.*]] = octet_pipe.local_experts %[[PWG]]
// CHECK-NEXT: %[[DXG:.*]] = octet.grouped_linear_dgrad %[[DG]], %[[WG2]], %[[LOCAL]]
// CHECK-NEXT: %[[DX:.*]] = octet.add %[[DXU]], %[[DXG]] {octet.stage = 0 : i64} : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x256xf32>
// CHECK-NEXT: %[[DWG:.*]] = octet.grouped_linear_wgrad %[[DG]], %[[RECV]], %[[LOCAL]]
// CHECK-NEXT: octet_pipe.local_experts_grad %[[DWG]]
// CHECK-NEXT: octet.grad_accumulate {{.*}} into "wg"
// CHECK-NEXT: %[[DXBACK:.*]] = octet_pipe.expert_combine %[[DX]], %[[LAYOUT]] ranks(2) wire(f32) {{.*}} -> tensor<64x256xf32>
// CHECK-NEXT: octet.moe_dispatch_grad %[[DXBACK]], %arg1
func.func @layer(%x: tensor<32x256xf32>, %idx: tensor<32x2xi32>,
                 %wts: tensor<32x2xf32>, %dy: tensor<32x256xf32>)
    -> (tensor<32x256xf32>, tensor<32x256xf32>) {
  %wg = octet.param "wg" {octet.stage = 0 : i64} : tensor<4x128x256xf32>
  %wu = octet.param "wu" {octet.stage = 0 : i64} : tensor<4x128x256xf32>
  %wd = octet.param "wd" {octet.stage = 0 : i64} : tensor<4x256x128xf32>
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(4) {octet.stage = 0 : i64}
      : (tensor<32x256xf32>, tensor<32x2xi32>) -> (tensor<64x256xf32>, tensor<4xi32>)
  %g = octet.grouped_linear %rows, %wg, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<64x128xf32>
  %u = octet.grouped_linear %rows, %wu, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<64x128xf32>
  %act = octet.swiglu %g, %u {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<64x128xf32>) -> tensor<64x128xf32>
  %d = octet.grouped_linear %act, %wd, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<4x256x128xf32>, tensor<4xi32>) -> tensor<64x256xf32>
  %y = octet.moe_combine %d, %wts, %idx precision<bf16, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<32x2xf32>, tensor<32x2xi32>) -> tensor<32x256xf32>
  %drows, %dwts = octet.moe_combine_grad %d, %wts, %idx, %dy precision<bf16, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<32x2xf32>, tensor<32x2xi32>, tensor<32x256xf32>)
      -> (tensor<64x256xf32>, tensor<32x2xf32>)
  %dact = octet.grouped_linear_dgrad %drows, %wd, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<4x256x128xf32>, tensor<4xi32>) -> tensor<64x128xf32>
  %dwd = octet.grouped_linear_wgrad %drows, %act, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<64x128xf32>, tensor<4xi32>) -> tensor<4x256x128xf32>
  octet.grad_accumulate %dwd into "wd" {octet.stage = 0 : i64} : tensor<4x256x128xf32>
  %dg, %du = octet.swiglu_grad %g, %u, %dact {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<64x128xf32>, tensor<64x128xf32>) -> (tensor<64x128xf32>, tensor<64x128xf32>)
  %dxu = octet.grouped_linear_dgrad %du, %wu, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<64x256xf32>
  %dwu = octet.grouped_linear_wgrad %du, %rows, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<64x256xf32>, tensor<4xi32>) -> tensor<4x128x256xf32>
  octet.grad_accumulate %dwu into "wu" {octet.stage = 0 : i64} : tensor<4x128x256xf32>
  %dxg = octet.grouped_linear_dgrad %dg, %wg, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<4x128x256xf32>, tensor<4xi32>) -> tensor<64x256xf32>
  %dx = octet.add %dxu, %dxg {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<64x256xf32>) -> tensor<64x256xf32>
  %dwg = octet.grouped_linear_wgrad %dg, %rows, %sizes precision<e4m3, lhs = tile_1x128, rhs = block_128x128, scale = pow2, promotion = 128, out = f32> {octet.stage = 0 : i64}
      : (tensor<64x128xf32>, tensor<64x256xf32>, tensor<4xi32>) -> tensor<4x128x256xf32>
  octet.grad_accumulate %dwg into "wg" {octet.stage = 0 : i64} : tensor<4x128x256xf32>
  %dtok = octet.moe_dispatch_grad %dx, %idx experts(4) {octet.stage = 0 : i64}
      : (tensor<64x256xf32>, tensor<32x2xi32>) -> tensor<32x256xf32>
  return %y, %dtok : tensor<32x256xf32>, tensor<32x256xf32>
}

// -----

// Rows that a high-precision grouped linear reads travel in FP32, and BF16
// rows in BF16, both ways.
// CHECK-LABEL: func.func @wires
// CHECK: octet_pipe.expert_dispatch %{{.*}} ranks(2) wire(f32)
// CHECK: octet_pipe.expert_combine %{{.*}} ranks(2) wire(f32)
// CHECK: octet_pipe.expert_dispatch %{{.*}} ranks(2) wire(bf16)
// CHECK: octet_pipe.expert_combine %{{.*}} ranks(2) wire(bf16)
func.func @wires(%x: tensor<16x128xf32>, %idx: tensor<16x1xi32>,
                 %w: tensor<2x128x128xf32>, %xb: tensor<16x128xbf16>,
                 %wb: tensor<2x128x128xbf16>)
    -> (tensor<16x128xf32>, tensor<16x128xbf16>) {
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(2)
      : (tensor<16x128xf32>, tensor<16x1xi32>) -> (tensor<16x128xf32>, tensor<2xi32>)
  %h = octet.grouped_linear %rows, %w, %sizes precision<bf16, out = f32>
      : (tensor<16x128xf32>, tensor<2x128x128xf32>, tensor<2xi32>) -> tensor<16x128xf32>
  %ones = arith.constant dense<1.0> : tensor<16x1xf32>
  %y = octet.moe_combine %h, %ones, %idx
      : (tensor<16x128xf32>, tensor<16x1xf32>, tensor<16x1xi32>) -> tensor<16x128xf32>
  %brows, %bsizes = octet.moe_dispatch %xb, %idx experts(2)
      : (tensor<16x128xbf16>, tensor<16x1xi32>) -> (tensor<16x128xbf16>, tensor<2xi32>)
  %hb = octet.grouped_linear %brows, %wb, %bsizes
      : (tensor<16x128xbf16>, tensor<2x128x128xbf16>, tensor<2xi32>) -> tensor<16x128xbf16>
  %onesb = arith.constant dense<1.0> : tensor<16x1xf32>
  %yb = octet.moe_combine %hb, %onesb, %idx
      : (tensor<16x128xbf16>, tensor<16x1xf32>, tensor<16x1xi32>) -> tensor<16x128xbf16>
  return %y, %yb : tensor<16x128xf32>, tensor<16x128xbf16>
}

// -----

// Experts that do not split over the ranks.
func.func @uneven(%x: tensor<8x16xf32>, %idx: tensor<8x1xi32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'octet.moe_dispatch' op routes to 3 experts, which do not split over 2 expert-parallel ranks}}
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(3)
      : (tensor<8x16xf32>, tensor<8x1xi32>) -> (tensor<8x16xf32>, tensor<3xi32>)
  return %rows : tensor<8x16xf32>
}

// -----

// An op the owners cannot run reads the routed rows.
func.func @unplaceable(%x: tensor<8x16xf32>, %idx: tensor<8x1xi32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(2)
      : (tensor<8x16xf32>, tensor<8x1xi32>) -> (tensor<8x16xf32>, tensor<2xi32>)
  // expected-error @+1 {{'octet.rmsnorm' op reads the expert rows of the MoE layer routed at}}
  %n = octet.rmsnorm %rows, %g epsilon(1.0e-06)
      : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
  return %n : tensor<8x16xf32>
}

// -----

// Rows of another shape beside the layer's rows on the owners' side.
func.func @stranger(%x: tensor<8x16xf32>, %idx: tensor<8x1xi32>, %other: tensor<?x16xf32>) -> tensor<8x16xf32> {
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(2)
      : (tensor<8x16xf32>, tensor<8x1xi32>) -> (tensor<8x16xf32>, tensor<2xi32>)
  // expected-error @+1 {{'octet.swiglu' op reads 'tensor<?x16xf32>' beside the expert rows of the MoE layer routed at}}
  %s = octet.swiglu %rows, %other : (tensor<8x16xf32>, tensor<?x16xf32>) -> tensor<8x16xf32>
  return %s : tensor<8x16xf32>
}

// -----

// Grouped by other sizes than the layer's dispatch.
func.func @sizes(%x: tensor<8x16xf32>, %idx: tensor<8x1xi32>, %w: tensor<2x16x16xf32>, %s2: tensor<2xi32>) -> tensor<8x16xf32> {
  %rows, %sizes = octet.moe_dispatch %x, %idx experts(2)
      : (tensor<8x16xf32>, tensor<8x1xi32>) -> (tensor<8x16xf32>, tensor<2xi32>)
  // expected-error @+1 {{'octet.grouped_linear' op groups the MoE layer's rows by other sizes than its dispatch's}}
  %h = octet.grouped_linear %rows, %w, %s2
      : (tensor<8x16xf32>, tensor<2x16x16xf32>, tensor<2xi32>) -> tensor<8x16xf32>
  return %h : tensor<8x16xf32>
}
