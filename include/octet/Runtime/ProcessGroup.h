//===- ProcessGroup.h - Ranks as processes on one machine -------*- C++ -*-===//
//
// The processes of a multi-process run (octet-run --nproc N, or N processes
// a launcher started with the rank variables set), connected to each other
// by stream sockets: a full mesh, one connection per pair. On one machine
// the ranks meet in a rendezvous directory, where every rank listens on
// rank-<r>.sock (Unix sockets); on several, at tcp://HOST:PORT, where rank
// 0 listens, learns where the others listen (any port) and tells them
// (TCP, IPv4). Messages are frames (a kind and a payload of bytes); the
// frames from one rank to another arrive in the order they were sent.
//
// One receiving thread per peer hands each frame to the handler. A peer
// whose connection closes before it said goodbye (close()) is reported as
// lost, at once: a rank that dies shows on every other rank without
// waiting for a timeout.
//
// The CPU transport of the pipeline runner; a GPU run would move the same
// messages with NCCL (not built yet).
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_PROCESSGROUP_H
#define OCTET_RUNTIME_PROCESSGROUP_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace octet::runtime {

class ProcessGroup {
public:
  struct Options {
    int64_t rank = 0, size = 1;
    /// Where the ranks meet: a directory every rank can reach (on one
    /// machine; its path must be short enough for a socket address), or
    /// tcp://HOST:PORT, the address of rank 0's machine and a port it
    /// listens on.
    std::string rendezvous;
    /// How long a rank waits for the others to show up.
    std::chrono::seconds timeout{60};
  };

  /// Connects to every other rank; an error naming the rank that did not
  /// come in time, or what went wrong with the sockets.
  static llvm::Expected<std::unique_ptr<ProcessGroup>>
  connect(const Options &options);

  /// The rank and size a launcher gave this process: OCTET_RANK and
  /// OCTET_WORLD_SIZE (octet-run --nproc sets them), else the variables of
  /// Open MPI (OMPI_COMM_WORLD_RANK/SIZE), of PMI (PMI_RANK/SIZE: MPICH,
  /// Intel MPI) or of Slurm (SLURM_PROCID/SLURM_NTASKS); the rendezvous
  /// is OCTET_RENDEZVOUS. std::nullopt when no rank is set; an
  /// error when the variables are malformed or the directory is missing.
  static llvm::Expected<std::optional<Options>> optionsFromEnvironment();

  ~ProcessGroup();

  int64_t getRank() const { return rank; }
  int64_t getSize() const { return size; }

  /// What the receiving threads call: a frame from `peer`; or, once, that
  /// `peer` is gone (`why`). Called on the receiving threads, one per peer.
  using MessageHandler =
      std::function<void(int64_t peer, uint32_t kind, std::vector<uint8_t>)>;
  using LostHandler = std::function<void(int64_t peer, std::string why)>;
  /// While a large frame from `peer` arrives: every MiB of its payload, so
  /// that a rank waiting for a slow one sees it moving.
  using ProgressHandler = std::function<void(int64_t peer)>;
  /// Starts the receiving threads (once).
  void listen(MessageHandler onMessage, LostHandler onLost,
              ProgressHandler onProgress = nullptr);

  /// Sends a frame to `peer` (not this rank); safe from any thread, and
  /// blocks until the socket took it (an error when the peer takes nothing
  /// for the timeout, or its process ended). `kind` 0 is reserved.
  llvm::Error send(int64_t peer, uint32_t kind, llvm::ArrayRef<uint8_t> bytes);

  /// Says goodbye to every peer and waits (up to the timeout) for theirs,
  /// so that the end of a run is not taken for a lost rank; then closes the
  /// connections and joins the receiving threads. Called by the destructor
  /// if not before.
  void close();
  /// Closes the connections without a goodbye, as a failed rank does, so
  /// that the peers see it lost at once.
  void abort();
  /// Cuts every connection (a blocked send or receive returns) without
  /// closing them; abort() or close() then closes them.
  void shutdown();

private:
  ProcessGroup() = default;
  struct Peer;
  int64_t rank = 0, size = 1;
  std::chrono::seconds timeout{60};
  std::vector<std::unique_ptr<Peer>> peers; ///< Indexed by rank; null self.
  bool closed = false;
  /// For close()'s bounded wait for the receiving threads to end.
  std::mutex endMutex;
  std::condition_variable endChanged;
};

/// The payloads of frames: little-endian integers and arrays, written and
/// read in the same order. A reader past the end, or given a length that
/// does not fit, fails (failed()) and returns zeros from then on.
class WireWriter {
public:
  void u64(uint64_t v) { raw(&v, sizeof(v)); }
  void i64(int64_t v) { raw(&v, sizeof(v)); }
  void f64(double v) { raw(&v, sizeof(v)); }
  void str(llvm::StringRef s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  template <typename T> void array(llvm::ArrayRef<T> values) {
    u64(values.size());
    raw(values.data(), values.size() * sizeof(T));
  }
  std::vector<uint8_t> take() { return std::move(bytes); }

private:
  void raw(const void *p, size_t n) {
    const auto *b = static_cast<const uint8_t *>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  std::vector<uint8_t> bytes;
};

class WireReader {
public:
  explicit WireReader(llvm::ArrayRef<uint8_t> bytes) : bytes(bytes) {}
  uint64_t u64() { return scalar<uint64_t>(); }
  int64_t i64() { return scalar<int64_t>(); }
  double f64() { return scalar<double>(); }
  std::string str() {
    uint64_t n = u64();
    if (!take(n))
      return {};
    return std::string(reinterpret_cast<const char *>(bytes.data() + at - n),
                       n);
  }
  template <typename T> std::vector<T> array() {
    uint64_t n = u64();
    if (n > (bytes.size() - at) / sizeof(T) || !take(n * sizeof(T)))
      return fail(), std::vector<T>();
    std::vector<T> v(n);
    std::memcpy(v.data(), bytes.data() + at - n * sizeof(T), n * sizeof(T));
    return v;
  }
  bool failed() const { return bad; }
  bool atEnd() const { return at == bytes.size(); }

private:
  template <typename T> T scalar() {
    T v{};
    if (take(sizeof(T)))
      std::memcpy(&v, bytes.data() + at - sizeof(T), sizeof(T));
    return v;
  }
  bool take(uint64_t n) {
    if (bad || n > bytes.size() - at)
      return fail(), false;
    at += n;
    return true;
  }
  void fail() { bad = true; }
  llvm::ArrayRef<uint8_t> bytes;
  size_t at = 0;
  bool bad = false;
};

} // namespace octet::runtime

#endif // OCTET_RUNTIME_PROCESSGROUP_H
