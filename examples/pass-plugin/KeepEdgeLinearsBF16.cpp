//===- KeepEdgeLinearsBF16.cpp - An example pass plugin for octet-opt -----===//
//
// Built out of tree against an installed Octet (find_package(Octet)) and
// loaded with `octet-opt --load-pass-plugin=OctetExamplePlugin.so`.
//
//===----------------------------------------------------------------------===//

#include "octet/Dialect/Octet/Octet.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

namespace octet::example {
#define GEN_PASS_DECL_KEEPEDGELINEARSBF16PASS
#define GEN_PASS_DEF_KEEPEDGELINEARSBF16PASS
#include "Passes.h.inc"
} // namespace octet::example

using namespace mlir;

namespace {
struct KeepEdgeLinearsBF16Pass
    : public octet::example::impl::KeepEdgeLinearsBF16PassBase<
          KeepEdgeLinearsBF16Pass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<octet::LinearOp> linears;
    getOperation().walk([&](octet::LinearOp op) { linears.push_back(op); });

    size_t n = linears.size();
    for (size_t i = 0; i < n; ++i) {
      if (i >= count && i + count < n)
        continue;
      octet::LinearOp op = linears[i];
      Type out = op.getType().getElementType();
      // BF16 compute takes no scales and no promotion; the output type must
      // stay the result's element type or the op's verifier rejects it.
      op.setPrecisionAttr(octet::PrecisionAttr::get(
          op.getContext(), octet::ComputeFormat::BF16,
          octet::ScalingGranularity::None, octet::ScalingGranularity::None,
          octet::ScaleRounding::FP32, /*promotionInterval=*/0, out));
    }
  }
};
} // namespace

/// The entry point octet-opt's --load-pass-plugin looks up.
extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "OctetExamplePlugin", LLVM_VERSION_STRING,
          []() { PassRegistration<KeepEdgeLinearsBF16Pass>(); }};
}
