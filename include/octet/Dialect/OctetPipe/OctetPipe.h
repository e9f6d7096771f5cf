//===- OctetPipe.h - The pipeline/communication dialect ---------*- C++ -*-===//
//
// Public header of the `octet_pipe` dialect: per-rank pipeline schedules,
// point-to-point transfers and asynchronous collectives.
// ODS sources: dialects/OctetPipe/.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECT_OCTETPIPE_OCTETPIPE_H
#define OCTET_DIALECT_OCTETPIPE_OCTETPIPE_H

#include "octet/Dialect/OctetTQ/OctetTQ.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "octet/Dialect/OctetPipe/OctetPipeDialect.h.inc"
#include "octet/Dialect/OctetPipe/OctetPipeEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "octet/Dialect/OctetPipe/OctetPipeTypes.h.inc"

#define GET_OP_CLASSES
#include "octet/Dialect/OctetPipe/OctetPipeOps.h.inc"

#endif // OCTET_DIALECT_OCTETPIPE_OCTETPIPE_H
