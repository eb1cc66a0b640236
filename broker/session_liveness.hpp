// session_liveness.hpp: the broker's side of the Paranoid Pirate heartbeat: which sessions promised a
// heartbeat interval at CONNECT, when each was last heard from, and which have been silent too long.
// Sessions that promised nothing (scripts, old clients) are never expired by it.
#pragma once

#include "broker/file_index.hpp"

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace zshare::broker {

class SessionLiveness {
 public:
  explicit SessionLiveness(std::uint32_t misses) : misses_(misses) {}

  void track(UserId user, std::uint64_t interval_ms, std::int64_t now_ms);
  bool touch(UserId user, std::int64_t now_ms);  // false when the session is not tracked
  bool tracked(UserId user) const { return beats_.count(user) != 0; }  // it promised heartbeats
  void forget(UserId user);
  // Sessions silent for more than `misses` intervals, oldest first; they stay tracked until forget().
  std::vector<UserId> expired(std::int64_t now_ms) const;

 private:
  struct Beat {
    std::uint64_t interval_ms;
    std::int64_t last_ms;
  };
  std::uint32_t misses_;
  std::unordered_map<UserId, Beat> beats_;
};

}  // namespace zshare::broker
