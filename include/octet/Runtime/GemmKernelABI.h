//===- GemmKernelABI.h - Generated FP8 GEMM kernels: the contract -*- C++ -*-===//
//
// What the compiler's Hopper GEMM generator (lib/Target/CUDA) and the
// runtime that launches its kernels agree on, with no MLIR or CUDA
// dependency: the configuration, the kernel name that encodes it, the
// launch shape and the argument list.
//
// Arguments, in order (matrices row-major, FP8 operands K-major):
//   tmapA, tmapB  pointers to CUtensorMap (128 bytes, in device memory) for
//                 A [M, K] and B [groups * N, K], uint8 elements, box
//                 {128, tileM} and {128, tileN}, 128-byte swizzle;
//   d             output [M, ldd] (BF16 or FP32);
//   scaleA        FP32 [K/128][M]: one scale per row and 128-group of K;
//   scaleB        FP32, Block128: [groups][ceil(N/128)][K/128];
//                         PerRow:   [K/128][N];
//   groupIndex    int32 [M], grouped kernels only: the expert of each row,
//                 constant over each tileM rows, -1 on padding tiles;
//   m, n, k, ldd  int32; K a multiple of 128, ldd even.
// Launch: a persistent grid of at most one CTA per SM (gridDim.x <= number
// of output tiles), numThreads() threads, sharedMemoryBytes() of dynamic
// shared memory.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_GEMMKERNELABI_H
#define OCTET_RUNTIME_GEMMKERNELABI_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/LogicalResult.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <optional>
#include <string>

namespace octet::runtime {

/// How the right-hand operand is scaled.
enum class RhsScaling {
  /// One scale per 128x128 block (Fprop, Dgrad): `1d2d` kernels.
  Block128,
  /// One scale per row of B and 128-group of K (Wgrad, both operands 1x128
  /// along K after the transposition): `1d1d` kernels.
  PerRow,
};

/// The largest dynamic shared memory of one CTA on sm_90 (227 KiB).
constexpr int64_t kSm90MaxSharedMemory = 232448;

struct GemmKernelConfig {
  RhsScaling rhsScaling = RhsScaling::Block128;
  /// MoE grouped GEMM over a contiguous expert layout: each tileM rows of A
  /// belong to one expert, whose B is rows [e*N, (e+1)*N) of tmapB.
  bool grouped = false;
  int64_t tileM = 128;     ///< 64 per consumer warpgroup: 64 or 128.
  int64_t tileN = 128;     ///< wgmma N: a multiple of 8, at most 128.
  int64_t tileK = 128;     ///< One scaling group (128 FP8 = one swizzled row).
  int64_t stages = 4;      ///< Shared-memory ring depth.
  int64_t promotion = 128; ///< K-elements between promotions: 32, 64, 128.
  bool outputBF16 = true;  ///< Otherwise FP32 output.
  /// The overlapped promotion schedule: each promotion interval's successor
  /// is issued before the interval is promoted (two scratch accumulators).
  bool overlap = false;

  int64_t numConsumers() const { return tileM / 64; }
  /// One producer warpgroup plus the consumers.
  int64_t numThreads() const { return 128 * (1 + numConsumers()); }
  int64_t stageBytes() const { return (tileM + tileN) * tileK; }
  /// Bytes of one stage's scales: A's per row of the tile, then B's (two
  /// 128x128 blocks, or one per column of the tile), padded to 16.
  int64_t scaleBytes() const {
    int64_t count = tileM + (rhsScaling == RhsScaling::Block128 ? 2 : tileN);
    return (count * 4 + 15) / 16 * 16;
  }
  /// Dynamic shared memory the launch must provide: the tile stages, their
  /// scales, then a full and an empty mbarrier per stage.
  int64_t sharedMemoryBytes() const {
    return stages * (stageBytes() + scaleBytes()) + stages * 16;
  }

  /// Whether the generator supports the combination; says why not on `os`.
  llvm::LogicalResult verify(llvm::raw_ostream &os) const {
    if (tileM != 64 && tileM != 128) {
      os << "tile M must be 64 or 128 (one or two consumer warpgroups), got "
         << tileM;
      return llvm::failure();
    }
    if (tileN < 8 || tileN > 128 || tileN % 8 != 0) {
      os << "tile N must be a multiple of 8 between 8 and 128, got " << tileN;
      return llvm::failure();
    }
    if (tileK != 128) {
      os << "tile K must be 128 (one scaling group, one 128-byte swizzled "
            "row), got "
         << tileK;
      return llvm::failure();
    }
    if (promotion != 32 && promotion != 64 && promotion != 128) {
      os << "promotion interval must be 32, 64 or 128, got " << promotion;
      return llvm::failure();
    }
    if (overlap && stages < 2) {
      os << "the overlapped schedule needs at least 2 stages, got " << stages;
      return llvm::failure();
    }
    if (stages < 1 || sharedMemoryBytes() > kSm90MaxSharedMemory) {
      os << stages << " stages of " << stageBytes()
         << " bytes do not fit the 227 KiB of shared memory of one CTA";
      return llvm::failure();
    }
    return llvm::success();
  }

  /// e.g. `octet_gemm_1d2d_bf16_m128n128k128_s5_p128` (then `_ov` for the
  /// overlapped schedule, `_grouped` for the expert GEMM).
  std::string name() const {
    return llvm::formatv("octet_gemm_{0}_{1}_m{2}n{3}k{4}_s{5}_p{6}{7}{8}",
                         rhsScaling == RhsScaling::Block128 ? "1d2d" : "1d1d",
                         outputBF16 ? "bf16" : "f32", tileM, tileN, tileK,
                         stages, promotion, overlap ? "_ov" : "",
                         grouped ? "_grouped" : "")
        .str();
  }

  /// The configuration a kernel name encodes (the inverse of name()).
  static std::optional<GemmKernelConfig> parse(llvm::StringRef name) {
    GemmKernelConfig c;
    if (!name.consume_front("octet_gemm_"))
      return std::nullopt;
    if (name.consume_front("1d2d_"))
      c.rhsScaling = RhsScaling::Block128;
    else if (name.consume_front("1d1d_"))
      c.rhsScaling = RhsScaling::PerRow;
    else
      return std::nullopt;
    if (name.consume_front("bf16_"))
      c.outputBF16 = true;
    else if (name.consume_front("f32_"))
      c.outputBF16 = false;
    else
      return std::nullopt;
    c.grouped = name.consume_back("_grouped");
    c.overlap = name.consume_back("_ov");
    auto number = [&](char tag, int64_t &out) {
      if (!name.consume_front(llvm::StringRef(&tag, 1)))
        return false;
      size_t digits = name.find_first_not_of("0123456789");
      llvm::StringRef text = name.take_front(digits);
      name = name.drop_front(text.size());
      return !text.getAsInteger(10, out);
    };
    if (!number('m', c.tileM) || !number('n', c.tileN) ||
        !number('k', c.tileK) || !name.consume_front("_") ||
        !number('s', c.stages) || !name.consume_front("_") ||
        !number('p', c.promotion) || !name.empty())
      return std::nullopt;
    return c;
  }
};

} // namespace octet::runtime

#endif // OCTET_RUNTIME_GEMMKERNELABI_H
