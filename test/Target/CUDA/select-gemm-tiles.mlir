// RUN: octet-opt %s -split-input-file --octet-select-gemm-tiles | FileCheck %s
// RUN: octet-opt %s -split-input-file --octet-select-gemm-tiles="num-sms=16 max-stages=3" | FileCheck %s --check-prefix=SMALL
// RUN: octet-opt %s -split-input-file --octet-select-gemm-tiles=override | FileCheck %s --check-prefix=OVERRIDE
// RUN: octet-opt %s -split-input-file --octet-select-gemm-tiles=overlap | FileCheck %s --check-prefix=OVERLAP
// RUN: octet-opt %s -split-input-file --octet-select-gemm-tiles="overlap max-stages=1" | FileCheck %s --check-prefix=ONESTAGE
// RUN: not octet-opt %s -split-input-file --octet-select-gemm-tiles="num-sms=0" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: octet-select-gemm-tiles: num-sms, shared-memory and max-stages must be positive

// DeepSeek-V3's N = 2112 on 132 SMs: 112 columns make 608 tiles (5 waves,
// like 128 would) with less waste in the last column of tiles; 7 stages of
// 30 KiB fill the shared memory.
// CHECK-LABEL: func @fprop_2112
// CHECK: tile(<128x112x128, stages = 7>)
// SMALL-LABEL: func @fprop_2112
// SMALL: tile(<128x128x128, stages = 3>)
// With `overlap` the tile asks for the overlapped promotion schedule, which
// needs two stages: one stage leaves it out.
// OVERLAP-LABEL: func @fprop_2112
// OVERLAP: tile(<128x112x128, stages = 7, overlap>)
// ONESTAGE-LABEL: func @fprop_2112
// ONESTAGE: tile(<128x112x128, stages = 1>)
func.func @fprop_2112(%x: !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
                      %w: !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>)
    -> tensor<4096x2112xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>) -> tensor<4096x2112xbf16>
  return %y : tensor<4096x2112xbf16>
}

// -----

// 128 tokens: one row of tiles, so narrower tiles keep more SMs busy
// (112 tiles of 64 columns in one wave).
// CHECK-LABEL: func @few_tokens
// CHECK: tile(<128x64x128, stages = 8>)
func.func @few_tokens(%x: !octet_tq.qtensor<128x16384xf8E4M3FN, tile_1x128>,
                      %w: !octet_tq.qtensor<7168x16384xf8E4M3FN, block_128x128>)
    -> tensor<128x7168xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         : (!octet_tq.qtensor<128x16384xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<7168x16384xf8E4M3FN, block_128x128>) -> tensor<128x7168xbf16>
  return %y : tensor<128x7168xbf16>
}

// -----

// At most 64 rows: one consumer warpgroup.
// CHECK-LABEL: func @tiny_m
// CHECK: tile(<64x
func.func @tiny_m(%x: !octet_tq.qtensor<32x256xf8E4M3FN, tile_1x128>,
                  %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<32x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         : (!octet_tq.qtensor<32x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<32x256xf32>
  return %y : tensor<32x256xf32>
}

// -----

// A tile the IR already has is kept unless `override` is given.
// CHECK-LABEL: func @pinned
// CHECK: tile(<64x32x128, stages = 2>)
// OVERLAP-LABEL: func @pinned
// OVERLAP: tile(<64x32x128, stages = 2>)
// OVERRIDE-LABEL: func @pinned
// OVERRIDE: tile(<128x
func.func @pinned(%x: !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
                  %w: !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>)
    -> tensor<4096x2112xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<64x32x128, stages = 2>)
         : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>) -> tensor<4096x2112xbf16>
  return %y : tensor<4096x2112xbf16>
}

// -----

// Per-tensor GEMMs are cuBLASLt's: no tile.
// CHECK-LABEL: func @per_tensor
// CHECK-NOT: tile(
func.func @per_tensor(%x: !octet_tq.qtensor<256x256xf8E4M3FN, per_tensor>,
                      %w: !octet_tq.qtensor<256x256xf8E4M3FN, per_tensor>)
    -> tensor<256x256xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(0)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, per_tensor>,
            !octet_tq.qtensor<256x256xf8E4M3FN, per_tensor>) -> tensor<256x256xbf16>
  return %y : tensor<256x256xbf16>
}

// -----

// The expert GEMM gets a tile like any other.
// CHECK-LABEL: func @experts
// CHECK: octet_tq.grouped_scaled_matmul {{.*}} tile(<128x
func.func @experts(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                   %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>,
                   %e: tensor<512xi32>) -> tensor<512x192xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return %y : tensor<512x192xbf16>
}

// -----

// The expert Wgrad's tile is chosen for one expert's N x K result (here
// 256 x 384), as for the dense Wgrad of that shape.
// CHECK-LABEL: func @expert_wgrad
// CHECK: octet_tq.k_grouped_scaled_matmul {{.*}} tile(<[[T:128x[0-9]+x128, stages = [0-9]]]>)
// CHECK: octet_tq.scaled_matmul {{.*}} tile(<[[T]]>)
func.func @expert_wgrad(%dyt: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
                        %xt: !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>,
                        %e: tensor<512xi32>) -> (tensor<4x256x384xf32>, tensor<256x384xf32>) {
  %dw = octet_tq.k_grouped_scaled_matmul %dyt, %xt, %e promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
            !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x256x384xf32>
  %d = octet_tq.scaled_matmul %dyt, %xt contract(0, 0) promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
            !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>) -> tensor<256x384xf32>
  return %dw, %d : tensor<4x256x384xf32>, tensor<256x384xf32>
}
