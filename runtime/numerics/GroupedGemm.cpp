//===- GroupedGemm.cpp - MoE expert GEMM references -----------------------===//
//
// Each expert's rows are cut out of the operands and multiplied by the
// dense reference, so the grouped GEMMs round exactly as scaledGemm does.
//
//===----------------------------------------------------------------------===//

#include "octet/Numerics/GroupedGemm.h"

#include <algorithm>
#include <cassert>
#include <sstream>

using namespace octet::numerics;

namespace {

int64_t roundUp(int64_t v) { return (v + kGroupSize - 1) / kGroupSize * kGroupSize; }

/// Rows [begin, begin + count) of a batch-1 tensor tiled along one
/// dimension; for Tile128x1, `begin` is a multiple of 128.
QuantizedTensor sliceRows(const QuantizedTensor &q, int64_t begin,
                          int64_t count) {
  QuantizedTensor out;
  out.format = q.format;
  out.granularity = q.granularity;
  out.rows = count;
  out.cols = q.cols;
  out.payload.assign(q.payload.begin() + begin * q.cols,
                     q.payload.begin() + (begin + count) * q.cols);
  int64_t scaleBegin = q.scaleIndex(0, begin, 0);
  out.scales.resize(out.scaleRows() * out.scaleCols());
  std::copy_n(q.scales.begin() + scaleBegin, out.scales.size(),
              out.scales.begin());
  return out;
}

/// Batch `b` of a batched tensor, as a batch-1 tensor.
QuantizedTensor batchSlice(const QuantizedTensor &q, int64_t b) {
  QuantizedTensor out;
  out.format = q.format;
  out.granularity = q.granularity;
  out.rows = q.rows;
  out.cols = q.cols;
  out.payload.assign(q.payload.begin() + b * q.rows * q.cols,
                     q.payload.begin() + (b + 1) * q.rows * q.cols);
  int64_t per = q.scaleRows() * q.scaleCols();
  out.scales.assign(q.scales.begin() + b * per,
                    q.scales.begin() + (b + 1) * per);
  return out;
}

/// A payload-less tensor of the given shape, for checkScaledGemm, which
/// looks at shapes and granularities only.
QuantizedTensor shapeOf(const QuantizedTensor &q, int64_t rows) {
  QuantizedTensor out;
  out.format = q.format;
  out.granularity = q.granularity;
  out.rows = rows;
  out.cols = q.cols;
  return out;
}

bool isZeroRow(const QuantizedTensor &q, int64_t row) {
  // +0 and -0 are the only FP8 codes whose low seven bits are all clear.
  for (int64_t c = 0; c < q.cols; ++c)
    if (q.payload[row * q.cols + c] & 0x7f)
      return false;
  return true;
}

/// The expert of each 128-row tile of `rows` rows (-1 for a tile of
/// padding only) into `tiles`, or why a tile cannot be one expert's: a row
/// naming expert `experts` or beyond, or two experts in one tile.
std::string expertOfEachTile(const int32_t *index, int64_t rows,
                             int64_t experts, std::vector<int32_t> &tiles) {
  tiles.clear();
  for (int64_t t = 0; t < rows; t += kGroupSize) {
    int32_t tile = -1;
    for (int64_t i = t; i < std::min(t + kGroupSize, rows); ++i) {
      if (index[i] >= experts) {
        std::ostringstream why;
        why << "row " << i << " names expert " << index[i] << " of "
            << experts;
        return why.str();
      }
      if (index[i] < 0)
        continue;
      if (tile >= 0 && index[i] != tile) {
        std::ostringstream why;
        why << "rows " << t << " to " << t + kGroupSize - 1
            << " hold experts " << tile << " and " << index[i];
        return why.str();
      }
      tile = index[i];
    }
    tiles.push_back(tile);
  }
  return "";
}

} // namespace

int64_t octet::numerics::alignedRows(int64_t rows, int64_t experts) {
  // At most min(rows, experts) runs are not empty, each padded by at most
  // 127 rows; the total is a multiple of 128.
  return (rows + (kGroupSize - 1) * std::min(rows, experts)) / kGroupSize *
         kGroupSize;
}

std::string octet::numerics::checkGroupSizes(const int64_t *sizes,
                                             int64_t experts, int64_t rows,
                                             int64_t alignedRows) {
  std::ostringstream why;
  int64_t total = 0, aligned = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (sizes[e] < 0 || sizes[e] > rows) {
      why << "expert " << e << " has " << sizes[e] << " rows of " << rows;
      return why.str();
    }
    total += sizes[e];
    aligned += roundUp(sizes[e]);
  }
  if (total != rows) {
    why << "the expert sizes add up to " << total << " rows, not " << rows;
    return why.str();
  }
  if (aligned > alignedRows) {
    why << "the aligned layout needs " << aligned << " rows, has "
        << alignedRows;
    return why.str();
  }
  return "";
}

void octet::numerics::alignGroups(const float *x, int64_t rows, int64_t cols,
                                  const int64_t *sizes, int64_t experts,
                                  int64_t alignedRows, float *out,
                                  int32_t *index) {
  assert(checkGroupSizes(sizes, experts, rows, alignedRows).empty());
  std::fill(out, out + alignedRows * cols, 0.0f);
  std::fill(index, index + alignedRows, -1);
  int64_t src = 0, dst = 0;
  for (int64_t e = 0; e < experts; ++e) {
    std::copy(x + src * cols, x + (src + sizes[e]) * cols, out + dst * cols);
    std::fill(index + dst, index + dst + sizes[e], int32_t(e));
    src += sizes[e];
    dst += roundUp(sizes[e]);
  }
}

void octet::numerics::unalignGroups(const float *x, int64_t alignedRows,
                                    int64_t cols, const int64_t *sizes,
                                    int64_t experts, float *out) {
  int64_t dst = 0, src = 0;
  for (int64_t e = 0; e < experts; ++e) {
    assert(src + roundUp(sizes[e]) <= alignedRows);
    std::copy(x + src * cols, x + (src + sizes[e]) * cols, out + dst * cols);
    dst += sizes[e];
    src += roundUp(sizes[e]);
  }
}

std::string octet::numerics::checkGroupedScaledGemm(
    const QuantizedTensor &lhs, const QuantizedTensor &rhs, int rhsContract,
    const int32_t *index, const ScaledGemmOptions &options) {
  if (lhs.batch != 1 || lhs.granularity != Granularity::Tile1x128)
    return "lhs must be one Tile1x128 matrix";
  if (rhs.granularity != Granularity::Block128x128)
    return "rhs must be Block128x128 expert weights";
  // A kernel takes one expert per 128-row tile.
  std::vector<int32_t> tiles;
  std::string tileError = expertOfEachTile(index, lhs.rows, rhs.batch, tiles);
  if (!tileError.empty())
    return tileError;
  return checkScaledGemm(shapeOf(lhs, lhs.rows), 1, shapeOf(rhs, rhs.rows),
                         rhsContract, options);
}

void octet::numerics::groupedScaledGemm(const QuantizedTensor &lhs,
                                        const QuantizedTensor &rhs,
                                        int rhsContract, const int32_t *index,
                                        float *y,
                                        const ScaledGemmOptions &options) {
  assert(checkGroupedScaledGemm(lhs, rhs, rhsContract, index, options)
             .empty());
  int64_t n = rhsContract == 1 ? rhs.rows : rhs.cols;
  for (int64_t i = 0; i < lhs.rows;) {
    int64_t j = i + 1;
    while (j < lhs.rows && index[j] == index[i])
      ++j;
    if (index[i] < 0) {
      std::fill(y + i * n, y + j * n, 0.0f);
    } else {
      QuantizedTensor weight = batchSlice(rhs, index[i]);
      scaledGemm(sliceRows(lhs, i, j - i), 1, weight, rhsContract, y + i * n,
                 options);
    }
    i = j;
  }
}

std::string octet::numerics::checkKGroupedScaledGemm(
    const QuantizedTensor &lhs, const QuantizedTensor &rhs,
    const int32_t *index, int64_t experts, const ScaledGemmOptions &options) {
  std::ostringstream why;
  for (const QuantizedTensor *q : {&lhs, &rhs})
    if (q->batch != 1 || q->granularity != Granularity::Tile128x1)
      return "both operands must be one Tile128x1 matrix";
  if (lhs.rows != rhs.rows || lhs.rows % kGroupSize != 0) {
    why << "the operands must have the same multiple of " << kGroupSize
        << " rows, got " << lhs.rows << " and " << rhs.rows;
    return why.str();
  }
  std::vector<int32_t> tiles;
  std::string tileError = expertOfEachTile(index, lhs.rows, experts, tiles);
  if (!tileError.empty())
    return tileError;
  for (int64_t i = 0; i < lhs.rows; ++i)
    if (index[i] < 0 && (!isZeroRow(lhs, i) || !isZeroRow(rhs, i))) {
      why << "padding row " << i << " is not zero";
      return why.str();
    }
  // Each expert's tiles form one run; a padding-only tile ends a run.
  std::vector<bool> seen(experts, false);
  int32_t last = -1;
  for (int32_t tile : tiles) {
    if (tile >= 0 && tile != last) {
      if (seen[tile]) {
        why << "the rows of expert " << tile << " are not contiguous";
        return why.str();
      }
      seen[tile] = true;
    }
    last = tile;
  }
  return checkScaledGemm(shapeOf(lhs, lhs.rows), 0, shapeOf(rhs, rhs.rows), 0,
                         options);
}

void octet::numerics::kGroupedScaledGemm(const QuantizedTensor &lhs,
                                         const QuantizedTensor &rhs,
                                         const int32_t *index, int64_t experts,
                                         float *y,
                                         const ScaledGemmOptions &options) {
  assert(checkKGroupedScaledGemm(lhs, rhs, index, experts, options).empty());
  int64_t n = lhs.cols, k = rhs.cols;
  std::fill(y, y + experts * n * k, 0.0f);
  std::vector<int32_t> tiles;
  expertOfEachTile(index, lhs.rows, experts, tiles);
  for (size_t t = 0; t < tiles.size();) {
    size_t end = t + 1;
    while (end < tiles.size() && tiles[end] == tiles[t])
      ++end;
    if (tiles[t] >= 0) {
      int64_t begin = int64_t(t) * kGroupSize,
              count = int64_t(end - t) * kGroupSize;
      scaledGemm(sliceRows(lhs, begin, count), 0, sliceRows(rhs, begin, count),
                 0, y + tiles[t] * n * k, options);
    }
    t = end;
  }
}
