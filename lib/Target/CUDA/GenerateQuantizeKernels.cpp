//===- GenerateQuantizeKernels.cpp - octet_tq quantization to kernels -----===//

#include "octet/Target/CUDA/Passes.h"
#include "octet/Target/CUDA/QuantizeKernel.h"

#include "KernelBuilder.h"

#include "llvm/Support/raw_ostream.h"

namespace octet::cuda {
#define GEN_PASS_DEF_GENERATEQUANTIZEKERNELSPASS
#include "octet/Target/CUDA/Passes.h.inc"
} // namespace octet::cuda

using namespace mlir;
using namespace octet;
using namespace octet::cuda;
using octet::runtime::QuantizeKind;

namespace {

/// The kernel of one quantization op, or a diagnosed failure.
FailureOr<QuantizeKernelSpec> specOf(Operation *op) {
  auto result = cast<tq::QTensorType>(op->getResult(0).getType());
  if (!isa<Float8E4M3FNType>(result.getElementType()))
    return op->emitOpError() << "has no Hopper kernel for "
                             << result.getElementType()
                             << ": the kernels write E4M3";
  ArrayRef<int64_t> shape = result.getShape();
  if (shape.size() < 2)
    return op->emitOpError() << "has no Hopper kernel for rank "
                             << shape.size() << ": the kernels take matrices";
  int64_t rows = shape[shape.size() - 2], cols = shape.back();
  auto multiple = [](int64_t d) {
    return !ShapedType::isDynamic(d) && d % 128 == 0;
  };
  QuantizeKernelSpec spec;
  auto isBF16 = [](Value v) {
    return cast<RankedTensorType>(v.getType()).getElementType().isBF16();
  };
  if (auto norm = dyn_cast<tq::RMSNormQuantizeOp>(op)) {
    spec.kind = QuantizeKind::RMSNorm1x128;
    spec.inputBF16 = isBF16(norm.getX());
    spec.gammaBF16 = isBF16(norm.getGamma());
    spec.pow2 = norm.getPow2();
  } else if (auto swiglu = dyn_cast<tq::SwiGLUQuantizeOp>(op)) {
    spec.kind = QuantizeKind::SwiGLU1x128;
    spec.inputBF16 = isBF16(swiglu.getGate());
    spec.pow2 = swiglu.getPow2();
  } else if (auto quantize = dyn_cast<tq::QuantizeOp>(op)) {
    spec.pow2 = quantize.getPow2();
    spec.inputBF16 = quantize.getInput().getType().getElementType().isBF16();
    switch (result.getGranularity()) {
    case tq::Granularity::Tile1x128:
      spec.kind = QuantizeKind::Tile1x128;
      break;
    case tq::Granularity::Block128x128:
      spec.kind = QuantizeKind::Block128x128;
      break;
    case tq::Granularity::Tile128x1:
      spec.kind = QuantizeKind::Tile128x1;
      break;
    case tq::Granularity::PerTensor:
      return op->emitOpError()
             << "has no Hopper kernel for per_tensor scales (cuBLASLt's "
                "GEMMs take them; quantize them with the 1x128 kernel's "
                "amax first)";
    }
  } else {
    auto requantize = cast<tq::RequantizeTransposedOp>(op);
    spec.kind = QuantizeKind::Transpose128x1;
    spec.inputBF16 = false;
    spec.pow2 = requantize.getPow2();
  }
  bool transposing = spec.kind == QuantizeKind::Tile128x1 ||
                     spec.kind == QuantizeKind::Transpose128x1;
  bool fits = transposing ? shape.size() == 2 && multiple(rows) &&
                                !ShapedType::isDynamic(cols)
                          : multiple(cols);
  if (!fits) {
    std::string dims;
    llvm::raw_string_ostream os(dims);
    llvm::interleave(
        shape, os,
        [&](int64_t d) {
          if (ShapedType::isDynamic(d))
            os << "?";
          else
            os << d;
        },
        "x");
    return op->emitOpError()
           << "has no Hopper kernel for shape " << dims
           << (transposing ? ": 128x1 groups are written transposed for the "
                             "weight-gradient GEMM, which contracts over the "
                             "rows: they must be a static multiple of 128"
                           : ": the last dimension must be a static multiple "
                             "of 128");
  }
  return spec;
}

struct GenerateQuantizeKernelsPass
    : public octet::cuda::impl::GenerateQuantizeKernelsPassBase<
          GenerateQuantizeKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<Operation *> ops;
    module.walk([&](Operation *op) {
      if (isa<tq::QuantizeOp, tq::RequantizeTransposedOp,
              tq::RMSNormQuantizeOp, tq::SwiGLUQuantizeOp>(op))
        ops.push_back(op);
    });
    if (ops.empty())
      return;
    KernelCollection kernels(module);
    bool failed = false;
    for (Operation *op : ops) {
      FailureOr<QuantizeKernelSpec> spec = specOf(op);
      if (llvm::failed(spec)) {
        failed = true;
        continue;
      }
      kernels.use(op, spec->name(), [&](OpBuilder &b) {
        buildQuantizeKernel(b, op->getLoc(), *spec);
      });
    }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
