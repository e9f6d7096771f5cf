// RUN: octet-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// octet_pipe.schedule
//===----------------------------------------------------------------------===//

// expected-error @+1 {{unknown schedule kind 'gpipe'; expected 1f1b, zb1p, interleaved-1f1b, dualpipe, dualpipev or custom}}
octet_pipe.schedule "gpipe" ranks(1) stages(1) microbatches(1) {
  octet_pipe.rank 0 {}
}

// -----

// expected-error @+1 {{ranks, stages and micro-batches must be positive, got (1, 1, 0)}}
octet_pipe.schedule "1f1b" ranks(1) stages(1) microbatches(0) {
  octet_pipe.rank 0 {}
}

// -----

// expected-error @+1 {{'zb1p' has one stage per rank: 4 stages on 2 ranks}}
octet_pipe.schedule "zb1p" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
}

// -----

// expected-error @+1 {{'interleaved-1f1b' needs a whole number of stages per rank: 5 stages on 2 ranks}}
octet_pipe.schedule "interleaved-1f1b" ranks(2) stages(5) microbatches(4) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
}

// -----

// expected-error @+1 {{'dualpipe' needs an even number of ranks, got 3}}
octet_pipe.schedule "dualpipe" ranks(3) stages(6) microbatches(6) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
  octet_pipe.rank 2 {}
}

// -----

// expected-error @+1 {{'dualpipe' needs an even number of micro-batches (half enter from each end), got 5}}
octet_pipe.schedule "dualpipe" ranks(2) stages(4) microbatches(5) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
}

// -----

// expected-error @+1 {{'dualpipev' has two stages per rank: expected 4 stages, got 2}}
octet_pipe.schedule "dualpipev" ranks(2) stages(2) microbatches(4) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
}

// -----

// expected-error @+1 {{'dualpipev' needs at least 4 micro-batches (2 x ranks), got 3}}
octet_pipe.schedule "dualpipev" ranks(2) stages(4) microbatches(3) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
}

// -----

// expected-error @+1 {{'dualpipe' needs at least 8 micro-batches (2 x ranks), got 6}}
octet_pipe.schedule "dualpipe" ranks(4) stages(8) microbatches(6) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {}
  octet_pipe.rank 2 {}
  octet_pipe.rank 3 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(1) stages(1) microbatches(1) {
  octet_pipe.rank 0 {}
  // expected-error @+1 {{'octet_pipe.forward' op expects parent op 'octet_pipe.rank'}}
  octet_pipe.forward stage(0) mb(0)
}

// -----

octet_pipe.schedule "1f1b" ranks(1) stages(1) microbatches(1) {
  // expected-error @+1 {{'arith.constant' op is not allowed directly in an octet_pipe.schedule; expected octet_pipe.rank}}
  %c = arith.constant 0 : i32
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {}
  // expected-error @+1 {{rank 0 appears twice in the schedule}}
  octet_pipe.rank 0 {}
}

// -----

// expected-error @+1 {{lists 1 of its 2 ranks; every rank needs an octet_pipe.rank}}
octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(1) stages(1) microbatches(1) {
  // expected-error @+1 {{rank 1 is out of range: the schedule has 1 ranks}}
  octet_pipe.rank 1 {}
}

// -----

func.func @rank_outside() {
  // expected-error @+1 {{'octet_pipe.rank' op expects parent op 'octet_pipe.schedule'}}
  octet_pipe.rank 0 {}
  return
}

// -----

//===----------------------------------------------------------------------===//
// Actions
//===----------------------------------------------------------------------===//

octet_pipe.schedule "custom" ranks(1) stages(2) microbatches(2) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{stage 2 is out of range: the schedule has 2 stages}}
    octet_pipe.forward stage(2) mb(0)
  }
}

// -----

octet_pipe.schedule "dualpipe" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{micro-batch 2 is out of range: each stage of this 'dualpipe' schedule runs 2 micro-batches}}
    octet_pipe.backward stage(0) mb(2)
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "dualpipev" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{rank 0 does not hold stage 1 under 'dualpipev' (it holds stage 0 and 3)}}
    octet_pipe.backward_input stage(1) mb(0)
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {
    // expected-error @+1 {{rank 1 does not hold stage 0 under '1f1b' (it holds stage 1)}}
    octet_pipe.backward_weight stage(0) mb(0)
  }
}

// -----

octet_pipe.schedule "dualpipev" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{overlaps a forward and a backward of the same stage 3; F&B pairs two different local stages}}
    octet_pipe.overlapped forward(stage(3) mb(1)) backward(stage(3) mb(0))
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "dualpipev" ranks(2) stages(4) microbatches(4) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{rank 0 does not hold stage 2 under 'dualpipev'}}
    octet_pipe.overlapped forward(stage(0) mb(1)) backward(stage(2) mb(0))
  }
  octet_pipe.rank 1 {}
}

// -----

//===----------------------------------------------------------------------===//
// send / recv and the token discipline
//===----------------------------------------------------------------------===//

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{peer rank 2 is out of range: the schedule has 2 ranks}}
    %t = octet_pipe.send activation stage(0) mb(0) to(2)
    octet_pipe.wait %t
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{rank 0 cannot send to itself}}
    %t = octet_pipe.send activation stage(0) mb(0) to(0)
    octet_pipe.wait %t
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {
    // expected-error @+1 {{rank 1 cannot receive from itself}}
    %t = octet_pipe.recv activation stage(0) mb(0) from(1)
    octet_pipe.wait %t
  }
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {
    // The sender produces what it sends: rank 0 does not compute stage 1.
    // expected-error @+1 {{rank 0 does not hold stage 1 under '1f1b'}}
    %t = octet_pipe.send gradient stage(1) mb(0) to(1)
    octet_pipe.wait %t
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {
    // A receive names the peer that produced the data.
    // expected-error @+1 {{rank 0 does not hold stage 1 under '1f1b'}}
    %t = octet_pipe.recv activation stage(1) mb(0) from(0)
    octet_pipe.wait %t
  }
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{micro-batch 1 is out of range: each stage of this '1f1b' schedule runs 1 micro-batches}}
    %t = octet_pipe.send activation stage(0) mb(1) to(1)
    octet_pipe.wait %t
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {
    // expected-error @+1 {{result is never waited on: the transfer would still be in flight when its buffers are reused}}
    %t = octet_pipe.send activation stage(0) mb(0) to(1)
  }
  octet_pipe.rank 1 {}
}

// -----

octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(1) {
  octet_pipe.rank 0 {}
  octet_pipe.rank 1 {
    // expected-error @+1 {{result is waited on 2 times; wait exactly once}}
    %t = octet_pipe.recv activation stage(0) mb(0) from(0)
    octet_pipe.wait %t
    octet_pipe.wait %t
  }
}

// -----

func.func @wait_same_twice(%t: !octet_pipe.token) {
  // expected-error @+1 {{lists the same token twice}}
  octet_pipe.wait %t, %t
  return
}

// -----

func.func @wait_nothing() {
  // expected-error @+1 {{needs at least one token}}
  octet_pipe.wait
  return
}

// -----

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

func.func @returned_unawaited(%g: tensor<8x4xf32>) -> !octet_pipe.async<tensor<8x4xf32>> {
  // expected-error @+1 {{result may only be used by octet_pipe.wait or octet_pipe.await, but is used by 'func.return'}}
  %a = octet_pipe.all_reduce %g sum group(dp, 2) : (tensor<8x4xf32>) -> !octet_pipe.async<tensor<8x4xf32>>
  return %a : !octet_pipe.async<tensor<8x4xf32>>
}

// -----

func.func @awaited_elsewhere(%g: tensor<8x4xf32>, %c: i1) -> tensor<8x4xf32> {
  // expected-error @+1 {{result is waited on in another block; wait in the block that starts the transfer}}
  %a = octet_pipe.all_reduce %g sum group(dp, 2) : (tensor<8x4xf32>) -> !octet_pipe.async<tensor<8x4xf32>>
  cf.cond_br %c, ^bb1, ^bb2
^bb1:
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<8x4xf32>> -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
^bb2:
  return %g : tensor<8x4xf32>
}

// -----

func.func @await_type(%g: tensor<8x4xf32>) {
  %a = octet_pipe.all_reduce %g sum group(dp, 2) : (tensor<8x4xf32>) -> !octet_pipe.async<tensor<8x4xf32>>
  // expected-error @+1 {{result type 'tensor<4x8xf32>' differs from the awaited value's type 'tensor<8x4xf32>'}}
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<8x4xf32>> -> tensor<4x8xf32>
  return
}

// -----

func.func @group_size(%g: tensor<8x4xf32>) {
  // expected-error @+1 {{group size must be positive, got 0}}
  %a = octet_pipe.all_reduce %g sum group(dp, 0) : (tensor<8x4xf32>) -> !octet_pipe.async<tensor<8x4xf32>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<8x4xf32>> -> tensor<8x4xf32>
  return
}

// -----

func.func @all_reduce_type(%g: tensor<8x4xf32>) {
  // expected-error @+1 {{result '!octet_pipe.async<tensor<8x4xbf16>>' must be the async form of the input type 'tensor<8x4xf32>'}}
  %a = octet_pipe.all_reduce %g sum group(dp, 2) : (tensor<8x4xf32>) -> !octet_pipe.async<tensor<8x4xbf16>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<8x4xbf16>> -> tensor<8x4xbf16>
  return
}

// -----

func.func @a2a_splits(%x: tensor<8x4xbf16>, %s: tensor<2xi32>) {
  // expected-error @+1 {{split_sizes has shape [2], expected one entry per rank of the group [4]}}
  %a = octet_pipe.all_to_all %x, %s dispatch group(ep, 4) : (tensor<8x4xbf16>, tensor<2xi32>) -> !octet_pipe.async<tensor<?x4xbf16>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<?x4xbf16>> -> tensor<?x4xbf16>
  return
}

// -----

func.func @a2a_group(%x: tensor<8x4xbf16>) {
  // expected-error @+1 {{group size must be positive, got -1}}
  %a = octet_pipe.all_to_all %x combine group(ep, -1) : (tensor<8x4xbf16>) -> !octet_pipe.async<tensor<?x4xbf16>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<?x4xbf16>> -> tensor<?x4xbf16>
  return
}

// -----

func.func @a2a_columns(%x: tensor<8x4xbf16>) {
  // expected-error @+1 {{result '!octet_pipe.async<tensor<8x8xbf16>>' does not match the input 'tensor<8x4xbf16>' (only dimension 0 may change, to ?)}}
  %a = octet_pipe.all_to_all %x combine group(ep, 2) : (tensor<8x4xbf16>) -> !octet_pipe.async<tensor<8x8xbf16>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<8x8xbf16>> -> tensor<8x8xbf16>
  return
}

// -----

func.func @a2a_kind(%x: !octet_tq.qtensor<8x128xf8E4M3FN, tile_1x128>) {
  // expected-error @+1 {{does not match the input}}
  %a = octet_pipe.all_to_all %x dispatch group(ep, 2) : (!octet_tq.qtensor<8x128xf8E4M3FN, tile_1x128>) -> !octet_pipe.async<tensor<?x128xbf16>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<?x128xbf16>> -> tensor<?x128xbf16>
  return
}

// -----

func.func @a2a_scales(%x: !octet_tq.qtensor<8x128xf8E4M3FN, tile_1x128>) {
  // FP8 rows travel with their own scales: the granularity cannot change.
  // expected-error @+1 {{does not match the input}}
  %a = octet_pipe.all_to_all %x dispatch group(ep, 2) : (!octet_tq.qtensor<8x128xf8E4M3FN, tile_1x128>) -> !octet_pipe.async<!octet_tq.qtensor<?x128xf8E4M3FN, per_tensor>>
  %r = octet_pipe.await %a : !octet_pipe.async<!octet_tq.qtensor<?x128xf8E4M3FN, per_tensor>> -> !octet_tq.qtensor<?x128xf8E4M3FN, per_tensor>
  return
}

// -----

func.func @a2a_element(%x: tensor<8x4xbf16>) {
  // expected-error @+1 {{does not match the input}}
  %a = octet_pipe.all_to_all %x combine group(ep, 2) : (tensor<8x4xbf16>) -> !octet_pipe.async<tensor<?x4xf32>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<?x4xf32>> -> tensor<?x4xf32>
  return
}

// -----

func.func @rs_scalar(%g: tensor<f32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %a = octet_pipe.reduce_scatter %g sum group(dp, 2) : (tensor<f32>) -> !octet_pipe.async<tensor<f32>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<f32>> -> tensor<f32>
  return
}

// -----

func.func @rs_split(%g: tensor<10x4xf32>) {
  // expected-error @+1 {{dimension 0 (10) does not split into 4 equal shards}}
  %a = octet_pipe.reduce_scatter %g sum group(dp, 4) : (tensor<10x4xf32>) -> !octet_pipe.async<tensor<2x4xf32>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<2x4xf32>> -> tensor<2x4xf32>
  return
}

// -----

func.func @rs_shard(%g: tensor<8x4xf32>) {
  // expected-error @+1 {{result '!octet_pipe.async<tensor<4x4xf32>>' does not match the input 'tensor<8x4xf32>' (only dimension 0 may change, to 2)}}
  %a = octet_pipe.reduce_scatter %g sum group(dp, 4) : (tensor<8x4xf32>) -> !octet_pipe.async<tensor<4x4xf32>>
  %r = octet_pipe.await %a : !octet_pipe.async<tensor<4x4xf32>> -> tensor<4x4xf32>
  return
}

// -----

// Message pairing: every channel's sends and receives agree, in order.
// expected-error @+1 {{'octet_pipe.schedule' op channel 0 -> 1 (activations): message 0 is stage 0 mb 0 at the sender but nothing at the receiver}}
octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(2) {
  octet_pipe.rank 0 {
    %t = octet_pipe.send activation stage(0) mb(0) to(1)
    octet_pipe.wait %t
  }
  octet_pipe.rank 1 {
  }
}

// -----

// expected-error @+1 {{'octet_pipe.schedule' op channel 0 -> 1 (activations): message 0 is stage 0 mb 0 at the sender but stage 0 mb 1 at the receiver}}
octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(2) {
  octet_pipe.rank 0 {
    %a = octet_pipe.send activation stage(0) mb(0) to(1)
    %b = octet_pipe.send activation stage(0) mb(1) to(1)
    octet_pipe.wait %a, %b
  }
  octet_pipe.rank 1 {
    // expected-note @+1 {{the receive}}
    %b = octet_pipe.recv activation stage(0) mb(1) from(0)
    %a = octet_pipe.recv activation stage(0) mb(0) from(0)
    octet_pipe.wait %a, %b
  }
}

// -----

//===----------------------------------------------------------------------===//
// Expert parallelism
//===----------------------------------------------------------------------===//

func.func @uneven(%x: tensor<8x4xf32>, %s: tensor<3xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op the 3 experts of group_sizes do not split over 2 ranks}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8x4xf32>, tensor<3xi32>) -> (tensor<16x4xf32>, tensor<1xi32>, tensor<2x1xi32>)
  return
}

// -----

func.func @no_ranks(%x: tensor<8x4xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op group size must be positive, got 0}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(0) wire(f32)
      : (tensor<8x4xf32>, tensor<4xi32>) -> (tensor<16x4xf32>, tensor<2xi32>, tensor<2x2xi32>)
  return
}

// -----

func.func @rows_rank(%x: tensor<8xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op rows must be [rows, width], got 'tensor<8xf32>'}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8xf32>, tensor<4xi32>) -> (tensor<16x4xf32>, tensor<2xi32>, tensor<2x2xi32>)
  return
}

// -----

func.func @sizes_rank(%x: tensor<8x4xf32>, %s: tensor<2x2xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op group_sizes must be [experts], got 'tensor<2x2xi32>'}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8x4xf32>, tensor<2x2xi32>) -> (tensor<16x4xf32>, tensor<2xi32>, tensor<2x2xi32>)
  return
}

// -----

func.func @wire(%x: tensor<8x4xbf16>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op wire f32 carries f32 rows, got 'bf16'}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8x4xbf16>, tensor<4xi32>) -> (tensor<16x4xbf16>, tensor<2xi32>, tensor<2x2xi32>)
  return
}

// -----

func.func @capacity(%x: tensor<8x4xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op received must be [16, 4] of 'f32' (every rank's rows, for the worst case), got 'tensor<8x4xf32>'}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8x4xf32>, tensor<4xi32>) -> (tensor<8x4xf32>, tensor<2xi32>, tensor<2x2xi32>)
  return
}

// -----

func.func @local_sizes(%x: tensor<8x4xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op local_sizes must be [2], one entry per local expert, got 'tensor<4xi32>'}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8x4xf32>, tensor<4xi32>) -> (tensor<16x4xf32>, tensor<4xi32>, tensor<2x2xi32>)
  return
}

// -----

func.func @layout(%x: tensor<8x4xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_dispatch' op layout must be [2, 2] (rows from each rank per local expert), got 'tensor<2x4xi32>'}}
  %r, %l, %y = octet_pipe.expert_dispatch %x, %s ranks(2) wire(f32)
      : (tensor<8x4xf32>, tensor<4xi32>) -> (tensor<16x4xf32>, tensor<2xi32>, tensor<2x4xi32>)
  return
}

// -----

func.func @combine_ranks(%x: tensor<16x4xf32>, %l: tensor<2x2xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_combine' op group size must be positive, got 0}}
  %y = octet_pipe.expert_combine %x, %l ranks(0) wire(f32) : (tensor<16x4xf32>, tensor<2x2xi32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @combine_rank(%x: tensor<16xf32>, %l: tensor<2x2xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_combine' op rows and result must be [rows, width], got 'tensor<16xf32>' and 'tensor<8x4xf32>'}}
  %y = octet_pipe.expert_combine %x, %l ranks(2) wire(f32) : (tensor<16xf32>, tensor<2x2xi32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @combine_layout(%x: tensor<16x4xf32>, %l: tensor<3x2xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_combine' op layout must be [2, local experts], got 'tensor<3x2xi32>'}}
  %y = octet_pipe.expert_combine %x, %l ranks(2) wire(f32) : (tensor<16x4xf32>, tensor<3x2xi32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @combine_wire(%x: tensor<16x4xbf16>, %l: tensor<2x2xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_combine' op wire f32 carries f32 rows, got 'bf16'}}
  %y = octet_pipe.expert_combine %x, %l ranks(2) wire(f32) : (tensor<16x4xbf16>, tensor<2x2xi32>) -> tensor<8x4xbf16>
  return
}

// -----

func.func @combine_rows(%x: tensor<16x4xf32>, %l: tensor<2x2xi32>) {
  // expected-error @+1 {{'octet_pipe.expert_combine' op result must be [8, 4] of 'f32' (what each of the 2 ranks dispatched), got 'tensor<16x4xf32>'}}
  %y = octet_pipe.expert_combine %x, %l ranks(2) wire(f32) : (tensor<16x4xf32>, tensor<2x2xi32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @local_uneven(%w: tensor<3x4x5xf32>) {
  // expected-error @+1 {{'octet_pipe.local_experts' op the 3 experts of the weight do not split over 2 ranks}}
  %l = octet_pipe.local_experts %w ranks(2) : tensor<3x4x5xf32> -> tensor<1x4x5xf32>
  return
}

// -----

func.func @local_scalar(%w: tensor<f32>) {
  // expected-error @+1 {{'octet_pipe.local_experts' op expert tensors must be [experts, ...], got 'tensor<f32>'}}
  %l = octet_pipe.local_experts %w ranks(2) : tensor<f32> -> tensor<f32>
  return
}

// -----

func.func @local_shape(%w: tensor<4x4x5xf32>) {
  // expected-error @+1 {{'octet_pipe.local_experts' op a rank's share of 'tensor<4x4x5xf32>' is [2, 4, 5] of 'f32', got 'tensor<4x4x5xf32>'}}
  %l = octet_pipe.local_experts %w ranks(2) : tensor<4x4x5xf32> -> tensor<4x4x5xf32>
  return
}

// -----

func.func @local_grad_shape(%w: tensor<2x4x5xf32>) {
  // expected-error @+1 {{'octet_pipe.local_experts_grad' op a rank's share of 'tensor<8x4x5xf32>' is [4, 4, 5] of 'f32', got 'tensor<2x4x5xf32>'}}
  %l = octet_pipe.local_experts_grad %w ranks(2) : tensor<2x4x5xf32> -> tensor<8x4x5xf32>
  return
}
