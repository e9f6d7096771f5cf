//===- Program.h - The executable form of a compiled training step -*- C++ -*-===//
//
// What octetc produces and the runtime runs: buffers, parameters, constants
// and functions (`forward`, `forward_backward`, `optimizer_step`), each an
// ordered list of instructions. An instruction is one op of the training IR
// (the `octet`, `octet_tq`, `tensor` and `arith` ops the compiler lowers to)
// with its operand and result buffers and its attributes; backends map each
// op name to a kernel. No MLIR here: the runtime links none.
//
// Serialized as a versioned JSON document (docs/program-format.md). Loading
// validates everything (format tag and version, buffer ids in range, each
// buffer defined once per function before use, shapes, dtypes, attributes
// of the right kinds) and reports the first problem with its location in
// the document.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_PROGRAM_H
#define OCTET_RUNTIME_PROGRAM_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace octet::runtime {

/// The format tag and version every program document carries.
constexpr const char *kProgramFormat = "octet-program";
constexpr int64_t kProgramVersion = 1;

/// Element type of a program buffer ("f32", "bf16", "i32", "i64" in the
/// document). Distinct from the safetensors DType: programs hold only these.
enum class BufferType { F32, BF16, I32, I64 };

llvm::StringRef toString(BufferType t);
std::optional<BufferType> parseBufferType(llvm::StringRef s);

struct Buffer {
  std::string name; ///< Where it came from, for diagnostics ("%12", ...).
  BufferType dtype = BufferType::F32;
  std::vector<int64_t> shape; ///< Static; rank 0 for scalars.
  int64_t numElements() const;
};

/// How a parameter's master weight starts.
struct ParameterInit {
  enum Kind { Normal, Zeros, Ones } kind = Normal;
  double std = 0.02; ///< For Normal.
};

struct Parameter {
  std::string name; ///< The checkpoint key.
  std::vector<int64_t> shape;
  bool frozen = false;
  ParameterInit init;
  int64_t numElements() const;
};

/// A constant buffer: a splat value or all values, row-major.
struct Constant {
  int64_t buffer = -1;
  bool isSplat = true;
  double splat = 0.0;
  std::vector<double> values;
};

struct Instruction {
  std::string op; ///< The IR op name: "octet.linear", "tensor.concat", ...
  std::vector<int64_t> operands, results;
  llvm::json::Object attrs;
};

struct Function {
  std::string name;
  std::vector<int64_t> arguments, results;
  std::vector<Instruction> body;
};

struct Program {
  std::vector<Buffer> buffers;
  std::vector<Parameter> parameters;
  std::vector<Constant> constants;
  std::vector<Function> functions;
  /// Free-form facts from the compiler (model name, recipe, ...).
  std::map<std::string, std::string> metadata;

  const Function *lookupFunction(llvm::StringRef name) const;
  const Parameter *lookupParameter(llvm::StringRef name) const;
};

/// The program as a JSON document.
llvm::json::Value toJSON(const Program &program);

/// Parses and validates a program document; `source` names it in errors.
llvm::Expected<Program> parseProgram(llvm::StringRef text,
                                     llvm::StringRef source);

/// Reads and parses a program file.
llvm::Expected<Program> readProgramFile(llvm::StringRef path);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_PROGRAM_H
