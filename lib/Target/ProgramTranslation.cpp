//===- ProgramTranslation.cpp - Training IR to a runtime program ----------===//

#include "octet/Target/ProgramTranslation.h"
#include "octet/Dialect/Octet/Octet.h"
#include "octet/Dialect/OctetPipe/OctetPipe.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace octet;
namespace rt = octet::runtime;

namespace {

std::optional<rt::BufferType> dtypeOf(Type t) {
  if (t.isF32())
    return rt::BufferType::F32;
  if (t.isBF16())
    return rt::BufferType::BF16;
  if (t.isInteger(32))
    return rt::BufferType::I32;
  if (t.isInteger(64))
    return rt::BufferType::I64;
  return std::nullopt;
}

/// MLIR attribute -> JSON, as docs/program-format.md describes.
std::optional<llvm::json::Value> toJSON(Attribute attr) {
  if (isa<UnitAttr>(attr))
    return llvm::json::Value(true);

  if (auto b = dyn_cast<BoolAttr>(attr))
    return llvm::json::Value(b.getValue());
  if (auto i = dyn_cast<IntegerAttr>(attr))
    return llvm::json::Value(i.getInt());
  if (auto f = dyn_cast<FloatAttr>(attr))
    return llvm::json::Value(f.getValueAsDouble());
  if (auto s = dyn_cast<StringAttr>(attr))
    return llvm::json::Value(s.getValue().str());
  if (auto a = dyn_cast<DenseI64ArrayAttr>(attr))
    return llvm::json::Value(llvm::json::Array(a.asArrayRef()));
  if (auto a = dyn_cast<DenseI32ArrayAttr>(attr))
    return llvm::json::Value(llvm::json::Array(a.asArrayRef()));
  if (auto a = dyn_cast<ArrayAttr>(attr)) {
    llvm::json::Array out;
    for (Attribute e : a) {
      std::optional<llvm::json::Value> v = toJSON(e);
      if (!v)
        return std::nullopt;
      out.push_back(std::move(*v));
    }
    return llvm::json::Value(std::move(out));
  }
  if (auto p = dyn_cast<PrecisionAttr>(attr)) {
    std::string out;
    llvm::raw_string_ostream os(out);
    os << p.getOutputType();
    return llvm::json::Value(llvm::json::Object{
        {"format", stringifyComputeFormat(p.getFormat()).str()},
        {"lhs", stringifyScalingGranularity(p.getLhsScaling()).str()},
        {"rhs", stringifyScalingGranularity(p.getRhsScaling()).str()},
        {"scale", stringifyScaleRounding(p.getScaleRounding()).str()},
        {"promotion", p.getPromotionInterval()},
        {"out", out}});
  }
  if (auto t = dyn_cast<TypeAttr>(attr)) {
    auto tensor = dyn_cast<RankedTensorType>(t.getValue());
    std::optional<rt::BufferType> d =
        tensor ? dtypeOf(tensor.getElementType()) : std::nullopt;
    if (!d)
      return std::nullopt;
    return llvm::json::Value(
        llvm::json::Object{{"dtype", rt::toString(*d).str()},
                           {"shape", llvm::json::Array(tensor.getShape())}});
  }
  // Anything else (arith's fastmath flags, ...) travels as its text: the
  // runtime reads only the attributes it knows.
  std::string text;
  llvm::raw_string_ostream os(text);
  attr.print(os);
  return llvm::json::Value(text);
}

/// An enum attribute -> its keyword. Enum attributes are integers
/// underneath, which toJSON cannot tell apart from other integers (nor from
/// each other's), so they go by the op and name that hold them.
std::optional<llvm::json::Value> enumToJSON(Operation *op, StringRef name,
                                            Attribute attr) {
  if (name == "scoring" && isa<MoEGateOp, MoEGateGradOp>(op))
    return llvm::json::Value(
        stringifyMoEScoring(cast<MoEScoringAttr>(attr).getValue()).str());
  if (name == "wire" && isa<pipe::ExpertDispatchOp, pipe::ExpertCombineOp>(op))
    return llvm::json::Value(
        pipe::stringifyWireFormat(cast<pipe::WireFormatAttr>(attr).getValue())
            .str());
  return std::nullopt;
}

class Translator {
public:
  Translator(const ProgramTranslationOptions &options) : options(options) {}

  FailureOr<rt::Program> run(ModuleOp module) {
    collectParameters(module);
    for (auto func : module.getOps<func::FuncOp>())
      if (failed(translate(func)))
        return failure();
    return std::move(program);
  }

private:
  /// Parameters by name, with an initialisation chosen from their use:
  /// norm scales start at one, other vectors (biases) at zero, matrices
  /// normally distributed.
  void collectParameters(ModuleOp module) {
    llvm::StringSet<> seen;
    module.walk([&](ParamOp p) {
      if (!seen.insert(p.getName()).second)
        return;
      rt::Parameter param;
      param.name = p.getName().str();
      param.shape.assign(p.getType().getShape().begin(),
                         p.getType().getShape().end());
      param.frozen = p.getFrozen();
      bool isNormScale = llvm::any_of(p->getUses(), [](OpOperand &use) {
        auto norm = dyn_cast<RMSNormOp>(use.getOwner());
        return norm && use.getOperandNumber() == 1;
      });
      if (isNormScale)
        param.init.kind = rt::ParameterInit::Ones;
      else if (p.getType().getRank() < 2)
        param.init.kind = rt::ParameterInit::Zeros;
      else
        param.init = {rt::ParameterInit::Normal, options.initStd};
      program.parameters.push_back(std::move(param));
    });
  }

  FailureOr<int64_t> bufferFor(Value v, Operation *where) {
    auto it = buffers.find(v);
    if (it != buffers.end())
      return it->second;
    rt::Buffer buffer;
    Type type = v.getType();
    Type element = type;
    if (auto tensor = dyn_cast<RankedTensorType>(type)) {
      if (!tensor.hasStaticShape()) {
        where->emitError() << "the runtime needs static shapes, got " << type;
        return failure();
      }
      buffer.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
      element = tensor.getElementType();
    }
    std::optional<rt::BufferType> d = dtypeOf(element);
    if (!d) {
      where->emitError() << "the runtime cannot hold values of type " << type;
      return failure();
    }
    buffer.dtype = *d;
    std::string name;
    llvm::raw_string_ostream os(name);
    v.printAsOperand(os, OpPrintingFlags());
    buffer.name = name;
    int64_t id = program.buffers.size();
    program.buffers.push_back(std::move(buffer));
    buffers[v] = id;
    return id;
  }

  LogicalResult translate(func::FuncOp func) {
    if (!func.getBody().hasOneBlock())
      return func.emitError() << "the runtime runs single-block functions";
    rt::Function out;
    out.name = func.getSymName().str();
    for (BlockArgument arg : func.getArguments()) {
      FailureOr<int64_t> id = bufferFor(arg, func);
      if (failed(id))
        return failure();
      out.arguments.push_back(*id);
    }
    for (Operation &op : func.getBody().front()) {
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        for (Value v : ret.getOperands()) {
          FailureOr<int64_t> id = bufferFor(v, &op);
          if (failed(id))
            return failure();
          out.results.push_back(*id);
        }
        continue;
      }
      if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
        if (failed(translateConstant(cst)))
          return failure();
        continue;
      }
      rt::Instruction inst;
      inst.op = op.getName().getStringRef().str();
      for (Value v : op.getOperands()) {
        FailureOr<int64_t> id = bufferFor(v, &op);
        if (failed(id))
          return failure();
        inst.operands.push_back(*id);
      }
      for (Value v : op.getResults()) {
        FailureOr<int64_t> id = bufferFor(v, &op);
        if (failed(id))
          return failure();
        inst.results.push_back(*id);
      }
      auto addAttr = [&](StringRef name, Attribute value) -> LogicalResult {
        std::optional<llvm::json::Value> v = enumToJSON(&op, name, value);
        if (!v)
          v = toJSON(value);
        if (!v)
          return op.emitError() << "cannot express attribute '" << name
                                << "' for the runtime: " << value;
        inst.attrs[name.str()] = std::move(*v);
        return success();
      };
      // Inherent attributes by name (the typed attribute, not the raw
      // property storage), then the discardable ones.
      for (StringAttr name : op.getName().getAttributeNames())
        if (std::optional<Attribute> value = op.getInherentAttr(name))
          if (*value && failed(addAttr(name, *value)))
            return failure();
      for (NamedAttribute named : op.getDiscardableAttrs())
        if (failed(addAttr(named.getName(), named.getValue())))
          return failure();
      out.body.push_back(std::move(inst));
    }
    program.functions.push_back(std::move(out));
    return success();
  }

  LogicalResult translateConstant(arith::ConstantOp cst) {
    auto dense = dyn_cast<DenseElementsAttr>(cst.getValue());
    if (!dense)
      return cst.emitError() << "the runtime takes tensor constants only";
    FailureOr<int64_t> id = bufferFor(cst.getResult(), cst);
    if (failed(id))
      return failure();
    rt::Constant c;
    c.buffer = *id;
    auto value = [&](Attribute a) -> double {
      if (auto f = dyn_cast<FloatAttr>(a))
        return f.getValueAsDouble();
      return double(cast<IntegerAttr>(a).getInt());
    };
    if (dense.isSplat()) {
      c.isSplat = true;
      c.splat = value(dense.getSplatValue<Attribute>());
    } else {
      c.isSplat = false;
      for (Attribute a : dense.getValues<Attribute>())
        c.values.push_back(value(a));
    }
    program.constants.push_back(std::move(c));
    return success();
  }

  const ProgramTranslationOptions &options;
  rt::Program program;
  llvm::DenseMap<Value, int64_t> buffers;
};

} // namespace

FailureOr<rt::Program>
octet::translateToProgram(ModuleOp module,
                          const ProgramTranslationOptions &options) {
  return Translator(options).run(module);
}
