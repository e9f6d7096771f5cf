//===- Float8.cpp - FP8 and E5M6 conversions ------------------------------===//
//
// One generic encoder/decoder parameterised by the format's layout. The
// encoder rounds through double: an FP32 value divided by a power of two is
// exact in double, and std::nearbyint rounds to nearest even in the default
// rounding mode, so the rounding is exact, not an approximation.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/Float8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

using namespace octet::numerics;

namespace {

struct Layout {
  int expBits;
  int manBits;
  int bias;
  /// IEEE style (all-ones exponent = inf/NaN) or E4M3FN style (only the
  /// all-ones code is NaN; the rest of the top binade is finite).
  bool ieee;

  int totalBits() const { return 1 + expBits + manBits; }
  uint32_t signBit() const { return 1u << (expBits + manBits); }
  uint32_t expMask() const { return (1u << expBits) - 1; }
  uint32_t manMask() const { return (1u << manBits) - 1; }
  int minNormalExp() const { return 1 - bias; }
  uint32_t nanCode() const {
    return ieee ? (expMask() << manBits) | (1u << (manBits - 1))
                : (expMask() << manBits) | manMask();
  }
  uint32_t infCode() const { return expMask() << manBits; }
  uint32_t maxCode() const {
    return ieee ? ((expMask() - 1) << manBits) | manMask()
                : (expMask() << manBits) | (manMask() - 1);
  }
  double maxValue() const { return decodeMagnitude(maxCode()); }

  double decodeMagnitude(uint32_t code) const {
    uint32_t e = (code >> manBits) & expMask();
    uint32_t m = code & manMask();
    if (e == 0)
      return std::ldexp(double(m), minNormalExp() - manBits);
    return std::ldexp(double((1u << manBits) | m), int(e) - bias - manBits);
  }
};

constexpr Layout kE4M3{4, 3, 7, false};
constexpr Layout kE5M2{5, 2, 15, true};
constexpr Layout kE5M6{5, 6, 15, true};

uint32_t encode(const Layout &f, float x, Overflow overflow) {
  // Integer rounding on the FP32 bits: quantization runs over every element
  // of every FP8 GEMM operand, so this is a hot path. The exhaustive tests
  // against llvm::APFloat pin it.
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  uint32_t sign = (u >> 31) ? f.signBit() : 0;
  uint32_t a = u & 0x7fffffffu;
  bool saturate = overflow == Overflow::Saturate;
  uint32_t overflowCode = saturate ? f.maxCode()
                          : f.ieee ? f.infCode()
                                   : f.nanCode();
  if (a > 0x7f800000u)
    return sign | f.nanCode();
  if (a == 0x7f800000u)
    return sign | overflowCode;
  int e = int(a >> 23) - 127;
  int minNormal = f.minNormalExp();
  // Below half the smallest subnormal (FP32 subnormals included): zero.
  if (a < 0x00800000u || e < minNormal - f.manBits - 1)
    return sign;
  uint32_t m = (a & 0x7fffffu) | 0x800000u;
  int shift = 23 - f.manBits + std::max(0, minNormal - e);
  uint32_t rounded = m >> shift;
  uint32_t rest = m & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (rounded & 1)))
    ++rounded;
  uint32_t code;
  if (e >= minNormal) {
    if (rounded == (2u << f.manBits)) { // Carried into the next binade.
      rounded >>= 1;
      ++e;
    }
    int field = e + f.bias;
    if (field > int(f.expMask()))
      return sign | overflowCode;
    code = (uint32_t(field) << f.manBits) | (rounded & f.manMask());
  } else {
    // Subnormal target; rounding up to 2^manBits lands on the smallest
    // normal, whose code is exactly that value.
    code = rounded;
  }
  bool tooBig = f.ieee ? code >= f.infCode() : code > f.maxCode();
  if (tooBig)
    return sign | overflowCode;
  return sign | code;
}

float decode(const Layout &f, uint32_t code) {
  bool negative = code & f.signBit();
  uint32_t magnitude = code & (f.signBit() - 1);
  float result;
  if (magnitude == f.nanCode() ||
      (f.ieee && (magnitude >> f.manBits) == f.expMask() &&
       (magnitude & f.manMask()) != 0))
    result = std::numeric_limits<float>::quiet_NaN();
  else if (f.ieee && magnitude == f.infCode())
    result = std::numeric_limits<float>::infinity();
  else
    result = float(f.decodeMagnitude(magnitude));
  return negative ? -result : result;
}

} // namespace

uint8_t octet::numerics::floatToE4M3(float x, Overflow overflow) {
  return uint8_t(encode(kE4M3, x, overflow));
}
namespace {
/// Every FP8 value, decoded once: widening payloads is on the hot path of
/// the CPU backend's FP8 GEMMs.
struct DecodeTables {
  float e4m3[256], e5m2[256];
  DecodeTables() {
    for (int i = 0; i < 256; ++i) {
      e4m3[i] = decode(kE4M3, uint32_t(i));
      e5m2[i] = decode(kE5M2, uint32_t(i));
    }
  }
};
const DecodeTables &decodeTables() {
  static const DecodeTables tables;
  return tables;
}
} // namespace

float octet::numerics::e4m3ToFloat(uint8_t bits) {
  return decodeTables().e4m3[bits];
}

uint8_t octet::numerics::floatToE5M2(float x, Overflow overflow) {
  return uint8_t(encode(kE5M2, x, overflow));
}
float octet::numerics::e5m2ToFloat(uint8_t bits) {
  return decodeTables().e5m2[bits];
}

uint16_t octet::numerics::floatToE5M6(float x, Overflow overflow) {
  return uint16_t(encode(kE5M6, x, overflow));
}
float octet::numerics::e5m6ToFloat(uint16_t bits) {
  return decode(kE5M6, bits & 0xfffu);
}

uint8_t octet::numerics::floatToFP8(float x, FP8Format format,
                                    Overflow overflow) {
  return format == FP8Format::E4M3 ? floatToE4M3(x, overflow)
                                   : floatToE5M2(x, overflow);
}

float octet::numerics::fp8ToFloat(uint8_t bits, FP8Format format) {
  return format == FP8Format::E4M3 ? e4m3ToFloat(bits) : e5m2ToFloat(bits);
}
