//===- Checkpoint.cpp - Training checkpoints ------------------------------===//
//
// The protocol, and why each step is there:
//  1. The step is written into DIR/step-<N>.tmp-<pid>/ (each file synced),
//     so that a directory named step-<N> is only ever complete.
//  2. That directory is synced and renamed to step-<N>, then DIR is synced:
//     the step's files and name are on disk before anything points at them.
//  3. DIR/latest is replaced atomically (temporary file, fsync, rename,
//     directory fsync) to name step-<N>. This is the commit point.
// A crash before 3 leaves `latest` naming the previous checkpoint, which
// nothing in 1-2 touched. When step-<N> is itself the checkpoint `latest`
// names (saving one step twice), step 2 swaps the new directory in with one
// atomic exchange, so that `latest` never names a missing or partial one.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/Checkpoint.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <unistd.h>

using namespace octet::runtime;
using llvm::StringRef;
using llvm::Twine;
namespace fs = llvm::sys::fs;
namespace path = llvm::sys::path;

namespace {

constexpr StringRef kModelFile = "model.safetensors";
constexpr StringRef kOptimizerFile = "optimizer.safetensors";
constexpr StringRef kMetaFile = "meta.json";
constexpr StringRef kLatestFile = "latest";
constexpr StringRef kFormatName = "octet-checkpoint";

llvm::Error errorIn(const Twine &file, const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": " + message);
}

std::string childPath(StringRef dir, StringRef name) {
  llvm::SmallString<256> p(dir);
  path::append(p, name);
  return std::string(p);
}

std::string stepName(int64_t step) { return ("step-" + Twine(step)).str(); }

/// N for a name of the form step-<N> (decimal digits, nothing else).
std::optional<int64_t> parseStepName(StringRef name) {
  if (!name.consume_front("step-") || name.empty() ||
      !llvm::all_of(name, llvm::isDigit))
    return std::nullopt;
  int64_t step = 0;
  if (name.getAsInteger(10, step))
    return std::nullopt;
  return step;
}

/// True for the temporary names of interrupted saves and removals:
/// step-<N>.tmp-<pid> and step-<N>.old-<pid> directories, <file>.tmp-<pid>
/// files.
bool isDebrisName(StringRef name) {
  for (StringRef marker : {".tmp-", ".old-"}) {
    size_t at = name.rfind(marker);
    if (at == StringRef::npos)
      continue;
    StringRef pid = name.substr(at + marker.size());
    if (!pid.empty() && llvm::all_of(pid, llvm::isDigit))
      return true;
  }
  return false;
}

/// The weight a moment belongs to ("w" for "w.exp_avg"), or nothing.
std::optional<StringRef> momentOf(StringRef name) {
  for (StringRef suffix : {".exp_avg", ".exp_avg_sq"})
    if (name.ends_with(suffix))
      return name.drop_back(suffix.size());
  return std::nullopt;
}

/// The rules both save and load check: F32 weights, and BF16 moments in
/// pairs, shaped like the weight they belong to.
llvm::Error checkTensors(const Twine &where, llvm::ArrayRef<Tensor> weights,
                         llvm::ArrayRef<Tensor> optimizer) {
  std::map<StringRef, const Tensor *> byName;
  for (const Tensor &w : weights) {
    if (w.dtype != DType::F32)
      return errorIn(where, "weight '" + w.name + "' is " + dtypeName(w.dtype) +
                                "; master weights must be F32");
    byName[w.name] = &w;
  }
  std::map<StringRef, int> momentsPerWeight;
  for (const Tensor &t : optimizer) {
    std::optional<StringRef> base = momentOf(t.name);
    if (!base)
      continue;
    auto it = byName.find(*base);
    if (it == byName.end())
      return errorIn(where, "optimizer tensor '" + t.name +
                                "' has no weight '" + *base + "'");
    if (t.dtype != DType::BF16)
      return errorIn(where, "optimizer tensor '" + t.name + "' is " +
                                dtypeName(t.dtype) +
                                "; AdamW moments must be BF16");
    if (t.shape != it->second->shape)
      return errorIn(where, "optimizer tensor '" + t.name +
                                "' is not shaped like its weight");
    ++momentsPerWeight[*base];
  }
  for (const auto &[base, count] : momentsPerWeight)
    if (count != 2)
      return errorIn(where, "weight '" + base +
                                "' has one AdamW moment; expected both "
                                "exp_avg and exp_avg_sq or neither");
  return llvm::Error::success();
}

llvm::Error errnoError(const Twine &what, int err) {
  return llvm::createStringError(std::error_code(err, std::generic_category()),
                                 what + ": " + std::strerror(err));
}

/// Removes a step directory by first renaming it to a debris name, so that a
/// crash midway cannot leave a step-<N> that has lost some files but still
/// looks complete.
llvm::Error removeStepDir(const std::string &dir) {
  std::string doomed = (dir + ".old-" + Twine(::getpid())).str();
  fs::remove_directories(doomed, /*IgnoreErrors=*/true);
  if (::rename(dir.c_str(), doomed.c_str()) != 0)
    return errnoError("cannot remove '" + dir + "'", errno);
  if (std::error_code ec = fs::remove_directories(doomed))
    return errorIn(doomed, "cannot remove: " + ec.message());
  return llvm::Error::success();
}

/// Swaps two directory entries atomically (Linux renameat2).
llvm::Error exchangeEntries(const std::string &a, const std::string &b) {
#if defined(__linux__) && defined(RENAME_EXCHANGE)
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) ==
      0)
    return llvm::Error::success();
  return errnoError("cannot atomically replace '" + b + "' with '" + a +
                        "' (the file system may not support "
                        "RENAME_EXCHANGE; save under a new step instead)",
                    errno);
#else
  return llvm::createStringError(
      "cannot replace the latest checkpoint '" + b +
      "' atomically on this platform; save under a new step instead");
#endif
}

/// The step directory name `DIR/latest` holds.
llvm::Expected<std::string> readLatest(StringRef dir) {
  std::string latestPath = childPath(dir, kLatestFile);
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(latestPath);
  if (!buffer) {
    if (buffer.getError() == std::errc::no_such_file_or_directory)
      return errorIn(dir, "no checkpoint to load (no '" + kLatestFile +
                              "' file: no save has completed here)");
    return errorIn(latestPath, "cannot read: " + buffer.getError().message());
  }
  StringRef name = (*buffer)->getBuffer().trim();
  if (!parseStepName(name))
    return errorIn(latestPath, "expected a step directory name such as "
                               "'step-100', found '" +
                                   name.take_front(64) + "'");
  return name.str();
}

llvm::Error writeMeta(StringRef file, int64_t step, const CheckpointMeta &m) {
  llvm::json::Object meta{
      {"format", kFormatName},
      {"format_version", kCheckpointFormatVersion},
      {"step", step},
      {"seed", m.seed},
      {"config_digest", m.configDigest},
      {"data_loader", toJSON(m.dataLoader)},
  };
  return writeFileAtomically(file, [&](llvm::raw_ostream &os) {
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(meta))) << "\n";
    return llvm::Error::success();
  });
}

llvm::Error readMeta(StringRef file, Checkpoint &ckpt) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(file);
  if (!buffer)
    return errorIn(file, "cannot read: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*buffer)->getBuffer());
  if (!json)
    return errorIn(file, "invalid JSON " + llvm::toString(json.takeError()));
  const llvm::json::Object *o = json->getAsObject();
  if (!o)
    return errorIn(file, "expected a JSON object");
  if (o->getString("format") != kFormatName)
    return errorIn(file, "'format' is not \"" + kFormatName + "\"");
  std::optional<int64_t> version = o->getInteger("format_version");
  if (!version || *version < 1)
    return errorIn(file, "'format_version' must be a positive integer");
  if (*version > kCheckpointFormatVersion)
    return errorIn(file, "format version " + Twine(*version) +
                             " is newer than this build reads (" +
                             Twine(kCheckpointFormatVersion) + ")");
  ckpt.formatVersion = *version;
  std::optional<int64_t> step = o->getInteger("step");
  if (!step || *step < 0)
    return errorIn(file, "'step' must be a non-negative integer");
  ckpt.step = *step;
  const llvm::json::Value *seed = o->get("seed");
  std::optional<uint64_t> seedValue = seed ? seed->getAsUINT64() : std::nullopt;
  if (!seedValue)
    return errorIn(file, "'seed' must be a non-negative integer");
  ckpt.meta.seed = *seedValue;
  std::optional<StringRef> digest = o->getString("config_digest");
  if (!digest)
    return errorIn(file, "'config_digest' must be a string");
  ckpt.meta.configDigest = digest->str();
  const llvm::json::Value *loader = o->get("data_loader");
  llvm::json::Path::Root root("data_loader");
  if (!loader)
    return errorIn(file, "'data_loader' is missing");
  if (!fromJSON(*loader, ckpt.meta.dataLoader, root))
    return errorIn(file,
                   "invalid 'data_loader': " + llvm::toString(root.getError()));
  return llvm::Error::success();
}

} // namespace

bool octet::runtime::hasCheckpoint(StringRef dir) {
  return fs::exists(childPath(dir, kLatestFile));
}

llvm::Expected<Checkpoint> octet::runtime::loadCheckpoint(StringRef stepDir) {
  if (!fs::is_directory(stepDir))
    return errorIn(stepDir, "not a checkpoint step directory");
  std::string metaPath = childPath(stepDir, kMetaFile);
  if (!fs::exists(metaPath))
    return errorIn(stepDir, "incomplete checkpoint (no " + kMetaFile + ")");
  Checkpoint ckpt;
  ckpt.directory = stepDir.str();
  if (llvm::Error err = readMeta(metaPath, ckpt))
    return std::move(err);
  if (std::optional<int64_t> named =
          parseStepName(path::filename(StringRef(stepDir).rtrim('/')));
      named && *named != ckpt.step)
    return errorIn(metaPath, "records step " + Twine(ckpt.step) +
                                 " but its directory is step " + Twine(*named));

  llvm::Expected<SafetensorsFile> model =
      readSafetensors(childPath(stepDir, kModelFile));
  if (!model)
    return model.takeError();
  llvm::Expected<SafetensorsFile> optimizer =
      readSafetensors(childPath(stepDir, kOptimizerFile));
  if (!optimizer)
    return optimizer.takeError();
  if (llvm::Error err =
          checkTensors(stepDir, model->tensors(), optimizer->tensors()))
    return std::move(err);
  ckpt.model = std::move(*model);
  ckpt.optimizer = std::move(*optimizer);
  return std::move(ckpt);
}

llvm::Expected<Checkpoint> octet::runtime::loadLatestCheckpoint(StringRef dir) {
  llvm::Expected<std::string> latest = readLatest(dir);
  if (!latest)
    return latest.takeError();
  std::string stepDir = childPath(dir, *latest);
  if (!fs::is_directory(stepDir))
    return errorIn(childPath(dir, kLatestFile),
                   "names '" + *latest + "', which does not exist");
  return loadCheckpoint(stepDir);
}

llvm::Error octet::runtime::saveCheckpoint(
    StringRef dir, int64_t step, llvm::ArrayRef<Tensor> weights,
    llvm::ArrayRef<Tensor> optimizerState, const CheckpointMeta &meta,
    const CheckpointOptions &options) {
  if (step < 0)
    return errorIn(dir,
                   "cannot save a checkpoint for negative step " + Twine(step));
  if (llvm::Error err = checkTensors(
          "cannot save a checkpoint in '" + dir + "'", weights, optimizerState))
    return err;
  bool existed = fs::is_directory(dir);
  if (std::error_code ec = fs::create_directories(dir))
    return errorIn(dir,
                   "cannot create the checkpoint directory: " + ec.message());
  // A new directory's own name must reach the disk too.
  if (!existed)
    if (llvm::Error err = syncDirectory(path::parent_path(dir)))
      return err;

  std::string name = stepName(step);
  std::string finalDir = childPath(dir, name);
  std::string staging = (finalDir + ".tmp-" + Twine(::getpid())).str();
  // A directory of this name can only be left by a killed process that had
  // our pid; start clean.
  fs::remove_directories(staging, /*IgnoreErrors=*/true);
  if (std::error_code ec = fs::create_directory(staging))
    return errorIn(staging, "cannot create: " + ec.message());

  auto writeStep = [&]() -> llvm::Error {
    if (llvm::Error err =
            writeSafetensors(childPath(staging, kModelFile), weights))
      return err;
    if (llvm::Error err = writeSafetensors(childPath(staging, kOptimizerFile),
                                           optimizerState))
      return err;
    // meta.json last: a directory with it has everything.
    if (llvm::Error err = writeMeta(childPath(staging, kMetaFile), step, meta))
      return err;
    if (llvm::Error err = syncDirectory(staging))
      return err;

    std::string currentLatest;
    if (hasCheckpoint(dir)) {
      llvm::Expected<std::string> latest = readLatest(dir);
      if (latest)
        currentLatest = *latest;
      else
        llvm::consumeError(latest.takeError()); // Replaced below anyway.
    }
    if (fs::exists(finalDir)) {
      if (currentLatest == name) {
        // The old step-<N> is what `latest` names: swap atomically; the old
        // contents end up under the staging name and are removed below.
        if (llvm::Error err = exchangeEntries(staging, finalDir))
          return err;
        return llvm::Error::success();
      }
      // Not the committed checkpoint: an earlier interrupted or abandoned
      // save of this step. Nothing reads it, so it can go.
      if (llvm::Error err = removeStepDir(finalDir))
        return err;
    }
    if (::rename(staging.c_str(), finalDir.c_str()) != 0)
      return errnoError("cannot rename '" + staging + "' to '" + finalDir + "'",
                        errno);
    return llvm::Error::success();
  };
  if (llvm::Error err = writeStep()) {
    fs::remove_directories(staging, /*IgnoreErrors=*/true);
    return err;
  }
  // After an exchange the staging name holds the replaced step.
  fs::remove_directories(staging, /*IgnoreErrors=*/true);
  if (llvm::Error err = syncDirectory(dir))
    return err;

  // The commit point.
  if (llvm::Error err = writeFileAtomically(childPath(dir, kLatestFile),
                                            [&](llvm::raw_ostream &os) {
                                              os << name << "\n";
                                              return llvm::Error::success();
                                            }))
    return err;
  // The checkpoint is committed; a failure from here on must say so, lest
  // the caller think the save itself failed.
  if (llvm::Error err = pruneCheckpoints(dir, options.keepLast))
    return llvm::createStringError("saved '" + finalDir +
                                   "', but could not prune old checkpoints: " +
                                   llvm::toString(std::move(err)));
  return llvm::Error::success();
}

llvm::Error octet::runtime::pruneCheckpoints(StringRef dir, unsigned keepLast) {
  std::optional<int64_t> latestStep;
  if (hasCheckpoint(dir)) {
    llvm::Expected<std::string> latest = readLatest(dir);
    if (!latest)
      return latest.takeError();
    latestStep = parseStepName(*latest);
  }

  std::vector<std::string> remove;
  std::vector<std::pair<int64_t, std::string>> complete;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    StringRef name = path::filename(it->path());
    if (isDebrisName(name) &&
        (name.starts_with("step-") || name.starts_with(kLatestFile))) {
      remove.push_back(it->path());
      continue;
    }
    std::optional<int64_t> step = parseStepName(name);
    if (!step || step == latestStep)
      continue;
    if (!fs::exists(childPath(it->path(), kMetaFile)))
      remove.push_back(it->path()); // Incomplete, and not committed.
    else if (latestStep && *step < *latestStep)
      complete.push_back({*step, it->path()});
  }
  if (ec)
    return errorIn(dir,
                   "cannot list the checkpoint directory: " + ec.message());
  // Of the steps before the latest, keep the keepLast - 1 newest.
  llvm::sort(complete);
  if (keepLast > 0 && complete.size() > keepLast - 1)
    for (size_t i = 0; i < complete.size() - (keepLast - 1); ++i)
      remove.push_back(complete[i].second);

  for (const std::string &p : remove) {
    if (!fs::is_directory(p)) {
      if (std::error_code ec = fs::remove(p))
        return errorIn(p, "cannot remove: " + ec.message());
    } else if (parseStepName(path::filename(p))) {
      if (llvm::Error err = removeStepDir(p))
        return err;
    } else if (std::error_code ec = fs::remove_directories(p)) {
      return errorIn(p, "cannot remove: " + ec.message());
    }
  }
  if (remove.empty())
    return llvm::Error::success();
  return syncDirectory(dir);
}
