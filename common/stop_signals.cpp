// stop_signals.cpp: one watcher thread in sigwait. A later SIGINT/SIGTERM is absorbed (shutdowns are bounded by
// deadlines) until clear(); the destructor wakes the watcher with a signal sent to that thread alone.
#include "common/stop_signals.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

namespace zshare {

StopSignals::StopSignals(std::initializer_list<int> signals) {
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  sigemptyset(&signals_);
  for (int s : signals) sigaddset(&signals_, s);
  if (signals.size() > 0) wake_signal_ = *signals.begin();
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_mask_);
  watcher_ = std::thread([this] { watch(); });
}

StopSignals::~StopSignals() {
  closing_.store(true);
  pthread_kill(watcher_.native_handle(), wake_signal_);  // pending on the watcher only; its sigwait takes it
  watcher_.join();
  // One that came meanwhile is absorbed too, not left to kill the process once the mask is restored.
  const timespec now{};
  while (sigtimedwait(&signals_, nullptr, &now) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
  ::close(event_fd_);
}

void StopSignals::watch() {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals_, &sig) != 0) return;  // EINVAL only, which a set of valid signals cannot be
    if (closing_.load()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      int none = 0;
      signal_.compare_exchange_strong(none, sig);  // the first one names the stop
      if (!stop_.exchange(true)) {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(event_fd_, &one, sizeof one);  // cannot fill: one count at a time
      }
    }
    arrived_.notify_all();
  }
}

void StopSignals::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::uint64_t count = 0;
  [[maybe_unused]] ssize_t r = ::read(event_fd_, &count, sizeof count);  // EAGAIN when nothing arrived
  signal_.store(0);
  stop_.store(false);
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
