// The FP8 GEMMs the CUDA tests run (CudaGemmTest.cpp): every kernel variant
// the generator has, full and partial tiles, DeepSeek-V3's N = 2112 and a
// 128-token GEMM. Built into a cubin by octetc at build time.

// Fprop, 128 tokens, N = 2112, tile chosen by the heuristic.
func.func @fprop_m128_n2112(%x: !octet_tq.qtensor<128x512xf8E4M3FN, tile_1x128>,
                            %w: !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>)
    -> tensor<128x2112xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         : (!octet_tq.qtensor<128x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>) -> tensor<128x2112xbf16>
  return %y : tensor<128x2112xbf16>
}

// Fprop with partial tiles in M and N, an odd N (the single-column store),
// a tile straddling two 128-column scale blocks (48 columns), one consumer
// warpgroup, promotion every 64, FP32 output.
func.func @fprop_ragged(%x: !octet_tq.qtensor<300x384xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<257x384xf8E4M3FN, block_128x128>)
    -> tensor<300x257xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(64)
         tile(<64x48x128, stages = 3>)
         : (!octet_tq.qtensor<300x384xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<257x384xf8E4M3FN, block_128x128>) -> tensor<300x257xf32>
  return %y : tensor<300x257xf32>
}

// Dgrad: the weight is contracted over its rows (the runtime passes it
// transposed), N = 2112 output columns, more tiles than SMs would hold at
// once with small tiles: the persistent loop wraps.
func.func @dgrad_n2112(%dy: !octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
                       %w: !octet_tq.qtensor<384x2112xf8E4M3FN, block_128x128>)
    -> tensor<512x2112xbf16> {
  %dx = octet_tq.scaled_matmul %dy, %w contract(1, 0) promotion(128)
          tile(<128x32x128, stages = 6>)
          : (!octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
             !octet_tq.qtensor<384x2112xf8E4M3FN, block_128x128>) -> tensor<512x2112xbf16>
  return %dx : tensor<512x2112xbf16>
}

// Wgrad: both operands contracted over tokens, B scaled per row, promotion
// every 32 (one wgmma per promotion).
func.func @wgrad(%dy: !octet_tq.qtensor<512x2112xf8E4M3FN, tile_128x1>,
                 %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>)
    -> tensor<2112x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(32)
          tile(<128x64x128, stages = 4>)
          : (!octet_tq.qtensor<512x2112xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>) -> tensor<2112x256xf32>
  return %dw : tensor<2112x256xf32>
}

// The MoE expert GEMM over a contiguous layout: 4 experts, runs of rows
// padded to 128 (the test fills the group index).
func.func @experts(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                   %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>,
                   %e: tensor<512xi32>) -> tensor<512x192xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return %y : tensor<512x192xbf16>
}

// The expert Dgrad: the grouped kernel on the transposed expert weights
// (the test makes the kernel's B, [experts][K][N], directly).
func.func @expert_dgrad(%dy: !octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<4x384x256xf8E4M3FN, block_128x128>,
                        %e: tensor<512xi32>) -> tensor<512x256xbf16> {
  %dx = octet_tq.grouped_scaled_matmul %dy, %w, %e rhs_contract(1) promotion(128)
         : (!octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x384x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xbf16>
  return %dx : tensor<512x256xbf16>
}

// The overlapped promotion schedule (`overlap`): each GEMM above again,
// with the same tile, and two more pairs: a long K (16 K-groups, the ring
// wrapping inside a tile, three 64-register accumulators per thread) and a
// single K-group (no loop iteration, nothing to overlap). The test checks
// each overlapped kernel bit for bit against its default-schedule partner
// (same tile, same inputs) as well as against the reference. The K-group
// counts cover the loop's two tails: an even remainder (K = 384, 128) and
// an odd one (K = 512, 256, 2048).

func.func @fprop_m128_n2112_overlap(%x: !octet_tq.qtensor<128x512xf8E4M3FN, tile_1x128>,
                                    %w: !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>)
    -> tensor<128x2112xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x16x128, stages = 8, overlap>)
         : (!octet_tq.qtensor<128x512xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>) -> tensor<128x2112xbf16>
  return %y : tensor<128x2112xbf16>
}

func.func @fprop_ragged_overlap(%x: !octet_tq.qtensor<300x384xf8E4M3FN, tile_1x128>,
                                %w: !octet_tq.qtensor<257x384xf8E4M3FN, block_128x128>)
    -> tensor<300x257xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(64)
         tile(<64x48x128, stages = 3, overlap>)
         : (!octet_tq.qtensor<300x384xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<257x384xf8E4M3FN, block_128x128>) -> tensor<300x257xf32>
  return %y : tensor<300x257xf32>
}

func.func @dgrad_n2112_overlap(%dy: !octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
                               %w: !octet_tq.qtensor<384x2112xf8E4M3FN, block_128x128>)
    -> tensor<512x2112xbf16> {
  %dx = octet_tq.scaled_matmul %dy, %w contract(1, 0) promotion(128)
          tile(<128x32x128, stages = 6, overlap>)
          : (!octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
             !octet_tq.qtensor<384x2112xf8E4M3FN, block_128x128>) -> tensor<512x2112xbf16>
  return %dx : tensor<512x2112xbf16>
}

func.func @wgrad_overlap(%dy: !octet_tq.qtensor<512x2112xf8E4M3FN, tile_128x1>,
                         %x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>)
    -> tensor<2112x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(32)
          tile(<128x64x128, stages = 4, overlap>)
          : (!octet_tq.qtensor<512x2112xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>) -> tensor<2112x256xf32>
  return %dw : tensor<2112x256xf32>
}

func.func @experts_overlap(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                           %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>,
                           %e: tensor<512xi32>) -> tensor<512x192xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128)
         tile(<128x16x128, stages = 8, overlap>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return %y : tensor<512x192xbf16>
}

func.func @fprop_long_k(%x: !octet_tq.qtensor<256x2048xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x2048xf8E4M3FN, block_128x128>)
    -> tensor<256x256xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x128x128, stages = 4>)
         : (!octet_tq.qtensor<256x2048xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x2048xf8E4M3FN, block_128x128>) -> tensor<256x256xbf16>
  return %y : tensor<256x256xbf16>
}

func.func @fprop_long_k_overlap(%x: !octet_tq.qtensor<256x2048xf8E4M3FN, tile_1x128>,
                                %w: !octet_tq.qtensor<256x2048xf8E4M3FN, block_128x128>)
    -> tensor<256x256xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x128x128, stages = 4, overlap>)
         : (!octet_tq.qtensor<256x2048xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x2048xf8E4M3FN, block_128x128>) -> tensor<256x256xbf16>
  return %y : tensor<256x256xbf16>
}

func.func @fprop_one_k_group(%x: !octet_tq.qtensor<192x128xf8E4M3FN, tile_1x128>,
                             %w: !octet_tq.qtensor<136x128xf8E4M3FN, block_128x128>)
    -> tensor<192x136xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x64x128, stages = 2>)
         : (!octet_tq.qtensor<192x128xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<136x128xf8E4M3FN, block_128x128>) -> tensor<192x136xbf16>
  return %y : tensor<192x136xbf16>
}

func.func @fprop_one_k_group_overlap(%x: !octet_tq.qtensor<192x128xf8E4M3FN, tile_1x128>,
                                     %w: !octet_tq.qtensor<136x128xf8E4M3FN, block_128x128>)
    -> tensor<192x136xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x64x128, stages = 2, overlap>)
         : (!octet_tq.qtensor<192x128xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<136x128xf8E4M3FN, block_128x128>) -> tensor<192x136xbf16>
  return %y : tensor<192x136xbf16>
}
