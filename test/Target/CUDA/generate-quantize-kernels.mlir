// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-generate-quantize-kernels | FileCheck %s

// 1x128 tiles: one warp per group of 128 elements, four per lane (one
// 8-byte BF16 load), amax by five butterfly shuffles, the recipe's scale
// (max(amax, 1e-4) / 448), an IEEE division per element, two cvt of an
// E4M3 pair, one 4-byte store per lane and the scale from lane 0.
// CHECK-LABEL: func.func @tile
// CHECK: octet_tq.quantize {{.*}} {octet_tq.kernel = @octet_kernels::@octet_quantize_1x128_bf16}
// CHECK: octet_tq.quantize {{.*}} {octet_tq.kernel = @octet_kernels::@octet_quantize_1x128_bf16_pow2}
// CHECK: gpu.module @octet_kernels
// CHECK: gpu.func @octet_quantize_1x128_bf16(%{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: i32, %{{.*}}: i32) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>}
// CHECK: scf.for
// CHECK: llvm.load {{.*}} -> vector<4xbf16>
// CHECK-COUNT-5: nvvm.shfl.sync bfly
// CHECK: arith.maxnumf %{{.*}}, %cst
// CHECK: arith.divf %{{.*}}, %cst
// CHECK-COUNT-4: arith.divf
// CHECK-COUNT-2: nvvm.convert.f32x2.to.f8x2 {{.*}} {rnd = #nvvm.fp_rnd_mode<rn>, sat = #nvvm.sat_mode<satfinite>} : i16(f8E4M3FN)
// CHECK: llvm.store {{.*}} : i32, !llvm.ptr<1>
// CHECK: scf.if
// CHECK: llvm.store {{.*}} : f32, !llvm.ptr<1>
// Power-of-two scales round the bits up to the next exponent.
// CHECK: gpu.func @octet_quantize_1x128_bf16_pow2
// CHECK: arith.addi %{{.*}}, %c8388607_i32
// CHECK: arith.andi %{{.*}}, %c-8388608_i32
func.func @tile(%x: tensor<300x256xbf16>)
    -> (!octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>) {
  %q = octet_tq.quantize %x : tensor<300x256xbf16> -> !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>
  %p = octet_tq.quantize %x pow2 : tensor<300x256xbf16> -> !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>
  return %q, %p : !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<300x256xf8E4M3FN, tile_1x128>
}

// -----

// 128x128 blocks: 16 rows x 4 columns per thread, the block's amax through
// a shared array of the eight warps' maxima.
// CHECK-LABEL: func.func @block
// CHECK: llvm.mlir.global internal @octet_quantize_amax() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<8 x f32>
// CHECK: gpu.func @octet_quantize_128x128_f32
// CHECK-COUNT-16: llvm.load {{.*}} -> vector<4xf32>
// CHECK: nvvm.barrier0
// CHECK-COUNT-32: nvvm.convert.f32x2.to.f8x2
func.func @block(%w: tensor<2112x256xf32>) -> !octet_tq.qtensor<2112x256xf8E4M3FN, block_128x128> {
  %q = octet_tq.quantize %w : tensor<2112x256xf32> -> !octet_tq.qtensor<2112x256xf8E4M3FN, block_128x128>
  return %q : !octet_tq.qtensor<2112x256xf8E4M3FN, block_128x128>
}

// -----

// 128x1 groups for the weight gradient, quantized or re-quantized from
// 1x128 tiles: a thread dequantizes (FP8 pair conversion, times the row's
// scale) four columns over 16 rows, 64 loads in flight, the warps combine
// their column amaxes through shared memory, and each column's 16 bytes of
// the transposed output go out in one 16-byte store.
// CHECK-LABEL: func.func @columns
// CHECK: gpu.func @octet_quantize_128x1_bf16
// CHECK: gpu.func @octet_requantize_128x1(%{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: i32, %{{.*}}: i32)
// CHECK: nvvm.convert.f8x2.to.f16x2 {{.*}} : vector<2xi8>(f8E4M3FN) -> vector<2xf16>
// CHECK: arith.mulf
// CHECK-COUNT-4: llvm.store {{.*}} : f32, !llvm.ptr<3>
// CHECK: nvvm.barrier0
// CHECK-COUNT-4: llvm.store {{.*}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr<1>
// CHECK-NOT: llvm.store {{.*}} : vector<4xi32>, !llvm.ptr<1>
// CHECK: gpu.return
func.func @columns(%x: tensor<512x160xbf16>, %t: !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>)
    -> (!octet_tq.qtensor<512x160xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>) {
  %q = octet_tq.quantize %x : tensor<512x160xbf16> -> !octet_tq.qtensor<512x160xf8E4M3FN, tile_128x1>
  %r = octet_tq.requantize_transposed %t : !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128> -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>
  return %q, %r : !octet_tq.qtensor<512x160xf8E4M3FN, tile_128x1>, !octet_tq.qtensor<512x256xf8E4M3FN, tile_128x1>
}

// -----

func.func @ragged_k(%x: tensor<64x200xbf16>) -> !octet_tq.qtensor<64x200xf8E4M3FN, tile_1x128> {
  // expected-error@+1 {{has no Hopper kernel for shape 64x200: the last dimension must be a static multiple of 128}}
  %q = octet_tq.quantize %x : tensor<64x200xbf16> -> !octet_tq.qtensor<64x200xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<64x200xf8E4M3FN, tile_1x128>
}

// -----

func.func @ragged_tokens(%x: tensor<100x256xbf16>) -> !octet_tq.qtensor<100x256xf8E4M3FN, tile_128x1> {
  // expected-error@+1 {{has no Hopper kernel for shape 100x256: 128x1 groups are written transposed for the weight-gradient GEMM, which contracts over the rows: they must be a static multiple of 128}}
  %q = octet_tq.quantize %x : tensor<100x256xbf16> -> !octet_tq.qtensor<100x256xf8E4M3FN, tile_128x1>
  return %q : !octet_tq.qtensor<100x256xf8E4M3FN, tile_128x1>
}

// -----

func.func @e5m2(%x: tensor<64x256xbf16>) -> !octet_tq.qtensor<64x256xf8E5M2, tile_1x128> {
  // expected-error@+1 {{has no Hopper kernel for 'f8E5M2': the kernels write E4M3}}
  %q = octet_tq.quantize %x : tensor<64x256xbf16> -> !octet_tq.qtensor<64x256xf8E5M2, tile_1x128>
  return %q : !octet_tq.qtensor<64x256xf8E5M2, tile_1x128>
}

// -----

func.func @per_tensor(%x: tensor<64x256xbf16>) -> !octet_tq.qtensor<64x256xf8E4M3FN, per_tensor> {
  // expected-error@+1 {{has no Hopper kernel for per_tensor scales}}
  %q = octet_tq.quantize %x : tensor<64x256xbf16> -> !octet_tq.qtensor<64x256xf8E4M3FN, per_tensor>
  return %q : !octet_tq.qtensor<64x256xf8E4M3FN, per_tensor>
}

// -----

func.func @vector(%x: tensor<256xbf16>) -> !octet_tq.qtensor<256xf8E4M3FN, tile_1x128> {
  // expected-error@+1 {{has no Hopper kernel for rank 1: the kernels take matrices}}
  %q = octet_tq.quantize %x : tensor<256xbf16> -> !octet_tq.qtensor<256xf8E4M3FN, tile_1x128>
  return %q : !octet_tq.qtensor<256xf8E4M3FN, tile_1x128>
}

// -----

// Fused producers. RMSNorm + quantize: one CTA per row, a sum of squares
// (four elements per thread, warp sums, eight partials in shared memory),
// 1 / sqrt(mean + epsilon), then each warp normalizes and quantizes every
// eighth 128-element group (x * inv * gamma, rounded to BF16 like the
// unfused norm's result). SwiGLU + quantize: gate * sigmoid(gate) * up per
// element, then the 1x128 quantization.
// CHECK-LABEL: func.func @fused
// CHECK: octet_tq.rmsnorm_quantize {{.*}}octet_tq.kernel = @octet_kernels::@octet_rmsnorm_quantize_1x128_bf16_gf32
// CHECK: octet_tq.swiglu_quantize {{.*}}octet_tq.kernel = @octet_kernels::@octet_swiglu_quantize_1x128_bf16_pow2
// CHECK: gpu.func @octet_rmsnorm_quantize_1x128_bf16_gf32(%{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: i32, %{{.*}}: i32, %{{.*}}: f32)
// CHECK: nvvm.read.ptx.sreg.ctaid.x
// CHECK: scf.for
// CHECK-COUNT-4: arith.mulf
// CHECK-COUNT-5: nvvm.shfl.sync bfly
// CHECK: nvvm.barrier0
// CHECK: math.sqrt
// CHECK: scf.for
// CHECK: llvm.load {{.*}} -> vector<4xf32>
// CHECK: arith.truncf {{.*}} : f32 to bf16
// CHECK-COUNT-2: nvvm.convert.f32x2.to.f8x2
// CHECK: gpu.func @octet_swiglu_quantize_1x128_bf16_pow2
// CHECK-COUNT-4: math.exp
func.func @fused(%x: tensor<300x512xbf16>, %g: tensor<512xf32>, %a: tensor<300x512xbf16>)
    -> (!octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>) {
  %n = octet_tq.rmsnorm_quantize %x, %g epsilon(1.0e-06) : (tensor<300x512xbf16>, tensor<512xf32>) -> !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>
  %s = octet_tq.swiglu_quantize %x, %a pow2 : (tensor<300x512xbf16>, tensor<300x512xbf16>) -> !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>
  return %n, %s : !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>, !octet_tq.qtensor<300x512xf8E4M3FN, tile_1x128>
}
