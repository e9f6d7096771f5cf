//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// The GPU runtime's view of CUDA: the driver entry points it uses, resolved
// from libcuda.so.1 at run time through cuGetProcAddress (so binaries start,
// and say why, where no driver is installed), a context on one device,
// device buffers, and errors that name the call and what it was for.
// Only built with the CUDA toolkit's headers (OCTET_HAVE_CUDA).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CUDADRIVER_H
#define OCTET_RUNTIME_CUDADRIVER_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <cuda.h>

#include <cstddef>
#include <string>

namespace octet::runtime::cuda {

/// The driver entry points, named after the API functions.
struct DriverApi {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDeviceGet) deviceGet = nullptr;
  decltype(&::cuDeviceGetCount) deviceGetCount = nullptr;
  decltype(&::cuDeviceGetAttribute) deviceGetAttribute = nullptr;
  decltype(&::cuDeviceGetName) deviceGetName = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primaryCtxRetain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) primaryCtxRelease = nullptr;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent = nullptr;
  // cuGetProcAddress hands out a symbol's newest ABI for CUDA_VERSION; in
  // CUDA 13 that is cuCtxSynchronize_v2, which takes the context (null: the
  // current one), while cuda.h still declares the old one without it.
  decltype(&::cuCtxSynchronize_v2) ctxSynchronize = nullptr;
  decltype(&::cuModuleLoadData) moduleLoadData = nullptr;
  decltype(&::cuModuleUnload) moduleUnload = nullptr;
  decltype(&::cuModuleGetFunction) moduleGetFunction = nullptr;
  decltype(&::cuFuncSetAttribute) funcSetAttribute = nullptr;
  decltype(&::cuLaunchKernel) launchKernel = nullptr;
  decltype(&::cuMemAlloc) memAlloc = nullptr;
  decltype(&::cuMemFree) memFree = nullptr;
  decltype(&::cuMemcpyHtoD) memcpyHtoD = nullptr;
  decltype(&::cuMemcpyDtoH) memcpyDtoH = nullptr;
  decltype(&::cuMemcpyDtoDAsync) memcpyDtoDAsync = nullptr;
  decltype(&::cuMemcpyHtoDAsync) memcpyHtoDAsync = nullptr;
  decltype(&::cuMemcpyDtoHAsync) memcpyDtoHAsync = nullptr;
  decltype(&::cuMemsetD8) memsetD8 = nullptr;
  decltype(&::cuMemsetD8Async) memsetD8Async = nullptr;
  decltype(&::cuStreamCreate) streamCreate = nullptr;
  decltype(&::cuStreamDestroy) streamDestroy = nullptr;
  decltype(&::cuStreamSynchronize) streamSynchronize = nullptr;
  decltype(&::cuEventCreate) eventCreate = nullptr;
  decltype(&::cuEventDestroy) eventDestroy = nullptr;
  decltype(&::cuEventRecord) eventRecord = nullptr;
  decltype(&::cuEventSynchronize) eventSynchronize = nullptr;
  decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
  decltype(&::cuTensorMapEncodeTiled) tensorMapEncodeTiled = nullptr;
  decltype(&::cuGetErrorName) getErrorName = nullptr;
  decltype(&::cuGetErrorString) getErrorString = nullptr;

  /// Success, or an error "<what>: <call> failed: CUDA_ERROR_X (text)".
  llvm::Error check(CUresult result, llvm::StringRef call,
                    const llvm::Twine &what) const;
};

/// The process's driver, loaded on first use.
llvm::Expected<const DriverApi &> getDriver();

/// The number of CUDA devices (0 where the driver finds none).
llvm::Expected<int> getDeviceCount();

/// A device allocation, freed when it goes away.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(const DriverApi *api, CUdeviceptr ptr, size_t bytes)
      : api(api), ptr(ptr), bytes(bytes) {}
  DeviceBuffer(DeviceBuffer &&other) { *this = std::move(other); }
  DeviceBuffer &operator=(DeviceBuffer &&other);
  ~DeviceBuffer();
  CUdeviceptr get() const { return ptr; }
  size_t size() const { return bytes; }

private:
  // Frees the allocation; the move assignment reuses it (calling the
  // destructor there would end the object's lifetime).
  void release();
  const DriverApi *api = nullptr;
  CUdeviceptr ptr = 0;
  size_t bytes = 0;
};

/// The primary context of one device, made current on the calling thread.
class Context {
public:
  static llvm::Expected<Context> create(int ordinal = 0);
  Context(Context &&other) { *this = std::move(other); }
  Context &operator=(Context &&other);
  ~Context();

  const DriverApi &api() const { return *driver; }
  int multiprocessorCount() const { return smCount; }
  int computeCapability() const { return capability; }
  const std::string &deviceName() const { return name; }

  /// Makes the context current on the calling thread (another thread than
  /// the one that created it).
  llvm::Error makeCurrent() const;

  llvm::Expected<DeviceBuffer> allocate(size_t bytes,
                                        const llvm::Twine &what) const;
  /// Makes `buffer` hold at least `bytes`: reallocated only to grow, by
  /// half again, so that a run of slightly larger uses does not reallocate
  /// each time. True when it was reallocated (its address changed).
  llvm::Expected<bool> reserve(DeviceBuffer &buffer, size_t bytes,
                               const llvm::Twine &what) const;
  /// Copies between host (pageable) and device memory. Without a stream,
  /// on the legacy default stream, which waits for every blocking stream of
  /// the context; with one, ordered on that stream alone (so that ranks
  /// sharing a GPU do not wait for each other's work). Either way the host
  /// buffer may be reused at return, and a download has arrived.
  llvm::Error upload(const DeviceBuffer &to, const void *from, size_t bytes,
                     const llvm::Twine &what, CUstream stream = nullptr) const;
  llvm::Error download(void *to, const DeviceBuffer &from, size_t bytes,
                       const llvm::Twine &what,
                       CUstream stream = nullptr) const;
  /// `bytes` from `offset` bytes into `from`.
  llvm::Error download(void *to, const DeviceBuffer &from, size_t offset,
                       size_t bytes, const llvm::Twine &what,
                       CUstream stream = nullptr) const;

private:
  Context() = default;
  /// Releases the primary context (destructor and move assignment).
  void release();
  const DriverApi *driver = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr;
  int smCount = 0;
  int capability = 0;
  std::string name;
};

/// A stream of a context's device with the two events that time the work
/// issued on it; destroyed with the context made current.
class TimedStream {
public:
  /// `what` names its user in messages ("the GEMM": "creating the GEMM
  /// stream"). The context must outlive the stream.
  static llvm::Expected<TimedStream> create(const Context &context,
                                            const llvm::Twine &what);
  TimedStream(TimedStream &&other);
  TimedStream &operator=(TimedStream &&) = delete;
  ~TimedStream();

  CUstream get() const { return stream; }

  /// Records an event, runs `issue` (which enqueues work on the stream),
  /// records another, waits for the stream and returns the milliseconds
  /// between the two events. A fault in the work is reported as
  /// "running <what>: cuStreamSynchronize failed: ...".
  llvm::Expected<float> time(llvm::function_ref<llvm::Error()> issue,
                             const llvm::Twine &what) const;

private:
  TimedStream() = default;
  const Context *context = nullptr;
  CUstream stream = nullptr;
  CUevent start = nullptr, stop = nullptr;
};

} // namespace octet::runtime::cuda

#endif // OCTET_RUNTIME_CUDADRIVER_H
