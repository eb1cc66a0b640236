// chunk_scheduler.cpp: fresh chunks go out in file order (the order a stream to standard output needs, and the
// order the seeder's read-ahead expects); chunks to ask again jump the queue.
#include "peer/chunk_scheduler.hpp"

#include <algorithm>

namespace zshare::peer {

ChunkScheduler::ChunkScheduler(std::uint64_t chunks, std::size_t sources)
    : done_(chunks, 0), asked_(chunks, 0), avoid_(chunks, kNobody), outstanding_(sources, 0) {}

void ChunkScheduler::mark_done(std::uint32_t index) {
  if (done_[index]) return;
  done_[index] = 1;
  ++done_count_;
}

std::optional<std::uint32_t> ChunkScheduler::assign(std::size_t source, bool others) {
  std::optional<std::uint32_t> chosen;
  retry_.erase(std::remove_if(retry_.begin(), retry_.end(), [&](auto i) { return done_[i] || asked_[i]; }),
               retry_.end());
  for (auto it = retry_.begin(); it != retry_.end(); ++it) {
    if (others && avoid_[*it] == static_cast<std::int32_t>(source)) continue;
    chosen = *it;
    retry_.erase(it);
    break;
  }
  if (!chosen) {
    while (next_fresh_ < done_.size() && (done_[next_fresh_] || asked_[next_fresh_])) ++next_fresh_;
    if (next_fresh_ < done_.size()) chosen = static_cast<std::uint32_t>(next_fresh_++);
  }
  if (chosen) {
    ++asked_[*chosen];
    ++outstanding_[source];
  }
  return chosen;
}

void ChunkScheduler::release(std::size_t source, std::uint32_t index, Outcome outcome) {
  if (outstanding_[source] > 0) --outstanding_[source];
  if (asked_[index] > 0) --asked_[index];
  switch (outcome) {
    case Outcome::kVerified: mark_done(index); return;
    case Outcome::kBad: avoid_[index] = static_cast<std::int32_t>(source); break;
    case Outcome::kLost:
    case Outcome::kUnused: break;
  }
  if (!done_[index] && asked_[index] == 0) retry_.push_front(index);
}

}  // namespace zshare::peer
