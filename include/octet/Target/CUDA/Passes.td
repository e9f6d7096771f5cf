//===- Passes.td - Octet CUDA target passes ---------------*- tablegen -*-===//
//
// The passes that turn `octet_tq` GEMMs into Hopper kernels. One pass per
// file in lib/Target/CUDA/, named after the pass; the reference page
// docs/generated/OctetCUDAPasses.md is generated from this file.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TARGET_CUDA_PASSES_TD
#define OCTET_TARGET_CUDA_PASSES_TD

include "mlir/Pass/PassBase.td"

def SelectGemmTilesPass : Pass<"octet-select-gemm-tiles"> {
  let summary = "Choose the tile shape and pipeline depth of FP8 GEMMs";
  let description = [{
    Gives every block-scaled `octet_tq.scaled_matmul`, and every expert
    GEMM (`grouped_scaled_matmul`, `k_grouped_scaled_matmul`, whose
    per-expert result is the M x N here), without a `tile` a
    `#octet_tq.tile<M x N x K, stages = S>` for the Hopper kernel generator:

    - `K = 128`: one scaling group per pipeline step;
    - `M = 128` (two consumer warpgroups), or 64 when the GEMM has at most
      64 rows;
    - `N` from 16 to 128 in steps of 16, the one that minimises the
      estimated time `waves x (M x N + (M + N) x 64)`: the work of one tile,
      plus a term for loading its operands, for every wave of tiles over the
      `num-sms` multiprocessors (the persistent grid);
    - `S`: as many stages as fit the shared memory, at most 8;
    - `overlap` when the option of that name is set (and `S >= 2`): the
      next promotion interval's wgmmas are issued before the current one is
      promoted.

    A tile that is already there is kept, unless `override` is set, so a
    user's pass (or hand-written IR) decides. Per-tensor GEMMs, which
    cuBLASLt serves, are left alone.

    ```mlir
    %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
           : (!octet_tq.qtensor<4096x7168xf8E4M3FN, tile_1x128>,
              !octet_tq.qtensor<2112x7168xf8E4M3FN, block_128x128>)
           -> tensor<4096x2112xbf16>
    ```

    becomes, with `--octet-select-gemm-tiles`:

    ```mlir
    %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
           tile(<128x112x128, stages = 7>)
           : (...) -> tensor<4096x2112xbf16>
    ```
  }];
  let dependentDialects = ["::octet::tq::OctetTQDialect"];
  let options = [
    Option<"numSMs", "num-sms", "int64_t", /*default=*/"132",
           "Streaming multiprocessors of the target GPU (H100 SXM: 132)">,
    Option<"sharedMemoryBytes", "shared-memory", "int64_t",
           /*default=*/"232448",
           "Dynamic shared memory of one CTA in bytes (sm_90: 227 KiB)">,
    Option<"maxStages", "max-stages", "int64_t", /*default=*/"8",
           "Upper bound on the shared-memory pipeline depth">,
    Option<"overrideExisting", "override", "bool", /*default=*/"false",
           "Replace tiles the IR already has">,
    Option<"overlap", "overlap", "bool", /*default=*/"false",
           "Choose the overlapped promotion schedule (`overlap` in the tile; "
           "not yet measured on a GPU, so off by default)">
  ];
}

def GenerateGemmKernelsPass
    : Pass<"octet-generate-gemm-kernels", "::mlir::ModuleOp"> {
  let summary = "Generate the Hopper FP8 GEMM kernels of octet_tq.scaled_matmul";
  let description = [{
    For every block-scaled `octet_tq.scaled_matmul`, writes the kernel that
    computes it into `gpu.module @octet_kernels` (one kernel per distinct
    configuration; M, N and K are run-time arguments) and records it on the
    op as `octet_tq.kernel`. The kernel is warp-specialised and persistent:
    a producer warpgroup (40 registers after `setmaxnreg`) streams A and B
    tiles with TMA into a ring of 128-byte swizzled shared-memory stages
    guarded by mbarriers; one or two consumer warpgroups (232 registers)
    issue `wgmma.mma_async m64nNk32 e4m3 x e4m3 -> f32` with both operands
    K-major, and every `promotion` K-elements add the partial sums times
    the product of the two scales to an FP32 accumulator (one fused
    multiply-add per element, like `numerics::scaledGemm`). The next
    interval's wgmmas are issued right after a promotion, so they run while
    the consumer loops on. With `overlap` in the tile they are issued before
    it, into a second scratch accumulator (`wgmma.wait_group 1` then leaves
    them running while the current interval is promoted); the K loop then
    covers two K-groups per iteration and the last one or two are peeled
    after it, so that every issue inside it is unconditional. The producer
    copies each K-group's scales into
    the shared-memory slot next to its tiles (`cp.async`). The
    output is BF16 or FP32 and may be any M x N (stores are bounds-checked).

    Both operands of wgmma FP8 must be K-major, so `octet_tq.transposed` on
    the op names the operands the runtime passes transposed:
    Fprop (`contract(1, 1)`) none, Dgrad (`contract(1, 0)`) the weight, and
    Wgrad (`contract(0, 0)`, 128x1 tiles) both; the Wgrad kernel scales B
    per row (`1d1d`), Fprop and Dgrad per 128x128 block (`1d2d`).

    The expert GEMMs: `octet_tq.grouped_scaled_matmul` gets the `_grouped`
    kernel, which reads each 128-row tile's expert from `group_index` and
    skips padding tiles; its Dgrad form (`rhs_contract(1)`) passes the
    expert weights transposed. `octet_tq.k_grouped_scaled_matmul` (the
    expert Wgrad) gets the Wgrad kernel, which the runtime launches once per
    expert on that expert's aligned rows (`grouping: "k"` in the kernel
    manifest).

    ```mlir
    %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
           tile(<128x128x128, stages = 4>) : (...) -> tensor<256x256xbf16>
    ```

    becomes

    ```mlir
    %y = octet_tq.scaled_matmul %x, %w contract(1, 1) promotion(128)
           tile(<128x128x128, stages = 4>)
           {octet_tq.kernel = @octet_kernels::@octet_gemm_1d2d_bf16_m128n128k128_s4_p128,
            octet_tq.transposed = array<i1: false, false>}
           : (...) -> tensor<256x256xbf16>
    gpu.module @octet_kernels {
      gpu.func @octet_gemm_1d2d_bf16_m128n128k128_s4_p128(...) kernel
          attributes {nvvm.maxntid = array<i32: 384, 1, 1>, ...} {
        ...
        nvvm.wgmma.mma_async ...
      }
    }
    ```
  }];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::scf::SCFDialect",
    "::mlir::arith::ArithDialect"
  ];
}

def GenerateQuantizeKernelsPass
    : Pass<"octet-generate-quantize-kernels", "::mlir::ModuleOp"> {
  let summary = "Generate the Hopper FP8 quantization kernels of octet_tq";
  let description = [{
    For every `octet_tq.quantize`, `octet_tq.requantize_transposed`,
    `octet_tq.rmsnorm_quantize` and `octet_tq.swiglu_quantize` to E4M3,
    writes the kernel that computes it into `gpu.module
    @octet_kernels` (one per configuration) and records it on the op as
    `octet_tq.kernel`. The kernels are memory-bound and give the same bits
    as the numerics library (amax over finite elements, `max(amax, 1e-4) /
    448` or its power of two, IEEE division, `cvt.rn.satfinite.e4m3x2`):

    - `tile_1x128`: one warp per 128-element group (one vector load per
      lane, butterfly-shuffle amax), scales written `[cols/128][rows]` as
      the GEMM kernels take them; the last dimension must be a multiple
      of 128;
    - `block_128x128`: one CTA per block, amax across its eight warps;
    - `rmsnorm_quantize`: one CTA per row (sum of squares across its warps,
      then each warp normalizes and quantizes every eighth group);
      `swiglu_quantize`: as `tile_1x128`, reading gate and up;
    - `tile_128x1` (quantize) and `requantize_transposed`: one CTA per
      128x128 tile, written transposed (`[cols][rows]`), as the weight
      gradient GEMM contracts over tokens; the rows (tokens) must be a
      multiple of 128, and for `requantize_transposed` the columns too.

    ```mlir
    %q = octet_tq.quantize %x : tensor<512x256xbf16>
           -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
    ```

    becomes

    ```mlir
    %q = octet_tq.quantize %x {octet_tq.kernel = @octet_kernels::@octet_quantize_1x128_bf16}
           : tensor<512x256xbf16> -> !octet_tq.qtensor<512x256xf8E4M3FN, tile_1x128>
    gpu.module @octet_kernels {
      gpu.func @octet_quantize_1x128_bf16(...) kernel { ... }
    }
    ```
  }];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::scf::SCFDialect",
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect"
  ];
}

#endif // OCTET_TARGET_CUDA_PASSES_TD
