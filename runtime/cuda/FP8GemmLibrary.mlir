// The GEMM kernels built into the runtime (KernelLibrary::builtin): what
// the CUDA engine of octet-run launches for the FP8 linears' GEMMs. M, N
// and K are run-time arguments of every kernel, so one function per
// configuration is enough; the shapes below only have to be valid. FP32
// output (the executor rounds to BF16 where the recipe says), for each of
// 1d2d (Fprop, Dgrad) and 1d1d (Wgrad): 128-row tiles (two consumer
// warpgroups) and 64-row tiles (one, for GEMMs of at most 64 rows), each
// with promotion every 128, 64 and 32 K-elements. N tiles of 128, except
// 64 where 128 makes ptxas spill (1d1d's per-column scales with promotion
// every 64 or 32, and 1d2d's 128-row tile with every 32):
// test/Target/CUDA/ptxas-report.test keeps these free of spills. Stages: as
// many as the 227 KiB of shared memory hold (at most 8).

func.func @fprop_m128_p128(%x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<256x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<128x128x128, stages = 6>)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<256x256xf32>
  return %y : tensor<256x256xf32>
}

func.func @wgrad_m128_p128(%dy: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
                        %x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>)
    -> tensor<256x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(128)
          tile(<128x128x128, stages = 6>)
          : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>) -> tensor<256x256xf32>
  return %dw : tensor<256x256xf32>
}

func.func @fprop_m64_p128(%x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<256x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
         tile(<64x128x128, stages = 8>)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<256x256xf32>
  return %y : tensor<256x256xf32>
}

func.func @wgrad_m64_p128(%dy: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
                        %x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>)
    -> tensor<256x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(128)
          tile(<64x128x128, stages = 8>)
          : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>) -> tensor<256x256xf32>
  return %dw : tensor<256x256xf32>
}

func.func @fprop_m128_p64(%x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<256x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(64)
         tile(<128x128x128, stages = 6>)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<256x256xf32>
  return %y : tensor<256x256xf32>
}

func.func @wgrad_m128_p64(%dy: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
                        %x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>)
    -> tensor<256x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(64)
          tile(<128x64x128, stages = 8>)
          : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>) -> tensor<256x256xf32>
  return %dw : tensor<256x256xf32>
}

func.func @fprop_m64_p64(%x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<256x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(64)
         tile(<64x128x128, stages = 8>)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<256x256xf32>
  return %y : tensor<256x256xf32>
}

func.func @wgrad_m64_p64(%dy: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
                        %x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>)
    -> tensor<256x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(64)
          tile(<64x64x128, stages = 8>)
          : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>) -> tensor<256x256xf32>
  return %dw : tensor<256x256xf32>
}

func.func @fprop_m128_p32(%x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<256x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(32)
         tile(<128x64x128, stages = 8>)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<256x256xf32>
  return %y : tensor<256x256xf32>
}

func.func @wgrad_m128_p32(%dy: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
                        %x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>)
    -> tensor<256x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(32)
          tile(<128x64x128, stages = 8>)
          : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>) -> tensor<256x256xf32>
  return %dw : tensor<256x256xf32>
}

func.func @fprop_m64_p32(%x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>)
    -> tensor<256x256xf32> {
  %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(32)
         tile(<64x128x128, stages = 8>)
         : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<256x256xf8E4M3FN, block_128x128>) -> tensor<256x256xf32>
  return %y : tensor<256x256xf32>
}

func.func @wgrad_m64_p32(%dy: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
                        %x: !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>)
    -> tensor<256x256xf32> {
  %dw = octet_tq.scaled_matmul %dy, %x contract(0, 0) promotion(32)
          tile(<64x64x128, stages = 8>)
          : (!octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>,
             !octet_tq.qtensor<256x256xf8E4M3FN, tile_128x1>) -> tensor<256x256xf32>
  return %dw : tensor<256x256xf32>
}

// The experts' Fprop over the contiguous layout (ScaledGemmEngine::
// groupedScaledGemm): one launch for all experts, 128-row tiles (each
// expert's rows start on one), the same N tiles as the dense 1d2d kernels.
func.func @experts_p128(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                        %w: !octet_tq.qtensor<4x256x256xf8E4M3FN, block_128x128>,
                        %e: tensor<512xi32>) -> tensor<512x256xf32> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128)
         tile(<128x128x128, stages = 6>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x256x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xf32>
  return %y : tensor<512x256xf32>
}

func.func @experts_p64(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                       %w: !octet_tq.qtensor<4x256x256xf8E4M3FN, block_128x128>,
                       %e: tensor<512xi32>) -> tensor<512x256xf32> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(64)
         tile(<128x128x128, stages = 6>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x256x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xf32>
  return %y : tensor<512x256xf32>
}

func.func @experts_p32(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                       %w: !octet_tq.qtensor<4x256x256xf8E4M3FN, block_128x128>,
                       %e: tensor<512xi32>) -> tensor<512x256xf32> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(32)
         tile(<128x64x128, stages = 8>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x256x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xf32>
  return %y : tensor<512x256xf32>
}
