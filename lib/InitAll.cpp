//===- InitAll.cpp - Register every Octet dialect and pass ----------------===//

#include "octet/InitAll.h"

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Dialect/OctetPipe/OctetPipe.h"
#include "octet/Dialect/OctetTQ/OctetTQ.h"
#include "octet/Target/CUDA/GemmKernel.h"
#include "octet/Target/CUDA/Passes.h"
#include "octet/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void octet::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<octet::OctetDialect, octet::tq::OctetTQDialect,
                  octet::pipe::OctetPipeDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::cf::ControlFlowDialect,
                  mlir::tensor::TensorDialect>();
  // The CUDA target's kernels (gpu, nvvm, llvm, scf) and what lowering
  // them to PTX needs.
  octet::cuda::registerGpuCompilation(registry);
  registry.insert<mlir::LLVM::LLVMDialect, mlir::scf::SCFDialect>();
}

void octet::registerAllPasses() {
  octet::registerOctetPasses();
  octet::cuda::registerOctetCUDAPasses();
  // canonicalize, cse, inline, symbol-dce, ...: Octet IR is cleaned and
  // constant-folded with the upstream passes.
  mlir::registerTransformsPasses();
}
