//===- CPUKernels.h - CPU reference kernels of the graph ops ----*- C++ -*-===//
//
// Forward and backward kernels for every op of the `octet` graph dialect (the
// FP8 linear is in FP8Linear.h) plus the AdamW step. They are the
// oracle the GPU kernels are tested against and the engine of the CPU
// backend.
//
// Conventions, shared by every kernel:
// - Tensors are raw row-major contiguous arrays; shapes come as sizes.
// - T is float or double (explicitly instantiated for both); Index, where a
//   kernel reads ids, is int32_t or int64_t.
// - Backward kernels take the output gradient. Input-activation gradients are
//   OVERWRITTEN; parameter gradients (weights, biases, gamma, tables) are
//   ACCUMULATED (`+=`) so micro-batch gradients add up in the FP32 buffer.
//   Any gradient pointer may be null to skip that gradient.
// - Results do not depend on the thread count: every output element is
//   produced by one task and every reduction runs in a fixed order.
// - Matrix products go through numerics::gemm, so they inherit its exact,
//   machine-independent summation order.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CPUKERNELS_H
#define OCTET_RUNTIME_CPUKERNELS_H

#include <cmath>
#include <cstdint>

namespace octet::cpu {

//===----------------------------------------------------------------------===//
// Dense ops
//===----------------------------------------------------------------------===//

/// out[i, :] = table[ids[i], :]; table [vocab, dim], ids [numIds], out
/// [numIds, dim]. Every id must lie in [0, vocab).
template <typename T, typename Index>
void embeddingForward(const T *table, const Index *ids, int64_t numIds,
                      int64_t vocab, int64_t dim, T *out);

/// dTable[ids[i], :] += dOut[i, :] (accumulates), tokens added in order.
template <typename T, typename Index>
void embeddingBackward(const T *dOut, const Index *ids, int64_t numIds,
                       int64_t vocab, int64_t dim, T *dTable);

/// Sizes of a linear layer: x [m, k], w [n, k], bias [n], y [m, n].
struct LinearShape {
  int64_t m, n, k;
};

/// y = x w^T (+ bias); bias may be null.
template <typename T>
void linearForward(const T *x, const T *w, const T *bias,
                   const LinearShape &shape, T *y);

/// dx = dy w (overwrites); dw += dy^T x and db += column sums of dy
/// (accumulate).
template <typename T>
void linearBackward(const T *x, const T *w, const T *dy,
                    const LinearShape &shape, T *dx, T *dw, T *db);

/// Sizes of a batched product: lhs [batch, m, k]; rhs [batch, k, n], or
/// [batch, n, k] with transposeRhs; out [batch, m, n].
struct BatchMatmulShape {
  int64_t batch, m, n, k;
  bool transposeRhs;
};

/// out[b] = lhs[b] rhs[b] (or lhs[b] rhs[b]^T).
template <typename T>
void batchMatmulForward(const T *lhs, const T *rhs,
                        const BatchMatmulShape &shape, T *out);

/// dLhs and dRhs of the batched product (both activations: overwritten).
template <typename T>
void batchMatmulBackward(const T *lhs, const T *rhs, const T *dOut,
                         const BatchMatmulShape &shape, T *dLhs, T *dRhs);

/// Sizes of a grouped linear: x [rows, k] sorted by expert, w [experts, n,
/// k], groupSizes [experts] summing to rows, y [rows, n].
struct GroupedLinearShape {
  int64_t rows, n, k, experts;
};

/// y[r] = x[r] w[e]^T for the rows r of expert e.
template <typename T, typename Index>
void groupedLinearForward(const T *x, const T *w, const Index *groupSizes,
                          const GroupedLinearShape &shape, T *y);

/// dx = dy w[e] per group (overwrites); dw[e] += dy^T x per group
/// (accumulates).
template <typename T, typename Index>
void groupedLinearBackward(const T *x, const T *w, const Index *groupSizes,
                           const T *dy, const GroupedLinearShape &shape, T *dx,
                           T *dw);

/// out = lhs + rhs, n elements (the residual add).
template <typename T>
void addForward(const T *lhs, const T *rhs, int64_t n, T *out);

/// dLhs = dRhs = dOut (overwrite).
template <typename T>
void addBackward(const T *dOut, int64_t n, T *dLhs, T *dRhs);

/// out = gate * sigmoid(gate) * up, n elements.
template <typename T>
void swigluForward(const T *gate, const T *up, int64_t n, T *out);

/// dGate and dUp of swiglu (overwrite).
template <typename T>
void swigluBackward(const T *gate, const T *up, const T *dOut, int64_t n,
                    T *dGate, T *dUp);

//===----------------------------------------------------------------------===//
// Normalization and position embedding
//===----------------------------------------------------------------------===//

/// y = x / sqrt(mean(x^2) + epsilon) * gamma over the last dimension; x and
/// y [rows, dim], gamma [dim].
template <typename T>
void rmsnormForward(const T *x, const T *gamma, int64_t rows, int64_t dim,
                    double epsilon, T *y);

/// dx (overwrites) and dGamma (accumulates) of rmsnorm.
template <typename T>
void rmsnormBackward(const T *x, const T *gamma, const T *dy, int64_t rows,
                     int64_t dim, double epsilon, T *dx, T *dGamma);

/// Sizes of a [batch, seq, heads, dim] tensor given to rotary.
struct RotaryShape {
  int64_t batch, seq, heads, dim;
};

/// Rotates each pair (x[2i], x[2i+1]) by s * theta^(-2i/dim), s the sequence
/// position (from 0). Angles are computed in double. dim must be even.
template <typename T>
void rotaryForward(const T *x, const RotaryShape &shape, double theta, T *y);

/// dx (overwrites): dy rotated by the opposite angles.
template <typename T>
void rotaryBackward(const T *dy, const RotaryShape &shape, double theta, T *dx);

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Sizes of causal attention: q [batch, seq, qHeads, qkDim], k [batch, seq,
/// kvHeads, qkDim], v [batch, seq, kvHeads, vDim], out [batch, seq, qHeads,
/// vDim]. qHeads is a multiple of kvHeads; query head h reads kv head
/// h / (qHeads / kvHeads).
struct AttentionShape {
  int64_t batch, seq, qHeads, kvHeads, qkDim, vDim;
};

/// The op's default scale, 1/sqrt(qkDim).
inline double defaultAttentionScale(int64_t qkDim) {
  return 1.0 / std::sqrt(static_cast<double>(qkDim));
}

/// out = softmax(mask(q k^T * scale)) v per head; position i attends to
/// positions <= i.
template <typename T>
void causalAttentionForward(const T *q, const T *k, const T *v,
                            const AttentionShape &shape, double scale, T *out);

/// dq, dk, dv (all overwritten) of causal attention. Recomputes the
/// probabilities from q and k, so it needs no saved state.
template <typename T>
void causalAttentionBackward(const T *q, const T *k, const T *v, const T *dOut,
                             const AttentionShape &shape, double scale, T *dq,
                             T *dk, T *dv);

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

enum class MoEScoring { Sigmoid, Softmax };

/// Router configuration, as octet.moe_gate's attributes: x [tokens, dim],
/// w [experts, dim], bias [experts], weights and indices [tokens, topK].
struct MoEGateConfig {
  int64_t tokens, dim, experts;
  int64_t topK, nGroup, topkGroup;
  double routedScalingFactor;
  MoEScoring scoring;
  bool normTopkProb;
};

/// Routes each token to topK experts (DeepSeek-V3's group-limited top-k; see
/// OctetOps.td). bias (nullable) steers selection only. Indices are listed
/// by decreasing biased score, ties to the lower expert; weights are the
/// matching unbiased scores (normalised if asked) times the scaling factor.
template <typename T>
void moeGateForward(const T *x, const T *w, const T *bias,
                    const MoEGateConfig &config, T *weights, int32_t *indices);

/// dx (overwrites) and dw (accumulates) through the routing weights only:
/// the selection, given by the forward's indices, is held fixed (it is
/// piecewise constant). The frozen bias gets no gradient.
template <typename T>
void moeGateBackward(const T *x, const T *w, const int32_t *indices,
                     const T *dWeights, const MoEGateConfig &config, T *dx,
                     T *dw);

/// Sizes shared by dispatch and combine: tokens x topK copies of dim-wide
/// rows.
struct MoERoutingShape {
  int64_t tokens, topK, dim;
};

/// The dispatched row of each token copy: rowOfCopy[t * topK + j] is where
/// copy j of token t lands after the stable sort by expert (indices[t, j]).
template <typename Index>
void moeRowOfCopy(const Index *indices, int64_t tokens, int64_t topK,
                  int64_t *rowOfCopy);

/// rows [tokens*topK, dim] = the token copies sorted by expert, stable in
/// token order; groupSizes [numExperts] = rows per expert.
template <typename T, typename Index>
void moeDispatchForward(const T *x, const Index *indices,
                        const MoERoutingShape &shape, int64_t numExperts,
                        T *rows, int32_t *groupSizes);

/// dx[t] = sum over j of dRows[row of copy (t, j)] (overwrites).
template <typename T, typename Index>
void moeDispatchBackward(const T *dRows, const Index *indices,
                         const MoERoutingShape &shape, T *dx);

/// out[t] = sum over j of weights[t, j] * rows[row of copy (t, j)]: the
/// inverse of dispatch, weighted; out [tokens, dim].
template <typename T, typename Index>
void moeCombineForward(const T *rows, const T *weights, const Index *indices,
                       const MoERoutingShape &shape, T *out);

/// dRows [tokens*topK, dim] and dWeights [tokens, topK] of combine
/// (overwrite).
template <typename T, typename Index>
void moeCombineBackward(const T *rows, const T *weights, const Index *indices,
                        const T *dOut, const MoERoutingShape &shape, T *dRows,
                        T *dWeights);

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

/// Mean over tokens of -log softmax(logits[t])[labels[t]]; logits [tokens,
/// vocab]. Every label must lie in [0, vocab).
template <typename T, typename Index>
T crossEntropyForward(const T *logits, const Index *labels, int64_t tokens,
                      int64_t vocab);

/// dLogits = dLoss / tokens * (softmax(logits) - onehot(labels))
/// (overwrites).
template <typename T, typename Index>
void crossEntropyBackward(const T *logits, const Index *labels, int64_t tokens,
                          int64_t vocab, T dLoss, T *dLogits);

//===----------------------------------------------------------------------===//
// Optimizer (FP32 only)
//===----------------------------------------------------------------------===//

/// AdamW hyper-parameters (decoupled weight decay, as in PyTorch).
struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weightDecay = 0.1f;
};

/// One AdamW step on n FP32 master weights with BF16 moments m and v (bit
/// patterns, zero-initialised); step counts from 1 for bias correction.
/// The moments are updated in FP32, used unrounded for this step's update,
/// then stored rounded to BF16 (nearest even).
void adamwStep(float *param, const float *grad, uint16_t *m, uint16_t *v,
               int64_t n, int64_t step, const AdamWConfig &config);

/// acc += grad: adds a micro-batch's FP32 gradient into the FP32 buffer.
void accumulateGradient(float *acc, const float *grad, int64_t n);

/// acc += grad for a BF16 gradient (bit patterns), widened exactly.
void accumulateGradientBF16(float *acc, const uint16_t *grad, int64_t n);

/// grad = 0, before the first micro-batch of a step.
void zeroGradient(float *grad, int64_t n);

} // namespace octet::cpu

#endif // OCTET_RUNTIME_CPUKERNELS_H
