//===- Parallel.cpp - Thread pool for the CPU reference kernels -----------===//

#include "octet/Numerics/Parallel.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

using namespace octet::numerics;

namespace {

thread_local bool insideParallelRegion = false;

class Pool {
public:
  explicit Pool(int threads) { resize(threads); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers.size()) + 1; }

  void resize(int threads) {
    stop();
    std::lock_guard<std::mutex> lock(mutex);
    quit = false;
    for (int i = 1; i < threads; ++i)
      workers.emplace_back([this] { work(); });
  }

  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      queue.push_back(std::move(task));
    }
    wake.notify_one();
  }

private:
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      quit = true;
    }
    wake.notify_all();
    for (std::thread &t : workers)
      t.join();
    workers.clear();
  }

  void work() {
    insideParallelRegion = true;
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [this] { return quit || !queue.empty(); });
        if (queue.empty())
          return;
        task = std::move(queue.front());
        queue.pop_front();
      }
      task();
    }
  }

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> queue;
  std::vector<std::thread> workers;
  bool quit = false;
};

int defaultThreads() {
  if (const char *env = std::getenv("OCTET_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0)
      return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool &pool() {
  static Pool instance(defaultThreads());
  return instance;
}

} // namespace

int octet::numerics::getNumThreads() { return pool().size(); }

void octet::numerics::setNumThreads(int threads) {
  pool().resize(std::max(1, threads));
}

void octet::numerics::parallelFor(
    int64_t n, int64_t grain,
    const std::function<void(int64_t, int64_t)> &body) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(getNumThreads(), (n + grain - 1) / grain);
  if (chunks <= 1 || insideParallelRegion) {
    body(0, n);
    return;
  }
  std::mutex mutex;
  std::condition_variable done;
  int64_t pending = chunks - 1;
  auto range = [&](int64_t c) {
    return std::pair<int64_t, int64_t>{n * c / chunks, n * (c + 1) / chunks};
  };
  for (int64_t c = 1; c < chunks; ++c)
    pool().submit([&, c] {
      auto [begin, end] = range(c);
      body(begin, end);
      std::lock_guard<std::mutex> lock(mutex);
      if (--pending == 0)
        done.notify_one();
    });
  insideParallelRegion = true;
  auto [begin, end] = range(0);
  body(begin, end);
  insideParallelRegion = false;
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return pending == 0; });
}
