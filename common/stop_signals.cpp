// stop_signals.cpp: one watcher thread in sigwait. A later SIGINT/SIGTERM is absorbed (shutdowns are bounded by
// deadlines); the destructor wakes the watcher with a signal sent to that thread alone.
#include "common/stop_signals.hpp"

#include <pthread.h>
#include <time.h>

namespace zshare {

StopSignals::StopSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_mask_);
  watcher_ = std::thread([this] { watch(); });
}

StopSignals::~StopSignals() {
  closing_.store(true);
  pthread_kill(watcher_.native_handle(), SIGTERM);  // pending on the watcher only; its sigwait takes it
  watcher_.join();
  // One that came meanwhile is absorbed too, not left to kill the process once the mask is restored.
  const timespec now{};
  while (sigtimedwait(&signals_, nullptr, &now) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

void StopSignals::watch() {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals_, &sig) != 0) return;  // EINVAL only, which a set of two valid signals cannot be
    if (closing_.load()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      int none = 0;
      signal_.compare_exchange_strong(none, sig);  // the first one names the stop
      stop_.store(true);
    }
    arrived_.notify_all();
  }
}

int StopSignals::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait(lock, [this] { return stop_.load(); });
  return signal_.load();
}

int StopSignals::wait_for(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait_for(lock, deadline, [this] { return stop_.load(); });
  return signal_.load();
}

}  // namespace zshare
