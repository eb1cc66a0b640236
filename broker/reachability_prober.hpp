// reachability_prober.hpp: can a connected peer's advertised endpoint be reached from here? A TCP connect with a
// deadline (common/port_probe), on worker threads off the broker's event loop, which collects the answers in its
// housekeeping. From the broker's side of the network: a seeder behind NAT advertises an address nobody can
// dial, and downloaders then ask for a reverse or relayed link at once instead of timing out first.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zshare::broker {

class ReachabilityProber {
 public:
  struct Result {
    std::string user;
    std::string endpoint;
    bool reachable = false;
  };

  explicit ReachabilityProber(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000),
                              std::size_t workers = 2);
  ~ReachabilityProber();
  ReachabilityProber(const ReachabilityProber&) = delete;
  ReachabilityProber& operator=(const ReachabilityProber&) = delete;

  // Queues a probe; beyond kMaxQueued waiting ones the request is dropped (the session stays "unknown", which
  // downloaders treat as reachable: the behaviour without a prober).
  void probe(std::string user, std::string endpoint);
  // The answers that came in since the last call.
  std::vector<Result> take();

  static constexpr std::size_t kMaxQueued = 4096;

 private:
  struct Job {
    std::string user;
    std::string endpoint;
  };
  void work();

  std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  std::vector<Result> results_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace zshare::broker
