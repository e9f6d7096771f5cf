//===- Safetensors.cpp - Reading and writing safetensors files ------------===//
//
// The reader trusts nothing in the file: every length, offset and shape is
// checked before it is used, with overflow-safe arithmetic, because a
// checkpoint may be truncated by a full disk or come from another tool. The
// layout rules are those of the reference implementation (tensors tile the
// data section exactly, without holes or overlaps), so that anything this
// writes, it and PyTorch's loader accept, and anything it accepts is sound.
//
//===----------------------------------------------------------------------===//

#include "octet/Runtime/Safetensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <unistd.h>

using namespace octet::runtime;
using llvm::StringRef;
using llvm::Twine;

// Tensor bytes are copied between memory and file as they are; safetensors
// is little-endian, so a big-endian host would need byte swapping.
static_assert(llvm::sys::IsLittleEndianHost,
              "safetensors I/O assumes a little-endian host");

namespace {

struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},         {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I32, "I32", 4},         {DType::I64, "I64", 8},
    {DType::U8, "U8", 1},           {DType::U16, "U16", 2},
};

// The reference implementation refuses headers over 100 MB; so do we, so that
// a corrupt length cannot make us parse a whole multi-gigabyte file as JSON.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

constexpr StringRef kMetadataKey = "__metadata__";

llvm::Error errorIn(StringRef file, const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": " + message);
}

std::string quote(StringRef s) { return ("'" + s + "'").str(); }

/// The first key that appears twice in one object of `json` (which must
/// already be valid JSON), with its byte offset. llvm::json keeps the last of
/// duplicate keys silently, and a file with two tensors of one name is
/// ambiguous, so the reader looks for them itself.
std::optional<std::pair<std::string, size_t>> findDuplicateKey(StringRef json) {
  // One entry per open object or array: whether it is an object, and the
  // keys seen in it.
  std::vector<std::pair<bool, std::set<std::string>>> open;
  bool expectKey = false;
  for (size_t i = 0; i < json.size(); ++i) {
    switch (json[i]) {
    case '{':
      open.push_back({true, {}});
      expectKey = true;
      break;
    case '[':
      open.push_back({false, {}});
      expectKey = false;
      break;
    case '}':
    case ']':
      open.pop_back();
      expectKey = false;
      break;
    case ',':
      expectKey = !open.empty() && open.back().first;
      break;
    case '"': {
      size_t start = i++;
      while (i < json.size() && json[i] != '"')
        i += json[i] == '\\' ? 2 : 1;
      if (!expectKey)
        break;
      expectKey = false;
      // Decode escapes through the JSON parser so that "a" and "\u0061"
      // count as the same key.
      llvm::Expected<llvm::json::Value> key =
          llvm::json::parse(json.slice(start, i + 1));
      if (!key) {
        llvm::consumeError(key.takeError());
        break;
      }
      std::string text = key->getAsString().value_or("").str();
      if (!open.back().second.insert(text).second)
        return std::make_pair(text, start);
      break;
    }
    default:
      break;
    }
  }
  return std::nullopt;
}

/// out = a * b; true when that overflows.
bool mulOverflows(uint64_t a, uint64_t b, uint64_t &out) {
  return __builtin_mul_overflow(a, b, &out);
}

/// A non-negative integer from the JSON, or nothing.
std::optional<uint64_t> asCount(const llvm::json::Value &v) {
  if (std::optional<uint64_t> u = v.getAsUINT64())
    return u;
  if (std::optional<int64_t> i = v.getAsInteger(); i && *i >= 0)
    return static_cast<uint64_t>(*i);
  return std::nullopt;
}

} // namespace

size_t octet::runtime::dtypeSize(DType dtype) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == dtype)
      return info.size;
  llvm_unreachable("unknown DType");
}

StringRef octet::runtime::dtypeName(DType dtype) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == dtype)
      return info.name;
  llvm_unreachable("unknown DType");
}

std::optional<DType> octet::runtime::parseDType(StringRef name) {
  for (const DTypeInfo &info : kDTypes)
    if (name == info.name)
      return info.dtype;
  return std::nullopt;
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

SafetensorsFile::SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile &&) = default;
SafetensorsFile &SafetensorsFile::operator=(SafetensorsFile &&) = default;
SafetensorsFile::~SafetensorsFile() = default;

const Tensor *SafetensorsFile::find(StringRef name) const {
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : &tensorList[it->second];
}

llvm::Expected<SafetensorsFile>
octet::runtime::readSafetensors(StringRef path) {
  // Not null-terminated, so that MemoryBuffer may map the file rather than
  // copy it.
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read '%s': %s",
                                   path.str().c_str(),
                                   buffer.getError().message().c_str());
  return parseSafetensors(std::move(*buffer));
}

llvm::Expected<SafetensorsFile>
octet::runtime::parseSafetensors(std::unique_ptr<llvm::MemoryBuffer> buffer) {
  StringRef file = buffer->getBufferIdentifier();
  StringRef bytes = buffer->getBuffer();
  if (bytes.size() < 8)
    return errorIn(file, "truncated file: " + Twine(bytes.size()) +
                             " bytes, too short for the 8-byte header length");
  uint64_t headerLen = llvm::support::endian::read64le(bytes.data());
  uint64_t available = bytes.size() - 8;
  if (headerLen > available)
    return errorIn(file, "header length " + Twine(headerLen) + " exceeds the " +
                             Twine(available) +
                             " bytes that follow it (truncated file, or not a "
                             "safetensors file)");
  if (headerLen > kMaxHeaderBytes)
    return errorIn(file, "header length " + Twine(headerLen) +
                             " exceeds the 100 MB limit");
  StringRef header = bytes.substr(8, headerLen);
  if (!header.starts_with("{"))
    return errorIn(file, "header does not start with '{' (not a safetensors "
                         "file?)");

  llvm::Expected<llvm::json::Value> json = llvm::json::parse(header);
  if (!json)
    return errorIn(file, "invalid JSON header " +
                             llvm::toString(json.takeError()) +
                             " (positions within the header, which starts at "
                             "file offset 8)");
  if (auto dup = findDuplicateKey(header))
    return errorIn(file, "duplicate key " + quote(dup->first) +
                             " in the JSON header at header byte " +
                             Twine(dup->second));
  const llvm::json::Object *root = json->getAsObject();
  if (!root)
    return errorIn(file, "the JSON header is not an object");

  SafetensorsFile result;
  StringRef dataSection = bytes.substr(8 + headerLen);

  // Entries in name order, so that the first error reported does not depend
  // on hash-table order.
  std::vector<StringRef> names;
  for (const auto &kv : *root)
    names.push_back(kv.first);
  llvm::sort(names);

  struct Placed {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Placed> placed;
  for (StringRef name : names) {
    const llvm::json::Value &value = *root->get(name);
    if (name == kMetadataKey) {
      const llvm::json::Object *meta = value.getAsObject();
      if (!meta)
        return errorIn(file, "__metadata__ is not an object");
      for (const auto &kv : *meta) {
        std::optional<StringRef> s = kv.second.getAsString();
        if (!s)
          return errorIn(file, "__metadata__ entry " + quote(kv.first) +
                                   " is not a string");
        result.meta[kv.first.str()] = s->str();
      }
      continue;
    }
    std::string where = "tensor " + quote(name);
    const llvm::json::Object *entry = value.getAsObject();
    if (!entry)
      return errorIn(file, where + " is not an object");
    for (const auto &kv : *entry)
      if (kv.first != "dtype" && kv.first != "shape" &&
          kv.first != "data_offsets")
        return errorIn(file, where + " has unknown key " + quote(kv.first) +
                                 " (expected dtype, shape, data_offsets)");

    Tensor t;
    t.name = name.str();
    std::optional<StringRef> dtypeText = entry->getString("dtype");
    if (!dtypeText)
      return errorIn(file, where + " has no string 'dtype'");
    std::optional<DType> dtype = parseDType(*dtypeText);
    if (!dtype)
      return errorIn(file, where + " has unsupported dtype " +
                               quote(*dtypeText) +
                               " (supported: F32, BF16, F8_E4M3, F8_E5M2, "
                               "I32, I64, U8, U16)");
    t.dtype = *dtype;

    const llvm::json::Array *shape = entry->getArray("shape");
    if (!shape)
      return errorIn(file, where + " has no array 'shape'");
    // The byte size, checked for overflow as the dimensions are multiplied.
    uint64_t byteSize = dtypeSize(t.dtype);
    for (const llvm::json::Value &dim : *shape) {
      std::optional<uint64_t> d = asCount(dim);
      if (!d || *d > uint64_t(INT64_MAX))
        return errorIn(file, where + " has a shape entry that is not a "
                                     "non-negative integer");
      t.shape.push_back(static_cast<int64_t>(*d));
      if (byteSize != 0 && mulOverflows(byteSize, *d, byteSize))
        return errorIn(file, where + " has a shape whose size overflows");
    }

    const llvm::json::Array *offsets = entry->getArray("data_offsets");
    std::optional<uint64_t> begin, end;
    if (offsets && offsets->size() == 2) {
      begin = asCount((*offsets)[0]);
      end = asCount((*offsets)[1]);
    }
    if (!begin || !end)
      return errorIn(file, where + " needs 'data_offsets' as two "
                                   "non-negative integers [begin, end]");
    std::string range = ("[" + Twine(*begin) + ", " + Twine(*end) + "]").str();
    if (*begin > *end)
      return errorIn(file, where + " has data_offsets " + range +
                               " with begin after end");
    if (*end > dataSection.size())
      return errorIn(file, where + " has data_offsets " + range +
                               " beyond the " + Twine(dataSection.size()) +
                               "-byte data section (truncated file?)");
    if (*end - *begin != byteSize)
      return errorIn(file, where + " has data_offsets " + range + " (" +
                               Twine(*end - *begin) +
                               " bytes) but its shape "
                               "and dtype " +
                               dtypeName(t.dtype) + " need " + Twine(byteSize) +
                               " bytes");
    t.data = llvm::ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(dataSection.data()) + *begin,
        *end - *begin);
    placed.push_back({*begin, *end, result.tensorList.size()});
    result.tensorList.push_back(std::move(t));
  }

  // The tensors must tile the data section: sorted by offset, each starts
  // where the previous one ended and the last ends at the end of the file.
  llvm::sort(placed, [](const Placed &a, const Placed &b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t at = 0;
  for (size_t i = 0; i < placed.size(); ++i) {
    const Placed &p = placed[i];
    StringRef name = result.tensorList[p.index].name;
    if (p.begin < at)
      return errorIn(
          file, "tensors " +
                    quote(result.tensorList[placed[i - 1].index].name) +
                    " and " + quote(name) + " overlap in the data section");
    if (p.begin > at)
      return errorIn(file, "the data section has " + Twine(p.begin - at) +
                               " unused bytes at offset " + Twine(at) +
                               ", before tensor " + quote(name));
    at = p.end;
  }
  if (at != dataSection.size())
    return errorIn(file, "the data section has " +
                             Twine(dataSection.size() - at) +
                             " bytes after the last tensor's data");

  // Data-section order is the order the writer chose; keep it.
  std::vector<Tensor> ordered;
  ordered.reserve(placed.size());
  for (const Placed &p : placed)
    ordered.push_back(std::move(result.tensorList[p.index]));
  result.tensorList = std::move(ordered);
  for (size_t i = 0; i < result.tensorList.size(); ++i)
    result.byName[result.tensorList[i].name] = i;
  result.buffer = std::move(buffer);
  return std::move(result);
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

static llvm::Error errnoError(const Twine &what, int err) {
  return llvm::createStringError(std::error_code(err, std::generic_category()),
                                 what + ": " + std::strerror(err));
}

llvm::Error octet::runtime::syncDirectory(StringRef path) {
  std::string dir = path.empty() ? "." : path.str();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errnoError("cannot open directory '" + dir + "' to sync it", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot sync directories (EINVAL); nothing more can be
  // done there, and their renames are as durable as they get.
  if (rc != 0 && err != EINVAL)
    return errnoError("cannot sync directory '" + dir + "'", err);
  return llvm::Error::success();
}

llvm::Error octet::runtime::writeFileAtomically(
    StringRef path,
    llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write) {
  // The pid makes the name unique among live processes, so a leftover from a
  // killed writer can only be stale and may be truncated.
  std::string tmp = (path + ".tmp-" + Twine(::getpid())).str();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    return errnoError(
        "cannot write '" + path + "': cannot create '" + tmp + "'", errno);

  llvm::Error err = llvm::Error::success();
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/false);
    err = write(os);
    os.flush();
    if (!err && os.has_error())
      err = llvm::createStringError(os.error(), "cannot write '%s': %s",
                                    tmp.c_str(), os.error().message().c_str());
    // raw_fd_ostream aborts on destruction with an unchecked error.
    os.clear_error();
  }
  if (!err && ::fsync(fd) != 0)
    err = errnoError("cannot write '" + tmp + "': fsync failed", errno);
  if (::close(fd) != 0 && !err)
    err = errnoError("cannot write '" + tmp + "': close failed", errno);
  if (!err && ::rename(tmp.c_str(), path.str().c_str()) != 0)
    err = errnoError("cannot replace '" + path + "' with '" + tmp + "'", errno);
  if (err) {
    ::unlink(tmp.c_str());
    return err;
  }
  return syncDirectory(llvm::sys::path::parent_path(path));
}

llvm::Error octet::runtime::writeSafetensors(
    StringRef path, llvm::ArrayRef<Tensor> tensors,
    const std::map<std::string, std::string> &metadata) {
  // Check everything before creating a file, so that a bad call leaves the
  // file system as it was.
  std::set<StringRef> seen;
  for (const Tensor &t : tensors) {
    std::string where =
        "cannot write '" + path.str() + "': tensor " + quote(t.name);
    if (t.name.empty() || t.name == kMetadataKey)
      return llvm::createStringError(where + " has a reserved or empty name");
    if (!llvm::json::isUTF8(t.name))
      return llvm::createStringError(where + " has a name that is not UTF-8");
    if (!seen.insert(t.name).second)
      return llvm::createStringError(where + " appears twice");
    uint64_t bytes = dtypeSize(t.dtype);
    for (int64_t d : t.shape)
      if (d < 0 || mulOverflows(bytes, uint64_t(d), bytes))
        return llvm::createStringError(where + " has an invalid shape");
    if (bytes != t.data.size())
      return llvm::createStringError(
          where + " has " + Twine(t.data.size()) + " bytes of data but its " +
          "shape and dtype " + dtypeName(t.dtype) + " need " + Twine(bytes));
  }

  for (const auto &[key, value] : metadata)
    if (!llvm::json::isUTF8(key) || !llvm::json::isUTF8(value))
      return llvm::createStringError("cannot write '" + path +
                                     "': metadata entry " + quote(key) +
                                     " is not UTF-8");

  std::string header;
  {
    llvm::raw_string_ostream os(header);
    llvm::json::OStream json(os);
    json.object([&] {
      if (!metadata.empty())
        json.attributeObject(kMetadataKey, [&] {
          for (const auto &[key, value] : metadata)
            json.attribute(key, value);
        });
      uint64_t offset = 0;
      for (const Tensor &t : tensors) {
        json.attributeObject(t.name, [&] {
          json.attribute("dtype", dtypeName(t.dtype));
          json.attributeArray("shape", [&] {
            for (int64_t d : t.shape)
              json.value(d);
          });
          json.attributeArray("data_offsets", [&] {
            json.value(offset);
            json.value(offset + t.data.size());
          });
        });
        offset += t.data.size();
      }
    });
  }
  // Pad with spaces (as the reference writer does) so that the data section
  // starts 8-byte aligned and a mapped file can be read in place.
  header.append((8 - header.size() % 8) % 8, ' ');

  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    char length[8];
    llvm::support::endian::write64le(length, header.size());
    os.write(length, sizeof(length));
    os << header;
    for (const Tensor &t : tensors)
      os.write(reinterpret_cast<const char *>(t.data.data()), t.data.size());
    return llvm::Error::success();
  });
}
