//===- SafetensorsTest.cpp - Safetensors reader and writer tests ----------===//
//
// Round trips are checked bit for bit on random bytes (NaN payloads and
// FP8 bit patterns included), against the exact bytes the reference writer
// produces, and every way a file can be malformed is checked for its message.
//
//===----------------------------------------------------------------------===//

#include "IOTestUtil.h"

#include "octet/Runtime/DataLoader.h"
#include "octet/Runtime/Safetensors.h"

#include "llvm/Support/Endian.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <unistd.h>

using namespace octet::runtime;
using octet::test::errorOf;
using octet::test::listDir;
using octet::test::readBytes;
using octet::test::TempDir;
using octet::test::writeBytes;

namespace {

constexpr DType kAllDTypes[] = {DType::F32,     DType::BF16, DType::F8_E4M3,
                                DType::F8_E5M2, DType::I32,  DType::I64,
                                DType::U8,      DType::U16};

std::vector<uint8_t> randomBytes(size_t n, uint64_t seed) {
  Xoshiro256 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t &b : out)
    b = static_cast<uint8_t>(rng.next() >> 56);
  return out;
}

/// A file made by hand: length prefix (the header's size unless given),
/// header text, data bytes.
std::string rawFile(llvm::StringRef header, llvm::StringRef data = "",
                    std::optional<uint64_t> length = std::nullopt) {
  char prefix[8];
  llvm::support::endian::write64le(prefix, length.value_or(header.size()));
  return std::string(prefix, 8) + header.str() + data.str();
}

TEST(SafetensorsTest, DTypeNamesAndSizes) {
  for (DType d : kAllDTypes) {
    EXPECT_EQ(parseDType(dtypeName(d)), d);
  }
  EXPECT_EQ(dtypeSize(DType::F32), 4u);
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtypeSize(DType::F8_E5M2), 1u);
  EXPECT_EQ(dtypeSize(DType::I32), 4u);
  EXPECT_EQ(dtypeSize(DType::I64), 8u);
  EXPECT_EQ(dtypeSize(DType::U8), 1u);
  EXPECT_EQ(dtypeSize(DType::U16), 2u);
  EXPECT_FALSE(parseDType("F16"));
  EXPECT_FALSE(parseDType("f32"));
}

TEST(SafetensorsTest, RoundTripsEveryDTypeBitExactly) {
  TempDir dir;
  std::vector<std::vector<uint8_t>> storage;
  std::vector<Tensor> tensors;
  uint64_t seed = 1;
  for (DType d : kAllDTypes) {
    // An odd shape (so the data section is not aligned for the next
    // tensor), a scalar and an empty tensor of each dtype.
    for (std::vector<int64_t> shape :
         {std::vector<int64_t>{3, 5, 7}, std::vector<int64_t>{},
          std::vector<int64_t>{0, 4}}) {
      int64_t n = 1;
      for (int64_t s : shape)
        n *= s;
      storage.push_back(randomBytes(n * dtypeSize(d), seed++));
      std::string name =
          (dtypeName(d) + "/rank" + llvm::Twine(shape.size()) + ".weight")
              .str();
      tensors.push_back({name, d, shape, storage.back()});
    }
  }
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "quotes \" and \\ and unicode \xc3\xa9"}};
  std::string path = dir.path("all.safetensors");
  ASSERT_FALSE(llvm::errorToBool(writeSafetensors(path, tensors, metadata)));

  llvm::Expected<SafetensorsFile> file = readSafetensors(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->metadata(), metadata);
  ASSERT_EQ(file->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor &want = tensors[i];
    // Data-section order is the order written.
    const Tensor &got = file->tensors()[i];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.dtype, want.dtype) << want.name;
    EXPECT_EQ(got.shape, want.shape) << want.name;
    EXPECT_EQ(got.data.vec(), want.data.vec()) << want.name;
    EXPECT_EQ(file->find(want.name), &got);
  }
  EXPECT_EQ(file->find("missing"), nullptr);

  // The data section starts 8-byte aligned, as the reference writer makes it.
  std::string bytes = readBytes(path);
  uint64_t headerLen = llvm::support::endian::read64le(bytes.data());
  EXPECT_EQ((8 + headerLen) % 8, 0u);
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"all.safetensors"});
}

TEST(SafetensorsTest, TypedHelpersRoundTrip) {
  TempDir dir;
  std::vector<float> w = {1.5f, -0.0f, 3.25e-38f, 7.0f, -2.0f, 1e30f};
  std::vector<uint16_t> m = {0x3f80, 0x8000, 0x7fc1};
  std::vector<int64_t> step = {123456789012345};
  std::string path = dir.path("t.safetensors");
  ASSERT_FALSE(llvm::errorToBool(writeSafetensors(
      path, {Tensor::of<float>("w", DType::F32, {2, 3}, w),
             Tensor::of<uint16_t>("m", DType::BF16, {3}, m),
             Tensor::of<int64_t>("step", DType::I64, {}, step)})));
  llvm::Expected<SafetensorsFile> file = readSafetensors(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->find("w")->values<float>(), w);
  EXPECT_EQ(file->find("m")->values<uint16_t>(), m);
  EXPECT_EQ(file->find("step")->values<int64_t>(), step);
  EXPECT_EQ(file->find("w")->numElements(), 6);
  EXPECT_EQ(file->find("step")->numElements(), 1);
}

// The exact bytes safetensors' own writer (safetensors.torch.save_file, or
// the Rust crate) produces for {"a": float32 [1.0, 2.0]}: compact JSON, the
// header padded with spaces to a multiple of 8.
TEST(SafetensorsTest, MatchesTheReferenceWriterByteForByte) {
  TempDir dir;
  std::vector<float> a = {1.0f, 2.0f};
  std::string path = dir.path("a.safetensors");
  ASSERT_FALSE(llvm::errorToBool(
      writeSafetensors(path, {Tensor::of<float>("a", DType::F32, {2}, a)})));
  std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  EXPECT_EQ(readBytes(path), rawFile(header, data));

  // And what PyTorch's save_file writes, metadata first, is read back.
  std::string torchHeader =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  writeBytes(path, rawFile(torchHeader, data));
  llvm::Expected<SafetensorsFile> file = readSafetensors(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->find("a")->values<float>(), a);
}

TEST(SafetensorsTest, EmptyFileOfTensorsRoundTrips) {
  TempDir dir;
  std::string path = dir.path("empty.safetensors");
  ASSERT_FALSE(llvm::errorToBool(writeSafetensors(path, {})));
  llvm::Expected<SafetensorsFile> file = readSafetensors(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_TRUE(file->tensors().empty());
}

struct BadFile {
  const char *what;
  std::string bytes;
  const char *message;
};

TEST(SafetensorsTest, ReaderNamesTheFileAndTheProblem) {
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  const std::string eightBytes(8, '\x01');
  const std::vector<BadFile> cases = {
      {"shorter than the length", std::string("\x10\x00\x00", 3),
       "truncated file: 3 bytes, too short for the 8-byte header length"},
      {"length beyond the file", rawFile("{}", "", 1000),
       "header length 1000 exceeds the 2 bytes that follow it"},
      {"huge length", rawFile("{}", "", ~uint64_t(0)),
       "header length 18446744073709551615 exceeds"},
      {"not JSON", rawFile("PK\x03\x04"), "header does not start with '{'"},
      {"bad JSON", rawFile("{\"a\":\n {\"dtype\": F32}}"),
       "invalid JSON header [2:12, byte=18]: Invalid JSON value"},
      {"duplicate name",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"a":{)" + f32x2 +
                   R"(,"data_offsets":[8,16]}})",
               eightBytes + eightBytes),
       "duplicate key 'a' in the JSON header at header byte 54"},
      {"duplicate name, escaped",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"\u0061":{)" +
                   f32x2 + R"(,"data_offsets":[8,16]}})",
               eightBytes + eightBytes),
       "duplicate key 'a'"},
      {"duplicate field",
       rawFile(
           R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
           eightBytes),
       "duplicate key 'dtype'"},
      {"unsupported dtype",
       rawFile(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})",
               eightBytes),
       "tensor 'a' has unsupported dtype 'F16' (supported: F32, BF16"},
      {"missing dtype",
       rawFile(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", eightBytes),
       "tensor 'a' has no string 'dtype'"},
      {"unknown field",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8],"stride":[1]}})",
               eightBytes),
       "tensor 'a' has unknown key 'stride'"},
      {"entry not an object", rawFile(R"({"a":[1,2]})"),
       "tensor 'a' is not an object"},
      {"missing shape",
       rawFile(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", eightBytes),
       "tensor 'a' has no array 'shape'"},
      {"negative dimension",
       rawFile(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
               eightBytes),
       "tensor 'a' has a shape entry that is not a non-negative integer"},
      {"fractional dimension",
       rawFile(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})",
               eightBytes),
       "shape entry that is not a non-negative integer"},
      {"overflowing shape",
       rawFile(
           R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
           eightBytes),
       "tensor 'a' has a shape whose size overflows"},
      {"one offset", rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0]}})"),
       "tensor 'a' needs 'data_offsets' as two non-negative integers"},
      {"offsets reversed",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[8,0]}})", eightBytes),
       "tensor 'a' has data_offsets [8, 0] with begin after end"},
      {"offsets out of range",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]}})", "\x01"),
       "tensor 'a' has data_offsets [0, 8] beyond the 1-byte data section"},
      {"size not shape x dtype",
       rawFile(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
               eightBytes),
       "tensor 'a' has data_offsets [0, 8] (8 bytes) but its shape and dtype "
       "F32 need 12 bytes"},
      {"overlap",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                   R"(,"data_offsets":[4,12]}})",
               eightBytes + "1234"),
       "tensors 'a' and 'b' overlap in the data section"},
      {"gap",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                   R"(,"data_offsets":[12,20]}})",
               eightBytes + "1234" + eightBytes),
       "the data section has 4 unused bytes at offset 8, before tensor 'b'"},
      {"trailing bytes",
       rawFile(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]}})",
               eightBytes + "xyz"),
       "the data section has 3 bytes after the last tensor's data"},
      {"metadata not an object", rawFile(R"({"__metadata__":[1]})"),
       "__metadata__ is not an object"},
      {"metadata value not a string",
       rawFile(R"({"__metadata__":{"epoch":3}})"),
       "__metadata__ entry 'epoch' is not a string"},
  };
  TempDir dir;
  for (const BadFile &c : cases) {
    std::string path = dir.path("bad.safetensors");
    writeBytes(path, c.bytes);
    std::string message = errorOf(readSafetensors(path));
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << c.what << ": " << message;
    EXPECT_NE(message.find(c.message), std::string::npos)
        << c.what << ": " << message;
  }
}

TEST(SafetensorsTest, MissingFileIsReported) {
  TempDir dir;
  std::string path = dir.path("nope.safetensors");
  std::string message = errorOf(readSafetensors(path));
  EXPECT_NE(message.find("cannot read '" + path + "'"), std::string::npos)
      << message;
}

// Every prefix of a valid file (a checkpoint cut short by a full disk) and
// every single-byte corruption of its header is either rejected with an
// error or, for corruptions that keep it well-formed, read; never a crash.
TEST(SafetensorsTest, TruncationsAndCorruptionsAreRejectedCleanly) {
  TempDir dir;
  std::vector<float> a = {1, 2, 3, 4};
  std::vector<uint16_t> b = {5, 6};
  std::string path = dir.path("ok.safetensors");
  ASSERT_FALSE(llvm::errorToBool(
      writeSafetensors(path,
                       {Tensor::of<float>("a", DType::F32, {2, 2}, a),
                        Tensor::of<uint16_t>("b", DType::BF16, {2}, b)},
                       {{"k", "v"}})));
  std::string good = readBytes(path);
  std::string cut = dir.path("cut.safetensors");
  for (size_t n = 0; n < good.size(); ++n) {
    writeBytes(cut, llvm::StringRef(good).take_front(n));
    std::string message = errorOf(readSafetensors(cut));
    EXPECT_EQ(message.rfind(cut + ": ", 0), 0u) << n << ": " << message;
  }
  Xoshiro256 rng(7);
  uint64_t headerEnd = 8 + llvm::support::endian::read64le(good.data());
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    bad[rng.uniform(headerEnd)] = static_cast<char>(rng.next());
    writeBytes(cut, bad);
    llvm::Expected<SafetensorsFile> file = readSafetensors(cut);
    if (!file)
      llvm::consumeError(file.takeError());
  }
}

TEST(SafetensorsTest, WriterRejectsBadTensorsWithoutCreatingAFile) {
  TempDir dir;
  std::string path = dir.path("w.safetensors");
  std::vector<float> four = {1, 2, 3, 4};
  Tensor ok = Tensor::of<float>("x", DType::F32, {4}, four);
  Tensor wrongSize = Tensor::of<float>("y", DType::F32, {5}, four);
  Tensor reserved = Tensor::of<float>("__metadata__", DType::F32, {4}, four);
  Tensor negative = Tensor::of<float>("z", DType::F32, {-4}, four);
  EXPECT_NE(errorOf(writeSafetensors(path, {ok, ok})).find("'x' appears twice"),
            std::string::npos);
  EXPECT_NE(
      errorOf(writeSafetensors(path, {wrongSize}))
          .find("has 16 bytes of data but its shape and dtype F32 need 20"),
      std::string::npos);
  EXPECT_NE(errorOf(writeSafetensors(path, {reserved}))
                .find("reserved or empty name"),
            std::string::npos);
  EXPECT_NE(errorOf(writeSafetensors(path, {negative})).find("invalid shape"),
            std::string::npos);
  EXPECT_NE(
      errorOf(writeSafetensors(path, {ok}, {{"k", "\xff"}})).find("not UTF-8"),
      std::string::npos);
  EXPECT_TRUE(listDir(dir.path()).empty());
}

TEST(AtomicWriteTest, ReplacesTheWholeFile) {
  TempDir dir;
  std::string path = dir.path("f.txt");
  writeBytes(path, std::string(10000, 'o'));
  ASSERT_FALSE(
      llvm::errorToBool(writeFileAtomically(path, [](llvm::raw_ostream &os) {
        os << "new";
        return llvm::Error::success();
      })));
  EXPECT_EQ(readBytes(path), "new");
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"f.txt"});
}

TEST(AtomicWriteTest, FailedWriteLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  std::string path = dir.path("f.txt");
  writeBytes(path, "old");
  std::string message =
      errorOf(writeFileAtomically(path, [](llvm::raw_ostream &os) {
        os << std::string(1 << 20, 'x'); // Some of it reaches the disk.
        return llvm::createStringError("generator failed");
      }));
  EXPECT_EQ(message, "generator failed");
  EXPECT_EQ(readBytes(path), "old");
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"f.txt"});
}

TEST(AtomicWriteTest, TargetThatIsADirectoryIsRefused) {
  TempDir dir;
  std::string path = dir.path("sub");
  ASSERT_FALSE(llvm::sys::fs::create_directory(path));
  std::vector<float> v = {1};
  std::string message = errorOf(
      writeSafetensors(path, {Tensor::of<float>("v", DType::F32, {1}, v)}));
  EXPECT_NE(message.find("cannot replace '" + path + "'"), std::string::npos)
      << message;
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"sub"});
  EXPECT_TRUE(listDir(path).empty());
}

TEST(AtomicWriteTest, MissingDirectoryIsReported) {
  TempDir dir;
  std::string path = dir.path("no/such/dir/f.safetensors");
  std::string message = errorOf(writeSafetensors(path, {}));
  EXPECT_NE(message.find("cannot write '" + path + "'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos)
      << message;
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{});
}

TEST(AtomicWriteTest, UnwritableDirectoryIsReported) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "running as root, which may write anywhere";
  TempDir dir;
  std::string sub = dir.path("ro");
  ASSERT_FALSE(llvm::sys::fs::create_directory(sub));
  ASSERT_FALSE(llvm::sys::fs::setPermissions(
      sub, llvm::sys::fs::perms::owner_read | llvm::sys::fs::perms::owner_exe));
  std::string message = errorOf(writeSafetensors(sub + "/f.safetensors", {}));
  EXPECT_NE(message.find("Permission denied"), std::string::npos) << message;
  EXPECT_TRUE(listDir(sub).empty());
  llvm::sys::fs::setPermissions(sub, llvm::sys::fs::perms::owner_all);
}

} // namespace
