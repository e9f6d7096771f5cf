//===- octet-opt.cpp - The Octet optimizer driver -------------------------===//
//
// mlir-opt for Octet: our three dialects, our passes, and the upstream
// dialects Octet IR uses. Pass plugins (--load-pass-plugin) and dialect
// plugins (--load-dialect-plugin) are supported by MlirOptMain.
//
//===----------------------------------------------------------------------===//

#include "octet/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  octet::registerAllDialects(registry);
  octet::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Octet optimizer driver\n", registry));
}
