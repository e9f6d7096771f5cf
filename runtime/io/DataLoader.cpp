//===- DataLoader.cpp - Token files and the training batch sampler --------===//
//
// Reproducibility is the point of this file: the generator and the bounded
// draw are written out here (not taken from <random>, whose distributions are
// implementation-defined), a batch consumes a fixed amount of generator
// output, and the whole sampler state is a handful of integers that a
// checkpoint stores.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/DataLoader.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace octet::runtime;
using llvm::StringRef;
using llvm::Twine;

//===----------------------------------------------------------------------===//
// Random numbers
//===----------------------------------------------------------------------===//

uint64_t octet::runtime::splitMix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Xoshiro256::Xoshiro256(uint64_t seed) {
  // splitmix64 never yields four zero words, the one state xoshiro cannot
  // leave.
  for (uint64_t &word : s)
    word = splitMix64(seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Xoshiro256::next() {
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t Xoshiro256::uniform(uint64_t bound) {
  assert(bound > 0 && "empty range");
  // The high word of x * bound is uniform in [0, bound) once the low word
  // avoids the first (2^64 mod bound) values (Lemire 2019).
  unsigned __int128 m = static_cast<unsigned __int128>(next()) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

//===----------------------------------------------------------------------===//
// Token files
//===----------------------------------------------------------------------===//

TokenFormat octet::runtime::tokenFormatForPath(StringRef path) {
  StringRef ext = llvm::sys::path::extension(path);
  if (ext == ".u16")
    return TokenFormat::U16;
  if (ext == ".u32")
    return TokenFormat::U32;
  return TokenFormat::Bytes;
}

unsigned octet::runtime::tokenSize(TokenFormat format) {
  switch (format) {
  case TokenFormat::Bytes:
    return 1;
  case TokenFormat::U16:
    return 2;
  case TokenFormat::U32:
    return 4;
  }
  llvm_unreachable("unknown TokenFormat");
}

static const char *formatName(TokenFormat format) {
  switch (format) {
  case TokenFormat::Bytes:
    return "bytes";
  case TokenFormat::U16:
    return "uint16";
  case TokenFormat::U32:
    return "uint32";
  }
  llvm_unreachable("unknown TokenFormat");
}

static llvm::Error errorIn(StringRef file, const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": " + message);
}

TokenFile::~TokenFile() = default;

uint32_t TokenFile::operator[](uint64_t i) const {
  assert(i < numTokens && "token index out of range");
  switch (fileFormat) {
  case TokenFormat::Bytes:
    return bytes[i];
  case TokenFormat::U16:
    return llvm::support::endian::read16le(bytes + 2 * i);
  case TokenFormat::U32:
    return llvm::support::endian::read32le(bytes + 4 * i);
  }
  llvm_unreachable("unknown TokenFormat");
}

llvm::Expected<std::shared_ptr<const TokenFile>>
TokenFile::open(StringRef path, uint64_t vocabSize) {
  if (vocabSize == 0 || vocabSize > (uint64_t(1) << 31))
    return errorIn(path, "vocabulary size " + Twine(vocabSize) +
                             " is outside [1, 2^31]");
  // Not null-terminated, so that large files are mapped, not copied.
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return errorIn(path,
                   "cannot read token file: " + buffer.getError().message());

  std::shared_ptr<TokenFile> file(new TokenFile());
  file->filePath = path.str();
  file->fileFormat = tokenFormatForPath(path);
  file->vocab = vocabSize;
  file->buffer = std::move(*buffer);
  file->bytes =
      reinterpret_cast<const unsigned char *>(file->buffer->getBufferStart());
  uint64_t byteSize = file->buffer->getBufferSize();
  unsigned width = tokenSize(file->fileFormat);
  if (byteSize % width != 0)
    return errorIn(path, "size " + Twine(byteSize) +
                             " bytes is not a multiple of " + Twine(width) +
                             " (" + formatName(file->fileFormat) +
                             " tokens, chosen by the file extension)");
  file->numTokens = byteSize / width;
  if (file->numTokens == 0)
    return errorIn(path, "contains no tokens");

  // Bytes cannot exceed 255, so only a vocabulary below 256 needs the scan.
  uint64_t maxId = file->fileFormat == TokenFormat::Bytes ? 0xff
                   : file->fileFormat == TokenFormat::U16 ? 0xffff
                                                          : 0xffffffff;
  if (vocabSize <= maxId)
    for (uint64_t i = 0; i < file->numTokens; ++i)
      if (uint32_t id = (*file)[i]; id >= vocabSize)
        return errorIn(
            path, "token id " + Twine(id) + " at token offset " + Twine(i) +
                      " (byte offset " + Twine(i * width) +
                      ") is not below the vocabulary size " + Twine(vocabSize));
  return std::shared_ptr<const TokenFile>(std::move(file));
}

/// A fraction as people write it ("0.1", "1"), for messages.
static std::string formatFraction(double fraction) {
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%g", fraction);
  return text;
}

llvm::Expected<TokenSplit>
octet::runtime::splitValidation(const TokenFile &file, double fraction,
                                uint64_t seqLen) {
  if (!(fraction >= 0.0 && fraction < 1.0))
    return errorIn(file.path(), "validation fraction " +
                                    formatFraction(fraction) +
                                    " is outside [0, 1)");
  uint64_t n = file.size();
  // Rounding down keeps the split a pure function of (size, fraction).
  uint64_t held = static_cast<uint64_t>(std::floor(double(n) * fraction));
  TokenSplit split{{0, n - held}, {n - held, n}};
  uint64_t window = seqLen + 1;
  if (split.train.size() < window)
    return errorIn(file.path(), "the training range has " +
                                    Twine(split.train.size()) +
                                    " tokens, fewer than one window of " +
                                    Twine(window) + " (sequence length + 1)");
  if (fraction > 0 && split.validation.size() < window)
    return errorIn(file.path(),
                   "validation fraction " + formatFraction(fraction) + " of " +
                       Twine(n) + " tokens holds out " + Twine(held) +
                       " tokens, fewer than one window of " + Twine(window) +
                       " (sequence length + 1)");
  return split;
}

//===----------------------------------------------------------------------===//
// Sampler state
//===----------------------------------------------------------------------===//

bool DataLoaderState::operator==(const DataLoaderState &o) const {
  return seed == o.seed && rng == o.rng && batchesDrawn == o.batchesDrawn &&
         batchSize == o.batchSize && seqLen == o.seqLen && range == o.range &&
         fileTokens == o.fileTokens;
}

llvm::json::Value octet::runtime::toJSON(const DataLoaderState &state) {
  llvm::json::Array rng;
  for (uint64_t word : state.rng)
    rng.push_back("0x" + llvm::utohexstr(word, /*LowerCase=*/true, 16));
  return llvm::json::Object{
      {"generator", "xoshiro256**"},
      {"seed", state.seed},
      {"rng", std::move(rng)},
      {"batches_drawn", state.batchesDrawn},
      {"batch_size", state.batchSize},
      {"seq_len", state.seqLen},
      {"range", llvm::json::Array{state.range.begin, state.range.end}},
      {"file_tokens", state.fileTokens},
  };
}

static bool readCount(const llvm::json::Value &v, uint64_t &out,
                      llvm::json::Path path) {
  if (std::optional<uint64_t> u = v.getAsUINT64()) {
    out = *u;
    return true;
  }
  path.report("expected a non-negative integer");
  return false;
}

bool octet::runtime::fromJSON(const llvm::json::Value &value,
                              DataLoaderState &state, llvm::json::Path path) {
  const llvm::json::Object *o = value.getAsObject();
  if (!o) {
    path.report("expected an object");
    return false;
  }
  auto count = [&](StringRef key, uint64_t &out) {
    const llvm::json::Value *v = o->get(key);
    if (!v) {
      path.field(key).report("missing");
      return false;
    }
    return readCount(*v, out, path.field(key));
  };
  if (!count("seed", state.seed) ||
      !count("batches_drawn", state.batchesDrawn) ||
      !count("batch_size", state.batchSize) ||
      !count("seq_len", state.seqLen) ||
      !count("file_tokens", state.fileTokens))
    return false;

  std::optional<StringRef> generator = o->getString("generator");
  if (generator != StringRef("xoshiro256**")) {
    path.field("generator").report("expected \"xoshiro256**\"");
    return false;
  }
  const llvm::json::Array *rng = o->getArray("rng");
  if (!rng || rng->size() != 4) {
    path.field("rng").report("expected 4 hex strings");
    return false;
  }
  for (size_t i = 0; i < 4; ++i) {
    std::optional<StringRef> word = (*rng)[i].getAsString();
    unsigned long long parsed = 0;
    if (!word || !word->consume_front("0x") || word->size() != 16 ||
        llvm::getAsUnsignedInteger(*word, 16, parsed)) {
      path.field("rng").index(i).report("expected \"0x\" and 16 hex digits");
      return false;
    }
    state.rng[i] = parsed;
  }
  if (state.rng == Xoshiro256::State{}) {
    path.field("rng").report("all-zero generator state");
    return false;
  }
  const llvm::json::Array *range = o->getArray("range");
  if (!range || range->size() != 2 ||
      !readCount((*range)[0], state.range.begin, path.field("range")) ||
      !readCount((*range)[1], state.range.end, path.field("range"))) {
    if (!range || range->size() != 2)
      path.field("range").report("expected [begin, end]");
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// The sampler
//===----------------------------------------------------------------------===//

DataLoader::DataLoader(std::shared_ptr<const TokenFile> file,
                       const DataLoaderOptions &options)
    : tokens(std::move(file)), opts(options), rng(options.seed) {}

llvm::Expected<DataLoader>
DataLoader::create(std::shared_ptr<const TokenFile> file,
                   const DataLoaderOptions &options) {
  DataLoaderOptions o = options;
  if (o.range.size() == 0 && o.range.begin == 0)
    o.range = {0, file->size()};
  StringRef path = file->path();
  if (o.batchSize == 0 || o.seqLen == 0)
    return errorIn(path, "batch size (" + Twine(o.batchSize) +
                             ") and sequence length (" + Twine(o.seqLen) +
                             ") must be positive");
  if (o.range.begin > o.range.end || o.range.end > file->size())
    return errorIn(path, "token range [" + Twine(o.range.begin) + ", " +
                             Twine(o.range.end) +
                             ") is not inside the file's " +
                             Twine(file->size()) + " tokens");
  if (o.seqLen >= o.range.size())
    return errorIn(path, "token range [" + Twine(o.range.begin) + ", " +
                             Twine(o.range.end) + ") has " +
                             Twine(o.range.size()) +
                             " tokens, fewer than one window of " +
                             Twine(o.seqLen + 1) + " (sequence length + 1)");
  if (o.batchSize > (uint64_t(1) << 40) / o.seqLen)
    return errorIn(path, "batch size x sequence length is too large");
  return DataLoader(std::move(file), o);
}

void DataLoader::next(Batch &batch) {
  const uint64_t b = opts.batchSize, t = opts.seqLen;
  batch.batchSize = b;
  batch.seqLen = t;
  batch.inputs.resize(b * t);
  batch.labels.resize(b * t);
  batch.offsets.resize(b);
  // Every start whose window of t + 1 tokens fits in the range is equally
  // likely; windows may overlap, and each batch draws b offsets in row order.
  uint64_t starts = opts.range.size() - t;
  for (uint64_t row = 0; row < b; ++row) {
    uint64_t o = opts.range.begin + rng.uniform(starts);
    batch.offsets[row] = o;
    int32_t *in = &batch.inputs[row * t];
    int32_t *label = &batch.labels[row * t];
    uint32_t prev = (*tokens)[o];
    for (uint64_t i = 0; i < t; ++i) {
      uint32_t cur = (*tokens)[o + i + 1];
      in[i] = static_cast<int32_t>(prev);
      label[i] = static_cast<int32_t>(cur);
      prev = cur;
    }
  }
  ++batchesDrawn;
}

DataLoaderState DataLoader::state() const {
  DataLoaderState s;
  s.seed = opts.seed;
  s.rng = rng.state();
  s.batchesDrawn = batchesDrawn;
  s.batchSize = opts.batchSize;
  s.seqLen = opts.seqLen;
  s.range = opts.range;
  s.fileTokens = tokens->size();
  return s;
}

llvm::Error DataLoader::restore(const DataLoaderState &s) {
  std::string mismatch;
  auto check = [&](const char *what, uint64_t saved, uint64_t now) {
    if (saved != now)
      mismatch += (Twine(mismatch.empty() ? "" : ", ") + what + " " +
                   Twine(saved) + " (now " + Twine(now) + ")")
                      .str();
  };
  check("seed", s.seed, opts.seed);
  check("batch size", s.batchSize, opts.batchSize);
  check("sequence length", s.seqLen, opts.seqLen);
  check("range begin", s.range.begin, opts.range.begin);
  check("range end", s.range.end, opts.range.end);
  check("file size in tokens", s.fileTokens, tokens->size());
  if (!mismatch.empty())
    return errorIn(tokens->path(),
                   "cannot resume the data loader: it was saved with " +
                       mismatch);
  if (s.rng == Xoshiro256::State{})
    return errorIn(tokens->path(), "cannot resume the data loader: the saved "
                                   "generator state is all zeros");
  rng = Xoshiro256(s.rng);
  batchesDrawn = s.batchesDrawn;
  return llvm::Error::success();
}
