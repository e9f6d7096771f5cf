//===- JsonSupport.cpp - JSON reading with key lines for config files -----===//

#include "JsonSupport.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace llvm;
using namespace octet::detail;

namespace {

/// Records the line of every key of a JSON text that llvm::json has already
/// accepted, so it only has to follow the structure, not validate it.
class KeyScanner {
public:
  KeyScanner(StringRef text, StringMap<unsigned> &lines, std::string &duplicate,
             unsigned &duplicateFirstLine)
      : text(text), lines(lines), duplicate(duplicate),
        duplicateFirstLine(duplicateFirstLine) {}

  void run() { scanValue(""); }

private:
  void skipSpace() {
    while (pos < text.size() && isSpace(text[pos])) {
      if (text[pos] == '\n')
        ++line;
      ++pos;
    }
  }

  static bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }

  /// Reads a string starting at its opening quote; escapes other than \uXXXX
  /// are decoded, which is all configuration keys ever need.
  std::string scanString() {
    std::string out;
    ++pos; // opening quote
    while (pos < text.size() && text[pos] != '"') {
      char c = text[pos++];
      if (c != '\\' || pos >= text.size()) {
        out += c;
        continue;
      }
      char e = text[pos++];
      switch (e) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u':
        out += "\\u";
        break;
      default:
        out += e;
      }
    }
    ++pos; // closing quote
    return out;
  }

  void scanValue(const std::string &path) {
    skipSpace();
    if (pos >= text.size())
      return;
    char c = text[pos];
    if (c == '{')
      return scanObject(path);
    if (c == '[')
      return scanArray(path);
    if (c == '"') {
      scanString();
      return;
    }
    // Numbers, true, false, null.
    while (pos < text.size() && !isSpace(text[pos]) && text[pos] != ',' &&
           text[pos] != '}' && text[pos] != ']')
      ++pos;
  }

  void scanObject(const std::string &path) {
    ++pos; // {
    StringMap<unsigned> seen;
    while (true) {
      skipSpace();
      if (pos >= text.size() || text[pos] == '}') {
        ++pos;
        return;
      }
      if (text[pos] == ',') {
        ++pos;
        continue;
      }
      unsigned keyLine = line;
      std::string key = scanString();
      std::string keyPath = joinPath(path, key);
      auto [it, inserted] = seen.try_emplace(key, keyLine);
      if (!inserted && duplicate.empty()) {
        duplicate = keyPath;
        duplicateFirstLine = it->second;
        lines[keyPath] = keyLine;
      } else if (inserted) {
        lines.try_emplace(keyPath, keyLine);
      }
      skipSpace();
      ++pos; // :
      scanValue(keyPath);
    }
  }

  void scanArray(const std::string &path) {
    ++pos; // [
    unsigned index = 0;
    while (true) {
      skipSpace();
      if (pos >= text.size() || text[pos] == ']') {
        ++pos;
        return;
      }
      if (text[pos] == ',') {
        ++pos;
        continue;
      }
      // Elements are addressed as path[i]; an element's own line is that of
      // its first character, useful for arrays of objects.
      std::string elementPath = (path + "[" + Twine(index++) + "]").str();
      lines.try_emplace(elementPath, line);
      scanValue(elementPath);
    }
  }

  StringRef text;
  size_t pos = 0;
  unsigned line = 1;
  StringMap<unsigned> &lines;
  std::string &duplicate;
  unsigned &duplicateFirstLine;
};

} // namespace

std::string octet::detail::joinPath(StringRef prefix, StringRef key) {
  if (prefix.empty())
    return key.str();
  return (prefix + "." + key).str();
}

Expected<JsonDocument> JsonDocument::parse(StringRef text, StringRef fileName) {
  JsonDocument doc;
  doc.fileName = fileName.str();
  Expected<json::Value> value = json::parse(text);
  if (!value) {
    // llvm::json reports "[line:col, byte=N]: message" with col counted from
    // 0 at the parser's position. Most messages are raised after the
    // offending character was consumed, so that count is already the
    // 1-based column of the character; the two raised in front of it are
    // shifted by one.
    std::string message = toString(value.takeError());
    SmallVector<StringRef> m;
    Regex re("^\\[([0-9]+):([0-9]+), byte=[0-9]+\\]: (.*)$");
    if (!re.match(message, &m))
      return createStringError("%s: invalid JSON: %s", doc.fileName.c_str(),
                               message.c_str());
    unsigned line = 0, column = 0;
    m[1].getAsInteger(10, line);
    m[2].getAsInteger(10, column);
    StringRef what = m[3];
    if (what == "Text after end of document" || what == "Unexpected EOF")
      ++column;
    std::string lowered = what.str();
    if (!lowered.empty())
      lowered[0] = llvm::toLower(lowered[0]);
    return createStringError(formatv("{0}:{1}:{2}: invalid JSON: {3}",
                                     doc.fileName, line, std::max(column, 1u),
                                     lowered)
                                 .str());
  }
  doc.root = std::move(*value);

  std::string duplicate;
  unsigned firstLine = 0;
  KeyScanner(text, doc.keyLines, duplicate, firstLine).run();
  if (!duplicate.empty())
    return doc.error(duplicate, formatv("duplicate key '{0}' (first given on "
                                        "line {1}); JSON keys must be unique",
                                        duplicate, firstLine));
  return std::move(doc);
}

std::string JsonDocument::where(StringRef path) const {
  unsigned line = getLine(path);
  if (!line)
    return fileName;
  return formatv("{0}:{1}", fileName, line).str();
}

Error JsonDocument::error(StringRef path, const Twine &message) const {
  return createStringError(where(path) + ": " + message);
}

std::string octet::detail::describeValue(const json::Value &value) {
  if (value.kind() == json::Value::Number && !value.getAsInteger())
    return formatNumber(*value.getAsNumber());
  std::string text;
  raw_string_ostream os(text);
  os << value;
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

std::string octet::detail::formatNumber(double value) {
  if (value == std::floor(value) && std::abs(value) < 1e15)
    return std::to_string(static_cast<int64_t>(value));
  std::string text;
  raw_string_ostream(text) << format("%g", value);
  return text;
}

Expected<std::string> octet::detail::readFile(StringRef path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return createStringError(buffer.getError(), "cannot read '%s': %s",
                             path.str().c_str(),
                             buffer.getError().message().c_str());
  return (*buffer)->getBuffer().str();
}

//===----------------------------------------------------------------------===//
// ObjectReader
//===----------------------------------------------------------------------===//

Expected<ObjectReader> ObjectReader::create(const JsonDocument &doc,
                                            const json::Value &value,
                                            StringRef path) {
  const json::Object *object = value.getAsObject();
  if (!object) {
    if (path.empty())
      return createStringError(
          "%s: expected a JSON object at the top level, got %s",
          doc.getFileName().str().c_str(), describeValue(value).c_str());
    return doc.error(path, formatv("{0} must be an object, got {1}", path,
                                   describeValue(value)));
  }
  return ObjectReader(doc, *object, path.str());
}

bool ObjectReader::isNull(StringRef key) const {
  const json::Value *v = object->get(key);
  return v && v->kind() == json::Value::Null;
}

const json::Value *ObjectReader::get(StringRef key) {
  consumed.insert(key);
  return object->get(key);
}

Error ObjectReader::typeError(StringRef key, StringRef expected,
                              const json::Value &got) const {
  return error(key, formatv("{0} must be {1}, got {2}", pathOf(key), expected,
                            describeValue(got)));
}

Error ObjectReader::getInt(StringRef key, int64_t &out) {
  const json::Value *v = get(key);
  if (!v)
    return Error::success();
  // Integral doubles such as 7168.0 are accepted; 1e999 and 2^64 are not.
  std::optional<int64_t> i = v->getAsInteger();
  if (!i)
    return typeError(key, "an integer", *v);
  out = *i;
  return Error::success();
}

Error ObjectReader::getOptionalInt(StringRef key, std::optional<int64_t> &out) {
  if (isNull(key)) {
    consume(key);
    return Error::success();
  }
  int64_t value = 0;
  if (!has(key)) {
    consume(key);
    return Error::success();
  }
  if (Error err = getInt(key, value))
    return err;
  out = value;
  return Error::success();
}

Error ObjectReader::getNumber(StringRef key, double &out) {
  const json::Value *v = get(key);
  if (!v)
    return Error::success();
  std::optional<double> d = v->getAsNumber();
  if (!d || !std::isfinite(*d))
    return typeError(key, "a finite number", *v);
  out = *d;
  return Error::success();
}

Error ObjectReader::getBool(StringRef key, bool &out) {
  const json::Value *v = get(key);
  if (!v)
    return Error::success();
  std::optional<bool> b = v->getAsBoolean();
  if (!b)
    return typeError(key, "true or false", *v);
  out = *b;
  return Error::success();
}

Error ObjectReader::getString(StringRef key, std::string &out) {
  const json::Value *v = get(key);
  if (!v)
    return Error::success();
  std::optional<StringRef> s = v->getAsString();
  if (!s)
    return typeError(key, "a string", *v);
  out = s->str();
  return Error::success();
}

std::vector<std::string> ObjectReader::getUnconsumedKeys() const {
  std::vector<std::string> keys;
  for (const auto &entry : *object)
    if (!consumed.contains(entry.first))
      keys.push_back(entry.first.str());
  llvm::sort(keys, [&](const std::string &a, const std::string &b) {
    return std::make_pair(getLine(a), a) < std::make_pair(getLine(b), b);
  });
  return keys;
}
