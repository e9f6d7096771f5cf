//===- QuantizeKernelABI.h - Generated quantization kernels ----*- C++ -*-===//
//
// The contract of the quantization kernels lib/Target/CUDA generates (E4M3,
// scales as octet_tq.quantize defines them), with no MLIR or CUDA
// dependency. Every kernel has 256 threads; outputs are laid out as the
// GEMM kernels take them (GemmKernelABI.h).
//
//   Tile1x128       (x, q, scales, rows, cols): x [rows][cols] BF16 or
//                   FP32, cols % 128 == 0; q [rows][cols]; scales
//                   [cols/128][rows]. Grid: any (warps stride over groups).
//   Block128x128    (x, q, scales, rows, cols): x [batch][rows][cols],
//                   cols % 128 == 0; scales [batch][ceil(rows/128)][cols/128].
//                   Grid (cols/128, ceil(rows/128), batch).
//   Tile128x1       (x, qT, sT, rows, cols): quantizes x [rows][cols] (BF16
//                   or FP32) in 128x1 groups and writes it transposed, as
//                   the weight-gradient GEMM takes it: qT [cols][rows], sT
//                   [rows/128][cols]; rows a multiple of 128. Grid
//                   (ceil(cols/128), rows/128).
//   RMSNorm1x128    (x, gamma, q, scales, rows, cols, epsilon: f32):
//                   quantize(rmsnorm(x, gamma)) in 1x128 tiles, layouts as
//                   Tile1x128; gamma [cols]. Grid: one CTA per row.
//   SwiGLU1x128     (gate, up, q, scales, rows, cols): quantize(gate *
//                   sigmoid(gate) * up), layouts as Tile1x128. Grid: any.
//   Transpose128x1  (q, s, qT, sT, rows, cols): re-quantizes a 1x128-tiled
//                   q [rows][cols] with s [cols/128][rows] into 128x1 groups,
//                   written transposed: qT [cols][rows], sT [rows/128][cols];
//                   rows and cols multiples of 128. Grid (cols/128,
//                   rows/128).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_QUANTIZEKERNELABI_H
#define OCTET_RUNTIME_QUANTIZEKERNELABI_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace octet::runtime {

enum class QuantizeKind {
  Tile1x128,
  Block128x128,
  Tile128x1,
  Transpose128x1,
  RMSNorm1x128,
  SwiGLU1x128,
};

struct QuantizeKernelConfig {
  QuantizeKind kind = QuantizeKind::Tile1x128;
  /// BF16 input, else FP32 (the transposing kernel reads FP8).
  bool inputBF16 = true;
  /// RMSNorm1x128: a BF16 gain, else FP32.
  bool gammaBF16 = false;
  /// Power-of-two scales (2^ceil(log2(amax / 448))).
  bool pow2 = false;

  static constexpr int64_t kThreads = 256;

  /// e.g. `octet_quantize_1x128_bf16`, `octet_requantize_128x1_pow2`.
  std::string name() const {
    std::string n;
    switch (kind) {
    case QuantizeKind::Tile1x128:
      n = std::string("octet_quantize_1x128_") + (inputBF16 ? "bf16" : "f32");
      break;
    case QuantizeKind::Block128x128:
      n = std::string("octet_quantize_128x128_") + (inputBF16 ? "bf16" : "f32");
      break;
    case QuantizeKind::Tile128x1:
      n = std::string("octet_quantize_128x1_") + (inputBF16 ? "bf16" : "f32");
      break;
    case QuantizeKind::Transpose128x1:
      n = "octet_requantize_128x1";
      break;
    case QuantizeKind::RMSNorm1x128:
      n = std::string("octet_rmsnorm_quantize_1x128_") +
          (inputBF16 ? "bf16" : "f32") + (gammaBF16 ? "_gbf16" : "_gf32");
      break;
    case QuantizeKind::SwiGLU1x128:
      n = std::string("octet_swiglu_quantize_1x128_") +
          (inputBF16 ? "bf16" : "f32");
      break;
    }
    return pow2 ? n + "_pow2" : n;
  }

  static std::optional<QuantizeKernelConfig> parse(llvm::StringRef name) {
    QuantizeKernelConfig c;
    c.pow2 = name.consume_back("_pow2");
    if (name == "octet_requantize_128x1") {
      c.kind = QuantizeKind::Transpose128x1;
      c.inputBF16 = false;
      return c;
    }
    if (name.consume_front("octet_rmsnorm_quantize_1x128_")) {
      c.kind = QuantizeKind::RMSNorm1x128;
      if (name.consume_back("_gbf16"))
        c.gammaBF16 = true;
      else if (!name.consume_back("_gf32"))
        return std::nullopt;
    } else if (name.consume_front("octet_swiglu_quantize_1x128_"))
      c.kind = QuantizeKind::SwiGLU1x128;
    else if (name.consume_front("octet_quantize_1x128_"))
      c.kind = QuantizeKind::Tile1x128;
    else if (name.consume_front("octet_quantize_128x128_"))
      c.kind = QuantizeKind::Block128x128;
    else if (name.consume_front("octet_quantize_128x1_"))
      c.kind = QuantizeKind::Tile128x1;
    else
      return std::nullopt;
    if (name == "bf16")
      c.inputBF16 = true;
    else if (name == "f32")
      c.inputBF16 = false;
    else
      return std::nullopt;
    return c;
  }
};

} // namespace octet::runtime

#endif // OCTET_RUNTIME_QUANTIZEKERNELABI_H
