//===- CudaTestUtil.h - Shared by the GPU kernel tests ----------*- C++ -*-===//
//
// The fixture of the tests that run generated kernels: it skips, with the
// reason, where there is no sm_90 GPU, and keeps the device buffers a test
// uploads; plus the few helpers the tests share.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_TEST_UNIT_RUNTIME_CUDATESTUTIL_H
#define OCTET_TEST_UNIT_RUNTIME_CUDATESTUTIL_H

#include "octet/Runtime/CudaDriver.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace octet::runtime::cuda {

/// The value of an environment variable, or `fallback` when unset.
inline std::string pathFromEnv(const char *variable, const char *fallback) {
  const char *value = std::getenv(variable);
  return value && *value ? value : fallback;
}

class HopperTest : public ::testing::Test {
protected:
  void SetUp() override {
    llvm::Expected<Context> ctx = Context::create(0);
    if (!ctx)
      GTEST_SKIP() << "no CUDA device: " << llvm::toString(ctx.takeError());
    if (ctx->computeCapability() != 90)
      GTEST_SKIP() << "the generated kernels target sm_90 (Hopper); device 0 "
                      "is "
                   << ctx->deviceName() << ", sm_" << ctx->computeCapability();
    context.emplace(std::move(*ctx));
  }

  /// Uploads `host` to a new device buffer the fixture keeps.
  template <typename T> CUdeviceptr put(const std::vector<T> &host) {
    size_t bytes = host.size() * sizeof(T);
    llvm::Expected<DeviceBuffer> b = context->allocate(bytes, "an operand");
    EXPECT_TRUE(bool(b));
    if (!b) {
      llvm::consumeError(b.takeError());
      return 0;
    }
    EXPECT_FALSE(bool(context->upload(*b, host.data(), bytes, "an operand")));
    CUdeviceptr p = b->get();
    buffers.push_back(std::move(*b));
    return p;
  }

  /// A device buffer of `bytes` filled with `byte` (0xFF: NaN in BF16 and
  /// FP32), so that what a kernel does not write shows.
  std::optional<DeviceBuffer> poisoned(size_t bytes, unsigned char byte) {
    llvm::Expected<DeviceBuffer> b = context->allocate(bytes, "an output");
    if (!b) {
      ADD_FAILURE() << llvm::toString(b.takeError());
      return std::nullopt;
    }
    const DriverApi &api = context->api();
    if (llvm::Error e = api.check(api.memsetD8(b->get(), byte, bytes),
                                  "cuMemsetD8", "poisoning an output")) {
      ADD_FAILURE() << llvm::toString(std::move(e));
      return std::nullopt;
    }
    return std::move(*b);
  }

  /// Waits for the kernels launched so far; a failure names `what`.
  void synchronize(const std::string &what) {
    const DriverApi &api = context->api();
    llvm::Error e =
        api.check(api.ctxSynchronize(nullptr), "cuCtxSynchronize", what);
    EXPECT_FALSE(bool(e)) << llvm::toString(std::move(e));
  }

  std::optional<Context> context;
  std::vector<DeviceBuffer> buffers;
};

} // namespace octet::runtime::cuda

#endif // OCTET_TEST_UNIT_RUNTIME_CUDATESTUTIL_H
