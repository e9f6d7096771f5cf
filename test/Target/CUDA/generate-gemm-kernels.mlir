// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-generate-gemm-kernels | FileCheck %s

// Fprop, promotion every 64 K-elements: each 128-wide K-group takes two
// rounds of two wgmma k32 each, and each round ends in one promotion, a
// scale multiply and an FP32 add per accumulator element (32 columns x 64
// rows over 128 threads = 16 elements per thread).

// CHECK-LABEL: func.func @fprop
// CHECK: octet_tq.scaled_matmul
// CHECK-SAME: octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_bf16_m128n32k128_s2_p64
// CHECK-SAME: octet_tq.transposed = array<i1: false, false>
// CHECK: gpu.module @octet_kernels
// CHECK: llvm.mlir.global external @octet_gemm_smem() {addr_space = 3 : i32, alignment = 1024 : i64}
// CHECK: gpu.func @octet_gemm_1d2d_bf16_m128n32k128_s2_p64(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: i32, %{{.*}}: i32, %{{.*}}: i32, %{{.*}}: i32) kernel
// CHECK-SAME: nvvm.maxntid = array<i32: 384, 1, 1>
// CHECK-SAME: nvvm.minctasm = 1 : i32
// Two stages of (128 + 32) x 128 tile bytes and (128 + 2) x 4 scale bytes
// padded to 528, then the barriers.
// CHECK-SAME: octet_tq.shared_memory_bytes = 42048

// Two barriers per stage, initialised by one thread before everyone syncs:
// a full barrier expects the issuer's arrival and one per producer lane's
// scale copies, an empty barrier one arrival per consumer warp.
// CHECK: nvvm.mbarrier.init %{{.*}}, %c33_i32
// CHECK: nvvm.mbarrier.init %{{.*}}, %c8_i32
// CHECK: nvvm.mbarrier.init %{{.*}}, %c33_i32
// CHECK: nvvm.mbarrier.init %{{.*}}, %c8_i32
// CHECK: nvvm.fence.mbarrier.init
// CHECK: nvvm.barrier0

// The producer warpgroup gives registers away, then its first warp walks
// the tiles and K-groups: wait for a free slot; one lane expects the bytes
// of both tiles ((128 + 32) x 128) and issues the two TMA loads; every lane
// copies scales with cp.async (4 of A's 128 rows each, and lanes 0 and 1
// the two 128x128 blocks of B the tile can touch) and arrives on the full
// barrier when they land.
// CHECK: nvvm.setmaxregister decrease 40
// CHECK: nvvm.read.ptx.sreg.nctaid.x
// CHECK: scf.for
// CHECK: scf.for
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: scf.if
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c20480_i32
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %arg0, %{{.*}}, box[
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %arg1, %{{.*}}, box[
// CHECK-COUNT-4: nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 4, cache = ca
// CHECK: scf.if
// CHECK: nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 4, cache = ca
// CHECK: nvvm.cp.async.mbarrier.arrive %{{.*}} {noinc = true}

// The consumer warpgroups take the registers and walk the same tiles. Each
// tile starts by issuing its first promotion interval. The loop carries the
// accumulator and the interval in flight; each K-group first reads its
// scales from the slot (two rows of A and, as a 32-column tile never
// straddles two 128-column blocks of B, one block of B) and forms the two
// scale products.
// CHECK: nvvm.setmaxregister increase 232
// CHECK: scf.for
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 32, k = 32>, D[<f32>, <zero>], A[<e4m3>, <one>, <row>], B[<e4m3>, <one>, <col>]
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 32, k = 32>, D[<f32>, <one>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: scf.for {{.*}} -> (i32, i32, !llvm.struct<(f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)>, !llvm.struct<(f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)>)
// CHECK-COUNT-3: llvm.load {{.*}} : !llvm.ptr<3> -> f32
// CHECK-COUNT-2: arith.mulf
// CHECK-NOT: llvm.load {{.*}} -> f32

// First interval of the K-group: wait for it, then one fused multiply-add
// per accumulator element (32 columns x 64 rows over 128 threads = 16 per
// thread), each operand and result pinned by an empty asm statement so
// LLVM cannot move the promotion across the wait or the next issue.
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK-NOT: nvvm.mbarrier.arrive
// CHECK: llvm.inline_asm has_side_effects "", "=f,0"
// CHECK-NEXT: llvm.extractvalue
// CHECK-NEXT: llvm.intr.fma
// CHECK-NEXT: llvm.inline_asm has_side_effects "", "=f,0"
// CHECK-COUNT-15: llvm.intr.fma
// CHECK-NOT: llvm.intr.fma

// Then the second interval is issued on the same slot, waited for, the slot
// released, and promoted.
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.*}} D[<f32>, <zero>]
// CHECK: nvvm.wgmma.mma_async {{.*}} D[<f32>, <one>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: nvvm.mbarrier.arrive
// CHECK-COUNT-16: llvm.intr.fma
// CHECK-NOT: llvm.intr.fma

// The next K-group's first interval is issued, once its slot is full, only
// when there is a next K-group.
// CHECK: scf.if
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-2: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: } else {
// CHECK: llvm.mlir.poison
// CHECK: scf.yield {{.*}} : i32, i32, !llvm.struct<(f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)>, !llvm.struct<(f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)>

// Bounds-checked stores: per n8 block and row half, a BF16 pair, or the
// single last column of an odd N.
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK-COUNT-8: llvm.store %{{.*}}, %{{.*}} : vector<2xbf16>, !llvm.ptr<1>
// CHECK: gpu.return

func.func @fprop(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                 %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(64)
         tile(<128x32x128, stages = 2>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

// The overlapped promotion schedule (`overlap` in the tile): every K-group
// but the last issues its successor before it waits, with one group left in
// flight (`wait_group 1`), and promotes while the successor computes. The
// first group is issued before the loop; the loop takes two K-groups per
// iteration, and the one or two groups left are peeled after it, the last
// of them issuing nothing and draining with `wait_group 0`.

// CHECK-LABEL: func.func @overlap
// CHECK: octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_bf16_m128n32k128_s3_p128_ov
// CHECK: gpu.func @octet_gemm_1d2d_bf16_m128n32k128_s3_p128_ov
// CHECK: nvvm.setmaxregister increase 232
// CHECK: scf.for
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 32, k = 32>
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK-NOT: nvvm.wgmma.wait.group
// CHECK: scf.for {{.*}} -> (i32, i32, !llvm.struct<{{.*}}>, !llvm.struct<{{.*}}>)

// Each of the loop's two K-groups: its scales, the next group's slot and
// wgmmas, the wait that leaves them running, the release of this group's
// slot, and one fused multiply-add per accumulator element.
// CHECK-COUNT-3: llvm.load {{.*}} : !llvm.ptr<3> -> f32
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-NEXT: nvvm.wgmma.wait.group.sync.aligned 1
// CHECK-NEXT: scf.if
// CHECK-NOT: llvm.intr.fma
// CHECK: nvvm.mbarrier.arrive
// CHECK-COUNT-16: llvm.intr.fma
// CHECK-NOT: llvm.intr.fma
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-NEXT: nvvm.wgmma.wait.group.sync.aligned 1
// CHECK: nvvm.mbarrier.arrive
// CHECK-COUNT-16: llvm.intr.fma
// CHECK-NOT: llvm.intr.fma
// CHECK: scf.yield

// An odd number of groups left: one more that issues the last, then the
// last; otherwise the last alone. Neither issues a wgmma after the last
// group's, and both drain before the accumulator is stored.
// CHECK: scf.if {{.*}} -> (!llvm.struct<{{.*}}>, i32, i32)
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-NEXT: nvvm.wgmma.wait.group.sync.aligned 1
// CHECK-COUNT-16: llvm.intr.fma
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: nvvm.mbarrier.arrive
// CHECK-COUNT-16: llvm.intr.fma
// CHECK: } else {
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: nvvm.mbarrier.arrive
// CHECK-COUNT-16: llvm.intr.fma
// CHECK-NOT: nvvm.wgmma
// CHECK-COUNT-8: llvm.store %{{.*}}, %{{.*}} : vector<2xbf16>, !llvm.ptr<1>
// CHECK: gpu.return

func.func @overlap(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                   %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x32x128, stages = 3, overlap>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

// Dgrad takes the weight transposed (K-major for wgmma). With promotion
// every 128, a K-group is four wgmma k32 then one promotion of 64 elements.
// Two GEMMs with one configuration share one kernel.

// CHECK-LABEL: func.func @dgrad
// CHECK: octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_f32_m128n128k128_s4_p128
// CHECK-SAME: octet_tq.transposed = array<i1: false, true>
// CHECK: octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_f32_m128n128k128_s4_p128
// CHECK: gpu.func @octet_gemm_1d2d_f32_m128n128k128_s4_p128
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 32>
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: nvvm.mbarrier.arrive
// CHECK-COUNT-64: llvm.intr.fma
// CHECK-NOT: llvm.intr.fma
// CHECK: scf.yield
// CHECK-COUNT-16: llvm.store %{{.*}}, %{{.*}} : vector<2xf32>, !llvm.ptr<1>
// CHECK-NOT: gpu.func

func.func @dgrad(%dy: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                 %w: !octet_tq.qtensor<256x384xf8E4M3FN, block_128x128>,
                 %dy2: !octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
                 %w2: !octet_tq.qtensor<640x384xf8E4M3FN, block_128x128>)
    -> (tensor<512x384xf32>, tensor<512x640xf32>) {
  %dx = octet_tq.scaled_matmul %dy, %w contract(1, 0) promotion(128)
          tile(<128x128x128, stages = 4>)
          : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
             !octet_tq.qtensor<256x384xf8E4M3FN, block_128x128>) -> tensor<512x384xf32>
  %y = octet_tq.scaled_matmul %dy2, %w2 contract(1, 1) promotion(128)
          tile(<128x128x128, stages = 4>)
          : (!octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
             !octet_tq.qtensor<640x384xf8E4M3FN, block_128x128>) -> tensor<512x640xf32>
  return %dx, %y : tensor<512x384xf32>, tensor<512x640xf32>
}

// -----

// Wgrad contracts over tokens: both operands are transposed to K-major and
// B is scaled per row (1d1d), so each thread reads the scales of its two
// rows and of its 2 x 64/8 columns per K-group from the slot. One consumer
// warpgroup for a 64-row tile: 256 threads.

// CHECK-LABEL: func.func @wgrad
// CHECK: octet_tq.kernel = @octet_kernels::@octet_gemm_1d1d_f32_m64n64k128_s3_p128
// CHECK-SAME: octet_tq.transposed = array<i1: true, true>
// CHECK: gpu.func @octet_gemm_1d1d_f32_m64n64k128_s3_p128
// CHECK-SAME: nvvm.maxntid = array<i32: 256, 1, 1>
// CHECK: nvvm.setmaxregister increase 232
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-18: llvm.load {{.*}} : !llvm.ptr<3> -> f32
// CHECK-NOT: llvm.load {{.*}} -> f32
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0

func.func @wgrad(%dy: !octet_tq.qtensor<1024x192xf8E4M3FN, tile_128x1>,
                 %x: !octet_tq.qtensor<1024x256xf8E4M3FN, tile_128x1>) -> tensor<192x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(128)
          tile(<64x64x128, stages = 3>)
          : (!octet_tq.qtensor<1024x192xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<1024x256xf8E4M3FN, tile_128x1>) -> tensor<192x256xf32>
  return %dw : tensor<192x256xf32>
}

// -----

func.func @no_tile(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                   %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  // expected-error@+1 {{has no tile configuration; run --octet-select-gemm-tiles first or set tile(...)}}
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

func.func @wide_tile(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                     %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  // expected-error@+1 {{cannot be generated for Hopper: tile N must be a multiple of 8 between 8 and 128, got 256}}
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x256x128, stages = 2>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

func.func @tall_tile(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                     %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  // expected-error@+1 {{cannot be generated for Hopper: tile M must be 64 or 128 (one or two consumer warpgroups), got 192}}
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<192x64x128, stages = 2>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

func.func @short_k(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                   %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  // expected-error@+1 {{cannot be generated for Hopper: tile K must be 128 (one scaling group, one 128-byte swizzled row), got 64}}
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(64)
         tile(<128x64x64, stages = 2>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

func.func @too_deep(%x: !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
                    %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  // expected-error@+1 {{cannot be generated for Hopper: 8 stages of 32768 bytes do not fit the 227 KiB of shared memory of one CTA}}
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x128x128, stages = 8>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

func.func @block_lhs(%x: !octet_tq.qtensor<256x512xf8E4M3FN, block_128x128>,
                     %w: !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16> {
  // expected-error@+1 {{has no Hopper kernel for block_128x128 x block_128x128 contracting (1, 1): the generator covers Fprop and Dgrad (tile_1x128 x block_128x128) and Wgrad (tile_128x1 x tile_128x1 over dim 0)}}
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x64x128, stages = 2>)
         : (!octet_tq.qtensor<256x512xf8E4M3FN, block_128x128>,
            !octet_tq.qtensor<96x512xf8E4M3FN, block_128x128>) -> tensor<256x96xbf16>
  return %y : tensor<256x96xbf16>
}

// -----

// The MoE expert GEMM: the kernel reads each tile's expert from the group
// index (one load per tile), skips padding tiles (negative index) in every
// warpgroup alike, and offsets B's rows and scales by the expert.
// CHECK-LABEL: func.func @experts
// CHECK: octet_tq.grouped_scaled_matmul {{.*}}octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_bf16_m128n64k128_s4_p128_grouped
// CHECK: gpu.func @octet_gemm_1d2d_bf16_m128n64k128_s4_p128_grouped
// CHECK: nvvm.setmaxregister decrease 40
// CHECK: scf.for
// CHECK: llvm.load %{{.*}} : !llvm.ptr<1> -> i32
// CHECK: arith.cmpi slt
// CHECK: scf.if
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.setmaxregister increase 232
// CHECK: llvm.load %{{.*}} : !llvm.ptr<1> -> i32
// CHECK: arith.cmpi slt
func.func @experts(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                   %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>,
                   %e: tensor<512xi32>) -> tensor<512x192xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) tile(<128x64x128, stages = 4>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return %y : tensor<512x192xbf16>
}

// -----

// The expert gradients. Dgrad (rhs_contract(1)) is the grouped kernel with
// the expert weights passed transposed; Wgrad (K-grouped) is the Wgrad
// kernel, both operands transposed, which the runtime runs once per expert.
// CHECK-LABEL: func.func @expert_gradients
// CHECK: octet_tq.grouped_scaled_matmul {{.*}}rhs_contract(1){{.*}}octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_bf16_m128n128k128_s4_p128_grouped, octet_tq.transposed = array<i1: false, true>
// CHECK: octet_tq.k_grouped_scaled_matmul {{.*}}octet_tq.kernel = @octet_kernels::@octet_gemm_1d1d_f32_m128n128k128_s4_p128, octet_tq.transposed = array<i1: true, true>
// CHECK: gpu.func @octet_gemm_1d2d_bf16_m128n128k128_s4_p128_grouped
// CHECK: gpu.func @octet_gemm_1d1d_f32_m128n128k128_s4_p128(
func.func @expert_gradients(%dy: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                            %w: !octet_tq.qtensor<4x256x384xf8E4M3FN, block_128x128>,
                            %dyt: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
                            %xt: !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>,
                            %e: tensor<512xi32>) -> (tensor<512x384xbf16>, tensor<4x256x384xf32>) {
  %dx = octet_tq.grouped_scaled_matmul %dy, %w, %e rhs_contract(1) promotion(128) tile(<128x128x128, stages = 4>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x256x384xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x384xbf16>
  %dw = octet_tq.k_grouped_scaled_matmul %dyt, %xt, %e promotion(128) tile(<128x128x128, stages = 4>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
            !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x256x384xf32>
  return %dx, %dw : tensor<512x384xbf16>, tensor<4x256x384xf32>
}

// -----

// Every expert GEMM needs a tile before kernels are generated.
func.func @expert_wgrad_without_tile(%dyt: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
                                     %xt: !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>,
                                     %e: tensor<512xi32>) -> tensor<4x256x384xf32> {
  // expected-error @+1 {{has no tile configuration; run --octet-select-gemm-tiles first or set tile(...)}}
  %dw = octet_tq.k_grouped_scaled_matmul %dyt, %xt, %e promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
            !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x256x384xf32>
  return %dw : tensor<4x256x384xf32>
}
