//===- Passes.h - Octet graph transformation passes -------------*- C++ -*-===//

#ifndef OCTET_TRANSFORMS_PASSES_H
#define OCTET_TRANSFORMS_PASSES_H

#include "octet/Dialect/Octet/Octet.h"
#include "octet/Dialect/OctetTQ/OctetTQ.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace octet {

#define GEN_PASS_DECL
#include "octet/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "octet/Transforms/Passes.h.inc"

} // namespace octet

#endif // OCTET_TRANSFORMS_PASSES_H
