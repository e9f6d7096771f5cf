//===- CudaDevice.cpp - CUDA driver discovery -----------------------------===//
//
// Loads libcuda.so.1 with dlopen rather than linking it, as the driver lives
// outside the toolkit: a binary linked against it would not even start on a
// machine without one.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CudaDevice.h"

#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/FormatVariadic.h"

using namespace octet::runtime;

namespace {

// The few driver entry points used here, with the driver API's C types
// (CUresult and CUdevice are int; CUdevice_attribute is an enum).
using CuInitFn = int (*)(unsigned);
using CuDeviceGetCountFn = int (*)(int *);
using CuDeviceGetFn = int (*)(int *, int);
using CuDeviceGetNameFn = int (*)(char *, int, int);
using CuDeviceGetAttributeFn = int (*)(int *, int, int);
using CuDeviceTotalMemFn = int (*)(size_t *, int);
using CuGetErrorStringFn = int (*)(int, const char **);

// CUdevice_attribute values from cuda.h (stable across CUDA versions).
constexpr int kAttrMultiprocessorCount = 16;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;

struct Driver {
  CuInitFn init = nullptr;
  CuDeviceGetCountFn getCount = nullptr;
  CuDeviceGetFn get = nullptr;
  CuDeviceGetNameFn getName = nullptr;
  CuDeviceGetAttributeFn getAttribute = nullptr;
  CuDeviceTotalMemFn totalMem = nullptr;
  CuGetErrorStringFn errorString = nullptr;

  std::string describe(int result) const {
    const char *text = nullptr;
    if (errorString && errorString(result, &text) == 0 && text)
      return llvm::formatv("{0} (CUresult {1})", text, result).str();
    return llvm::formatv("CUresult {0}", result).str();
  }
};

llvm::Expected<Driver> loadDriver() {
  constexpr const char *kLibrary = "libcuda.so.1";
  std::string error;
  auto lib = llvm::sys::DynamicLibrary::getPermanentLibrary(kLibrary, &error);
  if (!lib.isValid())
    return llvm::createStringError(
        "CUDA driver not available: cannot load %s (%s); is an NVIDIA "
        "driver installed on this machine?",
        kLibrary, error.c_str());
  Driver d;
  auto bind = [&](auto &fn, const char *symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
        lib.getAddressOfSymbol(symbol));
    return fn != nullptr;
  };
  for (auto [ok, symbol] :
       {std::pair{bind(d.init, "cuInit"), "cuInit"},
        std::pair{bind(d.getCount, "cuDeviceGetCount"), "cuDeviceGetCount"},
        std::pair{bind(d.get, "cuDeviceGet"), "cuDeviceGet"},
        std::pair{bind(d.getName, "cuDeviceGetName"), "cuDeviceGetName"},
        std::pair{bind(d.getAttribute, "cuDeviceGetAttribute"),
                  "cuDeviceGetAttribute"},
        std::pair{bind(d.totalMem, "cuDeviceTotalMem_v2"),
                  "cuDeviceTotalMem_v2"},
        std::pair{bind(d.errorString, "cuGetErrorString"), "cuGetErrorString"}})
    if (!ok)
      return llvm::createStringError("CUDA driver %s lacks %s: too old?",
                                     kLibrary, symbol);
  return d;
}

} // namespace

llvm::Expected<std::vector<CudaDeviceInfo>> octet::runtime::listCudaDevices() {
  llvm::Expected<Driver> driver = loadDriver();
  if (!driver)
    return driver.takeError();
  if (int r = driver->init(0))
    return llvm::createStringError("cuInit failed: %s",
                                   driver->describe(r).c_str());
  int count = 0;
  if (int r = driver->getCount(&count))
    return llvm::createStringError("cuDeviceGetCount failed: %s",
                                   driver->describe(r).c_str());
  if (count == 0)
    return llvm::createStringError("the CUDA driver reports no devices");

  std::vector<CudaDeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    CudaDeviceInfo info;
    info.ordinal = i;
    int device = 0;
    char name[256] = {};
    size_t memory = 0;
    int r = driver->get(&device, i);
    if (!r)
      r = driver->getName(name, sizeof(name), device);
    if (!r)
      r = driver->getAttribute(&info.computeCapabilityMajor,
                               kAttrComputeCapabilityMajor, device);
    if (!r)
      r = driver->getAttribute(&info.computeCapabilityMinor,
                               kAttrComputeCapabilityMinor, device);
    if (!r)
      r = driver->getAttribute(&info.multiprocessorCount,
                               kAttrMultiprocessorCount, device);
    if (!r)
      r = driver->totalMem(&memory, device);
    if (r)
      return llvm::createStringError("querying CUDA device %d failed: %s", i,
                                     driver->describe(r).c_str());
    info.name = name;
    info.totalMemoryBytes = memory;
    devices.push_back(std::move(info));
  }
  return devices;
}
