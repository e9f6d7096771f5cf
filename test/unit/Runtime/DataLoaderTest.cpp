//===- DataLoaderTest.cpp - Token files and batch sampler tests -----------===//
//
// The generator is checked against the published reference outputs, the
// sampler against the file contents, and resumption against an
// uninterrupted run, through the JSON a checkpoint stores.
//
//===----------------------------------------------------------------------===//

#include "IOTestUtil.h"

#include "octet/Runtime/DataLoader.h"

#include "llvm/Support/Endian.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

using namespace octet::runtime;
using octet::test::errorOf;
using octet::test::TempDir;
using octet::test::writeBytes;

namespace {

std::shared_ptr<const TokenFile> openOrDie(const std::string &path,
                                           uint64_t vocab) {
  llvm::Expected<std::shared_ptr<const TokenFile>> file =
      TokenFile::open(path, vocab);
  EXPECT_TRUE(bool(file)) << llvm::toString(file.takeError());
  return file ? *file : nullptr;
}

DataLoader loaderOrDie(std::shared_ptr<const TokenFile> file,
                       const DataLoaderOptions &options) {
  llvm::Expected<DataLoader> loader = DataLoader::create(file, options);
  if (!loader) {
    ADD_FAILURE() << llvm::toString(loader.takeError());
    std::abort();
  }
  return std::move(*loader);
}

/// A .u32 file of n tokens whose ids are their own position times 7 modulo
/// the vocabulary, so a window's contents identify its offset.
std::string writeU32Ramp(const TempDir &dir, uint64_t n, uint32_t vocab) {
  std::string bytes(4 * n, '\0');
  for (uint64_t i = 0; i < n; ++i)
    llvm::support::endian::write32le(&bytes[4 * i], uint32_t(i * 7 % vocab));
  std::string path = dir.path("ramp.u32");
  writeBytes(path, bytes);
  return path;
}

TEST(RandomTest, MatchesReferenceOutputs) {
  // splitmix64.c and xoshiro256starstar.c (Vigna) reference outputs.
  uint64_t state = 0;
  EXPECT_EQ(splitMix64(state), 0xe220a8397b1dcdafULL);
  Xoshiro256 x(Xoshiro256::State{1, 2, 3, 4});
  const uint64_t expected[] = {11520ULL,
                               0ULL,
                               1509978240ULL,
                               1215971899390074240ULL,
                               1216172134540287360ULL,
                               607988272756665600ULL};
  for (uint64_t want : expected)
    EXPECT_EQ(x.next(), want);
  // Seeding is four splitmix64 outputs.
  EXPECT_EQ(Xoshiro256(42).state(),
            (Xoshiro256::State{0xbdd732262feb6e95ULL, 0x28efe333b266f103ULL,
                               0x47526757130f9f52ULL, 0x581ce1ff0e4ae394ULL}));
}

TEST(RandomTest, UniformStaysInRangeAndIsUnbiased) {
  Xoshiro256 rng(3);
  std::vector<int> counts(10, 0);
  const int draws = 100000;
  for (int i = 0; i < draws; ++i) {
    uint64_t v = rng.uniform(10);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  // Each bucket expects 10000 with standard deviation ~95.
  for (int c : counts)
    EXPECT_NEAR(c, draws / 10, 500);
  // A bound just over 2^63 rejects about half of all raw draws: still in
  // range, and both halves reached.
  uint64_t big = (uint64_t(1) << 63) + 1;
  bool low = false, high = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = rng.uniform(big);
    ASSERT_LT(v, big);
    (v < big / 2 ? low : high) = true;
  }
  EXPECT_TRUE(low && high);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(rng.uniform(1), 0u);
}

TEST(TokenFileTest, FormatsFollowTheExtension) {
  TempDir dir;
  EXPECT_EQ(tokenFormatForPath("a/b.u16"), TokenFormat::U16);
  EXPECT_EQ(tokenFormatForPath("b.u32"), TokenFormat::U32);
  EXPECT_EQ(tokenFormatForPath("b.txt"), TokenFormat::Bytes);
  EXPECT_EQ(tokenFormatForPath("u16"), TokenFormat::Bytes);

  writeBytes(dir.path("t.u16"), std::string("\x01\x00\xff\xff\x34\x12", 6));
  auto u16 = openOrDie(dir.path("t.u16"), 65536);
  ASSERT_TRUE(u16);
  EXPECT_EQ(u16->size(), 3u);
  EXPECT_EQ((*u16)[0], 1u);
  EXPECT_EQ((*u16)[1], 65535u);
  EXPECT_EQ((*u16)[2], 0x1234u);

  writeBytes(dir.path("t.u32"), std::string("\x78\x56\x34\x12\x05\0\0\0", 8));
  auto u32 = openOrDie(dir.path("t.u32"), 1u << 31);
  ASSERT_TRUE(u32);
  EXPECT_EQ(u32->size(), 2u);
  EXPECT_EQ((*u32)[0], 0x12345678u);
  EXPECT_EQ((*u32)[1], 5u);

  writeBytes(dir.path("t.txt"), "Hi\xff");
  auto text = openOrDie(dir.path("t.txt"), 256);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->size(), 3u);
  EXPECT_EQ(text->format(), TokenFormat::Bytes);
  EXPECT_EQ((*text)[0], uint32_t('H'));
  EXPECT_EQ((*text)[2], 255u);
}

TEST(TokenFileTest, ErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  auto check = [&](const std::string &path, uint64_t vocab,
                   const std::string &fragment) {
    std::string message = errorOf(TokenFile::open(path, vocab));
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  };
  writeBytes(dir.path("odd.u16"), "abc");
  check(dir.path("odd.u16"), 1000,
        "size 3 bytes is not a multiple of 2 (uint16 tokens");
  writeBytes(dir.path("odd.u32"), "abcdef");
  check(dir.path("odd.u32"), 1000, "size 6 bytes is not a multiple of 4");

  std::string ids(8, '\0');
  llvm::support::endian::write16le(&ids[0], 10);
  llvm::support::endian::write16le(&ids[2], 999);
  llvm::support::endian::write16le(&ids[4], 1000);
  llvm::support::endian::write16le(&ids[6], 3);
  writeBytes(dir.path("big.u16"), ids);
  check(dir.path("big.u16"), 1000,
        "token id 1000 at token offset 2 (byte offset 4) is not below the "
        "vocabulary size 1000");
  openOrDie(dir.path("big.u16"), 1001);

  writeBytes(dir.path("big.u32"), std::string("\0\0\0\0\0\0\0\x80", 8));
  check(dir.path("big.u32"), 1u << 31,
        "token id 2147483648 at token offset 1 (byte offset 4)");

  writeBytes(dir.path("text.txt"), "abc");
  check(dir.path("text.txt"), 98, "token id 98 at token offset 1");

  writeBytes(dir.path("empty.txt"), "");
  check(dir.path("empty.txt"), 256, "contains no tokens");
  check(dir.path("missing.u16"), 256,
        "cannot read token file: No such file or directory");
  check(dir.path(""), 256, "cannot read token file");
  check(dir.path("text.txt"), 0, "vocabulary size 0 is outside [1, 2^31]");
}

TEST(DataLoaderTest, BatchesAreWindowsAndShiftedLabels) {
  TempDir dir;
  const uint32_t vocab = 1000;
  auto file = openOrDie(writeU32Ramp(dir, 5000, vocab), vocab);
  DataLoader loader = loaderOrDie(file, {4, 16, 9, {}});
  for (int step = 0; step < 50; ++step) {
    Batch b = loader.next();
    ASSERT_EQ(b.batchSize, 4u);
    ASSERT_EQ(b.seqLen, 16u);
    ASSERT_EQ(b.inputs.size(), 64u);
    ASSERT_EQ(b.labels.size(), 64u);
    for (uint64_t row = 0; row < 4; ++row) {
      uint64_t o = b.offsets[row];
      ASSERT_LE(o + 17, file->size());
      for (uint64_t i = 0; i < 16; ++i) {
        EXPECT_EQ(uint32_t(b.inputs[row * 16 + i]), (*file)[o + i]);
        EXPECT_EQ(uint32_t(b.labels[row * 16 + i]), (*file)[o + i + 1]);
      }
    }
  }
  EXPECT_EQ(loader.state().batchesDrawn, 50u);
}

TEST(DataLoaderTest, SameSeedSameBatchesOtherSeedOthers) {
  TempDir dir;
  auto file = openOrDie(writeU32Ramp(dir, 100000, 50000), 50000);
  DataLoader a = loaderOrDie(file, {8, 32, 1234, {}});
  DataLoader b = loaderOrDie(file, {8, 32, 1234, {}});
  DataLoader c = loaderOrDie(file, {8, 32, 1235, {}});
  int differ = 0;
  for (int i = 0; i < 20; ++i) {
    Batch x = a.next(), y = b.next(), z = c.next();
    EXPECT_EQ(x.offsets, y.offsets);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.labels, y.labels);
    differ += x.offsets != z.offsets;
  }
  EXPECT_EQ(differ, 20);
  // Pinned (computed independently in Python from the reference
  // algorithms): the sampler is part of the checkpoint format, so the offsets a
  // seed gives must not change between versions. Windows start in
  // [0, 100000 - 32).
  DataLoader pinned = loaderOrDie(file, {4, 32, 42, {}});
  std::vector<uint64_t> first = pinned.next().offsets;
  Xoshiro256 rng(42);
  std::vector<uint64_t> byHand;
  for (int i = 0; i < 4; ++i)
    byHand.push_back(rng.uniform(100000 - 32));
  EXPECT_EQ(first, byHand);
  EXPECT_EQ(first, (std::vector<uint64_t>{8383, 37885, 67982, 92439}));
}

TEST(DataLoaderTest, ResumedLoaderSeesTheUninterruptedBatches) {
  TempDir dir;
  auto file = openOrDie(writeU32Ramp(dir, 20000, 4096), 4096);
  DataLoaderOptions options{6, 64, 77, {100, 19000}};
  DataLoader straight = loaderOrDie(file, options);
  std::vector<Batch> expected;
  for (int i = 0; i < 12; ++i)
    expected.push_back(straight.next());

  DataLoader first = loaderOrDie(file, options);
  for (int i = 0; i < 5; ++i)
    first.next();
  // Through JSON text, as a checkpoint's meta.json carries it.
  std::string text;
  llvm::raw_string_ostream(text) << toJSON(first.state());
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(text);
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  DataLoaderState saved;
  llvm::json::Path::Root root;
  ASSERT_TRUE(fromJSON(*parsed, saved, root))
      << llvm::toString(root.getError());
  EXPECT_EQ(saved, first.state());
  EXPECT_EQ(saved.batchesDrawn, 5u);

  DataLoader resumed = loaderOrDie(file, options);
  ASSERT_FALSE(llvm::errorToBool(resumed.restore(saved)));
  for (int i = 5; i < 12; ++i) {
    Batch b = resumed.next();
    EXPECT_EQ(b.offsets, expected[i].offsets) << i;
    EXPECT_EQ(b.inputs, expected[i].inputs) << i;
    EXPECT_EQ(b.labels, expected[i].labels) << i;
  }
  EXPECT_EQ(resumed.state(), straight.state());
}

TEST(DataLoaderTest, RestoreRefusesAnotherConfiguration) {
  TempDir dir;
  auto file = openOrDie(writeU32Ramp(dir, 1000, 100), 100);
  DataLoader a = loaderOrDie(file, {2, 8, 5, {}});
  DataLoader b = loaderOrDie(file, {2, 16, 6, {}});
  std::string message = errorOf(b.restore(a.state()));
  EXPECT_NE(message.find("cannot resume the data loader: it was saved with "
                         "seed 5 (now 6), sequence length 8 (now 16)"),
            std::string::npos)
      << message;
  DataLoaderState zero = a.state();
  zero.rng = {};
  EXPECT_NE(errorOf(a.restore(zero)).find("all zeros"), std::string::npos);
}

TEST(DataLoaderTest, StateJsonErrorsSayWhere) {
  DataLoaderState state;
  state.seed = 1;
  state.rng = {1, 2, 3, 4};
  llvm::json::Value good = toJSON(state);
  auto failure = [](llvm::json::Value v) {
    DataLoaderState s;
    llvm::json::Path::Root root("data_loader");
    EXPECT_FALSE(fromJSON(v, s, root));
    return llvm::toString(root.getError());
  };
  llvm::json::Value badHex = good;
  (*badHex.getAsObject()->getArray("rng"))[2] = "0x12";
  EXPECT_NE(failure(badHex).find("expected \"0x\" and 16 hex digits"),
            std::string::npos)
      << failure(badHex);
  llvm::json::Value noSeed = good;
  noSeed.getAsObject()->erase("seed");
  EXPECT_NE(failure(noSeed).find("missing"), std::string::npos);
  llvm::json::Value negative = good;
  (*negative.getAsObject())["batch_size"] = -1;
  EXPECT_NE(failure(negative).find("expected a non-negative integer"),
            std::string::npos);
  llvm::json::Value otherGenerator = good;
  (*otherGenerator.getAsObject())["generator"] = "mt19937";
  EXPECT_NE(failure(otherGenerator).find("xoshiro256**"), std::string::npos);
}

TEST(DataLoaderTest, ValidationSplitHoldsOutTheEnd) {
  TempDir dir;
  auto file = openOrDie(writeU32Ramp(dir, 10000, 10000), 10000);
  llvm::Expected<TokenSplit> split = splitValidation(*file, 0.1, 63);
  ASSERT_TRUE(bool(split)) << llvm::toString(split.takeError());
  EXPECT_EQ(split->train, (TokenRange{0, 9000}));
  EXPECT_EQ(split->validation, (TokenRange{9000, 10000}));

  // Training windows never read a validation token and vice versa.
  DataLoader train = loaderOrDie(file, {8, 63, 1, split->train});
  DataLoader val = loaderOrDie(file, {8, 63, 2, split->validation});
  bool nearEnd = false;
  for (int i = 0; i < 200; ++i) {
    for (uint64_t o : train.next().offsets) {
      ASSERT_LE(o + 64, 9000u);
      nearEnd |= o + 64 > 8900;
    }
    for (uint64_t o : val.next().offsets) {
      ASSERT_GE(o, 9000u);
      ASSERT_LE(o + 64, 10000u);
    }
  }
  EXPECT_TRUE(nearEnd);
  // The last possible window is reachable: one start only.
  DataLoader tight = loaderOrDie(file, {3, 999, 5, split->validation});
  EXPECT_EQ(tight.next().offsets, (std::vector<uint64_t>{9000, 9000, 9000}));

  llvm::Expected<TokenSplit> none = splitValidation(*file, 0.0, 63);
  ASSERT_TRUE(bool(none));
  EXPECT_EQ(none->train, (TokenRange{0, 10000}));
  EXPECT_EQ(none->validation.size(), 0u);

  auto fails = [&](double fraction, uint64_t seq, const std::string &what) {
    std::string message = errorOf(splitValidation(*file, fraction, seq));
    EXPECT_EQ(message.rfind(file->path() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  fails(1.0, 8, "validation fraction 1 is outside [0, 1)");
  fails(-0.5, 8, "is outside [0, 1)");
  fails(0.001, 63, "holds out 10 tokens, fewer than one window of 64");
  fails(0.999, 63, "the training range has 10 tokens, fewer than one window");
}

TEST(DataLoaderTest, OptionErrorsNameTheFile) {
  TempDir dir;
  auto file = openOrDie(writeU32Ramp(dir, 100, 100), 100);
  auto fails = [&](const DataLoaderOptions &o, const std::string &what) {
    std::string message = errorOf(DataLoader::create(file, o));
    EXPECT_EQ(message.rfind(file->path() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  fails({0, 8, 0, {}}, "batch size (0) and sequence length (8) must be "
                       "positive");
  fails({1, 0, 0, {}}, "must be positive");
  fails({1, 8, 0, {50, 120}}, "token range [50, 120) is not inside the file's "
                              "100 tokens");
  fails({1, 8, 0, {60, 50}}, "is not inside");
  fails({1, 100, 0, {}}, "token range [0, 100) has 100 tokens, fewer than one "
                         "window of 101");
  fails({1, 8, 0, {95, 95}}, "has 0 tokens");
  // Exactly one window fits.
  DataLoader one = loaderOrDie(file, {2, 99, 0, {}});
  EXPECT_EQ(one.next().offsets, (std::vector<uint64_t>{0, 0}));
}

} // namespace
