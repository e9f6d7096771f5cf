//===- SelectGemmTiles.cpp - Tile heuristic for the FP8 GEMM kernels ------===//
//
// A wave model of the persistent kernel: tiles are spread over the SMs, and
// a GEMM takes as many rounds as its fullest SM. Within a round a tile costs
// its MACs plus a share for streaming its operands, which favours wide tiles
// until the last wave gets ragged.
//
//===----------------------------------------------------------------------===//

#include "octet/Target/CUDA/GemmKernel.h"
#include "octet/Target/CUDA/Passes.h"

#include "mlir/IR/BuiltinTypes.h"

namespace octet::cuda {
#define GEN_PASS_DEF_SELECTGEMMTILESPASS
#include "octet/Target/CUDA/Passes.h.inc"
} // namespace octet::cuda

using namespace mlir;
using namespace octet;
using namespace octet::cuda;

namespace {

struct TileChoice {
  int64_t m, n, stages;
};

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

TileChoice chooseTile(int64_t rows, int64_t cols, int64_t numSMs,
                      int64_t sharedMemory, int64_t maxStages) {
  // Unknown extents: plan for a large GEMM.
  if (ShapedType::isDynamic(rows))
    rows = 4096;
  if (ShapedType::isDynamic(cols))
    cols = 4096;
  TileChoice best{rows <= 64 ? 64 : 128, 128, 1};
  int64_t bestCost = -1;
  for (int64_t n = 16; n <= 128; n += 16) {
    int64_t tiles = ceilDiv(rows, best.m) * ceilDiv(cols, n);
    int64_t waves = ceilDiv(tiles, numSMs);
    int64_t cost = waves * (best.m * n + (best.m + n) * 64);
    if (bestCost < 0 || cost <= bestCost) { // ties go to the wider tile
      bestCost = cost;
      best.n = n;
    }
  }
  GemmKernelSpec spec;
  spec.tileM = best.m;
  spec.tileN = best.n;
  // Budget for the larger scale area (B scaled per row), whichever the GEMM
  // turns out to use.
  spec.rhsScaling = RhsScaling::PerRow;
  int64_t perStage = spec.stageBytes() + spec.scaleBytes() + 16;
  best.stages = std::max<int64_t>(1, std::min(maxStages, sharedMemory / perStage));
  return best;
}

struct SelectGemmTilesPass
    : public octet::cuda::impl::SelectGemmTilesPassBase<SelectGemmTilesPass> {
  using Base::Base;

  void runOnOperation() override {
    if (numSMs <= 0 || sharedMemoryBytes <= 0 || maxStages <= 0) {
      getOperation()->emitError()
          << "octet-select-gemm-tiles: num-sms, shared-memory and max-stages "
             "must be positive";
      return signalPassFailure();
    }
    auto select = [&](auto op) {
      if (op.getTileAttr() && !overrideExisting)
        return;
      auto lhs = cast<tq::QTensorType>(op.getLhs().getType());
      auto rhs = cast<tq::QTensorType>(op.getRhs().getType());
      if (lhs.getGranularity() == tq::Granularity::PerTensor ||
          rhs.getGranularity() == tq::Granularity::PerTensor)
        return;
      // The expert Wgrad's result is [experts, N, K]: one N x K GEMM per
      // expert, run one after the other.
      ArrayRef<int64_t> shape =
          op.getResult().getType().getShape().take_back(2);
      TileChoice t = chooseTile(shape[0], shape[1], numSMs, sharedMemoryBytes,
                                maxStages);
      op.setTileAttr(tq::TileConfigAttr::get(op.getContext(), t.m, t.n,
                                             /*k=*/128, t.stages,
                                             overlap && t.stages >= 2));
    };
    getOperation()->walk([&](Operation *op) {
      if (auto gemm = dyn_cast<tq::ScaledMatmulOp>(op))
        select(gemm);
      else if (auto grouped = dyn_cast<tq::GroupedScaledMatmulOp>(op))
        select(grouped);
      else if (auto kGrouped = dyn_cast<tq::KGroupedScaledMatmulOp>(op))
        select(kGrouped);
    });
  }
};

} // namespace
