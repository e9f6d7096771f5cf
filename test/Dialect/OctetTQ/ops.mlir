// RUN: octet-opt %s | FileCheck %s
// RUN: octet-opt %s --mlir-print-op-generic | octet-opt | FileCheck %s

// The three GEMMs of one FP8 linear (fp8-recipe.md): Fprop, Dgrad, Wgrad.
// CHECK-LABEL: func.func @linear_gemms
func.func @linear_gemms(%x: tensor<256x512xbf16>, %w: tensor<2112x512xf32>,
                        %dy: tensor<256x2112xbf16>)
    -> (tensor<256x2112xbf16>, tensor<256x512xbf16>, tensor<2112x512xf32>) {
  // CHECK: %[[QX:.*]] = octet_tq.quantize %{{.*}} : tensor<256x512xbf16> -> !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>
  %qx = octet_tq.quantize %x : tensor<256x512xbf16> -> !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>
  // CHECK: %[[QW:.*]] = octet_tq.quantize %{{.*}} : tensor<2112x512xf32> -> !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>
  %qw = octet_tq.quantize %w : tensor<2112x512xf32> -> !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>
  // CHECK: octet_tq.scaled_matmul %[[QX]], %[[QW]] contract(1, 1) promotion(128) : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>) -> tensor<256x2112xbf16>
  %y = octet_tq.scaled_matmul %qx, %qw contract(1, 1) promotion(128)
      : (!octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<2112x512xf8E4M3FN, block_128x128>)
      -> tensor<256x2112xbf16>

  // CHECK: %[[QDY:.*]] = octet_tq.quantize %{{.*}} : tensor<256x2112xbf16> -> !octet_tq.qtensor<256x2112xf8E4M3FN, tile_1x128>
  %qdy = octet_tq.quantize %dy : tensor<256x2112xbf16> -> !octet_tq.qtensor<256x2112xf8E4M3FN, tile_1x128>
  // Dgrad with per-tensor scales: K = N = 2112 need not be a multiple of 128
  // and the tensor cores may accumulate all of it (promotion 0).
  %qdy2 = octet_tq.quantize %dy : tensor<256x2112xbf16> -> !octet_tq.qtensor<256x2112xf8E4M3FN, per_tensor>
  %qw2 = octet_tq.quantize %w : tensor<2112x512xf32> -> !octet_tq.qtensor<2112x512xf8E4M3FN, per_tensor>
  // CHECK: octet_tq.scaled_matmul %{{.*}}, %{{.*}} contract(1, 0) promotion(0) tile(<128x128x128, stages = 4>) : (!octet_tq.qtensor<256x2112xf8E4M3FN, per_tensor>, !octet_tq.qtensor<2112x512xf8E4M3FN, per_tensor>) -> tensor<256x512xbf16>
  %dx = octet_tq.scaled_matmul %qdy2, %qw2 contract(1, 0) promotion(0) tile(<128x128x128, stages = 4>)
      : (!octet_tq.qtensor<256x2112xf8E4M3FN, per_tensor>, !octet_tq.qtensor<2112x512xf8E4M3FN, per_tensor>)
      -> tensor<256x512xbf16>

  // Wgrad contracts the token dimension: both operands regrouped 128x1.
  // CHECK: %[[TDY:.*]] = octet_tq.requantize_transposed %[[QDY]] : !octet_tq.qtensor<256x2112xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x2112xf8E4M3FN, tile_128x1>
  %tdy = octet_tq.requantize_transposed %qdy
      : !octet_tq.qtensor<256x2112xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x2112xf8E4M3FN, tile_128x1>
  // CHECK: %[[TX:.*]] = octet_tq.requantize_transposed %[[QX]] pow2 : !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x512xf8E4M3FN, tile_128x1>
  %tx = octet_tq.requantize_transposed %qx pow2
      : !octet_tq.qtensor<256x512xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<256x512xf8E4M3FN, tile_128x1>
  // CHECK: octet_tq.scaled_matmul %[[TDY]], %[[TX]] contract(0, 0) promotion(64) tile(<128x256x64, stages = 6>) : (!octet_tq.qtensor<256x2112xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<256x512xf8E4M3FN, tile_128x1>) -> tensor<2112x512xf32>
  %dw = octet_tq.scaled_matmul %tdy, %tx contract(0, 0) promotion(64) tile(<128x256x64, stages = 6>)
      : (!octet_tq.qtensor<256x2112xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<256x512xf8E4M3FN, tile_128x1>)
      -> tensor<2112x512xf32>
  return %y, %dx, %dw : tensor<256x2112xbf16>, tensor<256x512xbf16>, tensor<2112x512xf32>
}

// CHECK-LABEL: func.func @quantize_variants
func.func @quantize_variants(%x: tensor<4x200x300xf32>, %d: tensor<?x256xbf16>) {
  // Partial groups (200, 300 are not multiples of 128) and batch dimensions.
  // CHECK: octet_tq.quantize %{{.*}} pow2 : tensor<4x200x300xf32> -> !octet_tq.qtensor<4x200x300xf8E4M3FN, block_128x128>
  %a = octet_tq.quantize %x pow2 : tensor<4x200x300xf32> -> !octet_tq.qtensor<4x200x300xf8E4M3FN, block_128x128>
  // CHECK: octet_tq.quantize %{{.*}} : tensor<4x200x300xf32> -> !octet_tq.qtensor<4x200x300xf8E5M2, tile_128x1>
  %b = octet_tq.quantize %x : tensor<4x200x300xf32> -> !octet_tq.qtensor<4x200x300xf8E5M2, tile_128x1>
  // CHECK: octet_tq.quantize %{{.*}} : tensor<?x256xbf16> -> !octet_tq.qtensor<?x256xf8E4M3FN, tile_1x128>
  %c = octet_tq.quantize %d : tensor<?x256xbf16> -> !octet_tq.qtensor<?x256xf8E4M3FN, tile_1x128>
  // CHECK: octet_tq.dequantize %{{.*}} : !octet_tq.qtensor<4x200x300xf8E4M3FN, block_128x128> -> tensor<4x200x300xf32>
  %e = octet_tq.dequantize %a : !octet_tq.qtensor<4x200x300xf8E4M3FN, block_128x128> -> tensor<4x200x300xf32>
  // CHECK: octet_tq.dequantize %{{.*}} : !octet_tq.qtensor<?x256xf8E4M3FN, tile_1x128> -> tensor<?x256xbf16>
  %f = octet_tq.dequantize %c : !octet_tq.qtensor<?x256xf8E4M3FN, tile_1x128> -> tensor<?x256xbf16>
  return
}

// CHECK-LABEL: func.func @constants
func.func @constants() -> (!octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<2x2xf8E5M2, per_tensor>) {
  // CHECK: octet_tq.constant <tile_1x128, payload = dense<{{\[}}[4.480000e+02, -2.000000e+00]]> : tensor<1x2xf8E4M3FN>, scales = dense<2.500000e-01> : tensor<1x1xf32>> : !octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>
  %a = octet_tq.constant <tile_1x128, payload = dense<[[448.0, -2.0]]> : tensor<1x2xf8E4M3FN>,
                          scales = dense<[[0.25]]> : tensor<1x1xf32>> : !octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>
  // CHECK: octet_tq.constant <per_tensor, payload = dense<5.734400e+04> : tensor<2x2xf8E5M2>, scales = dense<1.000000e+00> : tensor<f32>>
  %b = octet_tq.constant <per_tensor, payload = dense<57344.0> : tensor<2x2xf8E5M2>,
                          scales = dense<1.0> : tensor<f32>> : !octet_tq.qtensor<2x2xf8E5M2, per_tensor>
  return %a, %b : !octet_tq.qtensor<1x2xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<2x2xf8E5M2, per_tensor>
}

// The MoE expert GEMM over a contiguous layout.
// CHECK-LABEL: func.func @expert_gemm
// CHECK: octet_tq.grouped_scaled_matmul %{{.*}}, %{{.*}}, %{{.*}} promotion(128) tile(<128x64x128, stages = 5>) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
func.func @expert_gemm(%x: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                       %w: !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>,
                       %e: tensor<512xi32>) -> tensor<512x192xbf16> {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e promotion(128) tile(<128x64x128, stages = 5>)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x192x256xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x192xbf16>
  return %y : tensor<512x192xbf16>
}

// The expert gradients: Dgrad contracts N of the expert weights, Wgrad each
// expert's token rows. An explicit rhs_contract(2) is the default and is
// not printed.
// CHECK-LABEL: func.func @expert_gradients
// CHECK: octet_tq.grouped_scaled_matmul %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}} promotion(64) : (
// CHECK: octet_tq.grouped_scaled_matmul %{{.*}}, %{{.*}}, %{{.*}} rhs_contract(1) promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<4x256x384xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x384xbf16>
// CHECK: octet_tq.k_grouped_scaled_matmul %{{.*}}, %{{.*}}, %{{.*}} promotion(128) : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x256x384xf32>
func.func @expert_gradients(%x: !octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
                            %dy: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
                            %dyt: !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
                            %xt: !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>,
                            %w: !octet_tq.qtensor<4x256x384xf8E4M3FN, block_128x128>,
                            %e: tensor<512xi32>) -> (tensor<512x256xbf16>, tensor<512x384xbf16>, tensor<4x256x384xf32>) {
  %y = octet_tq.grouped_scaled_matmul %x, %w, %e rhs_contract(2) promotion(64)
         : (!octet_tq.qtensor<512x384xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x256x384xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x256xbf16>
  %dx = octet_tq.grouped_scaled_matmul %dy, %w, %e rhs_contract(1) promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>,
            !octet_tq.qtensor<4x256x384xf8E4M3FN, block_128x128>, tensor<512xi32>) -> tensor<512x384xbf16>
  %dw = octet_tq.k_grouped_scaled_matmul %dyt, %xt, %e promotion(128)
         : (!octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>,
            !octet_tq.qtensor<512x384xf8E4M3FN, tile_128x1>, tensor<512xi32>) -> tensor<4x256x384xf32>
  return %y, %dx, %dw : tensor<512x256xbf16>, tensor<512x384xbf16>, tensor<4x256x384xf32>
}

// Expert rows laid out on 128-row boundaries and back.
// CHECK-LABEL: func.func @align_groups
// CHECK: %{{.*}}, %{{.*}} = octet_tq.align_groups %{{.*}}, %{{.*}} : (tensor<1024x256xf32>, tensor<8xi32>) -> (tensor<1920x256xf32>, tensor<1920xi32>)
// CHECK: octet_tq.unalign_groups %{{.*}}, %{{.*}} : (tensor<1920x256xf32>, tensor<8xi32>) -> tensor<1024x256xf32>
func.func @align_groups(%x: tensor<1024x256xf32>, %s: tensor<8xi32>) -> (tensor<1024x256xf32>, tensor<1920xi32>) {
  %a, %i = octet_tq.align_groups %x, %s : (tensor<1024x256xf32>, tensor<8xi32>) -> (tensor<1920x256xf32>, tensor<1920xi32>)
  %r = octet_tq.unalign_groups %a, %s : (tensor<1920x256xf32>, tensor<8xi32>) -> tensor<1024x256xf32>
  return %r, %i : tensor<1024x256xf32>, tensor<1920xi32>
}

// Quantization fused into its producer.
// CHECK-LABEL: func.func @fused_quantize
// CHECK: octet_tq.rmsnorm_quantize %{{.*}}, %{{.*}} epsilon(1.0e-06) pow2 : (tensor<64x256xbf16>, tensor<256xf32>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
// CHECK: octet_tq.swiglu_quantize %{{.*}}, %{{.*}} : (tensor<64x256xbf16>, tensor<64x256xbf16>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
func.func @fused_quantize(%x: tensor<64x256xbf16>, %g: tensor<256xf32>)
    -> (!octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>) {
  %a = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-6) pow2
         : (tensor<64x256xbf16>, tensor<256xf32>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  %b = octet_tq.swiglu_quantize %x, %x
         : (tensor<64x256xbf16>, tensor<64x256xbf16>) -> !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
  return %a, %b : !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<64x256xf8E4M3FN, tile_1x128>
}

// Types and attributes standing alone.
// CHECK-LABEL: func.func @attributes
// CHECK-SAME: q = !octet_tq.qtensor<7xf8E5M2, per_tensor>
// CHECK-SAME: t = #octet_tq.tile<64x8x32, stages = 1>
// CHECK-SAME: u = #octet_tq.tile<128x128x128, stages = 2, overlap>
func.func @attributes() attributes {t = #octet_tq.tile<64x8x32, stages = 1>,
                                    u = #octet_tq.tile<128x128x128, stages = 2, overlap>,
                                    q = !octet_tq.qtensor<7xf8E5M2, per_tensor>} {
  return
}
