//===- ProcessGroup.cpp - Ranks as processes on one machine ---------------===//

#include "octet/Runtime/ProcessGroup.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <arpa/inet.h>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
/// any byte, -1 on an error or an end in the middle. Calls `progress` (if
/// set) each time another kProgressBytes have come.
constexpr size_t kProgressBytes = size_t(1) << 20;
int readAll(int fd, void *p, size_t n,
            const std::function<void()> &progress = nullptr) {
  auto *b = static_cast<uint8_t *>(p);
  size_t got = 0, reported = 0;
  while (got < n) {
    ssize_t k = ::read(fd, b + got, n - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k == 0)
      return got == 0 ? 0 : -1;
    if (k < 0)
      return -1;
    got += size_t(k);
    if (progress && got - reported >= kProgressBytes && got < n) {
      reported = got;
      progress();
    }
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

namespace {
/// Where a rank listens: a Unix socket or an IPv4 address and port.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  sockaddr *get() { return reinterpret_cast<sockaddr *>(&storage); }
};

Address unixAddress(const sockaddr_un &a) {
  Address r;
  std::memcpy(&r.storage, &a, sizeof(a));
  r.length = sizeof(a);
  return r;
}

Address tcpAddress(uint32_t ip, uint16_t port) {
  Address r;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = ip; // network order
  a.sin_port = htons(port);
  std::memcpy(&r.storage, &a, sizeof(a));
  r.length = sizeof(a);
  return r;
}

/// tcp://HOST:PORT: the rendezvous of ranks on several machines (rank 0
/// listens there); std::nullopt for a directory.
std::optional<std::pair<std::string, uint16_t>>
tcpRendezvous(llvm::StringRef text) {
  if (!text.consume_front("tcp://"))
    return std::nullopt;
  auto [host, port] = text.rsplit(':');
  unsigned p = 0;
  if (host.empty() || port.getAsInteger(10, p) || p == 0 || p > 65535)
    return std::make_pair(std::string(), uint16_t(0));
  return std::make_pair(host.str(), uint16_t(p));
}

/// What a rank says first on a connection: who it is, and (to rank 0 of a
/// TCP rendezvous) the port it listens on.
struct Hello {
  uint32_t magic, rank, size, port;
};
/// Rank 0's table of a TCP rendezvous: where each rank listens.
struct Listening {
  uint32_t ip;
  uint32_t port;
};
} // namespace

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
    std::optional<std::string> where = get("OCTET_RENDEZVOUS");
    if (!where)
      return llvm::createStringError(llvm::formatv(
          "{0} is set but OCTET_RENDEZVOUS is not: the ranks meet in a "
          "directory they share, or at tcp://HOST:PORT of rank 0 "
          "(octet-run --nproc N sets both)",
          pair[0]));
    if (auto tcp = tcpRendezvous(*where)) {
      if (tcp->first.empty())
        return llvm::createStringError(
            "OCTET_RENDEZVOUS = '" + *where +
            "': expected tcp://HOST:PORT with a port in 1..65535");
    } else if (!llvm::sys::fs::is_directory(*where)) {
      return llvm::createStringError("OCTET_RENDEZVOUS = '" + *where +
                                     "' is not a directory");
    }
    o.rendezvous = *where;
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
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  std::optional<std::pair<std::string, uint16_t>> tcp =
      tcpRendezvous(options.rendezvous);
  if (tcp && tcp->first.empty())
    return llvm::createStringError("the rendezvous '" + options.rendezvous +
                                   "': expected tcp://HOST:PORT");

  // Listen first, so that the higher ranks can connect while this one
  // connects to the lower ones: on rank-<r>.sock in the directory, or on a
  // port (rank 0: the rendezvous port; the others: any, told to rank 0).
  std::optional<sockaddr_un> path;
  Address rendezvous;
  int family = tcp ? AF_INET : AF_UNIX;
  int listener = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0)
    return socketError("creating a socket");
  Address mine;
  if (tcp) {
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (int e = ::getaddrinfo(tcp->first.c_str(), nullptr, &hints, &found)) {
      ::close(listener);
      return llvm::createStringError("the rendezvous host '" + tcp->first +
                                     "': " + ::gai_strerror(e));
    }
    rendezvous = tcpAddress(
        reinterpret_cast<sockaddr_in *>(found->ai_addr)->sin_addr.s_addr,
        tcp->second);
    ::freeaddrinfo(found);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    mine = tcpAddress(htonl(INADDR_ANY), g->rank == 0 ? tcp->second : 0);
  } else {
    path = addressOf(options.rendezvous, g->rank);
    if (!path) {
      ::close(listener);
      return llvm::createStringError("the rendezvous directory '" +
                                     options.rendezvous +
                                     "' is too long a path for a socket");
    }
    ::unlink(path->sun_path);
    mine = unixAddress(*path);
  }
  if (::bind(listener, mine.get(), mine.length) ||
      ::listen(listener, int(options.size))) {
    llvm::Error e = socketError(
        tcp && g->rank == 0
            ? llvm::Twine("listening on port ") + llvm::Twine(tcp->second)
            : llvm::Twine("listening for the other ranks"));
    ::close(listener);
    return std::move(e);
  }
  uint16_t myPort = 0;
  if (tcp) {
    sockaddr_in bound{};
    socklen_t n = sizeof(bound);
    ::getsockname(listener, reinterpret_cast<sockaddr *>(&bound), &n);
    myPort = ntohs(bound.sin_port);
  }
  // On an error: no goodbye to the ranks already connected, which then
  // see this one lost at once.
  auto cleanup = [&] {
    ::close(listener);
    if (path)
      ::unlink(path->sun_path);
    g->abort();
  };
  auto connectTo = [&](int64_t q, Address to) -> llvm::Error {
    int fd = -1;
    while (true) {
      fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        return socketError("creating a socket");
      if (::connect(fd, to.get(), to.length) == 0)
        break;
      ::close(fd);
      // Not listening yet: try again until the deadline.
      if ((errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN &&
           errno != EINTR && errno != ETIMEDOUT) ||
          std::chrono::steady_clock::now() > deadline)
        return llvm::createStringError(llvm::formatv(
            "rank {0} could not reach rank {1} in {2} s ({3}): is every rank "
            "started, with the same OCTET_RENDEZVOUS?",
            g->rank, q, options.timeout.count(), std::strerror(errno)));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Hello hello{kHelloMagic, uint32_t(g->rank), uint32_t(g->size),
                uint32_t(myPort)};
    if (!writeAll(fd, &hello, sizeof(hello))) {
      ::close(fd);
      return socketError(llvm::formatv("greeting rank {0}", q));
    }
    g->peers[q]->fd = fd;
    return llvm::Error::success();
  };
  /// Accepts the higher ranks' connections; `seen` gets each greeting and
  /// where it came from.
  auto acceptRanks =
      [&](llvm::function_ref<void(const Hello &, const sockaddr_in &)> seen)
      -> llvm::Error {
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
        return llvm::createStringError(llvm::formatv(
            "rank {0} waited {1} s for rank(s) {2} to connect: is every rank "
            "started, with the same OCTET_RENDEZVOUS and world size {3}?",
            g->rank, options.timeout.count(), missing, g->size));
      }
      sockaddr_storage from{};
      socklen_t n = sizeof(from);
      int fd = ::accept4(listener, reinterpret_cast<sockaddr *>(&from), &n,
                         SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == EAGAIN)
          continue;
        return socketError("accepting a connection");
      }
      // A stray client that says nothing does not hold this up.
      timeval limit{};
      limit.tv_sec = time_t(options.timeout.count());
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
      Hello hello{};
      int said = readAll(fd, &hello, sizeof(hello));
      limit.tv_sec = 0;
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
      if (said != 1 || hello.magic != kHelloMagic ||
          int64_t(hello.size) != g->size || int64_t(hello.rank) <= g->rank ||
          int64_t(hello.rank) >= g->size || g->peers[hello.rank]->fd >= 0) {
        ::close(fd);
        return llvm::createStringError(llvm::formatv(
            "rank {0} was greeted by a process that is not a rank of this "
            "group (magic {1:x}, rank {2}, world size {3}; expected world "
            "size {4})",
            g->rank, hello.magic, hello.rank, hello.size, g->size));
      }
      g->peers[hello.rank]->fd = fd;
      sockaddr_in ip{};
      if (from.ss_family == AF_INET)
        std::memcpy(&ip, &from, sizeof(ip));
      seen(hello, ip);
      ++accepted;
    }
    return llvm::Error::success();
  };

  llvm::Error error = llvm::Error::success();
  if (!tcp) {
    // Each rank connects to the lower ones and accepts the higher ones.
    for (int64_t q = 0; q < g->rank && !error; ++q)
      error = connectTo(q, unixAddress(*addressOf(options.rendezvous, q)));
    if (!error)
      error = acceptRanks([](const Hello &, const sockaddr_in &) {});
  } else if (g->rank == 0) {
    // Rank 0 meets every rank, then tells each where the others listen.
    std::vector<Listening> table(size_t(g->size));
    error = acceptRanks([&](const Hello &h, const sockaddr_in &from) {
      table[h.rank] = {from.sin_addr.s_addr, h.port};
    });
    // A rank on this machine may have come over the loopback: the others
    // reach it at this machine's address, as a remote rank sees it.
    auto loopback = [](uint32_t ip) { return (ntohl(ip) >> 24) == 127; };
    for (int64_t q = 1; q < g->size && !error; ++q) {
      if (loopback(table[q].ip))
        continue;
      sockaddr_in here{};
      socklen_t n = sizeof(here);
      if (::getsockname(g->peers[q]->fd, reinterpret_cast<sockaddr *>(&here),
                        &n) == 0)
        for (Listening &l : table)
          if (loopback(l.ip))
            l.ip = here.sin_addr.s_addr;
      break;
    }
    for (int64_t q = 1; q < g->size && !error; ++q)
      if (!writeAll(g->peers[q]->fd, table.data(),
                    table.size() * sizeof(Listening)))
        error = socketError(llvm::formatv("telling rank {0} the others", q));
  } else {
    std::vector<Listening> table(size_t(g->size));
    error = connectTo(0, rendezvous);
    if (!error) {
      timeval limit{};
      limit.tv_sec = time_t(options.timeout.count());
      ::setsockopt(g->peers[0]->fd, SOL_SOCKET, SO_RCVTIMEO, &limit,
                   sizeof(limit));
      if (readAll(g->peers[0]->fd, table.data(),
                  table.size() * sizeof(Listening)) != 1)
        error = llvm::createStringError(llvm::formatv(
            "rank {0} waited {1} s for rank 0 to say where the other ranks "
            "listen: are all {2} started?",
            g->rank, options.timeout.count(), g->size));
      limit.tv_sec = 0;
      ::setsockopt(g->peers[0]->fd, SOL_SOCKET, SO_RCVTIMEO, &limit,
                   sizeof(limit));
    }
    for (int64_t q = 1; q < g->rank && !error; ++q)
      error = connectTo(q, tcpAddress(table[q].ip, uint16_t(table[q].port)));
    if (!error)
      error = acceptRanks([](const Hello &, const sockaddr_in &) {});
  }
  if (error) {
    cleanup();
    return std::move(error);
  }
  ::close(listener);
  if (path)
    ::unlink(path->sun_path);
  // A peer that stops reading blocks a send no longer than the timeout;
  // small messages (heartbeats, the losses) go at once.
  timeval limit{};
  limit.tv_sec = time_t(options.timeout.count());
  for (auto &p : g->peers) {
    if (!p)
      continue;
    ::setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    if (tcp) {
      int one = 1;
      ::setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
  }
  return std::move(g);
}

void ProcessGroup::listen(MessageHandler onMessage, LostHandler onLost,
                          ProgressHandler onProgress) {
  for (int64_t q = 0; q < size; ++q) {
    Peer *peer = peers[q].get();
    if (!peer || peer->receiver.joinable())
      continue;
    peer->receiver = std::thread([this, peer, q, onMessage, onLost,
                                  onProgress] {
      std::function<void()> moving;
      if (onProgress)
        moving = [&] { onProgress(q); };
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
          if (h.length &&
              readAll(peer->fd, payload.data(), h.length, moving) != 1)
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
  // Part of a frame may have gone: the stream is cut rather than read on
  // out of step (the peer sees this rank lost).
  int error = errno;
  ::shutdown(p.fd, SHUT_RDWR);
  errno = error;
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

void ProcessGroup::shutdown() {
  for (auto &p : peers)
    if (p && p->fd >= 0)
      ::shutdown(p->fd, SHUT_RDWR);
}

void ProcessGroup::abort() {
  if (closed)
    return;
  closed = true;
  shutdown();
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
