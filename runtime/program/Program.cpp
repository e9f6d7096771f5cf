//===- Program.cpp - Program documents: writing, parsing, validation ------===//
//
// The loader is the runtime's first line of defence: a program comes from a
// file that may be truncated, hand-edited or written by another version of
// octetc, and the backends index buffers with what it says. So everything a
// backend relies on is checked here, once, and the first problem is
// reported as `<source>: <JSON path>: <what was expected>`.
//
// Only LLVM Support is used (the compiler links these objects into a
// library that also links MLIR, the runtime into executables that do not).
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/Program.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <limits>

using namespace octet::runtime;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Small API
//===----------------------------------------------------------------------===//

StringRef octet::runtime::toString(BufferType t) {
  switch (t) {
  case BufferType::F32:
    return "f32";
  case BufferType::BF16:
    return "bf16";
  case BufferType::I32:
    return "i32";
  case BufferType::I64:
    return "i64";
  }
  return "?";
}

std::optional<BufferType> octet::runtime::parseBufferType(StringRef s) {
  if (s == "f32")
    return BufferType::F32;
  if (s == "bf16")
    return BufferType::BF16;
  if (s == "i32")
    return BufferType::I32;
  if (s == "i64")
    return BufferType::I64;
  return std::nullopt;
}

int64_t Buffer::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t Parameter::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

const Function *Program::lookupFunction(StringRef name) const {
  for (const Function &f : functions)
    if (f.name == name)
      return &f;
  return nullptr;
}

const Parameter *Program::lookupParameter(StringRef name) const {
  for (const Parameter &p : parameters)
    if (p.name == name)
      return &p;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

static json::Array toJSONArray(const std::vector<int64_t> &v) {
  return json::Array(v);
}

/// JSON has no NaN or infinity; a constant holding one (a -inf attention
/// mask, say) is written as a string instead.
static json::Value numberToJSON(double v) {
  if (std::isnan(v))
    return "nan";
  if (std::isinf(v))
    return v > 0 ? "inf" : "-inf";
  return v;
}

static StringRef initKindName(ParameterInit::Kind k) {
  switch (k) {
  case ParameterInit::Normal:
    return "normal";
  case ParameterInit::Zeros:
    return "zeros";
  case ParameterInit::Ones:
    return "ones";
  }
  return "?";
}

json::Value octet::runtime::toJSON(const Program &program) {
  json::Array buffers;
  for (const Buffer &b : program.buffers)
    buffers.push_back(json::Object{{"name", b.name},
                                   {"dtype", toString(b.dtype)},
                                   {"shape", toJSONArray(b.shape)}});
  json::Array parameters;
  for (const Parameter &p : program.parameters) {
    json::Object init{{"kind", initKindName(p.init.kind)}};
    if (p.init.kind == ParameterInit::Normal)
      init["std"] = p.init.std;
    parameters.push_back(json::Object{{"name", p.name},
                                      {"shape", toJSONArray(p.shape)},
                                      {"frozen", p.frozen},
                                      {"init", std::move(init)}});
  }
  json::Array constants;
  for (const Constant &c : program.constants) {
    json::Object o{{"buffer", c.buffer}};
    if (c.isSplat) {
      o["splat"] = numberToJSON(c.splat);
    } else {
      json::Array values;
      for (double v : c.values)
        values.push_back(numberToJSON(v));
      o["values"] = std::move(values);
    }
    constants.push_back(std::move(o));
  }
  json::Array functions;
  for (const Function &f : program.functions) {
    json::Array body;
    for (const Instruction &inst : f.body)
      body.push_back(json::Object{{"op", inst.op},
                                  {"operands", toJSONArray(inst.operands)},
                                  {"results", toJSONArray(inst.results)},
                                  {"attrs", json::Object(inst.attrs)}});
    functions.push_back(json::Object{{"name", f.name},
                                     {"arguments", toJSONArray(f.arguments)},
                                     {"results", toJSONArray(f.results)},
                                     {"body", std::move(body)}});
  }
  json::Object metadata;
  for (const auto &[key, value] : program.metadata)
    metadata[key] = value;
  return json::Object{{"format", kProgramFormat},
                      {"version", kProgramVersion},
                      {"metadata", std::move(metadata)},
                      {"buffers", std::move(buffers)},
                      {"parameters", std::move(parameters)},
                      {"constants", std::move(constants)},
                      {"functions", std::move(functions)}};
}

//===----------------------------------------------------------------------===//
// Parsing and validation
//===----------------------------------------------------------------------===//

namespace {

StringRef kindName(const json::Value &v) {
  switch (v.kind()) {
  case json::Value::Null:
    return "null";
  case json::Value::Boolean:
    return "a boolean";
  case json::Value::Number:
    return "a number";
  case json::Value::String:
    return "a string";
  case json::Value::Array:
    return "an array";
  case json::Value::Object:
    return "an object";
  }
  return "a value";
}

std::string formatNumber(double d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.10g", d);
  return text;
}

/// A JSON path (`functions[1].body[17].operands[2]`), built as the
/// validator descends.
std::string field(const std::string &path, StringRef key) {
  return path.empty() ? key.str() : path + "." + key.str();
}
std::string element(const std::string &path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

class Validator {
public:
  explicit Validator(StringRef source) : source(source.str()) {}

  Expected<Program> run(const json::Value &root);

private:
  Error fail(const std::string &path, const llvm::Twine &message) const {
    std::string text = source + ": ";
    if (!path.empty())
      text += path + ": ";
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   text + message.str());
  }

  /// Rejects keys outside `allowed`: a misspelt key would otherwise be
  /// silently ignored and its field take the default.
  Error checkKeys(const json::Object &o, const std::string &path,
                  llvm::ArrayRef<StringRef> allowed) const {
    for (const auto &entry : o) {
      StringRef key = entry.first;
      if (llvm::is_contained(allowed, key))
        continue;
      std::string list;
      for (StringRef a : allowed)
        list += (list.empty() ? "" : ", ") + a.str();
      return fail(field(path, key),
                  "unknown key (expected one of: " + list + ")");
    }
    return Error::success();
  }

  Expected<const json::Object *> getObject(const json::Value &v,
                                           const std::string &path) const {
    if (const json::Object *o = v.getAsObject())
      return o;
    return fail(path, "expected an object, got " + kindName(v));
  }
  Expected<const json::Array *> getArray(const json::Value &v,
                                         const std::string &path) const {
    if (const json::Array *a = v.getAsArray())
      return a;
    return fail(path, "expected an array, got " + kindName(v));
  }
  Expected<std::string> getString(const json::Value &v,
                                  const std::string &path) const {
    if (std::optional<StringRef> s = v.getAsString())
      return s->str();
    return fail(path, "expected a string, got " + kindName(v));
  }
  Expected<int64_t> getInteger(const json::Value &v,
                               const std::string &path) const {
    if (std::optional<int64_t> i = v.getAsInteger())
      return *i;
    if (v.kind() == json::Value::Number)
      return fail(path,
                  "expected an integer, got " + formatNumber(*v.getAsNumber()));
    return fail(path, "expected an integer, got " + kindName(v));
  }
  Expected<double> getNumber(const json::Value &v,
                             const std::string &path) const {
    if (std::optional<double> d = v.getAsNumber())
      return *d;
    return fail(path, "expected a number, got " + kindName(v));
  }

  /// A required member, or an error naming it.
  Expected<const json::Value *>
  require(const json::Object &o, const std::string &path, StringRef key) const {
    if (const json::Value *v = o.get(key))
      return v;
    return fail(path, "missing key '" + key + "'");
  }

  /// The required, non-empty `name` of the object at `path`, which must not
  /// be in `seen` yet (`what` names the kind in the error: "parameter '...'
  /// is declared twice").
  Expected<std::string> getUniqueName(const json::Object &o,
                                      const std::string &path,
                                      llvm::StringSet<> &seen, StringRef what,
                                      StringRef twice) const {
    Expected<const json::Value *> name = require(o, path, "name");
    if (!name)
      return name.takeError();
    Expected<std::string> s = getString(**name, field(path, "name"));
    if (!s)
      return s.takeError();
    if (s->empty())
      return fail(field(path, "name"), "expected a non-empty name");
    if (!seen.insert(*s).second)
      return fail(field(path, "name"),
                  what + " '" + *s + "' is " + twice + " twice");
    return s;
  }

  Expected<std::vector<int64_t>> getShape(const json::Value &v,
                                          const std::string &path) const;
  Expected<int64_t> getBufferId(const json::Value &v,
                                const std::string &path) const;
  Expected<std::vector<int64_t>> getBufferIds(const json::Value &v,
                                              const std::string &path) const;

  Error parseBuffers(const json::Object &root, Program &program);
  Error parseParameters(const json::Object &root, Program &program);
  Error parseConstants(const json::Object &root, Program &program);
  Error parseFunctions(const json::Object &root, Program &program);
  Error parseMetadata(const json::Object &root, Program &program);
  Expected<Instruction> parseInstruction(const json::Value &v,
                                         const std::string &path);
  Error checkFunction(const Function &f, const std::string &path) const;

  std::string source;
  /// Number of buffers, for range checks.
  size_t numBuffers = 0;
  /// Buffers that hold a constant (valid in every function).
  llvm::DenseSet<int64_t> constantBuffers;
};

} // namespace

Expected<std::vector<int64_t>>
Validator::getShape(const json::Value &v, const std::string &path) const {
  Expected<const json::Array *> a = getArray(v, path);
  if (!a)
    return a.takeError();
  std::vector<int64_t> shape;
  // Element counts must fit int64_t: the backends allocate and index by it.
  int64_t count = 1;
  for (size_t i = 0; i < (*a)->size(); ++i) {
    Expected<int64_t> d = getInteger((**a)[i], element(path, i));
    if (!d)
      return d.takeError();
    if (*d < 0)
      return fail(element(path, i),
                  "expected a non-negative size, got " + llvm::Twine(*d));
    if (*d != 0 && count > std::numeric_limits<int64_t>::max() / *d)
      return fail(path, "the shape has more elements than fit in 64 bits");
    count *= *d;
    shape.push_back(*d);
  }
  return shape;
}

Expected<int64_t> Validator::getBufferId(const json::Value &v,
                                         const std::string &path) const {
  Expected<int64_t> id = getInteger(v, path);
  if (!id)
    return id.takeError();
  if (*id < 0 || static_cast<size_t>(*id) >= numBuffers)
    return fail(path, "buffer " + llvm::Twine(*id) +
                          " is out of range (the program has " +
                          llvm::Twine(numBuffers) + " buffers)");
  return *id;
}

Expected<std::vector<int64_t>>
Validator::getBufferIds(const json::Value &v, const std::string &path) const {
  Expected<const json::Array *> a = getArray(v, path);
  if (!a)
    return a.takeError();
  std::vector<int64_t> ids;
  for (size_t i = 0; i < (*a)->size(); ++i) {
    Expected<int64_t> id = getBufferId((**a)[i], element(path, i));
    if (!id)
      return id.takeError();
    ids.push_back(*id);
  }
  return ids;
}

Error Validator::parseBuffers(const json::Object &root, Program &program) {
  Expected<const json::Value *> v = require(root, "", "buffers");
  if (!v)
    return v.takeError();
  Expected<const json::Array *> a = getArray(**v, "buffers");
  if (!a)
    return a.takeError();
  for (size_t i = 0; i < (*a)->size(); ++i) {
    std::string path = element("buffers", i);
    Expected<const json::Object *> o = getObject((**a)[i], path);
    if (!o)
      return o.takeError();
    if (Error e = checkKeys(**o, path, {"name", "dtype", "shape"}))
      return e;
    Buffer b;
    if (const json::Value *name = (*o)->get("name")) {
      Expected<std::string> s = getString(*name, field(path, "name"));
      if (!s)
        return s.takeError();
      b.name = *s;
    }
    Expected<const json::Value *> dtype = require(**o, path, "dtype");
    if (!dtype)
      return dtype.takeError();
    Expected<std::string> dtypeName = getString(**dtype, field(path, "dtype"));
    if (!dtypeName)
      return dtypeName.takeError();
    std::optional<BufferType> t = parseBufferType(*dtypeName);
    if (!t)
      return fail(field(path, "dtype"), "unknown dtype '" + *dtypeName +
                                            "' (expected f32, bf16, i32 or "
                                            "i64)");
    b.dtype = *t;
    Expected<const json::Value *> shape = require(**o, path, "shape");
    if (!shape)
      return shape.takeError();
    Expected<std::vector<int64_t>> s = getShape(**shape, field(path, "shape"));
    if (!s)
      return s.takeError();
    b.shape = std::move(*s);
    program.buffers.push_back(std::move(b));
  }
  numBuffers = program.buffers.size();
  return Error::success();
}

Error Validator::parseParameters(const json::Object &root, Program &program) {
  const json::Value *v = root.get("parameters");
  if (!v)
    return Error::success();
  Expected<const json::Array *> a = getArray(*v, "parameters");
  if (!a)
    return a.takeError();
  llvm::StringSet<> names;
  for (size_t i = 0; i < (*a)->size(); ++i) {
    std::string path = element("parameters", i);
    Expected<const json::Object *> o = getObject((**a)[i], path);
    if (!o)
      return o.takeError();
    if (Error e = checkKeys(**o, path, {"name", "shape", "frozen", "init"}))
      return e;
    Parameter p;
    Expected<std::string> s =
        getUniqueName(**o, path, names, "parameter", "declared");
    if (!s)
      return s.takeError();
    p.name = *s;
    Expected<const json::Value *> shape = require(**o, path, "shape");
    if (!shape)
      return shape.takeError();
    Expected<std::vector<int64_t>> sh = getShape(**shape, field(path, "shape"));
    if (!sh)
      return sh.takeError();
    p.shape = std::move(*sh);
    if (const json::Value *frozen = (*o)->get("frozen")) {
      std::optional<bool> b = frozen->getAsBoolean();
      if (!b)
        return fail(field(path, "frozen"),
                    "expected a boolean, got " + kindName(*frozen));
      p.frozen = *b;
    }
    if (const json::Value *init = (*o)->get("init")) {
      std::string initPath = field(path, "init");
      Expected<const json::Object *> io = getObject(*init, initPath);
      if (!io)
        return io.takeError();
      if (Error e = checkKeys(**io, initPath, {"kind", "std"}))
        return e;
      Expected<const json::Value *> kind = require(**io, initPath, "kind");
      if (!kind)
        return kind.takeError();
      Expected<std::string> k = getString(**kind, field(initPath, "kind"));
      if (!k)
        return k.takeError();
      if (*k == "normal")
        p.init.kind = ParameterInit::Normal;
      else if (*k == "zeros")
        p.init.kind = ParameterInit::Zeros;
      else if (*k == "ones")
        p.init.kind = ParameterInit::Ones;
      else
        return fail(field(initPath, "kind"),
                    "unknown initialisation '" + *k +
                        "' (expected normal, zeros or ones)");
      if (const json::Value *std = (*io)->get("std")) {
        if (p.init.kind != ParameterInit::Normal)
          return fail(field(initPath, "std"),
                      "only a normal initialisation takes a std");
        Expected<double> d = getNumber(*std, field(initPath, "std"));
        if (!d)
          return d.takeError();
        if (!(*d >= 0) || !std::isfinite(*d))
          return fail(field(initPath, "std"),
                      "expected a finite non-negative std, got " +
                          formatNumber(*d));
        p.init.std = *d;
      }
    }
    program.parameters.push_back(std::move(p));
  }
  return Error::success();
}

/// A constant's value: a number, or "nan", "inf", "-inf".
static std::optional<double> constantValue(const json::Value &v) {
  if (std::optional<double> d = v.getAsNumber())
    return d;
  if (std::optional<StringRef> s = v.getAsString()) {
    if (*s == "nan")
      return std::numeric_limits<double>::quiet_NaN();
    if (*s == "inf")
      return std::numeric_limits<double>::infinity();
    if (*s == "-inf")
      return -std::numeric_limits<double>::infinity();
  }
  return std::nullopt;
}

Error Validator::parseConstants(const json::Object &root, Program &program) {
  const json::Value *v = root.get("constants");
  if (!v)
    return Error::success();
  Expected<const json::Array *> a = getArray(*v, "constants");
  if (!a)
    return a.takeError();
  for (size_t i = 0; i < (*a)->size(); ++i) {
    std::string path = element("constants", i);
    Expected<const json::Object *> o = getObject((**a)[i], path);
    if (!o)
      return o.takeError();
    if (Error e = checkKeys(**o, path, {"buffer", "splat", "values"}))
      return e;
    Constant c;
    Expected<const json::Value *> buffer = require(**o, path, "buffer");
    if (!buffer)
      return buffer.takeError();
    Expected<int64_t> id = getBufferId(**buffer, field(path, "buffer"));
    if (!id)
      return id.takeError();
    if (!constantBuffers.insert(*id).second)
      return fail(field(path, "buffer"),
                  "buffer " + llvm::Twine(*id) + " already holds a constant");
    c.buffer = *id;
    const Buffer &b = program.buffers[*id];
    bool isInt = b.dtype == BufferType::I32 || b.dtype == BufferType::I64;
    auto checkValue = [&](double d, const std::string &where) -> Error {
      // Integer buffers hold integers: a fraction or a value beyond the
      // dtype would be silently changed by the backend.
      if (!isInt)
        return Error::success();
      // [lo, end): both bounds are exact doubles (2^63 - 1 is not).
      double lo = b.dtype == BufferType::I32 ? -0x1p31 : -0x1p63;
      double end = b.dtype == BufferType::I32 ? 0x1p31 : 0x1p63;
      if (std::trunc(d) != d || d < lo || d >= end)
        return fail(where, "expected an " + toString(b.dtype) +
                               " value for buffer " + llvm::Twine(*id) +
                               ", got " + formatNumber(d));
      return Error::success();
    };
    const json::Value *splat = (*o)->get("splat");
    const json::Value *values = (*o)->get("values");
    if ((splat != nullptr) == (values != nullptr))
      return fail(path, "expected exactly one of 'splat' and 'values'");
    if (splat) {
      std::optional<double> d = constantValue(*splat);
      if (!d)
        return fail(field(path, "splat"),
                    "expected a number (or \"nan\", \"inf\", \"-inf\"), got " +
                        kindName(*splat));
      if (Error e = checkValue(*d, field(path, "splat")))
        return e;
      c.isSplat = true;
      c.splat = *d;
    } else {
      std::string valuesPath = field(path, "values");
      Expected<const json::Array *> va = getArray(*values, valuesPath);
      if (!va)
        return va.takeError();
      if (static_cast<int64_t>((*va)->size()) != b.numElements())
        return fail(valuesPath, "expected " + llvm::Twine(b.numElements()) +
                                    " values (the elements of buffer " +
                                    llvm::Twine(*id) + "), got " +
                                    llvm::Twine((*va)->size()));
      c.isSplat = false;
      c.values.reserve((*va)->size());
      for (size_t j = 0; j < (*va)->size(); ++j) {
        std::optional<double> d = constantValue((**va)[j]);
        if (!d)
          return fail(element(valuesPath, j),
                      "expected a number (or \"nan\", \"inf\", \"-inf\"), "
                      "got " +
                          kindName((**va)[j]));
        if (Error e = checkValue(*d, element(valuesPath, j)))
          return e;
        c.values.push_back(*d);
      }
    }
    program.constants.push_back(std::move(c));
  }
  return Error::success();
}

Expected<Instruction> Validator::parseInstruction(const json::Value &v,
                                                  const std::string &path) {
  Expected<const json::Object *> o = getObject(v, path);
  if (!o)
    return o.takeError();
  if (Error e = checkKeys(**o, path, {"op", "operands", "results", "attrs"}))
    return std::move(e);
  Instruction inst;
  Expected<const json::Value *> op = require(**o, path, "op");
  if (!op)
    return op.takeError();
  Expected<std::string> name = getString(**op, field(path, "op"));
  if (!name)
    return name.takeError();
  if (name->empty())
    return fail(field(path, "op"), "expected a non-empty op name");
  inst.op = *name;
  if (const json::Value *operands = (*o)->get("operands")) {
    Expected<std::vector<int64_t>> ids =
        getBufferIds(*operands, field(path, "operands"));
    if (!ids)
      return ids.takeError();
    inst.operands = std::move(*ids);
  }
  if (const json::Value *results = (*o)->get("results")) {
    Expected<std::vector<int64_t>> ids =
        getBufferIds(*results, field(path, "results"));
    if (!ids)
      return ids.takeError();
    inst.results = std::move(*ids);
  }
  if (const json::Value *attrs = (*o)->get("attrs")) {
    Expected<const json::Object *> a = getObject(*attrs, field(path, "attrs"));
    if (!a)
      return a.takeError();
    inst.attrs = **a;
  }
  return inst;
}

/// The def-before-use rules within one function: a buffer is defined by
/// being an argument, a constant or a result of an instruction, exactly
/// once, and read only after it is defined.
Error Validator::checkFunction(const Function &f,
                               const std::string &path) const {
  llvm::DenseMap<int64_t, std::string> definedAt;
  auto define = [&](int64_t id, const std::string &where) -> Error {
    if (constantBuffers.contains(id))
      return fail(where, "buffer " + llvm::Twine(id) +
                             " holds a constant and cannot be redefined");
    auto [it, inserted] = definedAt.try_emplace(id, where);
    if (!inserted)
      return fail(where, "buffer " + llvm::Twine(id) +
                             " is already defined in this function (at " +
                             it->second + ")");
    return Error::success();
  };
  auto use = [&](int64_t id, const std::string &where) -> Error {
    if (constantBuffers.contains(id) || definedAt.count(id))
      return Error::success();
    return fail(where, "buffer " + llvm::Twine(id) +
                           " is read before it is defined (expected an "
                           "argument, a constant or a result of an earlier "
                           "instruction)");
  };
  for (size_t i = 0; i < f.arguments.size(); ++i)
    if (Error e = define(f.arguments[i], element(field(path, "arguments"), i)))
      return e;
  for (size_t i = 0; i < f.body.size(); ++i) {
    const Instruction &inst = f.body[i];
    std::string instPath = element(field(path, "body"), i);
    for (size_t j = 0; j < inst.operands.size(); ++j)
      if (Error e =
              use(inst.operands[j], element(field(instPath, "operands"), j)))
        return e;
    for (size_t j = 0; j < inst.results.size(); ++j)
      if (Error e =
              define(inst.results[j], element(field(instPath, "results"), j)))
        return e;
  }
  for (size_t i = 0; i < f.results.size(); ++i)
    if (Error e = use(f.results[i], element(field(path, "results"), i)))
      return e;
  return Error::success();
}

Error Validator::parseFunctions(const json::Object &root, Program &program) {
  Expected<const json::Value *> v = require(root, "", "functions");
  if (!v)
    return v.takeError();
  Expected<const json::Array *> a = getArray(**v, "functions");
  if (!a)
    return a.takeError();
  llvm::StringSet<> names;
  for (size_t i = 0; i < (*a)->size(); ++i) {
    std::string path = element("functions", i);
    Expected<const json::Object *> o = getObject((**a)[i], path);
    if (!o)
      return o.takeError();
    if (Error e =
            checkKeys(**o, path, {"name", "arguments", "results", "body"}))
      return e;
    Function f;
    Expected<std::string> s =
        getUniqueName(**o, path, names, "function", "defined");
    if (!s)
      return s.takeError();
    f.name = *s;
    for (StringRef key : {"arguments", "results", "body"})
      if (!(*o)->get(key))
        return fail(path, "missing key '" + key + "'");
    Expected<std::vector<int64_t>> args =
        getBufferIds(*(*o)->get("arguments"), field(path, "arguments"));
    if (!args)
      return args.takeError();
    f.arguments = std::move(*args);
    Expected<std::vector<int64_t>> results =
        getBufferIds(*(*o)->get("results"), field(path, "results"));
    if (!results)
      return results.takeError();
    f.results = std::move(*results);
    std::string bodyPath = field(path, "body");
    Expected<const json::Array *> body = getArray(*(*o)->get("body"), bodyPath);
    if (!body)
      return body.takeError();
    for (size_t j = 0; j < (*body)->size(); ++j) {
      Expected<Instruction> inst =
          parseInstruction((**body)[j], element(bodyPath, j));
      if (!inst)
        return inst.takeError();
      f.body.push_back(std::move(*inst));
    }
    if (Error e = checkFunction(f, path))
      return e;
    program.functions.push_back(std::move(f));
  }
  return Error::success();
}

Error Validator::parseMetadata(const json::Object &root, Program &program) {
  const json::Value *v = root.get("metadata");
  if (!v)
    return Error::success();
  Expected<const json::Object *> o = getObject(*v, "metadata");
  if (!o)
    return o.takeError();
  for (const auto &[key, value] : **o) {
    std::string path = field("metadata", key);
    Expected<std::string> s = getString(value, path);
    if (!s)
      return s.takeError();
    program.metadata[key.str()] = *s;
  }
  return Error::success();
}

Expected<Program> Validator::run(const json::Value &rootValue) {
  const json::Object *root = rootValue.getAsObject();
  if (!root)
    return fail("", "not an Octet program: expected a JSON object, got " +
                        kindName(rootValue));
  // Format and version first: a document of another kind or a newer
  // version is best reported as such, not by its first unexpected field.
  const json::Value *format = root->get("format");
  if (!format)
    return fail("", "not an Octet program: missing key 'format' (expected \"" +
                        llvm::Twine(kProgramFormat) + "\")");
  std::optional<StringRef> formatName = format->getAsString();
  if (!formatName || *formatName != kProgramFormat) {
    std::string got;
    llvm::raw_string_ostream os(got);
    os << *format;
    return fail("format", "not an Octet program: expected \"" +
                              llvm::Twine(kProgramFormat) + "\", got " + got);
  }
  Expected<const json::Value *> versionValue = require(*root, "", "version");
  if (!versionValue)
    return versionValue.takeError();
  Expected<int64_t> version = getInteger(**versionValue, "version");
  if (!version)
    return version.takeError();
  if (*version > kProgramVersion)
    return fail("version", "program format version " + llvm::Twine(*version) +
                               " is newer than this build reads (version " +
                               llvm::Twine(kProgramVersion) +
                               "); use the runtime of the octetc that "
                               "produced it");
  if (*version != kProgramVersion)
    return fail("version", "unsupported program format version " +
                               llvm::Twine(*version) +
                               " (this build reads version " +
                               llvm::Twine(kProgramVersion) + ")");
  if (Error e = checkKeys(*root, "",
                          {"format", "version", "metadata", "buffers",
                           "parameters", "constants", "functions"}))
    return std::move(e);

  Program program;
  if (Error e = parseMetadata(*root, program))
    return std::move(e);
  if (Error e = parseBuffers(*root, program))
    return std::move(e);
  if (Error e = parseParameters(*root, program))
    return std::move(e);
  if (Error e = parseConstants(*root, program))
    return std::move(e);
  if (Error e = parseFunctions(*root, program))
    return std::move(e);
  return program;
}

Expected<Program> octet::runtime::parseProgram(StringRef text,
                                               StringRef source) {
  Expected<json::Value> value = json::parse(text);
  if (!value) {
    // llvm::json says "[line:col, byte=N]: message"; turn it into the
    // `source:line:col: message` form every other diagnostic uses.
    std::string message = llvm::toString(value.takeError());
    llvm::SmallVector<StringRef, 4> m;
    llvm::Regex located("^\\[([0-9]+):([0-9]+), byte=[0-9]+\\]: (.*)$");
    if (located.match(message, &m))
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          (source + ":" + m[1] + ":" + m[2] + ": invalid JSON: " + m[3]).str());
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        (source + ": invalid JSON: " + message).str());
  }
  return Validator(source).run(*value);
}

Expected<Program> octet::runtime::readProgramFile(StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read '%s': %s",
                                   path.str().c_str(),
                                   buffer.getError().message().c_str());
  StringRef text = (*buffer)->getBuffer();
  if (text.trim().empty())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "%s: the file is empty (expected an Octet program, a JSON document)",
        path.str().c_str());
  return parseProgram(text, path);
}
