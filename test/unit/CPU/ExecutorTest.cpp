//===- ExecutorTest.cpp - Running programs on the CPU ---------------------===//
//
// The executor must compute exactly what the kernels compute when called
// directly: every comparison here is bit for bit, except float against
// double (TestUtil.h's tolerance) and the statistics of initialisation.
// Programs are hand-written JSON documents, parsed and validated as octetc's
// output would be; the per-op checks generate one-instruction programs.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "octet/Numerics/BFloat16.h"
#include "octet/Numerics/ScaledGemm.h"
#include "octet/Runtime/CPUKernels.h"
#include "octet/Runtime/CpuExecutor.h"
#include "octet/Runtime/DenseGemmEngine.h"
#include "octet/Runtime/FP8Linear.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <tuple>

using namespace octet;
using namespace octet::cpu;
using namespace octet::cpu::test;
using octet::runtime::CpuExecutor;
using octet::runtime::Program;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

Program parse(const std::string &text) {
  llvm::Expected<Program> p = runtime::parseProgram(text, "test.json");
  if (!p) {
    ADD_FAILURE() << llvm::toString(p.takeError());
    return Program();
  }
  return std::move(*p);
}

template <typename T> CpuExecutor<T> make(const std::string &text) {
  llvm::Expected<CpuExecutor<T>> e = CpuExecutor<T>::create(parse(text));
  if (!e) {
    ADD_FAILURE() << llvm::toString(e.takeError());
    return llvm::cantFail(CpuExecutor<T>::create(Program()));
  }
  return std::move(*e);
}

/// The creation error of a program, or "" when it is accepted.
template <typename T = float> std::string createError(const std::string &text) {
  llvm::Expected<CpuExecutor<T>> e = CpuExecutor<T>::create(parse(text));
  return e ? std::string() : llvm::toString(e.takeError());
}

template <typename T>
std::vector<typename CpuExecutor<T>::Output>
run(CpuExecutor<T> &exec, llvm::StringRef function,
    llvm::ArrayRef<typename CpuExecutor<T>::Argument> args) {
  auto out = exec.run(function, args);
  if (!out) {
    ADD_FAILURE() << llvm::toString(out.takeError());
    return {};
  }
  return std::move(*out);
}

template <typename T>
std::string runError(CpuExecutor<T> &exec, llvm::StringRef function,
                     llvm::ArrayRef<typename CpuExecutor<T>::Argument> args) {
  auto out = exec.run(function, args);
  return out ? std::string() : llvm::toString(out.takeError());
}

template <typename T> std::vector<T> randomT(size_t n, uint32_t seed) {
  return cast<T>(randomVector(n, seed));
}

template <typename T> std::vector<T> copyOf(llvm::ArrayRef<T> a) {
  return std::vector<T>(a.begin(), a.end());
}

#define EXPECT_CONTAINS(haystack, needle)                                      \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)             \
      << "expected '" << (needle) << "' in: " << (haystack)

//===----------------------------------------------------------------------===//
// A linear layer and its loss
//===----------------------------------------------------------------------===//

const char *kLinearProgram = R"json({
  "format": "octet-program",
  "version": 1,
  "metadata": {"model": "linear"},
  "buffers": [
    {"name": "%x", "dtype": "f32", "shape": [4, 8]},
    {"name": "%labels", "dtype": "i32", "shape": [4]},
    {"name": "%w", "dtype": "f32", "shape": [16, 8]},
    {"name": "%logits", "dtype": "f32", "shape": [4, 16]},
    {"name": "%loss", "dtype": "f32", "shape": []},
    {"name": "%one", "dtype": "f32", "shape": []},
    {"name": "%dlogits", "dtype": "f32", "shape": [4, 16]},
    {"name": "%dw", "dtype": "f32", "shape": [16, 8]},
    {"name": "%dx", "dtype": "f32", "shape": [4, 8]},
    {"name": "%b", "dtype": "f32", "shape": [16]},
    {"name": "%db", "dtype": "f32", "shape": [16]},
    {"name": "%lr", "dtype": "f32", "shape": []},
    {"name": "%step", "dtype": "i64", "shape": []}
  ],
  "parameters": [
    {"name": "w", "shape": [16, 8], "init": {"kind": "normal", "std": 0.5}},
    {"name": "b", "shape": [16], "init": {"kind": "normal", "std": 0.1}}
  ],
  "constants": [{"buffer": 5, "splat": 1.0}],
  "functions": [
    {"name": "forward", "arguments": [0, 1], "results": [4], "body": [
      {"op": "octet.param", "results": [2], "attrs": {"name": "w"}},
      {"op": "octet.param", "results": [9], "attrs": {"name": "b"}},
      {"op": "octet.linear", "operands": [0, 2, 9], "results": [3]},
      {"op": "octet.cross_entropy", "operands": [3, 1], "results": [4]}
    ]},
    {"name": "forward_backward", "arguments": [0, 1], "results": [4, 8],
     "body": [
      {"op": "octet.param", "results": [2], "attrs": {"name": "w"}},
      {"op": "octet.param", "results": [9], "attrs": {"name": "b"}},
      {"op": "octet.linear", "operands": [0, 2, 9], "results": [3]},
      {"op": "octet.cross_entropy", "operands": [3, 1], "results": [4]},
      {"op": "octet.cross_entropy_grad", "operands": [3, 1, 5],
       "results": [6]},
      {"op": "octet.linear_dgrad", "operands": [6, 2], "results": [8]},
      {"op": "octet.linear_wgrad", "operands": [6, 0], "results": [7]},
      {"op": "octet.bias_grad", "operands": [6], "results": [10]},
      {"op": "octet.grad_accumulate", "operands": [7], "attrs": {"param": "w"}},
      {"op": "octet.grad_accumulate", "operands": [10], "attrs": {"param": "b"}}
    ]},
    {"name": "optimizer_step", "arguments": [11, 12], "results": [], "body": [
      {"op": "octet.adamw_step", "operands": [11, 12],
       "attrs": {"param": "w", "beta1": 0.9, "beta2": 0.95, "eps": 1e-8,
                 "weight_decay": 0.1,
                 "param_type": {"dtype": "f32", "shape": [16, 8]}}},
      {"op": "octet.adamw_step", "operands": [11, 12],
       "attrs": {"param": "b", "beta1": 0.8, "beta2": 0.99, "eps": 1e-6,
                 "weight_decay": 0.0}}
    ]}
  ]
})json";

/// The linear program's forward and backward by direct kernel calls.
template <typename T> struct LinearReference {
  T loss;
  std::vector<T> dx, dw, db;
};

template <typename T>
LinearReference<T>
linearReference(const std::vector<T> &x, const std::vector<int32_t> &labels,
                const std::vector<T> &w, const std::vector<T> &b) {
  LinearShape shape{4, 16, 8};
  std::vector<T> logits(4 * 16), dlogits(4 * 16);
  linearForward<T>(x.data(), w.data(), b.data(), shape, logits.data());
  LinearReference<T> r;
  r.loss = crossEntropyForward<T, int32_t>(logits.data(), labels.data(), 4, 16);
  crossEntropyBackward<T, int32_t>(logits.data(), labels.data(), 4, 16, T(1),
                                   dlogits.data());
  r.dx.assign(4 * 8, T(0));
  r.dw.assign(16 * 8, T(0));
  r.db.assign(16, T(0));
  linearBackward<T>(x.data(), w.data(), dlogits.data(), shape, r.dx.data(),
                    r.dw.data(), r.db.data());
  return r;
}

TEST(ExecutorTest, LinearAndLossMatchTheKernelsBitForBit) {
  CpuExecutor<float> exec = make<float>(kLinearProgram);
  exec.initParameters(7);
  std::vector<float> x = randomT<float>(4 * 8, 1);
  std::vector<int32_t> labels = {3, 0, 15, 7};
  std::vector<float> w = copyOf<float>(*exec.masterWeight("w"));
  std::vector<float> b = copyOf<float>(*exec.masterWeight("b"));
  LinearReference<float> ref = linearReference(x, labels, w, b);

  auto fwd = run(exec, "forward", {x, labels});
  ASSERT_EQ(fwd.size(), 1u);
  EXPECT_EQ(fwd[0].shape, std::vector<int64_t>{});
  ASSERT_EQ(fwd[0].values.size(), 1u);
  EXPECT_TRUE(bitIdentical(fwd[0].values, std::vector<float>{ref.loss}));
  // The forward accumulates nothing.
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("w")),
                           std::vector<float>(16 * 8, 0.0f)));

  auto fb = run(exec, "forward_backward", {x, labels});
  ASSERT_EQ(fb.size(), 2u);
  EXPECT_TRUE(bitIdentical(fb[0].values, std::vector<float>{ref.loss}));
  EXPECT_TRUE(bitIdentical(fb[1].values, ref.dx));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("w")), ref.dw));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("b")), ref.db));

  // A second micro-batch adds into the accumulators, as accumulateGradient
  // does; the gradient ops themselves start from zero each time.
  std::vector<float> x2 = randomT<float>(4 * 8, 2);
  std::vector<int32_t> labels2 = {1, 1, 2, 9};
  LinearReference<float> ref2 = linearReference(x2, labels2, w, b);
  run(exec, "forward_backward", {x2, labels2});
  std::vector<float> dw = ref.dw, db = ref.db;
  accumulateGradient(dw.data(), ref2.dw.data(), dw.size());
  accumulateGradient(db.data(), ref2.db.data(), db.size());
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("w")), dw));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("b")), db));

  exec.zeroGradients();
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("w")),
                           std::vector<float>(16 * 8, 0.0f)));
}

TEST(ExecutorTest, DoubleExecutorRunsTheSameProgram) {
  CpuExecutor<double> d = make<double>(kLinearProgram);
  CpuExecutor<float> f = make<float>(kLinearProgram);
  d.initParameters(3);
  f.initParameters(3);
  std::vector<double> x = randomVector(4 * 8, 11);
  std::vector<int32_t> labels = {2, 4, 6, 8};
  // The same parameter streams: the float weights are the double ones
  // rounded.
  std::vector<double> w = copyOf<double>(*d.masterWeight("w"));
  std::vector<double> b = copyOf<double>(*d.masterWeight("b"));
  EXPECT_TRUE(
      bitIdentical(cast<float>(w), copyOf<float>(*f.masterWeight("w"))));
  // Make both executors hold the same (float-representable) weights.
  w = cast<double>(cast<float>(w));
  b = cast<double>(cast<float>(b));
  std::copy(w.begin(), w.end(), d.masterWeight("w")->begin());
  std::copy(b.begin(), b.end(), d.masterWeight("b")->begin());

  LinearReference<double> ref = linearReference(x, labels, w, b);
  auto out = run(d, "forward_backward", {x, labels});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(bitIdentical(out[0].values, std::vector<double>{ref.loss}));
  EXPECT_TRUE(bitIdentical(out[1].values, ref.dx));
  EXPECT_TRUE(bitIdentical(copyOf<double>(*d.gradient("w")), ref.dw));

  auto outF = run(f, "forward_backward", {cast<float>(x), labels});
  ASSERT_EQ(outF.size(), 2u);
  expectFloatMatchesDouble("loss", cast<double>(outF[0].values), out[0].values);
  expectFloatMatchesDouble("dx", cast<double>(outF[1].values), out[1].values);
  expectFloatMatchesDouble("dw", cast<double>(copyOf<float>(*f.gradient("w"))),
                           copyOf<double>(*d.gradient("w")));
}

// ZeRO-1: an executor updates only its share of the parameters; the
// others' gradients are cleared and their weights and moments kept, until
// their moments are released.
TEST(ExecutorTest, OptimizerShardUpdatesOnlyItsParameters) {
  CpuExecutor<float> exec = make<float>(kLinearProgram);
  exec.initParameters(5);
  exec.setOptimizerShard([](llvm::StringRef name) { return name == "w"; });
  std::vector<float> w = copyOf<float>(*exec.masterWeight("w"));
  std::vector<float> b = copyOf<float>(*exec.masterWeight("b"));
  std::vector<uint16_t> mw(w.size(), 0), vw(w.size(), 0);
  std::vector<float> gw = randomT<float>(w.size(), 101),
                     gb = randomT<float>(b.size(), 102);
  std::copy(gw.begin(), gw.end(), exec.gradient("w")->begin());
  std::copy(gb.begin(), gb.end(), exec.gradient("b")->begin());
  run(exec, "optimizer_step",
      {CpuExecutor<float>::Argument::scalar(0.01f),
       CpuExecutor<float>::Argument::integer(1)});
  adamwStep(w.data(), gw.data(), mw.data(), vw.data(), w.size(), 1,
            AdamWConfig{0.01f, 0.9f, 0.95f, 1e-8f, 0.1f});
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("w")), w));
  EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.firstMoment("w")), mw));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("b")), b));
  EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.firstMoment("b")),
                           std::vector<uint16_t>(b.size(), 0)));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("b")),
                           std::vector<float>(b.size(), 0.0f)));

  // Releasing the others' moments frees b's (2 x BF16 per element) and
  // keeps w's; the next step still updates w alone, as before.
  int64_t before = exec.getMomentBytes();
  EXPECT_EQ(exec.releaseUnownedMoments(), int64_t(b.size()) * 4);
  EXPECT_EQ(exec.getMomentBytes(), before - int64_t(b.size()) * 4);
  EXPECT_FALSE(exec.firstMoment("b").has_value());
  EXPECT_FALSE(exec.secondMoment("b").has_value());
  ASSERT_TRUE(exec.firstMoment("w").has_value());
  std::copy(gw.begin(), gw.end(), exec.gradient("w")->begin());
  run(exec, "optimizer_step",
      {CpuExecutor<float>::Argument::scalar(0.01f),
       CpuExecutor<float>::Argument::integer(2)});
  adamwStep(w.data(), gw.data(), mw.data(), vw.data(), w.size(), 2,
            AdamWConfig{0.01f, 0.9f, 0.95f, 1e-8f, 0.1f});
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("w")), w));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("b")), b));
  // Owning b again cannot update it without its moments: a clear error.
  exec.setOptimizerShard([](llvm::StringRef) { return true; });
  auto out =
      exec.run("optimizer_step", {CpuExecutor<float>::Argument::scalar(0.01f),
                                  CpuExecutor<float>::Argument::integer(3)});
  ASSERT_FALSE(bool(out));
  EXPECT_CONTAINS(llvm::toString(out.takeError()),
                  "the AdamW moments of 'b' were released");
}

// An expert owner updates a range of a parameter (its experts): those
// elements as AdamW on them alone, the others untouched, the whole gradient
// cleared; once the others' moments go, it keeps its range's, from the
// range's first element on.
TEST(ExecutorTest, OptimizerRangeUpdatesOnlyItsElements) {
  CpuExecutor<float> exec = make<float>(kLinearProgram);
  exec.initParameters(5);
  std::vector<float> w = copyOf<float>(*exec.masterWeight("w"));
  ASSERT_GT(w.size(), 12u);
  const int64_t begin = 3, end = 11, n = end - begin;
  exec.setOptimizerRanges(
      [&](llvm::StringRef name) -> std::optional<CpuExecutor<float>::Range> {
        if (name != "w")
          return std::nullopt;
        return CpuExecutor<float>::Range{begin, end};
      });
  EXPECT_EQ(exec.releaseUnownedMoments(),
            int64_t(exec.masterWeight("b")->size() + w.size() - n) * 4);
  ASSERT_EQ(exec.firstMoment("w")->size(), size_t(n));
  EXPECT_EQ(exec.getMomentOffset("w"), begin);
  EXPECT_FALSE(exec.firstMoment("b").has_value());
  std::vector<uint16_t> m(n, 0), v(n, 0);
  std::vector<float> expected = w;
  for (int64_t step = 1; step <= 2; ++step) {
    std::vector<float> g = randomT<float>(w.size(), 200 + step);
    std::copy(g.begin(), g.end(), exec.gradient("w")->begin());
    run(exec, "optimizer_step",
        {CpuExecutor<float>::Argument::scalar(0.01f),
         CpuExecutor<float>::Argument::integer(step)});
    adamwStep(expected.data() + begin, g.data() + begin, m.data(), v.data(), n,
              step, AdamWConfig{0.01f, 0.9f, 0.95f, 1e-8f, 0.1f});
    EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("w")), expected));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.firstMoment("w")), m));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.secondMoment("w")), v));
    EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("w")),
                             std::vector<float>(w.size(), 0.0f)));
  }
  EXPECT_FALSE(bitIdentical(expected, w)); // it did update
}

// A pipeline rank frees the parameters it neither reads nor updates: their
// state is gone, what it keeps is untouched, and a function that reads a
// freed one fails, naming it, instead of reading nothing.
TEST(ExecutorTest, ReleasedParametersAreGoneAndNamedWhenRead) {
  CpuExecutor<float> exec = make<float>(kLinearProgram);
  exec.initParameters(5);
  std::vector<float> w = copyOf<float>(*exec.masterWeight("w"));
  size_t nb = exec.masterWeight("b")->size();
  int64_t weights = exec.getWeightBytes(), grads = exec.getGradientBytes(),
          moments = exec.getMomentBytes();
  // FP32 weight and gradient, two BF16 moments per element.
  EXPECT_EQ(
      exec.releaseParameters([](llvm::StringRef name) { return name != "b"; }),
      int64_t(nb) * 12);
  EXPECT_EQ(exec.getWeightBytes(), weights - int64_t(nb) * 4);
  EXPECT_EQ(exec.getGradientBytes(), grads - int64_t(nb) * 4);
  EXPECT_EQ(exec.getMomentBytes(), moments - int64_t(nb) * 4);
  EXPECT_FALSE(exec.masterWeight("b").has_value());
  EXPECT_FALSE(exec.gradient("b").has_value());
  EXPECT_FALSE(exec.firstMoment("b").has_value());
  EXPECT_FALSE(exec.secondMoment("b").has_value());
  EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("w")), w));
  // Releasing again frees nothing more.
  EXPECT_EQ(exec.releaseParameters([](llvm::StringRef) { return false; }),
            int64_t(w.size()) * 12);
  EXPECT_EQ(exec.getWeightBytes(), 0);

  CpuExecutor<float> other = make<float>(kLinearProgram);
  other.initParameters(5);
  other.releaseParameters([](llvm::StringRef name) { return name != "b"; });
  std::vector<float> x = randomT<float>(4 * 8, 7);
  std::vector<int32_t> labels = {3, 0, 15, 7};
  auto out = other.run("forward_backward", {x, labels});
  ASSERT_FALSE(bool(out));
  EXPECT_CONTAINS(llvm::toString(out.takeError()),
                  "the weights of parameter 'b' were released");
  // Its optimizer step, with b another rank's to update, still runs.
  other.setOptimizerShard([](llvm::StringRef name) { return name == "w"; });
  run(other, "optimizer_step",
      {CpuExecutor<float>::Argument::scalar(0.01f),
       CpuExecutor<float>::Argument::integer(1)});
}

// A pipeline rank's executor is created holding only its share: nothing
// of a parameter it does not keep, of one it updates in part only that
// part's moments, and only the buffers of the functions it runs. It
// initialises and updates what it holds exactly as an executor holding
// everything (and then releasing the rest) does.
TEST(ExecutorTest, CreatedShareHoldsOnlyItsPartAndComputesAlike) {
  using Range = CpuExecutor<float>::Range;
  CpuExecutor<float> whole = make<float>(kLinearProgram);
  whole.initParameters(5);
  const size_t nw = whole.masterWeight("w")->size();
  const int64_t begin = 3, end = 11;
  ASSERT_GT(nw, size_t(end));
  CpuExecutor<float>::Holding holding;
  holding.keeps = [](llvm::StringRef name) { return name == "w"; };
  holding.updates = [&](llvm::StringRef name) -> std::optional<Range> {
    if (name == "w")
      return Range{begin, end};
    return std::nullopt;
  };
  holding.runs = [](llvm::StringRef fn) { return fn != "forward_backward"; };
  // Each value its own storage, to count the buffers it holds.
  holding.reuseBuffers = false;
  CpuExecutor<float>::Holding all;
  all.reuseBuffers = false;
  CpuExecutor<float> plain =
      llvm::cantFail(CpuExecutor<float>::create(parse(kLinearProgram), all));
  llvm::Expected<CpuExecutor<float>> created =
      CpuExecutor<float>::create(parse(kLinearProgram), holding);
  ASSERT_TRUE(bool(created)) << llvm::toString(created.takeError());
  CpuExecutor<float> &share = *created;
  EXPECT_EQ(share.getWeightBytes(), int64_t(nw) * 4);
  EXPECT_EQ(share.getGradientBytes(), int64_t(nw) * 4);
  EXPECT_EQ(share.getMomentBytes(), (end - begin) * 4);
  EXPECT_FALSE(share.masterWeight("b").has_value());
  EXPECT_FALSE(share.gradient("b").has_value());
  EXPECT_FALSE(share.firstMoment("b").has_value());
  ASSERT_EQ(share.firstMoment("w")->size(), size_t(end - begin));
  EXPECT_EQ(share.getMomentOffset("w"), begin);
  // It lacks the buffers only @forward_backward uses: %one, %dlogits, %dw,
  // %dx and %db, 4 + 64 + 128 + 32 + 16 floats; and it does not run it.
  EXPECT_EQ(share.getBufferBytes(),
            plain.getBufferBytes() - int64_t(1 + 64 + 128 + 32 + 16) * 4);
  std::vector<float> x = randomT<float>(4 * 8, 7);
  std::vector<int32_t> labels = {3, 0, 15, 7};
  auto notRun = share.run("forward_backward", {x, labels});
  ASSERT_FALSE(bool(notRun));
  EXPECT_CONTAINS(llvm::toString(notRun.takeError()),
                  "function 'forward_backward' is not one this executor runs");

  share.initParameters(5);
  EXPECT_TRUE(bitIdentical(copyOf<float>(*share.masterWeight("w")),
                           copyOf<float>(*whole.masterWeight("w"))));
  // The same as the whole executor, its range set and the rest released.
  whole.setOptimizerRanges([&](llvm::StringRef name) -> std::optional<Range> {
    if (name == "w")
      return Range{begin, end};
    return std::nullopt;
  });
  whole.releaseUnownedMoments();
  whole.releaseParameters([](llvm::StringRef name) { return name == "w"; });
  EXPECT_EQ(whole.getMomentBytes(), share.getMomentBytes());
  EXPECT_EQ(whole.getWeightBytes(), share.getWeightBytes());
  for (int64_t step = 1; step <= 2; ++step) {
    std::vector<float> g = randomT<float>(nw, 300 + step);
    std::copy(g.begin(), g.end(), share.gradient("w")->begin());
    std::copy(g.begin(), g.end(), whole.gradient("w")->begin());
    for (CpuExecutor<float> *e : {&share, &whole})
      run(*e, "optimizer_step",
          {CpuExecutor<float>::Argument::scalar(0.01f),
           CpuExecutor<float>::Argument::integer(step)});
    EXPECT_TRUE(bitIdentical(copyOf<float>(*share.masterWeight("w")),
                             copyOf<float>(*whole.masterWeight("w"))));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*share.firstMoment("w")),
                             copyOf<uint16_t>(*whole.firstMoment("w"))));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*share.secondMoment("w")),
                             copyOf<uint16_t>(*whole.secondMoment("w"))));
  }
  // Widened past the moments it holds, the update is refused, not made.
  share.setOptimizerShard([](llvm::StringRef name) { return name == "w"; });
  auto widened =
      share.run("optimizer_step", {CpuExecutor<float>::Argument::scalar(0.01f),
                                   CpuExecutor<float>::Argument::integer(3)});
  ASSERT_FALSE(bool(widened));
  EXPECT_CONTAINS(llvm::toString(widened.takeError()),
                  "it updates elements [0, 128) of 'w' but holds the weights "
                  "of [0, 128) and the moments of [3, 11)");
  // A function reading b fails, naming it.
  auto out = share.run("forward", {x, labels});
  ASSERT_FALSE(bool(out));
  EXPECT_CONTAINS(llvm::toString(out.takeError()),
                  "the weights of parameter 'b' were released");
}

// The values a function alone computes share its arena by liveness: a
// chain holds two of its four values' worth, and computes what each value
// in its own storage computes, on every run (a value's bytes hold another
// value's from before when it is defined). Arguments keep their own.
TEST(ExecutorTest, ValuesShareMemoryByLivenessAndComputeAlike) {
  const char *chain = R"json({
    "format": "octet-program", "version": 1,
    "buffers": [
      {"name": "%x", "dtype": "f32", "shape": [1024]},
      {"name": "%a", "dtype": "f32", "shape": [1024]},
      {"name": "%b", "dtype": "f32", "shape": [1024]},
      {"name": "%c", "dtype": "f32", "shape": [1024]},
      {"name": "%d", "dtype": "f32", "shape": [1024]},
      {"name": "%e", "dtype": "f32", "shape": [1024]}
    ],
    "parameters": [],
    "functions": [
      {"name": "f", "arguments": [0], "results": [5], "body": [
        {"op": "arith.negf", "operands": [0], "results": [1]},
        {"op": "arith.mulf", "operands": [1, 0], "results": [2]},
        {"op": "arith.addf", "operands": [2, 0], "results": [3]},
        {"op": "arith.mulf", "operands": [3, 3], "results": [4]},
        {"op": "arith.subf", "operands": [4, 0], "results": [5]}
      ]}
    ]
  })json";
  CpuExecutor<float> shared = make<float>(chain);
  CpuExecutor<float>::Holding own;
  own.reuseBuffers = false;
  CpuExecutor<float> separate =
      llvm::cantFail(CpuExecutor<float>::create(parse(chain), own));
  // Of a..e at most two are live at once, beside the argument.
  EXPECT_EQ(separate.getBufferBytes(), 6 * 4096);
  EXPECT_EQ(shared.getBufferBytes(), 3 * 4096);
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<float> x = randomT<float>(1024, seed);
    std::vector<float> expected(1024);
    for (size_t i = 0; i < x.size(); ++i) {
      float a = -x[i], b = a * x[i], c = b + x[i], d = c * c;
      expected[i] = d - x[i];
    }
    auto one = run(shared, "f", {x});
    auto other = run(separate, "f", {x});
    ASSERT_EQ(one.size(), 1u);
    ASSERT_EQ(other.size(), 1u);
    EXPECT_TRUE(bitIdentical(one[0].values, expected));
    EXPECT_TRUE(bitIdentical(other[0].values, expected));
  }
}

// The gradient callback follows every accumulation, after it is done.
TEST(ExecutorTest, GradientCallbackFollowsEachAccumulation) {
  CpuExecutor<float> exec = make<float>(kLinearProgram);
  exec.initParameters(5);
  std::vector<std::string> seen;
  std::vector<bool> nonZero;
  exec.setGradientCallback([&](llvm::StringRef name) {
    seen.push_back(name.str());
    auto g = *exec.gradient(name);
    nonZero.push_back(std::any_of(g.begin(), g.end(),
                                  [](float v) { return v != 0.0f; }));
  });
  std::vector<float> x = randomT<float>(4 * 8, 7);
  std::vector<int32_t> labels = {3, 0, 15, 7};
  run(exec, "forward_backward", {x, labels});
  EXPECT_EQ(seen, (std::vector<std::string>{"w", "b"}));
  EXPECT_EQ(nonZero, (std::vector<bool>{true, true}));
  exec.setGradientCallback(nullptr);
  run(exec, "forward_backward", {x, labels});
  EXPECT_EQ(seen.size(), 2u);
}

TEST(ExecutorTest, OptimizerStepIsAdamWAndClearsTheGradients) {
  // AdamW keeps FP32 master weights and BF16 moments: a double executor
  // loads the program (for FP64 gradient checks) but refuses to step.
  CpuExecutor<double> d = make<double>(kLinearProgram);
  std::string err = runError(d, "optimizer_step",
                             {CpuExecutor<double>::Argument::scalar(0.01),
                              CpuExecutor<double>::Argument::integer(1)});
  EXPECT_CONTAINS(err, "function 'optimizer_step', instruction 0 "
                       "(octet.adamw_step): AdamW runs in float");

  CpuExecutor<float> exec = make<float>(kLinearProgram);
  exec.initParameters(5);
  std::vector<float> w = copyOf<float>(*exec.masterWeight("w"));
  std::vector<float> b = copyOf<float>(*exec.masterWeight("b"));
  std::vector<uint16_t> mw(w.size(), 0), vw(w.size(), 0), mb(b.size(), 0),
      vb(b.size(), 0);
  AdamWConfig cw{0.01f, 0.9f, 0.95f, 1e-8f, 0.1f};
  AdamWConfig cb{0.01f, 0.8f, 0.99f, 1e-6f, 0.0f};
  for (int64_t step = 1; step <= 3; ++step) {
    std::vector<float> gw = randomT<float>(w.size(), 100 + step);
    std::vector<float> gb = randomT<float>(b.size(), 200 + step);
    std::copy(gw.begin(), gw.end(), exec.gradient("w")->begin());
    std::copy(gb.begin(), gb.end(), exec.gradient("b")->begin());
    auto out = run(exec, "optimizer_step",
                   {CpuExecutor<float>::Argument::scalar(0.01f),
                    CpuExecutor<float>::Argument::integer(step)});
    EXPECT_TRUE(out.empty());
    adamwStep(w.data(), gw.data(), mw.data(), vw.data(), w.size(), step, cw);
    adamwStep(b.data(), gb.data(), mb.data(), vb.data(), b.size(), step, cb);
    EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("w")), w))
        << "step " << step;
    EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.masterWeight("b")), b));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.firstMoment("w")), mw));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.secondMoment("w")), vw));
    EXPECT_TRUE(bitIdentical(copyOf<uint16_t>(*exec.secondMoment("b")), vb));
    EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("w")),
                             std::vector<float>(w.size(), 0.0f)));
    EXPECT_TRUE(bitIdentical(copyOf<float>(*exec.gradient("b")),
                             std::vector<float>(b.size(), 0.0f)));
  }
  // Steps count from 1.
  std::string bad = runError(exec, "optimizer_step",
                             {CpuExecutor<float>::Argument::scalar(0.01f),
                              CpuExecutor<float>::Argument::integer(0)});
  EXPECT_CONTAINS(bad, "function 'optimizer_step', instruction 0 "
                       "(octet.adamw_step): step 0 is out of range");
}

//===----------------------------------------------------------------------===//
// Parameter initialisation
//===----------------------------------------------------------------------===//

std::string paramsProgram(const std::string &parameters) {
  return R"json({"format": "octet-program", "version": 1, "buffers": [],
    "parameters": [)json" +
         parameters + R"json(], "functions": []})json";
}

const char *kParamA =
    R"({"name": "a", "shape": [64, 64], "init": {"kind": "normal", "std": 0.02}})";
const char *kParamA2 =
    R"({"name": "a2", "shape": [64, 64], "init": {"kind": "normal", "std": 0.02}})";
const char *kParamB =
    R"({"name": "b.bias", "shape": [100], "init": {"kind": "zeros"}})";
const char *kParamC =
    R"({"name": "c.norm", "shape": [101], "init": {"kind": "ones"}})";
const char *kParamD =
    R"({"name": "d", "shape": [200, 101], "frozen": true, "init": {"kind": "normal", "std": 1.0}})";

TEST(ExecutorTest, ParameterInitIsDeterministicPerNameAndHasTheRequestedStd) {
  std::string all = paramsProgram(std::string(kParamA) + "," + kParamB + "," +
                                  kParamC + "," + kParamD + "," + kParamA2);
  CpuExecutor<float> e1 = make<float>(all), e2 = make<float>(all);
  e1.initParameters(1234);
  e2.initParameters(1234);
  for (const char *name : {"a", "b.bias", "c.norm", "d"})
    EXPECT_TRUE(bitIdentical(copyOf<float>(*e1.masterWeight(name)),
                             copyOf<float>(*e2.masterWeight(name))))
        << name;
  // Another seed, other values.
  e2.initParameters(1235);
  EXPECT_FALSE(bitIdentical(copyOf<float>(*e1.masterWeight("a")),
                            copyOf<float>(*e2.masterWeight("a"))));
  // Per name: a program with fewer parameters, in another order, draws the
  // same values for the parameters it shares.
  CpuExecutor<float> e3 =
      make<float>(paramsProgram(std::string(kParamD) + "," + kParamA));
  e3.initParameters(1234);
  EXPECT_TRUE(bitIdentical(copyOf<float>(*e1.masterWeight("a")),
                           copyOf<float>(*e3.masterWeight("a"))));
  EXPECT_TRUE(bitIdentical(copyOf<float>(*e1.masterWeight("d")),
                           copyOf<float>(*e3.masterWeight("d"))));
  // Different names, different streams.
  EXPECT_FALSE(bitIdentical(copyOf<float>(*e1.masterWeight("a")),
                            copyOf<float>(*e1.masterWeight("a2"))));

  EXPECT_EQ(copyOf<float>(*e1.masterWeight("b.bias")),
            std::vector<float>(100, 0.0f));
  EXPECT_EQ(copyOf<float>(*e1.masterWeight("c.norm")),
            std::vector<float>(101, 1.0f));
  // Moments of normal draws: with n samples the sample mean has standard
  // error std/sqrt(n) and the sample std about std/sqrt(2n); the bounds are
  // more than 5 standard errors wide.
  auto moments = [](llvm::ArrayRef<float> v) {
    double sum = 0, sq = 0;
    for (float x : v)
      sum += x;
    double mean = sum / v.size();
    for (float x : v)
      sq += (x - mean) * (x - mean);
    return std::make_pair(mean, std::sqrt(sq / v.size()));
  };
  auto [meanA, stdA] = moments(*e1.masterWeight("a")); // n = 4096
  EXPECT_LT(std::fabs(meanA), 5 * 0.02 / 64);
  EXPECT_NEAR(stdA, 0.02, 5 * 0.02 / std::sqrt(2.0 * 4096));
  auto [meanD, stdD] = moments(*e1.masterWeight("d")); // n = 20200
  EXPECT_LT(std::fabs(meanD), 5 / std::sqrt(20200.0));
  EXPECT_NEAR(stdD, 1.0, 5 / std::sqrt(2.0 * 20200));
  // Frozen parameters are initialised but have no optimizer state.
  EXPECT_FALSE(e1.gradient("d").has_value());
  EXPECT_FALSE(e1.firstMoment("d").has_value());
  EXPECT_FALSE(e1.masterWeight("nope").has_value());

  // The double executor draws the same values before rounding to float.
  CpuExecutor<double> d = make<double>(all);
  d.initParameters(1234);
  EXPECT_TRUE(bitIdentical(cast<float>(copyOf<double>(*d.masterWeight("a"))),
                           copyOf<float>(*e1.masterWeight("a"))));
}

//===----------------------------------------------------------------------===//
// Tensor and arith ops
//===----------------------------------------------------------------------===//

const char *kTensorProgram = R"json({
  "format": "octet-program",
  "version": 1,
  "buffers": [
    {"name": "%a", "dtype": "f32", "shape": [2, 6]},
    {"name": "%b", "dtype": "f32", "shape": [2, 6]},
    {"name": "%ids", "dtype": "i32", "shape": [2, 3]},
    {"name": "%expanded", "dtype": "f32", "shape": [2, 2, 3]},
    {"name": "%collapsed", "dtype": "f32", "shape": [4, 3]},
    {"name": "%strided", "dtype": "f32", "shape": [2, 2]},
    {"name": "%row", "dtype": "f32", "shape": [6]},
    {"name": "%inserted", "dtype": "f32", "shape": [2, 6]},
    {"name": "%cat1", "dtype": "f32", "shape": [2, 12]},
    {"name": "%cat0", "dtype": "f32", "shape": [4, 6]},
    {"name": "%sum", "dtype": "f32", "shape": [2, 6]},
    {"name": "%diff", "dtype": "f32", "shape": [2, 6]},
    {"name": "%prod", "dtype": "f32", "shape": [2, 6]},
    {"name": "%quot", "dtype": "f32", "shape": [2, 6]},
    {"name": "%neg", "dtype": "f32", "shape": [2, 6]},
    {"name": "%flat_ids", "dtype": "i32", "shape": [6]},
    {"name": "%ids_slice", "dtype": "i32", "shape": [2, 2]},
    {"name": "%ids_cat", "dtype": "i32", "shape": [4, 3]},
    {"name": "%empty", "dtype": "f32", "shape": [3]},
    {"name": "%zeros", "dtype": "f32", "shape": [2, 6]},
    {"name": "%into_zeros", "dtype": "f32", "shape": [2, 6]},
    {"name": "%half", "dtype": "f32", "shape": [2, 6]},
    {"name": "%scaled", "dtype": "f32", "shape": [2, 6]}
  ],
  "constants": [
    {"buffer": 19, "splat": 0},
    {"buffer": 21, "values": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
                              2, 2, 2, 2, 2, "-inf"]}
  ],
  "functions": [
    {"name": "ops", "arguments": [0, 1, 2],
     "results": [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20,
                 22],
     "body": [
      {"op": "tensor.expand_shape", "operands": [0], "results": [3],
       "attrs": {"reassociation": [[0], [1, 2]],
                 "static_output_shape": [2, 2, 3]}},
      {"op": "tensor.collapse_shape", "operands": [3], "results": [4],
       "attrs": {"reassociation": [[0, 1], [2]]}},
      {"op": "tensor.extract_slice", "operands": [0], "results": [5],
       "attrs": {"static_offsets": [0, 1], "static_sizes": [2, 2],
                 "static_strides": [1, 2],
                 "operandSegmentSizes": [1, 0, 0, 0]}},
      {"op": "tensor.extract_slice", "operands": [0], "results": [6],
       "attrs": {"static_offsets": [1, 0], "static_sizes": [1, 6],
                 "static_strides": [1, 1]}},
      {"op": "tensor.insert_slice", "operands": [5, 1], "results": [7],
       "attrs": {"static_offsets": [0, 2], "static_sizes": [2, 2],
                 "static_strides": [1, 3]}},
      {"op": "tensor.concat", "operands": [0, 1], "results": [8],
       "attrs": {"dim": 1}},
      {"op": "tensor.concat", "operands": [0, 1], "results": [9],
       "attrs": {"dim": 0}},
      {"op": "arith.addf", "operands": [0, 1], "results": [10]},
      {"op": "arith.subf", "operands": [0, 1], "results": [11]},
      {"op": "arith.mulf", "operands": [0, 1], "results": [12]},
      {"op": "arith.divf", "operands": [0, 1], "results": [13]},
      {"op": "arith.negf", "operands": [0], "results": [14]},
      {"op": "tensor.collapse_shape", "operands": [2], "results": [15],
       "attrs": {"reassociation": [[0, 1]]}},
      {"op": "tensor.extract_slice", "operands": [2], "results": [16],
       "attrs": {"static_offsets": [0, 1], "static_sizes": [2, 2],
                 "static_strides": [1, 1]}},
      {"op": "tensor.concat", "operands": [2, 2], "results": [17],
       "attrs": {"dim": 0}},
      {"op": "tensor.empty", "results": [18]},
      {"op": "tensor.insert_slice", "operands": [6, 19], "results": [20],
       "attrs": {"static_offsets": [1, 0], "static_sizes": [1, 6],
                 "static_strides": [1, 1]}},
      {"op": "arith.mulf", "operands": [0, 21], "results": [22]}
    ]}
  ]
})json";

TEST(ExecutorTest, TensorAndArithOpsMoveAndCombineElementsAsMLIRDefines) {
  CpuExecutor<float> exec = make<float>(kTensorProgram);
  std::vector<float> a = randomT<float>(12, 21), b = randomT<float>(12, 22);
  std::vector<int32_t> ids = {10, 11, 12, 13, 14, 15};
  auto out = run(exec, "ops", {a, b, ids});
  ASSERT_EQ(out.size(), 18u);
  auto at = [&](int r, int c) { return a[r * 6 + c]; };

  EXPECT_TRUE(bitIdentical(out[0].values, a)); // expand: same data
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_TRUE(bitIdentical(out[1].values, a)); // collapse
  EXPECT_TRUE(
      bitIdentical(out[2].values,
                   std::vector<float>{at(0, 1), at(0, 3), at(1, 1), at(1, 3)}));
  EXPECT_TRUE(
      bitIdentical(out[3].values, std::vector<float>(a.begin() + 6, a.end())));
  std::vector<float> inserted = b;
  inserted[0 * 6 + 2] = at(0, 1);
  inserted[0 * 6 + 5] = at(0, 3);
  inserted[1 * 6 + 2] = at(1, 1);
  inserted[1 * 6 + 5] = at(1, 3);
  EXPECT_TRUE(bitIdentical(out[4].values, inserted));
  std::vector<float> cat1, cat0 = a;
  for (int r = 0; r < 2; ++r) {
    cat1.insert(cat1.end(), a.begin() + r * 6, a.begin() + r * 6 + 6);
    cat1.insert(cat1.end(), b.begin() + r * 6, b.begin() + r * 6 + 6);
  }
  cat0.insert(cat0.end(), b.begin(), b.end());
  EXPECT_TRUE(bitIdentical(out[5].values, cat1));
  EXPECT_TRUE(bitIdentical(out[6].values, cat0));
  std::vector<float> sum(12), diff(12), prod(12), quot(12), neg(12);
  for (int i = 0; i < 12; ++i) {
    sum[i] = a[i] + b[i];
    diff[i] = a[i] - b[i];
    prod[i] = a[i] * b[i];
    quot[i] = a[i] / b[i];
    neg[i] = -a[i];
  }
  EXPECT_TRUE(bitIdentical(out[7].values, sum));
  EXPECT_TRUE(bitIdentical(out[8].values, diff));
  EXPECT_TRUE(bitIdentical(out[9].values, prod));
  EXPECT_TRUE(bitIdentical(out[10].values, quot));
  EXPECT_TRUE(bitIdentical(out[11].values, neg));
  // Integer tensors take the same paths.
  EXPECT_EQ(out[12].ints, (std::vector<int64_t>{10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(out[12].dtype, runtime::BufferType::I32);
  EXPECT_EQ(out[13].ints, (std::vector<int64_t>{11, 12, 14, 15}));
  EXPECT_EQ(out[14].ints, (std::vector<int64_t>{10, 11, 12, 13, 14, 15, 10, 11,
                                                12, 13, 14, 15}));
  EXPECT_EQ(out[15].values, std::vector<float>(3, 0.0f));
  // Into a zero constant (autodiff's extract_slice backward); the constant
  // itself is not modified, so a second run gives the same.
  std::vector<float> intoZeros(12, 0.0f);
  std::copy(a.begin() + 6, a.end(), intoZeros.begin() + 6);
  EXPECT_TRUE(bitIdentical(out[16].values, intoZeros));
  std::vector<float> scaled(12);
  for (int i = 0; i < 12; ++i)
    scaled[i] = a[i] * (i < 6 ? 0.5f : 2.0f);
  scaled[11] = a[11] * -INFINITY;
  EXPECT_TRUE(bitIdentical(out[17].values, scaled));
  auto again = run(exec, "ops", {b, a, ids});
  ASSERT_EQ(again.size(), 18u);
  std::vector<float> intoZeros2(12, 0.0f);
  std::copy(b.begin() + 6, b.end(), intoZeros2.begin() + 6);
  EXPECT_TRUE(bitIdentical(again[16].values, intoZeros2));
}

//===----------------------------------------------------------------------===//
// Precisions
//===----------------------------------------------------------------------===//

/// One linear (optionally its dgrad and wgrad) with the given precision.
std::string linearProgram(int64_t m, int64_t n, int64_t k,
                          const std::string &precision,
                          const std::string &outDType = "f32") {
  std::string p =
      precision.empty() ? "{}" : R"({"precision": )" + precision + "}";
  auto shape = [](int64_t a, int64_t b) {
    return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
  };
  return R"json({"format": "octet-program", "version": 1, "buffers": [
      {"dtype": "f32", "shape": )json" +
         shape(m, k) + R"json(},
      {"dtype": "f32", "shape": )json" +
         shape(n, k) + R"json(},
      {"dtype": ")json" +
         outDType + R"json(", "shape": )json" + shape(m, n) + R"json(},
      {"dtype": "f32", "shape": )json" +
         shape(m, n) + R"json(},
      {"dtype": "f32", "shape": )json" +
         shape(m, k) + R"json(},
      {"dtype": "f32", "shape": )json" +
         shape(n, k) + R"json(}],
    "functions": [
      {"name": "forward", "arguments": [0, 1], "results": [2], "body": [
        {"op": "octet.linear", "operands": [0, 1], "results": [2],
         "attrs": )json" +
         p + R"json(}]},
      {"name": "backward", "arguments": [0, 1, 3], "results": [4, 5],
       "body": [
        {"op": "octet.linear_dgrad", "operands": [3, 1], "results": [4],
         "attrs": )json" +
         p + R"json(},
        {"op": "octet.linear_wgrad", "operands": [3, 0], "results": [5],
         "attrs": )json" +
         p + R"json(}]}]})json";
}

// BF16 compute rounds the GEMM inputs; the output is rounded only when the
// precision's output type is bf16 (FP32 accumulation otherwise), and weight
// gradients always stay FP32.
TEST(ExecutorTest, BF16PrecisionRoundsTheGemmInputsAndHonoursTheOutputType) {
  int64_t m = 5, n = 7, k = 9;
  CpuExecutor<float> exec = make<float>(
      linearProgram(m, n, k, R"({"format": "bf16", "out": "f32"})"));
  std::vector<float> x = randomT<float>(m * k, 31),
                     w = randomT<float>(n * k, 32),
                     dy = randomT<float>(m * n, 33);
  auto rounded = [](std::vector<float> v) {
    for (float &e : v)
      e = numerics::roundToBF16(e);
    return v;
  };
  std::vector<float> y(m * n), dx(m * k), dw(n * k, 0.0f);
  linearForward(rounded(x).data(), rounded(w).data(), (const float *)nullptr,
                {m, n, k}, y.data());
  linearBackward(rounded(x).data(), rounded(w).data(), rounded(dy).data(),
                 {m, n, k}, dx.data(), dw.data(), (float *)nullptr);
  auto fwd = run(exec, "forward", {x, w});
  ASSERT_EQ(fwd.size(), 1u);
  EXPECT_TRUE(bitIdentical(fwd[0].values, y));
  // Not what the unrounded product gives.
  std::vector<float> plain(m * n);
  linearForward(x.data(), w.data(), (const float *)nullptr, {m, n, k},
                plain.data());
  EXPECT_FALSE(bitIdentical(fwd[0].values, plain));
  auto bwd = run(exec, "backward", {x, w, dy});
  ASSERT_EQ(bwd.size(), 2u);
  EXPECT_TRUE(bitIdentical(bwd[0].values, dx));
  EXPECT_TRUE(bitIdentical(bwd[1].values, dw));

  CpuExecutor<float> roundedOut = make<float>(
      linearProgram(m, n, k, R"({"format": "bf16", "out": "bf16"})"));
  auto fwd16 = run(roundedOut, "forward", {x, w});
  EXPECT_TRUE(bitIdentical(fwd16[0].values, rounded(y)));
  auto bwd16 = run(roundedOut, "backward", {x, w, dy});
  EXPECT_TRUE(bitIdentical(bwd16[0].values, rounded(dx)));
  EXPECT_TRUE(bitIdentical(bwd16[1].values, dw));

  // A bf16 buffer holds rounded values whatever computed them.
  CpuExecutor<float> bf16Out = make<float>(linearProgram(m, n, k, "", "bf16"));
  linearForward(x.data(), w.data(), (const float *)nullptr, {m, n, k},
                y.data());
  auto o = run(bf16Out, "forward", {x, w});
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].dtype, runtime::BufferType::BF16);
  EXPECT_TRUE(bitIdentical(o[0].values, rounded(y)));

  // Emulated precisions run in float only.
  std::string err = createError<double>(
      linearProgram(m, n, k, R"({"format": "bf16", "out": "f32"})"));
  EXPECT_CONTAINS(err, "function 'forward', instruction 0 (octet.linear): "
                       "FP8/BF16 emulation runs in float");
}

void expectFP8LinearMatchesTheKernel(bool pow2, int64_t promotion) {
  // N = 160 and M = 40 are not multiples of 128: padding in Dgrad (N) and
  // Wgrad (M).
  int64_t m = 40, n = 160, k = 256;
  std::string precision =
      std::string(R"({"format": "e4m3", "lhs": "tile_1x128", )") +
      R"("rhs": "block_128x128", "scale": ")" + (pow2 ? "pow2" : "fp32") +
      R"(", "promotion": )" + std::to_string(promotion) + R"(, "out": "bf16"})";
  CpuExecutor<float> exec = make<float>(linearProgram(m, n, k, precision));
  std::vector<float> x = randomT<float>(m * k, 41),
                     w = randomT<float>(n * k, 42),
                     dy = randomT<float>(m * n, 43);
  FP8LinearConfig config;
  config.inputRounding =
      pow2 ? numerics::ScaleRounding::Pow2 : numerics::ScaleRounding::FP32;
  config.promotionInterval = promotion;
  config.bf16Output = true;
  std::vector<float> y(m * n), dx(m * k), dw(n * k, 0.0f);
  FP8LinearCache cache;
  llvm::cantFail(fp8LinearForward(x.data(), w.data(), nullptr, {m, n, k},
                                  config, y.data(), &cache));
  llvm::cantFail(fp8LinearBackward(cache, w.data(), dy.data(), {m, n, k},
                                   config, dx.data(), dw.data(), nullptr));
  auto fwd = run(exec, "forward", {x, w});
  ASSERT_EQ(fwd.size(), 1u);
  EXPECT_TRUE(bitIdentical(fwd[0].values, y));
  // Wgrad requantizes the FP8 copy of x, as the forward's cache holds it.
  auto bwd = run(exec, "backward", {x, w, dy});
  ASSERT_EQ(bwd.size(), 2u);
  EXPECT_TRUE(bitIdentical(bwd[0].values, dx));
  EXPECT_TRUE(bitIdentical(bwd[1].values, dw));
}

/// Runs every GEMM as the reference does, counting them, or fails them all.
class CountingEngine : public ScaledGemmEngine {
public:
  explicit CountingEngine(bool fail) : fail(fail) {}
  llvm::Error scaledGemm(const numerics::QuantizedTensor &lhs, int lc,
                         const numerics::QuantizedTensor &rhs, int rc,
                         int64_t promotion, float *out) override {
    ++calls;
    if (fail)
      return llvm::createStringError("the device is on fire");
    numerics::ScaledGemmOptions options;
    options.promotionInterval = promotion;
    numerics::scaledGemm(lhs, lc, rhs, rc, out, options);
    return llvm::Error::success();
  }
  int calls = 0;

private:
  bool fail;
};

TEST(ExecutorTest, FP8LinearGemmsRunOnTheEngine) {
  int64_t m = 40, n = 160, k = 256;
  std::string program = linearProgram(
      m, n, k,
      R"({"format": "e4m3", "lhs": "tile_1x128", "rhs": "block_128x128", )"
      R"("promotion": 128, "out": "bf16"})");
  CpuExecutor<float> plain = make<float>(program);
  CpuExecutor<float> routed = make<float>(program);
  CountingEngine engine(/*fail=*/false);
  routed.setScaledGemmEngine(&engine);
  EXPECT_EQ(routed.getScaledGemmEngine(), &engine);
  std::vector<float> x = randomT<float>(m * k, 51),
                     w = randomT<float>(n * k, 52),
                     dy = randomT<float>(m * n, 53);
  auto y0 = run(plain, "forward", {x, w}), y1 = run(routed, "forward", {x, w});
  EXPECT_EQ(engine.calls, 1);
  auto b0 = run(plain, "backward", {x, w, dy}),
       b1 = run(routed, "backward", {x, w, dy});
  EXPECT_EQ(engine.calls, 3); // Dgrad and Wgrad
  ASSERT_EQ(y1.size(), 1u);
  ASSERT_EQ(b1.size(), 2u);
  EXPECT_TRUE(bitIdentical(y0[0].values, y1[0].values));
  EXPECT_TRUE(bitIdentical(b0[0].values, b1[0].values));
  EXPECT_TRUE(bitIdentical(b0[1].values, b1[1].values));

  // An engine's failure stops the run and names the instruction.
  CountingEngine broken(/*fail=*/true);
  routed.setScaledGemmEngine(&broken);
  auto out = routed.run("forward", {CpuExecutor<float>::Argument(x),
                                    CpuExecutor<float>::Argument(w)});
  ASSERT_FALSE(bool(out));
  EXPECT_CONTAINS(llvm::toString(out.takeError()),
                  "function 'forward', instruction 0 (octet.linear): the "
                  "device is on fire");
  EXPECT_EQ(broken.calls, 1);
}

TEST(ExecutorTest, FP8LinearEqualsTheFP8LinearKernel) {
  expectFP8LinearMatchesTheKernel(/*pow2=*/false, 128);
  expectFP8LinearMatchesTheKernel(/*pow2=*/true, 64);

  std::string err =
      createError(linearProgram(4, 8, 256,
                                R"({"format": "e4m3", "lhs": "per_tensor", )"
                                R"("rhs": "per_tensor", "promotion": 128})"));
  EXPECT_CONTAINS(err, "(octet.linear): the CPU FP8 linear scales lhs = "
                       "tile_1x128 and rhs = block_128x128");
  err =
      createError(linearProgram(4, 8, 256,
                                R"({"format": "e4m3", "lhs": "tile_1x128", )"
                                R"("rhs": "block_128x128", "promotion": 0})"));
  EXPECT_CONTAINS(err, "FP8 promotion interval 0 must be 32, 64 or 128");
  err = createError(linearProgram(4, 8, 256, R"({"format": "e3m4"})"));
  EXPECT_CONTAINS(err, "unknown format 'e3m4'");
}

//===----------------------------------------------------------------------===//
// Every other op against its kernel, through one-instruction programs
//===----------------------------------------------------------------------===//

struct TensorSpec {
  std::string dtype;
  std::vector<int64_t> shape;
};

/// A program whose @f is `body` over `buffers` (dtype, shape), taking and
/// returning the buffers listed.
std::string program(const std::vector<TensorSpec> &buffers,
                    const std::string &arguments, const std::string &results,
                    const std::string &body) {
  std::string list;
  for (const TensorSpec &t : buffers) {
    std::string shape;
    for (int64_t d : t.shape)
      shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    list += std::string(list.empty() ? "" : ",\n") + R"({"dtype": ")" +
            t.dtype + R"(", "shape": [)" + shape + "]}";
  }
  return R"({"format": "octet-program", "version": 1, "buffers": [)" + list +
         R"(], "functions": [{"name": "f", "arguments": [)" + arguments +
         R"(], "results": [)" + results + R"(], "body": [)" + body + "]}]}";
}

/// A program whose function "f" takes `operands` as arguments and returns
/// the results of one `op`.
std::string oneOp(const std::string &op,
                  const std::vector<TensorSpec> &operands,
                  const std::vector<TensorSpec> &results,
                  const std::string &attrs = "{}") {
  auto ids = [](size_t first, size_t count) {
    std::string list;
    for (size_t id = first; id < first + count; ++id)
      list += (list.empty() ? "" : ", ") + std::to_string(id);
    return list;
  };
  std::string args = ids(0, operands.size()),
              res = ids(operands.size(), results.size());
  std::vector<TensorSpec> buffers = operands;
  buffers.insert(buffers.end(), results.begin(), results.end());
  return program(buffers, args, res,
                 R"({"op": ")" + op + R"(", "operands": [)" + args +
                     R"(], "results": [)" + res + R"(], "attrs": )" + attrs +
                     "}");
}

using Exec = CpuExecutor<float>;
using Arg = Exec::Argument;

TensorSpec f32(std::vector<int64_t> shape) { return {"f32", std::move(shape)}; }
TensorSpec i32(std::vector<int64_t> shape) { return {"i32", std::move(shape)}; }

/// Runs a one-op program twice (parameter gradients must not accumulate
/// across runs) and returns the second run's results.
std::vector<Exec::Output> runOne(const std::string &program,
                                 llvm::ArrayRef<Arg> args) {
  Exec exec = make<float>(program);
  run(exec, "f", args);
  return run(exec, "f", args);
}

/// Counts the dense GEMMs and computes them with the reference, after
/// checking the BF16 promise; or fails them all.
class CountingDenseEngine : public DenseGemmEngine {
public:
  explicit CountingDenseEngine(bool fail = false) : fail(fail) {}
  llvm::Error gemm(const DenseGemm &g) override {
    ++calls;
    bf16 += g.bf16Inputs;
    if (fail)
      return llvm::createStringError("cuBLASLt is on strike");
    return checked.gemm(g);
  }
  int calls = 0, bf16 = 0;

private:
  CheckedDenseGemmEngine checked;
  bool fail;
};

// The BF16 and FP32 linears (bias included) and batched products, forward
// and backward, through a DenseGemmEngine: the executor's descriptions of
// them (layouts, leading dimensions, batch strides, accumulation) give the
// CPU's results bit for bit, one engine call per product. A transposed
// operand or a wrong stride would change the values (random inputs, no
// square shapes). An engine's failure names the instruction.
TEST(ExecutorTest, DenseGemmsRunOnTheEngine) {
  const char *precisions[] = {R"({"format": "f32"})",
                              R"({"format": "bf16", "out": "f32"})",
                              R"({"format": "bf16", "out": "bf16"})"};
  for (const char *precision : precisions) {
    SCOPED_TRACE(precision);
    bool bf16 = std::string(precision).find("bf16") != std::string::npos;
    std::string attrs = std::string(R"({"precision": )") + precision + "}";
    auto compare = [&](const std::string &program, llvm::ArrayRef<Arg> args,
                       int expectedCalls) {
      Exec plain = make<float>(program), routed = make<float>(program);
      CountingDenseEngine engine;
      routed.setDenseGemmEngine(&engine);
      EXPECT_EQ(routed.getDenseGemmEngine(), &engine);
      auto a = run(plain, "f", args), b = run(routed, "f", args);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_TRUE(bitIdentical(a[i].values, b[i].values)) << "result " << i;
      EXPECT_EQ(engine.calls, expectedCalls);
      EXPECT_EQ(engine.bf16, bf16 ? expectedCalls : 0);
    };
    int64_t n = 5, k = 7;
    std::vector<float> x = randomT<float>(2 * 3 * k, 61),
                       w = randomT<float>(n * k, 62),
                       bias = randomT<float>(n, 63),
                       dy = randomT<float>(2 * 3 * n, 64);
    compare(oneOp("octet.linear", {f32({2, 3, k}), f32({n, k}), f32({n})},
                  {f32({2, 3, n})}, attrs),
            {x, w, bias}, 1);
    compare(oneOp("octet.linear_dgrad", {f32({2, 3, n}), f32({n, k})},
                  {f32({2, 3, k})}, attrs),
            {dy, w}, 1);
    compare(oneOp("octet.linear_wgrad", {f32({2, 3, n}), f32({2, 3, k})},
                  {f32({n, k})}, attrs),
            {dy, x}, 1);
    for (bool transpose : {false, true}) {
      SCOPED_TRACE(transpose);
      std::vector<float> l = randomT<float>(2 * 3 * 5 * 4, 65),
                         r = randomT<float>(2 * 3 * 4 * 6, 66),
                         g = randomT<float>(2 * 3 * 5 * 6, 67);
      TensorSpec rs = transpose ? f32({2, 3, 6, 4}) : f32({2, 3, 4, 6});
      std::string bmAttrs = std::string(R"({"precision": )") + precision +
                            (transpose ? R"(, "transpose_rhs": true})" : "}");
      compare(oneOp("octet.batch_matmul", {f32({2, 3, 5, 4}), rs},
                    {f32({2, 3, 5, 6})}, bmAttrs),
              {l, r}, 1);
      compare(oneOp("octet.batch_matmul_grad",
                    {f32({2, 3, 5, 4}), rs, f32({2, 3, 5, 6})},
                    {f32({2, 3, 5, 4}), rs}, bmAttrs),
              {l, r, g}, 2);
    }
  }

  CountingDenseEngine broken(/*fail=*/true);
  Exec exec = make<float>(
      oneOp("octet.linear", {f32({3, 4}), f32({2, 4})}, {f32({3, 2})}));
  exec.setDenseGemmEngine(&broken);
  std::vector<float> x = randomT<float>(12, 68), w = randomT<float>(8, 69);
  auto out = exec.run("f", {Arg(x), Arg(w)});
  ASSERT_FALSE(bool(out));
  EXPECT_CONTAINS(llvm::toString(out.takeError()),
                  "function 'f', instruction 0 (octet.linear): cuBLASLt is "
                  "on strike");
}

// What a GPU engine relies on when it converts a BF16 GEMM's operands: the
// check names the first element that is not a BF16 value, in the elements
// op(A) and op(B) read (a transposed operand's included).
TEST(ExecutorTest, BF16GemmInputsAreChecked) {
  std::vector<float> a(2 * 3 * 4), b(2 * 4 * 5);
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = numerics::roundToBF16(0.37f * float(i) - 3.0f);
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = numerics::roundToBF16(1.0f - 0.11f * float(i));
  std::vector<float> c(2 * 3 * 5);
  DenseGemm g;
  g.transB = numerics::Trans::Yes; // B stored [5, 4]
  g.m = 3;
  g.n = 5;
  g.k = 4;
  g.a = a.data();
  g.lda = 4;
  g.strideA = 12;
  g.b = b.data();
  g.ldb = 4;
  g.strideB = 20;
  g.c = c.data();
  g.ldc = 5;
  g.strideC = 15;
  g.batch = 2;
  g.bf16Inputs = true;
  EXPECT_FALSE(bool(checkBF16Inputs(g)));
  CheckedDenseGemmEngine engine;
  EXPECT_FALSE(bool(engine.gemm(g)));
  EXPECT_EQ(engine.getCount(), 1);
  b[20 + 2 * 4 + 3] += 1e-3f; // batch 1, row 2, column 3 of stored B
  llvm::Error e = checkBF16Inputs(g);
  ASSERT_TRUE(bool(e));
  EXPECT_CONTAINS(llvm::toString(std::move(e)), "B[1][2][3]");
  g.bf16Inputs = false; // an FP32 GEMM takes any value
  EXPECT_FALSE(bool(checkBF16Inputs(g)));
}

TEST(ExecutorOpsTest, DenseOps) {
  std::vector<float> table = randomT<float>(10 * 4, 1);
  std::vector<int32_t> ids = {3, 9, 0, 3, 5, 1};
  std::vector<float> emb(6 * 4);
  embeddingForward(table.data(), ids.data(), 6, 10, 4, emb.data());
  auto o = runOne(
      oneOp("octet.embedding", {f32({10, 4}), i32({2, 3})}, {f32({2, 3, 4})}),
      {table, ids});
  ASSERT_EQ(o.size(), 1u);
  EXPECT_TRUE(bitIdentical(o[0].values, emb));

  std::vector<float> dtable(10 * 4, 0.0f);
  embeddingBackward(emb.data(), ids.data(), 6, 10, 4, dtable.data());
  o = runOne(oneOp("octet.embedding_grad", {f32({2, 3, 4}), i32({2, 3})},
                   {f32({10, 4})}),
             {emb, ids});
  EXPECT_TRUE(bitIdentical(o[0].values, dtable));

  // batch_matmul, both layouts, and its gradient.
  for (bool transpose : {false, true}) {
    std::vector<float> l = randomT<float>(2 * 3 * 5 * 4, 2),
                       r = randomT<float>(2 * 3 * 4 * 6, 3),
                       dy = randomT<float>(2 * 3 * 5 * 6, 4);
    BatchMatmulShape s{6, 5, 6, 4, transpose};
    std::vector<float> y(6 * 5 * 6), dl(l.size()), dr(r.size());
    batchMatmulForward(l.data(), r.data(), s, y.data());
    batchMatmulBackward(l.data(), r.data(), dy.data(), s, dl.data(), dr.data());
    TensorSpec rs = transpose ? f32({2, 3, 6, 4}) : f32({2, 3, 4, 6});
    std::string attrs = transpose ? R"({"transpose_rhs": true})" : "{}";
    o = runOne(oneOp("octet.batch_matmul", {f32({2, 3, 5, 4}), rs},
                     {f32({2, 3, 5, 6})}, attrs),
               {l, r});
    EXPECT_TRUE(bitIdentical(o[0].values, y)) << transpose;
    o = runOne(oneOp("octet.batch_matmul_grad",
                     {f32({2, 3, 5, 4}), rs, f32({2, 3, 5, 6})},
                     {f32({2, 3, 5, 4}), rs}, attrs),
               {l, r, dy});
    ASSERT_EQ(o.size(), 2u);
    EXPECT_TRUE(bitIdentical(o[0].values, dl)) << transpose;
    EXPECT_TRUE(bitIdentical(o[1].values, dr)) << transpose;
  }

  // grouped_linear and its gradients; expert 1 has no rows.
  std::vector<float> x = randomT<float>(7 * 5, 5),
                     w = randomT<float>(3 * 4 * 5, 6),
                     dy = randomT<float>(7 * 4, 7);
  std::vector<int32_t> sizes = {3, 0, 4};
  GroupedLinearShape gs{7, 4, 5, 3};
  std::vector<float> y(7 * 4), dx(7 * 5), dw(3 * 4 * 5, 0.0f);
  groupedLinearForward(x.data(), w.data(), sizes.data(), gs, y.data());
  groupedLinearBackward(x.data(), w.data(), sizes.data(), dy.data(), gs,
                        dx.data(), dw.data());
  o = runOne(oneOp("octet.grouped_linear",
                   {f32({7, 5}), f32({3, 4, 5}), i32({3})}, {f32({7, 4})}),
             {x, w, sizes});
  EXPECT_TRUE(bitIdentical(o[0].values, y));
  o = runOne(oneOp("octet.grouped_linear_dgrad",
                   {f32({7, 4}), f32({3, 4, 5}), i32({3})}, {f32({7, 5})}),
             {dy, w, sizes});
  EXPECT_TRUE(bitIdentical(o[0].values, dx));
  o = runOne(oneOp("octet.grouped_linear_wgrad",
                   {f32({7, 4}), f32({7, 5}), i32({3})}, {f32({3, 4, 5})}),
             {dy, x, sizes});
  EXPECT_TRUE(bitIdentical(o[0].values, dw));

  // swiglu, add and the swiglu gradient.
  std::vector<float> g = randomT<float>(12, 8), u = randomT<float>(12, 9),
                     d = randomT<float>(12, 10);
  std::vector<float> sw(12), sum(12), dg(12), du(12);
  swigluForward(g.data(), u.data(), 12, sw.data());
  addForward(g.data(), u.data(), 12, sum.data());
  swigluBackward(g.data(), u.data(), d.data(), 12, dg.data(), du.data());
  o = runOne(oneOp("octet.swiglu", {f32({3, 4}), f32({3, 4})}, {f32({3, 4})}),
             {g, u});
  EXPECT_TRUE(bitIdentical(o[0].values, sw));
  o = runOne(oneOp("octet.add", {f32({3, 4}), f32({3, 4})}, {f32({3, 4})}),
             {g, u});
  EXPECT_TRUE(bitIdentical(o[0].values, sum));
  o = runOne(oneOp("octet.swiglu_grad", {f32({3, 4}), f32({3, 4}), f32({3, 4})},
                   {f32({3, 4}), f32({3, 4})}),
             {g, u, d});
  EXPECT_TRUE(bitIdentical(o[0].values, dg));
  EXPECT_TRUE(bitIdentical(o[1].values, du));
}

TEST(ExecutorOpsTest, NormRotaryAndAttention) {
  std::vector<float> x = randomT<float>(2 * 3 * 8, 1),
                     gamma = randomT<float>(8, 2),
                     dy = randomT<float>(2 * 3 * 8, 3);
  std::vector<float> y(48), dx(48), dgamma(8, 0.0f);
  rmsnormForward(x.data(), gamma.data(), 6, 8, 1e-5, y.data());
  rmsnormBackward(x.data(), gamma.data(), dy.data(), 6, 8, 1e-5, dx.data(),
                  dgamma.data());
  auto o = runOne(oneOp("octet.rmsnorm", {f32({2, 3, 8}), f32({8})},
                        {f32({2, 3, 8})}, R"({"epsilon": 1e-5})"),
                  {x, gamma});
  EXPECT_TRUE(bitIdentical(o[0].values, y));
  o = runOne(oneOp("octet.rmsnorm_grad",
                   {f32({2, 3, 8}), f32({8}), f32({2, 3, 8})},
                   {f32({2, 3, 8}), f32({8})}, R"({"epsilon": 1e-5})"),
             {x, gamma, dy});
  EXPECT_TRUE(bitIdentical(o[0].values, dx));
  EXPECT_TRUE(bitIdentical(o[1].values, dgamma));

  RotaryShape rs{2, 5, 3, 4};
  std::vector<float> r = randomT<float>(2 * 5 * 3 * 4, 4), ry(r.size()),
                     rdx(r.size());
  rotaryForward(r.data(), rs, 500.0, ry.data());
  rotaryBackward(r.data(), rs, 500.0, rdx.data());
  o = runOne(oneOp("octet.rotary", {f32({2, 5, 3, 4})}, {f32({2, 5, 3, 4})},
                   R"({"theta": 500.0})"),
             {r});
  EXPECT_TRUE(bitIdentical(o[0].values, ry));
  o = runOne(oneOp("octet.rotary_grad", {f32({2, 5, 3, 4})},
                   {f32({2, 5, 3, 4})}, R"({"theta": 500.0})"),
             {r});
  EXPECT_TRUE(bitIdentical(o[0].values, rdx));

  // Grouped-query attention with Dqk != Dv, default and explicit scale.
  AttentionShape as{2, 5, 4, 2, 6, 3};
  std::vector<float> q = randomT<float>(2 * 5 * 4 * 6, 5),
                     k = randomT<float>(2 * 5 * 2 * 6, 6),
                     v = randomT<float>(2 * 5 * 2 * 3, 7),
                     ady = randomT<float>(2 * 5 * 4 * 3, 8);
  std::vector<TensorSpec> qkv = {f32({2, 5, 4, 6}), f32({2, 5, 2, 6}),
                                 f32({2, 5, 2, 3})};
  for (double scale : {defaultAttentionScale(6), 0.3}) {
    std::string attrs = scale == 0.3 ? R"({"scale": 0.3})" : "{}";
    std::vector<float> ao(2 * 5 * 4 * 3), dq(q.size()), dk(k.size()),
        dv(v.size());
    causalAttentionForward(q.data(), k.data(), v.data(), as, scale, ao.data());
    causalAttentionBackward(q.data(), k.data(), v.data(), ady.data(), as, scale,
                            dq.data(), dk.data(), dv.data());
    o = runOne(oneOp("octet.causal_attention", qkv, {f32({2, 5, 4, 3})}, attrs),
               {q, k, v});
    EXPECT_TRUE(bitIdentical(o[0].values, ao)) << scale;
    std::vector<TensorSpec> withDy = qkv;
    withDy.push_back(f32({2, 5, 4, 3}));
    o = runOne(oneOp("octet.causal_attention_grad", withDy, qkv, attrs),
               {q, k, v, ady});
    ASSERT_EQ(o.size(), 3u);
    EXPECT_TRUE(bitIdentical(o[0].values, dq)) << scale;
    EXPECT_TRUE(bitIdentical(o[1].values, dk)) << scale;
    EXPECT_TRUE(bitIdentical(o[2].values, dv)) << scale;
  }
}

TEST(ExecutorOpsTest, MixtureOfExpertsAndLoss) {
  int64_t tokens = 6, dim = 8, experts = 4, topK = 2;
  std::vector<float> x = randomT<float>(tokens * dim, 1),
                     w = randomT<float>(experts * dim, 2),
                     bias = randomT<float>(experts, 3);
  MoEGateConfig c{tokens, dim, experts, topK, 2, 1, 2.5, MoEScoring::Sigmoid,
                  true};
  std::string gateAttrs =
      R"({"top_k": 2, "n_group": 2, "topk_group": 1,
          "routed_scaling_factor": 2.5, "scoring": "sigmoid",
          "norm_topk_prob": true})";
  std::vector<float> weights(tokens * topK);
  std::vector<int32_t> indices(tokens * topK);
  moeGateForward(x.data(), w.data(), bias.data(), c, weights.data(),
                 indices.data());
  auto o = runOne(oneOp("octet.moe_gate", {f32({6, 8}), f32({4, 8}), f32({4})},
                        {f32({6, 2}), i32({6, 2})}, gateAttrs),
                  {x, w, bias});
  ASSERT_EQ(o.size(), 2u);
  EXPECT_TRUE(bitIdentical(o[0].values, weights));
  EXPECT_EQ(o[1].ints, cast<int64_t>(indices));
  // Without the bias, softmax scoring.
  MoEGateConfig cs = c;
  cs.scoring = MoEScoring::Softmax;
  cs.normTopkProb = false;
  std::vector<float> weightsS(tokens * topK);
  std::vector<int32_t> indicesS(tokens * topK);
  moeGateForward(x.data(), w.data(), (const float *)nullptr, cs,
                 weightsS.data(), indicesS.data());
  o = runOne(oneOp("octet.moe_gate", {f32({6, 8}), f32({4, 8})},
                   {f32({6, 2}), i32({6, 2})},
                   R"({"top_k": 2, "n_group": 2, "topk_group": 1,
                       "routed_scaling_factor": 2.5, "scoring": "softmax"})"),
             {x, w});
  EXPECT_TRUE(bitIdentical(o[0].values, weightsS));
  EXPECT_EQ(o[1].ints, cast<int64_t>(indicesS));

  std::vector<float> dweights = randomT<float>(tokens * topK, 4);
  std::vector<float> gdx(x.size()), gdw(w.size(), 0.0f);
  moeGateBackward(x.data(), w.data(), indices.data(), dweights.data(), c,
                  gdx.data(), gdw.data());
  o = runOne(oneOp("octet.moe_gate_grad",
                   {f32({6, 8}), f32({4, 8}), i32({6, 2}), f32({6, 2})},
                   {f32({6, 8}), f32({4, 8})},
                   R"({"routed_scaling_factor": 2.5, "scoring": "sigmoid",
                       "norm_topk_prob": true})"),
             {x, w, indices, dweights});
  EXPECT_TRUE(bitIdentical(o[0].values, gdx));
  EXPECT_TRUE(bitIdentical(o[1].values, gdw));

  MoERoutingShape rs{tokens, topK, dim};
  std::vector<float> rows(tokens * topK * dim);
  std::vector<int32_t> sizes(experts);
  moeDispatchForward(x.data(), indices.data(), rs, experts, rows.data(),
                     sizes.data());
  o = runOne(oneOp("octet.moe_dispatch", {f32({6, 8}), i32({6, 2})},
                   {f32({12, 8}), i32({4})}, R"({"num_experts": 4})"),
             {x, indices});
  EXPECT_TRUE(bitIdentical(o[0].values, rows));
  EXPECT_EQ(o[1].ints, cast<int64_t>(sizes));

  std::vector<float> drows = randomT<float>(rows.size(), 5), ddx(x.size());
  moeDispatchBackward(drows.data(), indices.data(), rs, ddx.data());
  o = runOne(oneOp("octet.moe_dispatch_grad", {f32({12, 8}), i32({6, 2})},
                   {f32({6, 8})}, R"({"num_experts": 4})"),
             {drows, indices});
  EXPECT_TRUE(bitIdentical(o[0].values, ddx));

  std::vector<float> combined(tokens * dim), cdy = randomT<float>(x.size(), 6),
                                             cdrows(rows.size()),
                                             cdweights(weights.size());
  moeCombineForward(rows.data(), weights.data(), indices.data(), rs,
                    combined.data());
  moeCombineBackward(rows.data(), weights.data(), indices.data(), cdy.data(),
                     rs, cdrows.data(), cdweights.data());
  o = runOne(oneOp("octet.moe_combine",
                   {f32({12, 8}), f32({6, 2}), i32({6, 2})}, {f32({6, 8})}),
             {rows, weights, indices});
  EXPECT_TRUE(bitIdentical(o[0].values, combined));
  o = runOne(oneOp("octet.moe_combine_grad",
                   {f32({12, 8}), f32({6, 2}), i32({6, 2}), f32({6, 8})},
                   {f32({12, 8}), f32({6, 2})}),
             {rows, weights, indices, cdy});
  EXPECT_TRUE(bitIdentical(o[0].values, cdrows));
  EXPECT_TRUE(bitIdentical(o[1].values, cdweights));

  // A BF16 combine (the recipe's) reads the rows rounded to BF16; its
  // gradient reads them so too and rounds the rows' gradient.
  std::vector<float> brows = rows;
  for (float &v : brows)
    v = numerics::roundToBF16(v);
  ASSERT_FALSE(bitIdentical(brows, rows));
  moeCombineForward(brows.data(), weights.data(), indices.data(), rs,
                    combined.data());
  moeCombineBackward(brows.data(), weights.data(), indices.data(), cdy.data(),
                     rs, cdrows.data(), cdweights.data());
  for (float &v : cdrows)
    v = numerics::roundToBF16(v);
  const std::string bf16 = R"({"precision": {"format": "bf16", "out": "f32"}})";
  o = runOne(oneOp("octet.moe_combine",
                   {f32({12, 8}), f32({6, 2}), i32({6, 2})}, {f32({6, 8})},
                   bf16),
             {rows, weights, indices});
  EXPECT_TRUE(bitIdentical(o[0].values, combined));
  o = runOne(oneOp("octet.moe_combine_grad",
                   {f32({12, 8}), f32({6, 2}), i32({6, 2}), f32({6, 8})},
                   {f32({12, 8}), f32({6, 2})}, bf16),
             {rows, weights, indices, cdy});
  EXPECT_TRUE(bitIdentical(o[0].values, cdrows));
  EXPECT_TRUE(bitIdentical(o[1].values, cdweights));

  // Cross-entropy over [2, 3] tokens with i64 labels, and its gradient
  // scaled by dloss.
  std::vector<float> logits = randomT<float>(6 * 5, 7);
  std::vector<int64_t> labels = {0, 4, 2, 2, 1, 3};
  float loss = crossEntropyForward(logits.data(), labels.data(), 6, 5);
  std::vector<float> dlogits(logits.size());
  crossEntropyBackward(logits.data(), labels.data(), 6, 5, 0.25f,
                       dlogits.data());
  o = runOne(oneOp("octet.cross_entropy", {f32({2, 3, 5}), {"i64", {2, 3}}},
                   {f32({})}),
             {logits, labels});
  EXPECT_TRUE(bitIdentical(o[0].values, std::vector<float>{loss}));
  o = runOne(oneOp("octet.cross_entropy_grad",
                   {f32({2, 3, 5}), {"i64", {2, 3}}, f32({})},
                   {f32({2, 3, 5})}),
             {logits, labels, std::vector<float>{0.25f}});
  EXPECT_TRUE(bitIdentical(o[0].values, dlogits));
}

TEST(ExecutorOpsTest, FP8GroupedLinearIsTheFP8LinearPerExpert) {
  int64_t rows = 50, n = 128, k = 256, experts = 3;
  std::vector<int32_t> sizes = {20, 0, 30};
  std::vector<float> x = randomT<float>(rows * k, 1),
                     w = randomT<float>(experts * n * k, 2),
                     dy = randomT<float>(rows * n, 3);
  FP8LinearConfig config;
  config.inputRounding = numerics::ScaleRounding::Pow2;
  std::vector<float> y, dx, dw;
  expertFP8Linears(x, w, dy, sizes, n, k, config, y, dx, dw);
  std::string attrs =
      R"({"precision": {"format": "e4m3", "lhs": "tile_1x128",
          "rhs": "block_128x128", "scale": "pow2", "promotion": 128,
          "out": "f32"}})";
  auto o = runOne(oneOp("octet.grouped_linear",
                        {f32({50, 256}), f32({3, 128, 256}), i32({3})},
                        {f32({50, 128})}, attrs),
                  {x, w, sizes});
  EXPECT_TRUE(bitIdentical(o[0].values, y));
  o = runOne(oneOp("octet.grouped_linear_dgrad",
                   {f32({50, 128}), f32({3, 128, 256}), i32({3})},
                   {f32({50, 256})}, attrs),
             {dy, w, sizes});
  EXPECT_TRUE(bitIdentical(o[0].values, dx));
  o = runOne(oneOp("octet.grouped_linear_wgrad",
                   {f32({50, 128}), f32({50, 256}), i32({3})},
                   {f32({3, 128, 256})}, attrs),
             {dy, x, sizes});
  EXPECT_TRUE(bitIdentical(o[0].values, dw));
}

//===----------------------------------------------------------------------===//
// Expert parallelism
//===----------------------------------------------------------------------===//

/// The expert exchanges of a group of executors run on threads: a mailbox
/// keyed by (exchange number, sender, receiver), with a bounded wait.
class TestExpertGroup {
public:
  using Message = runtime::ExpertExchange<float>::Message;
  class Member final : public runtime::ExpertExchange<float> {
  public:
    Member(TestExpertGroup &group, int64_t rank) : group(group), rank(rank) {}
    int64_t getGroupSize() const override { return group.size; }
    int64_t getGroupRank() const override { return rank; }
    llvm::Expected<std::vector<Message>>
    allToAll(std::vector<Message> send) override {
      uint64_t n = seq++;
      std::unique_lock<std::mutex> lock(group.mutex);
      for (int64_t p = 0; p < group.size; ++p)
        group.box[{n, rank, p}] = std::move(send[p]);
      group.posted.notify_all();
      auto arrived = [&] {
        for (int64_t p = 0; p < group.size; ++p)
          if (!group.box.count({n, p, rank}))
            return false;
        return true;
      };
      if (!group.posted.wait_for(lock, std::chrono::seconds(10), arrived))
        return llvm::createStringError("a peer did not come");
      std::vector<Message> received;
      for (int64_t p = 0; p < group.size; ++p) {
        received.push_back(std::move(group.box[{n, p, rank}]));
        group.box.erase({n, p, rank});
      }
      return received;
    }

  private:
    TestExpertGroup &group;
    int64_t rank;
    uint64_t seq = 0;
  };

  explicit TestExpertGroup(int64_t size) : size(size) {
    for (int64_t r = 0; r < size; ++r)
      members.push_back(std::make_unique<Member>(*this, r));
  }
  Member &operator[](int64_t r) { return *members[r]; }

  /// Runs `f` of every executor on its own thread with its arguments.
  std::vector<std::vector<Exec::Output>>
  runAll(std::vector<Exec> &execs, const std::vector<std::vector<Arg>> &args,
         std::vector<std::string> *errors = nullptr) {
    std::vector<std::vector<Exec::Output>> out(execs.size());
    std::vector<std::string> errs(execs.size());
    std::vector<std::thread> threads;
    for (size_t r = 0; r < execs.size(); ++r)
      threads.emplace_back([&, r] {
        auto o = execs[r].run("f", args[r]);
        if (o)
          out[r] = std::move(*o);
        else
          errs[r] = llvm::toString(o.takeError());
      });
    for (std::thread &t : threads)
      t.join();
    if (errors)
      *errors = errs;
    else
      for (const std::string &e : errs)
        EXPECT_EQ(e, "");
    return out;
  }

private:
  int64_t size;
  std::mutex mutex;
  std::condition_variable posted;
  std::map<std::tuple<uint64_t, int64_t, int64_t>, Message> box;
  std::vector<std::unique_ptr<Member>> members;
};

/// A copy of `w` ([experts, ...]) with the experts that group rank `rank`
/// of `groupSize` does not own set to NaN: what a rank does not hold.
std::vector<float> ownExpertsOnly(std::vector<float> w, int64_t experts,
                                  int64_t groupSize, int64_t rank) {
  int64_t each = int64_t(w.size()) / experts, local = experts / groupSize;
  for (int64_t e = 0; e < experts; ++e)
    if (e / local != rank)
      std::fill(w.begin() + e * each, w.begin() + (e + 1) * each,
                std::numeric_limits<float>::quiet_NaN());
  return w;
}

/// One MoE layer split over two ranks as --octet-insert-expert-comm splits
/// it: the rows go to their experts' owners (wire `wire`), which run the
/// grouped linear with their experts and send the results back; a gradient
/// of the results goes to the owners, which make their experts' weight
/// gradients. R rows per rank, E = 4 experts, y = x w^T with w [E, N, K].
std::string splitLayerProgram(int64_t r, int64_t k, int64_t n,
                              const std::string &wire,
                              const std::string &precision) {
  std::vector<TensorSpec> buffers = {
      f32({r, k}),     i32({4}),        f32({4, n, k}),  // 0 x, 1 sizes, 2 w
      f32({2 * r, k}), i32({2}),        i32({2, 2}),     // 3 4 5 dispatched
      f32({2, n, k}),  f32({2 * r, n}), f32({r, n}),     // 6 wl, 7 y, 8 back
      f32({r, n}),     f32({2 * r, n}), i32({2}),        // 9 dy, 10 11 12
      i32({2, 2}),     f32({2, n, k}),  f32({4, n, k})}; // 13 dwl, 14 dw
  std::string ranks = R"("ranks": 2)";
  std::string w = R"(, "wire": ")" + wire + R"(")";
  std::string body =
      R"({"op": "octet_pipe.expert_dispatch", "operands": [0, 1],
          "results": [3, 4, 5], "attrs": {)" +
      ranks + w + R"(}},
         {"op": "octet_pipe.local_experts", "operands": [2], "results": [6],
          "attrs": {)" +
      ranks + R"(}},
         {"op": "octet.grouped_linear", "operands": [3, 6, 4], "results": [7],
          "attrs": )" +
      precision + R"(},
         {"op": "octet_pipe.expert_combine", "operands": [7, 5],
          "results": [8], "attrs": {)" +
      ranks + R"(, "wire": "f32"}},
         {"op": "octet_pipe.expert_dispatch", "operands": [9, 1],
          "results": [10, 11, 12], "attrs": {)" +
      ranks + R"(, "wire": "f32"}},
         {"op": "octet.grouped_linear_wgrad", "operands": [10, 3, 4],
          "results": [13], "attrs": )" +
      precision + R"(},
         {"op": "octet_pipe.local_experts_grad", "operands": [13],
          "results": [14], "attrs": {)" +
      ranks + R"(}})";
  return program(buffers, "0, 1, 2, 9", "8, 14", body);
}

// Two ranks, four experts (two each), ragged rows per rank and expert, some
// empty. Each rank's results equal computing every expert locally, bit for
// bit, though a rank holds only its own experts' weights (the others NaN).
// An owner's weight gradient of an expert is the grouped linear's over its
// rows from both ranks (rank 0's, then rank 1's), and zero for the experts
// it does not own. In FP32, and in the FP8 recipe with the rows in FP8 on
// the wire: the experts' quantization of the dequantized rows gives the
// values of the rows' own.
TEST(ExpertParallelTest, SplitLayerEqualsComputingEachExpertLocally) {
  const int64_t experts = 4, n = 128, k = 256, rows = 32;
  const std::vector<std::vector<int32_t>> sizes = {{9, 0, 20, 3},
                                                   {1, 14, 0, 17}};
  const std::string fp8 =
      R"({"precision": {"format": "e4m3", "lhs": "tile_1x128",
          "rhs": "block_128x128", "scale": "pow2", "promotion": 128,
          "out": "f32"}})";
  std::vector<float> w = randomT<float>(experts * n * k, 40);
  for (auto [wire, attrs] :
       {std::pair<std::string, std::string>{"f32", "{}"}, {"e4m3", fp8}}) {
    SCOPED_TRACE(wire);
    std::vector<std::vector<float>> x, dy;
    for (int64_t r = 0; r < 2; ++r) {
      x.push_back(randomT<float>(rows * k, 41 + r));
      dy.push_back(randomT<float>(rows * n, 43 + r));
    }
    TestExpertGroup members(2);
    std::vector<Exec> execs;
    std::vector<std::vector<float>> ws;
    std::vector<std::vector<Arg>> args;
    for (int64_t r = 0; r < 2; ++r)
      ws.push_back(ownExpertsOnly(w, experts, 2, r));
    for (int64_t r = 0; r < 2; ++r) {
      execs.push_back(make<float>(splitLayerProgram(rows, k, n, wire, attrs)));
      execs.back().setExpertExchange(&members[r]);
      args.push_back({x[r], sizes[r], ws[r], dy[r]});
    }
    auto out = members.runAll(execs, args);
    for (int64_t r = 0; r < 2; ++r) {
      SCOPED_TRACE(r);
      ASSERT_EQ(out[r].size(), 2u);
      Exec alone =
          make<float>(oneOp("octet.grouped_linear",
                            {f32({rows, k}), f32({experts, n, k}), i32({4})},
                            {f32({rows, n})}, attrs));
      EXPECT_TRUE(bitIdentical(out[r][0].values,
                               run(alone, "f", {x[r], w, sizes[r]})[0].values));
      // The owner's rows of its experts e = 2r, 2r + 1: rank 0's, rank 1's.
      std::vector<float> ox, ody;
      std::vector<int32_t> osizes;
      for (int64_t e = 2 * r; e < 2 * r + 2; ++e) {
        osizes.push_back(sizes[0][e] + sizes[1][e]);
        for (int64_t p = 0; p < 2; ++p) {
          int64_t first =
              std::accumulate(sizes[p].begin(), sizes[p].begin() + e, 0);
          ox.insert(ox.end(), x[p].begin() + first * k,
                    x[p].begin() + (first + sizes[p][e]) * k);
          ody.insert(ody.end(), dy[p].begin() + first * n,
                     dy[p].begin() + (first + sizes[p][e]) * n);
        }
      }
      int64_t owned = osizes[0] + osizes[1];
      Exec wgrad =
          make<float>(oneOp("octet.grouped_linear_wgrad",
                            {f32({owned, n}), f32({owned, k}), i32({2})},
                            {f32({2, n, k})}, attrs));
      std::vector<float> local = run(wgrad, "f", {ody, ox, osizes})[0].values;
      std::vector<float> expected(experts * n * k, 0.0f);
      std::copy(local.begin(), local.end(), expected.begin() + 2 * r * n * k);
      EXPECT_TRUE(bitIdentical(out[r][1].values, expected));
    }
  }
}

// Under expert parallelism a rank holds of an expert weight only its own
// experts' weights and gradient (Holding::part). It computes what a rank
// holding the whole weight computes, bit for bit: the same results, and of
// the gradient its experts' part (the whole one's is zero elsewhere). Its
// initial weights are the whole one's, from any first element (the draws
// of the elements before are skipped). A function reading the weight
// other than through local_experts is refused.
TEST(ExpertParallelTest, PartHeldExpertWeightComputesAsTheWhole) {
  const int64_t experts = 4, n = 128, k = 256, rows = 32, each = n * k;
  const std::vector<std::vector<int32_t>> sizes = {{9, 0, 20, 3},
                                                   {1, 14, 0, 17}};
  std::string text = splitLayerProgram(rows, k, n, "f32", "{}");
  auto replace = [&](const std::string &from, const std::string &to) {
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace(R"(], "functions": [)",
          R"(], "parameters": [{"name": "w", "shape": [4, 128, 256],
              "init": {"kind": "normal", "std": 0.02}}], "functions": [)");
  replace(R"("arguments": [0, 1, 2, 9], "results": [8, 14])",
          R"("arguments": [0, 1, 9], "results": [8])");
  replace(R"("body": [)",
          R"("body": [{"op": "octet.param", "results": [2],
              "attrs": {"name": "w"}},)");
  text.replace(text.size() - 4, 4,
               R"(, {"op": "octet.grad_accumulate", "operands": [14],
                  "attrs": {"param": "w"}}]}]})");
  ASSERT_EQ(text.substr(text.size() - 4), "]}]}");
  using Range = Exec::Range;
  TestExpertGroup wholes(2), parts(2);
  std::vector<Exec> whole, part;
  std::vector<std::vector<Arg>> args;
  std::vector<std::vector<float>> x, dy;
  for (int64_t r = 0; r < 2; ++r) {
    x.push_back(randomT<float>(rows * k, 41 + r));
    dy.push_back(randomT<float>(rows * n, 43 + r));
  }
  for (int64_t r = 0; r < 2; ++r) {
    whole.push_back(make<float>(text));
    Exec::Holding mine;
    Range own{r * 2 * each, (r + 1) * 2 * each};
    mine.part = [own](llvm::StringRef) { return own; };
    mine.updates = [own](llvm::StringRef) -> std::optional<Range> {
      return own;
    };
    llvm::Expected<Exec> e = Exec::create(parse(text), mine);
    ASSERT_TRUE(bool(e)) << llvm::toString(e.takeError());
    part.push_back(std::move(*e));
    whole[r].initParameters(9);
    part[r].initParameters(9);
    whole[r].setExpertExchange(&wholes[r]);
    part[r].setExpertExchange(&parts[r]);
    EXPECT_EQ(part[r].getWeightBytes(), 2 * each * 4);
    EXPECT_EQ(part[r].getWeightOffset("w"), own.begin);
    EXPECT_TRUE(bitIdentical(
        copyOf<float>(*part[r].masterWeight("w")),
        copyOf<float>(*whole[r].masterWeight("w", own.begin, own.end))));
    args.push_back({x[r], sizes[r], dy[r]});
  }
  auto fromWhole = wholes.runAll(whole, args);
  auto fromPart = parts.runAll(part, args);
  for (int64_t r = 0; r < 2; ++r) {
    SCOPED_TRACE(r);
    ASSERT_EQ(fromPart[r].size(), 1u);
    EXPECT_TRUE(bitIdentical(fromPart[r][0].values, fromWhole[r][0].values));
    int64_t first = r * 2 * each, last = (r + 1) * 2 * each;
    EXPECT_TRUE(
        bitIdentical(copyOf<float>(*part[r].gradient("w")),
                     copyOf<float>(*whole[r].gradient("w", first, last))));
    std::vector<float> g = copyOf<float>(*whole[r].gradient("w"));
    EXPECT_TRUE(std::all_of(g.begin(), g.begin() + first,
                            [](float v) { return v == 0.0f; }));
    EXPECT_TRUE(std::all_of(g.begin() + last, g.end(),
                            [](float v) { return v == 0.0f; }));
    EXPECT_FALSE(part[r].masterWeight("w", first, last + 1).has_value());
    EXPECT_FALSE(part[r].masterWeight("w", first - 1, last).has_value());
  }

  // Any first element, odd too: the weights a whole executor draws.
  Exec::Holding odd;
  odd.part = [](llvm::StringRef) { return Range{3, 11}; };
  odd.updates = [](llvm::StringRef) -> std::optional<Range> {
    return Range{3, 11};
  };
  odd.runs = [](llvm::StringRef fn) { return fn == "optimizer_step"; };
  Exec linear = llvm::cantFail(Exec::create(parse(kLinearProgram), odd));
  Exec all = make<float>(kLinearProgram);
  linear.initParameters(5);
  all.initParameters(5);
  EXPECT_TRUE(bitIdentical(copyOf<float>(*linear.masterWeight("w")),
                           copyOf<float>(*all.masterWeight("w", 3, 11))));
  // @forward reads w whole.
  odd.runs = nullptr;
  llvm::Expected<Exec> refused = Exec::create(parse(kLinearProgram), odd);
  ASSERT_FALSE(bool(refused));
  EXPECT_CONTAINS(llvm::toString(refused.takeError()),
                  "parameter 'w' is held in part here (elements [3, 11): its "
                  "own experts), so only octet_pipe.local_experts may read it");
  // Nor may it update elements it does not hold.
  odd.updates = [](llvm::StringRef) -> std::optional<Range> {
    return Range{0, 11};
  };
  odd.runs = [](llvm::StringRef fn) { return fn == "optimizer_step"; };
  refused = Exec::create(parse(kLinearProgram), odd);
  ASSERT_FALSE(bool(refused));
  EXPECT_CONTAINS(llvm::toString(refused.takeError()),
                  "parameter 'w': this executor updates elements [0, 11) of "
                  "it but holds only [3, 11)");
}

// The FP8 wire is exact only for rows the experts quantize so: other rows
// arrive as their 1x128 power-of-two FP8 values, and BF16 rounds. Both ways:
// rows that went out and came back (two local experts) are the rows that
// arrived, since the rounding does not change them again.
TEST(ExpertParallelTest, WiresRoundTheRowsToTheirFormat) {
  const int64_t rows = 5, k = 200;
  std::vector<float> x = randomT<float>(rows * k, 7);
  std::vector<int32_t> sizes = {2, 3};
  for (const std::string wire : {"f32", "bf16", "e4m3", "e5m2"}) {
    SCOPED_TRACE(wire);
    std::string body = R"({"op": "octet_pipe.expert_dispatch",
        "operands": [0, 1], "results": [2, 3, 4],
        "attrs": {"ranks": 1, "wire": ")" +
                       wire + R"("}},
        {"op": "octet_pipe.expert_combine", "operands": [2, 4],
         "results": [5], "attrs": {"ranks": 1, "wire": ")" +
                       wire + R"("}})";
    Exec exec = make<float>(program({f32({rows, k}), i32({2}), f32({rows, k}),
                                     i32({2}), i32({1, 2}), f32({rows, k})},
                                    "0, 1", "2, 5", body));
    TestExpertGroup members(1);
    exec.setExpertExchange(&members[0]);
    std::vector<Exec::Output> out = run(exec, "f", {x, sizes});
    ASSERT_EQ(out.size(), 2u);
    std::vector<float> got = out[0].values;
    EXPECT_TRUE(bitIdentical(out[1].values, got));
    std::vector<float> expected = x;
    if (wire == "bf16") {
      for (float &v : expected)
        v = numerics::roundToBF16(v);
    } else if (wire != "f32") {
      auto format = wire == "e4m3" ? numerics::FP8Format::E4M3
                                   : numerics::FP8Format::E5M2;
      numerics::QuantizedTensor q = numerics::quantize(
          x.data(), 1, rows, k, format, numerics::Granularity::Tile1x128,
          numerics::ScaleRounding::Pow2);
      numerics::dequantize(q, expected.data());
    }
    EXPECT_TRUE(bitIdentical(got, expected));
    if (wire != "f32") {
      EXPECT_FALSE(bitIdentical(got, x));
    }
  }
}

TEST(ExpertParallelTest,
     RefusesUnevenExpertsMissingGroupsAndRanksAtDifferentOps) {
  std::string dispatch3 = R"({"op": "octet_pipe.expert_dispatch",
      "operands": [0, 1], "results": [2, 3, 4],
      "attrs": {"ranks": 2, "wire": "f32"}})";
  // Three experts do not split over two ranks.
  EXPECT_CONTAINS(
      createError(
          program({f32({4, 5}), i32({3}), f32({8, 5}), i32({1}), i32({2, 1})},
                  "0, 1", "2", dispatch3)),
      "function 'f', instruction 0 (octet_pipe.expert_dispatch): the 3 "
      "experts do not split over 2 ranks");
  std::string bad = dispatch3;
  bad.replace(bad.find("\"f32\""), 5, "\"fp4\"");
  EXPECT_CONTAINS(
      createError(
          program({f32({4, 5}), i32({4}), f32({8, 5}), i32({2}), i32({2, 2})},
                  "0, 1", "2", bad)),
      "attribute 'wire' must be f32, bf16, e4m3 or e5m2, got 'fp4'");
  std::string fp8 = dispatch3;
  fp8.replace(fp8.find("\"f32\""), 5, "\"e4m3\"");
  EXPECT_CONTAINS(
      createError<double>(
          program({f32({4, 5}), i32({4}), f32({8, 5}), i32({2}), i32({2, 2})},
                  "0, 1", "2", fp8)),
      "(octet_pipe.expert_dispatch): FP8/BF16 emulation runs in "
      "float");
  std::vector<TensorSpec> buffers = {f32({4, 5}), i32({4}), f32({8, 5}),
                                     i32({2}), i32({2, 2})};
  std::string dispatch = R"({"op": "octet_pipe.expert_dispatch",
      "operands": [0, 1], "results": [2, 3, 4],
      "attrs": {"ranks": 2, "wire": "f32"}})";
  std::vector<float> x = randomT<float>(4 * 5, 1);
  std::vector<int32_t> sizes = {1, 2, 1, 0};
  // Without a group, and with one of the wrong size.
  {
    Exec exec = make<float>(program(buffers, "0, 1", "2", dispatch));
    EXPECT_CONTAINS(runError(exec, "f", {x, sizes}),
                    "function 'f', instruction 0 (octet_pipe.expert_dispatch): "
                    "the program was compiled for expert parallelism over 2 "
                    "ranks and needs its group");
    TestExpertGroup three(3);
    exec.setExpertExchange(&three[0]);
    EXPECT_CONTAINS(runError(exec, "f", {x, sizes}),
                    "compiled for expert parallelism over 2 ranks, but the "
                    "group has 3");
  }
  // Rank 1 exchanges for another function's op: both ranks say so.
  {
    TestExpertGroup members(2);
    std::string text = program(buffers, "0, 1", "2", dispatch);
    std::vector<Exec> execs;
    execs.push_back(make<float>(text));
    size_t at = text.find(R"("name": "f")");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 11, R"("name": "g")");
    execs.push_back(make<float>(text));
    for (int64_t r = 0; r < 2; ++r)
      execs[r].setExpertExchange(&members[r]);
    std::vector<std::string> errors(2);
    std::thread t0([&] { errors[0] = runError(execs[0], "f", {x, sizes}); });
    std::thread t1([&] { errors[1] = runError(execs[1], "g", {x, sizes}); });
    t0.join();
    t1.join();
    EXPECT_CONTAINS(errors[0], "expert-parallel rank 1 is at @g instruction 0 "
                               "while this rank is at @f instruction 0: the "
                               "ranks of the group run different programs");
    EXPECT_CONTAINS(errors[1], "expert-parallel rank 0 is at @f instruction 0 "
                               "while this rank is at @g instruction 0");
  }
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST(ExecutorErrorsTest, CreationNamesTheFunctionInstructionAndOp) {
  std::string err =
      createError(oneOp("octet.frobnicate", {f32({2})}, {f32({2})}));
  EXPECT_CONTAINS(err, "function 'f', instruction 0 (octet.frobnicate): "
                       "unsupported op 'octet.frobnicate'");
  err = createError(
      oneOp("octet.add", {f32({2, 3}), f32({3, 2})}, {f32({2, 3})}));
  EXPECT_CONTAINS(err, "function 'f', instruction 0 (octet.add): operand 1 "
                       "(f32 [3, 2]): expected shape [2, 3]");
  err = createError(
      oneOp("octet.linear", {f32({4, 8}), f32({16, 8})}, {f32({4, 15})}));
  EXPECT_CONTAINS(err, "(octet.linear): result 0 (f32 [4, 15]): expected "
                       "shape [4, 16]");
  err = createError(
      oneOp("octet.embedding", {f32({10, 4}), f32({6})}, {f32({6, 4})}));
  EXPECT_CONTAINS(err, "operand 1 (f32 [6]): expected i32 or i64");
  err = createError(
      oneOp("octet.rmsnorm", {f32({2, 8}), f32({8})}, {f32({2, 8})}));
  EXPECT_CONTAINS(err, "missing attribute 'epsilon' (a number)");
  err = createError(oneOp("octet.moe_gate", {f32({6, 8}), f32({4, 8})},
                          {f32({6, 2}), i32({6, 2})},
                          R"({"top_k": 2, "n_group": 3, "topk_group": 1,
                              "routed_scaling_factor": 1.0,
                              "scoring": "sigmoid"})"));
  EXPECT_CONTAINS(err, "4 experts do not split into n_group = 3 groups");
  err = createError(oneOp("octet.swiglu", {f32({2})}, {f32({2})}));
  EXPECT_CONTAINS(err, "expected 2 operands, got 1");
  err = createError(oneOp("tensor.extract_slice", {f32({4, 4})}, {f32({2, 2})},
                          R"({"static_offsets": [3, 0],
                              "static_sizes": [2, 2],
                              "static_strides": [1, 1]})"));
  EXPECT_CONTAINS(err, "runs past the tensor's size 4");
  err = createError(oneOp("tensor.extract_slice", {f32({4, 4})}, {f32({2, 2})},
                          R"({"static_offsets": [-9223372036854775808, 0],
                              "static_sizes": [2, 2],
                              "static_strides": [1, 1]})"));
  EXPECT_CONTAINS(err, "is dynamic or negative");
  err = createError(R"({"format": "octet-program", "version": 1,
      "buffers": [{"dtype": "f32", "shape": [2]}],
      "functions": [{"name": "g", "arguments": [], "results": [],
        "body": [{"op": "octet.param", "results": [0],
                  "attrs": {"name": "missing"}}]}]})");
  EXPECT_CONTAINS(err, "function 'g', instruction 0 (octet.param): unknown "
                       "parameter 'missing'");
  err = createError(R"({"format": "octet-program", "version": 1,
      "buffers": [{"dtype": "f32", "shape": [2]}],
      "parameters": [{"name": "bias", "shape": [2], "frozen": true}],
      "functions": [{"name": "g", "arguments": [0], "results": [],
        "body": [{"op": "octet.grad_accumulate", "operands": [0],
                  "attrs": {"param": "bias"}}]}]})");
  EXPECT_CONTAINS(err, "parameter 'bias' is frozen: it has no gradient");
}

TEST(ExecutorErrorsTest, RunningChecksArgumentsAndData) {
  Exec exec = make<float>(kLinearProgram);
  std::vector<float> x = randomT<float>(32, 1);
  std::vector<int32_t> labels = {0, 1, 2, 3};
  EXPECT_CONTAINS(runError(exec, "backward", {x, labels}),
                  "the program has no function 'backward' (it has: forward, "
                  "forward_backward, optimizer_step)");
  EXPECT_CONTAINS(runError(exec, "forward", {x}),
                  "function 'forward' takes 2 arguments, got 1");
  EXPECT_CONTAINS(runError(exec, "forward", {labels, labels}),
                  "function 'forward', argument 0 (%x f32 [4, 8]): expected "
                  "32 values, got 4");
  EXPECT_CONTAINS(runError(exec, "forward", {x, std::vector<float>(4, 1.0f)}),
                  "argument 1 (%labels i32 [4]): expected integer data");
  EXPECT_CONTAINS(
      runError(exec, "forward",
               {x, std::vector<int64_t>{0, 1, int64_t(1) << 33, 2}}),
      "value 8589934592 at element 2 does not fit in i32");
  EXPECT_CONTAINS(
      runError(exec, "forward", {x, std::vector<int32_t>{0, 1, 16, 2}}),
      "function 'forward', instruction 3 (octet.cross_entropy): "
      "label 16 at element 2 is out of range [0, 16)");

  auto o = oneOp("octet.grouped_linear",
                 {f32({7, 5}), f32({3, 4, 5}), i32({3})}, {f32({7, 4})});
  Exec g = make<float>(o);
  std::vector<float> gx(35, 1.0f), gw(60, 1.0f);
  EXPECT_CONTAINS(runError(g, "f", {gx, gw, std::vector<int32_t>{3, 3, 3}}),
                  "(octet.grouped_linear): group sizes sum to 9, more than "
                  "the 7 rows");
  // Fewer grouped rows than rows: the rest are padding, zero in the result
  // also after a run that wrote them.
  std::vector<float> full =
      run(g, "f", {gx, gw, std::vector<int32_t>{3, 2, 2}})[0].values;
  EXPECT_EQ(full[6 * 4], 5.0f);
  std::vector<float> padded =
      run(g, "f", {gx, gw, std::vector<int32_t>{3, 0, 2}})[0].values;
  EXPECT_TRUE(std::equal(padded.begin(), padded.begin() + 5 * 4, full.begin()));
  EXPECT_TRUE(std::all_of(padded.begin() + 5 * 4, padded.end(),
                          [](float v) { return v == 0.0f; }));
  Exec d =
      make<float>(oneOp("octet.moe_dispatch", {f32({6, 8}), i32({6, 2})},
                        {f32({12, 8}), i32({4})}, R"({"num_experts": 4})"));
  std::vector<int32_t> idx(12, 1);
  idx[7] = 4;
  EXPECT_CONTAINS(runError(d, "f", {std::vector<float>(48, 1.0f), idx}),
                  "expert index 4 at element 7 is out of range [0, 4)");
}

} // namespace
