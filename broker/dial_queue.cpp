// dial_queue.cpp: a bounded deque per seeder; stale entries leave when the seeder next takes its dials.
#include "broker/dial_queue.hpp"

namespace zshare::broker {

void DialQueue::push(UserId user, Dial dial, std::int64_t now_ms) {
  auto& q = queued_[user];
  if (q.size() >= kMaxPerUser) q.pop_front();
  q.push_back(Entry{std::move(dial), now_ms});
}

std::vector<Dial> DialQueue::take(UserId user, std::int64_t now_ms) {
  std::vector<Dial> out;
  auto it = queued_.find(user);
  if (it == queued_.end()) return out;
  for (auto& e : it->second) {
    if (now_ms - e.at_ms <= kLifetimeMs) out.push_back(std::move(e.dial));
  }
  queued_.erase(it);
  return out;
}

}  // namespace zshare::broker
