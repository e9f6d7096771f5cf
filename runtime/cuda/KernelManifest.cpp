//===- KernelManifest.cpp - Which generated kernel computes what ----------===//

#include "octet/Runtime/KernelManifest.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace octet::runtime;

llvm::Expected<KernelManifest>
octet::runtime::readKernelManifest(llvm::StringRef path) {
  auto file = llvm::MemoryBuffer::getFile(path);
  if (!file)
    return llvm::createStringError("cannot read the kernel manifest " + path +
                                   ": " + file.getError().message());
  return parseKernelManifest((*file)->getBuffer(), path);
}

llvm::Expected<KernelManifest>
octet::runtime::parseKernelManifest(llvm::StringRef text,
                                    llvm::StringRef path) {
  llvm::Expected<llvm::json::Value> doc = llvm::json::parse(text);
  if (!doc)
    return llvm::createStringError(path + ": " +
                                   llvm::toString(doc.takeError()));
  const llvm::json::Object *root = doc->getAsObject();
  const llvm::json::Array *gemms = root ? root->getArray("gemms") : nullptr;
  if (!gemms)
    return llvm::createStringError(path + ": expected {\"gemms\": [...]}");
  KernelManifest manifest;
  for (const llvm::json::Value &v : *gemms) {
    ManifestGemm g;
    llvm::json::Path::Root where;
    llvm::json::ObjectMapper map(v, where);
    if (!map || !map.map("function", g.function) ||
        !map.map("kernel", g.kernel) || !map.map("lhs", g.lhs) ||
        !map.map("rhs", g.rhs) || !map.map("m", g.m) || !map.map("n", g.n) ||
        !map.map("k", g.k) || !map.map("transpose_lhs", g.transposeLhs) ||
        !map.map("transpose_rhs", g.transposeRhs) ||
        !map.mapOptional("groups", g.groups) ||
        !map.mapOptional("grouping", g.grouping))
      return llvm::createStringError(path + ": malformed GEMM entry");
    if (g.grouping != "" && g.grouping != "m" && g.grouping != "k")
      return llvm::createStringError(path + ": GEMM '" + g.function +
                                     "' has grouping '" + g.grouping +
                                     "', expected \"m\" or \"k\"");
    // Manifests from before "grouping" had M-grouped expert GEMMs only.
    if (g.groups > 1 && g.grouping.empty())
      g.grouping = "m";
    if (g.groups < 1)
      return llvm::createStringError(path + ": GEMM '" + g.function +
                                     "' has " + std::to_string(g.groups) +
                                     " groups; expected at least 1");
    manifest.gemms.push_back(std::move(g));
  }
  if (const llvm::json::Array *list = root->getArray("quantizations"))
    for (const llvm::json::Value &v : *list) {
      ManifestQuantization q;
      llvm::json::Path::Root where;
      llvm::json::ObjectMapper map(v, where);
      if (!map || !map.map("function", q.function) ||
          !map.map("kernel", q.kernel) ||
          !map.map("granularity", q.granularity) ||
          !map.map("batch", q.batch) || !map.map("rows", q.rows) ||
          !map.map("cols", q.cols) || !map.mapOptional("epsilon", q.epsilon))
        return llvm::createStringError(path + ": malformed quantization entry");
      manifest.quantizations.push_back(std::move(q));
    }
  return manifest;
}
