// session_liveness.cpp: a map scanned by the event loop a few times a second; thousands of sessions cost
// microseconds, so no timer wheel is needed at this scale.
#include "broker/session_liveness.hpp"

#include <algorithm>

namespace zshare::broker {

void SessionLiveness::track(UserId user, std::uint64_t interval_ms, std::int64_t now_ms) {
  beats_[user] = Beat{interval_ms, now_ms};
}

bool SessionLiveness::touch(UserId user, std::int64_t now_ms) {
  auto it = beats_.find(user);
  if (it == beats_.end()) return false;
  it->second.last_ms = now_ms;
  return true;
}

void SessionLiveness::forget(UserId user) { beats_.erase(user); }

std::vector<UserId> SessionLiveness::expired(std::int64_t now_ms) const {
  std::vector<std::pair<std::int64_t, UserId>> late;
  for (const auto& [user, beat] : beats_) {
    if (now_ms - beat.last_ms > static_cast<std::int64_t>(beat.interval_ms * misses_)) {
      late.emplace_back(beat.last_ms, user);
    }
  }
  std::sort(late.begin(), late.end());
  std::vector<UserId> out;
  for (const auto& [last, user] : late) out.push_back(user);
  return out;
}

}  // namespace zshare::broker
