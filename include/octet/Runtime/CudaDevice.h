//===- CudaDevice.h - CUDA driver discovery for the runtime -----*- C++ -*-===//
//
// Part of the runtime (no MLIR dependency). The CUDA driver is loaded at run
// time (libcuda.so.1), so Octet's tools start, and report clearly, on
// machines without a GPU or driver.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUDADEVICE_H
#define OCTET_RUNTIME_CUDADEVICE_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace octet::runtime {

/// What the runtime needs to know about one GPU.
struct CudaDeviceInfo {
  int ordinal = 0;
  std::string name;
  int computeCapabilityMajor = 0;
  int computeCapabilityMinor = 0;
  int multiprocessorCount = 0;
  uint64_t totalMemoryBytes = 0;

  /// True for sm_90 (Hopper: H100, H200), the target of Octet's FP8 kernels.
  bool isHopper() const {
    return computeCapabilityMajor == 9 && computeCapabilityMinor == 0;
  }
};

/// Lists the devices the CUDA driver reports. Fails with a message that says
/// what is missing: the driver library, a working driver, or any device.
llvm::Expected<std::vector<CudaDeviceInfo>> listCudaDevices();

} // namespace octet::runtime

#endif // OCTET_RUNTIME_CUDADEVICE_H
