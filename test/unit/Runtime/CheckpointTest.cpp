//===- CheckpointTest.cpp - Checkpoint save, load, prune and crash tests --===//
//
// Besides the round trip and every load error, this kills a process in the
// middle of writing a tens-of-megabytes checkpoint, at several points, and
// checks that the previous checkpoint is still the one loaded, bit for bit.
//
//===----------------------------------------------------------------------===//

#include "IOTestUtil.h"

#include "octet/Runtime/Checkpoint.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <chrono>
#include <csignal>
#include <cstring>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace octet::runtime;
using octet::test::errorOf;
using octet::test::listDir;
using octet::test::readBytes;
using octet::test::TempDir;
using octet::test::writeBytes;

namespace {

/// Master weights and AdamW moments of a small model, filled with random
/// bits (so any mix-up or partial write shows), plus the caller's extras.
struct Model {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> weights;
  std::vector<std::vector<uint16_t>> expAvg, expAvgSq;
  std::vector<int64_t> optimizerStep;
  CheckpointMeta meta;

  Model(uint64_t seed, int64_t scale) {
    Xoshiro256 rng(seed);
    names = {"embed.weight", "layers.0.attn.wq", "layers.0.norm.gamma",
             "head.weight"};
    shapes = {{scale, 64}, {64, scale}, {64}, {scale / 2, 64}};
    for (const std::vector<int64_t> &shape : shapes) {
      int64_t n = 1;
      for (int64_t d : shape)
        n *= d;
      std::vector<float> w(n);
      std::vector<uint16_t> m(n), v(n);
      for (int64_t i = 0; i < n; ++i) {
        uint64_t r = rng.next();
        uint32_t bits = uint32_t(r);
        std::memcpy(&w[i], &bits, 4);
        m[i] = uint16_t(r >> 32);
        v[i] = uint16_t(r >> 48);
      }
      weights.push_back(std::move(w));
      expAvg.push_back(std::move(m));
      expAvgSq.push_back(std::move(v));
    }
    optimizerStep = {int64_t(seed)};
    meta.seed = seed;
    meta.configDigest = "sha256:" + std::to_string(seed);
    meta.dataLoader.seed = seed;
    meta.dataLoader.rng = Xoshiro256(seed + 1).state();
    meta.dataLoader.batchesDrawn = seed * 10;
    meta.dataLoader.batchSize = 8;
    meta.dataLoader.seqLen = 128;
    meta.dataLoader.range = {0, 1000000};
    meta.dataLoader.fileTokens = 1100000;
  }

  std::vector<Tensor> weightTensors() const {
    std::vector<Tensor> out;
    for (size_t i = 0; i < names.size(); ++i)
      out.push_back(
          Tensor::of<float>(names[i], DType::F32, shapes[i], weights[i]));
    return out;
  }
  std::vector<Tensor> optimizerTensors() const {
    std::vector<Tensor> out;
    for (size_t i = 0; i < names.size(); ++i) {
      out.push_back(Tensor::of<uint16_t>(names[i] + ".exp_avg", DType::BF16,
                                         shapes[i], expAvg[i]));
      out.push_back(Tensor::of<uint16_t>(names[i] + ".exp_avg_sq", DType::BF16,
                                         shapes[i], expAvgSq[i]));
    }
    out.push_back(
        Tensor::of<int64_t>("adamw.step", DType::I64, {}, optimizerStep));
    return out;
  }

  llvm::Error save(llvm::StringRef dir, int64_t step,
                   CheckpointOptions options = {}) const {
    return saveCheckpoint(dir, step, weightTensors(), optimizerTensors(), meta,
                          options);
  }

  /// Bit-exact comparison with a loaded checkpoint.
  void expectEqual(const Checkpoint &c) const {
    ASSERT_EQ(c.model.tensors().size(), names.size());
    ASSERT_EQ(c.optimizer.tensors().size(), 2 * names.size() + 1);
    for (size_t i = 0; i < names.size(); ++i) {
      const Tensor *w = c.model.find(names[i]);
      ASSERT_TRUE(w) << names[i];
      EXPECT_EQ(w->shape, shapes[i]);
      ASSERT_EQ(w->data.size(), weights[i].size() * 4);
      EXPECT_EQ(std::memcmp(w->data.data(), weights[i].data(), w->data.size()),
                0)
          << names[i];
      const Tensor *m = c.optimizer.find(names[i] + ".exp_avg");
      const Tensor *v = c.optimizer.find(names[i] + ".exp_avg_sq");
      ASSERT_TRUE(m && v) << names[i];
      EXPECT_EQ(m->values<uint16_t>(), expAvg[i]) << names[i];
      EXPECT_EQ(v->values<uint16_t>(), expAvgSq[i]) << names[i];
    }
    EXPECT_EQ(c.optimizer.find("adamw.step")->values<int64_t>(), optimizerStep);
    EXPECT_EQ(c.meta.seed, meta.seed);
    EXPECT_EQ(c.meta.configDigest, meta.configDigest);
    EXPECT_EQ(c.meta.dataLoader, meta.dataLoader);
  }
};

Checkpoint loadOrDie(llvm::StringRef dir) {
  llvm::Expected<Checkpoint> c = loadLatestCheckpoint(dir);
  if (!c) {
    ADD_FAILURE() << llvm::toString(c.takeError());
    return Checkpoint();
  }
  return std::move(*c);
}

TEST(CheckpointTest, SavesTheDocumentedLayoutAndLoadsItBack) {
  TempDir dir;
  std::string ckpt = dir.path("run");
  EXPECT_FALSE(hasCheckpoint(ckpt));
  Model model(5, 96);
  ASSERT_FALSE(llvm::errorToBool(model.save(ckpt, 300)));
  EXPECT_TRUE(hasCheckpoint(ckpt));
  EXPECT_EQ(listDir(ckpt), (std::vector<std::string>{"latest", "step-300"}));
  EXPECT_EQ(listDir(ckpt + "/step-300"),
            (std::vector<std::string>{"meta.json", "model.safetensors",
                                      "optimizer.safetensors"}));
  EXPECT_EQ(readBytes(ckpt + "/latest"), "step-300\n");

  llvm::Expected<llvm::json::Value> meta =
      llvm::json::parse(readBytes(ckpt + "/step-300/meta.json"));
  ASSERT_TRUE(bool(meta)) << llvm::toString(meta.takeError());
  const llvm::json::Object &o = *meta->getAsObject();
  EXPECT_EQ(o.getString("format"), llvm::StringRef("octet-checkpoint"));
  EXPECT_EQ(o.getInteger("format_version"), 1);
  EXPECT_EQ(o.getInteger("step"), 300);
  EXPECT_EQ(o.getInteger("seed"), 5);
  EXPECT_EQ(o.getString("config_digest"), llvm::StringRef("sha256:5"));
  EXPECT_TRUE(o.getObject("data_loader"));

  Checkpoint c = loadOrDie(ckpt);
  EXPECT_EQ(c.step, 300);
  EXPECT_EQ(c.formatVersion, 1);
  EXPECT_EQ(c.directory, ckpt + "/step-300");
  model.expectEqual(c);

  // The files are plain safetensors: F32 weights, BF16 moments.
  llvm::Expected<SafetensorsFile> weights =
      readSafetensors(ckpt + "/step-300/model.safetensors");
  ASSERT_TRUE(bool(weights));
  EXPECT_EQ(weights->find("embed.weight")->dtype, DType::F32);
  EXPECT_EQ(c.optimizer.find("head.weight.exp_avg_sq")->dtype, DType::BF16);
}

TEST(CheckpointTest, LatestFollowsTheNewestSaveAndOlderStepsStayLoadable) {
  TempDir dir;
  Model a(1, 32), b(2, 32);
  ASSERT_FALSE(llvm::errorToBool(a.save(dir.path(), 10)));
  ASSERT_FALSE(llvm::errorToBool(b.save(dir.path(), 20)));
  Checkpoint latest = loadOrDie(dir.path());
  EXPECT_EQ(latest.step, 20);
  b.expectEqual(latest);
  llvm::Expected<Checkpoint> older = loadCheckpoint(dir.path("step-10"));
  ASSERT_TRUE(bool(older)) << llvm::toString(older.takeError());
  a.expectEqual(*older);
}

TEST(CheckpointTest, SavingTheLatestStepAgainReplacesItAtomically) {
  TempDir dir;
  Model a(1, 32), b(2, 32);
  ASSERT_FALSE(llvm::errorToBool(a.save(dir.path(), 7)));
  ASSERT_FALSE(llvm::errorToBool(b.save(dir.path(), 7)));
  Checkpoint c = loadOrDie(dir.path());
  EXPECT_EQ(c.step, 7);
  b.expectEqual(c);
  EXPECT_EQ(listDir(dir.path()),
            (std::vector<std::string>{"latest", "step-7"}));
}

TEST(CheckpointTest, ResavingAnUncommittedStepReplacesIt) {
  // A run resumed from step 10 after a crash that left a complete step-20
  // which `latest` never named: saving step 20 again replaces it.
  TempDir dir;
  Model a(1, 32), stale(2, 32), fresh(3, 32);
  ASSERT_FALSE(llvm::errorToBool(a.save(dir.path(), 10)));
  ASSERT_FALSE(llvm::errorToBool(stale.save(dir.path(), 20)));
  writeBytes(dir.path("latest"), "step-10\n");
  a.expectEqual(loadOrDie(dir.path()));
  ASSERT_FALSE(llvm::errorToBool(fresh.save(dir.path(), 20)));
  fresh.expectEqual(loadOrDie(dir.path()));
}

TEST(CheckpointTest, PruneKeepsTheNewestAndRemovesDebris) {
  TempDir dir;
  Model m(1, 16);
  for (int64_t step = 1; step <= 5; ++step)
    ASSERT_FALSE(llvm::errorToBool(m.save(dir.path(), step * 100, {2})));
  EXPECT_EQ(listDir(dir.path()),
            (std::vector<std::string>{"latest", "step-400", "step-500"}));

  // Debris of interrupted saves, an incomplete step, a step newer than
  // `latest` (complete but never committed) and an unrelated file.
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.path("step-600.tmp-99")));
  writeBytes(dir.path("step-600.tmp-99/model.safetensors"), "partial");
  writeBytes(dir.path("latest.tmp-98"), "step-6");
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.path("step-50")));
  ASSERT_FALSE(llvm::errorToBool(m.save(dir.path("elsewhere"), 700)));
  ASSERT_FALSE(llvm::sys::fs::rename(dir.path("elsewhere/step-700"),
                                     dir.path("step-700")));
  llvm::sys::fs::remove_directories(dir.path("elsewhere"));
  writeBytes(dir.path("notes.txt"), "mine");

  ASSERT_FALSE(llvm::errorToBool(pruneCheckpoints(dir.path(), 1)));
  EXPECT_EQ(listDir(dir.path()),
            (std::vector<std::string>{"latest", "notes.txt", "step-500",
                                      "step-700"}));
  EXPECT_EQ(loadOrDie(dir.path()).step, 500);
  // keepLast 0 keeps every complete step.
  ASSERT_FALSE(llvm::errorToBool(m.save(dir.path(), 800)));
  ASSERT_FALSE(llvm::errorToBool(pruneCheckpoints(dir.path(), 0)));
  EXPECT_EQ(listDir(dir.path()),
            (std::vector<std::string>{"latest", "notes.txt", "step-500",
                                      "step-700", "step-800"}));
}

TEST(CheckpointTest, SaveRejectsInconsistentTensorsAndWritesNothing) {
  TempDir dir;
  std::vector<float> w4 = {1, 2, 3, 4};
  std::vector<uint16_t> m4 = {1, 2, 3, 4}, m2 = {1, 2};
  std::vector<float> f4 = {1, 2, 3, 4};
  Tensor w = Tensor::of<float>("w", DType::F32, {4}, w4);
  Tensor wBF16 = Tensor::of<uint16_t>("w", DType::BF16, {4}, m4);
  Tensor m = Tensor::of<uint16_t>("w.exp_avg", DType::BF16, {4}, m4);
  Tensor v = Tensor::of<uint16_t>("w.exp_avg_sq", DType::BF16, {4}, m4);
  Tensor vF32 = Tensor::of<float>("w.exp_avg_sq", DType::F32, {4}, f4);
  Tensor vShape = Tensor::of<uint16_t>("w.exp_avg_sq", DType::BF16, {2}, m2);
  Tensor orphan = Tensor::of<uint16_t>("u.exp_avg", DType::BF16, {4}, m4);
  CheckpointMeta meta;
  auto fails = [&](std::vector<Tensor> weights, std::vector<Tensor> opt,
                   const std::string &what, int64_t step = 1) {
    std::string message =
        errorOf(saveCheckpoint(dir.path("c"), step, weights, opt, meta));
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  fails({wBF16}, {}, "weight 'w' is BF16; master weights must be F32");
  fails({w}, {m, vF32},
        "optimizer tensor 'w.exp_avg_sq' is F32; AdamW "
        "moments must be BF16");
  fails({w}, {m, vShape}, "'w.exp_avg_sq' is not shaped like its weight");
  fails({w}, {m}, "weight 'w' has one AdamW moment");
  fails({w}, {m, v, orphan}, "optimizer tensor 'u.exp_avg' has no weight 'u'");
  fails({w}, {m, v}, "negative step -1", -1);
  EXPECT_TRUE(listDir(dir.path()).empty());
  // Frozen weights have no moments.
  ASSERT_FALSE(
      llvm::errorToBool(saveCheckpoint(dir.path("c"), 1, {w}, {}, meta)));
}

TEST(CheckpointTest, LoadErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  std::string d = dir.path();
  auto fails = [&](const std::string &what) {
    std::string message = errorOf(loadLatestCheckpoint(d));
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  fails(d + ": no checkpoint to load (no 'latest' file");
  Model m(1, 16);
  ASSERT_FALSE(llvm::errorToBool(m.save(d, 3)));

  writeBytes(dir.path("latest"), "../etc\n");
  fails(dir.path("latest") + ": expected a step directory name such as "
                             "'step-100', found '../etc'");
  writeBytes(dir.path("latest"), "step-9\n");
  fails(dir.path("latest") + ": names 'step-9', which does not exist");
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.path("step-9")));
  fails(dir.path("step-9") + ": incomplete checkpoint (no meta.json)");

  writeBytes(dir.path("latest"), "step-3");
  std::string metaPath = dir.path("step-3/meta.json");
  std::string meta = readBytes(metaPath);
  auto withMeta = [&](const std::string &from, const std::string &to,
                      const std::string &what) {
    std::string edited = meta;
    size_t at = edited.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    edited.replace(at, from.size(), to);
    writeBytes(metaPath, edited);
    fails(what);
    writeBytes(metaPath, meta);
  };
  withMeta("\"format_version\": 1", "\"format_version\": 2",
           metaPath + ": format version 2 is newer than this build reads (1)");
  withMeta("\"step\": 3", "\"step\": 4",
           metaPath + ": records step 4 but its directory is step 3");
  withMeta("\"config_digest\"", "\"digest\"",
           "'config_digest' must be a string");
  withMeta("\"batch_size\"", "\"batch\"",
           "invalid 'data_loader': missing at data_loader.batch_size");
  withMeta("{", "[", metaPath + ": invalid JSON");
  withMeta("octet-checkpoint", "other", "'format' is not \"octet-checkpoint\"");

  // A damaged tensor file is named.
  std::string modelPath = dir.path("step-3/model.safetensors");
  std::string model = readBytes(modelPath);
  writeBytes(modelPath, model.substr(0, model.size() - 1));
  fails(modelPath + ": tensor");
  writeBytes(modelPath, model);
  m.expectEqual(loadOrDie(d));
  writeBytes(dir.path("step-3/optimizer.safetensors"), "");
  fails(dir.path("step-3/optimizer.safetensors") + ": truncated file");
}

/// Saves a checkpoint of ~32 MB in a child process and SIGKILLs it after a
/// delay, at spread points of the write; after each kill, the newest
/// checkpoint that completed must load bit-exactly, and `latest` must name
/// a complete step.
TEST(CheckpointKillTest, KillDuringSaveLeavesThePreviousCheckpointIntact) {
  TempDir dir;
  const std::string ckpt = dir.path("run");
  // 4 x ~1M parameters: 16 MB of FP32 weights + 16 MB of BF16 moments.
  const int64_t scale = 1 << 16;
  Model committed(1, scale);
  int64_t committedStep = 1;
  ASSERT_FALSE(llvm::errorToBool(committed.save(ckpt, committedStep)));

  /// Forks a child that saves `model` as `step`, kills it after `delay`
  /// seconds (never, if negative), and says whether it finished first.
  auto saveInChild = [&](const Model &model, int64_t step, double delay) {
    pid_t pid = ::fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      // _exit, so that the child never runs the test harness's exit code.
      llvm::Error err = model.save(ckpt, step);
      ::_exit(llvm::errorToBool(std::move(err)) ? 1 : 0);
    }
    if (delay >= 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    bool finished = WIFEXITED(status);
    if (finished) {
      EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's save failed";
    }
    return finished;
  };

  // Uninterrupted saves in a child time the whole write; the faster of two,
  // as fsync times vary.
  double saveSeconds = 1e9;
  for (int64_t step : {2, 3}) {
    Model warmUp(step, scale);
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(saveInChild(warmUp, step, -1));
    saveSeconds = std::min(
        saveSeconds,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    Checkpoint c = loadOrDie(ckpt);
    ASSERT_EQ(c.step, step);
    warmUp.expectEqual(c);
    committed = std::move(warmUp);
    committedStep = step;
  }

  // Kill points as fractions of a full save, from before the first file is
  // complete to around the commit; jitter moves them from run to run.
  const double fractions[] = {0.02, 0.08, 0.15, 0.25, 0.35, 0.5, 0.7, 1.0};
  Xoshiro256 jitter(
      std::chrono::steady_clock::now().time_since_epoch().count());
  int killedBeforeCommit = 0, committedFirst = 0, interruptedWrites = 0;
  for (size_t i = 0; i < std::size(fractions); ++i) {
    const int64_t step = committedStep + 1;
    Model next(100 + i, scale);
    double delay =
        saveSeconds * fractions[i] * (0.8 + 0.4 * (jitter.uniform(1000) / 1e3));
    saveInChild(next, step, delay);
    for (const std::string &name : listDir(ckpt))
      if (name.find(".tmp-") != std::string::npos) {
        ++interruptedWrites;
        break;
      }

    Checkpoint c = loadOrDie(ckpt);
    if (c.step == step) {
      // The kill came after the commit point, or the child finished.
      next.expectEqual(c);
      committed = std::move(next);
      committedStep = step;
      ++committedFirst;
    } else {
      ASSERT_EQ(c.step, committedStep) << "latest names an unexpected step";
      committed.expectEqual(c);
      ++killedBeforeCommit;
    }
    EXPECT_EQ(readBytes(ckpt + "/latest"),
              "step-" + std::to_string(c.step) + "\n");
  }
  std::cout << "[ INFO     ] a save took " << saveSeconds << " s; of "
            << std::size(fractions) << " kills, " << killedBeforeCommit
            << " came before the commit (" << interruptedWrites
            << " left a partial write), " << committedFirst << " after\n";
  EXPECT_GE(killedBeforeCommit, 3);
  EXPECT_GE(interruptedWrites, 2);

  // The next save clears the debris the kills left, and prunes.
  Model last(999, 16);
  ASSERT_FALSE(llvm::errorToBool(last.save(ckpt, committedStep + 1, {1})));
  EXPECT_EQ(listDir(ckpt),
            (std::vector<std::string>{
                "latest", "step-" + std::to_string(committedStep + 1)}));
  last.expectEqual(loadOrDie(ckpt));
}

} // namespace
