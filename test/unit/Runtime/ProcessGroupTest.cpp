//===- ProcessGroupTest.cpp - Ranks connected by Unix sockets -------------===//

#include "octet/Runtime/ProcessGroup.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace octet::runtime;

namespace {

/// A fresh rendezvous directory, removed at the end.
struct Rendezvous {
  llvm::SmallString<128> dir;
  Rendezvous() {
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("octet-pg", dir));
  }
  ~Rendezvous() { llvm::sys::fs::remove_directories(dir); }
};

/// What one rank received, for the test to wait on.
struct Inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::tuple<int64_t, uint32_t, std::vector<uint8_t>>> messages;
  std::vector<std::pair<int64_t, std::string>> lost;
  template <typename Ready> bool waitFor(Ready ready) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(20), ready);
  }
  void listen(ProcessGroup &g) {
    g.listen(
        [this](int64_t peer, uint32_t kind, std::vector<uint8_t> bytes) {
          std::lock_guard<std::mutex> lock(mutex);
          messages.push_back({peer, kind, std::move(bytes)});
          changed.notify_all();
        },
        [this](int64_t peer, std::string why) {
          std::lock_guard<std::mutex> lock(mutex);
          lost.push_back({peer, why});
          changed.notify_all();
        });
  }
};

/// Connects `size` ranks, each on its own thread (connect blocks until
/// the others come).
std::vector<std::unique_ptr<ProcessGroup>> connectAll(const std::string &dir,
                                                      int64_t size) {
  std::vector<std::unique_ptr<ProcessGroup>> groups(size);
  std::vector<std::string> errors(size);
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      ProcessGroup::Options o;
      o.rank = r;
      o.size = size;
      o.rendezvous = dir;
      o.timeout = std::chrono::seconds(20);
      auto g = ProcessGroup::connect(o);
      if (g)
        groups[r] = std::move(*g);
      else
        errors[r] = llvm::toString(g.takeError());
    });
  for (std::thread &t : threads)
    t.join();
  for (int64_t r = 0; r < size; ++r)
    EXPECT_TRUE(errors[r].empty()) << "rank " << r << ": " << errors[r];
  return groups;
}

/// A free TCP port on the loopback interface (free when asked).
uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
  socklen_t n = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// The two rendezvous: a directory (Unix sockets) and TCP on the loopback.
class Transports : public ::testing::TestWithParam<bool> {
protected:
  std::string where() {
    return GetParam() ? "tcp://127.0.0.1:" + std::to_string(freePort())
                      : rv.dir.str().str();
  }
  Rendezvous rv;
};

// Every pair of three ranks exchanges random payloads of many sizes (empty
// and beyond a socket buffer too); each arrives whole, from the right
// rank, in the order it was sent; and the goodbyes of close() are not
// taken for lost ranks.
TEST_P(Transports, FramesArriveWholeAndInOrder) {
  auto groups = connectAll(where(), 3);
  ASSERT_TRUE(groups[0] && groups[1] && groups[2]);
  std::vector<Inbox> inboxes(3);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(groups[r]->getRank(), r);
    EXPECT_EQ(groups[r]->getSize(), 3);
    inboxes[r].listen(*groups[r]);
  }
  const std::vector<size_t> sizes = {0, 1, 7, 4096, 1 << 20, 3 << 20};
  std::map<std::pair<int, int>, std::vector<std::vector<uint8_t>>> sent;
  std::vector<std::thread> senders;
  for (int from = 0; from < 3; ++from)
    for (int to = 0; to < 3; ++to) {
      if (from == to)
        continue;
      auto &list = sent[{from, to}];
      std::mt19937 rng(unsigned(from * 3 + to));
      for (size_t n : sizes) {
        std::vector<uint8_t> bytes(n);
        for (uint8_t &b : bytes)
          b = uint8_t(rng());
        list.push_back(std::move(bytes));
      }
      senders.emplace_back([&, from, to] {
        uint32_t kind = 1;
        for (const auto &bytes : sent[{from, to}])
          EXPECT_FALSE(
              llvm::errorToBool(groups[from]->send(to, kind++, bytes)));
      });
    }
  for (std::thread &t : senders)
    t.join();
  for (int r = 0; r < 3; ++r) {
    Inbox &in = inboxes[r];
    ASSERT_TRUE(
        in.waitFor([&] { return in.messages.size() == 2 * sizes.size(); }));
    std::map<int64_t, uint32_t> next;
    for (auto &[peer, kind, bytes] : in.messages) {
      uint32_t k = ++next[peer];
      EXPECT_EQ(kind, k) << "from rank " << peer;
      const auto &expected = sent[std::make_pair(int(peer), r)][k - 1];
      EXPECT_EQ(bytes, expected) << "from rank " << peer;
    }
  }
  // Goodbyes: each closes (from its own thread, as the ranks would).
  std::vector<std::thread> closers;
  for (auto &g : groups)
    closers.emplace_back([&g] { g->close(); });
  for (std::thread &t : closers)
    t.join();
  for (Inbox &in : inboxes)
    EXPECT_TRUE(in.lost.empty()) << in.lost.front().second;
  // Nothing is left in the rendezvous directory.
  std::error_code ec;
  EXPECT_EQ(llvm::sys::fs::directory_iterator(rv.dir, ec),
            llvm::sys::fs::directory_iterator());
}

// A frame larger than a socket buffer reports its progress while it
// arrives (after each further MiB, but not at its end), before it is
// handed over whole.
TEST_P(Transports, ALargeFrameReportsProgress) {
  auto groups = connectAll(where(), 2);
  ASSERT_TRUE(groups[0] && groups[1]);
  Inbox in;
  std::vector<size_t> progressBefore; // progress calls when each frame came
  size_t progress = 0;
  groups[1]->listen(
      [&](int64_t, uint32_t, std::vector<uint8_t> bytes) {
        std::lock_guard<std::mutex> lock(in.mutex);
        progressBefore.push_back(progress);
        in.messages.push_back({0, 1, std::move(bytes)});
        in.changed.notify_all();
      },
      [&](int64_t, std::string) {},
      [&](int64_t peer) {
        std::lock_guard<std::mutex> lock(in.mutex);
        EXPECT_EQ(peer, 0);
        ++progress;
      });
  groups[0]->listen([](int64_t, uint32_t, std::vector<uint8_t>) {},
                    [](int64_t, std::string) {});
  std::vector<uint8_t> small(1000, 7), large((8 << 20) + 5);
  std::mt19937 rng(3);
  for (uint8_t &b : large)
    b = uint8_t(rng());
  EXPECT_FALSE(llvm::errorToBool(groups[0]->send(1, 1, small)));
  EXPECT_FALSE(llvm::errorToBool(groups[0]->send(1, 1, large)));
  ASSERT_TRUE(in.waitFor([&] { return in.messages.size() == 2; }));
  EXPECT_EQ(progressBefore[0], 0u);
  // However the reads fall: at least one call (the socket takes less than
  // 8 MiB at once), and at most one per MiB before the last byte.
  EXPECT_GE(progressBefore[1], 1u);
  EXPECT_LE(progressBefore[1], 8u);
  EXPECT_EQ(std::get<2>(in.messages[1]), large);
  std::vector<std::thread> closers;
  for (auto &g : groups)
    closers.emplace_back([&g] { g->close(); });
  for (std::thread &t : closers)
    t.join();
}

INSTANTIATE_TEST_SUITE_P(ProcessGroupTest, Transports,
                         ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &info) {
                           return info.param ? "Tcp" : "UnixSockets";
                         });

TEST(ProcessGroupTest, TcpRendezvousIsChecked) {
  struct Restore {
    ~Restore() {
      unsetenv("OCTET_RANK");
      unsetenv("OCTET_WORLD_SIZE");
      unsetenv("OCTET_RENDEZVOUS");
    }
  } restore;
  setenv("OCTET_RANK", "0", 1);
  setenv("OCTET_WORLD_SIZE", "2", 1);
  for (const char *bad :
       {"tcp://127.0.0.1", "tcp://:80", "tcp://h:0", "tcp://h:70000"}) {
    setenv("OCTET_RENDEZVOUS", bad, 1);
    auto o = ProcessGroup::optionsFromEnvironment();
    ASSERT_FALSE(bool(o)) << bad;
    EXPECT_EQ(llvm::toString(o.takeError()),
              std::string("OCTET_RENDEZVOUS = '") + bad +
                  "': expected tcp://HOST:PORT with a port in 1..65535");
  }
  setenv("OCTET_RENDEZVOUS", "tcp://localhost:29500", 1);
  auto o = ProcessGroup::optionsFromEnvironment();
  ASSERT_TRUE(bool(o) && o->has_value());
  EXPECT_EQ((*o)->rendezvous, "tcp://localhost:29500");

  ProcessGroup::Options bogus;
  bogus.size = 2;
  bogus.rendezvous = "tcp://no-such-host.invalid:29500";
  bogus.timeout = std::chrono::seconds(1);
  auto g = ProcessGroup::connect(bogus);
  ASSERT_FALSE(bool(g));
  std::string why = llvm::toString(g.takeError());
  EXPECT_EQ(why.rfind("the rendezvous host 'no-such-host.invalid': ", 0), 0u)
      << why;
}

TEST(ProcessGroupTest, SendingToItselfOrNoRankIsAnError) {
  Rendezvous rv;
  auto groups = connectAll(rv.dir.str().str(), 2);
  ASSERT_TRUE(groups[0] && groups[1]);
  std::vector<uint8_t> bytes = {1, 2, 3};
  EXPECT_EQ(llvm::toString(groups[0]->send(0, 1, bytes)),
            "rank 0 has no peer 0");
  EXPECT_EQ(llvm::toString(groups[0]->send(2, 1, bytes)),
            "rank 0 has no peer 2");
}

// A rank whose process ends without a goodbye (a crash) is reported lost
// at once, after what it sent.
TEST(ProcessGroupTest, ARankThatDiesIsLost) {
  Rendezvous rv;
  std::string dir = rv.dir.str().str();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ProcessGroup::Options o;
    o.rank = 1;
    o.size = 2;
    o.rendezvous = dir;
    auto g = ProcessGroup::connect(o);
    if (!g)
      _exit(2);
    std::vector<uint8_t> last = {42};
    if (llvm::errorToBool((*g)->send(0, 7, last)))
      _exit(3);
    _exit(0); // no close(): the connection just ends
  }
  ProcessGroup::Options o;
  o.rank = 0;
  o.size = 2;
  o.rendezvous = dir;
  auto g = ProcessGroup::connect(o);
  ASSERT_TRUE(bool(g)) << llvm::toString(g.takeError());
  Inbox in;
  in.listen(**g);
  ASSERT_TRUE(in.waitFor([&] { return !in.lost.empty(); }));
  ASSERT_EQ(in.messages.size(), 1u);
  EXPECT_EQ(std::get<1>(in.messages[0]), 7u);
  EXPECT_EQ(in.lost[0].first, 1);
  EXPECT_EQ(in.lost[0].second,
            "its process ended (its connection closed before it finished)");
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// abort() leaves without a goodbye, as a failed rank does: the peer sees
// it lost, and a send to it afterwards says so.
TEST(ProcessGroupTest, AbortIsSeenAsLost) {
  Rendezvous rv;
  auto groups = connectAll(rv.dir.str().str(), 2);
  ASSERT_TRUE(groups[0] && groups[1]);
  Inbox in;
  in.listen(*groups[0]);
  groups[1]->abort();
  ASSERT_TRUE(in.waitFor([&] { return !in.lost.empty(); }));
  EXPECT_EQ(in.lost[0].first, 1);
  // The socket may take a first frame before the peer's reset is known.
  std::vector<uint8_t> bytes(1 << 20, 5);
  std::string why;
  for (int i = 0; i < 4 && why.empty(); ++i)
    why = llvm::toString(groups[0]->send(1, 1, bytes));
  EXPECT_EQ(why, "rank 1: its process ended (its connection closed before "
                 "it finished)");
}

TEST(ProcessGroupTest, ARankThatNeverComesIsNamed) {
  Rendezvous rv;
  ProcessGroup::Options o;
  o.rank = 0;
  o.size = 3;
  o.rendezvous = rv.dir.str().str();
  o.timeout = std::chrono::seconds(1);
  auto g = ProcessGroup::connect(o);
  ASSERT_FALSE(bool(g));
  EXPECT_EQ(llvm::toString(g.takeError()),
            "rank 0 waited 1 s for rank(s) 1, 2 to connect: is every rank "
            "started, with the same OCTET_RENDEZVOUS and world size 3?");
  // The highest rank connects to the lower ones, which are not there.
  o.rank = 2;
  g = ProcessGroup::connect(o);
  ASSERT_FALSE(bool(g));
  std::string why = llvm::toString(g.takeError());
  EXPECT_EQ(why.rfind("rank 2 could not reach rank 0 in 1 s", 0), 0u) << why;
}

TEST(ProcessGroupTest, OptionsFromTheEnvironment) {
  Rendezvous rv;
  auto clear = [] {
    for (const char *v :
         {"OCTET_RANK", "OCTET_WORLD_SIZE", "OCTET_RENDEZVOUS",
          "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK",
          "PMI_SIZE", "SLURM_PROCID", "SLURM_NTASKS"})
      unsetenv(v);
  };
  clear();
  // Cleared again however the test ends.
  struct Restore {
    std::function<void()> fn;
    ~Restore() { fn(); }
  } restore{clear};
  auto unset = ProcessGroup::optionsFromEnvironment();
  ASSERT_TRUE(bool(unset));
  EXPECT_FALSE(unset->has_value());

  setenv("SLURM_PROCID", "3", 1);
  setenv("SLURM_NTASKS", "4", 1);
  auto missing = ProcessGroup::optionsFromEnvironment();
  ASSERT_FALSE(bool(missing));
  EXPECT_EQ(llvm::toString(missing.takeError()),
            "SLURM_PROCID is set but OCTET_RENDEZVOUS is not: the ranks meet "
            "in a directory they share, or at tcp://HOST:PORT of rank 0 "
            "(octet-run --nproc N sets both)");
  setenv("OCTET_RENDEZVOUS", rv.dir.c_str(), 1);
  auto slurm = ProcessGroup::optionsFromEnvironment();
  ASSERT_TRUE(bool(slurm) && slurm->has_value());
  EXPECT_EQ((*slurm)->rank, 3);
  EXPECT_EQ((*slurm)->size, 4);
  EXPECT_EQ((*slurm)->rendezvous, rv.dir.str().str());

  // Octet's own variables come first.
  setenv("OCTET_RANK", "1", 1);
  setenv("OCTET_WORLD_SIZE", "2", 1);
  auto own = ProcessGroup::optionsFromEnvironment();
  ASSERT_TRUE(bool(own) && own->has_value());
  EXPECT_EQ((*own)->rank, 1);
  EXPECT_EQ((*own)->size, 2);

  setenv("OCTET_RANK", "2", 1);
  auto outside = ProcessGroup::optionsFromEnvironment();
  ASSERT_FALSE(bool(outside));
  EXPECT_EQ(llvm::toString(outside.takeError()),
            "OCTET_RANK = '2' and OCTET_WORLD_SIZE = '2': expected a rank in "
            "[0, size) and a positive size");

  setenv("OCTET_RANK", "0", 1);
  std::string none = (rv.dir + "/none").str();
  setenv("OCTET_RENDEZVOUS", none.c_str(), 1);
  auto noDir = ProcessGroup::optionsFromEnvironment();
  ASSERT_FALSE(bool(noDir));
  EXPECT_EQ(llvm::toString(noDir.takeError()),
            "OCTET_RENDEZVOUS = '" + none + "' is not a directory");
}

// The payload codec: what is written reads back; a truncated or
// overlong payload fails instead of reading past its end.
TEST(ProcessGroupTest, WireRoundTripsAndRejectsTruncation) {
  std::mt19937 rng(7);
  std::vector<float> values(1000);
  for (float &v : values)
    v = std::uniform_real_distribution<float>(-3, 3)(rng);
  WireWriter w;
  w.u64(5);
  w.i64(-9);
  w.f64(0.25);
  w.str("forward_backward_F1");
  w.array<float>(values);
  std::vector<uint8_t> bytes = w.take();

  WireReader r(bytes);
  EXPECT_EQ(r.u64(), 5u);
  EXPECT_EQ(r.i64(), -9);
  EXPECT_EQ(r.f64(), 0.25);
  EXPECT_EQ(r.str(), "forward_backward_F1");
  EXPECT_EQ(r.array<float>(), values);
  EXPECT_TRUE(r.atEnd());
  EXPECT_FALSE(r.failed());

  std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 1);
  WireReader t(cut);
  t.u64();
  t.i64();
  t.f64();
  t.str();
  EXPECT_TRUE(t.array<float>().empty());
  EXPECT_TRUE(t.failed());

  // A length beyond the payload (a corrupted count).
  WireWriter big;
  big.u64(uint64_t(1) << 60);
  std::vector<uint8_t> lie = big.take();
  WireReader l(lie);
  EXPECT_TRUE(l.array<double>().empty());
  EXPECT_TRUE(l.failed());
  EXPECT_EQ(l.u64(), 0u); // zeros from then on
}

} // namespace
