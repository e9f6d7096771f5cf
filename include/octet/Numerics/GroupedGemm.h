//===- GroupedGemm.h - MoE expert GEMM references ---------------*- C++ -*-===//
//
// The references of octet_tq's expert GEMMs and of the row layout they run
// on. Rows sorted by expert (`sizes[e]` rows for expert e, as
// octet.moe_dispatch leaves them) are *aligned*: each expert's run starts
// at a multiple of 128 rows, and the rows between runs and after the last
// one are zeros with expert index -1. Then no 128-row tile holds two
// experts, which both grouped GEMMs need:
//
//   M-grouped  Y[i] = X[i] . W[index[i]]  (octet_tq.grouped_scaled_matmul)
//   K-grouped  dW[e] = sum over the rows of expert e of dY[i]^T X[i]
//                                         (octet_tq.k_grouped_scaled_matmul)
//
// Both are scaledGemm (ScaledGemm.h) applied to each expert's rows, so they
// promote exactly as the dense reference does.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_NUMERICS_GROUPEDGEMM_H
#define OCTET_NUMERICS_GROUPEDGEMM_H

#include "octet/Numerics/ScaledGemm.h"

#include <cstdint>
#include <string>

namespace octet::numerics {

/// Rows that hold `rows` rows of `experts` experts in any split once each
/// run is padded to 128 rows (octet_tq.align_groups' bound).
int64_t alignedRows(int64_t rows, int64_t experts);

/// Why `sizes` cannot describe `rows` rows in `alignedRows` aligned rows
/// (a negative size, a sum other than `rows`, too few aligned rows), or an
/// empty string.
std::string checkGroupSizes(const int64_t *sizes, int64_t experts,
                            int64_t rows, int64_t alignedRows);

/// x [rows, cols] into the aligned layout `out` [alignedRows, cols], and
/// each aligned row's expert into `index` [alignedRows] (-1 for padding).
/// The sizes must pass checkGroupSizes.
void alignGroups(const float *x, int64_t rows, int64_t cols,
                 const int64_t *sizes, int64_t experts, int64_t alignedRows,
                 float *out, int32_t *index);

/// The inverse: the rows of the aligned `x` [alignedRows, cols] that belong
/// to an expert, in order, into `out` [rows, cols].
void unalignGroups(const float *x, int64_t alignedRows, int64_t cols,
                   const int64_t *sizes, int64_t experts, float *out);

/// Why these operands cannot go through the M-grouped GEMM, or "".
/// lhs: [M, C] Tile1x128; rhs: batch E of [N, K] Block128x128, contracted
/// along K (`rhsContract` 1, Fprop, C = K) or N (0, Dgrad, C = N); `index`
/// [M] as alignGroups makes it.
std::string checkGroupedScaledGemm(const QuantizedTensor &lhs,
                                   const QuantizedTensor &rhs, int rhsContract,
                                   const int32_t *index,
                                   const ScaledGemmOptions &options);

/// y [M, free dim of one expert] = the M-grouped GEMM; padding rows get 0.
void groupedScaledGemm(const QuantizedTensor &lhs, const QuantizedTensor &rhs,
                       int rhsContract, const int32_t *index, float *y,
                       const ScaledGemmOptions &options);

/// Why these operands cannot go through the K-grouped GEMM, or "".
/// lhs [M, N] and rhs [M, K], both Tile128x1, M a multiple of 128; `index`
/// [M] with each 128-row tile of one expert (or padding).
std::string checkKGroupedScaledGemm(const QuantizedTensor &lhs,
                                    const QuantizedTensor &rhs,
                                    const int32_t *index, int64_t experts,
                                    const ScaledGemmOptions &options);

/// y [experts, N, K] = the K-grouped GEMM; experts without rows get 0.
void kGroupedScaledGemm(const QuantizedTensor &lhs, const QuantizedTensor &rhs,
                        const int32_t *index, int64_t experts, float *y,
                        const ScaledGemmOptions &options);

} // namespace octet::numerics

#endif // OCTET_NUMERICS_GROUPEDGEMM_H
