//===- CudaQuantize.cpp - Launching the generated quantization kernels ----===//

#include "octet/Runtime/CudaQuantize.h"

#include <algorithm>
#include <climits>

using namespace octet::runtime;
using namespace octet::runtime::cuda;

llvm::Error octet::runtime::cuda::launchQuantize(const Context &context,
                                                 const KernelModule &module,
                                                 llvm::StringRef kernelName,
                                                 const QuantizeArguments &args,
                                                 CUstream stream) {
  auto fail = [&](const llvm::Twine &why) {
    return llvm::createStringError("quantization kernel " + kernelName +
                                   " (" + llvm::Twine(args.rows) + "x" +
                                   llvm::Twine(args.cols) + "): " + why);
  };
  std::optional<QuantizeKernelConfig> config =
      QuantizeKernelConfig::parse(kernelName);
  if (!config)
    return fail("not the name of a generated quantization kernel");
  if (args.rows <= 0 || args.cols <= 0 || args.batch <= 0)
    return fail("the shape must be positive");
  if (args.batch * args.rows * args.cols > INT_MAX)
    return fail("the tensor exceeds the kernels' 32-bit indices");
  bool transposing = config->kind == QuantizeKind::Tile128x1 ||
                     config->kind == QuantizeKind::Transpose128x1;
  if (args.batch != 1 && config->kind != QuantizeKind::Block128x128)
    return fail("only 128x128 blocks are quantized in batches");
  if (config->kind != QuantizeKind::Tile128x1 && args.cols % 128 != 0)
    return fail("the columns must be a multiple of 128");
  if (transposing && args.rows % 128 != 0)
    return fail("the rows must be a multiple of 128");
  bool twoInputs = config->kind == QuantizeKind::Transpose128x1 ||
                   config->kind == QuantizeKind::RMSNorm1x128 ||
                   config->kind == QuantizeKind::SwiGLU1x128;
  if (!args.input || !args.q || !args.scales || (twoInputs && !args.inputScales))
    return fail("an operand pointer is null");

  llvm::Expected<CUfunction> f = module.function(kernelName);
  if (!f)
    return f.takeError();
  unsigned gx = 1, gy = 1, gz = 1;
  switch (config->kind) {
  case QuantizeKind::RMSNorm1x128:
    gx = unsigned(args.rows);
    break;
  case QuantizeKind::Tile1x128:
  case QuantizeKind::SwiGLU1x128: {
    int64_t groups = args.rows * (args.cols / 128);
    gx = unsigned(std::min<int64_t>((groups + 7) / 8,
                                    16 * int64_t(context.multiprocessorCount())));
    break;
  }
  case QuantizeKind::Block128x128:
    gx = unsigned(args.cols / 128);
    gy = unsigned((args.rows + 127) / 128);
    gz = unsigned(args.batch);
    break;
  case QuantizeKind::Tile128x1:
  case QuantizeKind::Transpose128x1:
    gx = unsigned((args.cols + 127) / 128);
    gy = unsigned(args.rows / 128);
    break;
  }
  CUdeviceptr in = args.input, inScales = args.inputScales, q = args.q,
              scales = args.scales;
  int32_t rows = int32_t(args.rows), cols = int32_t(args.cols);
  float epsilon = args.epsilon;
  void *plain[] = {&in, &q, &scales, &rows, &cols};
  void *paired[] = {&in, &inScales, &q, &scales, &rows, &cols, &epsilon};
  const DriverApi &api = context.api();
  // The RMSNorm kernel alone takes the trailing epsilon.
  return api.check(api.launchKernel(*f, gx, gy, gz,
                                    unsigned(QuantizeKernelConfig::kThreads), 1,
                                    1, 0, stream, twoInputs ? paired : plain,
                                    nullptr),
                   "cuLaunchKernel", "launching " + kernelName);
}
