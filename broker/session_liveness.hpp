// session_liveness.hpp: the broker's side of the Paranoid Pirate heartbeat: which sessions promised a
// heartbeat interval at CONNECT, the interval the broker asks each of them for, when each was last heard from,
// and which have been silent too long. Sessions that promised nothing (scripts, old clients) are never expired.
// The asked interval is the session's promise, or slower when the sessions together would beat more often than
// the broker's budget (heartbeats a second): the floor, ceil(sessions / budget) seconds, so heartbeats take a
// bounded share of the broker however many sessions it holds. Each ask also restarts the session's silence.
#pragma once

#include "broker/file_index.hpp"

#include <cstdint>
#include <limits>
#include <unordered_map>
#include <vector>

namespace zshare::broker {

class SessionLiveness {
 public:
  // `misses`: silent intervals before a session is expired; `budget`: heartbeats a second for all sessions.
  SessionLiveness(std::uint32_t misses, double budget);

  // A session that promised `promised_ms`; returns the interval asked of it (and tracked from `now_ms`).
  std::uint64_t track(UserId user, std::uint64_t promised_ms, std::int64_t now_ms);
  // A heartbeat: the session was heard from at `now_ms`; returns the interval asked of it from now on, 0 when the
  // session is not tracked (it promised nothing).
  std::uint64_t touch(UserId user, std::int64_t now_ms);
  bool tracked(UserId user) const { return beats_.count(user) != 0; }  // it promised heartbeats
  void forget(UserId user);
  // The slowest interval this many sessions may beat at within the budget, capped at protocol::kMaxHeartbeatMs.
  std::uint64_t floor_ms() const;
  std::size_t size() const { return beats_.size(); }
  // Sessions silent for more than `misses` asked intervals, oldest first; they stay tracked until forget().
  // Scans the sessions only once the earliest deadline can have passed, so frequent calls cost nothing.
  std::vector<UserId> expired(std::int64_t now_ms);

 private:
  struct Beat {
    std::uint64_t promised_ms;
    std::uint64_t interval_ms;  // asked: max(promised, floor) at the last track or touch
    std::int64_t last_ms;
  };
  std::int64_t deadline(const Beat& b) const { return b.last_ms + static_cast<std::int64_t>(b.interval_ms * misses_); }
  std::uint64_t ask(Beat& b, std::int64_t now_ms);

  std::uint32_t misses_;
  double budget_;
  std::unordered_map<UserId, Beat> beats_;
  // No tracked session's deadline is earlier (touch and forget only move deadlines later or drop them).
  std::int64_t earliest_deadline_ = std::numeric_limits<std::int64_t>::max();
};

}  // namespace zshare::broker
