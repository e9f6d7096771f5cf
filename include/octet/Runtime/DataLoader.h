//===- DataLoader.h - Token files and the training batch sampler -*- C++
//-*-===//
//
// Part of the runtime (no MLIR dependency).
//
// Token files (docs/checkpoints-and-data.md):
// - `NAME.u16`: raw little-endian uint16 token ids, no header;
// - `NAME.u32`: raw little-endian uint32 token ids, no header;
// - anything else: bytes, one token per byte (a byte-level vocabulary of 256),
//   so plain text trains as it is.
// Opening a file checks that its size is a whole number of tokens and that
// every id is below the model's vocabulary size.
//
// The sampler draws each sequence of a batch at a uniformly random offset of
// a token range, from a generator specified here bit for bit (xoshiro256**
// seeded through splitmix64), so a seed gives the same batches on every
// machine and standard library. Its state can be exported into a checkpoint
// and restored, and a resumed run then sees exactly the batches an
// uninterrupted run would have seen.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_DATALOADER_H
#define OCTET_RUNTIME_DATALOADER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace llvm {
class MemoryBuffer;
} // namespace llvm

namespace octet::runtime {

//===----------------------------------------------------------------------===//
// Random numbers
//===----------------------------------------------------------------------===//

/// splitmix64 (Steele, Lea, Flood 2014): expands a seed into generator state.
uint64_t splitMix64(uint64_t &state);

/// xoshiro256** 1.0 (Blackman, Vigna 2018), with the bounded draw defined
/// here rather than by a standard library, whose distributions differ
/// between implementations.
class Xoshiro256 {
public:
  using State = std::array<uint64_t, 4>;

  /// State words from four successive splitmix64 outputs of `seed`.
  explicit Xoshiro256(uint64_t seed);
  explicit Xoshiro256(const State &state) : s(state) {}

  uint64_t next();
  /// Uniform in [0, bound), bound > 0, without modulo bias (Lemire's
  /// multiply-and-reject method).
  uint64_t uniform(uint64_t bound);

  const State &state() const { return s; }

private:
  State s;
};

//===----------------------------------------------------------------------===//
// Token files
//===----------------------------------------------------------------------===//

enum class TokenFormat {
  Bytes, ///< One token per byte (vocabulary 256).
  U16,   ///< `.u16`: little-endian uint16.
  U32,   ///< `.u32`: little-endian uint32.
};

/// The format a file's name selects.
TokenFormat tokenFormatForPath(llvm::StringRef path);
/// Bytes per token.
unsigned tokenSize(TokenFormat format);

/// A validated token file, memory-mapped (read in when small).
class TokenFile {
public:
  /// Opens and validates `path` for a model whose vocabulary has `vocabSize`
  /// ids (1 to 2^31, so that ids fit the int32 the kernels take). Errors name
  /// the file; a bad id is reported with its token and byte offset.
  static llvm::Expected<std::shared_ptr<const TokenFile>>
  open(llvm::StringRef path, uint64_t vocabSize);

  ~TokenFile();

  const std::string &path() const { return filePath; }
  TokenFormat format() const { return fileFormat; }
  uint64_t vocabSize() const { return vocab; }
  /// Number of tokens.
  uint64_t size() const { return numTokens; }
  /// Token `i` (< size()).
  uint32_t operator[](uint64_t i) const;

private:
  TokenFile() = default;
  std::string filePath;
  TokenFormat fileFormat = TokenFormat::Bytes;
  uint64_t vocab = 0;
  uint64_t numTokens = 0;
  const unsigned char *bytes = nullptr;
  std::unique_ptr<llvm::MemoryBuffer> buffer;
};

/// A half-open range [begin, end) of token positions.
struct TokenRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t size() const { return end - begin; }
  bool operator==(const TokenRange &o) const {
    return begin == o.begin && end == o.end;
  }
};

/// Training and validation ranges of a file.
struct TokenSplit {
  TokenRange train;
  TokenRange validation;
};

/// Holds out the last `fraction` of `file` (rounded down to whole tokens) for
/// validation and leaves the rest for training. Fails, naming the file, when
/// `fraction` is not in [0, 1) or a non-empty range has fewer than seqLen + 1
/// tokens (one window). With fraction 0, validation is empty.
llvm::Expected<TokenSplit> splitValidation(const TokenFile &file,
                                           double fraction, uint64_t seqLen);

//===----------------------------------------------------------------------===//
// The batch sampler
//===----------------------------------------------------------------------===//

struct DataLoaderOptions {
  uint64_t batchSize = 1;
  uint64_t seqLen = 1;
  uint64_t seed = 0;
  /// The range windows are drawn from; {0, 0} (the default) means the whole
  /// file.
  TokenRange range;
};

/// Everything needed to continue a sampler where it stopped, plus what it
/// was sampling, so that restoring into a different configuration fails
/// instead of silently giving other batches.
struct DataLoaderState {
  uint64_t seed = 0;
  Xoshiro256::State rng{};
  uint64_t batchesDrawn = 0;
  uint64_t batchSize = 0;
  uint64_t seqLen = 0;
  TokenRange range;
  uint64_t fileTokens = 0;

  bool operator==(const DataLoaderState &o) const;
};

/// JSON form, for checkpoints: 64-bit generator words as hex strings, as
/// many JSON readers hold numbers in doubles.
llvm::json::Value toJSON(const DataLoaderState &state);
bool fromJSON(const llvm::json::Value &value, DataLoaderState &state,
              llvm::json::Path path);

/// One batch: row b of inputs is tokens [o_b, o_b + seqLen) of the file and
/// row b of labels is [o_b + 1, o_b + seqLen + 1), both [batch, seq]
/// row-major.
struct Batch {
  uint64_t batchSize = 0;
  uint64_t seqLen = 0;
  std::vector<int32_t> inputs;
  std::vector<int32_t> labels;
  /// o_b, the start of each row's window.
  std::vector<uint64_t> offsets;
};

class DataLoader {
public:
  /// A sampler over `file`; fails, naming the file, when the batch or
  /// sequence length is 0 or the range is not inside the file or shorter
  /// than one window (seqLen + 1 tokens).
  static llvm::Expected<DataLoader>
  create(std::shared_ptr<const TokenFile> file,
         const DataLoaderOptions &options);

  /// Draws the next batch into `batch` (reusing its storage).
  void next(Batch &batch);
  Batch next() {
    Batch b;
    next(b);
    return b;
  }

  DataLoaderState state() const;
  /// Continues from `state`, which must come from a loader with the same
  /// seed, batch size, sequence length, range and file size.
  llvm::Error restore(const DataLoaderState &state);

  const TokenFile &file() const { return *tokens; }
  const DataLoaderOptions &options() const { return opts; }

private:
  DataLoader(std::shared_ptr<const TokenFile> file,
             const DataLoaderOptions &options);
  std::shared_ptr<const TokenFile> tokens;
  DataLoaderOptions opts;
  Xoshiro256 rng;
  uint64_t batchesDrawn = 0;
};

} // namespace octet::runtime

#endif // OCTET_RUNTIME_DATALOADER_H
