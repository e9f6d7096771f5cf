//===- OctetTQ.h - The tile-quantization dialect ----------------*- C++ -*-===//
//
// Public header of the `octet_tq` dialect: FP8 quantized tensors with FP32
// scales and block-scaled matrix products. ODS sources: dialects/OctetTQ/.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECT_OCTETTQ_OCTETTQ_H
#define OCTET_DIALECT_OCTETTQ_OCTETTQ_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "octet/Support/FP8Constants.h"

#include "octet/Dialect/OctetTQ/OctetTQDialect.h.inc"
#include "octet/Dialect/OctetTQ/OctetTQEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "octet/Dialect/OctetTQ/OctetTQTypes.h.inc"

#define GET_ATTRDEF_CLASSES
#include "octet/Dialect/OctetTQ/OctetTQAttrs.h.inc"

#define GET_OP_CLASSES
#include "octet/Dialect/OctetTQ/OctetTQOps.h.inc"

namespace octet::tq {
/// Largest finite value of an FP8 element type (448 for E4M3FN, 57344 for
/// E5M2); 0 for any other type.
double getFP8Max(mlir::Type elementType);
} // namespace octet::tq

#endif // OCTET_DIALECT_OCTETTQ_OCTETTQ_H
