//===- Float8.cpp - FP8 and E5M6 conversions ------------------------------===//
//
// One generic encoder/decoder parameterised by the format's layout. The
// encoder rounds through double: an FP32 value divided by a power of two is
// exact in double, and std::nearbyint rounds to nearest even in the default
// rounding mode, so the rounding is exact, not an approximation.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/Float8.h"

#include <cfenv>
#include <cmath>
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
  bool negative = std::signbit(x);
  uint32_t sign = negative ? f.signBit() : 0;
  if (std::isnan(x))
    return sign | f.nanCode();
  double a = std::fabs(double(x));
  bool saturate = overflow == Overflow::Saturate;
  if (std::isinf(a))
    return sign | (saturate ? f.maxCode() : f.ieee ? f.infCode() : f.nanCode());
  if (a == 0.0)
    return sign;

  // The quantum (unit in the last place) of the binade holding `a`, or of
  // the subnormal range below the smallest normal.
  int exp = std::ilogb(a);
  if (exp < f.minNormalExp())
    exp = f.minNormalExp();
  double quantum = std::ldexp(1.0, exp - f.manBits);
  double rounded = std::nearbyint(a / quantum) * quantum;

  if (rounded > f.maxValue())
    return sign | (saturate ? f.maxCode() : f.ieee ? f.infCode() : f.nanCode());
  if (rounded == 0.0)
    return sign;
  int rexp = std::ilogb(rounded);
  if (rexp < f.minNormalExp()) {
    uint32_t m = uint32_t(std::ldexp(rounded, f.manBits - f.minNormalExp()));
    return sign | m;
  }
  uint32_t m = uint32_t(std::ldexp(rounded, f.manBits - rexp)) & f.manMask();
  uint32_t e = uint32_t(rexp + f.bias);
  return sign | (e << f.manBits) | m;
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
float octet::numerics::e4m3ToFloat(uint8_t bits) { return decode(kE4M3, bits); }

uint8_t octet::numerics::floatToE5M2(float x, Overflow overflow) {
  return uint8_t(encode(kE5M2, x, overflow));
}
float octet::numerics::e5m2ToFloat(uint8_t bits) { return decode(kE5M2, bits); }

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
