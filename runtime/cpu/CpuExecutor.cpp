//===- CpuExecutor.cpp - Runs a program with the CPU kernels --------------===//
//
// Creation compiles each instruction into a closure: the op is looked up,
// its operands, results and attributes are checked and decoded once, and
// the closure captures the storage it reads and writes (allocated up front
// and never resized, so the pointers stay valid). Running is then a loop
// over closures; what only the data can tell (ids in range, group sizes
// that add up, the AdamW step) is checked there.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CpuExecutor.h"
#include "octet/Numerics/BFloat16.h"
#include "octet/Runtime/CPUKernels.h"
#include "octet/Runtime/DenseGemmEngine.h"
#include "octet/Runtime/FP8Linear.h"
#include "octet/Runtime/MemoryPlan.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <type_traits>

using namespace octet;
using namespace octet::runtime;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

bool isIntType(BufferType t) {
  return t == BufferType::I32 || t == BufferType::I64;
}

int64_t product(llvm::ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string describe(const Buffer &b) {
  std::string s;
  if (!b.name.empty())
    s += b.name + " ";
  return s + toString(b.dtype).str() + " " + shapeString(b.shape);
}

std::vector<int64_t> concatShape(llvm::ArrayRef<int64_t> a,
                                 llvm::ArrayRef<int64_t> b) {
  std::vector<int64_t> out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

/// Rounds n values to BF16, kept in T. Double rounds through float: BF16 is
/// FP32 with a shorter mantissa.
template <typename T> void roundToBF16(T *v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    v[i] = T(numerics::roundToBF16(float(v[i])));
}

template <typename T> std::vector<T> roundedCopy(const T *v, int64_t n) {
  std::vector<T> out(v, v + n);
  roundToBF16(out.data(), n);
  return out;
}

/// A GEMM operand: `v` itself, or with `bf16` its copy rounded to BF16 in
/// `storage`.
template <typename T>
const T *gemmOperand(const T *v, int64_t n, bool bf16,
                     std::vector<T> &storage) {
  if (!bf16)
    return v;
  storage = roundedCopy(v, n);
  return storage.data();
}

/// Every value in [lo, hi), or an error naming the first that is not.
Error checkRange(const int64_t *v, int64_t n, int64_t lo, int64_t hi,
                 StringRef what) {
  for (int64_t i = 0; i < n; ++i)
    if (v[i] < lo || v[i] >= hi)
      return makeError(what + " " + Twine(v[i]) + " at element " + Twine(i) +
                       " is out of range [" + Twine(lo) + ", " + Twine(hi) +
                       ")");
  return Error::success();
}

/// Group sizes of a grouped linear: non-negative and summing to the rows.
/// Checks a grouped op's sizes against its `rows` and returns their total:
/// rows past it are padding (an owner's rows under expert parallelism
/// leave room for the worst case).
Expected<int64_t> checkGroupSizes(const int64_t *sizes, int64_t experts,
                                  int64_t rows) {
  int64_t total = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (sizes[e] < 0 || sizes[e] > rows)
      return makeError("group size " + Twine(sizes[e]) + " of expert " +
                       Twine(e) + " is out of range [0, " + Twine(rows) + "]");
    total += sizes[e];
  }
  if (total > rows)
    return makeError("group sizes sum to " + Twine(total) + ", more than the " +
                     Twine(rows) + " rows");
  return total;
}

/// Expert indices of moe_combine, which does not know the expert count: the
/// kernel sizes a table by the largest index, so absurd ones are refused.
constexpr int64_t kMaxExperts = int64_t(1) << 24;

/// How a GEMM op computes, from its "precision" attribute.
struct Precision {
  enum Format { F32, BF16, E4M3, E5M2 } format = F32;
  std::string lhs = "none", rhs = "none";
  bool pow2 = false;
  int64_t promotion = 0;
  bool bf16Out = false;

  bool isFP8() const { return format == E4M3 || format == E5M2; }

  cpu::FP8LinearConfig fp8Config(cpu::ScaledGemmEngine *engine) const {
    cpu::FP8LinearConfig c;
    c.engine = engine;
    c.format =
        format == E5M2 ? numerics::FP8Format::E5M2 : numerics::FP8Format::E4M3;
    c.inputRounding =
        pow2 ? numerics::ScaleRounding::Pow2 : numerics::ScaleRounding::FP32;
    c.promotionInterval = promotion;
    c.bf16Output = bf16Out;
    return c;
  }
};

/// The parameter state the executor owns.
template <typename T> struct ParamState {
  const Parameter *param = nullptr;
  std::vector<T> master, grad;
  std::vector<uint16_t> m, v;
  /// Whether this executor's optimizer step updates it (ZeRO-1 shards),
  /// and which elements [updateBegin, updateEnd) (-1: to the end).
  bool updatedHere = true;
  int64_t updateBegin = 0, updateEnd = -1;
  /// The element m[0] and v[0] are of: 0, or after releaseUnownedMoments
  /// the first one this executor updates.
  int64_t momentsBegin = 0;
  /// False once releaseUnownedMoments() freed m and v (ZeRO-1).
  bool momentsHeld = true;
  /// False once releaseParameters() freed the weights, gradient and
  /// moments (another pipeline rank's parameter).
  bool held = true;
  /// The element master[0] and grad[0] are of: 0, or of a parameter held
  /// in part (Holding::part) the first it holds.
  int64_t heldBegin = 0;
  bool heldInPart() const {
    return held && int64_t(master.size()) != param->numElements();
  }
  bool trainable() const { return !param->frozen; }
};

/// One compiled instruction.
struct Step {
  size_t index = 0;
  std::string op;
  std::function<Error()> body;
  /// Result buffers of dtype bf16, rounded after the body runs.
  std::vector<int64_t> bf16Results;
};

struct CompiledFunction {
  const Function *function = nullptr;
  std::vector<Step> steps;
  /// False for a function the executor does not run (Holding::runs): it
  /// has no steps, and its buffers no storage.
  bool compiled = true;
};

/// One (batched) GEMM of a body, described for a DenseGemmEngine: for b <
/// batch, c_b (= or +=) op(a_b) op(b_b) as numerics::gemm computes it.
Error denseGemm(cpu::DenseGemmEngine &engine, numerics::Trans ta,
                numerics::Trans tb, int64_t m, int64_t n, int64_t k,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float *c, int64_t ldc, bool accumulate, bool bf16,
                int64_t batch = 1, int64_t strideA = 0, int64_t strideB = 0,
                int64_t strideC = 0) {
  cpu::DenseGemm g;
  g.transA = ta;
  g.transB = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = lda;
  g.strideA = strideA;
  g.b = b;
  g.ldb = ldb;
  g.strideB = strideB;
  g.c = c;
  g.ldc = ldc;
  g.strideC = strideC;
  g.batch = batch;
  g.accumulate = accumulate;
  g.bf16Inputs = bf16;
  return engine.gemm(g);
}

std::string instructionContext(const Function &f, size_t index, StringRef op) {
  return "function '" + f.name + "', instruction " + std::to_string(index) +
         " (" + op.str() + "): ";
}

} // namespace

template <typename T> struct CpuExecutor<T>::State {
  Program program;
  /// Where each buffer's values are (null: no function it runs names it):
  /// in a function's arena, or in storage of its own (reals, ints).
  std::vector<T *> realAt;
  std::vector<int64_t *> intAt;
  std::vector<std::vector<T>> reals;
  std::vector<std::vector<int64_t>> ints;
  /// Per function it runs, the arena its own values share by liveness.
  std::vector<std::vector<T>> realArenas;
  std::vector<std::vector<int64_t>> intArenas;
  std::vector<ParamState<T>> params;
  llvm::StringMap<size_t> paramIndex;
  std::vector<CompiledFunction> functions;
  llvm::StringMap<size_t> functionIndex;
  /// Set for expert parallelism: the group the octet_pipe expert ops
  /// exchange through.
  ExpertExchange<T> *experts = nullptr;
  /// Called after each gradient accumulation (setGradientCallback).
  std::function<void(StringRef)> onGradient;
  /// Where the FP8 linears' GEMMs run (setScaledGemmEngine); null: here.
  cpu::ScaledGemmEngine *gemmEngine = nullptr;
  /// Where the BF16 and FP32 GEMMs run (setDenseGemmEngine); null: here.
  cpu::DenseGemmEngine *denseEngine = nullptr;

  T *real(int64_t id) { return realAt[id]; }
  int64_t *integer(int64_t id) { return intAt[id]; }
  int64_t count(int64_t id) const { return program.buffers[id].numElements(); }
  ParamState<T> *lookup(StringRef name) {
    auto it = paramIndex.find(name);
    return it == paramIndex.end() ? nullptr : &params[it->second];
  }
  const ParamState<T> *lookup(StringRef name) const {
    auto it = paramIndex.find(name);
    return it == paramIndex.end() ? nullptr : &params[it->second];
  }
};

//===----------------------------------------------------------------------===//
// Expert parallelism: how rows travel (octet_pipe.expert_dispatch/combine)
//===----------------------------------------------------------------------===//

namespace {

enum class Wire { F32, BF16, E4M3, E5M2 };

std::optional<Wire> parseWire(StringRef s) {
  if (s == "f32")
    return Wire::F32;
  if (s == "bf16")
    return Wire::BF16;
  if (s == "e4m3")
    return Wire::E4M3;
  if (s == "e5m2")
    return Wire::E5M2;
  return std::nullopt;
}

/// Bytes of `rows` rows of `width` values on the wire: f32 carries T as it
/// is, bf16 two bytes a value, FP8 one byte a value and one scale exponent
/// per 1x128 tile.
template <typename T>
int64_t wireBytes(Wire wire, int64_t rows, int64_t width) {
  switch (wire) {
  case Wire::F32:
    return rows * width * int64_t(sizeof(T));
  case Wire::BF16:
    return rows * width * 2;
  case Wire::E4M3:
  case Wire::E5M2:
    return rows * (width + (width + 127) / 128);
  }
  return 0;
}

template <typename T>
void encodeRows(Wire wire, const T *rows, int64_t n, int64_t width,
                std::vector<uint8_t> &out) {
  if (n == 0)
    return;
  size_t at = out.size();
  out.resize(at + wireBytes<T>(wire, n, width));
  uint8_t *dst = out.data() + at;
  if (wire == Wire::F32) {
    std::memcpy(dst, rows, n * width * sizeof(T));
    return;
  }
  if (wire == Wire::BF16) {
    for (int64_t i = 0; i < n * width; ++i) {
      uint16_t b = numerics::floatToBF16(float(rows[i]));
      std::memcpy(dst + 2 * i, &b, 2);
    }
    return;
  }
  // FP8: the numerics library's 1x128 quantization with power-of-two
  // scales, each scale sent as its exponent.
  auto format = wire == Wire::E4M3 ? numerics::FP8Format::E4M3
                                   : numerics::FP8Format::E5M2;
  std::vector<float> x(rows, rows + n * width);
  numerics::QuantizedTensor q = numerics::quantize(
      x.data(), 1, n, width, format, numerics::Granularity::Tile1x128,
      numerics::ScaleRounding::Pow2);
  std::memcpy(dst, q.payload.data(), q.payload.size());
  uint8_t *exps = dst + n * width;
  int64_t tiles = (width + 127) / 128;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t t = 0; t < tiles; ++t)
      exps[r * tiles + t] =
          uint8_t(int8_t(std::ilogb(q.scales[q.scaleIndex(0, r, t * 128)])));
}

template <typename T>
void decodeRows(Wire wire, const uint8_t *src, int64_t n, int64_t width,
                T *rows) {
  if (n == 0)
    return;
  if (wire == Wire::F32) {
    std::memcpy(rows, src, n * width * sizeof(T));
    return;
  }
  if (wire == Wire::BF16) {
    for (int64_t i = 0; i < n * width; ++i) {
      uint16_t b;
      std::memcpy(&b, src + 2 * i, 2);
      rows[i] = T(numerics::bf16ToFloat(b));
    }
    return;
  }
  auto format = wire == Wire::E4M3 ? numerics::FP8Format::E4M3
                                   : numerics::FP8Format::E5M2;
  const uint8_t *exps = src + n * width;
  int64_t tiles = (width + 127) / 128;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < width; ++c) {
      float scale = std::ldexp(1.0f, int8_t(exps[r * tiles + c / 128]));
      rows[r * width + c] =
          T(numerics::fp8ToFloat(src[r * width + c], format) * scale);
    }
}

/// The rows a message carries: the sum of its sizes.
template <typename Message> int64_t rowsOf(const Message &m) {
  return std::accumulate(m.sizes.begin(), m.sizes.end(), int64_t(0));
}

/// Checks the messages of one exchange: one per group rank, each for this
/// instruction, with `sizesEach` sizes and as many bytes as they say.
template <typename T>
Error checkMessages(
    const std::vector<typename ExpertExchange<T>::Message> &msgs,
    int64_t groupSize, const std::string &tag, size_t sizesEach, Wire wire,
    int64_t width) {
  if (int64_t(msgs.size()) != groupSize)
    return makeError("the expert exchange returned " + Twine(msgs.size()) +
                     " messages for " + Twine(groupSize) + " ranks");
  for (int64_t p = 0; p < groupSize; ++p) {
    const auto &m = msgs[p];
    if (m.tag != tag)
      return makeError("expert-parallel rank " + Twine(p) + " is at " + m.tag +
                       " while this rank is at " + tag +
                       ": the ranks of the group run different programs");
    bool valid = m.sizes.size() == sizesEach &&
                 llvm::all_of(m.sizes, [](int64_t v) { return v >= 0; });
    if (!valid ||
        int64_t(m.bytes.size()) != wireBytes<T>(wire, rowsOf(m), width))
      return makeError("expert-parallel rank " + Twine(p) +
                       " sent a malformed message for " + tag);
  }
  return Error::success();
}

} // namespace

//===----------------------------------------------------------------------===//
// The instruction compiler
//===----------------------------------------------------------------------===//

namespace {

template <typename T> class InstructionCompiler {
public:
  using State = typename CpuExecutor<T>::State;
  using Body = std::function<Error()>;

  InstructionCompiler(State &s, const Function &f, size_t index)
      : s(s), f(f), index(index), inst(f.body[index]) {}

  Expected<Body> compile();

private:
  //--- Diagnostics -------------------------------------------------------//

  Error fail(const Twine &message) const {
    return makeError(instructionContext(f, index, inst.op) + message);
  }

  Error arity(size_t minOperands, size_t maxOperands, size_t results) const {
    size_t n = inst.operands.size();
    if (n < minOperands || n > maxOperands) {
      std::string expected =
          minOperands == maxOperands ? std::to_string(minOperands)
          : maxOperands == SIZE_MAX  ? "at least " + std::to_string(minOperands)
                                     : std::to_string(minOperands) + " or " +
                                          std::to_string(maxOperands);
      return fail("expected " + expected + " operands, got " + Twine(n));
    }
    if (inst.results.size() != results)
      return fail("expected " + Twine(results) + " results, got " +
                  Twine(inst.results.size()));
    return Error::success();
  }

  //--- Operands and results ---------------------------------------------//

  const Buffer &in(size_t i) const {
    return s.program.buffers[inst.operands[i]];
  }
  const Buffer &out(size_t i) const {
    return s.program.buffers[inst.results[i]];
  }
  T *inReal(size_t i) const { return s.real(inst.operands[i]); }
  int64_t *inInt(size_t i) const { return s.integer(inst.operands[i]); }
  T *outReal(size_t i) const { return s.real(inst.results[i]); }
  int64_t *outInt(size_t i) const { return s.integer(inst.results[i]); }

  std::string operandName(size_t i) const {
    return "operand " + std::to_string(i) + " (" + describe(in(i)) + ")";
  }
  std::string resultName(size_t i) const {
    return "result " + std::to_string(i) + " (" + describe(out(i)) + ")";
  }

  Error floatOperand(size_t i) const {
    if (isIntType(in(i).dtype))
      return fail(operandName(i) + ": expected f32 or bf16");
    return Error::success();
  }
  Error intOperand(size_t i) const {
    if (!isIntType(in(i).dtype))
      return fail(operandName(i) + ": expected i32 or i64");
    return Error::success();
  }
  Error floatResult(size_t i) const {
    if (isIntType(out(i).dtype))
      return fail(resultName(i) + ": expected f32 or bf16");
    return Error::success();
  }
  Error intResult(size_t i) const {
    if (!isIntType(out(i).dtype))
      return fail(resultName(i) + ": expected i32 or i64");
    return Error::success();
  }
  /// Float operands and results, by index lists.
  Error floats(std::initializer_list<size_t> operands,
               std::initializer_list<size_t> results) const {
    for (size_t i : operands)
      if (Error e = floatOperand(i))
        return e;
    for (size_t i : results)
      if (Error e = floatResult(i))
        return e;
    return Error::success();
  }
  Error rankAtLeast(size_t i, size_t rank) const {
    if (in(i).shape.size() < rank)
      return fail(operandName(i) + ": expected rank " + Twine(rank) +
                  (rank ? " or more" : ""));
    return Error::success();
  }
  Error rankIs(size_t i, size_t rank) const {
    if (in(i).shape.size() != rank)
      return fail(operandName(i) + ": expected rank " + Twine(rank));
    return Error::success();
  }
  Error operandShape(size_t i, llvm::ArrayRef<int64_t> expected) const {
    if (llvm::ArrayRef<int64_t>(in(i).shape) != expected)
      return fail(operandName(i) + ": expected shape " + shapeString(expected));
    return Error::success();
  }
  Error resultShape(size_t i, llvm::ArrayRef<int64_t> expected) const {
    if (llvm::ArrayRef<int64_t>(out(i).shape) != expected)
      return fail(resultName(i) + ": expected shape " + shapeString(expected));
    return Error::success();
  }

  //--- Attributes --------------------------------------------------------//

  const json::Value *attr(StringRef name) const { return inst.attrs.get(name); }

  Expected<double> numberAttr(StringRef name) const {
    const json::Value *v = attr(name);
    if (!v)
      return fail("missing attribute '" + name + "' (a number)");
    if (std::optional<double> d = v->getAsNumber())
      return *d;
    return fail("attribute '" + name + "': expected a number");
  }
  Expected<std::optional<double>> optionalNumberAttr(StringRef name) const {
    if (!attr(name))
      return std::optional<double>();
    Expected<double> d = numberAttr(name);
    if (!d)
      return d.takeError();
    return std::optional<double>(*d);
  }
  Expected<int64_t> integerAttr(StringRef name) const {
    const json::Value *v = attr(name);
    if (!v)
      return fail("missing attribute '" + name + "' (an integer)");
    if (std::optional<int64_t> i = v->getAsInteger())
      return *i;
    return fail("attribute '" + name + "': expected an integer");
  }
  Expected<std::string> stringAttr(StringRef name) const {
    const json::Value *v = attr(name);
    if (!v)
      return fail("missing attribute '" + name + "' (a string)");
    if (std::optional<StringRef> str = v->getAsString())
      return str->str();
    return fail("attribute '" + name + "': expected a string");
  }
  /// A unit attribute: true when present (as true), false when absent.
  Expected<bool> flagAttr(StringRef name) const {
    const json::Value *v = attr(name);
    if (!v)
      return false;
    if (std::optional<bool> b = v->getAsBoolean())
      return *b;
    return fail("attribute '" + name + "': expected true or absent");
  }
  Expected<std::vector<int64_t>> intArrayAttr(StringRef name) const {
    const json::Value *v = attr(name);
    if (!v)
      return fail("missing attribute '" + name + "' (an array of integers)");
    const json::Array *a = v->getAsArray();
    if (!a)
      return fail("attribute '" + name + "': expected an array of integers");
    std::vector<int64_t> out;
    for (const json::Value &e : *a) {
      std::optional<int64_t> i = e.getAsInteger();
      if (!i)
        return fail("attribute '" + name + "': expected an array of integers");
      out.push_back(*i);
    }
    return out;
  }
  Expected<cpu::MoEScoring> scoringAttr() const {
    Expected<std::string> sc = stringAttr("scoring");
    if (!sc)
      return sc.takeError();
    if (*sc == "sigmoid")
      return cpu::MoEScoring::Sigmoid;
    if (*sc == "softmax")
      return cpu::MoEScoring::Softmax;
    return fail("attribute 'scoring': expected \"sigmoid\" or \"softmax\", "
                "got \"" +
                *sc + "\"");
  }

  /// The precision of a GEMM op. FP8 only where the op has an FP8 kernel;
  /// FP8 and BF16 emulation only in float.
  Expected<Precision> precisionAttr(bool fp8Supported) const {
    Precision p;
    const json::Value *v = attr("precision");
    if (!v)
      return p;
    const json::Object *o = v->getAsObject();
    if (!o)
      return fail("attribute 'precision': expected an object");
    auto str = [&](StringRef key, std::optional<std::string> &out) -> Error {
      const json::Value *e = o->get(key);
      if (!e)
        return Error::success();
      std::optional<StringRef> sv = e->getAsString();
      if (!sv)
        return fail("attribute 'precision': '" + key + "' is not a string");
      out = sv->str();
      return Error::success();
    };
    std::optional<std::string> format, lhs, rhs, scale, outType;
    const std::pair<StringRef, std::optional<std::string> *> fields[] = {
        {"format", &format},
        {"lhs", &lhs},
        {"rhs", &rhs},
        {"scale", &scale},
        {"out", &outType}};
    for (const auto &[key, slot] : fields)
      if (Error e = str(key, *slot))
        return std::move(e);
    if (!format)
      return fail("attribute 'precision': missing 'format'");
    if (*format == "f32")
      p.format = Precision::F32;
    else if (*format == "bf16")
      p.format = Precision::BF16;
    else if (*format == "e4m3")
      p.format = Precision::E4M3;
    else if (*format == "e5m2")
      p.format = Precision::E5M2;
    else
      return fail("attribute 'precision': unknown format '" + *format +
                  "' (expected e4m3, e5m2, bf16 or f32)");
    if (lhs)
      p.lhs = *lhs;
    if (rhs)
      p.rhs = *rhs;
    if (scale && *scale != "fp32" && *scale != "pow2")
      return fail("attribute 'precision': unknown scale '" + *scale +
                  "' (expected fp32 or pow2)");
    p.pow2 = scale && *scale == "pow2";
    if (outType && *outType != "f32" && *outType != "bf16")
      return fail("attribute 'precision': unknown out '" + *outType +
                  "' (expected f32 or bf16)");
    p.bf16Out = outType && *outType == "bf16";
    if (const json::Value *promotion = o->get("promotion")) {
      std::optional<int64_t> i = promotion->getAsInteger();
      if (!i)
        return fail("attribute 'precision': 'promotion' is not an integer");
      p.promotion = *i;
    }
    if (p.format == Precision::F32)
      return p;
    if (!std::is_same_v<T, float>)
      return fail("FP8/BF16 emulation runs in float; this executor computes "
                  "in double (use a float executor, or an f32 recipe)");
    if (!p.isFP8())
      return p;
    if (!fp8Supported)
      return fail("the CPU backend runs this op in f32 or bf16, not " +
                  *format);
    // The CPU FP8 linear implements the recipe's granularities only.
    if (p.lhs != "tile_1x128" || p.rhs != "block_128x128")
      return fail("the CPU FP8 linear scales lhs = tile_1x128 and rhs = "
                  "block_128x128, got lhs = " +
                  p.lhs + ", rhs = " + p.rhs);
    if (p.promotion != 32 && p.promotion != 64 && p.promotion != 128)
      return fail("FP8 promotion interval " + Twine(p.promotion) +
                  " must be 32, 64 or 128 (a multiple of 32 dividing the "
                  "128-element scaling groups)");
    return p;
  }

  //--- Ops ----------------------------------------------------------------//

  Expected<Body> compileParam();
  Expected<Body> compileEmbedding();
  Expected<Body> compileLinear();
  Expected<Body> compileBatchMatmul();
  Expected<Body> compileGroupedLinear();
  Expected<Body> compileRMSNorm();
  Expected<Body> compileRotary(bool backward);
  Expected<Body> compileAttention();
  Expected<Body> compileElementwise2(bool swiglu);
  Expected<Body> compileMoEGate();
  Expected<Body> compileMoEDispatch();
  Expected<Body> compileMoECombine();
  Expected<Body> compileCrossEntropy();
  Expected<Body> compileEmbeddingGrad();
  Expected<Body> compileLinearDgrad();
  Expected<Body> compileLinearWgrad();
  Expected<Body> compileBiasGrad();
  Expected<Body> compileBatchMatmulGrad();
  Expected<Body> compileGroupedLinearDgrad();
  Expected<Body> compileGroupedLinearWgrad();
  Expected<Body> compileRMSNormGrad();
  Expected<Body> compileAttentionGrad();
  Expected<Body> compileSwiGLUGrad();
  Expected<Body> compileMoEGateGrad();
  Expected<Body> compileMoEDispatchGrad();
  Expected<Body> compileMoECombineGrad();
  Expected<Body> compileCrossEntropyGrad();
  Expected<Body> compileGradAccumulate();
  Expected<Body> compileAdamWStep();
  Expected<Body> compileReshape(bool expand);
  Expected<Body> compileExtractSlice();
  Expected<Body> compileInsertSlice();
  Expected<Body> compileConcat();
  Expected<Body> compileEmpty();
  Expected<Body> compileArith(char op);
  Expected<Body> compileNegf();
  Expected<Body> compileExpertDispatch();
  Expected<Body> compileExpertCombine();
  Expected<Body> compileLocalExperts(bool grad);
  /// The `ranks` and `wire` attributes of the expert exchanges.
  Expected<int64_t> ranksAttr() const;
  Expected<Wire> wireAttr() const;

  /// Names this instruction in expert exchanges, so that ranks can check
  /// they exchange rows for the same op.
  std::string exchangeTag() const {
    return "@" + f.name + " instruction " + std::to_string(index);
  }
  /// The body of a grouped linear that computes rows (the forward, the
  /// input gradient): compute(in, w, sizes, rows, experts, out) on the
  /// grouped rows; padding rows past them are zero.
  template <typename Compute>
  Body groupedRowsBody(Compute compute, const T *in, const T *w, T *out,
                       int64_t outWidth, const int64_t *sizes, int64_t experts,
                       int64_t rows) const {
    return Body([=]() -> Error {
      Expected<int64_t> total = checkGroupSizes(sizes, experts, rows);
      if (!total)
        return total.takeError();
      std::fill(out + *total * outWidth, out + rows * outWidth, T(0));
      return compute(in, w, sizes, *total, experts, out);
    });
  }
  /// Shared checks of the batched products: the sizes and transposition.
  Expected<cpu::BatchMatmulShape> batchMatmulShape() const;
  /// Shared checks of the MoE routing ops: tokens, topK from [T, k] indices.
  Error sameStorage(const Buffer &a, const Buffer &b, StringRef what) const;
  Expected<ParamState<T> *> trainableParam() const;
  /// Slice offsets, sizes and strides checked against `full`.
  struct Slice {
    std::vector<int64_t> offsets, sizes, strides, full;
  };
  Expected<Slice> sliceAttrs(llvm::ArrayRef<int64_t> full) const;
  /// `shape` is `sizes` with some unit dimensions dropped (rank reduction).
  static bool matchesSizes(llvm::ArrayRef<int64_t> shape,
                           llvm::ArrayRef<int64_t> sizes);

  State &s;
  const Function &f;
  size_t index;
  const Instruction &inst;
};

} // namespace

//===----------------------------------------------------------------------===//
// Strided copies for the tensor ops, on either storage
//===----------------------------------------------------------------------===//

namespace {

/// Visits every index of `sizes` in row-major order with the element
/// offset `offsets[d] + i[d] * strides[d]` into a row-major `full` tensor,
/// calling fn(linear index, offset into full).
template <typename Fn>
void forEachSliceElement(const std::vector<int64_t> &offsets,
                         const std::vector<int64_t> &sizes,
                         const std::vector<int64_t> &strides,
                         const std::vector<int64_t> &full, Fn fn) {
  size_t rank = sizes.size();
  int64_t count = product(sizes);
  if (count == 0)
    return;
  std::vector<int64_t> fullStride(rank, 1);
  for (size_t d = rank; d-- > 1;)
    fullStride[d - 1] = fullStride[d] * full[d];
  std::vector<int64_t> idx(rank, 0);
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d)
    base += offsets[d] * fullStride[d];
  for (int64_t linear = 0; linear < count; ++linear) {
    int64_t at = base;
    for (size_t d = 0; d < rank; ++d)
      at += idx[d] * strides[d] * fullStride[d];
    fn(linear, at);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < sizes[d])
        break;
      idx[d] = 0;
    }
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Op implementations
//===----------------------------------------------------------------------===//

template <typename T>
auto InstructionCompiler<T>::compileParam() -> Expected<Body> {
  if (Error e = arity(0, 0, 1))
    return std::move(e);
  Expected<std::string> name = stringAttr("name");
  if (!name)
    return name.takeError();
  ParamState<T> *p = s.lookup(*name);
  if (!p)
    return fail("unknown parameter '" + *name +
                "' (not in the program's parameter table)");
  if (Error e = floatResult(0))
    return std::move(e);
  if (Error e = resultShape(0, p->param->shape))
    return std::move(e);
  T *y = outReal(0);
  if (p->heldInPart()) {
    // Only local_experts may read it, which reads the experts held.
    int64_t r = inst.results[0];
    bool readOtherwise = llvm::is_contained(f.results, r);
    for (size_t j = index + 1; j < f.body.size(); ++j)
      readOtherwise |= f.body[j].op != "octet_pipe.local_experts" &&
                       llvm::is_contained(f.body[j].operands, r);
    if (readOtherwise)
      return fail(
          llvm::formatv(
              "parameter '{0}' is held in part here (elements [{1}, {2}): its "
              "own experts), so only octet_pipe.local_experts may read it",
              *name, p->heldBegin, p->heldBegin + int64_t(p->master.size()))
              .str());
  }
  int64_t n = p->param->numElements();
  return Body([p, y, n]() -> Error {
    if (!p->held)
      return makeError("the weights of parameter '" + p->param->name +
                       "' were released (another rank's parameter)");
    // Of one held in part, the rest is NaN: a read of it would show.
    int64_t first = p->heldBegin, last = first + int64_t(p->master.size());
    std::fill(y, y + first, std::numeric_limits<T>::quiet_NaN());
    std::copy(p->master.begin(), p->master.end(), y + first);
    std::fill(y + last, y + n, std::numeric_limits<T>::quiet_NaN());
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileEmbedding() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  int64_t vocab = in(0).shape[0], dim = in(0).shape[1];
  if (Error e = resultShape(0, concatShape(in(1).shape, {dim})))
    return std::move(e);
  const T *table = inReal(0);
  const int64_t *ids = inInt(1);
  T *y = outReal(0);
  int64_t n = in(1).numElements();
  return Body([=]() -> Error {
    if (Error e = checkRange(ids, n, 0, vocab, "id"))
      return e;
    cpu::embeddingForward<T, int64_t>(table, ids, n, vocab, dim, y);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileLinear() -> Expected<Body> {
  if (Error e = arity(2, 3, 1))
    return std::move(e);
  bool hasBias = inst.operands.size() == 3;
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  llvm::ArrayRef<int64_t> xs = in(0).shape;
  int64_t k = xs.back(), n = in(1).shape[0], m = product(xs.drop_back());
  if (Error e = operandShape(1, {n, k}))
    return std::move(e);
  if (hasBias) {
    if (Error e = floatOperand(2))
      return std::move(e);
    if (Error e = operandShape(2, {n}))
      return std::move(e);
  }
  if (Error e = resultShape(0, concatShape(xs.drop_back(), {n})))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/true);
  if (!p)
    return p.takeError();
  if (p->isFP8() && (k == 0 || n == 0))
    return fail("an FP8 linear needs K > 0 and N > 0");
  const T *x = inReal(0), *w = inReal(1);
  const T *bias = hasBias ? inReal(2) : nullptr;
  T *y = outReal(0);
  cpu::LinearShape shape{m, n, k};
  Precision prec = *p;
  State *st = &s;
  return Body([=]() -> Error {
    if constexpr (std::is_same_v<T, float>) {
      if (prec.isFP8()) {
        if (m == 0)
          return Error::success();
        return cpu::fp8LinearForward(
            x, w, bias, shape, prec.fp8Config(st->gemmEngine), y, nullptr);
      }
    }
    bool bf16 = prec.format == Precision::BF16, done = false;
    std::vector<T> rx, rw;
    const T *xs = gemmOperand(x, m * k, bf16, rx),
            *ws = gemmOperand(w, n * k, bf16, rw);
    if constexpr (std::is_same_v<T, float>) {
      if (st->denseEngine) {
        if (Error e = denseGemm(*st->denseEngine, numerics::Trans::No,
                                numerics::Trans::Yes, m, n, k, xs, k, ws, k, y,
                                n, /*accumulate=*/false, bf16))
          return e;
        // As cpu::linearForward adds it: once per element, after the sum.
        if (bias)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
              y[i * n + j] += bias[j];
        done = true;
      }
    }
    if (!done)
      cpu::linearForward<T>(xs, ws, bias, shape, y);
    if (bf16 && prec.bf16Out)
      roundToBF16(y, m * n);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::batchMatmulShape() const
    -> Expected<cpu::BatchMatmulShape> {
  if (Error e = rankAtLeast(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, in(0).shape.size()))
    return std::move(e);
  Expected<bool> transpose = flagAttr("transpose_rhs");
  if (!transpose)
    return transpose.takeError();
  llvm::ArrayRef<int64_t> ls = in(0).shape, rs = in(1).shape;
  size_t r = ls.size();
  int64_t m = ls[r - 2], k = ls[r - 1];
  int64_t n = *transpose ? rs[r - 2] : rs[r - 1];
  std::vector<int64_t> expectedRhs = ls.drop_back(2);
  if (*transpose) {
    expectedRhs.push_back(n);
    expectedRhs.push_back(k);
  } else {
    expectedRhs.push_back(k);
    expectedRhs.push_back(n);
  }
  if (Error e = operandShape(1, expectedRhs))
    return std::move(e);
  return cpu::BatchMatmulShape{product(ls.drop_back(2)), m, n, k, *transpose};
}

template <typename T>
auto InstructionCompiler<T>::compileBatchMatmul() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  Expected<cpu::BatchMatmulShape> shape = batchMatmulShape();
  if (!shape)
    return shape.takeError();
  llvm::ArrayRef<int64_t> ls = in(0).shape;
  if (Error e =
          resultShape(0, concatShape(ls.drop_back(2), {shape->m, shape->n})))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/false);
  if (!p)
    return p.takeError();
  const T *lhs = inReal(0), *rhs = inReal(1);
  T *y = outReal(0);
  cpu::BatchMatmulShape sh = *shape;
  bool bf16 = p->format == Precision::BF16, bf16Out = p->bf16Out;
  int64_t nl = in(0).numElements(), nr = in(1).numElements(),
          ny = out(0).numElements();
  State *st = &s;
  return Body([=]() -> Error {
    std::vector<T> rl, rr;
    const T *l = gemmOperand(lhs, nl, bf16, rl),
            *r = gemmOperand(rhs, nr, bf16, rr);
    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
      if (st->denseEngine) {
        numerics::Trans tr =
            sh.transposeRhs ? numerics::Trans::Yes : numerics::Trans::No;
        if (Error e = denseGemm(*st->denseEngine, numerics::Trans::No, tr, sh.m,
                                sh.n, sh.k, l, sh.k, r,
                                sh.transposeRhs ? sh.k : sh.n, y, sh.n,
                                /*accumulate=*/false, bf16, sh.batch,
                                sh.m * sh.k, sh.k * sh.n, sh.m * sh.n))
          return e;
        done = true;
      }
    }
    if (!done)
      cpu::batchMatmulForward<T>(l, r, sh, y);
    if (bf16 && bf16Out)
      roundToBF16(y, ny);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileGroupedLinear() -> Expected<Body> {
  if (Error e = arity(3, 3, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = intOperand(2))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 3))
    return std::move(e);
  int64_t rows = in(0).shape[0], k = in(0).shape[1];
  int64_t experts = in(1).shape[0], n = in(1).shape[1];
  if (Error e = operandShape(1, {experts, n, k}))
    return std::move(e);
  if (Error e = operandShape(2, {experts}))
    return std::move(e);
  if (Error e = resultShape(0, {rows, n}))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/true);
  if (!p)
    return p.takeError();
  if (p->isFP8() && (k == 0 || n == 0))
    return fail("an FP8 linear needs K > 0 and N > 0");
  const T *x = inReal(0), *w = inReal(1);
  const int64_t *sizes = inInt(2);
  T *y = outReal(0);
  Precision prec = *p;
  State *st = &s;
  // The rows of `groups` experts starting at `wExperts`' first.
  auto compute = [=](const T *x, const T *wExperts, const int64_t *sizes,
                     int64_t rows, int64_t groups, T *y) -> Error {
    if constexpr (std::is_same_v<T, float>) {
      if (prec.isFP8())
        // Each expert's FP8 linear of its rows, the GEMMs at once.
        return cpu::fp8GroupedLinearForward(
            x, wExperts, llvm::ArrayRef<int64_t>(sizes, size_t(groups)), n, k,
            prec.fp8Config(st->gemmEngine), y);
    }
    cpu::GroupedLinearShape shape{rows, n, k, groups};
    if (prec.format == Precision::BF16) {
      std::vector<T> rx = roundedCopy(x, rows * k),
                     rw = roundedCopy(wExperts, groups * n * k);
      cpu::groupedLinearForward<T, int64_t>(rx.data(), rw.data(), sizes, shape,
                                            y);
      if (prec.bf16Out)
        roundToBF16(y, rows * n);
      return Error::success();
    }
    cpu::groupedLinearForward<T, int64_t>(x, wExperts, sizes, shape, y);
    return Error::success();
  };
  return groupedRowsBody(compute, x, w, y, n, sizes, experts, rows);
}

template <typename T>
auto InstructionCompiler<T>::compileRMSNorm() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  llvm::ArrayRef<int64_t> xs = in(0).shape;
  int64_t dim = xs.back(), rows = product(xs.drop_back());
  if (Error e = operandShape(1, {dim}))
    return std::move(e);
  if (Error e = resultShape(0, xs))
    return std::move(e);
  Expected<double> eps = numberAttr("epsilon");
  if (!eps)
    return eps.takeError();
  if (!(*eps > 0))
    return fail("attribute 'epsilon' must be positive");
  const T *x = inReal(0), *gamma = inReal(1);
  T *y = outReal(0);
  double epsilon = *eps;
  return Body([=]() -> Error {
    cpu::rmsnormForward<T>(x, gamma, rows, dim, epsilon, y);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileRotary(bool backward) -> Expected<Body> {
  if (Error e = arity(1, 1, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = rankIs(0, 4))
    return std::move(e);
  llvm::ArrayRef<int64_t> xs = in(0).shape;
  if (xs[3] % 2 != 0)
    return fail(operandName(0) + ": the head dimension must be even");
  if (Error e = resultShape(0, xs))
    return std::move(e);
  Expected<double> theta = numberAttr("theta");
  if (!theta)
    return theta.takeError();
  if (!(*theta > 0))
    return fail("attribute 'theta' must be positive");
  cpu::RotaryShape shape{xs[0], xs[1], xs[2], xs[3]};
  const T *x = inReal(0);
  T *y = outReal(0);
  double th = *theta;
  return Body([=]() -> Error {
    if (backward)
      cpu::rotaryBackward<T>(x, shape, th, y);
    else
      cpu::rotaryForward<T>(x, shape, th, y);
    return Error::success();
  });
}

/// The shape of causal attention from q, k, v at operands 0..2, checked.
template <typename T>
static Expected<cpu::AttentionShape>
attentionShape(const Buffer &q, const Buffer &k, const Buffer &v,
               const std::function<Error(const Twine &)> &fail) {
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4)
    return fail("q, k and v must be [batch, seq, heads, dim], got " +
                shapeString(q.shape) + ", " + shapeString(k.shape) + ", " +
                shapeString(v.shape));
  int64_t b = q.shape[0], s = q.shape[1], hq = q.shape[2], dqk = q.shape[3];
  int64_t hkv = k.shape[2], dv = v.shape[3];
  if (k.shape != std::vector<int64_t>{b, s, hkv, dqk} ||
      v.shape != std::vector<int64_t>{b, s, hkv, dv})
    return fail("k " + shapeString(k.shape) + " and v " + shapeString(v.shape) +
                " do not match q " + shapeString(q.shape));
  if (hkv <= 0 || hq % hkv != 0)
    return fail("query heads (" + Twine(hq) +
                ") must be a multiple of key/value heads (" + Twine(hkv) + ")");
  return cpu::AttentionShape{b, s, hq, hkv, dqk, dv};
}

template <typename T>
auto InstructionCompiler<T>::compileAttention() -> Expected<Body> {
  if (Error e = arity(3, 3, 1))
    return std::move(e);
  if (Error e = floats({0, 1, 2}, {0}))
    return std::move(e);
  Expected<cpu::AttentionShape> shape = attentionShape<T>(
      in(0), in(1), in(2), [&](const Twine &m) { return fail(m); });
  if (!shape)
    return shape.takeError();
  if (Error e = resultShape(
          0, {shape->batch, shape->seq, shape->qHeads, shape->vDim}))
    return std::move(e);
  Expected<std::optional<double>> scale = optionalNumberAttr("scale");
  if (!scale)
    return scale.takeError();
  double sc = scale->value_or(cpu::defaultAttentionScale(shape->qkDim));
  const T *q = inReal(0), *k = inReal(1), *v = inReal(2);
  T *y = outReal(0);
  cpu::AttentionShape sh = *shape;
  return Body([=]() -> Error {
    cpu::causalAttentionForward<T>(q, k, v, sh, sc, y);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileElementwise2(bool swiglu)
    -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = operandShape(1, in(0).shape))
    return std::move(e);
  if (Error e = resultShape(0, in(0).shape))
    return std::move(e);
  const T *a = inReal(0), *b = inReal(1);
  T *y = outReal(0);
  int64_t n = in(0).numElements();
  return Body([=]() -> Error {
    if (swiglu)
      cpu::swigluForward<T>(a, b, n, y);
    else
      cpu::addForward<T>(a, b, n, y);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileMoEGate() -> Expected<Body> {
  if (Error e = arity(2, 3, 2))
    return std::move(e);
  bool hasBias = inst.operands.size() == 3;
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = intResult(1))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  int64_t tokens = in(0).shape[0], dim = in(0).shape[1];
  if (Error e = rankIs(1, 2))
    return std::move(e);
  int64_t experts = in(1).shape[0];
  if (Error e = operandShape(1, {experts, dim}))
    return std::move(e);
  if (hasBias) {
    if (Error e = floatOperand(2))
      return std::move(e);
    if (Error e = operandShape(2, {experts}))
      return std::move(e);
  }
  Expected<int64_t> topK = integerAttr("top_k");
  if (!topK)
    return topK.takeError();
  Expected<int64_t> nGroup = integerAttr("n_group");
  if (!nGroup)
    return nGroup.takeError();
  Expected<int64_t> topkGroup = integerAttr("topk_group");
  if (!topkGroup)
    return topkGroup.takeError();
  Expected<double> scaling = numberAttr("routed_scaling_factor");
  if (!scaling)
    return scaling.takeError();
  Expected<cpu::MoEScoring> scoring = scoringAttr();
  if (!scoring)
    return scoring.takeError();
  Expected<bool> norm = flagAttr("norm_topk_prob");
  if (!norm)
    return norm.takeError();
  // The kernel's preconditions (the op verifier's rules).
  if (*nGroup <= 0 || experts % *nGroup != 0)
    return fail(Twine(experts) + " experts do not split into n_group = " +
                Twine(*nGroup) + " groups");
  if (*topkGroup <= 0 || *topkGroup > *nGroup)
    return fail("topk_group = " + Twine(*topkGroup) + " must lie in [1, " +
                Twine(*nGroup) + "]");
  if (*topK <= 0 || *topK > *topkGroup * (experts / *nGroup))
    return fail("top_k = " + Twine(*topK) +
                " must be positive and at most the experts of the eligible "
                "groups (" +
                Twine(*topkGroup * (experts / *nGroup)) + ")");
  if (Error e = resultShape(0, {tokens, *topK}))
    return std::move(e);
  if (Error e = resultShape(1, {tokens, *topK}))
    return std::move(e);
  cpu::MoEGateConfig config{tokens,     dim,      experts,  *topK, *nGroup,
                            *topkGroup, *scaling, *scoring, *norm};
  const T *x = inReal(0), *w = inReal(1);
  const T *bias = hasBias ? inReal(2) : nullptr;
  T *weights = outReal(0);
  int64_t *indices = outInt(1);
  return Body([=]() -> Error {
    std::vector<int32_t> idx(config.tokens * config.topK);
    cpu::moeGateForward<T>(x, w, bias, config, weights, idx.data());
    std::copy(idx.begin(), idx.end(), indices);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileMoEDispatch() -> Expected<Body> {
  if (Error e = arity(2, 2, 2))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = intResult(1))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  int64_t tokens = in(0).shape[0], dim = in(0).shape[1], topK = in(1).shape[1];
  if (Error e = operandShape(1, {tokens, topK}))
    return std::move(e);
  Expected<int64_t> experts = integerAttr("num_experts");
  if (!experts)
    return experts.takeError();
  if (*experts <= 0)
    return fail("attribute 'num_experts' must be positive");
  if (Error e = resultShape(0, {tokens * topK, dim}))
    return std::move(e);
  if (Error e = resultShape(1, {*experts}))
    return std::move(e);
  const T *x = inReal(0);
  const int64_t *indices = inInt(1);
  T *rows = outReal(0);
  int64_t *sizes = outInt(1);
  int64_t numExperts = *experts;
  cpu::MoERoutingShape shape{tokens, topK, dim};
  return Body([=]() -> Error {
    if (Error e =
            checkRange(indices, tokens * topK, 0, numExperts, "expert index"))
      return e;
    std::vector<int32_t> groupSizes(numExperts);
    cpu::moeDispatchForward<T, int64_t>(x, indices, shape, numExperts, rows,
                                        groupSizes.data());
    std::copy(groupSizes.begin(), groupSizes.end(), sizes);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileMoECombine() -> Expected<Body> {
  if (Error e = arity(3, 3, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = intOperand(2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  int64_t tokens = in(1).shape[0], topK = in(1).shape[1];
  if (Error e = rankIs(0, 2))
    return std::move(e);
  int64_t dim = in(0).shape[1];
  if (Error e = operandShape(0, {tokens * topK, dim}))
    return std::move(e);
  if (Error e = operandShape(2, {tokens, topK}))
    return std::move(e);
  if (Error e = resultShape(0, {tokens, dim}))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/false);
  if (!p)
    return p.takeError();
  const T *rows = inReal(0), *weights = inReal(1);
  const int64_t *indices = inInt(2);
  T *y = outReal(0);
  cpu::MoERoutingShape shape{tokens, topK, dim};
  bool bf16 = p->format == Precision::BF16;
  return Body([=]() -> Error {
    if (Error e =
            checkRange(indices, tokens * topK, 0, kMaxExperts, "expert index"))
      return e;
    // BF16: the rows are read rounded, the sum is made in T.
    std::vector<T> rounded;
    if (bf16)
      rounded = roundedCopy(rows, tokens * topK * dim);
    cpu::moeCombineForward<T, int64_t>(bf16 ? rounded.data() : rows, weights,
                                       indices, shape, y);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileCrossEntropy() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  llvm::ArrayRef<int64_t> ls = in(0).shape;
  int64_t vocab = ls.back(), tokens = product(ls.drop_back());
  if (Error e = operandShape(1, ls.drop_back()))
    return std::move(e);
  if (Error e = resultShape(0, {}))
    return std::move(e);
  if (tokens == 0 || vocab == 0)
    return fail("the mean cross-entropy needs at least one token and one "
                "class");
  const T *logits = inReal(0);
  const int64_t *labels = inInt(1);
  T *loss = outReal(0);
  return Body([=]() -> Error {
    if (Error e = checkRange(labels, tokens, 0, vocab, "label"))
      return e;
    *loss = cpu::crossEntropyForward<T, int64_t>(logits, labels, tokens, vocab);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileEmbeddingGrad() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (out(0).shape.size() != 2)
    return fail(resultName(0) + ": expected rank 2 (the table)");
  int64_t vocab = out(0).shape[0], dim = out(0).shape[1];
  if (Error e = operandShape(0, concatShape(in(1).shape, {dim})))
    return std::move(e);
  const T *dy = inReal(0);
  const int64_t *ids = inInt(1);
  T *dtable = outReal(0);
  int64_t n = in(1).numElements();
  return Body([=]() -> Error {
    if (Error e = checkRange(ids, n, 0, vocab, "id"))
      return e;
    // The kernel accumulates; the IR's result is a fresh value.
    std::fill(dtable, dtable + vocab * dim, T(0));
    cpu::embeddingBackward<T, int64_t>(dy, ids, n, vocab, dim, dtable);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileLinearDgrad() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  llvm::ArrayRef<int64_t> ds = in(0).shape;
  int64_t n = ds.back(), k = in(1).shape[1], m = product(ds.drop_back());
  if (Error e = operandShape(1, {n, k}))
    return std::move(e);
  if (Error e = resultShape(0, concatShape(ds.drop_back(), {k})))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/true);
  if (!p)
    return p.takeError();
  if (p->isFP8() && (k == 0 || n == 0))
    return fail("an FP8 linear needs K > 0 and N > 0");
  const T *dy = inReal(0), *w = inReal(1);
  T *dx = outReal(0);
  cpu::LinearShape shape{m, n, k};
  Precision prec = *p;
  State *st = &s;
  return Body([=]() -> Error {
    if constexpr (std::is_same_v<T, float>) {
      if (prec.isFP8()) {
        if (m == 0)
          return Error::success();
        return cpu::fp8LinearDgrad(w, dy, shape, prec.fp8Config(st->gemmEngine),
                                   dx);
      }
    }
    bool bf16 = prec.format == Precision::BF16, done = false;
    std::vector<T> rdy, rw;
    const T *g = gemmOperand(dy, m * n, bf16, rdy),
            *ws = gemmOperand(w, n * k, bf16, rw);
    if constexpr (std::is_same_v<T, float>) {
      if (st->denseEngine) {
        if (Error e = denseGemm(*st->denseEngine, numerics::Trans::No,
                                numerics::Trans::No, m, k, n, g, n, ws, k, dx,
                                k, /*accumulate=*/false, bf16))
          return e;
        done = true;
      }
    }
    if (!done)
      cpu::linearBackward<T>(nullptr, ws, g, shape, dx, nullptr, nullptr);
    if (bf16 && prec.bf16Out)
      roundToBF16(dx, m * k);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileLinearWgrad() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  if (Error e = rankIs(1, in(0).shape.size()))
    return std::move(e);
  llvm::ArrayRef<int64_t> ds = in(0).shape, xs = in(1).shape;
  int64_t n = ds.back(), k = xs.back(), m = product(ds.drop_back());
  if (Error e = operandShape(1, concatShape(ds.drop_back(), {k})))
    return std::move(e);
  if (Error e = resultShape(0, {n, k}))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/true);
  if (!p)
    return p.takeError();
  if (p->isFP8() && (k == 0 || n == 0))
    return fail("an FP8 linear needs K > 0 and N > 0");
  const T *dy = inReal(0), *x = inReal(1);
  T *dw = outReal(0);
  cpu::LinearShape shape{m, n, k};
  Precision prec = *p;
  State *st = &s;
  return Body([=]() -> Error {
    std::fill(dw, dw + n * k, T(0));
    if constexpr (std::is_same_v<T, float>) {
      if (prec.isFP8()) {
        // The FP8 copy of x the forward would have cached, then Wgrad from
        // it, as fp8LinearBackward does.
        if (m == 0)
          return Error::success();
        cpu::FP8LinearConfig config = prec.fp8Config(st->gemmEngine);
        cpu::FP8LinearCache cache =
            cpu::fp8LinearQuantizeInput(x, shape, config);
        return cpu::fp8LinearWgrad(cache, dy, shape, config, dw);
      }
    }
    // Weight gradients stay FP32 (the recipe accumulates them in FP32).
    bool bf16 = prec.format == Precision::BF16;
    std::vector<T> rdy, rx;
    const T *g = gemmOperand(dy, m * n, bf16, rdy),
            *xs = gemmOperand(x, m * k, bf16, rx);
    if constexpr (std::is_same_v<T, float>) {
      if (st->denseEngine)
        // Onto the zeros above, as cpu::linearBackward accumulates.
        return denseGemm(*st->denseEngine, numerics::Trans::Yes,
                         numerics::Trans::No, n, k, m, g, n, xs, k, dw, k,
                         /*accumulate=*/true, bf16);
    }
    cpu::linearBackward<T>(xs, nullptr, g, shape, nullptr, dw, nullptr);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileBiasGrad() -> Expected<Body> {
  if (Error e = arity(1, 1, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  llvm::ArrayRef<int64_t> ds = in(0).shape;
  int64_t n = ds.back(), m = product(ds.drop_back());
  if (Error e = resultShape(0, {n}))
    return std::move(e);
  const T *dy = inReal(0);
  T *db = outReal(0);
  return Body([=]() -> Error {
    std::fill(db, db + n, T(0));
    cpu::linearBackward<T>(nullptr, nullptr, dy, {m, n, 0}, nullptr, nullptr,
                           db);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileBatchMatmulGrad() -> Expected<Body> {
  if (Error e = arity(3, 3, 2))
    return std::move(e);
  if (Error e = floats({0, 1, 2}, {0, 1}))
    return std::move(e);
  Expected<cpu::BatchMatmulShape> shape = batchMatmulShape();
  if (!shape)
    return shape.takeError();
  llvm::ArrayRef<int64_t> ls = in(0).shape;
  if (Error e =
          operandShape(2, concatShape(ls.drop_back(2), {shape->m, shape->n})))
    return std::move(e);
  if (Error e = resultShape(0, in(0).shape))
    return std::move(e);
  if (Error e = resultShape(1, in(1).shape))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/false);
  if (!p)
    return p.takeError();
  const T *lhs = inReal(0), *rhs = inReal(1), *dy = inReal(2);
  T *dl = outReal(0), *dr = outReal(1);
  cpu::BatchMatmulShape sh = *shape;
  bool bf16 = p->format == Precision::BF16, bf16Out = p->bf16Out;
  int64_t nl = in(0).numElements(), nr = in(1).numElements(),
          ny = in(2).numElements();
  State *st = &s;
  return Body([=]() -> Error {
    std::vector<T> rl, rr, rdy;
    const T *l = gemmOperand(lhs, nl, bf16, rl),
            *r = gemmOperand(rhs, nr, bf16, rr),
            *g = gemmOperand(dy, ny, bf16, rdy);
    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
      if (st->denseEngine) {
        using numerics::Trans;
        int64_t sl = sh.m * sh.k, sr = sh.k * sh.n, sy = sh.m * sh.n;
        cpu::DenseGemmEngine &engine = *st->denseEngine;
        // As cpu::batchMatmulBackward: dLhs = dOut op(rhs)^T, and dRhs =
        // dOut^T lhs ([n, k] rhs) or lhs^T dOut ([k, n] rhs).
        Error e = sh.transposeRhs
                      ? denseGemm(engine, Trans::No, Trans::No, sh.m, sh.k,
                                  sh.n, g, sh.n, r, sh.k, dl, sh.k, false, bf16,
                                  sh.batch, sy, sr, sl)
                      : denseGemm(engine, Trans::No, Trans::Yes, sh.m, sh.k,
                                  sh.n, g, sh.n, r, sh.n, dl, sh.k, false, bf16,
                                  sh.batch, sy, sr, sl);
        if (e)
          return e;
        e = sh.transposeRhs ? denseGemm(engine, Trans::Yes, Trans::No, sh.n,
                                        sh.k, sh.m, g, sh.n, l, sh.k, dr, sh.k,
                                        false, bf16, sh.batch, sy, sl, sr)
                            : denseGemm(engine, Trans::Yes, Trans::No, sh.k,
                                        sh.n, sh.m, l, sh.k, g, sh.n, dr, sh.n,
                                        false, bf16, sh.batch, sl, sy, sr);
        if (e)
          return e;
        done = true;
      }
    }
    if (!done)
      cpu::batchMatmulBackward<T>(l, r, g, sh, dl, dr);
    if (bf16 && bf16Out) {
      roundToBF16(dl, nl);
      roundToBF16(dr, nr);
    }
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileGroupedLinearDgrad() -> Expected<Body> {
  if (Error e = arity(3, 3, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = intOperand(2))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 3))
    return std::move(e);
  int64_t rows = in(0).shape[0], n = in(0).shape[1];
  int64_t experts = in(1).shape[0], k = in(1).shape[2];
  if (Error e = operandShape(1, {experts, n, k}))
    return std::move(e);
  if (Error e = operandShape(2, {experts}))
    return std::move(e);
  if (Error e = resultShape(0, {rows, k}))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/true);
  if (!p)
    return p.takeError();
  if (p->isFP8() && (k == 0 || n == 0))
    return fail("an FP8 linear needs K > 0 and N > 0");
  const T *dy = inReal(0), *w = inReal(1);
  const int64_t *sizes = inInt(2);
  T *dx = outReal(0);
  Precision prec = *p;
  State *st = &s;
  auto compute = [=](const T *dy, const T *wExperts, const int64_t *sizes,
                     int64_t rows, int64_t groups, T *dx) -> Error {
    if constexpr (std::is_same_v<T, float>) {
      if (prec.isFP8())
        // Each expert's FP8 Dgrad of its rows, the GEMMs at once.
        return cpu::fp8GroupedLinearDgrad(
            dy, wExperts, llvm::ArrayRef<int64_t>(sizes, size_t(groups)), n, k,
            prec.fp8Config(st->gemmEngine), dx);
    }
    cpu::GroupedLinearShape shape{rows, n, k, groups};
    if (prec.format == Precision::BF16) {
      std::vector<T> rdy = roundedCopy(dy, rows * n),
                     rw = roundedCopy(wExperts, groups * n * k);
      cpu::groupedLinearBackward<T, int64_t>(nullptr, rw.data(), sizes,
                                             rdy.data(), shape, dx, nullptr);
      if (prec.bf16Out)
        roundToBF16(dx, rows * k);
      return Error::success();
    }
    cpu::groupedLinearBackward<T, int64_t>(nullptr, wExperts, sizes, dy, shape,
                                           dx, nullptr);
    return Error::success();
  };
  return groupedRowsBody(compute, dy, w, dx, k, sizes, experts, rows);
}

template <typename T>
auto InstructionCompiler<T>::compileGroupedLinearWgrad() -> Expected<Body> {
  if (Error e = arity(3, 3, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = intOperand(2))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  if (Error e = rankIs(2, 1))
    return std::move(e);
  int64_t rows = in(0).shape[0], n = in(0).shape[1], k = in(1).shape[1];
  int64_t experts = in(2).shape[0];
  if (Error e = operandShape(1, {rows, k}))
    return std::move(e);
  if (Error e = resultShape(0, {experts, n, k}))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/true);
  if (!p)
    return p.takeError();
  if (p->isFP8() && (k == 0 || n == 0))
    return fail("an FP8 linear needs K > 0 and N > 0");
  const T *dy = inReal(0), *x = inReal(1);
  const int64_t *sizes = inInt(2);
  T *dw = outReal(0);
  Precision prec = *p;
  State *st = &s;
  auto compute = [=](const T *dy, const T *x, const int64_t *sizes,
                     int64_t rows, int64_t groups, T *dw) -> Error {
    std::fill(dw, dw + groups * n * k, T(0));
    if constexpr (std::is_same_v<T, float>) {
      if (prec.isFP8()) {
        cpu::FP8LinearConfig config = prec.fp8Config(st->gemmEngine);
        int64_t row = 0;
        for (int64_t e = 0; e < groups; ++e) {
          if (sizes[e] > 0) {
            cpu::LinearShape sh{sizes[e], n, k};
            cpu::FP8LinearCache cache =
                cpu::fp8LinearQuantizeInput(x + row * k, sh, config);
            if (Error err = cpu::fp8LinearWgrad(cache, dy + row * n, sh, config,
                                                dw + e * n * k))
              return err;
          }
          row += sizes[e];
        }
        return Error::success();
      }
    }
    cpu::GroupedLinearShape shape{rows, n, k, groups};
    if (prec.format == Precision::BF16) {
      std::vector<T> rdy = roundedCopy(dy, rows * n),
                     rx = roundedCopy(x, rows * k);
      cpu::groupedLinearBackward<T, int64_t>(rx.data(), nullptr, sizes,
                                             rdy.data(), shape, nullptr, dw);
      // Weight gradients stay FP32 (the recipe accumulates them in FP32).
      return Error::success();
    }
    cpu::groupedLinearBackward<T, int64_t>(x, nullptr, sizes, dy, shape,
                                           nullptr, dw);
    return Error::success();
  };
  return Body([=]() -> Error {
    Expected<int64_t> total = checkGroupSizes(sizes, experts, rows);
    if (!total)
      return total.takeError();
    return compute(dy, x, sizes, *total, experts, dw);
  });
}

template <typename T>
auto InstructionCompiler<T>::compileRMSNormGrad() -> Expected<Body> {
  if (Error e = arity(3, 3, 2))
    return std::move(e);
  if (Error e = floats({0, 1, 2}, {0, 1}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  llvm::ArrayRef<int64_t> xs = in(0).shape;
  int64_t dim = xs.back(), rows = product(xs.drop_back());
  if (Error e = operandShape(1, {dim}))
    return std::move(e);
  if (Error e = operandShape(2, xs))
    return std::move(e);
  if (Error e = resultShape(0, xs))
    return std::move(e);
  if (Error e = resultShape(1, {dim}))
    return std::move(e);
  Expected<double> eps = numberAttr("epsilon");
  if (!eps)
    return eps.takeError();
  if (!(*eps > 0))
    return fail("attribute 'epsilon' must be positive");
  const T *x = inReal(0), *gamma = inReal(1), *dy = inReal(2);
  T *dx = outReal(0), *dgamma = outReal(1);
  double epsilon = *eps;
  return Body([=]() -> Error {
    std::fill(dgamma, dgamma + dim, T(0));
    cpu::rmsnormBackward<T>(x, gamma, dy, rows, dim, epsilon, dx, dgamma);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileAttentionGrad() -> Expected<Body> {
  if (Error e = arity(4, 4, 3))
    return std::move(e);
  if (Error e = floats({0, 1, 2, 3}, {0, 1, 2}))
    return std::move(e);
  Expected<cpu::AttentionShape> shape = attentionShape<T>(
      in(0), in(1), in(2), [&](const Twine &m) { return fail(m); });
  if (!shape)
    return shape.takeError();
  if (Error e = operandShape(
          3, {shape->batch, shape->seq, shape->qHeads, shape->vDim}))
    return std::move(e);
  for (size_t i = 0; i < 3; ++i)
    if (Error e = resultShape(i, in(i).shape))
      return std::move(e);
  Expected<std::optional<double>> scale = optionalNumberAttr("scale");
  if (!scale)
    return scale.takeError();
  double sc = scale->value_or(cpu::defaultAttentionScale(shape->qkDim));
  const T *q = inReal(0), *k = inReal(1), *v = inReal(2), *dy = inReal(3);
  T *dq = outReal(0), *dk = outReal(1), *dv = outReal(2);
  cpu::AttentionShape sh = *shape;
  return Body([=]() -> Error {
    cpu::causalAttentionBackward<T>(q, k, v, dy, sh, sc, dq, dk, dv);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileSwiGLUGrad() -> Expected<Body> {
  if (Error e = arity(3, 3, 2))
    return std::move(e);
  if (Error e = floats({0, 1, 2}, {0, 1}))
    return std::move(e);
  llvm::ArrayRef<int64_t> gs = in(0).shape;
  for (size_t i = 1; i < 3; ++i)
    if (Error e = operandShape(i, gs))
      return std::move(e);
  for (size_t i = 0; i < 2; ++i)
    if (Error e = resultShape(i, gs))
      return std::move(e);
  const T *gate = inReal(0), *up = inReal(1), *dy = inReal(2);
  T *dg = outReal(0), *du = outReal(1);
  int64_t n = in(0).numElements();
  return Body([=]() -> Error {
    cpu::swigluBackward<T>(gate, up, dy, n, dg, du);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileMoEGateGrad() -> Expected<Body> {
  if (Error e = arity(4, 4, 2))
    return std::move(e);
  if (Error e = floats({0, 1, 3}, {0, 1}))
    return std::move(e);
  if (Error e = intOperand(2))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  if (Error e = rankIs(2, 2))
    return std::move(e);
  int64_t tokens = in(0).shape[0], dim = in(0).shape[1];
  int64_t experts = in(1).shape[0], topK = in(2).shape[1];
  if (Error e = operandShape(1, {experts, dim}))
    return std::move(e);
  if (Error e = operandShape(2, {tokens, topK}))
    return std::move(e);
  if (Error e = operandShape(3, {tokens, topK}))
    return std::move(e);
  if (Error e = resultShape(0, in(0).shape))
    return std::move(e);
  if (Error e = resultShape(1, in(1).shape))
    return std::move(e);
  Expected<double> scaling = numberAttr("routed_scaling_factor");
  if (!scaling)
    return scaling.takeError();
  Expected<cpu::MoEScoring> scoring = scoringAttr();
  if (!scoring)
    return scoring.takeError();
  Expected<bool> norm = flagAttr("norm_topk_prob");
  if (!norm)
    return norm.takeError();
  // The backward reads neither the groups nor their count.
  cpu::MoEGateConfig config{tokens, dim,      experts,  topK, 1,
                            1,      *scaling, *scoring, *norm};
  const T *x = inReal(0), *w = inReal(1), *dweights = inReal(3);
  const int64_t *indices = inInt(2);
  T *dx = outReal(0), *dw = outReal(1);
  return Body([=]() -> Error {
    if (Error e =
            checkRange(indices, tokens * topK, 0, experts, "expert index"))
      return e;
    std::vector<int32_t> idx(indices, indices + tokens * topK);
    std::fill(dw, dw + experts * dim, T(0));
    cpu::moeGateBackward<T>(x, w, idx.data(), dweights, config, dx, dw);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileMoEDispatchGrad() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  int64_t tokens = in(1).shape[0], topK = in(1).shape[1], dim = in(0).shape[1];
  if (Error e = operandShape(0, {tokens * topK, dim}))
    return std::move(e);
  if (Error e = resultShape(0, {tokens, dim}))
    return std::move(e);
  Expected<int64_t> experts = integerAttr("num_experts");
  if (!experts)
    return experts.takeError();
  if (*experts <= 0)
    return fail("attribute 'num_experts' must be positive");
  const T *drows = inReal(0);
  const int64_t *indices = inInt(1);
  T *dx = outReal(0);
  int64_t numExperts = *experts;
  cpu::MoERoutingShape shape{tokens, topK, dim};
  return Body([=]() -> Error {
    if (Error e =
            checkRange(indices, tokens * topK, 0, numExperts, "expert index"))
      return e;
    cpu::moeDispatchBackward<T, int64_t>(drows, indices, shape, dx);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileMoECombineGrad() -> Expected<Body> {
  if (Error e = arity(4, 4, 2))
    return std::move(e);
  if (Error e = floats({0, 1, 3}, {0, 1}))
    return std::move(e);
  if (Error e = intOperand(2))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  int64_t tokens = in(1).shape[0], topK = in(1).shape[1], dim = in(0).shape[1];
  if (Error e = operandShape(0, {tokens * topK, dim}))
    return std::move(e);
  if (Error e = operandShape(2, {tokens, topK}))
    return std::move(e);
  if (Error e = operandShape(3, {tokens, dim}))
    return std::move(e);
  if (Error e = resultShape(0, in(0).shape))
    return std::move(e);
  if (Error e = resultShape(1, in(1).shape))
    return std::move(e);
  Expected<Precision> p = precisionAttr(/*fp8Supported=*/false);
  if (!p)
    return p.takeError();
  const T *rows = inReal(0), *weights = inReal(1), *dy = inReal(3);
  const int64_t *indices = inInt(2);
  T *drows = outReal(0), *dweights = outReal(1);
  cpu::MoERoutingShape shape{tokens, topK, dim};
  bool bf16 = p->format == Precision::BF16;
  return Body([=]() -> Error {
    if (Error e =
            checkRange(indices, tokens * topK, 0, kMaxExperts, "expert index"))
      return e;
    // BF16, as the combine: the rows as it read them, their gradient
    // rounded.
    std::vector<T> rounded;
    if (bf16)
      rounded = roundedCopy(rows, tokens * topK * dim);
    cpu::moeCombineBackward<T, int64_t>(bf16 ? rounded.data() : rows, weights,
                                        indices, dy, shape, drows, dweights);
    if (bf16)
      roundToBF16(drows, tokens * topK * dim);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileCrossEntropyGrad() -> Expected<Body> {
  if (Error e = arity(3, 3, 1))
    return std::move(e);
  if (Error e = floats({0, 2}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  llvm::ArrayRef<int64_t> ls = in(0).shape;
  int64_t vocab = ls.back(), tokens = product(ls.drop_back());
  if (Error e = operandShape(1, ls.drop_back()))
    return std::move(e);
  if (Error e = operandShape(2, {}))
    return std::move(e);
  if (Error e = resultShape(0, ls))
    return std::move(e);
  if (tokens == 0 || vocab == 0)
    return fail("the mean cross-entropy needs at least one token and one "
                "class");
  const T *logits = inReal(0), *dloss = inReal(2);
  const int64_t *labels = inInt(1);
  T *dlogits = outReal(0);
  return Body([=]() -> Error {
    if (Error e = checkRange(labels, tokens, 0, vocab, "label"))
      return e;
    cpu::crossEntropyBackward<T, int64_t>(logits, labels, tokens, vocab, *dloss,
                                          dlogits);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::trainableParam() const
    -> Expected<ParamState<T> *> {
  Expected<std::string> name = stringAttr("param");
  if (!name)
    return name.takeError();
  ParamState<T> *p = s.lookup(*name);
  if (!p)
    return fail("unknown parameter '" + *name +
                "' (not in the program's parameter table)");
  if (!p->trainable())
    return fail("parameter '" + *name + "' is frozen: it has no gradient");
  return p;
}

template <typename T>
auto InstructionCompiler<T>::compileGradAccumulate() -> Expected<Body> {
  if (Error e = arity(1, 1, 0))
    return std::move(e);
  if (Error e = floatOperand(0))
    return std::move(e);
  Expected<ParamState<T> *> p = trainableParam();
  if (!p)
    return p.takeError();
  if (Error e = operandShape(0, (*p)->param->shape))
    return std::move(e);
  const T *grad = inReal(0);
  ParamState<T> *state = *p;
  State &st = s;
  return Body([=, &st]() -> Error {
    if (!state->held)
      return makeError("the gradient of parameter '" + state->param->name +
                       "' was released (another rank's parameter)");
    // Of a parameter held in part, the elements held (the others' are
    // zero: local_experts_grad's).
    int64_t n = state->grad.size();
    const T *from = grad + state->heldBegin;
    if constexpr (std::is_same_v<T, float>) {
      cpu::accumulateGradient(state->grad.data(), from, n);
    } else {
      for (int64_t i = 0; i < n; ++i)
        state->grad[i] += from[i];
    }
    if (st.onGradient)
      st.onGradient(state->param->name);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileAdamWStep() -> Expected<Body> {
  if (Error e = arity(2, 2, 0))
    return std::move(e);
  if (Error e = floatOperand(0))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = operandShape(0, {}))
    return std::move(e);
  if (Error e = operandShape(1, {}))
    return std::move(e);
  Expected<ParamState<T> *> p = trainableParam();
  if (!p)
    return p.takeError();
  double hyper[4];
  const char *names[4] = {"beta1", "beta2", "eps", "weight_decay"};
  for (int i = 0; i < 4; ++i) {
    Expected<double> v = numberAttr(names[i]);
    if (!v)
      return v.takeError();
    hyper[i] = *v;
  }
  if (!(hyper[0] >= 0 && hyper[0] < 1) || !(hyper[1] >= 0 && hyper[1] < 1))
    return fail("beta1 and beta2 must lie in [0, 1)");
  if (!(hyper[2] > 0))
    return fail("attribute 'eps' must be positive");
  if (!(hyper[3] >= 0))
    return fail("attribute 'weight_decay' must be non-negative");
  if (const json::Value *type = attr("param_type")) {
    // The op's own record of the parameter's type, when the compiler
    // passes it: it must agree with the parameter table.
    const json::Object *o = type->getAsObject();
    const json::Array *shape = o ? o->getArray("shape") : nullptr;
    std::vector<int64_t> dims;
    for (size_t i = 0; shape && i < shape->size(); ++i)
      dims.push_back((*shape)[i].getAsInteger().value_or(-1));
    if (!shape || dims != (*p)->param->shape)
      return fail("attribute 'param_type' does not match the parameter's "
                  "shape " +
                  shapeString((*p)->param->shape));
  }
  const T *lr = inReal(0);
  const int64_t *step = inInt(1);
  ParamState<T> *state = *p;
  double beta1 = hyper[0], beta2 = hyper[1], eps = hyper[2], wd = hyper[3];
  return Body([=]() -> Error {
    if (!state->updatedHere) { // another rank's shard
      std::fill(state->grad.begin(), state->grad.end(), T(0));
      return Error::success();
    }
    if (!state->momentsHeld || !state->held)
      return makeError("the AdamW moments of '" + state->param->name +
                       "' were released (another rank's ZeRO-1 shard)");
    if constexpr (std::is_same_v<T, float>) {
      if (*step < 1)
        return makeError("step " + Twine(*step) +
                         " is out of range: AdamW steps count from 1");
      cpu::AdamWConfig config;
      config.lr = float(*lr);
      config.beta1 = float(beta1);
      config.beta2 = float(beta2);
      config.eps = float(eps);
      config.weightDecay = float(wd);
      // Elements [begin, end) of the parameter, which it holds from
      // heldBegin on, and their moments from momentsBegin on (checked at
      // creation; setOptimizerRanges may have widened the range since).
      int64_t n = state->master.size(), first = state->heldBegin;
      int64_t begin = state->updateBegin,
              end = state->updateEnd < 0 ? state->param->numElements()
                                         : state->updateEnd;
      int64_t moment = begin - state->momentsBegin;
      if (begin < first || end > first + n || moment < 0 ||
          moment + (end - begin) > int64_t(state->m.size()))
        return makeError(
            llvm::formatv("it updates elements [{0}, {1}) of '{2}' but "
                          "holds the weights of [{3}, {4}) and the "
                          "moments of [{5}, {6})",
                          begin, end, state->param->name, first, first + n,
                          state->momentsBegin,
                          state->momentsBegin + int64_t(state->m.size()))
                .str());
      cpu::adamwStep(state->master.data() + (begin - first),
                     state->grad.data() + (begin - first),
                     state->m.data() + moment, state->v.data() + moment,
                     end - begin, *step, config);
      cpu::zeroGradient(state->grad.data(), n);
      return Error::success();
    } else {
      (void)lr, (void)step, (void)state, (void)beta1, (void)beta2, (void)eps,
          (void)wd;
      // Refused when run, not when created: an FP64 reference (gradient
      // checks) loads the whole program but never steps the optimizer.
      return makeError("AdamW runs in float (FP32 master weights, BF16 "
                       "moments); this executor computes in double");
    }
  });
}

template <typename T>
Error InstructionCompiler<T>::sameStorage(const Buffer &a, const Buffer &b,
                                          StringRef what) const {
  if (a.dtype != b.dtype)
    return fail(what + ": element types differ (" + toString(a.dtype) +
                " and " + toString(b.dtype) + ")");
  return Error::success();
}

/// Copies n elements of buffer `from` into buffer `to`, on the storage
/// their dtype uses.
template <typename T>
static std::function<void()> copyBody(typename CpuExecutor<T>::State &s,
                                      int64_t from, int64_t to, bool isInt) {
  if (isInt) {
    const int64_t *src = s.integer(from);
    int64_t *dst = s.integer(to);
    int64_t n = s.count(from);
    return [=] { std::copy(src, src + n, dst); };
  }
  const T *src = s.real(from);
  T *dst = s.real(to);
  int64_t n = s.count(from);
  return [=] { std::copy(src, src + n, dst); };
}

template <typename T>
auto InstructionCompiler<T>::compileReshape(bool expand) -> Expected<Body> {
  if (Error e = arity(1, 1, 1))
    return std::move(e);
  if (Error e = sameStorage(in(0), out(0), "operand and result"))
    return std::move(e);
  if (in(0).numElements() != out(0).numElements())
    return fail(operandName(0) + " and " + resultName(0) +
                " hold different numbers of elements");
  if (attr("reassociation")) {
    // Each group of the expanded shape's dimensions multiplies to one
    // dimension of the collapsed shape.
    const std::vector<int64_t> &big = expand ? out(0).shape : in(0).shape;
    const std::vector<int64_t> &small = expand ? in(0).shape : out(0).shape;
    const json::Array *groups = attr("reassociation")->getAsArray();
    if (!groups || groups->size() != small.size())
      return fail("attribute 'reassociation': expected " + Twine(small.size()) +
                  " groups of dimensions");
    int64_t next = 0;
    for (size_t g = 0; g < groups->size(); ++g) {
      const json::Array *dims = (*groups)[g].getAsArray();
      if (!dims)
        return fail("attribute 'reassociation': expected arrays of integers");
      int64_t size = 1;
      for (const json::Value &d : *dims) {
        std::optional<int64_t> i = d.getAsInteger();
        if (!i || *i != next || *i >= int64_t(big.size()))
          return fail("attribute 'reassociation': groups must list the "
                      "dimensions 0.." +
                      Twine(int64_t(big.size()) - 1) + " in order");
        size *= big[*i];
        ++next;
      }
      if (size != small[g])
        return fail("attribute 'reassociation': group " + Twine(g) +
                    " multiplies to " + Twine(size) + ", expected " +
                    Twine(small[g]));
    }
    if (next != int64_t(big.size()))
      return fail("attribute 'reassociation': groups must list the "
                  "dimensions 0.." +
                  Twine(int64_t(big.size()) - 1) + " in order");
  }
  std::function<void()> copy =
      copyBody<T>(s, inst.operands[0], inst.results[0], isIntType(in(0).dtype));
  return Body([copy]() -> Error {
    copy();
    return Error::success();
  });
}

template <typename T>
bool InstructionCompiler<T>::matchesSizes(llvm::ArrayRef<int64_t> shape,
                                          llvm::ArrayRef<int64_t> sizes) {
  // Greedy: each dimension of `shape` takes the next size; unit sizes that
  // do not match may be skipped.
  size_t j = 0;
  for (int64_t size : sizes) {
    if (j < shape.size() && shape[j] == size)
      ++j;
    else if (size != 1)
      return false;
  }
  return j == shape.size();
}

template <typename T>
auto InstructionCompiler<T>::sliceAttrs(llvm::ArrayRef<int64_t> full) const
    -> Expected<Slice> {
  Slice slice;
  slice.full = full;
  const char *names[3] = {"static_offsets", "static_sizes", "static_strides"};
  std::vector<int64_t> *slots[3] = {&slice.offsets, &slice.sizes,
                                    &slice.strides};
  for (int i = 0; i < 3; ++i) {
    Expected<std::vector<int64_t>> v = intArrayAttr(names[i]);
    if (!v)
      return v.takeError();
    if (v->size() != full.size())
      return fail("attribute '" + Twine(names[i]) + "': expected " +
                  Twine(full.size()) + " values (the rank), got " +
                  Twine(v->size()));
    *slots[i] = std::move(*v);
  }
  for (size_t d = 0; d < full.size(); ++d) {
    int64_t off = slice.offsets[d], size = slice.sizes[d],
            stride = slice.strides[d];
    // Dynamic values (ShapedType::kDynamic, INT64_MIN) fail here too: the
    // runtime runs static slices only.
    if (off < 0 || size < 0 || stride < 1)
      return fail("dimension " + Twine(d) + " of the slice (offset " +
                  Twine(off) + ", size " + Twine(size) + ", stride " +
                  Twine(stride) +
                  ") is dynamic or negative; expected static offsets and "
                  "sizes >= 0 and strides >= 1");
    if (size > 0 && (off + (size - 1) * stride >= full[d]))
      return fail("dimension " + Twine(d) + " of the slice (offset " +
                  Twine(off) + ", size " + Twine(size) + ", stride " +
                  Twine(stride) + ") runs past the tensor's size " +
                  Twine(full[d]));
  }
  return slice;
}

template <typename T>
auto InstructionCompiler<T>::compileExtractSlice() -> Expected<Body> {
  if (Error e = arity(1, 1, 1)) {
    llvm::consumeError(std::move(e));
    return fail("expected a static slice: one operand (the source) and one "
                "result");
  }
  if (Error e = sameStorage(in(0), out(0), "source and result"))
    return std::move(e);
  Expected<Slice> slice = sliceAttrs(in(0).shape);
  if (!slice)
    return slice.takeError();
  if (!matchesSizes(out(0).shape, slice->sizes))
    return fail(resultName(0) + ": expected the slice sizes " +
                shapeString(slice->sizes) +
                " (unit dimensions may be dropped)");
  Slice sl = *slice;
  bool isInt = isIntType(in(0).dtype);
  int64_t src = inst.operands[0], dst = inst.results[0];
  State &st = s;
  return Body([=, &st]() -> Error {
    auto gather = [&](const auto *from, auto *to) {
      forEachSliceElement(sl.offsets, sl.sizes, sl.strides, sl.full,
                          [&](int64_t i, int64_t at) { to[i] = from[at]; });
    };
    if (isInt)
      gather(st.integer(src), st.integer(dst));
    else
      gather(st.real(src), st.real(dst));
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileInsertSlice() -> Expected<Body> {
  if (Error e = arity(2, 2, 1)) {
    llvm::consumeError(std::move(e));
    return fail("expected a static slice: two operands (source, dest) and "
                "one result");
  }
  if (Error e = sameStorage(in(0), in(1), "source and dest"))
    return std::move(e);
  if (Error e = sameStorage(in(1), out(0), "dest and result"))
    return std::move(e);
  if (Error e = resultShape(0, in(1).shape))
    return std::move(e);
  Expected<Slice> slice = sliceAttrs(in(1).shape);
  if (!slice)
    return slice.takeError();
  if (!matchesSizes(in(0).shape, slice->sizes))
    return fail(operandName(0) + ": expected the slice sizes " +
                shapeString(slice->sizes) +
                " (unit dimensions may be dropped)");
  Slice sl = *slice;
  bool isInt = isIntType(in(0).dtype);
  int64_t src = inst.operands[0], dest = inst.operands[1],
          dst = inst.results[0];
  State &st = s;
  return Body([=, &st]() -> Error {
    auto scatter = [&](const auto *from, const auto *base, auto *to,
                       int64_t n) {
      std::copy(base, base + n, to);
      forEachSliceElement(sl.offsets, sl.sizes, sl.strides, sl.full,
                          [&](int64_t i, int64_t at) { to[at] = from[i]; });
    };
    int64_t n = product(sl.full);
    if (isInt)
      scatter(st.integer(src), st.integer(dest), st.integer(dst), n);
    else
      scatter(st.real(src), st.real(dest), st.real(dst), n);
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileConcat() -> Expected<Body> {
  if (Error e = arity(1, SIZE_MAX, 1))
    return std::move(e);
  Expected<int64_t> dimAttr = integerAttr("dim");
  if (!dimAttr)
    return dimAttr.takeError();
  size_t rank = out(0).shape.size();
  if (*dimAttr < 0 || size_t(*dimAttr) >= rank)
    return fail("attribute 'dim' = " + Twine(*dimAttr) +
                " is out of range for rank " + Twine(rank));
  size_t dim = *dimAttr;
  std::vector<int64_t> expected = out(0).shape;
  expected[dim] = 0;
  for (size_t i = 0; i < inst.operands.size(); ++i) {
    if (Error e = sameStorage(in(i), out(0), operandName(i) + " and result"))
      return std::move(e);
    std::vector<int64_t> shape = in(i).shape;
    if (shape.size() != rank)
      return fail(operandName(i) + ": expected rank " + Twine(rank));
    expected[dim] += shape[dim];
    shape[dim] = out(0).shape[dim];
    if (shape != out(0).shape)
      return fail(operandName(i) + ": expected the result's sizes " +
                  shapeString(out(0).shape) + " except along dimension " +
                  Twine(dim));
  }
  if (Error e = resultShape(0, expected))
    return std::move(e);
  // Copy row-major chunks: for each index of the leading dimensions, each
  // input contributes its [dim:] block in turn.
  int64_t outer =
      product(llvm::ArrayRef<int64_t>(out(0).shape).take_front(dim));
  int64_t inner =
      product(llvm::ArrayRef<int64_t>(out(0).shape).drop_front(dim + 1));
  std::vector<std::pair<int64_t, int64_t>> inputs; // (buffer, block size)
  for (size_t i = 0; i < inst.operands.size(); ++i)
    inputs.push_back({inst.operands[i], in(i).shape[dim] * inner});
  bool isInt = isIntType(out(0).dtype);
  int64_t dst = inst.results[0];
  State &st = s;
  return Body([=, &st]() -> Error {
    auto concat = [&](auto getPtr) {
      auto *to = getPtr(dst);
      for (int64_t o = 0; o < outer; ++o)
        for (const auto &[buffer, block] : inputs) {
          const auto *from = getPtr(buffer) + o * block;
          to = std::copy(from, from + block, to);
        }
    };
    if (isInt)
      concat([&](int64_t b) { return st.integer(b); });
    else
      concat([&](int64_t b) { return st.real(b); });
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileEmpty() -> Expected<Body> {
  if (Error e = arity(0, 0, 1)) {
    llvm::consumeError(std::move(e));
    return fail("expected a static tensor.empty: no operands, one result");
  }
  // Its contents are undefined; the buffer keeps the zeros it was created
  // with (no instruction writes another's result).
  return Body([]() -> Error { return Error::success(); });
}

template <typename T>
auto InstructionCompiler<T>::compileArith(char op) -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0, 1}, {0}))
    return std::move(e);
  if (Error e = operandShape(1, in(0).shape))
    return std::move(e);
  if (Error e = resultShape(0, in(0).shape))
    return std::move(e);
  const T *a = inReal(0), *b = inReal(1);
  T *y = outReal(0);
  int64_t n = in(0).numElements();
  return Body([=]() -> Error {
    switch (op) {
    case '+':
      for (int64_t i = 0; i < n; ++i)
        y[i] = a[i] + b[i];
      break;
    case '-':
      for (int64_t i = 0; i < n; ++i)
        y[i] = a[i] - b[i];
      break;
    case '*':
      for (int64_t i = 0; i < n; ++i)
        y[i] = a[i] * b[i];
      break;
    default:
      for (int64_t i = 0; i < n; ++i)
        y[i] = a[i] / b[i];
      break;
    }
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileNegf() -> Expected<Body> {
  if (Error e = arity(1, 1, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = resultShape(0, in(0).shape))
    return std::move(e);
  const T *a = inReal(0);
  T *y = outReal(0);
  int64_t n = in(0).numElements();
  return Body([=]() -> Error {
    for (int64_t i = 0; i < n; ++i)
      y[i] = -a[i];
    return Error::success();
  });
}

//===----------------------------------------------------------------------===//
// The op table
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// Expert parallelism
//===----------------------------------------------------------------------===//

namespace {
/// The executor's exchange, checked against the group size the program was
/// compiled for.
template <typename T>
Expected<ExpertExchange<T> *> groupExchange(ExpertExchange<T> *ex,
                                            int64_t ranks) {
  if (!ex)
    return makeError("the program was compiled for expert parallelism over " +
                     Twine(ranks) +
                     " ranks and needs its group: run it on octet-run's ranks "
                     "(--pipeline=threads, the default)");
  if (ex->getGroupSize() != ranks)
    return makeError("the program was compiled for expert parallelism over " +
                     Twine(ranks) + " ranks, but the group has " +
                     Twine(ex->getGroupSize()));
  return ex;
}
} // namespace

template <typename T>
auto InstructionCompiler<T>::ranksAttr() const -> Expected<int64_t> {
  Expected<int64_t> ranks = integerAttr("ranks");
  if (!ranks)
    return ranks.takeError();
  if (*ranks < 1)
    return fail("attribute 'ranks' must be positive");
  return *ranks;
}

template <typename T>
auto InstructionCompiler<T>::wireAttr() const -> Expected<Wire> {
  Expected<std::string> name = stringAttr("wire");
  if (!name)
    return name.takeError();
  std::optional<Wire> wire = parseWire(*name);
  if (!wire)
    return fail("attribute 'wire' must be f32, bf16, e4m3 or e5m2, got '" +
                *name + "'");
  // An FP8 wire is exact for FP8 linears, which only a float executor
  // emulates.
  if (!std::is_same_v<T, float> && (*wire == Wire::E4M3 || *wire == Wire::E5M2))
    return fail("FP8/BF16 emulation runs in float; this executor computes in "
                "double (use a float executor, or an f32 recipe)");
  return *wire;
}

template <typename T>
auto InstructionCompiler<T>::compileExpertDispatch() -> Expected<Body> {
  if (Error e = arity(2, 2, 3))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = intResult(1))
    return std::move(e);
  if (Error e = intResult(2))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 1))
    return std::move(e);
  Expected<int64_t> g = ranksAttr();
  if (!g)
    return g.takeError();
  Expected<Wire> w = wireAttr();
  if (!w)
    return w.takeError();
  int64_t rows = in(0).shape[0], width = in(0).shape[1];
  int64_t experts = in(1).shape[0], ranks = *g;
  if (experts % ranks != 0)
    return fail("the " + Twine(experts) + " experts do not split over " +
                Twine(ranks) + " ranks");
  int64_t local = experts / ranks;
  if (Error e = resultShape(0, {ranks * rows, width}))
    return std::move(e);
  if (Error e = resultShape(1, {local}))
    return std::move(e);
  if (Error e = resultShape(2, {ranks, local}))
    return std::move(e);
  const T *x = inReal(0);
  const int64_t *sizes = inInt(1);
  T *received = outReal(0);
  int64_t *localSizes = outInt(1), *layout = outInt(2);
  Wire wire = *w;
  std::string tag = exchangeTag();
  State &st = s;
  return Body([=, &st]() -> Error {
    using Message = typename ExpertExchange<T>::Message;
    Expected<ExpertExchange<T> *> ex = groupExchange(st.experts, ranks);
    if (!ex)
      return ex.takeError();
    Expected<int64_t> total = checkGroupSizes(sizes, experts, rows);
    if (!total)
      return total.takeError();
    // Rows are sorted by expert, so each owner's are one range.
    std::vector<Message> send(ranks);
    int64_t row = 0;
    for (int64_t o = 0; o < ranks; ++o) {
      Message &m = send[o];
      m.tag = tag;
      m.sizes.assign(sizes + o * local, sizes + (o + 1) * local);
      int64_t n = rowsOf(m);
      encodeRows(wire, x + row * width, n, width, m.bytes);
      row += n;
    }
    Expected<std::vector<Message>> got = (*ex)->allToAll(std::move(send));
    if (!got)
      return got.takeError();
    if (Error e = checkMessages<T>(*got, ranks, tag, local, wire, width))
      return e;
    // By local expert, then by sender.
    std::fill(localSizes, localSizes + local, 0);
    for (int64_t p = 0; p < ranks; ++p)
      for (int64_t e = 0; e < local; ++e) {
        layout[p * local + e] = (*got)[p].sizes[e];
        localSizes[e] += (*got)[p].sizes[e];
      }
    std::vector<int64_t> at(local, 0);
    for (int64_t e = 1; e < local; ++e)
      at[e] = at[e - 1] + localSizes[e - 1];
    int64_t end = at.empty() ? 0 : at.back() + localSizes[local - 1];
    if (end > ranks * rows)
      return makeError("the group sent " + Twine(end) + " rows, more than " +
                       Twine(ranks * rows));
    std::vector<T> decoded;
    for (int64_t p = 0; p < ranks; ++p) {
      const Message &m = (*got)[p];
      int64_t n = rowsOf(m);
      decoded.resize(n * width);
      decodeRows(wire, m.bytes.data(), n, width, decoded.data());
      const T *from = decoded.data();
      for (int64_t e = 0; e < local; ++e) {
        std::copy(from, from + m.sizes[e] * width, received + at[e] * width);
        from += m.sizes[e] * width;
        at[e] += m.sizes[e];
      }
    }
    std::fill(received + end * width, received + ranks * rows * width, T(0));
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileExpertCombine() -> Expected<Body> {
  if (Error e = arity(2, 2, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = intOperand(1))
    return std::move(e);
  if (Error e = rankIs(0, 2))
    return std::move(e);
  if (Error e = rankIs(1, 2))
    return std::move(e);
  Expected<int64_t> g = ranksAttr();
  if (!g)
    return g.takeError();
  Expected<Wire> w = wireAttr();
  if (!w)
    return w.takeError();
  int64_t capacity = in(0).shape[0], width = in(0).shape[1], ranks = *g;
  int64_t local = in(1).shape[1];
  if (Error e = operandShape(1, {ranks, local}))
    return std::move(e);
  if (capacity % ranks != 0)
    return fail("the owner's " + Twine(capacity) + " rows do not split over " +
                Twine(ranks) + " ranks");
  int64_t rows = capacity / ranks;
  if (Error e = resultShape(0, {rows, width}))
    return std::move(e);
  const T *x = inReal(0);
  const int64_t *layout = inInt(1);
  T *result = outReal(0);
  Wire wire = *w;
  std::string tag = exchangeTag();
  State &st = s;
  return Body([=, &st]() -> Error {
    using Message = typename ExpertExchange<T>::Message;
    Expected<ExpertExchange<T> *> ex = groupExchange(st.experts, ranks);
    if (!ex)
      return ex.takeError();
    // Where each (local expert, sender) run starts in the owner's rows.
    std::vector<int64_t> at(local * ranks);
    int64_t row = 0;
    for (int64_t e = 0; e < local; ++e)
      for (int64_t p = 0; p < ranks; ++p) {
        int64_t n = layout[p * local + e];
        if (n < 0 || row + n > capacity)
          return makeError("the layout does not fit the " + Twine(capacity) +
                           " rows (a negative count or too many rows)");
        at[e * ranks + p] = row;
        row += n;
      }
    // Each sender's rows, gathered expert by expert, travel as one block.
    std::vector<Message> send(ranks);
    std::vector<T> rowsOfPeer;
    for (int64_t p = 0; p < ranks; ++p) {
      Message &m = send[p];
      m.tag = tag;
      m.sizes.assign(layout + p * local, layout + (p + 1) * local);
      rowsOfPeer.clear();
      for (int64_t e = 0; e < local; ++e) {
        const T *from = x + at[e * ranks + p] * width;
        rowsOfPeer.insert(rowsOfPeer.end(), from, from + m.sizes[e] * width);
      }
      int64_t n = rowsOf(m);
      encodeRows(wire, rowsOfPeer.data(), n, width, m.bytes);
    }
    Expected<std::vector<Message>> got = (*ex)->allToAll(std::move(send));
    if (!got)
      return got.takeError();
    if (Error e = checkMessages<T>(*got, ranks, tag, local, wire, width))
      return e;
    // Owner by owner: the order this rank dispatched its rows in.
    int64_t out = 0;
    for (int64_t o = 0; o < ranks; ++o) {
      const Message &m = (*got)[o];
      int64_t n = rowsOf(m);
      if (out + n > rows)
        return makeError("the group returned more than the " + Twine(rows) +
                         " rows this rank dispatched");
      decodeRows(wire, m.bytes.data(), n, width, result + out * width);
      out += n;
    }
    std::fill(result + out * width, result + rows * width, T(0));
    return Error::success();
  });
}

template <typename T>
auto InstructionCompiler<T>::compileLocalExperts(bool grad) -> Expected<Body> {
  if (Error e = arity(1, 1, 1))
    return std::move(e);
  if (Error e = floats({0}, {0}))
    return std::move(e);
  if (Error e = rankAtLeast(0, 1))
    return std::move(e);
  Expected<int64_t> g = ranksAttr();
  if (!g)
    return g.takeError();
  int64_t ranks = *g;
  std::vector<int64_t> whole = grad ? out(0).shape : in(0).shape;
  if (whole.empty() || whole[0] % ranks != 0)
    return fail("the experts do not split over " + Twine(ranks) + " ranks");
  std::vector<int64_t> part = whole;
  part[0] /= ranks;
  if (Error e = grad ? operandShape(0, part) : resultShape(0, part))
    return std::move(e);
  int64_t share = product(part);
  const T *x = inReal(0);
  T *y = outReal(0);
  State &st = s;
  return Body([=, &st]() -> Error {
    Expected<ExpertExchange<T> *> ex = groupExchange(st.experts, ranks);
    if (!ex)
      return ex.takeError();
    int64_t first = (*ex)->getGroupRank() * share;
    if (!grad) {
      std::copy(x + first, x + first + share, y);
      return Error::success();
    }
    std::fill(y, y + ranks * share, T(0));
    std::copy(x, x + share, y + first);
    return Error::success();
  });
}

namespace {
// Sorted, for the docs and for the "supported ops" list in errors.
const StringRef kOps[] = {
    "arith.addf",
    "arith.divf",
    "arith.mulf",
    "arith.negf",
    "arith.subf",
    "octet.adamw_step",
    "octet.add",
    "octet.batch_matmul",
    "octet.batch_matmul_grad",
    "octet.bias_grad",
    "octet.causal_attention",
    "octet.causal_attention_grad",
    "octet.cross_entropy",
    "octet.cross_entropy_grad",
    "octet.embedding",
    "octet.embedding_grad",
    "octet.grad_accumulate",
    "octet.grouped_linear",
    "octet.grouped_linear_dgrad",
    "octet.grouped_linear_wgrad",
    "octet.linear",
    "octet.linear_dgrad",
    "octet.linear_wgrad",
    "octet.moe_combine",
    "octet.moe_combine_grad",
    "octet.moe_dispatch",
    "octet.moe_dispatch_grad",
    "octet.moe_gate",
    "octet.moe_gate_grad",
    "octet.param",
    "octet.rmsnorm",
    "octet.rmsnorm_grad",
    "octet.rotary",
    "octet.rotary_grad",
    "octet.swiglu",
    "octet.swiglu_grad",
    "octet_pipe.expert_combine",
    "octet_pipe.expert_dispatch",
    "octet_pipe.local_experts",
    "octet_pipe.local_experts_grad",
    "tensor.collapse_shape",
    "tensor.concat",
    "tensor.empty",
    "tensor.expand_shape",
    "tensor.extract_slice",
    "tensor.insert_slice",
};
} // namespace

llvm::ArrayRef<StringRef> octet::runtime::cpuExecutorOps() { return kOps; }

template <typename T> auto InstructionCompiler<T>::compile() -> Expected<Body> {
  StringRef op = inst.op;
  if (op == "octet.param")
    return compileParam();
  if (op == "octet.embedding")
    return compileEmbedding();
  if (op == "octet.linear")
    return compileLinear();
  if (op == "octet.batch_matmul")
    return compileBatchMatmul();
  if (op == "octet.grouped_linear")
    return compileGroupedLinear();
  if (op == "octet.rmsnorm")
    return compileRMSNorm();
  if (op == "octet.rotary")
    return compileRotary(/*backward=*/false);
  if (op == "octet.causal_attention")
    return compileAttention();
  if (op == "octet.swiglu")
    return compileElementwise2(/*swiglu=*/true);
  if (op == "octet.add")
    return compileElementwise2(/*swiglu=*/false);
  if (op == "octet.moe_gate")
    return compileMoEGate();
  if (op == "octet.moe_dispatch")
    return compileMoEDispatch();
  if (op == "octet.moe_combine")
    return compileMoECombine();
  if (op == "octet.cross_entropy")
    return compileCrossEntropy();
  if (op == "octet.embedding_grad")
    return compileEmbeddingGrad();
  if (op == "octet.linear_dgrad")
    return compileLinearDgrad();
  if (op == "octet.linear_wgrad")
    return compileLinearWgrad();
  if (op == "octet.bias_grad")
    return compileBiasGrad();
  if (op == "octet.batch_matmul_grad")
    return compileBatchMatmulGrad();
  if (op == "octet.grouped_linear_dgrad")
    return compileGroupedLinearDgrad();
  if (op == "octet.grouped_linear_wgrad")
    return compileGroupedLinearWgrad();
  if (op == "octet.rmsnorm_grad")
    return compileRMSNormGrad();
  if (op == "octet.rotary_grad")
    return compileRotary(/*backward=*/true);
  if (op == "octet.causal_attention_grad")
    return compileAttentionGrad();
  if (op == "octet.swiglu_grad")
    return compileSwiGLUGrad();
  if (op == "octet.moe_gate_grad")
    return compileMoEGateGrad();
  if (op == "octet.moe_dispatch_grad")
    return compileMoEDispatchGrad();
  if (op == "octet.moe_combine_grad")
    return compileMoECombineGrad();
  if (op == "octet.cross_entropy_grad")
    return compileCrossEntropyGrad();
  if (op == "octet.grad_accumulate")
    return compileGradAccumulate();
  if (op == "octet.adamw_step")
    return compileAdamWStep();
  if (op == "tensor.expand_shape")
    return compileReshape(/*expand=*/true);
  if (op == "tensor.collapse_shape")
    return compileReshape(/*expand=*/false);
  if (op == "tensor.extract_slice")
    return compileExtractSlice();
  if (op == "tensor.insert_slice")
    return compileInsertSlice();
  if (op == "tensor.concat")
    return compileConcat();
  if (op == "tensor.empty")
    return compileEmpty();
  if (op == "arith.addf")
    return compileArith('+');
  if (op == "arith.subf")
    return compileArith('-');
  if (op == "arith.mulf")
    return compileArith('*');
  if (op == "arith.divf")
    return compileArith('/');
  if (op == "arith.negf")
    return compileNegf();
  if (op == "octet_pipe.expert_dispatch")
    return compileExpertDispatch();
  if (op == "octet_pipe.expert_combine")
    return compileExpertCombine();
  if (op == "octet_pipe.local_experts")
    return compileLocalExperts(/*grad=*/false);
  if (op == "octet_pipe.local_experts_grad")
    return compileLocalExperts(/*grad=*/true);
  return fail("unsupported op '" + op +
              "': the CPU backend does not run it (docs/program-format.md "
              "lists the ops it runs)");
}

//===----------------------------------------------------------------------===//
// Parameter initialisation
//===----------------------------------------------------------------------===//

namespace {

/// splitmix64 (Steele, Lea and Flood): a fast generator whose every output
/// is a bijective mix of a counter, so streams seeded differently do not
/// overlap in practice.
uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// FNV-1a, 64 bits: the parameter name's contribution to its stream.
uint64_t hashName(StringRef name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// Fills `out` with N(0, std^2) values by Box-Muller, from the stream of
/// (seed, name): elements [first, first + out.size()) of the parameter's.
/// Each pair of elements takes two draws, so a part skips the draws of the
/// pairs before it (splitmix64's state is a counter).
template <typename T>
void fillNormal(std::vector<T> &out, int64_t first, double std, uint64_t seed,
                StringRef name) {
  uint64_t mixed = seed;
  uint64_t state = splitmix64(mixed) ^ hashName(name);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  int64_t pair = first / 2, last = first + int64_t(out.size());
  state += uint64_t(2 * pair) * 0x9e3779b97f4a7c15ull;
  for (int64_t i = 2 * pair; i < last; i += 2) {
    // u1 in (0, 1] so that log(u1) is finite; u2 in [0, 1). 53 bits each.
    double u1 = double((splitmix64(state) >> 11) + 1) * 0x1.0p-53;
    double u2 = double(splitmix64(state) >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1));
    if (i >= first)
      out[i - first] = T(std * r * std::cos(kTwoPi * u2));
    if (i + 1 >= first && i + 1 < last)
      out[i + 1 - first] = T(std * r * std::sin(kTwoPi * u2));
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// CpuExecutor
//===----------------------------------------------------------------------===//

template <typename T>
CpuExecutor<T>::CpuExecutor(std::unique_ptr<State> state)
    : state(std::move(state)) {}
template <typename T>
CpuExecutor<T>::CpuExecutor(CpuExecutor &&) noexcept = default;
template <typename T>
CpuExecutor<T> &CpuExecutor<T>::operator=(CpuExecutor &&) noexcept = default;
template <typename T> CpuExecutor<T>::~CpuExecutor() = default;

template <typename T> const Program &CpuExecutor<T>::getProgram() const {
  return state->program;
}

template <typename T>
Expected<CpuExecutor<T>> CpuExecutor<T>::create(Program program,
                                                const Holding &holding) {
  auto s = std::make_unique<State>();
  s->program = std::move(program);
  const Program &p = s->program;

  // Storage, allocated once: the compiled steps point into it. Only the
  // buffers of the functions it runs; the values one function alone
  // computes share that function's arena by liveness (planMemory), the
  // others (arguments, constants, values several functions name) have
  // storage of their own.
  auto runs = [&](const Function &f) {
    return !holding.runs || holding.runs(f.name);
  };
  size_t numBuffers = p.buffers.size();
  std::vector<int64_t> refs(numBuffers, 0);
  std::vector<bool> pinned(numBuffers, false);
  for (const Constant &c : p.constants)
    pinned[c.buffer] = true;
  for (const Function &f : p.functions) {
    for (int64_t a : f.arguments)
      pinned[a] = true;
    if (!runs(f))
      continue;
    std::set<int64_t> ids(f.arguments.begin(), f.arguments.end());
    ids.insert(f.results.begin(), f.results.end());
    for (const Instruction &i : f.body) {
      ids.insert(i.operands.begin(), i.operands.end());
      ids.insert(i.results.begin(), i.results.end());
      // tensor.empty writes nothing: its buffer stays zero.
      if (i.op == "tensor.empty")
        for (int64_t r : i.results)
          pinned[r] = true;
    }
    for (int64_t id : ids)
      ++refs[id];
  }
  s->realAt.assign(numBuffers, nullptr);
  s->intAt.assign(numBuffers, nullptr);
  s->reals.resize(numBuffers);
  s->ints.resize(numBuffers);
  for (const Function &f : p.functions) {
    if (!runs(f) || !holding.reuseBuffers)
      continue;
    auto inArena = [&](int64_t id, bool integer) -> int64_t {
      if (pinned[id] || refs[id] != 1 ||
          isIntType(p.buffers[id].dtype) != integer)
        return 0;
      return integer ? int64_t(sizeof(int64_t)) : int64_t(sizeof(T));
    };
    // One arena of floats and one of integers, poisoned so that a value
    // read before it is written would show.
    auto place = [&](auto &arenas, auto &at, bool integer, auto poison) {
      using E = decltype(poison);
      MemoryPlan plan = planMemory(
          p, f, 64, [&](int64_t id) { return inArena(id, integer); });
      arenas.emplace_back(size_t(plan.arenaBytes) / sizeof(E), poison);
      for (const BufferPlacement &pl : plan.placements)
        at[pl.buffer] = arenas.back().data() + pl.offset / int64_t(sizeof(E));
    };
    place(s->realArenas, s->realAt, false, std::numeric_limits<T>::quiet_NaN());
    place(s->intArenas, s->intAt, true, std::numeric_limits<int64_t>::min());
  }
  for (size_t i = 0; i < numBuffers; ++i) {
    const Buffer &b = p.buffers[i];
    if (refs[i] == 0 || s->realAt[i] || s->intAt[i])
      continue;
    if (isIntType(b.dtype)) {
      s->ints[i].assign(b.numElements(), 0);
      s->intAt[i] = s->ints[i].data();
    } else {
      s->reals[i].assign(b.numElements(), T(0));
      s->realAt[i] = s->reals[i].data();
    }
  }
  for (const Constant &c : p.constants) {
    if (refs[c.buffer] == 0)
      continue;
    const Buffer &b = p.buffers[c.buffer];
    auto fill = [&](auto &storage) {
      using E = typename std::decay_t<decltype(storage)>::value_type;
      for (size_t i = 0; i < storage.size(); ++i)
        storage[i] = E(c.isSplat ? c.splat : c.values[i]);
    };
    if (isIntType(b.dtype)) {
      fill(s->ints[c.buffer]);
    } else {
      fill(s->reals[c.buffer]);
      if (b.dtype == BufferType::BF16)
        roundToBF16(s->reals[c.buffer].data(), b.numElements());
    }
  }

  s->params.resize(p.parameters.size());
  for (size_t i = 0; i < p.parameters.size(); ++i) {
    const Parameter &param = p.parameters[i];
    ParamState<T> &ps = s->params[i];
    ps.param = &param;
    int64_t n = param.numElements();
    ps.held = !holding.keeps || holding.keeps(param.name);
    std::optional<Range> r = holding.updates ? holding.updates(param.name)
                                             : std::optional<Range>(Range{});
    ps.updatedHere = r.has_value();
    ps.updateBegin = r ? std::clamp<int64_t>(r->begin, 0, n) : 0;
    ps.updateEnd = r && r->end >= 0 ? std::clamp<int64_t>(r->end, 0, n) : -1;
    ps.momentsHeld = ps.held && r.has_value();
    Range part = ps.held && holding.part ? holding.part(param.name) : Range{};
    ps.heldBegin = std::clamp<int64_t>(part.begin, 0, n);
    int64_t heldEnd =
        part.end < 0 ? n : std::clamp<int64_t>(part.end, ps.heldBegin, n);
    if (ps.updatedHere && ps.held &&
        (ps.updateBegin < ps.heldBegin ||
         (ps.updateEnd < 0 ? n : ps.updateEnd) > heldEnd))
      return makeError(llvm::formatv("parameter '{0}': this executor updates "
                                     "elements [{1}, {2}) of it "
                                     "but holds only [{3}, {4})",
                                     param.name, ps.updateBegin,
                                     ps.updateEnd < 0 ? n : ps.updateEnd,
                                     ps.heldBegin, heldEnd)
                           .str());
    if (ps.held)
      ps.master.assign(heldEnd - ps.heldBegin, T(0));
    if (ps.held && !param.frozen)
      ps.grad.assign(heldEnd - ps.heldBegin, T(0));
    if (ps.momentsHeld && !param.frozen) {
      // Only the moments of the elements it updates.
      int64_t end = ps.updateEnd < 0 ? n : ps.updateEnd;
      ps.momentsBegin = ps.updateBegin;
      ps.m.assign(std::max<int64_t>(0, end - ps.updateBegin), 0);
      ps.v.assign(ps.m.size(), 0);
    }
    s->paramIndex[param.name] = i;
  }

  s->functions.resize(p.functions.size());
  for (size_t fi = 0; fi < p.functions.size(); ++fi) {
    const Function &f = p.functions[fi];
    CompiledFunction &cf = s->functions[fi];
    cf.function = &f;
    s->functionIndex[f.name] = fi;
    cf.compiled = runs(f);
    for (size_t i = 0; cf.compiled && i < f.body.size(); ++i) {
      Expected<std::function<Error()>> body =
          InstructionCompiler<T>(*s, f, i).compile();
      if (!body)
        return body.takeError();
      Step step;
      step.index = i;
      step.op = f.body[i].op;
      step.body = std::move(*body);
      for (int64_t r : f.body[i].results)
        if (p.buffers[r].dtype == BufferType::BF16)
          step.bf16Results.push_back(r);
      cf.steps.push_back(std::move(step));
    }
  }
  return CpuExecutor(std::move(s));
}

template <typename T> void CpuExecutor<T>::initParameters(uint64_t seed) {
  for (ParamState<T> &ps : state->params) {
    const ParameterInit &init = ps.param->init;
    switch (init.kind) {
    case ParameterInit::Normal:
      fillNormal(ps.master, ps.heldBegin, init.std, seed, ps.param->name);
      break;
    case ParameterInit::Zeros:
      std::fill(ps.master.begin(), ps.master.end(), T(0));
      break;
    case ParameterInit::Ones:
      std::fill(ps.master.begin(), ps.master.end(), T(1));
      break;
    }
    std::fill(ps.grad.begin(), ps.grad.end(), T(0));
    std::fill(ps.m.begin(), ps.m.end(), 0);
    std::fill(ps.v.begin(), ps.v.end(), 0);
  }
}

template <typename T>
void CpuExecutor<T>::setExpertExchange(ExpertExchange<T> *exchange) {
  state->experts = exchange;
}

template <typename T>
void CpuExecutor<T>::setOptimizerShard(
    llvm::function_ref<bool(StringRef)> owns) {
  setOptimizerRanges([&](StringRef name) -> std::optional<Range> {
    if (!owns(name))
      return std::nullopt;
    return Range{0, -1};
  });
}

template <typename T>
void CpuExecutor<T>::setOptimizerRanges(
    llvm::function_ref<std::optional<Range>(StringRef)> owns) {
  for (ParamState<T> &ps : state->params) {
    std::optional<Range> r = owns(ps.param->name);
    int64_t n = ps.param->numElements();
    ps.updatedHere = r.has_value();
    ps.updateBegin = r ? std::clamp<int64_t>(r->begin, 0, n) : 0;
    ps.updateEnd = r && r->end >= 0 ? std::clamp<int64_t>(r->end, 0, n) : -1;
  }
}

template <typename T>
int64_t CpuExecutor<T>::getMomentOffset(StringRef name) const {
  const ParamState<T> *p = state->lookup(name);
  return p ? p->momentsBegin : 0;
}

template <typename T> int64_t CpuExecutor<T>::releaseUnownedMoments() {
  int64_t freed = 0;
  for (ParamState<T> &ps : state->params) {
    if (!ps.trainable() || !ps.momentsHeld)
      continue;
    if (ps.updatedHere) {
      // Of a parameter updated in part, only that part's.
      int64_t n = int64_t(ps.m.size()),
              begin = ps.updateBegin - ps.momentsBegin,
              end = ps.updateEnd < 0 ? n : ps.updateEnd - ps.momentsBegin;
      if (begin <= 0 && end >= n)
        continue;
      freed += (n - (end - begin)) * 4;
      ps.m = std::vector<uint16_t>(ps.m.begin() + begin, ps.m.begin() + end);
      ps.v = std::vector<uint16_t>(ps.v.begin() + begin, ps.v.begin() + end);
      ps.momentsBegin = ps.updateBegin;
      continue;
    }
    freed += int64_t(ps.m.size() + ps.v.size()) * 2;
    std::vector<uint16_t>().swap(ps.m);
    std::vector<uint16_t>().swap(ps.v);
    ps.momentsHeld = false;
  }
  return freed;
}

template <typename T>
int64_t
CpuExecutor<T>::releaseParameters(llvm::function_ref<bool(StringRef)> keep) {
  int64_t freed = 0;
  for (ParamState<T> &ps : state->params) {
    if (!ps.held || keep(ps.param->name))
      continue;
    freed += int64_t(ps.master.size() + ps.grad.size()) * int64_t(sizeof(T)) +
             int64_t(ps.m.size() + ps.v.size()) * 2;
    std::vector<T>().swap(ps.master);
    std::vector<T>().swap(ps.grad);
    std::vector<uint16_t>().swap(ps.m);
    std::vector<uint16_t>().swap(ps.v);
    ps.held = false;
    ps.momentsHeld = false;
  }
  return freed;
}

template <typename T> int64_t CpuExecutor<T>::getWeightBytes() const {
  int64_t bytes = 0;
  for (const ParamState<T> &ps : state->params)
    bytes += int64_t(ps.master.size() * sizeof(T));
  return bytes;
}

template <typename T> int64_t CpuExecutor<T>::getGradientBytes() const {
  int64_t bytes = 0;
  for (const ParamState<T> &ps : state->params)
    bytes += int64_t(ps.grad.size() * sizeof(T));
  return bytes;
}

template <typename T> int64_t CpuExecutor<T>::getBufferBytes() const {
  int64_t bytes = 0;
  for (const auto *list : {&state->reals, &state->realArenas})
    for (const std::vector<T> &r : *list)
      bytes += int64_t(r.size() * sizeof(T));
  for (const auto *list : {&state->ints, &state->intArenas})
    for (const std::vector<int64_t> &i : *list)
      bytes += int64_t(i.size() * sizeof(int64_t));
  return bytes;
}

template <typename T> int64_t CpuExecutor<T>::getMomentBytes() const {
  int64_t bytes = 0;
  for (const ParamState<T> &ps : state->params)
    bytes += int64_t(ps.m.size() + ps.v.size()) * 2;
  return bytes;
}

template <typename T>
void CpuExecutor<T>::setScaledGemmEngine(cpu::ScaledGemmEngine *engine) {
  state->gemmEngine = engine;
}

template <typename T>
cpu::ScaledGemmEngine *CpuExecutor<T>::getScaledGemmEngine() const {
  return state->gemmEngine;
}

template <typename T>
void CpuExecutor<T>::setDenseGemmEngine(cpu::DenseGemmEngine *engine) {
  state->denseEngine = engine;
}

template <typename T>
cpu::DenseGemmEngine *CpuExecutor<T>::getDenseGemmEngine() const {
  return state->denseEngine;
}

template <typename T>
void CpuExecutor<T>::setGradientCallback(
    std::function<void(StringRef)> fn) {
  state->onGradient = std::move(fn);
}

template <typename T> void CpuExecutor<T>::zeroGradients() {
  for (ParamState<T> &ps : state->params)
    std::fill(ps.grad.begin(), ps.grad.end(), T(0));
}

template <typename T>
std::optional<llvm::MutableArrayRef<T>>
CpuExecutor<T>::masterWeight(StringRef name) {
  ParamState<T> *p = state->lookup(name);
  if (!p || !p->held)
    return std::nullopt;
  return llvm::MutableArrayRef<T>(p->master);
}

template <typename T>
std::optional<llvm::MutableArrayRef<T>>
CpuExecutor<T>::gradient(StringRef name) {
  ParamState<T> *p = state->lookup(name);
  if (!p || !p->trainable() || !p->held)
    return std::nullopt;
  return llvm::MutableArrayRef<T>(p->grad);
}

template <typename T>
std::optional<llvm::MutableArrayRef<T>>
CpuExecutor<T>::masterWeight(StringRef name, int64_t begin, int64_t end) {
  ParamState<T> *p = state->lookup(name);
  if (!p || !p->held || begin < p->heldBegin || end < begin ||
      end - p->heldBegin > int64_t(p->master.size()))
    return std::nullopt;
  return llvm::MutableArrayRef<T>(p->master).slice(begin - p->heldBegin,
                                                   end - begin);
}

template <typename T>
std::optional<llvm::MutableArrayRef<T>>
CpuExecutor<T>::gradient(StringRef name, int64_t begin, int64_t end) {
  ParamState<T> *p = state->lookup(name);
  if (!p || !p->trainable() || !p->held || begin < p->heldBegin ||
      end < begin || end - p->heldBegin > int64_t(p->grad.size()))
    return std::nullopt;
  return llvm::MutableArrayRef<T>(p->grad).slice(begin - p->heldBegin,
                                                 end - begin);
}

template <typename T>
int64_t CpuExecutor<T>::getWeightOffset(StringRef name) const {
  const ParamState<T> *p = state->lookup(name);
  return p ? p->heldBegin : 0;
}

template <typename T>
std::optional<llvm::MutableArrayRef<uint16_t>>
CpuExecutor<T>::firstMoment(StringRef name) {
  ParamState<T> *p = state->lookup(name);
  if (!p || !p->trainable() || !p->momentsHeld)
    return std::nullopt;
  return llvm::MutableArrayRef<uint16_t>(p->m);
}

template <typename T>
std::optional<llvm::MutableArrayRef<uint16_t>>
CpuExecutor<T>::secondMoment(StringRef name) {
  ParamState<T> *p = state->lookup(name);
  if (!p || !p->trainable() || !p->momentsHeld)
    return std::nullopt;
  return llvm::MutableArrayRef<uint16_t>(p->v);
}

template <typename T>
Expected<std::vector<typename CpuExecutor<T>::Output>>
CpuExecutor<T>::run(StringRef name, llvm::ArrayRef<Argument> arguments) {
  State &s = *state;
  auto it = s.functionIndex.find(name);
  if (it == s.functionIndex.end()) {
    std::string names;
    for (const Function &f : s.program.functions)
      names += (names.empty() ? "" : ", ") + f.name;
    return makeError("the program has no function '" + name +
                     "' (it has: " + (names.empty() ? "none" : names) + ")");
  }
  const CompiledFunction &cf = s.functions[it->second];
  const Function &f = *cf.function;
  if (!cf.compiled)
    return makeError("function '" + f.name +
                     "' is not one this executor runs (another rank's)");
  if (arguments.size() != f.arguments.size())
    return makeError("function '" + f.name + "' takes " +
                     Twine(f.arguments.size()) + " arguments, got " +
                     Twine(arguments.size()));

  for (size_t i = 0; i < arguments.size(); ++i) {
    const Argument &a = arguments[i];
    int64_t id = f.arguments[i];
    const Buffer &b = s.program.buffers[id];
    auto fail = [&](const Twine &what) {
      return makeError("function '" + f.name + "', argument " + Twine(i) +
                       " (" + describe(b) + "): " + what);
    };
    if (int64_t(a.size()) != b.numElements())
      return fail("expected " + Twine(b.numElements()) + " values, got " +
                  Twine(a.size()));
    if (isIntType(b.dtype)) {
      int64_t *dst = s.integer(id);
      if (a.getKind() == Argument::Kind::Int32) {
        llvm::ArrayRef<int32_t> v = a.int32s();
        std::copy(v.begin(), v.end(), dst);
      } else if (a.getKind() == Argument::Kind::Int64) {
        llvm::ArrayRef<int64_t> v = a.int64s();
        if (b.dtype == BufferType::I32)
          for (size_t j = 0; j < v.size(); ++j)
            if (v[j] < std::numeric_limits<int32_t>::min() ||
                v[j] > std::numeric_limits<int32_t>::max())
              return fail("value " + Twine(v[j]) + " at element " + Twine(j) +
                          " does not fit in i32");
        std::copy(v.begin(), v.end(), dst);
      } else {
        return fail("expected integer data, got floating-point data");
      }
    } else {
      if (a.getKind() != Argument::Kind::Real)
        return fail("expected floating-point data, got integer data");
      llvm::ArrayRef<T> v = a.reals();
      std::copy(v.begin(), v.end(), s.real(id));
      if (b.dtype == BufferType::BF16)
        roundToBF16(s.real(id), b.numElements());
    }
  }

  for (const Step &step : cf.steps) {
    if (Error e = step.body())
      return makeError(instructionContext(f, step.index, step.op) +
                       llvm::toString(std::move(e)));
    for (int64_t r : step.bf16Results)
      roundToBF16(s.real(r), s.count(r));
  }

  std::vector<Output> outputs;
  for (int64_t id : f.results) {
    const Buffer &b = s.program.buffers[id];
    Output o;
    o.dtype = b.dtype;
    o.shape = b.shape;
    if (isIntType(b.dtype))
      o.ints.assign(s.integer(id), s.integer(id) + s.count(id));
    else
      o.values.assign(s.real(id), s.real(id) + s.count(id));
    outputs.push_back(std::move(o));
  }
  return outputs;
}

namespace octet::runtime {
template class CpuExecutor<float>;
template class CpuExecutor<double>;
} // namespace octet::runtime
