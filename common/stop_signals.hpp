// stop_signals.hpp: SIGINT and SIGTERM (or a chosen set) as a flag that a loop polls, and an fd that poll() can
// wait on. The signals are blocked and taken by sigwait in a watcher thread, never by an async handler:
// ThreadSanitizer was seen to lose a handled SIGTERM. A daemon stops once; the console clears the flag after each
// Ctrl-C it handled (it cancels one command, not the console).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <initializer_list>
#include <mutex>
#include <thread>

namespace zshare {

class StopSignals {
 public:
  // Blocks `signals` in the calling thread, hence in every thread it starts afterwards: construct it before any
  // other thread exists (a ZeroMQ context's first socket, a server's pool), or that thread may take the signal
  // with its default action.
  explicit StopSignals(std::initializer_list<int> signals = {SIGINT, SIGTERM});
  ~StopSignals();  // stops the watcher and restores the calling thread's signal mask
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const std::atomic<bool>& flag() const { return stop_; }  // true once a signal arrived (until clear())
  int wait();                                              // blocks until one arrives; returns its number
  int wait_for(std::chrono::milliseconds deadline);        // the same, or 0 once `deadline` has passed
  int received() const { return signal_.load(); }          // 0 until one arrived
  // Readable (an eventfd) while the flag is up: poll it beside a terminal or a socket.
  int fd() const { return event_fd_; }
  // Forgets the signal that arrived (the flag, received(), fd()): the next one raises them again.
  void clear();

 private:
  void watch();

  sigset_t signals_{};
  sigset_t previous_mask_{};
  int wake_signal_ = SIGTERM;  // one of `signals`: the destructor ends the watcher's sigwait with it
  int event_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closing_{false};
  std::atomic<int> signal_{0};
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::thread watcher_;
};

}  // namespace zshare
