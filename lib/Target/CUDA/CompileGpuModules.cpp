//===- CompileGpuModules.cpp - gpu.module to PTX / cubin ------------------===//
//
// MLIR's GPU pipeline, fixed for Hopper: attach the sm_90a NVVM target,
// lower each gpu.module to the LLVM dialect, and serialize it. PTX comes
// from LLVM's NVPTX backend; a cubin also runs the CUDA toolkit's ptxas.
//
//===----------------------------------------------------------------------===//

#include "octet/Target/CUDA/GemmKernel.h"
#include "octet/Target/CUDA/Passes.h"
#include "octet/Transforms/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"

using namespace mlir;

void octet::cuda::registerGpuCompilation(DialectRegistry &registry) {
  registry.insert<gpu::GPUDialect, NVVM::NVVMDialect>();
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  index::registerConvertIndexToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  NVVM::registerConvertGpuToNVVMInterface(registry);
}

LogicalResult octet::cuda::compileGpuModules(ModuleOp module,
                                             BinaryFormat format,
                                             StringRef toolkitPath) {
  PassManager pm(module.getContext());
  GpuNVVMAttachTargetOptions target;
  target.chip = "sm_90a";
  target.features = "+ptx86";
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(createConvertGpuOpsToNVVMOps());
  kernels.addPass(createConvertNVVMToLLVMPass());
  kernels.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = format == BinaryFormat::PTX ? "isa" : "bin";
  binary.toolkitPath = toolkitPath.str();
  pm.addPass(createGpuModuleToBinaryPass(binary));
  // MLIR's NVVM serializer always looks for libdevice and reports a missing
  // one as an error, then carries on. Octet's kernels call no libdevice
  // function (their math lowers to PTX instructions), so on a machine
  // without the CUDA toolkit PTX is still produced: drop that report.
  ScopedDiagnosticHandler quiet(module.getContext(), [](Diagnostic &d) {
    return success(d.getSeverity() == DiagnosticSeverity::Error &&
                   StringRef(d.str()).starts_with("LibDevice path:"));
  });
  return pm.run(module);
}

LogicalResult octet::cuda::generateGemmKernels(ModuleOp module, int64_t numSMs,
                                               bool overlap) {
  PassManager pm(module.getContext());
  SelectGemmTilesPassOptions tiles;
  tiles.numSMs = numSMs;
  tiles.overlap = overlap;
  pm.addPass(octet::createFuseQuantizePass());
  pm.addPass(createSelectGemmTilesPass(tiles));
  pm.addPass(createGenerateGemmKernelsPass());
  pm.addPass(createGenerateQuantizeKernelsPass());
  return pm.run(module);
}
