//===- ProgramTranslation.h - Training IR to a runtime program --*- C++ -*-===//
//
// Translates a module of training IR (the functions --octet-autodiff leaves:
// forward, forward_backward, optimizer_step) into the runtime's Program:
// one buffer per SSA value, arith.constant values as constants, parameters
// with their initialisation, and one instruction per remaining op with its
// attributes converted to JSON (docs/program-format.md).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TARGET_PROGRAMTRANSLATION_H
#define OCTET_TARGET_PROGRAMTRANSLATION_H

#include "octet/Runtime/Program.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

namespace octet {

struct ProgramTranslationOptions {
  /// Standard deviation of the normal initialisation of matrices.
  double initStd = 0.02;
};

/// Translates `module`; emits a diagnostic at the offending op and fails on
/// values or ops the runtime cannot execute.
mlir::FailureOr<runtime::Program>
translateToProgram(mlir::ModuleOp module,
                   const ProgramTranslationOptions &options = {});

} // namespace octet

#endif // OCTET_TARGET_PROGRAMTRANSLATION_H
