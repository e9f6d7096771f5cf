//===- InitAll.h - Register every Octet dialect and pass --------*- C++ -*-===//

#ifndef OCTET_INITALL_H
#define OCTET_INITALL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace octet {

/// Registers Octet's dialects and the upstream dialects Octet IR uses
/// (builtin, func, arith, cf, tensor).
void registerAllDialects(mlir::DialectRegistry &registry);

/// Registers every Octet pass, and MLIR's generic transformation passes
/// (canonicalize, cse, ...), with the global pass registry.
void registerAllPasses();

} // namespace octet

#endif // OCTET_INITALL_H
