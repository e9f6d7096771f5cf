//===- ShapeUtils.h - Shape comparisons and printing for verifiers -*- C++
//-*-===//
//
// Small helpers the verifiers of all Octet dialects share, so that shape
// diagnostics read the same everywhere: shapes print as [4, ?, 1024].
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_SUPPORT_SHAPEUTILS_H
#define OCTET_SUPPORT_SHAPEUTILS_H

#include "mlir/IR/BuiltinTypeInterfaces.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace octet {

/// True when two dimensions can be equal at run time (either is dynamic).
inline bool dimsCompatible(int64_t a, int64_t b) {
  return a == b || mlir::ShapedType::isDynamic(a) ||
         mlir::ShapedType::isDynamic(b);
}

/// True when two shapes have the same rank and compatible dimensions.
inline bool shapesCompatible(llvm::ArrayRef<int64_t> a,
                             llvm::ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip_equal(a, b))
    if (!dimsCompatible(x, y))
      return false;
  return true;
}

/// Prints a shape as "[4, ?, 1024]".
inline std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << '[';
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (mlir::ShapedType::isDynamic(d))
      os << '?';
    else
      os << d;
  });
  os << ']';
  return s;
}

/// Prints a dimension, "?" when dynamic.
inline std::string formatDim(int64_t d) {
  return mlir::ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
}

} // namespace octet

#endif // OCTET_SUPPORT_SHAPEUTILS_H
