//===- Checkpoint.h - Training checkpoints --------------------------*- C++
//-*-===//
//
// Part of the runtime (no MLIR dependency). A checkpoint directory holds one
// subdirectory per saved step and a pointer to the newest complete one:
//
//   DIR/latest                        "step-<N>\n"
//   DIR/step-<N>/model.safetensors    FP32 master weights, named by parameter
//   DIR/step-<N>/optimizer.safetensors  BF16 AdamW moments `<name>.exp_avg`,
//                                     `<name>.exp_avg_sq`, and whatever else
//                                     the caller keeps
//   DIR/step-<N>/meta.json            step, format version, RNG seed, data
//                                     loader state, config digest
//
// A step is written under a temporary name, synced, renamed into place, and
// only then is `latest` replaced (atomically) to name it. A crash at any
// point leaves `latest` naming a complete checkpoint (or no `latest` before
// the first save completes); the rest is debris that loadLatestCheckpoint
// ignores and pruneCheckpoints removes. See docs/checkpoints-and-data.md.
//
// One process writes a checkpoint directory at a time.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CHECKPOINT_H
#define OCTET_RUNTIME_CHECKPOINT_H

#include "octet/Runtime/DataLoader.h"
#include "octet/Runtime/Safetensors.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace octet::runtime {

/// The meta.json layout this build writes and reads.
constexpr int64_t kCheckpointFormatVersion = 1;

/// What a checkpoint records besides tensors.
struct CheckpointMeta {
  /// The run's RNG seed (initialisation, dropout, ...).
  uint64_t seed = 0;
  /// The data loader's position, so a resumed run sees the same batches.
  DataLoaderState dataLoader;
  /// Identifies the model and training configuration (the caller's digest of
  /// them), so that resuming under a different configuration can be refused.
  std::string configDigest;
};

/// A loaded checkpoint. Tensors point into the files' buffers, which it owns.
struct Checkpoint {
  int64_t step = 0;
  int64_t formatVersion = kCheckpointFormatVersion;
  CheckpointMeta meta;
  SafetensorsFile model;
  SafetensorsFile optimizer;
  /// The step directory it was read from.
  std::string directory;
};

struct CheckpointOptions {
  /// After a successful save, keep this many of the newest complete steps
  /// (the one just saved included) and remove older ones; 0 keeps all.
  unsigned keepLast = 0;
};

/// Saves step `step` (>= 0) under `dir` (created if missing) and points
/// `latest` at it. `weights` must be F32; an optimizer tensor named
/// `<weight>.exp_avg` or `<weight>.exp_avg_sq` must be BF16 with the weight's
/// shape (frozen weights may have none). Saving a step that already exists
/// replaces it; the previous checkpoint stays loadable until `latest` moves.
llvm::Error saveCheckpoint(llvm::StringRef dir, int64_t step,
                           llvm::ArrayRef<Tensor> weights,
                           llvm::ArrayRef<Tensor> optimizerState,
                           const CheckpointMeta &meta,
                           const CheckpointOptions &options = {});

/// Loads the step `DIR/latest` names. Fails, naming the file and the
/// problem, when there is no `latest` (no checkpoint was completed), it does
/// not name a step directory, or that checkpoint is incomplete or invalid.
llvm::Expected<Checkpoint> loadLatestCheckpoint(llvm::StringRef dir);

/// Loads one step directory (DIR/step-<N>), validating it as above.
llvm::Expected<Checkpoint> loadCheckpoint(llvm::StringRef stepDir);

/// True when `dir` has a `latest` file, i.e. a completed checkpoint to
/// resume from.
bool hasCheckpoint(llvm::StringRef dir);

/// Removes complete steps older than the `keepLast` newest up to the one
/// `latest` names (never that one, nor steps newer than it, which a run that
/// was resumed from an earlier step may still want), and the debris of
/// interrupted saves (temporary step directories and files). keepLast 0
/// removes only the debris.
llvm::Error pruneCheckpoints(llvm::StringRef dir, unsigned keepLast);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_CHECKPOINT_H
