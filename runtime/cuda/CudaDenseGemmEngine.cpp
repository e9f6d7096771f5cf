//===- CudaDenseGemmEngine.cpp - BF16 and FP32 GEMMs with cuBLASLt --------===//

#include "octet/Runtime/CudaDenseGemmEngine.h"

#include "octet/Numerics/BFloat16.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

using namespace octet;
using namespace octet::runtime;
using namespace octet::runtime::cuda;

CudaDenseGemmEngine::CudaDenseGemmEngine(Context context)
    : context(std::move(context)) {}

CudaDenseGemmEngine::~CudaDenseGemmEngine() {
  // Nothing is in flight: every GEMM waits for its result.
  if (llvm::Error e = context.makeCurrent())
    llvm::consumeError(std::move(e));
  plans.clear(); // before cuBLASLt goes
  lt.reset();
}

llvm::Expected<std::unique_ptr<CudaDenseGemmEngine>>
CudaDenseGemmEngine::create(int ordinal) {
  llvm::Expected<Context> ctx = Context::create(ordinal);
  if (!ctx)
    return ctx.takeError();
  std::unique_ptr<CudaDenseGemmEngine> engine(
      new CudaDenseGemmEngine(std::move(*ctx)));
  llvm::Expected<std::unique_ptr<CublasLt>> lt =
      CublasLt::load(engine->context);
  if (!lt)
    return lt.takeError();
  engine->lt = std::move(*lt);
  llvm::Expected<TimedStream> stream =
      TimedStream::create(engine->context, "the cuBLASLt");
  if (!stream)
    return stream.takeError();
  engine->stream.emplace(std::move(*stream));
  return std::move(engine);
}

llvm::Error CudaDenseGemmEngine::reserve(DeviceBuffer &buffer, size_t bytes,
                                         const llvm::Twine &what) {
  llvm::Expected<bool> moved = context.reserve(buffer, bytes, what);
  if (!moved)
    return moved.takeError();
  if (*moved)
    plans.clear(); // they point into the buffers
  return llvm::Error::success();
}

/// Elements from an operand's first to its last: batch matrices of rows x
/// cols, rows `ld` apart, matrices `stride` apart.
static int64_t span(int64_t batch, int64_t stride, int64_t rows, int64_t cols,
                    int64_t ld) {
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

llvm::Error CudaDenseGemmEngine::gemm(const cpu::DenseGemm &g) {
  auto started = std::chrono::steady_clock::now();
  bool ta = g.transA == numerics::Trans::Yes;
  bool tb = g.transB == numerics::Trans::Yes;
  std::string what =
      llvm::formatv("the {0} GEMM M={1} N={2} K={3}",
                    g.bf16Inputs ? "BF16" : "FP32", g.m, g.n, g.k)
          .str();
  if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0)
    return llvm::createStringError(what + ": negative size");
  // cuBLASLt's sizes and batch count are 32-bit.
  if (std::max({g.m, g.n, g.k, g.batch}) > INT32_MAX)
    return llvm::createStringError(what + ": a size exceeds cuBLASLt's "
                                          "32-bit limits");
  if (g.m == 0 || g.n == 0 || g.batch == 0)
    return llvm::Error::success();
  if (g.k == 0) {
    // An empty sum: cuBLASLt refuses K = 0; C keeps its value or becomes 0.
    if (!g.accumulate)
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t i = 0; i < g.m; ++i)
          std::fill_n(g.c + b * g.strideC + i * g.ldc, g.n, 0.0f);
    return llvm::Error::success();
  }
  int64_t rowsA = ta ? g.k : g.m, colsA = ta ? g.m : g.k;
  int64_t rowsB = tb ? g.n : g.k, colsB = tb ? g.k : g.n;
  int64_t spanA = span(g.batch, g.strideA, rowsA, colsA, g.lda);
  int64_t spanB = span(g.batch, g.strideB, rowsB, colsB, g.ldb);
  int64_t spanC = span(g.batch, g.strideC, g.m, g.n, g.ldc);
  if (g.lda < colsA || g.ldb < colsB || g.ldc < g.n)
    return llvm::createStringError(what + ": a leading dimension is shorter "
                                          "than its rows");
  size_t element = g.bf16Inputs ? 2 : 4;

  std::lock_guard<std::mutex> lock(mutex);
  if (llvm::Error e = context.makeCurrent())
    return e;
  auto put = [&](DeviceBuffer &to, const float *from, int64_t count,
                 const char *name) -> llvm::Error {
    std::string label = std::string(name) + " of " + what;
    if (llvm::Error e = reserve(to, size_t(count) * element, label))
      return e;
    if (!g.bf16Inputs)
      return context.upload(to, from, size_t(count) * 4, label, stream->get());
    // Exact: the executor rounded these values to BF16.
    staging.resize(size_t(count));
    for (int64_t i = 0; i < count; ++i)
      staging[size_t(i)] = numerics::floatToBF16(from[i]);
    return context.upload(to, staging.data(), size_t(count) * 2, label,
                          stream->get());
  };
  if (llvm::Error e = put(a, g.a, spanA, "A"))
    return e;
  if (llvm::Error e = put(b, g.b, spanB, "B"))
    return e;
  if (llvm::Error e = reserve(d, size_t(spanC) * 4, "C of " + what))
    return e;
  // C goes up only when it is added to. Where its span has gaps (rows or
  // matrices apart), only its rows come back: the gaps are not the GEMM's.
  bool gaps = g.ldc != g.n || (g.batch > 1 && g.strideC != g.m * g.ldc);
  if (g.accumulate)
    if (llvm::Error e = context.upload(d, g.c, size_t(spanC) * 4,
                                       "C of " + what, stream->get()))
      return e;

  std::vector<int64_t> key = {g.bf16Inputs, ta,          tb,        g.m,
                              g.n,          g.k,         g.lda,     g.ldb,
                              g.ldc,        g.strideA,   g.strideB, g.strideC,
                              g.batch,      g.accumulate};
  auto plan = plans.find(key);
  if (plan == plans.end()) {
    CublasDenseGemm desc;
    desc.bf16 = g.bf16Inputs;
    desc.transA = ta;
    desc.transB = tb;
    desc.a = a.get();
    desc.b = b.get();
    desc.d = d.get();
    desc.m = g.m;
    desc.n = g.n;
    desc.k = g.k;
    desc.lda = g.lda;
    desc.ldb = g.ldb;
    desc.ldd = g.ldc;
    desc.strideA = g.strideA;
    desc.strideB = g.strideB;
    desc.strideD = g.strideC;
    desc.batch = g.batch;
    desc.accumulate = g.accumulate;
    llvm::Expected<CublasLt::Plan> made = lt->plan(desc);
    if (!made)
      return made.takeError();
    plan = plans.emplace(key, std::move(*made)).first;
  }
  llvm::Expected<float> ms = stream->time(
      [&]() -> llvm::Error {
        if (llvm::Error e = lt->run(plan->second, stream->get()))
          return llvm::createStringError(what + ": " +
                                         llvm::toString(std::move(e)));
        return llvm::Error::success();
      },
      what);
  if (!ms)
    return ms.takeError();
  if (!gaps) {
    if (llvm::Error e = context.download(g.c, d, size_t(spanC) * 4,
                                         "C of " + what, stream->get()))
      return e;
  } else {
    // One copy of the span, then only C's rows out of it.
    std::vector<float> spanned(static_cast<size_t>(spanC));
    if (llvm::Error e = context.download(spanned.data(), d, size_t(spanC) * 4,
                                         "C of " + what, stream->get()))
      return e;
    for (int64_t bi = 0; bi < g.batch; ++bi)
      for (int64_t i = 0; i < g.m; ++i) {
        size_t at = size_t(bi * g.strideC + i * g.ldc);
        std::copy_n(spanned.data() + at, g.n, g.c + at);
      }
  }

  ++stats.gemms;
  stats.flops +=
      2.0 * double(g.m) * double(g.n) * double(g.k) * double(g.batch);
  stats.seconds += *ms * 1e-3;
  stats.engineSeconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  return llvm::Error::success();
}

CudaDenseGemmEngine::Stats CudaDenseGemmEngine::getStats() const {
  std::lock_guard<std::mutex> lock(mutex);
  return stats;
}
