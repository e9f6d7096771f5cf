//===- ShortFloat.h - Floats printed as their shortest decimal --*- C++ -*-===//
//
// The `custom<ShortFloat>` assembly directive of the Octet dialects: an f64
// attribute printed as the shortest decimal that reads back to it, so that
// epsilon(1.0e-06) stays readable instead of epsilon(9.9999999999999995E-7).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_DIALECT_SHORTFLOAT_H
#define OCTET_DIALECT_SHORTFLOAT_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <charconv>
#include <cmath>
#include <string>

namespace octet {

/// The shortest decimal that reads back to `v`, as an MLIR float literal
/// (with a '.').
inline std::string formatShortFloat(double v) {
  if (!std::isfinite(v)) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << llvm::format("%e", v);
    return s;
  }
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  std::string s(buffer, ec == std::errc() ? end : buffer);
  size_t e = s.find_first_of("eE");
  std::string mantissa = s.substr(0, e);
  std::string exponent = e == std::string::npos ? "" : s.substr(e);
  if (mantissa.find('.') == std::string::npos)
    mantissa += ".0";
  return mantissa + exponent;
}

inline void printShortFloat(mlir::OpAsmPrinter &printer, mlir::Operation *,
                            mlir::FloatAttr attr) {
  printer << formatShortFloat(attr.getValueAsDouble());
}

inline mlir::ParseResult parseShortFloat(mlir::OpAsmParser &parser,
                                         mlir::FloatAttr &attr) {
  double value;
  if (parser.parseFloat(value))
    return mlir::failure();
  attr = parser.getBuilder().getF64FloatAttr(value);
  return mlir::success();
}

} // namespace octet

#endif // OCTET_DIALECT_SHORTFLOAT_H
