//===- GenerateGemmKernels.cpp - scaled_matmul to Hopper kernels ----------===//
//
// Classifies each block-scaled GEMM (Fprop, Dgrad, Wgrad, and the expert
// GEMMs' Fprop, Dgrad and Wgrad), derives the
// kernel specification from its tile, promotion interval and output type,
// and writes the kernel once per specification into @octet_kernels.
//
//===----------------------------------------------------------------------===//

#include "octet/Target/CUDA/GemmKernel.h"
#include "octet/Target/CUDA/Passes.h"

#include "KernelBuilder.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/raw_ostream.h"

namespace octet::cuda {
#define GEN_PASS_DEF_GENERATEGEMMKERNELSPASS
#include "octet/Target/CUDA/Passes.h.inc"
} // namespace octet::cuda

using namespace mlir;
using namespace octet;
using namespace octet::cuda;

namespace {

/// The kernel shape of one GEMM and which operands the runtime transposes
/// to make both K-major.
struct Classified {
  RhsScaling rhsScaling;
  bool transposeLhs, transposeRhs;
};

FailureOr<Classified> classify(tq::ScaledMatmulOp op) {
  auto lhs = cast<tq::QTensorType>(op.getLhs().getType()).getGranularity();
  auto rhs = cast<tq::QTensorType>(op.getRhs().getType()).getGranularity();
  uint64_t lc = op.getLhsContractingDim(), rc = op.getRhsContractingDim();
  using G = tq::Granularity;
  if (lhs == G::Tile1x128 && lc == 1 && rhs == G::Block128x128)
    return Classified{RhsScaling::Block128, false, /*transposeRhs=*/rc == 0};
  if (lhs == G::Tile128x1 && lc == 0 && rhs == G::Tile128x1 && rc == 0)
    return Classified{RhsScaling::PerRow, true, true};
  return op.emitOpError()
         << "has no Hopper kernel for " << tq::stringifyGranularity(lhs)
         << " x " << tq::stringifyGranularity(rhs) << " contracting (" << lc
         << ", " << rc
         << "): the generator covers Fprop and Dgrad (tile_1x128 x "
            "block_128x128) and Wgrad (tile_128x1 x tile_128x1 over dim 0)";
}

struct GenerateGemmKernelsPass
    : public octet::cuda::impl::GenerateGemmKernelsPassBase<GenerateGemmKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    SmallVector<Operation *> gemms;
    module.walk([&](Operation *op) {
      if (isa<tq::GroupedScaledMatmulOp, tq::KGroupedScaledMatmulOp>(op)) {
        gemms.push_back(op);
        return;
      }
      auto gemm = dyn_cast<tq::ScaledMatmulOp>(op);
      if (!gemm)
        return;
      auto lhs = cast<tq::QTensorType>(gemm.getLhs().getType());
      auto rhs = cast<tq::QTensorType>(gemm.getRhs().getType());
      // Per-tensor GEMMs go to cuBLASLt.
      if (lhs.getGranularity() != tq::Granularity::PerTensor &&
          rhs.getGranularity() != tq::Granularity::PerTensor)
        gemms.push_back(op);
    });
    if (gemms.empty())
      return;

    KernelCollection kernels(module);
    bool failed = false;
    for (Operation *op : gemms) {
      auto plain = dyn_cast<tq::ScaledMatmulOp>(op);
      auto grouped = dyn_cast<tq::GroupedScaledMatmulOp>(op);
      auto kGrouped = dyn_cast<tq::KGroupedScaledMatmulOp>(op);
      FailureOr<Classified> kind = failure();
      tq::TileConfigAttr tile;
      int64_t promotion = 0;
      if (plain) {
        kind = classify(plain);
        tile = plain.getTileAttr();
        promotion = plain.getPromotion();
      } else if (grouped) {
        // Dgrad contracts N of [experts, N, K]: the weights go transposed.
        kind = Classified{RhsScaling::Block128, false,
                          /*transposeRhs=*/grouped.getRhsContractingDim() == 1};
        tile = grouped.getTileAttr();
        promotion = grouped.getPromotion();
      } else {
        // The expert Wgrad is the Wgrad kernel, run once per expert on the
        // expert's aligned rows (its 128x1 groups never cross experts).
        kind = Classified{RhsScaling::PerRow, true, true};
        tile = kGrouped.getTileAttr();
        promotion = kGrouped.getPromotion();
      }
      if (llvm::failed(kind)) {
        failed = true;
        continue;
      }
      if (!tile) {
        op->emitOpError() << "has no tile configuration; run "
                             "--octet-select-gemm-tiles first or set tile(...)";
        failed = true;
        continue;
      }
      GemmKernelSpec spec;
      spec.rhsScaling = kind->rhsScaling;
      spec.grouped = bool(grouped);
      spec.tileM = tile.getM();
      spec.tileN = tile.getN();
      spec.tileK = tile.getK();
      spec.stages = tile.getStages();
      spec.promotion = promotion;
      spec.overlap = tile.getOverlap();
      spec.outputBF16 = cast<RankedTensorType>(op->getResult(0).getType())
                            .getElementType()
                            .isBF16();
      std::string why;
      llvm::raw_string_ostream os(why);
      if (llvm::failed(spec.verify(os))) {
        op->emitOpError() << "cannot be generated for Hopper: " << why;
        failed = true;
        continue;
      }
      kernels.use(op, spec.name(), [&](OpBuilder &b) {
        buildGemmKernel(b, op->getLoc(), spec);
      });
      op->setAttr("octet_tq.transposed",
                  DenseBoolArrayAttr::get(
                      ctx, {kind->transposeLhs, kind->transposeRhs}));
    }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
