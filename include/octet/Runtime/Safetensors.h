//===- Safetensors.h - Reading and writing safetensors files ----*- C++ -*-===//
//
// Part of the runtime (no MLIR dependency). Checkpoints are safetensors files
// so that they open in PyTorch, JAX and Hugging Face tools without Octet.
//
// The format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON (padded with spaces), then
// the data section. The JSON maps each tensor name to {"dtype", "shape",
// "data_offsets": [begin, end]} with offsets relative to the data section,
// plus an optional "__metadata__" map of strings to strings. Tensor data is
// row-major, little-endian.
//
// Reading validates everything a malformed or truncated file could get wrong
// and says what, naming the file. Writing is atomic (see writeFileAtomically):
// a reader sees the old file or the complete new one, never a mixture, and a
// failed write leaves nothing behind.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_SAFETENSORS_H
#define OCTET_RUNTIME_SAFETENSORS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cassert>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class MemoryBuffer;
class raw_ostream;
} // namespace llvm

namespace octet::runtime {

/// The element types Octet stores. The names are safetensors' own.
enum class DType : uint8_t {
  F32,     ///< IEEE binary32 (master weights).
  BF16,    ///< bfloat16 (AdamW moments).
  F8_E4M3, ///< OCP FP8 E4M3 (finite-only, "fn" in PyTorch).
  F8_E5M2, ///< OCP FP8 E5M2.
  I32,
  I64,
  U8,
  U16,
};

/// Bytes per element.
size_t dtypeSize(DType dtype);
/// The safetensors name ("F32", "BF16", "F8_E4M3", ...).
llvm::StringRef dtypeName(DType dtype);
/// The dtype with that safetensors name, if Octet supports it.
std::optional<DType> parseDType(llvm::StringRef name);

/// One tensor. The data is not owned: when reading it points into the file
/// buffer that SafetensorsFile holds; when writing, into the caller's memory.
/// It may be unaligned (safetensors does not require alignment): copy it out
/// with copyTo/values rather than casting the pointer.
struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  llvm::ArrayRef<uint8_t> data;

  /// Elements in the shape (1 for a scalar, shape []).
  int64_t numElements() const;

  /// A tensor over `values`, whose element type must match `dtype`'s size.
  template <typename T>
  static Tensor of(std::string name, DType dtype, std::vector<int64_t> shape,
                   llvm::ArrayRef<T> values) {
    assert(sizeof(T) == dtypeSize(dtype) && "element size mismatch");
    return Tensor{std::move(name), dtype, std::move(shape),
                  llvm::ArrayRef<uint8_t>(
                      reinterpret_cast<const uint8_t *>(values.data()),
                      values.size() * sizeof(T))};
  }

  /// The elements, copied out (T's size must match the dtype's).
  template <typename T> std::vector<T> values() const {
    assert(sizeof(T) == dtypeSize(dtype) && "element size mismatch");
    std::vector<T> out(data.size() / sizeof(T));
    if (!data.empty())
      std::memcpy(out.data(), data.data(), data.size());
    return out;
  }
};

/// A safetensors file read into memory (memory-mapped when large).
class SafetensorsFile {
public:
  SafetensorsFile();
  SafetensorsFile(SafetensorsFile &&);
  SafetensorsFile &operator=(SafetensorsFile &&);
  ~SafetensorsFile();

  /// Tensors in data-section order.
  const std::vector<Tensor> &tensors() const { return tensorList; }
  /// The "__metadata__" map (empty when the file has none).
  const std::map<std::string, std::string> &metadata() const { return meta; }
  /// The tensor with that name, or null.
  const Tensor *find(llvm::StringRef name) const;

private:
  friend llvm::Expected<SafetensorsFile>
  parseSafetensors(std::unique_ptr<llvm::MemoryBuffer> buffer);
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  std::vector<Tensor> tensorList;
  std::map<std::string, std::string> meta;
  std::map<std::string, size_t, std::less<>> byName;
};

/// Reads and validates `path`. Errors name the file and what is wrong:
/// truncated file, header length beyond the file, invalid JSON (with its
/// line, column and byte), duplicate names, unsupported dtypes, malformed
/// shapes or offsets, offsets out of range, overlapping, leaving gaps or not
/// matching shape x element size.
llvm::Expected<SafetensorsFile> readSafetensors(llvm::StringRef path);

/// As readSafetensors, from a buffer (its identifier names it in errors).
llvm::Expected<SafetensorsFile>
parseSafetensors(std::unique_ptr<llvm::MemoryBuffer> buffer);

/// Writes `tensors` (in this order) and `metadata` to `path` atomically.
/// Names must be non-empty, unique and not "__metadata__"; each tensor's data
/// must hold exactly shape x element-size bytes.
llvm::Error
writeSafetensors(llvm::StringRef path, llvm::ArrayRef<Tensor> tensors,
                 const std::map<std::string, std::string> &metadata = {});

/// Writes a file atomically: `write` fills `<path>.tmp-<pid>` in the same
/// directory, which is then flushed to disk (fsync), renamed over `path`, and
/// the directory is synced so that the rename itself survives a power loss.
/// If `write` or any step fails, the temporary file is removed and `path` is
/// untouched. A process killed mid-write can leave only the temporary file.
llvm::Error
writeFileAtomically(llvm::StringRef path,
                    llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write);

/// Flushes a directory's entries (new, renamed or removed files) to disk.
llvm::Error syncDirectory(llvm::StringRef path);

} // namespace octet::runtime

#endif // OCTET_RUNTIME_SAFETENSORS_H
