//===- ProcessGroup.cpp - Ranks as processes on one machine ---------------===//

#include "octet/Runtime/ProcessGroup.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace octet::runtime;

namespace {
constexpr uint32_t kHelloMagic = 0x4f435450; // "OCTP"
constexpr uint32_t kGoodbye = 0;
/// A frame's header: its kind and the payload's length.
struct Header {
  uint32_t kind;
  uint32_t pad;
  uint64_t length;
};
/// No message of the runner comes near this: a larger length is a
/// corrupted stream.
constexpr uint64_t kMaxPayload = uint64_t(1) << 40;
constexpr const char *kLostText =
    "its process ended (its connection closed before it finished)";

llvm::Error socketError(const llvm::Twine &what) {
  return llvm::createStringError(
      llvm::Twine(what + ": " + std::strerror(errno)).str());
}

/// Writes all of `n` bytes (the socket may take them in parts).
bool writeAll(int fd, const void *p, size_t n) {
  const auto *b = static_cast<const uint8_t *>(p);
  while (n > 0) {
    // MSG_NOSIGNAL: a closed peer is an error here, not SIGPIPE.
    ssize_t k = ::send(fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return false;
    b += k;
    n -= size_t(k);
  }
  return true;
}

/// Reads exactly `n` bytes: 1 when done, 0 at the end of the stream before
/// any byte, -1 on an error or an end in the middle.
int readAll(int fd, void *p, size_t n) {
  auto *b = static_cast<uint8_t *>(p);
  size_t got = 0;
  while (got < n) {
    ssize_t k = ::read(fd, b + got, n - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k == 0)
      return got == 0 ? 0 : -1;
    if (k < 0)
      return -1;
    got += size_t(k);
  }
  return 1;
}

std::optional<sockaddr_un> addressOf(const std::string &dir, int64_t rank) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string path = dir + "/rank-" + std::to_string(rank) + ".sock";
  if (path.size() >= sizeof(a.sun_path))
    return std::nullopt;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}
} // namespace

struct ProcessGroup::Peer {
  int fd = -1;
  std::mutex sending;
  std::thread receiver;
  /// The receiving thread ended (guarded by the group's endMutex).
  bool ended = false;
};

llvm::Expected<std::optional<ProcessGroup::Options>>
ProcessGroup::optionsFromEnvironment() {
  auto get = [](const char *name) -> std::optional<std::string> {
    const char *v = std::getenv(name);
    if (!v || !*v)
      return std::nullopt;
    return std::string(v);
  };
  static const char *const kVariables[][2] = {
      {"OCTET_RANK", "OCTET_WORLD_SIZE"},
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
      {"PMI_RANK", "PMI_SIZE"},
      {"SLURM_PROCID", "SLURM_NTASKS"}};
  for (const auto &pair : kVariables) {
    std::optional<std::string> rank = get(pair[0]), size = get(pair[1]);
    if (!rank)
      continue;
    Options o;
    if (!size || llvm::StringRef(*rank).getAsInteger(10, o.rank) ||
        llvm::StringRef(*size).getAsInteger(10, o.size) || o.size < 1 ||
        o.rank < 0 || o.rank >= o.size)
      return llvm::createStringError(llvm::formatv(
          "{0} = '{1}' and {2} = '{3}': expected a rank in [0, size) and a "
          "positive size",
          pair[0], *rank, pair[1], size.value_or("")));
    std::optional<std::string> dir = get("OCTET_RENDEZVOUS");
    if (!dir)
      return llvm::createStringError(llvm::formatv(
          "{0} is set but OCTET_RENDEZVOUS is not: the ranks meet in a "
          "directory they share (octet-run --nproc N sets both)",
          pair[0]));
    if (!llvm::sys::fs::is_directory(*dir))
      return llvm::createStringError("OCTET_RENDEZVOUS = '" + *dir +
                                     "' is not a directory");
    o.rendezvous = *dir;
    return std::optional<Options>(o);
  }
  return std::optional<Options>();
}

llvm::Expected<std::unique_ptr<ProcessGroup>>
ProcessGroup::connect(const Options &options) {
  std::unique_ptr<ProcessGroup> g(new ProcessGroup());
  g->rank = options.rank;
  g->size = options.size;
  g->timeout = options.timeout;
  g->peers.resize(size_t(options.size));
  for (int64_t q = 0; q < options.size; ++q)
    if (q != options.rank)
      g->peers[q] = std::make_unique<Peer>();
  if (options.size == 1)
    return std::move(g);
  std::optional<sockaddr_un> mine = addressOf(options.rendezvous, g->rank);
  if (!mine)
    return llvm::createStringError("the rendezvous directory '" +
                                   options.rendezvous +
                                   "' is too long a path for a socket");
  auto deadline = std::chrono::steady_clock::now() + options.timeout;

  // Listen first, so that the higher ranks can connect while this one
  // connects to the lower ones.
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0)
    return socketError("creating a socket");
  ::unlink(mine->sun_path);
  if (::bind(listener, reinterpret_cast<sockaddr *>(&*mine), sizeof(*mine)) ||
      ::listen(listener, int(options.size))) {
    llvm::Error e = socketError(llvm::Twine("listening on ") + mine->sun_path);
    ::close(listener);
    return std::move(e);
  }
  // On an error: no goodbye to the ranks already connected, which then
  // see this one lost at once.
  auto cleanup = [&] {
    ::close(listener);
    ::unlink(mine->sun_path);
    g->abort();
  };
  struct Hello {
    uint32_t magic, rank, size;
  };
  for (int64_t q = 0; q < g->rank; ++q) {
    std::optional<sockaddr_un> theirs = addressOf(options.rendezvous, q);
    int fd = -1;
    while (true) {
      fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        cleanup();
        return socketError("creating a socket");
      }
      if (::connect(fd, reinterpret_cast<sockaddr *>(&*theirs),
                    sizeof(*theirs)) == 0)
        break;
      ::close(fd);
      // Not listening yet: try again until the deadline.
      if ((errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN &&
           errno != EINTR) ||
          std::chrono::steady_clock::now() > deadline) {
        llvm::Error e = llvm::createStringError(llvm::formatv(
            "rank {0} could not reach rank {1} in {2} s ({3}): is every rank "
            "started, with the same OCTET_RENDEZVOUS?",
            g->rank, q, options.timeout.count(), std::strerror(errno)));
        cleanup();
        return std::move(e);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Hello hello{kHelloMagic, uint32_t(g->rank), uint32_t(g->size)};
    if (!writeAll(fd, &hello, sizeof(hello))) {
      llvm::Error e = socketError(llvm::formatv("greeting rank {0}", q));
      ::close(fd);
      cleanup();
      return std::move(e);
    }
    g->peers[q]->fd = fd;
  }
  for (int64_t accepted = 0; accepted < g->size - 1 - g->rank;) {
    int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(
                       deadline - std::chrono::steady_clock::now())
                       .count();
    pollfd p{listener, POLLIN, 0};
    int ready = left > 0 ? ::poll(&p, 1, int(left)) : 0;
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0) {
      std::string missing;
      for (int64_t q = g->rank + 1; q < g->size; ++q)
        if (g->peers[q]->fd < 0)
          missing += (missing.empty() ? "" : ", ") + std::to_string(q);
      cleanup();
      return llvm::createStringError(llvm::formatv(
          "rank {0} waited {1} s for rank(s) {2} to connect: is every rank "
          "started, with the same OCTET_RENDEZVOUS and world size {3}?",
          g->rank, options.timeout.count(), missing, g->size));
    }
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      cleanup();
      return socketError("accepting a connection");
    }
    Hello hello{};
    if (readAll(fd, &hello, sizeof(hello)) != 1 || hello.magic != kHelloMagic ||
        int64_t(hello.size) != g->size || int64_t(hello.rank) <= g->rank ||
        int64_t(hello.rank) >= g->size || g->peers[hello.rank]->fd >= 0) {
      ::close(fd);
      cleanup();
      return llvm::createStringError(llvm::formatv(
          "rank {0} was greeted by a process that is not a rank of this "
          "group (magic {1:x}, rank {2}, world size {3}; expected world size "
          "{4})",
          g->rank, hello.magic, hello.rank, hello.size, g->size));
    }
    g->peers[hello.rank]->fd = fd;
    ++accepted;
  }
  ::close(listener);
  ::unlink(mine->sun_path);
  // A peer that stops reading blocks a send no longer than the timeout.
  timeval limit{};
  limit.tv_sec = time_t(options.timeout.count());
  for (auto &p : g->peers)
    if (p)
      ::setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  return std::move(g);
}

void ProcessGroup::listen(MessageHandler onMessage, LostHandler onLost) {
  for (int64_t q = 0; q < size; ++q) {
    Peer *peer = peers[q].get();
    if (!peer || peer->receiver.joinable())
      continue;
    peer->receiver = std::thread([this, peer, q, onMessage, onLost] {
      auto end = [&] {
        std::lock_guard<std::mutex> lock(endMutex);
        peer->ended = true;
        endChanged.notify_all();
      };
      while (true) {
        Header h{};
        int got = readAll(peer->fd, &h, sizeof(h));
        std::vector<uint8_t> payload;
        if (got == 1 && h.length <= kMaxPayload) {
          payload.resize(h.length);
          if (h.length && readAll(peer->fd, payload.data(), h.length) != 1)
            got = -1;
        } else if (got == 1) {
          got = -2;
        }
        if (got == 1 && h.kind == kGoodbye)
          break;
        if (got != 1) {
          onLost(q, got == -2 ? "it sent a malformed frame" : kLostText);
          break;
        }
        onMessage(q, h.kind, std::move(payload));
      }
      end();
    });
  }
}

llvm::Error ProcessGroup::send(int64_t peer, uint32_t kind,
                               llvm::ArrayRef<uint8_t> bytes) {
  if (peer < 0 || peer >= size || !peers[peer])
    return llvm::createStringError(
        llvm::formatv("rank {0} has no peer {1}", rank, peer));
  Peer &p = *peers[peer];
  Header h{kind, 0, bytes.size()};
  std::lock_guard<std::mutex> lock(p.sending);
  if (writeAll(p.fd, &h, sizeof(h)) &&
      (bytes.empty() || writeAll(p.fd, bytes.data(), bytes.size())))
    return llvm::Error::success();
  if (errno == EPIPE || errno == ECONNRESET)
    return llvm::createStringError(
        llvm::formatv("rank {0}: {1}", peer, kLostText).str());
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return llvm::createStringError(llvm::formatv(
        "rank {0}: it took nothing of a message for {1} s (it hangs?)", peer,
        timeout.count()));
  return socketError(llvm::formatv("rank {0} sending to rank {1}", rank, peer));
}

void ProcessGroup::close() {
  if (closed)
    return;
  for (auto &p : peers) {
    if (!p || p->fd < 0)
      continue;
    Header h{kGoodbye, 0, 0};
    {
      std::lock_guard<std::mutex> lock(p->sending);
      (void)writeAll(p->fd, &h, sizeof(h));
    }
    ::shutdown(p->fd, SHUT_WR);
  }
  // The peers' goodbyes end the receiving threads; a peer that does not
  // say it in time is cut off.
  {
    std::unique_lock<std::mutex> lock(endMutex);
    endChanged.wait_for(lock, timeout, [&] {
      for (auto &p : peers)
        if (p && p->receiver.joinable() && !p->ended)
          return false;
      return true;
    });
  }
  abort();
}

void ProcessGroup::abort() {
  if (closed)
    return;
  closed = true;
  for (auto &p : peers)
    if (p && p->fd >= 0)
      ::shutdown(p->fd, SHUT_RDWR);
  for (auto &p : peers) {
    if (!p)
      continue;
    if (p->receiver.joinable())
      p->receiver.join();
    if (p->fd >= 0)
      ::close(p->fd);
  }
}

ProcessGroup::~ProcessGroup() { close(); }
