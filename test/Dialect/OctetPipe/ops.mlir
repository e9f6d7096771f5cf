// RUN: octet-opt %s | FileCheck %s
// RUN: octet-opt %s --mlir-print-op-generic | octet-opt | FileCheck %s

// 1F1B on two ranks, with the activations and gradients between them.
// CHECK-LABEL: octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(2) {
octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(2) {
  // CHECK: octet_pipe.rank 0 {
  octet_pipe.rank 0 {
    // CHECK-NEXT: octet_pipe.forward stage(0) mb(0)
    octet_pipe.forward stage(0) mb(0)
    // CHECK-NEXT: %[[A0:.*]] = octet_pipe.send activation stage(0) mb(0) to(1)
    %a0 = octet_pipe.send activation stage(0) mb(0) to(1)
    octet_pipe.forward stage(0) mb(1)
    %a1 = octet_pipe.send activation stage(0) mb(1) to(1)
    // CHECK: %[[G0:.*]] = octet_pipe.recv gradient stage(1) mb(0) from(1)
    %g0 = octet_pipe.recv gradient stage(1) mb(0) from(1)
    // CHECK-NEXT: octet_pipe.wait %[[G0]]
    octet_pipe.wait %g0
    // CHECK-NEXT: octet_pipe.backward stage(0) mb(0)
    octet_pipe.backward stage(0) mb(0)
    %g1 = octet_pipe.recv gradient stage(1) mb(1) from(1)
    octet_pipe.wait %g1
    octet_pipe.backward stage(0) mb(1)
    // CHECK: octet_pipe.wait %[[A0]], %{{.*}}
    octet_pipe.wait %a0, %a1
  }
  // CHECK: octet_pipe.rank 1 {
  octet_pipe.rank 1 {
    %x0 = octet_pipe.recv activation stage(0) mb(0) from(0)
    octet_pipe.wait %x0
    octet_pipe.forward stage(1) mb(0)
    octet_pipe.backward stage(1) mb(0)
    %d0 = octet_pipe.send gradient stage(1) mb(0) to(0)
    %x1 = octet_pipe.recv activation stage(0) mb(1) from(0)
    octet_pipe.wait %x1
    octet_pipe.forward stage(1) mb(1)
    octet_pipe.backward stage(1) mb(1)
    %d1 = octet_pipe.send gradient stage(1) mb(1) to(0)
    octet_pipe.wait %d0, %d1
  }
}

// ZB1P splits the backward into I and a deferred W; streams can be named.
// CHECK-LABEL: octet_pipe.schedule "zb1p" ranks(1) stages(1) microbatches(2)
octet_pipe.schedule "zb1p" ranks(1) stages(1) microbatches(2) {
  octet_pipe.rank 0 {
    octet_pipe.forward stage(0) mb(0)
    // CHECK: octet_pipe.backward_input stage(0) mb(0){{$}}
    octet_pipe.backward_input stage(0) mb(0)
    octet_pipe.forward stage(0) mb(1)
    octet_pipe.backward_input stage(0) mb(1)
    // CHECK: octet_pipe.backward_weight stage(0) mb(0) on collective
    octet_pipe.backward_weight stage(0) mb(0) on collective
    // CHECK: octet_pipe.backward_weight stage(0) mb(1){{$}}
    octet_pipe.backward_weight stage(0) mb(1) on compute
  }
}

// DualPipeV: rank r holds stages r and 2N-1-r; F&B overlaps the two.
// CHECK-LABEL: octet_pipe.schedule "dualpipev" ranks(2) stages(4) microbatches(4)
octet_pipe.schedule "dualpipev" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {
    octet_pipe.forward stage(0) mb(0)
    // CHECK: octet_pipe.overlapped forward(stage(0) mb(3)) backward(stage(3) mb(1))
    octet_pipe.overlapped forward(stage(0) mb(3)) backward(stage(3) mb(1))
    // Every send has its receive, in the same order on the channel.
    %r = octet_pipe.recv activation stage(2) mb(1) from(1)
    octet_pipe.wait %r
  }
  octet_pipe.rank 1 {
    // CHECK: octet_pipe.overlapped forward(stage(2) mb(1)) backward(stage(1) mb(0)) on p2p
    octet_pipe.overlapped forward(stage(2) mb(1)) backward(stage(1) mb(0)) on p2p
    // Stage 2 (rank 1) feeds stage 3 (rank 0) on the way back up the V.
    %t = octet_pipe.send activation stage(2) mb(1) to(0) on collective
    octet_pipe.wait %t
  }
}

// DualPipe: two model copies; copy 1's stage s is global stage N+s and each
// copy counts its C/2 micro-batches from 0.
// CHECK-LABEL: octet_pipe.schedule "dualpipe" ranks(2) stages(4) microbatches(4)
octet_pipe.schedule "dualpipe" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {
    // CHECK: octet_pipe.forward stage(3) mb(1)
    octet_pipe.forward stage(3) mb(1)
  }
  octet_pipe.rank 1 {
    octet_pipe.forward stage(2) mb(0)
  }
}

// CHECK-LABEL: octet_pipe.schedule "interleaved-1f1b" ranks(2) stages(4) microbatches(3)
octet_pipe.schedule "interleaved-1f1b" ranks(2) stages(4) microbatches(3) {
  octet_pipe.rank 0 {
    octet_pipe.forward stage(2) mb(2)
  }
  octet_pipe.rank 1 {
    octet_pipe.forward stage(3) mb(0)
  }
}

// CHECK-LABEL: octet_pipe.schedule "custom" ranks(1) stages(3) microbatches(1)
octet_pipe.schedule "custom" ranks(1) stages(3) microbatches(1) {
  octet_pipe.rank 0 {
    octet_pipe.forward stage(0) mb(0)
    octet_pipe.forward stage(1) mb(0)
    octet_pipe.forward stage(2) mb(0)
  }
}

// Collectives on tensors: MoE dispatch in FP8 with scales, combine in BF16,
// data-parallel reductions.
// CHECK-LABEL: func.func @collectives
func.func @collectives(%rows: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                       %splits: tensor<4xi32>, %out: tensor<300x512xbf16>,
                       %grad: tensor<1024x64xf32>)
    -> (!octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>, tensor<256x512xbf16>,
        tensor<1024x64xf32>, tensor<256x64xf32>) {
  // CHECK: %[[A:.*]] = octet_pipe.all_to_all %{{.*}}, %{{.*}} dispatch group(ep, 4) : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>, tensor<4xi32>) -> !octet_pipe.async<!octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>>
  %a = octet_pipe.all_to_all %rows, %splits dispatch group(ep, 4)
      : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>, tensor<4xi32>)
      -> !octet_pipe.async<!octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>>
  // CHECK: octet_pipe.all_to_all %{{.*}} combine group(ep, 4) on p2p : (tensor<300x512xbf16>) -> !octet_pipe.async<tensor<256x512xbf16>>
  %c = octet_pipe.all_to_all %out combine group(ep, 4) on p2p
      : (tensor<300x512xbf16>) -> !octet_pipe.async<tensor<256x512xbf16>>
  // CHECK: octet_pipe.all_reduce %{{.*}} sum group(dp, 8) : (tensor<1024x64xf32>) -> !octet_pipe.async<tensor<1024x64xf32>>
  %r = octet_pipe.all_reduce %grad sum group(dp, 8)
      : (tensor<1024x64xf32>) -> !octet_pipe.async<tensor<1024x64xf32>>
  // CHECK: octet_pipe.reduce_scatter %{{.*}} avg group(dp, 4) : (tensor<1024x64xf32>) -> !octet_pipe.async<tensor<256x64xf32>>
  %s = octet_pipe.reduce_scatter %grad avg group(dp, 4)
      : (tensor<1024x64xf32>) -> !octet_pipe.async<tensor<256x64xf32>>
  // CHECK: octet_pipe.await %[[A]] : !octet_pipe.async<!octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>> -> !octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>
  %a1 = octet_pipe.await %a : !octet_pipe.async<!octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>>
      -> !octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>
  %c1 = octet_pipe.await %c : !octet_pipe.async<tensor<256x512xbf16>> -> tensor<256x512xbf16>
  %r1 = octet_pipe.await %r : !octet_pipe.async<tensor<1024x64xf32>> -> tensor<1024x64xf32>
  %s1 = octet_pipe.await %s : !octet_pipe.async<tensor<256x64xf32>> -> tensor<256x64xf32>
  // CHECK: octet_pipe.all_reduce %{{.*}} max group(pp, 2) on p2p
  %m = octet_pipe.all_reduce %grad max group(pp, 2) on p2p
      : (tensor<1024x64xf32>) -> !octet_pipe.async<tensor<1024x64xf32>>
  %m1 = octet_pipe.await %m : !octet_pipe.async<tensor<1024x64xf32>> -> tensor<1024x64xf32>
  return %a1, %c1, %r1, %s1 : !octet_tq.qtensor<?x512xf8E4M3FN, tile_1x128>, tensor<256x512xbf16>,
                              tensor<1024x64xf32>, tensor<256x64xf32>
}

// CHECK-LABEL: func.func @types
// CHECK-SAME: !octet_pipe.token
func.func @types(%t: !octet_pipe.token) { return }

// Expert parallelism: a layer's rows to the experts' owners and back, the
// local experts' weights and their gradient in the whole.
// CHECK-LABEL: func.func @experts
func.func @experts(%rows: tensor<256x512xf32>, %sizes: tensor<8xi32>,
                   %w: tensor<8x64x512xf32>, %dwl: tensor<4x64x512xf32>,
                   %brows: tensor<256x64xbf16>)
    -> (tensor<512x64xf32>, tensor<256x512xf32>, tensor<8x64x512xf32>,
        tensor<512x64xbf16>) {
  // CHECK: %[[R:.*]], %[[S:.*]], %[[L:.*]] = octet_pipe.expert_dispatch %{{.*}}, %{{.*}} ranks(2) wire(e4m3) : (tensor<256x512xf32>, tensor<8xi32>) -> (tensor<512x512xf32>, tensor<4xi32>, tensor<2x4xi32>)
  %r, %s, %l = octet_pipe.expert_dispatch %rows, %sizes ranks(2) wire(e4m3)
      : (tensor<256x512xf32>, tensor<8xi32>)
      -> (tensor<512x512xf32>, tensor<4xi32>, tensor<2x4xi32>)
  // CHECK: octet_pipe.local_experts %{{.*}} ranks(2) : tensor<8x64x512xf32> -> tensor<4x64x512xf32>
  %wl = octet_pipe.local_experts %w ranks(2) : tensor<8x64x512xf32> -> tensor<4x64x512xf32>
  %y = octet.grouped_linear %r, %wl, %s
      : (tensor<512x512xf32>, tensor<4x64x512xf32>, tensor<4xi32>) -> tensor<512x64xf32>
  // CHECK: octet_pipe.expert_combine %[[R]], %[[L]] ranks(2) wire(f32) : (tensor<512x512xf32>, tensor<2x4xi32>) -> tensor<256x512xf32>
  %back = octet_pipe.expert_combine %r, %l ranks(2) wire(f32)
      : (tensor<512x512xf32>, tensor<2x4xi32>) -> tensor<256x512xf32>
  // CHECK: octet_pipe.local_experts_grad %{{.*}} ranks(2) : tensor<4x64x512xf32> -> tensor<8x64x512xf32>
  %dw = octet_pipe.local_experts_grad %dwl ranks(2) : tensor<4x64x512xf32> -> tensor<8x64x512xf32>
  // CHECK: octet_pipe.expert_dispatch %{{.*}}, %{{.*}} ranks(2) wire(bf16) : (tensor<256x64xbf16>, tensor<8xi32>)
  %br, %bs, %bl = octet_pipe.expert_dispatch %brows, %sizes ranks(2) wire(bf16)
      : (tensor<256x64xbf16>, tensor<8xi32>)
      -> (tensor<512x64xbf16>, tensor<4xi32>, tensor<2x4xi32>)
  return %y, %back, %dw, %br
      : tensor<512x64xf32>, tensor<256x512xf32>, tensor<8x64x512xf32>,
        tensor<512x64xbf16>
}
