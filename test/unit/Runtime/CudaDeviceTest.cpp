//===- CudaDeviceTest.cpp - CUDA driver discovery tests -------------------===//
//
// Runs everywhere: without a driver it checks the error says so; with a GPU
// it checks what the driver reports. The Hopper check is skipped, with the
// reason, on machines without an sm_90 GPU.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CudaDevice.h"

#include "gtest/gtest.h"

#include <iostream>

using namespace octet::runtime;

namespace {

TEST(CudaDeviceTest, ListsDevicesOrSaysWhyNot) {
  llvm::Expected<std::vector<CudaDeviceInfo>> devices = listCudaDevices();
  if (!devices) {
    std::string message = llvm::toString(devices.takeError());
    // The three ways to have no GPU each name their cause.
    bool explained = message.find("libcuda.so.1") != std::string::npos ||
                     message.find("cuInit failed") != std::string::npos ||
                     message.find("reports no devices") != std::string::npos;
    EXPECT_TRUE(explained) << message;
    return;
  }
  ASSERT_FALSE(devices->empty());
  for (const CudaDeviceInfo &d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.computeCapabilityMajor, 3) << d.name;
    EXPECT_GT(d.multiprocessorCount, 0) << d.name;
    EXPECT_GT(d.totalMemoryBytes, uint64_t(1) << 30) << d.name;
  }
}

TEST(CudaDeviceTest, HopperIsVisibleOnGpuMachines) {
  llvm::Expected<std::vector<CudaDeviceInfo>> devices = listCudaDevices();
  if (!devices)
    GTEST_SKIP() << "no CUDA device: " << llvm::toString(devices.takeError());
  const CudaDeviceInfo &d = devices->front();
  if (!d.isHopper())
    GTEST_SKIP() << "device 0 is " << d.name << " (sm_"
                 << d.computeCapabilityMajor << d.computeCapabilityMinor
                 << "), not sm_90";
  // H100 SXM has 132 SMs, H200 132, H100 PCIe 114; all have >= 80 GB.
  EXPECT_GE(d.multiprocessorCount, 114) << d.name;
  EXPECT_GE(d.totalMemoryBytes, uint64_t(79) << 30) << d.name;
  std::cout << "[ INFO     ] " << d.name << ", sm_90, " << d.multiprocessorCount
            << " SMs, " << (d.totalMemoryBytes >> 30) << " GiB\n";
}

} // namespace
