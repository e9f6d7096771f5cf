//===- GemmOperands.cpp - Host-side operands of the FP8 GEMM kernels ------===//

#include "octet/Runtime/GemmOperands.h"

#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/Float8.h"
#include "octet/Numerics/Parallel.h"
#include "octet/Numerics/ScaledGemm.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstring>
#include <optional>

using namespace octet;
using namespace octet::runtime;
using numerics::Granularity;
using numerics::QuantizedTensor;

/// The payload of `v`, laid out [free][K] (K-major, as the kernels read
/// it).
static std::vector<uint8_t> packed(const numerics::ContractedOperand &v) {
  std::vector<uint8_t> out(v.free() * v.k());
  for (int64_t f = 0; f < v.free(); ++f)
    for (int64_t kk = 0; kk < v.k(); ++kk)
      out[f * v.k() + kk] = v.code(f, kk);
  return out;
}

llvm::Expected<PackedGemm>
octet::runtime::packScaledGemm(const QuantizedTensor &lhs, int lhsContract,
                               const QuantizedTensor &rhs, int rhsContract) {
  PackedGemm p;
  if (lhs.granularity == Granularity::Tile1x128 && lhsContract == 1 &&
      rhs.granularity == Granularity::Block128x128)
    p.rhsScaling = RhsScaling::Block128;
  else if (lhs.granularity == Granularity::Tile128x1 && lhsContract == 0 &&
           rhs.granularity == Granularity::Tile128x1 && rhsContract == 0)
    p.rhsScaling = RhsScaling::PerRow;
  else
    return llvm::createStringError(
        "no generated kernel multiplies these operands: the kernels take "
        "tile_1x128 x block_128x128 (Fprop, Dgrad) and tile_128x1 x "
        "tile_128x1 contracting dim 0 (Wgrad)");
  if (lhs.batch != 1 || rhs.batch != 1 ||
      lhs.format != numerics::FP8Format::E4M3 ||
      rhs.format != numerics::FP8Format::E4M3)
    return llvm::createStringError("the kernels take unbatched E4M3 operands");
  numerics::ContractedOperand a{lhs, lhsContract}, b{rhs, rhsContract};
  if (a.k() != b.k() || a.k() % numerics::kGroupSize != 0)
    return llvm::createStringError(
        "contraction lengths %lld and %lld must match and be a multiple of "
        "128",
        (long long)a.k(), (long long)b.k());
  p.m = a.free();
  p.n = b.free();
  p.k = a.k();
  int64_t groups = p.k / numerics::kGroupSize;
  p.a = packed(a);
  p.b = packed(b);
  p.scaleA.resize(groups * p.m);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < p.m; ++i)
      p.scaleA[g * p.m + i] = a.scale(i, g * numerics::kGroupSize);
  if (p.rhsScaling == RhsScaling::Block128) {
    int64_t blocks = (p.n + 127) / 128;
    p.scaleB.resize(blocks * groups);
    for (int64_t nb = 0; nb < blocks; ++nb)
      for (int64_t g = 0; g < groups; ++g)
        p.scaleB[nb * groups + g] = b.scale(nb * 128, g * numerics::kGroupSize);
  } else {
    p.scaleB.resize(groups * p.n);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t j = 0; j < p.n; ++j)
        p.scaleB[g * p.n + j] = b.scale(j, g * numerics::kGroupSize);
  }
  return std::move(p);
}

llvm::Expected<PackedGemm> octet::runtime::packGroupedScaledGemm(
    const QuantizedTensor &x, llvm::ArrayRef<int64_t> sizes,
    const QuantizedTensor &w, int wContract, int64_t tileM) {
  if (x.granularity != Granularity::Tile1x128 || x.batch != 1 ||
      w.granularity != Granularity::Block128x128)
    return llvm::createStringError(
        "the expert kernels take unbatched tile_1x128 rows and a batch of "
        "block_128x128 weights");
  if (x.format != numerics::FP8Format::E4M3 ||
      w.format != numerics::FP8Format::E4M3)
    return llvm::createStringError("the kernels take E4M3 operands");
  if (wContract != 0 && wContract != 1)
    return llvm::createStringError("the weights contract dimension 0 or 1");
  int64_t wK = wContract == 1 ? w.cols : w.rows;
  if (x.cols != wK || x.cols % numerics::kGroupSize != 0)
    return llvm::createStringError(
        "contraction lengths %lld and %lld must match and be a multiple of "
        "128",
        (long long)x.cols, (long long)wK);
  if (int64_t(sizes.size()) != w.batch)
    return llvm::createStringError("%zu expert sizes for %lld experts",
                                   sizes.size(), (long long)w.batch);
  if (tileM <= 0)
    return llvm::createStringError("the tile height must be positive");
  PackedGemm p;
  p.rhsScaling = RhsScaling::Block128;
  p.k = x.cols;
  p.n = wContract == 1 ? w.rows : w.cols;
  p.groups = w.batch;
  int64_t rows = 0;
  for (int64_t s : sizes) {
    if (s < 0)
      return llvm::createStringError("a negative expert size");
    rows += s;
    p.m += (s + tileM - 1) / tileM * tileM;
  }
  if (rows != x.rows)
    return llvm::createStringError(
        "the expert sizes add up to %lld rows; the input has %lld",
        (long long)rows, (long long)x.rows);
  int64_t kGroups = p.k / numerics::kGroupSize;
  p.a.assign(p.m * p.k, 0);
  p.scaleA.assign(kGroups * p.m, 0.0f);
  p.groupIndex.assign(p.m, -1);
  p.packedRows.reserve(rows);
  // Row r of x goes to `at`, expert by expert, each from a tile boundary.
  int64_t r = 0, at = 0;
  for (int64_t e = 0; e < p.groups; ++e) {
    for (int64_t i = 0; i < sizes[e]; ++i, ++r) {
      std::memcpy(&p.a[(at + i) * p.k], &x.payload[r * p.k], p.k);
      for (int64_t g = 0; g < kGroups; ++g)
        p.scaleA[g * p.m + at + i] = x.scales[r * kGroups + g];
      p.packedRows.push_back(at + i);
    }
    int64_t span = (sizes[e] + tileM - 1) / tileM * tileM;
    std::fill_n(p.groupIndex.begin() + at, span, int32_t(e));
    at += span;
  }
  // Each expert's B K-major, its scales in the kernels'
  // [groups][ceil(N/128)][K/128] order: as they are for wContract 1,
  // transposed for 0.
  if (wContract == 1) {
    p.b = w.payload;
    p.scaleB = w.scales;
    return std::move(p);
  }
  int64_t blocks = (p.n + 127) / 128;
  p.b.resize(p.groups * p.n * p.k);
  p.scaleB.resize(p.groups * blocks * kGroups);
  for (int64_t e = 0; e < p.groups; ++e) {
    QuantizedTensor we = cpu::matrixOf(w, e);
    numerics::ContractedOperand b{we, 0};
    uint8_t *be = p.b.data() + e * p.n * p.k;
    for (int64_t f = 0; f < p.n; ++f)
      for (int64_t kk = 0; kk < p.k; ++kk)
        be[f * p.k + kk] = b.code(f, kk);
    for (int64_t nb = 0; nb < blocks; ++nb)
      for (int64_t g = 0; g < kGroups; ++g)
        p.scaleB[(e * blocks + nb) * kGroups + g] =
            b.scale(nb * 128, g * numerics::kGroupSize);
  }
  return std::move(p);
}

std::vector<float> octet::runtime::emulatePackedGemm(const PackedGemm &p,
                                                     int64_t promotion,
                                                     bool bf16Output) {
  int64_t groups = p.k / numerics::kGroupSize;
  std::vector<float> a(p.a.size()), b(p.b.size());
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = numerics::fp8ToFloat(p.a[i], numerics::FP8Format::E4M3);
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = numerics::fp8ToFloat(p.b[i], numerics::FP8Format::E4M3);
  std::vector<float> d(p.m * p.n);
  int64_t blocks = (p.n + 127) / 128;
  numerics::parallelFor(p.m, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      // An expert GEMM's row reads its expert's weights and scales; rows of
      // no expert are left at zero (the kernels skip their tiles).
      int64_t expert = p.groupIndex.empty() ? 0 : p.groupIndex[i];
      if (expert < 0)
        continue;
      const float *be = b.data() + expert * p.n * p.k;
      const float *sbe = p.scaleB.data() + expert * blocks * groups;
      for (int64_t j = 0; j < p.n; ++j) {
        float acc = 0.0f;
        for (int64_t c = 0; c < p.k; c += promotion) {
          int64_t g = c / numerics::kGroupSize;
          float sb = p.rhsScaling == RhsScaling::Block128
                         ? sbe[(j / 128) * groups + g]
                         : p.scaleB[g * p.n + j];
          float scale = p.scaleA[g * p.m + i] * sb;
          float partial = 0.0f;
          for (int64_t kk = c; kk < c + promotion; ++kk)
            partial += a[i * p.k + kk] * be[j * p.k + kk];
          acc = std::fma(partial, scale, acc);
        }
        d[i * p.n + j] = bf16Output
                             ? numerics::bf16ToFloat(numerics::floatToBF16(acc))
                             : acc;
      }
    }
  });
  return d;
}

llvm::Expected<std::string>
octet::runtime::selectGemmKernel(llvm::ArrayRef<std::string> kernels,
                                 RhsScaling scaling, int64_t m,
                                 int64_t promotion, bool grouped) {
  int64_t wantM = m <= 64 ? 64 : 128;
  std::optional<GemmKernelConfig> best;
  std::string bestName;
  // Preference, best first: the wanted tile height, then wider N, then
  // more stages; names break ties so the choice does not depend on order.
  auto key = [&](const GemmKernelConfig &c) {
    return std::make_tuple(c.tileM == wantM, c.tileN, c.stages);
  };
  std::vector<std::string> offered;
  for (const std::string &name : kernels) {
    std::optional<GemmKernelConfig> c = GemmKernelConfig::parse(name);
    if (!c)
      continue;
    offered.push_back(name);
    if (c->grouped != grouped || c->outputBF16 || c->rhsScaling != scaling ||
        c->promotion != promotion)
      continue;
    if (!best || key(*c) > key(*best) ||
        (key(*c) == key(*best) && name < bestName)) {
      best = c;
      bestName = name;
    }
  }
  if (best)
    return bestName;
  return llvm::createStringError(llvm::formatv(
      "no kernel computes a{0} {1} GEMM with FP32 output and promotion "
      "every {2} K-elements; the kernels are: {3}",
      grouped ? "n expert" : "",
      scaling == RhsScaling::Block128 ? "1x128 x 128x128 (1d2d)"
                                      : "128x1 x 128x1 (1d1d)",
      promotion,
      offered.empty() ? std::string("none") : llvm::join(offered, ", ")));
}

/// A wgmma step covers 32 K-elements, so the kernels promote at multiples
/// of 32 that divide the scaling group.
static llvm::Error checkPromotion(int64_t promotion) {
  if (promotion < 32 || promotion % 32 != 0 ||
      numerics::kGroupSize % promotion != 0)
    return llvm::createStringError(
        "the kernels promote every 32, 64 or 128 K-elements, not %lld",
        (long long)promotion);
  return llvm::Error::success();
}

llvm::Error octet::runtime::KernelEmulationEngine::scaledGemm(
    const QuantizedTensor &lhs, int lhsContract, const QuantizedTensor &rhs,
    int rhsContract, int64_t promotion, float *out) {
  llvm::Expected<PackedGemm> p =
      packScaledGemm(lhs, lhsContract, rhs, rhsContract);
  if (!p)
    return p.takeError();
  if (llvm::Error e = checkPromotion(promotion))
    return e;
  std::vector<float> d = emulatePackedGemm(*p, promotion, false);
  std::memcpy(out, d.data(), d.size() * sizeof(float));
  ++(p->rhsScaling == RhsScaling::Block128 ? blockScaled : rowScaled);
  return llvm::Error::success();
}

llvm::Error octet::runtime::KernelEmulationEngine::groupedScaledGemm(
    const QuantizedTensor &x, llvm::ArrayRef<int64_t> sizes,
    const QuantizedTensor &w, int wContract, int64_t promotion, float *out) {
  if (llvm::Error e = checkPromotion(promotion))
    return e;
  // 128-row tiles, as the CUDA engine's expert kernels take them; the
  // results do not depend on the tile height.
  llvm::Expected<PackedGemm> p =
      packGroupedScaledGemm(x, sizes, w, wContract, 128);
  if (!p)
    return p.takeError();
  std::vector<float> d = emulatePackedGemm(*p, promotion, false);
  for (size_t r = 0; r < p->packedRows.size(); ++r)
    std::memcpy(out + r * p->n, d.data() + p->packedRows[r] * p->n,
                p->n * sizeof(float));
  ++blockScaled;
  ++grouped;
  return llvm::Error::success();
}

double octet::runtime::gemmDifference(const float *x, const float *y,
                                      size_t count) {
  double xy = 0, sq = 0;
  for (size_t i = 0; i < count; ++i) {
    xy += double(x[i]) * y[i];
    sq += double(x[i]) * x[i] + double(y[i]) * y[i];
  }
  return sq == 0 ? 0.0 : 1.0 - 2.0 * xy / sq;
}
