// dial_out_worker.hpp: a seeder's answers to downloaders that cannot reach it (rendezvous.hpp), on a thread of
// their own: choosing the way out probes the downloader's callback (up to half a second when nothing answers
// there), which must never hold up the session's heartbeats.
#pragma once

#include "peer/rendezvous.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <ostream>
#include <thread>
#include <vector>

namespace zshare::peer {

class DialOutWorker {
 public:
  // `dial` connects (Seeder::dial); `report` gets one line per order.
  DialOutWorker(std::function<void(std::vector<DialOut>)> dial, std::ostream& report,
                std::chrono::milliseconds callback_probe = kCallbackProbe);
  ~DialOutWorker();  // waits for the probe in progress, drops the orders still queued
  DialOutWorker(const DialOutWorker&) = delete;
  DialOutWorker& operator=(const DialOutWorker&) = delete;

  void push(std::vector<DialOrder> orders);

  static constexpr std::size_t kMaxQueued = 64;  // beyond: the oldest give way (their downloaders ask again)
  // A TCP connection to a reachable callback opens within one round trip; a relay link costs this much more setup
  // whenever the callback does not answer (a NATed downloader), so it is short. A lost SYN means the relay instead.
  static constexpr std::chrono::milliseconds kCallbackProbe{500};

 private:
  void run();

  std::function<void(std::vector<DialOut>)> dial_;
  std::ostream& report_;
  std::chrono::milliseconds probe_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<DialOrder> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zshare::peer
