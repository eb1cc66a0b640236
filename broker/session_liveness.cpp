// session_liveness.cpp: a map of sessions, scanned by the event loop only when the earliest deadline it knows of
// has passed: with sessions beating regularly that is once per (misses - 1) intervals, not every 100 ms, so a
// million sessions cost a scan every few minutes rather than a core's worth of scans. No timer wheel needed.
#include "broker/session_liveness.hpp"

#include "common/protocol.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace zshare::broker {

SessionLiveness::SessionLiveness(std::uint32_t misses, double budget) : misses_(misses), budget_(budget) {
  if (misses < 1) throw std::invalid_argument("heartbeat misses must be at least 1");
  if (!(budget > 0)) throw std::invalid_argument("the heartbeat budget must be above 0 heartbeats a second");
}

std::uint64_t SessionLiveness::floor_ms() const {
  const double ms = std::ceil(static_cast<double>(beats_.size()) * 1000.0 / budget_);
  return ms >= static_cast<double>(protocol::kMaxHeartbeatMs) ? protocol::kMaxHeartbeatMs
                                                               : static_cast<std::uint64_t>(ms);
}

std::uint64_t SessionLiveness::ask(Beat& b, std::int64_t now_ms) {
  b.interval_ms = std::max(b.promised_ms, floor_ms());
  b.last_ms = now_ms;
  earliest_deadline_ = std::min(earliest_deadline_, deadline(b));  // a shorter interval can move it earlier
  return b.interval_ms;
}

std::uint64_t SessionLiveness::track(UserId user, std::uint64_t promised_ms, std::int64_t now_ms) {
  Beat& b = beats_[user];
  b.promised_ms = promised_ms;
  return ask(b, now_ms);
}

std::uint64_t SessionLiveness::touch(UserId user, std::int64_t now_ms) {
  auto it = beats_.find(user);
  return it == beats_.end() ? 0 : ask(it->second, now_ms);
}

void SessionLiveness::forget(UserId user) { beats_.erase(user); }

std::vector<UserId> SessionLiveness::expired(std::int64_t now_ms) {
  if (now_ms <= earliest_deadline_) return {};
  std::vector<std::pair<std::int64_t, UserId>> late;
  earliest_deadline_ = std::numeric_limits<std::int64_t>::max();
  for (const auto& [user, beat] : beats_) {
    const std::int64_t due = deadline(beat);
    earliest_deadline_ = std::min(earliest_deadline_, due);  // the late ones too: they stay until forget()
    if (now_ms > due) late.emplace_back(beat.last_ms, user);
  }
  std::sort(late.begin(), late.end());
  std::vector<UserId> out;
  out.reserve(late.size());
  for (const auto& [last, user] : late) out.push_back(user);
  return out;
}

}  // namespace zshare::broker
