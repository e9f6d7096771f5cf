//===- Passes.h - Octet CUDA target passes ----------------------*- C++ -*-===//

#ifndef OCTET_TARGET_CUDA_PASSES_H
#define OCTET_TARGET_CUDA_PASSES_H

#include "octet/Dialect/OctetTQ/OctetTQ.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace octet::cuda {

#define GEN_PASS_DECL
#include "octet/Target/CUDA/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "octet/Target/CUDA/Passes.h.inc"

} // namespace octet::cuda

#endif // OCTET_TARGET_CUDA_PASSES_H
