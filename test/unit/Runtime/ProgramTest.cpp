//===- ProgramTest.cpp - Program documents: round trip and validation -----===//
//
// A valid document round-trips through toJSON and parseProgram unchanged;
// each way a document can be wrong is rejected with a message that names
// the source, the JSON path of the offending value and what was expected.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/Program.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

using namespace octet::runtime;
namespace json = llvm::json;

namespace {

/// A small valid program: a linear layer and its loss, a forward_backward
/// with a constant, and an optimizer step.
const char *kValid = R"json({
  "format": "octet-program",
  "version": 1,
  "metadata": {"model": "toy", "recipe": "f32"},
  "buffers": [
    {"name": "%arg0", "dtype": "f32", "shape": [4, 8]},
    {"name": "%arg1", "dtype": "i32", "shape": [4]},
    {"name": "%0", "dtype": "f32", "shape": [16, 8]},
    {"name": "%1", "dtype": "f32", "shape": [4, 16]},
    {"name": "%2", "dtype": "f32", "shape": []},
    {"name": "%cst", "dtype": "f32", "shape": []},
    {"name": "%3", "dtype": "f32", "shape": [4, 16]},
    {"name": "%lr", "dtype": "f32", "shape": []},
    {"name": "%step", "dtype": "i64", "shape": []}
  ],
  "parameters": [
    {"name": "w", "shape": [16, 8], "frozen": false,
     "init": {"kind": "normal", "std": 0.5}}
  ],
  "constants": [{"buffer": 5, "splat": 1.0}],
  "functions": [
    {"name": "forward", "arguments": [0, 1], "results": [4], "body": [
      {"op": "octet.param", "operands": [], "results": [2],
       "attrs": {"name": "w"}},
      {"op": "octet.linear", "operands": [0, 2], "results": [3], "attrs": {}},
      {"op": "octet.cross_entropy", "operands": [3, 1], "results": [4]}
    ]},
    {"name": "forward_backward", "arguments": [0, 1], "results": [4], "body": [
      {"op": "octet.param", "results": [2], "attrs": {"name": "w"}},
      {"op": "octet.linear", "operands": [0, 2], "results": [3]},
      {"op": "octet.cross_entropy", "operands": [3, 1], "results": [4]},
      {"op": "octet.cross_entropy_grad", "operands": [3, 1, 5],
       "results": [6]}
    ]},
    {"name": "optimizer_step", "arguments": [7, 8], "results": [], "body": [
      {"op": "octet.adamw_step", "operands": [7, 8],
       "attrs": {"param": "w", "beta1": 0.9, "beta2": 0.95, "eps": 1e-8,
                 "weight_decay": 0.1}}
    ]}
  ]
})json";

json::Value parseJSON(llvm::StringRef text) {
  llvm::Expected<json::Value> v = json::parse(text);
  EXPECT_TRUE(bool(v)) << llvm::toString(v.takeError());
  return v ? std::move(*v) : json::Value(nullptr);
}

std::string print(const json::Value &v) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::formatv("{0:2}", v);
  return s;
}

/// The error parsing the valid document edited by `edit` gives.
std::string errorAfter(const std::function<void(json::Object &)> &edit) {
  json::Value doc = parseJSON(kValid);
  edit(*doc.getAsObject());
  llvm::Expected<Program> p = parseProgram(print(doc), "toy.json");
  if (p)
    return "(parsed without error)";
  return llvm::toString(p.takeError());
}

json::Object &fn(json::Object &doc, size_t i) {
  return *(*doc.getArray("functions"))[i].getAsObject();
}
json::Object &inst(json::Object &doc, size_t f, size_t i) {
  return *(*fn(doc, f).getArray("body"))[i].getAsObject();
}
json::Object &buffer(json::Object &doc, size_t i) {
  return *(*doc.getArray("buffers"))[i].getAsObject();
}

TEST(ProgramTest, TheValidDocumentParses) {
  llvm::Expected<Program> p = parseProgram(kValid, "toy.json");
  ASSERT_TRUE(bool(p)) << llvm::toString(p.takeError());
  ASSERT_EQ(p->buffers.size(), 9u);
  EXPECT_EQ(p->buffers[1].dtype, BufferType::I32);
  EXPECT_EQ(p->buffers[2].shape, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(p->buffers[2].numElements(), 128);
  EXPECT_EQ(p->buffers[4].numElements(), 1);
  ASSERT_EQ(p->parameters.size(), 1u);
  EXPECT_EQ(p->parameters[0].init.kind, ParameterInit::Normal);
  EXPECT_EQ(p->parameters[0].init.std, 0.5);
  ASSERT_NE(p->lookupFunction("forward_backward"), nullptr);
  EXPECT_EQ(p->lookupFunction("forward_backward")->body.size(), 4u);
  EXPECT_EQ(p->lookupFunction("nope"), nullptr);
  ASSERT_NE(p->lookupParameter("w"), nullptr);
  EXPECT_EQ(p->metadata.at("model"), "toy");
  const Instruction &adam = p->lookupFunction("optimizer_step")->body[0];
  EXPECT_EQ(adam.attrs.getNumber("beta2"), 0.95);
  EXPECT_EQ(adam.attrs.getString("param"), "w");
}

TEST(ProgramTest, RoundTripsThroughJSON) {
  Program p;
  p.metadata = {{"model", "tiny"}, {"recipe", "deepseek-v3"}};
  p.buffers = {
      {"%a", BufferType::F32, {2, 3}}, {"%b", BufferType::BF16, {3}},
      {"%c", BufferType::I32, {2}},    {"%d", BufferType::I64, {}},
      {"", BufferType::F32, {0, 4}},   {"%mask", BufferType::F32, {2, 2}},
      {"%e", BufferType::F32, {2, 3}}};
  p.parameters = {{"norm.weight", {3}, false, {ParameterInit::Ones, 0.02}},
                  {"bias", {3}, true, {ParameterInit::Zeros, 0.02}},
                  {"w", {2, 3}, false, {ParameterInit::Normal, 0.125}}};
  Constant splat;
  splat.buffer = 3;
  splat.splat = 7;
  Constant values;
  values.buffer = 5;
  values.isSplat = false;
  // Non-finite values have no JSON number: they travel as strings.
  values.values = {0.0, -INFINITY, 0.1, INFINITY};
  p.constants = {splat, values};
  Function f;
  f.name = "forward";
  f.arguments = {0, 2};
  Instruction i;
  i.op = "octet.linear";
  i.operands = {0, 0};
  i.results = {6};
  i.attrs["precision"] = json::Object{
      {"format", "e4m3"}, {"lhs", "tile_1x128"}, {"promotion", 128}};
  i.attrs["static_sizes"] = json::Array{1, 2, 3};
  i.attrs["transpose_rhs"] = true;
  f.body.push_back(i);
  f.results = {6, 3};
  p.functions.push_back(f);

  std::string text = print(toJSON(p));
  llvm::Expected<Program> q = parseProgram(text, "round-trip");
  ASSERT_TRUE(bool(q)) << llvm::toString(q.takeError()) << "\n" << text;
  EXPECT_EQ(print(toJSON(*q)), text);
  ASSERT_EQ(q->buffers.size(), p.buffers.size());
  for (size_t b = 0; b < p.buffers.size(); ++b) {
    EXPECT_EQ(q->buffers[b].name, p.buffers[b].name);
    EXPECT_EQ(q->buffers[b].dtype, p.buffers[b].dtype);
    EXPECT_EQ(q->buffers[b].shape, p.buffers[b].shape);
  }
  ASSERT_EQ(q->parameters.size(), 3u);
  EXPECT_EQ(q->parameters[0].init.kind, ParameterInit::Ones);
  EXPECT_TRUE(q->parameters[1].frozen);
  EXPECT_EQ(q->parameters[1].init.kind, ParameterInit::Zeros);
  EXPECT_EQ(q->parameters[2].init.std, 0.125);
  ASSERT_EQ(q->constants.size(), 2u);
  EXPECT_TRUE(q->constants[0].isSplat);
  EXPECT_EQ(q->constants[0].splat, 7.0);
  ASSERT_EQ(q->constants[1].values.size(), 4u);
  EXPECT_EQ(q->constants[1].values[1], -INFINITY);
  EXPECT_EQ(q->constants[1].values[2], 0.1); // 17 digits: exact.
  EXPECT_EQ(q->constants[1].values[3], INFINITY);
  EXPECT_EQ(q->metadata, p.metadata);
  ASSERT_EQ(q->functions.size(), 1u);
  const Instruction &r = q->functions[0].body[0];
  EXPECT_EQ(r.op, "octet.linear");
  EXPECT_EQ(r.operands, i.operands);
  EXPECT_EQ(r.results, i.results);
  EXPECT_EQ(json::Value(json::Object(r.attrs)),
            json::Value(json::Object(i.attrs)));
  EXPECT_EQ(q->functions[0].results, f.results);
}

TEST(ProgramTest, ReadsAFileAndReportsMissingOrEmptyFiles) {
  llvm::SmallString<128> path;
  ASSERT_FALSE(
      llvm::sys::fs::createTemporaryFile("octet-program", "json", path));
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    ASSERT_FALSE(ec);
    os << kValid;
  }
  llvm::Expected<Program> p = readProgramFile(path);
  EXPECT_TRUE(bool(p)) << llvm::toString(p.takeError());

  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec); // Truncates.
    ASSERT_FALSE(ec);
  }
  llvm::Expected<Program> empty = readProgramFile(path);
  ASSERT_FALSE(bool(empty));
  std::string message = llvm::toString(empty.takeError());
  EXPECT_NE(message.find(path.str().str()), std::string::npos) << message;
  EXPECT_NE(message.find("the file is empty"), std::string::npos) << message;
  llvm::sys::fs::remove(path);

  llvm::Expected<Program> missing = readProgramFile(path);
  ASSERT_FALSE(bool(missing));
  message = llvm::toString(missing.takeError());
  EXPECT_NE(message.find("cannot read '" + path.str().str() + "'"),
            std::string::npos)
      << message;
}

TEST(ProgramTest, TruncatedJSONGivesLineAndColumn) {
  std::string text = kValid;
  text.resize(text.find("\"functions\"") + 20);
  llvm::Expected<Program> p = parseProgram(text, "cut.json");
  ASSERT_FALSE(bool(p));
  std::string message = llvm::toString(p.takeError());
  // The parser stops at the end of the text, on its last line.
  std::string line =
      std::to_string(1 + std::count(text.begin(), text.end(), '\n'));
  EXPECT_EQ(message.rfind("cut.json:" + line + ":", 0), 0u) << message;
  EXPECT_NE(message.find("invalid JSON"), std::string::npos) << message;

  p = parseProgram("{\"format\": \"octet-program\",\n  \"version\": 1,,}",
                   "bad.json");
  ASSERT_FALSE(bool(p));
  message = llvm::toString(p.takeError());
  EXPECT_EQ(message.rfind("bad.json:2:16: invalid JSON", 0), 0u) << message;
}

/// Expects the error to start with "toy.json: <path>: " and contain `what`.
void expectError(const std::string &message, const std::string &path,
                 const std::string &what) {
  std::string prefix = "toy.json: " + (path.empty() ? "" : path + ": ");
  EXPECT_EQ(message.rfind(prefix, 0), 0u)
      << "expected prefix '" << prefix << "' in: " << message;
  EXPECT_NE(message.find(what), std::string::npos)
      << "expected '" << what << "' in: " << message;
}

TEST(ProgramTest, RejectsOtherDocumentsAndVersions) {
  llvm::Expected<Program> p = parseProgram("[1, 2]", "toy.json");
  ASSERT_FALSE(bool(p));
  expectError(llvm::toString(p.takeError()), "", "expected a JSON object");

  expectError(errorAfter([](json::Object &d) { d.erase("format"); }), "",
              "missing key 'format'");
  expectError(errorAfter([](json::Object &d) { d["format"] = "safetensors"; }),
              "format", "not an Octet program: expected \"octet-program\"");
  expectError(errorAfter([](json::Object &d) { d["version"] = 2; }), "version",
              "program format version 2 is newer than this build reads "
              "(version 1)");
  expectError(errorAfter([](json::Object &d) { d["version"] = 0; }), "version",
              "unsupported program format version 0 (this build reads "
              "version 1)");
  expectError(errorAfter([](json::Object &d) { d["version"] = "1"; }),
              "version", "expected an integer, got a string");
  expectError(errorAfter([](json::Object &d) { d["version"] = 1.5; }),
              "version", "expected an integer, got 1.5");
  expectError(errorAfter([](json::Object &d) { d.erase("version"); }), "",
              "missing key 'version'");
}

TEST(ProgramTest, RejectsUnknownAndMissingKeys) {
  expectError(errorAfter([](json::Object &d) { d["buffer"] = 1; }), "buffer",
              "unknown key (expected one of: format, version");
  expectError(errorAfter([](json::Object &d) { d.erase("buffers"); }), "",
              "missing key 'buffers'");
  expectError(errorAfter([](json::Object &d) { d.erase("functions"); }), "",
              "missing key 'functions'");
  expectError(errorAfter([](json::Object &d) {
                auto &i = inst(d, 1, 2);
                i["operand"] = i["operands"];
                i.erase("operands");
              }),
              "functions[1].body[2].operand",
              "unknown key (expected one of: op, operands, results, attrs)");
  expectError(errorAfter([](json::Object &d) { inst(d, 0, 1).erase("op"); }),
              "functions[0].body[1]", "missing key 'op'");
  expectError(errorAfter([](json::Object &d) { fn(d, 2).erase("body"); }),
              "functions[2]", "missing key 'body'");
  expectError(errorAfter([](json::Object &d) { buffer(d, 3).erase("shape"); }),
              "buffers[3]", "missing key 'shape'");
}

TEST(ProgramTest, RejectsBadBuffers) {
  expectError(
      errorAfter([](json::Object &d) { buffer(d, 1)["dtype"] = "f16"; }),
      "buffers[1].dtype",
      "unknown dtype 'f16' (expected f32, bf16, i32 or i64)");
  expectError(errorAfter([](json::Object &d) {
                buffer(d, 0)["shape"] = json::Array{4, -8};
              }),
              "buffers[0].shape[1]", "expected a non-negative size, got -8");
  expectError(errorAfter([](json::Object &d) {
                buffer(d, 0)["shape"] = json::Array{4, 2.5};
              }),
              "buffers[0].shape[1]", "expected an integer, got 2.5");
  expectError(
      errorAfter([](json::Object &d) {
        buffer(d, 0)["shape"] = json::Array{int64_t(1) << 40, int64_t(1) << 40};
      }),
      "buffers[0].shape", "more elements than fit in 64 bits");
  expectError(
      errorAfter([](json::Object &d) { d["buffers"] = json::Object{}; }),
      "buffers", "expected an array, got an object");
}

TEST(ProgramTest, RejectsBufferIdsOutOfRange) {
  expectError(errorAfter([](json::Object &d) {
                (*inst(d, 1, 2).getArray("operands"))[1] = 9;
              }),
              "functions[1].body[2].operands[1]",
              "buffer 9 is out of range (the program has 9 buffers)");
  expectError(errorAfter([](json::Object &d) {
                (*inst(d, 0, 1).getArray("results"))[0] = -1;
              }),
              "functions[0].body[1].results[0]", "buffer -1 is out of range");
  expectError(errorAfter([](json::Object &d) {
                (*fn(d, 2).getArray("arguments"))[1] = 42;
              }),
              "functions[2].arguments[1]", "buffer 42 is out of range");
  expectError(errorAfter([](json::Object &d) {
                (*fn(d, 0).getArray("results"))[0] = "4";
              }),
              "functions[0].results[0]", "expected an integer, got a string");
  expectError(errorAfter([](json::Object &d) {
                (*(*d.getArray("constants"))[0].getAsObject())["buffer"] = 100;
              }),
              "constants[0].buffer", "buffer 100 is out of range");
}

TEST(ProgramTest, RejectsUseBeforeDefinitionAndRedefinition) {
  // Swap param and linear: the linear reads %0 before the param defines it.
  expectError(errorAfter([](json::Object &d) {
                auto &body = *fn(d, 1).getArray("body");
                std::swap(body[0], body[1]);
              }),
              "functions[1].body[0].operands[1]",
              "buffer 2 is read before it is defined (expected an argument, "
              "a constant or a result of an earlier instruction)");
  // Buffers are per function: forward cannot read what forward_backward
  // defines.
  expectError(errorAfter([](json::Object &d) {
                (*fn(d, 0).getArray("results"))[0] = 6;
              }),
              "functions[0].results[0]",
              "buffer 6 is read before it is "
              "defined");
  expectError(errorAfter([](json::Object &d) {
                (*inst(d, 0, 1).getArray("results"))[0] = 2;
              }),
              "functions[0].body[1].results[0]",
              "buffer 2 is already defined in this function (at "
              "functions[0].body[0].results[0])");
  expectError(errorAfter([](json::Object &d) {
                (*inst(d, 0, 0).getArray("results"))[0] = 0;
              }),
              "functions[0].body[0].results[0]",
              "buffer 0 is already defined in this function (at "
              "functions[0].arguments[0])");
  expectError(errorAfter([](json::Object &d) {
                (*fn(d, 0).getArray("arguments"))[1] = 0;
              }),
              "functions[0].arguments[1]", "already defined");
  expectError(errorAfter([](json::Object &d) {
                (*inst(d, 0, 2).getArray("results"))[0] = 5;
              }),
              "functions[0].body[2].results[0]",
              "buffer 5 holds a constant and cannot be redefined");
}

TEST(ProgramTest, RejectsBadInstructionsAndFunctions) {
  expectError(errorAfter([](json::Object &d) { inst(d, 0, 1)["attrs"] = 3; }),
              "functions[0].body[1].attrs", "expected an object, got a number");
  expectError(errorAfter([](json::Object &d) { inst(d, 0, 1)["op"] = ""; }),
              "functions[0].body[1].op", "expected a non-empty op name");
  expectError(errorAfter([](json::Object &d) { fn(d, 1)["name"] = "forward"; }),
              "functions[1].name", "function 'forward' is defined twice");
  expectError(errorAfter([](json::Object &d) { fn(d, 1)["body"] = "x"; }),
              "functions[1].body", "expected an array, got a string");
}

TEST(ProgramTest, RejectsBadParametersConstantsAndMetadata) {
  auto param = [](json::Object &d) -> json::Object & {
    return *(*d.getArray("parameters"))[0].getAsObject();
  };
  auto constant = [](json::Object &d) -> json::Object & {
    return *(*d.getArray("constants"))[0].getAsObject();
  };
  expectError(errorAfter([&](json::Object &d) {
                d.getArray("parameters")->push_back(json::Object(param(d)));
              }),
              "parameters[1].name", "parameter 'w' is declared twice");
  expectError(errorAfter([&](json::Object &d) {
                param(d)["init"] = json::Object{{"kind", "uniform"}};
              }),
              "parameters[0].init.kind",
              "unknown initialisation 'uniform' (expected normal, zeros or "
              "ones)");
  expectError(
      errorAfter([&](json::Object &d) {
        param(d)["init"] = json::Object{{"kind", "normal"}, {"std", -1}};
      }),
      "parameters[0].init.std", "expected a finite non-negative std");
  expectError(errorAfter([&](json::Object &d) { param(d)["frozen"] = 1; }),
              "parameters[0].frozen", "expected a boolean, got a number");
  expectError(errorAfter([&](json::Object &d) {
                constant(d).erase("splat");
                constant(d)["values"] = json::Array{1.0, 2.0};
              }),
              "constants[0].values",
              "expected 1 values (the elements of buffer 5), got 2");
  expectError(errorAfter([&](json::Object &d) {
                constant(d)["values"] = json::Array{1.0};
              }),
              "constants[0]", "expected exactly one of 'splat' and 'values'");
  expectError(errorAfter([&](json::Object &d) {
                constant(d)["buffer"] = 8; // The i64 %step.
                constant(d)["splat"] = 0.5;
              }),
              "constants[0].splat",
              "expected an i64 value for buffer 8, got "
              "0.5");
  expectError(errorAfter([&](json::Object &d) {
                constant(d)["buffer"] = 1; // The i32 labels.
                constant(d)["splat"] = 2147483648.0;
              }),
              "constants[0].splat",
              "expected an i32 value for buffer 1, got 2147483648");
  expectError(errorAfter([&](json::Object &d) {
                d.getArray("constants")->push_back(json::Object(constant(d)));
              }),
              "constants[1].buffer", "buffer 5 already holds a constant");
  expectError(errorAfter([&](json::Object &d) { constant(d)["splat"] = "1"; }),
              "constants[0].splat",
              "expected a number (or \"nan\", \"inf\", \"-inf\"), got a "
              "string");
  expectError(errorAfter([](json::Object &d) {
                (*d.getObject("metadata"))["steps"] = 3;
              }),
              "metadata.steps", "expected a string, got a number");
}

} // namespace
