// The block-scaled FP8 GEMMs octet-bench gemm measures: the DeepSeek-V3
// dense shapes of ../shared/reference/anchors.md (Fprop, X[M,K] 1x128 tiles
// times W[N,K] 128x128 blocks, BF16 output, promotion every 128), and a
// square 8192^3. Tiles are the heuristic's (--octet-select-gemm-tiles).

func.func @m4096_n2112_k7168(%x: !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>) -> tensor<4096x2112xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>) -> tensor<4096x2112xbf16>
  return %y : tensor<4096x2112xbf16>
}
func.func @m4096_n24576_k1536(%x: !octet_tq.qtensor<4096x1536xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<24576x1536xf8E4M3FN, block_128x128>) -> tensor<4096x24576xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<4096x1536xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<24576x1536xf8E4M3FN, block_128x128>) -> tensor<4096x24576xbf16>
  return %y : tensor<4096x24576xbf16>
}
func.func @m4096_n32768_k512(%x: !octet_tq.qtensor<4096x512xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<32768x512xf8E4M3FN, block_128x128>) -> tensor<4096x32768xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<4096x512xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<32768x512xf8E4M3FN, block_128x128>) -> tensor<4096x32768xbf16>
  return %y : tensor<4096x32768xbf16>
}
func.func @m4096_n7168_k16384(%x: !octet_tq.qtensor<4096x16384xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<7168x16384xf8E4M3FN, block_128x128>) -> tensor<4096x7168xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<4096x16384xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<7168x16384xf8E4M3FN, block_128x128>) -> tensor<4096x7168xbf16>
  return %y : tensor<4096x7168xbf16>
}
func.func @m4096_n4096_k7168(%x: !octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4096x7168xf8E4M3FN, block_128x128>) -> tensor<4096x4096xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4096x7168xf8E4M3FN, block_128x128>) -> tensor<4096x4096xbf16>
  return %y : tensor<4096x4096xbf16>
}
func.func @m4096_n7168_k2048(%x: !octet_tq.qtensor<4096x2048xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<7168x2048xf8E4M3FN, block_128x128>) -> tensor<4096x7168xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<4096x2048xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<7168x2048xf8E4M3FN, block_128x128>) -> tensor<4096x7168xbf16>
  return %y : tensor<4096x7168xbf16>
}
func.func @m128_n7168_k16384(%x: !octet_tq.qtensor<128x16384xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<7168x16384xf8E4M3FN, block_128x128>) -> tensor<128x7168xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<128x16384xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<7168x16384xf8E4M3FN, block_128x128>) -> tensor<128x7168xbf16>
  return %y : tensor<128x7168xbf16>
}
func.func @m128_n2112_k7168(%x: !octet_tq.qtensor<128x7168xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>) -> tensor<128x2112xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<128x7168xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>) -> tensor<128x2112xbf16>
  return %y : tensor<128x2112xbf16>
}
func.func @m8192_n8192_k8192(%x: !octet_tq.qtensor<8192x8192xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<8192x8192xf8E4M3FN, block_128x128>) -> tensor<8192x8192xbf16> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128) : (!octet_tq.qtensor<8192x8192xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8192x8192xf8E4M3FN, block_128x128>) -> tensor<8192x8192xbf16>
  return %y : tensor<8192x8192xbf16>
}

// MoE expert GEMMs of DeepSeek-V3 (contiguous layout, DeepGEMM's benchmark
// shapes): 4 experts x 8192 tokens and 8 x 4096, the fused gate/up
// projection (N = 4096, K = 7168) and the down projection (N = 7168,
// K = 2048).
func.func @experts4_n4096_k7168(%x: !octet_tq.qtensor<32768x7168xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x4096x7168xf8E4M3FN, block_128x128>, %e: tensor<32768xi32>) -> tensor<32768x4096xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<32768x7168xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x4096x7168xf8E4M3FN, block_128x128>, tensor<32768xi32>) -> tensor<32768x4096xbf16>
  return %y : tensor<32768x4096xbf16>
}
func.func @experts4_n7168_k2048(%x: !octet_tq.qtensor<32768x2048xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<4x7168x2048xf8E4M3FN, block_128x128>, %e: tensor<32768xi32>) -> tensor<32768x7168xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<32768x2048xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x7168x2048xf8E4M3FN, block_128x128>, tensor<32768xi32>) -> tensor<32768x7168xbf16>
  return %y : tensor<32768x7168xbf16>
}
func.func @experts8_n4096_k7168(%x: !octet_tq.qtensor<32768x7168xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<8x4096x7168xf8E4M3FN, block_128x128>, %e: tensor<32768xi32>) -> tensor<32768x4096xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<32768x7168xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x4096x7168xf8E4M3FN, block_128x128>, tensor<32768xi32>) -> tensor<32768x4096xbf16>
  return %y : tensor<32768x4096xbf16>
}
func.func @experts8_n7168_k2048(%x: !octet_tq.qtensor<32768x2048xf8E4M3FN, tile_1x128>, %w: !octet_tq.qtensor<8x7168x2048xf8E4M3FN, block_128x128>, %e: tensor<32768xi32>) -> tensor<32768x7168xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) : (!octet_tq.qtensor<32768x2048xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<8x7168x2048xf8E4M3FN, block_128x128>, tensor<32768xi32>) -> tensor<32768x7168xbf16>
  return %y : tensor<32768x7168xbf16>
}
