//===- BFloat16.h - BF16 storage and rounding -------------------*- C++ -*-===//
//
// BF16 is FP32 with the low 16 mantissa bits dropped. Conversion from FP32
// rounds to nearest, ties to even; overflow rounds to infinity (as IEEE
// conversion does); NaN stays NaN (made quiet, sign kept). Arithmetic on BF16
// values is done in FP32 and rounded once per stored result.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_BFLOAT16_H
#define OCTET_NUMERICS_BFLOAT16_H

#include <cstdint>
#include <cstring>

namespace octet::numerics {

/// FP32 -> BF16 bits, round to nearest even.
inline uint16_t floatToBF16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep sign and payload top.
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t lsb = (bits >> 16) & 1u;
  bits += 0x7fffu + lsb;
  return static_cast<uint16_t>(bits >> 16);
}

/// BF16 bits -> FP32 (exact).
inline float bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

/// Rounds an FP32 value to the nearest BF16 value, kept in FP32.
inline float roundToBF16(float x) { return bf16ToFloat(floatToBF16(x)); }

} // namespace octet::numerics

#endif // OCTET_NUMERICS_BFLOAT16_H
