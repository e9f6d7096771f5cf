//===- KernelManifestTest.cpp - Reading octetc's kernel manifests ---------===//

#include "octet/Runtime/KernelManifest.h"

#include "IOTestUtil.h"

#include "gtest/gtest.h"

using namespace octet::runtime;
using octet::test::TempDir;
using octet::test::writeBytes;

namespace {

TEST(KernelManifestTest, ReadsGemmsAndQuantizations) {
  TempDir dir;
  std::string path = dir.path("kernels.json");
  writeBytes(path, R"({
  "gemms": [
    {"function": "f", "location": "loc", "m": 128, "n": 2112, "k": 512,
     "lhs": "tile_1x128", "rhs": "block_128x128", "transpose_lhs": false,
     "transpose_rhs": true, "kernel": "octet_gemm_1d2d_bf16_m128n16k128_s8_p128"},
    {"function": "e", "m": 512, "n": 192, "k": 256, "groups": 4,
     "grouping": "m", "lhs": "tile_1x128", "rhs": "block_128x128",
     "transpose_lhs": false, "transpose_rhs": false,
     "kernel": "octet_gemm_1d2d_bf16_m128n16k128_s8_p128_grouped"},
    {"function": "w", "m": 192, "n": 256, "k": 1024, "groups": 4,
     "grouping": "k", "lhs": "tile_128x1", "rhs": "tile_128x1",
     "transpose_lhs": true, "transpose_rhs": true,
     "kernel": "octet_gemm_1d1d_f32_m128n16k128_s8_p128"}
  ],
  "quantizations": [
    {"function": "n", "batch": 1, "rows": 256, "cols": 512,
     "granularity": "tile_1x128", "epsilon": 1e-5,
     "kernel": "octet_rmsnorm_quantize_1x128_bf16_gf32"}
  ]
})");
  llvm::Expected<KernelManifest> m = readKernelManifest(path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  ASSERT_EQ(m->gemms.size(), 3u);
  EXPECT_EQ(m->gemms[0].n, 2112);
  EXPECT_TRUE(m->gemms[0].transposeRhs);
  EXPECT_EQ(m->gemms[0].groups, 1);
  EXPECT_EQ(m->gemms[0].grouping, "");
  EXPECT_EQ(m->gemms[1].groups, 4);
  EXPECT_EQ(m->gemms[1].grouping, "m");
  EXPECT_EQ(m->gemms[2].grouping, "k");
  EXPECT_EQ(m->gemms[2].k, 1024);
  ASSERT_EQ(m->quantizations.size(), 1u);
  EXPECT_EQ(m->quantizations[0].cols, 512);
  EXPECT_DOUBLE_EQ(m->quantizations[0].epsilon, 1e-5);
  EXPECT_EQ(m->quantizations[0].kernel,
            "octet_rmsnorm_quantize_1x128_bf16_gf32");
}

TEST(KernelManifestTest, SaysWhatIsWrong) {
  TempDir dir;
  std::string path = dir.path("bad.json");
  auto error = [&](llvm::StringRef text) {
    writeBytes(path, text);
    llvm::Expected<KernelManifest> m = readKernelManifest(path);
    return m ? std::string("no error") : llvm::toString(m.takeError());
  };
  EXPECT_NE(error("{").find(path), std::string::npos);
  EXPECT_NE(error("{}").find("expected {\"gemms\": [...]}"), std::string::npos);
  EXPECT_NE(error(R"({"gemms": [{"function": "f"}]})")
                .find("malformed GEMM entry"),
            std::string::npos);
  std::string gemm = R"("function": "f", "m": 1, "n": 1, "k": 128,
      "lhs": "tile_1x128", "rhs": "block_128x128", "transpose_lhs": false,
      "transpose_rhs": false, "kernel": "g")";
  EXPECT_NE(error(R"({"gemms": [{"grouping": "n", )" + gemm + "}]}")
                .find("GEMM 'f' has grouping 'n', expected \"m\" or \"k\""),
            std::string::npos);
  EXPECT_NE(error(R"({"gemms": [{"groups": 0, "grouping": "m", )" + gemm +
                  "}]}")
                .find("GEMM 'f' has 0 groups; expected at least 1"),
            std::string::npos);
  // Before "grouping", every expert GEMM was M-grouped.
  writeBytes(path, R"({"gemms": [{"groups": 4, )" + gemm + "}]}");
  llvm::Expected<KernelManifest> old = readKernelManifest(path);
  ASSERT_TRUE(bool(old)) << llvm::toString(old.takeError());
  EXPECT_EQ(old->gemms[0].grouping, "m");
  EXPECT_NE(error(R"({"gemms": [], "quantizations": [{"kernel": "k"}]})")
                .find("malformed quantization entry"),
            std::string::npos);
  EXPECT_NE(llvm::toString(
                readKernelManifest(dir.path("missing.json")).takeError())
                .find("cannot read the kernel manifest"),
            std::string::npos);
}

} // namespace
