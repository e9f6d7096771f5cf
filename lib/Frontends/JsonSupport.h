//===- JsonSupport.h - JSON reading with key lines for config files -*- C++
//-*-//
//
// Octet's configuration files are JSON. llvm::json parses them but forgets
// where each key was, and users need errors that name the line of the key
// they have to fix. JsonDocument parses a text with llvm::json, then scans it
// once more to record the line of every key (and to reject duplicate keys,
// which llvm::json silently collapses). ObjectReader reads typed values out of
// one object and remembers which keys it consumed, so that callers can list
// the keys they did not use instead of dropping them.
//
// Internal to the OctetFrontends library.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_LIB_FRONTENDS_JSONSUPPORT_H
#define OCTET_LIB_FRONTENDS_JSONSUPPORT_H

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <optional>
#include <string>

namespace octet::detail {

/// A parsed JSON text that knows the line of each of its keys. Keys are
/// addressed by paths: `hidden_size`, `optimizer.lr`,
/// `precision.overrides[1].op`.
class JsonDocument {
public:
  /// Parses `text`. A syntax error becomes "<file>:<line>:<col>: ...", a
  /// duplicate key "<file>:<line>: duplicate key ...".
  static llvm::Expected<JsonDocument> parse(llvm::StringRef text,
                                            llvm::StringRef fileName);

  const llvm::json::Value &getRoot() const { return root; }
  llvm::StringRef getFileName() const { return fileName; }

  /// The 1-based line of the key at `path`; 0 when the path names no key.
  unsigned getLine(llvm::StringRef path) const { return keyLines.lookup(path); }

  /// "<file>:<line>" of the key at `path`, or "<file>" when it is absent.
  std::string where(llvm::StringRef path) const;

  /// An error "<file>:<line>: <message>" about the key at `path`.
  llvm::Error error(llvm::StringRef path, const llvm::Twine &message) const;

private:
  JsonDocument() = default;

  std::string fileName;
  llvm::json::Value root = nullptr;
  llvm::StringMap<unsigned> keyLines;
};

/// Joins a key to the path of its object: "" + "lr" is "lr", "optimizer" +
/// "lr" is "optimizer.lr".
std::string joinPath(llvm::StringRef prefix, llvm::StringRef key);

/// Typed reads from one JSON object of a document. Every getter records the
/// key as consumed; `getUnconsumedKeys` lists the others in text order.
/// Getters leave their output unchanged when the key is absent (or null where
/// null is allowed) and return an error naming the key's line when the value
/// has the wrong type.
class ObjectReader {
public:
  /// Fails when the value at `path` (the root for "") is not an object.
  static llvm::Expected<ObjectReader> create(const JsonDocument &doc,
                                             const llvm::json::Value &value,
                                             llvm::StringRef path);

  bool has(llvm::StringRef key) const { return object->get(key) != nullptr; }
  /// True when the key is present with the value null.
  bool isNull(llvm::StringRef key) const;

  /// The raw value, marking the key consumed; nullptr when absent.
  const llvm::json::Value *get(llvm::StringRef key);

  llvm::Error getInt(llvm::StringRef key, int64_t &out);
  /// null or absent leaves `out` as it is; callers reset it first when null
  /// has a meaning of its own.
  llvm::Error getOptionalInt(llvm::StringRef key, std::optional<int64_t> &out);
  llvm::Error getNumber(llvm::StringRef key, double &out);
  llvm::Error getBool(llvm::StringRef key, bool &out);
  llvm::Error getString(llvm::StringRef key, std::string &out);

  /// Marks a key consumed without reading it (known keys that are only
  /// recorded or listed).
  void consume(llvm::StringRef key) { consumed.insert(key); }

  /// Keys present in the object that no getter consumed, in text order.
  std::vector<std::string> getUnconsumedKeys() const;

  /// Path of `key` in this object, for messages.
  std::string pathOf(llvm::StringRef key) const {
    return joinPath(prefix, key);
  }
  unsigned getLine(llvm::StringRef key) const {
    return doc->getLine(pathOf(key));
  }
  llvm::Error error(llvm::StringRef key, const llvm::Twine &message) const {
    return doc->error(pathOf(key), message);
  }
  const JsonDocument &getDocument() const { return *doc; }

private:
  ObjectReader(const JsonDocument &doc, const llvm::json::Object &object,
               std::string prefix)
      : doc(&doc), object(&object), prefix(std::move(prefix)) {}

  llvm::Error typeError(llvm::StringRef key, llvm::StringRef expected,
                        const llvm::json::Value &got) const;

  const JsonDocument *doc;
  const llvm::json::Object *object;
  std::string prefix;
  llvm::StringSet<> consumed;
};

/// A JSON value printed compactly for messages, shortened when long.
std::string describeValue(const llvm::json::Value &value);

/// A number for messages: integers without decimals, others as %g.
std::string formatNumber(double value);

/// Reads a whole file, with an error naming it when it cannot be read.
llvm::Expected<std::string> readFile(llvm::StringRef path);

} // namespace octet::detail

#endif // OCTET_LIB_FRONTENDS_JSONSUPPORT_H
