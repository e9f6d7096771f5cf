//===- Float8.h - FP8 and E5M6 conversions ----------------------*- C++ -*-===//
//
// Conversions between FP32 and the low-precision storage formats of the FP8
// recipe (../shared/reference/fp8-recipe.md):
//
//   format  bits  exp  mantissa  bias  max      inf  NaN
//   E4M3    8     4    3         7     448      no   S.1111.111 (MLIR f8E4M3FN)
//   E5M2    8     5    2         15    57344    yes  S.11111.xx, xx != 0
//   E5M6    12    5    6         15    65024    yes  S.11111.xxxxxx, != 0
//
// Every conversion rounds to nearest, ties to even, and handles subnormals.
// NaN stays NaN (sign kept). On overflow, `Saturate` gives +-max (the
// quantization rule: never inf or NaN from a finite or infinite input);
// `NonSaturate` gives what an IEEE-style conversion gives: inf where the
// format has one, NaN for E4M3 (as llvm::APFloat and the hardware do).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_FLOAT8_H
#define OCTET_NUMERICS_FLOAT8_H

#include <cstdint>

namespace octet::numerics {

/// The FP8 element formats of quantized tensors.
enum class FP8Format : uint8_t { E4M3, E5M2 };

/// What a conversion does with values beyond the largest finite one.
enum class Overflow : uint8_t { Saturate, NonSaturate };

uint8_t floatToE4M3(float x, Overflow overflow = Overflow::Saturate);
float e4m3ToFloat(uint8_t bits);

uint8_t floatToE5M2(float x, Overflow overflow = Overflow::Saturate);
float e5m2ToFloat(uint8_t bits);

/// 12-bit E5M6, stored in the low 12 bits.
uint16_t floatToE5M6(float x, Overflow overflow = Overflow::Saturate);
float e5m6ToFloat(uint16_t bits);

/// Dispatch on an FP8 format.
uint8_t floatToFP8(float x, FP8Format format,
                   Overflow overflow = Overflow::Saturate);
float fp8ToFloat(uint8_t bits, FP8Format format);

/// Largest finite value: 448 (E4M3) or 57344 (E5M2).
constexpr float fp8Max(FP8Format format) {
  return format == FP8Format::E4M3 ? 448.0f : 57344.0f;
}

/// Rounds `x` to the nearest FP8 value (saturating), kept in FP32.
inline float roundToFP8(float x, FP8Format format) {
  return fp8ToFloat(floatToFP8(x, format), format);
}

} // namespace octet::numerics

#endif // OCTET_NUMERICS_FLOAT8_H
