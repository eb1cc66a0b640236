// stop_signals.hpp: SIGINT and SIGTERM as a flag that a daemon's loop polls. The signals are blocked and taken
// by sigwait in a watcher thread, never by an async handler: ThreadSanitizer was seen to lose a handled SIGTERM.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

namespace zshare {

class StopSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread, hence in every thread it starts afterwards: construct it
  // before any other thread exists (a ZeroMQ context's first socket, a server's pool), or that thread may take
  // the signal with its default action.
  StopSignals();
  ~StopSignals();  // stops the watcher and restores the calling thread's signal mask
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const std::atomic<bool>& flag() const { return stop_; }  // true once SIGINT or SIGTERM arrived
  int wait();                                              // blocks until one arrives; returns its number
  int wait_for(std::chrono::milliseconds deadline);        // the same, or 0 once `deadline` has passed
  int received() const { return signal_.load(); }          // 0 until one arrived

 private:
  void watch();

  sigset_t signals_{};
  sigset_t previous_mask_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> closing_{false};
  std::atomic<int> signal_{0};
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::thread watcher_;
};

}  // namespace zshare
