//===- CudaDriver.cpp - The CUDA driver API, loaded at run time -----------===//
//
// Entry points are resolved with cuGetProcAddress for the CUDA version the
// headers describe, which picks the right versioned symbol (cuMemAlloc_v2
// and the like) without spelling it here.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/CudaDriver.h"

#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <mutex>

using namespace octet::runtime::cuda;

llvm::Error DriverApi::check(CUresult result, llvm::StringRef call,
                             const llvm::Twine &what) const {
  if (result == CUDA_SUCCESS)
    return llvm::Error::success();
  const char *name = nullptr, *text = nullptr;
  if (getErrorName)
    getErrorName(result, &name);
  if (getErrorString)
    getErrorString(result, &text);
  return llvm::createStringError(llvm::formatv(
      "{0}: {1} failed: {2} ({3})", what.str(), call,
      name ? name : "CUDA error " + std::to_string(int(result)),
      text ? text : "no description"));
}

namespace {

llvm::Expected<DriverApi> loadDriver() {
  constexpr const char *kLibrary = "libcuda.so.1";
  std::string error;
  auto lib = llvm::sys::DynamicLibrary::getPermanentLibrary(kLibrary, &error);
  if (!lib.isValid())
    return llvm::createStringError(
        "CUDA driver not available: cannot load %s (%s); is an NVIDIA driver "
        "installed on this machine?",
        kLibrary, error.c_str());
  using GetProcAddress = CUresult (*)(const char *, void **, int, cuuint64_t,
                                      CUdriverProcAddressQueryResult *);
  auto getProc = reinterpret_cast<GetProcAddress>(
      lib.getAddressOfSymbol("cuGetProcAddress_v2"));
  if (!getProc)
    return llvm::createStringError(
        "CUDA driver %s has no cuGetProcAddress_v2: the driver is older than "
        "CUDA 12; Octet needs a CUDA 13 driver (580 or newer)",
        kLibrary);
  DriverApi api;
  std::string missing;
  auto bind = [&](auto &fn, const char *symbol) {
    void *address = nullptr;
    CUdriverProcAddressQueryResult status;
    if (getProc(symbol, &address, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT,
                &status) != CUDA_SUCCESS ||
        !address) {
      missing += missing.empty() ? symbol : std::string(", ") + symbol;
      return;
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(address);
  };
  bind(api.init, "cuInit");
  bind(api.deviceGet, "cuDeviceGet");
  bind(api.deviceGetCount, "cuDeviceGetCount");
  bind(api.deviceGetAttribute, "cuDeviceGetAttribute");
  bind(api.deviceGetName, "cuDeviceGetName");
  bind(api.primaryCtxRetain, "cuDevicePrimaryCtxRetain");
  bind(api.primaryCtxRelease, "cuDevicePrimaryCtxRelease");
  bind(api.ctxSetCurrent, "cuCtxSetCurrent");
  bind(api.ctxSynchronize, "cuCtxSynchronize");
  bind(api.moduleLoadData, "cuModuleLoadData");
  bind(api.moduleUnload, "cuModuleUnload");
  bind(api.moduleGetFunction, "cuModuleGetFunction");
  bind(api.funcSetAttribute, "cuFuncSetAttribute");
  bind(api.launchKernel, "cuLaunchKernel");
  bind(api.memAlloc, "cuMemAlloc");
  bind(api.memFree, "cuMemFree");
  bind(api.memcpyHtoD, "cuMemcpyHtoD");
  bind(api.memcpyDtoH, "cuMemcpyDtoH");
  bind(api.memcpyDtoDAsync, "cuMemcpyDtoDAsync");
  bind(api.memcpyHtoDAsync, "cuMemcpyHtoDAsync");
  bind(api.memcpyDtoHAsync, "cuMemcpyDtoHAsync");
  bind(api.memsetD8, "cuMemsetD8");
  bind(api.memsetD8Async, "cuMemsetD8Async");
  bind(api.streamCreate, "cuStreamCreate");
  bind(api.streamDestroy, "cuStreamDestroy");
  bind(api.streamSynchronize, "cuStreamSynchronize");
  bind(api.eventCreate, "cuEventCreate");
  bind(api.eventDestroy, "cuEventDestroy");
  bind(api.eventRecord, "cuEventRecord");
  bind(api.eventSynchronize, "cuEventSynchronize");
  bind(api.eventElapsedTime, "cuEventElapsedTime");
  bind(api.tensorMapEncodeTiled, "cuTensorMapEncodeTiled");
  bind(api.getErrorName, "cuGetErrorName");
  bind(api.getErrorString, "cuGetErrorString");
  if (!missing.empty())
    return llvm::createStringError(
        "CUDA driver %s lacks %s for CUDA %d: update the driver", kLibrary,
        missing.c_str(), CUDA_VERSION);
  return api;
}

} // namespace

llvm::Expected<const DriverApi &> octet::runtime::cuda::getDriver() {
  static std::once_flag once;
  static DriverApi api;
  static std::string error;
  std::call_once(once, [] {
    llvm::Expected<DriverApi> loaded = loadDriver();
    if (loaded)
      api = *loaded;
    else
      error = llvm::toString(loaded.takeError());
  });
  if (!error.empty())
    return llvm::createStringError(error);
  return api;
}

llvm::Expected<int> octet::runtime::cuda::getDeviceCount() {
  llvm::Expected<const DriverApi &> api = getDriver();
  if (!api)
    return api.takeError();
  CUresult init = api->init(0);
  // cuInit reports a machine without a GPU as an error of its own.
  if (init == CUDA_ERROR_NO_DEVICE)
    return 0;
  if (llvm::Error e = api->check(init, "cuInit", "starting CUDA"))
    return std::move(e);
  int count = 0;
  if (llvm::Error e = api->check(api->deviceGetCount(&count),
                                 "cuDeviceGetCount", "counting the GPUs"))
    return std::move(e);
  return count;
}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) {
  if (this != &other) {
    release();
    api = other.api;
    ptr = other.ptr;
    bytes = other.bytes;
    other.ptr = 0;
    other.bytes = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { release(); }

void DeviceBuffer::release() {
  if (api && ptr)
    api->memFree(ptr);
  ptr = 0;
  bytes = 0;
}

llvm::Expected<Context> Context::create(int ordinal) {
  llvm::Expected<const DriverApi &> api = getDriver();
  if (!api)
    return api.takeError();
  Context c;
  c.driver = &*api;
  const DriverApi &d = *api;
  if (llvm::Error e = d.check(d.init(0), "cuInit", "starting CUDA"))
    return std::move(e);
  if (llvm::Error e = d.check(d.deviceGet(&c.device, ordinal), "cuDeviceGet",
                              "opening device " + llvm::Twine(ordinal)))
    return std::move(e);
  char name[256] = {};
  int major = 0, minor = 0;
  if (llvm::Error e = d.check(d.deviceGetName(name, sizeof(name), c.device),
                              "cuDeviceGetName", "querying the device"))
    return std::move(e);
  c.name = name;
  if (llvm::Error e =
          d.check(d.deviceGetAttribute(
                      &c.smCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                      c.device),
                  "cuDeviceGetAttribute", "querying the device"))
    return std::move(e);
  if (llvm::Error e = d.check(
          d.deviceGetAttribute(
              &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c.device),
          "cuDeviceGetAttribute", "querying the device"))
    return std::move(e);
  if (llvm::Error e = d.check(
          d.deviceGetAttribute(
              &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c.device),
          "cuDeviceGetAttribute", "querying the device"))
    return std::move(e);
  c.capability = major * 10 + minor;
  // The primary context: shared with any other library in the process
  // (cuBLASLt), and CUDA 13's cuCtxCreate signature change does not matter.
  if (llvm::Error e =
          d.check(d.primaryCtxRetain(&c.context, c.device),
                  "cuDevicePrimaryCtxRetain", "creating the CUDA context"))
    return std::move(e);
  if (llvm::Error e = d.check(d.ctxSetCurrent(c.context), "cuCtxSetCurrent",
                              "creating the CUDA context"))
    return std::move(e);
  return std::move(c);
}

Context &Context::operator=(Context &&other) {
  if (this != &other) {
    release();
    driver = other.driver;
    device = other.device;
    context = other.context;
    smCount = other.smCount;
    capability = other.capability;
    name = std::move(other.name);
    other.context = nullptr;
  }
  return *this;
}

Context::~Context() { release(); }

void Context::release() {
  if (driver && context)
    driver->primaryCtxRelease(device);
  context = nullptr;
}

llvm::Error Context::makeCurrent() const {
  return driver->check(driver->ctxSetCurrent(context), "cuCtxSetCurrent",
                       "making the CUDA context current on this thread");
}

llvm::Expected<DeviceBuffer> Context::allocate(size_t bytes,
                                               const llvm::Twine &what) const {
  CUdeviceptr ptr = 0;
  if (llvm::Error e = driver->check(driver->memAlloc(&ptr, bytes ? bytes : 1),
                                    "cuMemAlloc",
                                    "allocating " + llvm::Twine(bytes) +
                                        " bytes for " + what))
    return std::move(e);
  return DeviceBuffer(driver, ptr, bytes);
}

llvm::Expected<bool> Context::reserve(DeviceBuffer &buffer, size_t bytes,
                                      const llvm::Twine &what) const {
  if (buffer.get() && buffer.size() >= bytes)
    return false;
  buffer = DeviceBuffer(); // free before allocating the larger one
  llvm::Expected<DeviceBuffer> grown =
      allocate(std::max(bytes, bytes / 2 * 3), what);
  if (!grown)
    return grown.takeError();
  buffer = std::move(*grown);
  return true;
}

llvm::Error Context::upload(const DeviceBuffer &to, const void *from,
                            size_t bytes, const llvm::Twine &what,
                            CUstream stream) const {
  // From pageable memory, both return once the host buffer is copied out.
  if (stream)
    return driver->check(driver->memcpyHtoDAsync(to.get(), from, bytes, stream),
                         "cuMemcpyHtoDAsync", "uploading " + what);
  return driver->check(driver->memcpyHtoD(to.get(), from, bytes),
                       "cuMemcpyHtoD", "uploading " + what);
}

llvm::Error Context::download(void *to, const DeviceBuffer &from, size_t bytes,
                              const llvm::Twine &what, CUstream stream) const {
  return download(to, from, 0, bytes, what, stream);
}

llvm::Error Context::download(void *to, const DeviceBuffer &from, size_t offset,
                              size_t bytes, const llvm::Twine &what,
                              CUstream stream) const {
  if (offset + bytes > from.size())
    return llvm::createStringError(
        "downloading " + what + ": " + llvm::Twine(offset + bytes) +
        " bytes from a buffer of " + llvm::Twine(from.size()));
  // Into pageable memory, both return once the data has arrived.
  if (stream)
    return driver->check(
        driver->memcpyDtoHAsync(to, from.get() + offset, bytes, stream),
        "cuMemcpyDtoHAsync", "downloading " + what);
  return driver->check(driver->memcpyDtoH(to, from.get() + offset, bytes),
                       "cuMemcpyDtoH", "downloading " + what);
}

llvm::Expected<TimedStream> TimedStream::create(const Context &context,
                                                const llvm::Twine &what) {
  TimedStream t;
  t.context = &context;
  const DriverApi &api = context.api();
  // A blocking stream: ordered after what other code puts on the legacy
  // default stream (the launchers' one-off uploads of tensor maps).
  if (llvm::Error e =
          api.check(api.streamCreate(&t.stream, 0), "cuStreamCreate",
                    "creating " + what + " stream"))
    return std::move(e);
  for (CUevent *event : {&t.start, &t.stop})
    if (llvm::Error e =
            api.check(api.eventCreate(event, CU_EVENT_DEFAULT), "cuEventCreate",
                      "creating " + what + " timing events"))
      return std::move(e);
  return std::move(t);
}

TimedStream::TimedStream(TimedStream &&other)
    : context(other.context), stream(other.stream), start(other.start),
      stop(other.stop) {
  other.stream = nullptr;
  other.start = other.stop = nullptr;
}

TimedStream::~TimedStream() {
  if (!stream && !start && !stop)
    return;
  const DriverApi &api = context->api();
  // Nothing is in flight (its users wait for their work); failures here
  // have nowhere to go.
  if (llvm::Error e = context->makeCurrent())
    llvm::consumeError(std::move(e));
  if (start)
    api.eventDestroy(start);
  if (stop)
    api.eventDestroy(stop);
  if (stream)
    api.streamDestroy(stream);
}

llvm::Expected<float> TimedStream::time(llvm::function_ref<llvm::Error()> issue,
                                        const llvm::Twine &what) const {
  const DriverApi &api = context->api();
  if (llvm::Error e = api.check(api.eventRecord(start, stream), "cuEventRecord",
                                "timing " + what))
    return std::move(e);
  if (llvm::Error e = issue())
    return std::move(e);
  if (llvm::Error e = api.check(api.eventRecord(stop, stream), "cuEventRecord",
                                "timing " + what))
    return std::move(e);
  if (llvm::Error e = api.check(api.streamSynchronize(stream),
                                "cuStreamSynchronize", "running " + what))
    return std::move(e);
  float ms = 0;
  if (llvm::Error e = api.check(api.eventElapsedTime(&ms, start, stop),
                                "cuEventElapsedTime", "timing " + what))
    return std::move(e);
  return ms;
}
