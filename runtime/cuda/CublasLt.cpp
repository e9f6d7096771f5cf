//===- CublasLt.cpp - cuBLASLt GEMMs, loaded at run time ------------------===//

#include "octet/Runtime/CublasLt.h"

#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdint>
#include <cstdlib>

using namespace octet::runtime::cuda;

struct CublasLt::Api {
  decltype(&::cublasLtCreate) create = nullptr;
  decltype(&::cublasLtDestroy) destroy = nullptr;
  decltype(&::cublasLtGetStatusString) statusString = nullptr;
  decltype(&::cublasLtMatmulDescCreate) descCreate = nullptr;
  decltype(&::cublasLtMatmulDescDestroy) descDestroy = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) descSet = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) layoutCreate = nullptr;
  decltype(&::cublasLtMatrixLayoutDestroy) layoutDestroy = nullptr;
  decltype(&::cublasLtMatrixLayoutSetAttribute) layoutSet = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) prefCreate = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) prefDestroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) prefSet = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&::cublasLtMatmul) matmul = nullptr;
};

/// cuBLASLt's workspace: what its heuristics may use on Hopper.
static constexpr size_t kWorkspaceBytes = 32 << 20;

llvm::Error CublasLt::check(cublasStatus_t status, llvm::StringRef call,
                            const llvm::Twine &what) const {
  if (status == CUBLAS_STATUS_SUCCESS)
    return llvm::Error::success();
  return llvm::createStringError(
      llvm::formatv("{0}: {1} failed: {2}", what.str(), call,
                    api->statusString ? api->statusString(status)
                                      : "cuBLAS status " +
                                            std::to_string(int(status))));
}

llvm::Expected<std::unique_ptr<CublasLt>>
CublasLt::load(const Context &context) {
  const char *env = std::getenv("OCTET_CUBLASLT");
  std::string path = env && *env ? env : "libcublasLt.so.13";
  std::string error;
  auto lib = llvm::sys::DynamicLibrary::getPermanentLibrary(path.c_str(), &error);
  // The toolkit's own copy, where the loader's path does not reach it.
  if (!lib.isValid() && !(env && *env)) {
    std::string ignored;
    lib = llvm::sys::DynamicLibrary::getPermanentLibrary(
        "/usr/local/cuda/lib64/libcublasLt.so.13", &ignored);
  }
  if (!lib.isValid())
    return llvm::createStringError(
        "cuBLASLt not available: cannot load %s (%s); put the CUDA 13 "
        "libraries on LD_LIBRARY_PATH or name the library in OCTET_CUBLASLT",
        path.c_str(), error.c_str());
  std::unique_ptr<CublasLt> lt(new CublasLt);
  lt->context = &context;
  lt->api = std::make_unique<Api>();
  std::string missing;
  auto bind = [&](auto &fn, const char *symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
        lib.getAddressOfSymbol(symbol));
    if (!fn)
      missing += missing.empty() ? symbol : std::string(", ") + symbol;
  };
  Api &a = *lt->api;
  bind(a.create, "cublasLtCreate");
  bind(a.destroy, "cublasLtDestroy");
  bind(a.statusString, "cublasLtGetStatusString");
  bind(a.descCreate, "cublasLtMatmulDescCreate");
  bind(a.descDestroy, "cublasLtMatmulDescDestroy");
  bind(a.descSet, "cublasLtMatmulDescSetAttribute");
  bind(a.layoutCreate, "cublasLtMatrixLayoutCreate");
  bind(a.layoutDestroy, "cublasLtMatrixLayoutDestroy");
  bind(a.layoutSet, "cublasLtMatrixLayoutSetAttribute");
  bind(a.prefCreate, "cublasLtMatmulPreferenceCreate");
  bind(a.prefDestroy, "cublasLtMatmulPreferenceDestroy");
  bind(a.prefSet, "cublasLtMatmulPreferenceSetAttribute");
  bind(a.heuristic, "cublasLtMatmulAlgoGetHeuristic");
  bind(a.matmul, "cublasLtMatmul");
  if (!missing.empty())
    return llvm::createStringError("%s lacks %s: not a CUDA 13 cuBLASLt",
                                   path.c_str(), missing.c_str());
  if (llvm::Error e = lt->check(a.create(&lt->handle), "cublasLtCreate",
                                "starting cuBLASLt"))
    return std::move(e);
  llvm::Expected<DeviceBuffer> ws =
      context.allocate(kWorkspaceBytes, "the cuBLASLt workspace");
  if (!ws)
    return ws.takeError();
  lt->workspace = std::move(*ws);
  return std::move(lt);
}

CublasLt::~CublasLt() {
  if (api && handle)
    api->destroy(handle);
}

CublasLt::Plan::Plan(Plan &&other)
    : lt(other.lt), gemm(other.gemm), desc(other.desc), layoutA(other.layoutA),
      layoutB(other.layoutB), layoutD(other.layoutD), algo(other.algo),
      beta(other.beta) {
  other.lt = nullptr;
}

CublasLt::Plan::~Plan() {
  if (!lt)
    return;
  const Api &a = *lt->api;
  if (layoutA)
    a.layoutDestroy(layoutA);
  if (layoutB)
    a.layoutDestroy(layoutB);
  if (layoutD)
    a.layoutDestroy(layoutD);
  if (desc)
    a.descDestroy(desc);
}

llvm::Expected<CublasLt::Plan> CublasLt::plan(const CublasGemm &gemm) const {
  const Api &a = *api;
  std::string what = llvm::formatv("the cuBLASLt {0} GEMM M={1} N={2} K={3}",
                                   gemm.kind == CublasGemmKind::BF16 ? "BF16"
                                   : gemm.kind == CublasGemmKind::PerTensorFP8
                                       ? "per-tensor FP8"
                                       : "block-scaled FP8",
                                   gemm.m, gemm.n, gemm.k)
                         .str();
  Plan p;
  p.lt = this;
  p.gemm = gemm;
  if (llvm::Error e = check(a.descCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                            "cublasLtMatmulDescCreate", what))
    return std::move(e);
  auto set = [&](cublasLtMatmulDescAttributes_t attr, const auto &value) {
    return check(a.descSet(p.desc, attr, &value, sizeof(value)),
                 "cublasLtMatmulDescSetAttribute", what);
  };
  // Column-major D^T[N, M] = B[N, K] . A[M, K]^T: cuBLASLt's A is our B
  // (transposed), its B our A; FP8 needs exactly this TN form.
  cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
  if (llvm::Error e = set(CUBLASLT_MATMUL_DESC_TRANSA, transposed))
    return std::move(e);
  if (llvm::Error e = set(CUBLASLT_MATMUL_DESC_TRANSB, plain))
    return std::move(e);
  bool fp8 = gemm.kind != CublasGemmKind::BF16;
  if (fp8) {
    void *scaleOfOurB = reinterpret_cast<void *>(gemm.scaleB);
    void *scaleOfOurA = reinterpret_cast<void *>(gemm.scaleA);
    if (llvm::Error e = set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, scaleOfOurB))
      return std::move(e);
    if (llvm::Error e = set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, scaleOfOurA))
      return std::move(e);
    if (gemm.kind == CublasGemmKind::BlockScaledFP8) {
      cublasLtMatmulMatrixScale_t block = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
      cublasLtMatmulMatrixScale_t vector = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
      if (llvm::Error e = set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, block))
        return std::move(e);
      if (llvm::Error e = set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, vector))
        return std::move(e);
    }
  }
  cudaDataType_t in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  if (llvm::Error e = check(a.layoutCreate(&p.layoutA, in, gemm.k, gemm.n, gemm.k),
                            "cublasLtMatrixLayoutCreate", what))
    return std::move(e);
  if (llvm::Error e = check(a.layoutCreate(&p.layoutB, in, gemm.k, gemm.m, gemm.k),
                            "cublasLtMatrixLayoutCreate", what))
    return std::move(e);
  if (llvm::Error e =
          check(a.layoutCreate(&p.layoutD, CUDA_R_16BF, gemm.n, gemm.m, gemm.n),
                "cublasLtMatrixLayoutCreate", what))
    return std::move(e);

  if (llvm::Error e = pickAlgorithm(p, what))
    return std::move(e);
  return std::move(p);
}

llvm::Expected<CublasLt::Plan> CublasLt::plan(const CublasDenseGemm &g) const {
  const Api &a = *api;
  std::string what =
      llvm::formatv("the cuBLASLt {0} GEMM M={1} N={2} K={3}{4}{5}{6}",
                    g.bf16 ? "BF16" : "FP32", g.m, g.n, g.k,
                    g.batch > 1 ? " x" + std::to_string(g.batch) : "",
                    g.transA ? " A^T" : "", g.transB ? " B^T" : "")
          .str();
  Plan p;
  p.lt = this;
  // run() passes our B as cuBLASLt's A and our A as its B, as for the
  // peers: row-major D = op(A) op(B) is column-major D^T = op(B)^T op(A)^T,
  // and a row-major matrix is its transpose in column-major, so each
  // operand keeps its own transpose flag.
  p.gemm.a = g.a;
  p.gemm.b = g.b;
  p.gemm.d = g.d;
  p.beta = g.accumulate ? 1.0f : 0.0f;
  if (llvm::Error e =
          check(a.descCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                "cublasLtMatmulDescCreate", what))
    return std::move(e);
  cublasOperation_t opB = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opA = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (llvm::Error e = check(
          a.descSet(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof(opB)),
          "cublasLtMatmulDescSetAttribute", what))
    return std::move(e);
  if (llvm::Error e = check(
          a.descSet(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof(opA)),
          "cublasLtMatmulDescSetAttribute", what))
    return std::move(e);
  cudaDataType_t in = g.bf16 ? CUDA_R_16BF : CUDA_R_32F;
  // Column-major rows x cols of each stored operand.
  auto layout = [&](cublasLtMatrixLayout_t &l, cudaDataType_t type,
                    int64_t rows, int64_t cols, int64_t ld,
                    int64_t stride) -> llvm::Error {
    if (llvm::Error e = check(a.layoutCreate(&l, type, rows, cols, ld),
                              "cublasLtMatrixLayoutCreate", what))
      return e;
    if (g.batch == 1)
      return llvm::Error::success();
    if (g.batch > INT32_MAX)
      return llvm::createStringError(what + ": more batches than cuBLASLt's "
                                            "32-bit count");
    int32_t count = int32_t(g.batch);
    if (llvm::Error e = check(a.layoutSet(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                          &count, sizeof(count)),
                              "cublasLtMatrixLayoutSetAttribute", what))
      return e;
    return check(a.layoutSet(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                             &stride, sizeof(stride)),
                 "cublasLtMatrixLayoutSetAttribute", what);
  };
  // Our B: [K, N] row-major is N x K column-major; [N, K] (transposed) is
  // K x N. Likewise our A, and D [M, N] is N x M.
  if (llvm::Error e = layout(p.layoutA, in, g.transB ? g.k : g.n,
                             g.transB ? g.n : g.k, g.ldb, g.strideB))
    return std::move(e);
  if (llvm::Error e = layout(p.layoutB, in, g.transA ? g.m : g.k,
                             g.transA ? g.k : g.m, g.lda, g.strideA))
    return std::move(e);
  if (llvm::Error e = layout(p.layoutD, CUDA_R_32F, g.n, g.m, g.ldd, g.strideD))
    return std::move(e);
  if (llvm::Error e = pickAlgorithm(p, what))
    return std::move(e);
  return std::move(p);
}

llvm::Error CublasLt::pickAlgorithm(Plan &p, const std::string &what) const {
  const Api &a = *api;
  cublasLtMatmulPreference_t pref = nullptr;
  if (llvm::Error e = check(a.prefCreate(&pref), "cublasLtMatmulPreferenceCreate",
                            what))
    return e;
  size_t wsBytes = kWorkspaceBytes;
  cublasStatus_t status =
      a.prefSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsBytes,
                sizeof(wsBytes));
  cublasLtMatmulHeuristicResult_t result = {};
  int found = 0;
  if (status == CUBLAS_STATUS_SUCCESS)
    status = a.heuristic(handle, p.desc, p.layoutA, p.layoutB, p.layoutD,
                         p.layoutD, pref, 1, &result, &found);
  a.prefDestroy(pref);
  if (llvm::Error e = check(status, "cublasLtMatmulAlgoGetHeuristic", what))
    return e;
  if (found == 0)
    return llvm::createStringError(what + ": cuBLASLt has no algorithm for it");
  p.algo = result.algo;
  return llvm::Error::success();
}

llvm::Error CublasLt::run(const Plan &p, CUstream stream) const {
  float alpha = 1.0f, beta = p.beta;
  const CublasGemm &g = p.gemm;
  return check(api->matmul(handle, p.desc, &alpha,
                           reinterpret_cast<const void *>(g.b), p.layoutA,
                           reinterpret_cast<const void *>(g.a), p.layoutB,
                           &beta, reinterpret_cast<const void *>(g.d),
                           p.layoutD, reinterpret_cast<void *>(g.d), p.layoutD,
                           &p.algo, reinterpret_cast<void *>(workspace.get()),
                           workspace.size(), reinterpret_cast<cudaStream_t>(stream)),
               "cublasLtMatmul", "running a cuBLASLt GEMM");
}
