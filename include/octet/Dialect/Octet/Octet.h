//===- Octet.h - The octet graph dialect ------------------------*- C++ -*-===//
//
// Public header of the `octet` dialect: tensor ops of a transformer training
// graph with precision annotations. ODS sources: dialects/Octet/.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECT_OCTET_OCTET_H
#define OCTET_DIALECT_OCTET_OCTET_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "octet/Support/FP8Constants.h"

#include "octet/Dialect/Octet/OctetDialect.h.inc"
#include "octet/Dialect/Octet/OctetEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "octet/Dialect/Octet/OctetAttrs.h.inc"

#define GET_OP_CLASSES
#include "octet/Dialect/Octet/OctetOps.h.inc"

#endif // OCTET_DIALECT_OCTET_OCTET_H
