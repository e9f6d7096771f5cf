//===- AdamW.cpp - AdamW step and FP32 gradient accumulation --------------===//
//
// The recipe keeps FP32 master weights and gradients and BF16 Adam moments.
// Moments are widened exactly, updated in FP32 and rounded once to BF16 when
// stored.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CPUKernels.h"

#include "Common.h"

#include "octet/Numerics/BFloat16.h"

#include <cassert>
#include <cmath>
#include <cstring>

using namespace octet::cpu;
using namespace octet::cpu::detail;
using octet::numerics::bf16ToFloat;
using octet::numerics::floatToBF16;

void octet::cpu::adamwStep(float *param, const float *grad, uint16_t *m,
                           uint16_t *v, int64_t n, int64_t step,
                           const AdamWConfig &c) {
  assert(step >= 1 && "AdamW steps count from 1");
  // Bias corrections in double: beta^step underflows slowly and these are
  // two scalars per step.
  float correction1 = float(1.0 - std::pow(double(c.beta1), double(step)));
  float correction2 = float(1.0 - std::pow(double(c.beta2), double(step)));
  float decay = 1.0f - c.lr * c.weightDecay;
  float oneMinusBeta1 = 1.0f - c.beta1, oneMinusBeta2 = 1.0f - c.beta2;
  parallelElements(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float g = grad[i];
      float mi = c.beta1 * bf16ToFloat(m[i]) + oneMinusBeta1 * g;
      float vi = c.beta2 * bf16ToFloat(v[i]) + oneMinusBeta2 * (g * g);
      float mHat = mi / correction1;
      float vHat = vi / correction2;
      // Decoupled decay: shrink the weight, then take the Adam step.
      param[i] = param[i] * decay - c.lr * (mHat / (std::sqrt(vHat) + c.eps));
      m[i] = floatToBF16(mi);
      v[i] = floatToBF16(vi);
    }
  });
}

void octet::cpu::accumulateGradient(float *acc, const float *grad, int64_t n) {
  parallelElements(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      acc[i] += grad[i];
  });
}

void octet::cpu::accumulateGradientBF16(float *acc, const uint16_t *grad,
                                        int64_t n) {
  parallelElements(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      acc[i] += bf16ToFloat(grad[i]);
  });
}

void octet::cpu::zeroGradient(float *grad, int64_t n) {
  if (n > 0)
    std::memset(grad, 0, sizeof(float) * n);
}
