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
     "lhs": "tile_1x128", "rhs": "block_128x128", "transpose_lhs": false,
     "transpose_rhs": false, "kernel": "octet_gemm_1d2d_bf16_m128n16k128_s8_p128_grouped"}
  ],
  "quantizations": [
    {"function": "n", "batch": 1, "rows": 256, "cols": 512,
     "granularity": "tile_1x128", "epsilon": 1e-5,
     "kernel": "octet_rmsnorm_quantize_1x128_bf16_gf32"}
  ]
})");
  llvm::Expected<KernelManifest> m = readKernelManifest(path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  ASSERT_EQ(m->gemms.size(), 2u);
  EXPECT_EQ(m->gemms[0].n, 2112);
  EXPECT_TRUE(m->gemms[0].transposeRhs);
  EXPECT_EQ(m->gemms[0].groups, 1);
  EXPECT_EQ(m->gemms[1].groups, 4);
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
  EXPECT_NE(error(R"({"gemms": [], "quantizations": [{"kernel": "k"}]})")
                .find("malformed quantization entry"),
            std::string::npos);
  EXPECT_NE(llvm::toString(
                readKernelManifest(dir.path("missing.json")).takeError())
                .find("cannot read the kernel manifest"),
            std::string::npos);
}

} // namespace
