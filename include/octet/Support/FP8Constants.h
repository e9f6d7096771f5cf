//===- FP8Constants.h - Constants of the FP8 recipe -------------*- C++ -*-===//
//
// Numbers of the DeepSeek-V3 FP8 recipe (../shared/reference/fp8-recipe.md)
// that the verifiers of the graph and tile-quantization dialects share.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_SUPPORT_FP8CONSTANTS_H
#define OCTET_SUPPORT_FP8CONSTANTS_H

#include <cstdint>

namespace octet {
/// Elements per FP8 scaling group along a grouped dimension (1x128 tiles,
/// 128x128 blocks).
constexpr int64_t kScaleGroupSize = 128;
/// The K of one FP8 wgmma instruction: promotion intervals and kernel tile K
/// are multiples of it.
constexpr int64_t kFP8MmaK = 32;
} // namespace octet

#endif // OCTET_SUPPORT_FP8CONSTANTS_H
