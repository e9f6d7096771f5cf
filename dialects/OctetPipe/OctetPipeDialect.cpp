//===- OctetPipeDialect.cpp - octet_pipe dialect and types ----------------===//

#include "octet/Dialect/OctetPipe/OctetPipe.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace octet::pipe;

#include "octet/Dialect/OctetPipe/OctetPipeDialect.cpp.inc"
#include "octet/Dialect/OctetPipe/OctetPipeEnums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "octet/Dialect/OctetPipe/OctetPipeTypes.cpp.inc"

void OctetPipeDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "octet/Dialect/OctetPipe/OctetPipeOps.cpp.inc"
      >();
  registerTypes();
}

void OctetPipeDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "octet/Dialect/OctetPipe/OctetPipeTypes.cpp.inc"
      >();
}
