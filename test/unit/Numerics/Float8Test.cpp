//===- Float8Test.cpp - FP8/E5M6/BF16 conversions against llvm::APFloat ---===//
//
// llvm::APFloat is an independent implementation of every format here but
// E5M6, which is checked against a brute-force nearest-value search.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/Float8.h"
#include "octet/Numerics/BFloat16.h"

#include "llvm/ADT/APFloat.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace octet::numerics;
using llvm::APFloat;

namespace {

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

const llvm::fltSemantics &semanticsOf(FP8Format format) {
  return format == FP8Format::E4M3 ? APFloat::Float8E4M3FN()
                                   : APFloat::Float8E5M2();
}

/// What APFloat says an FP32 -> FP8 conversion gives, with saturation
/// applied on top for the quantization mode.
uint8_t apfloatEncode(float x, FP8Format format, Overflow overflow) {
  APFloat v(x);
  bool losesInfo;
  v.convert(semanticsOf(format), APFloat::rmNearestTiesToEven, &losesInfo);
  if (overflow == Overflow::Saturate && !std::isnan(x) &&
      (v.isInfinity() || v.isNaN())) {
    APFloat max = APFloat::getLargest(semanticsOf(format), std::signbit(x));
    return uint8_t(max.bitcastToAPInt().getZExtValue());
  }
  return uint8_t(v.bitcastToAPInt().getZExtValue());
}

float apfloatDecode(uint8_t bits, FP8Format format) {
  APFloat v(semanticsOf(format), llvm::APInt(8, bits));
  bool losesInfo;
  v.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &losesInfo);
  return v.convertToFloat();
}

bool isNaNCode(uint8_t bits, FP8Format format) {
  return std::isnan(apfloatDecode(bits, format));
}

/// Our encoding agrees with APFloat's: identical bits, or both NaN with the
/// same sign.
::testing::AssertionResult agrees(float x, FP8Format format,
                                  Overflow overflow) {
  uint8_t ours = floatToFP8(x, format, overflow);
  uint8_t ref = apfloatEncode(x, format, overflow);
  if (ours == ref || (isNaNCode(ours, format) && isNaNCode(ref, format) &&
                      (ours & 0x80) == (ref & 0x80)))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "x = " << x << " (bits 0x" << std::hex <<
         [&] {
           uint32_t b;
           std::memcpy(&b, &x, 4);
           return b;
         }()
         << ") " << (format == FP8Format::E4M3 ? "E4M3" : "E5M2")
         << (overflow == Overflow::Saturate ? " saturating" : "") << ": ours 0x"
         << int(ours) << ", APFloat 0x" << int(ref);
}

const FP8Format kFormats[] = {FP8Format::E4M3, FP8Format::E5M2};
const Overflow kModes[] = {Overflow::Saturate, Overflow::NonSaturate};

TEST(Float8Test, EveryCodeDecodesAsAPFloatSaysAndRoundTrips) {
  for (FP8Format format : kFormats)
    for (int code = 0; code < 256; ++code) {
      float ours = fp8ToFloat(uint8_t(code), format);
      float ref = apfloatDecode(uint8_t(code), format);
      if (std::isnan(ref)) {
        EXPECT_TRUE(std::isnan(ours)) << code;
        continue;
      }
      EXPECT_EQ(std::memcmp(&ours, &ref, 4), 0) << code;
      // Every finite or infinite code is a fixed point of encode(decode()).
      EXPECT_EQ(floatToFP8(ours, format, Overflow::NonSaturate), code)
          << "code 0x" << std::hex << code;
    }
}

TEST(Float8Test, EveryBF16ValueEncodesAsAPFloatSays) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float x = bf16ToFloat(uint16_t(h));
    for (FP8Format format : kFormats)
      for (Overflow mode : kModes)
        ASSERT_TRUE(agrees(x, format, mode));
  }
}

TEST(Float8Test, TenMillionRandomFloatsEncodeAsAPFloatSays) {
  std::mt19937 gen(20261123);
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_real_distribution<float> exponent(-22.0f, 18.0f);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  for (int i = 0; i < 10'000'000; ++i) {
    // Half random bit patterns (every exponent, NaNs, infinities), half
    // values in and around the FP8 ranges, where rounding matters.
    float x =
        (i & 1) ? bitsToFloat(bits(gen)) : unit(gen) * std::exp2(exponent(gen));
    FP8Format format = kFormats[(i >> 1) & 1];
    Overflow mode = kModes[(i >> 2) & 1];
    ASSERT_TRUE(agrees(x, format, mode));
  }
}

TEST(Float8Test, BoundaryCases) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> cases = {0.0f,
                              -0.0f,
                              inf,
                              -inf,
                              nan,
                              -nan,
                              std::numeric_limits<float>::denorm_min(),
                              std::numeric_limits<float>::min(),
                              std::numeric_limits<float>::max()};
  for (FP8Format format : kFormats) {
    // Smallest subnormal s: s/2 ties to 0, 3s/2 ties to 2s, just above s/2
    // rounds up.
    float s = format == FP8Format::E4M3 ? std::ldexp(1.0f, -9)
                                        : std::ldexp(1.0f, -16);
    float max = fp8Max(format);
    float ulpAtMax = format == FP8Format::E4M3 ? 32.0f : 8192.0f;
    for (float v :
         {s, s / 2, 3 * s / 2, std::nextafter(s / 2, 1.0f),
          std::nextafter(s / 2, 0.0f), 4 * s, max, std::nextafter(max, inf),
          max + ulpAtMax / 2, std::nextafter(max + ulpAtMax / 2, inf),
          std::nextafter(max + ulpAtMax / 2, 0.0f), max + ulpAtMax, 2 * max,
          1.0f, 1.0625f, 1.125f, 1.1875f})
      for (float sign : {1.0f, -1.0f})
        cases.push_back(sign * v);
  }
  for (float x : cases)
    for (FP8Format format : kFormats)
      for (Overflow mode : kModes)
        EXPECT_TRUE(agrees(x, format, mode));
}

TEST(Float8Test, SaturationNeverProducesInfOrNaNFromNumbers) {
  EXPECT_EQ(e4m3ToFloat(floatToE4M3(1e9f)), 448.0f);
  EXPECT_EQ(e4m3ToFloat(floatToE4M3(-1e9f)), -448.0f);
  EXPECT_EQ(e5m2ToFloat(floatToE5M2(std::numeric_limits<float>::infinity())),
            57344.0f);
  // Ties at the top: 464 is halfway between 448 and the NaN code's slot;
  // even mantissa wins, so even without saturation it is 448.
  EXPECT_EQ(e4m3ToFloat(floatToE4M3(464.0f, Overflow::NonSaturate)), 448.0f);
  EXPECT_TRUE(
      std::isnan(e4m3ToFloat(floatToE4M3(465.0f, Overflow::NonSaturate))));
  EXPECT_TRUE(
      std::isinf(e5m2ToFloat(floatToE5M2(61440.0f, Overflow::NonSaturate))));
  EXPECT_TRUE(std::isnan(e4m3ToFloat(floatToE4M3(std::nanf("")))));
}

//===----------------------------------------------------------------------===//
// E5M6: every code's value, then nearest-even search as the reference.
//===----------------------------------------------------------------------===//

struct E5M6Reference {
  std::vector<std::pair<double, uint16_t>> positive; // finite, sorted

  E5M6Reference() {
    for (uint16_t code = 0; code < 0x7c0; ++code) { // below exponent 31
      uint32_t e = code >> 6, m = code & 63;
      double v = e == 0 ? std::ldexp(double(m), -14 - 6)
                        : std::ldexp(double(64 + m), int(e) - 15 - 6);
      positive.push_back({v, code});
    }
  }

  uint16_t encode(float x, Overflow mode) const {
    uint16_t sign = std::signbit(x) ? 0x800 : 0;
    if (std::isnan(x))
      return sign | 0x7e0;
    double a = std::fabs(double(x));
    double max = positive.back().first;
    double halfUlp = std::ldexp(1.0, 15 - 6 - 1);
    if (a >= max + halfUlp) // ties at the top go to the even "2^16": inf
      return sign | (mode == Overflow::Saturate ? positive.back().second
                                                : uint16_t(0x7c0));
    auto it = std::lower_bound(positive.begin(), positive.end(),
                               std::make_pair(a, uint16_t(0)));
    if (it == positive.end())
      return sign | positive.back().second;
    if (it->first == a || it == positive.begin())
      return sign | it->second;
    auto below = std::prev(it);
    double dUp = it->first - a, dDown = a - below->first;
    if (dUp < dDown)
      return sign | it->second;
    if (dDown < dUp)
      return sign | below->second;
    return sign | ((below->second & 1) == 0 ? below->second : it->second);
  }
};

TEST(Float8Test, E5M6AgreesWithNearestEvenSearch) {
  static const E5M6Reference ref;
  auto check = [&](float x) {
    for (Overflow mode : kModes) {
      uint16_t ours = floatToE5M6(x, mode);
      uint16_t want = ref.encode(x, mode);
      if (std::isnan(x))
        ASSERT_TRUE(std::isnan(e5m6ToFloat(ours))) << x;
      else
        ASSERT_EQ(ours, want) << "x = " << x;
    }
  };
  for (uint32_t h = 0; h < 65536; ++h)
    check(bf16ToFloat(uint16_t(h)));
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> exponent(-26.0f, 17.0f);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  for (int i = 0; i < 200'000; ++i)
    check(unit(gen) * std::exp2(exponent(gen)));
  EXPECT_EQ(e5m6ToFloat(floatToE5M6(1e9f)), 65024.0f);
  for (uint16_t code = 0; code < 0x7c0; ++code)
    ASSERT_EQ(floatToE5M6(e5m6ToFloat(code)), code);
}

//===----------------------------------------------------------------------===//
// BF16
//===----------------------------------------------------------------------===//

TEST(BFloat16Test, RoundsAsAPFloatSays) {
  std::mt19937 gen(11);
  std::uniform_int_distribution<uint32_t> bits;
  auto check = [](float x) {
    APFloat v(x);
    bool losesInfo;
    v.convert(APFloat::BFloat(), APFloat::rmNearestTiesToEven, &losesInfo);
    uint16_t ref = uint16_t(v.bitcastToAPInt().getZExtValue());
    uint16_t ours = floatToBF16(x);
    if (std::isnan(x))
      return std::isnan(bf16ToFloat(ours)) && (ours & 0x8000) == (ref & 0x8000);
    return ours == ref;
  };
  for (int i = 0; i < 2'000'000; ++i) {
    float x = bitsToFloat(bits(gen));
    ASSERT_TRUE(check(x)) << x;
  }
  // Ties: 1 + 2^-8 is halfway between 1 and 1 + 2^-7; even (1) wins.
  EXPECT_EQ(roundToBF16(1.0f + std::ldexp(1.0f, -8)), 1.0f);
  EXPECT_EQ(roundToBF16(1.0f + 3 * std::ldexp(1.0f, -8)),
            1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isinf(roundToBF16(std::numeric_limits<float>::max())));
  for (uint32_t h = 0; h < 65536; ++h) {
    float x = bf16ToFloat(uint16_t(h));
    if (!std::isnan(x)) {
      ASSERT_EQ(floatToBF16(x), h);
    }
  }
}

} // namespace
