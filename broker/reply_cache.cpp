// reply_cache.cpp: a hash map plus a FIFO of keys; a re-put of a known id keeps its first reply.
// The durable copy lives in Store's replies table and is reloaded at start-up.
#include "broker/reply_cache.hpp"

namespace zshare::broker {

std::optional<std::string_view> ReplyCache::find(std::string_view request_id) const {
  auto it = replies_.find(std::string(request_id));
  if (it == replies_.end()) return std::nullopt;
  return std::string_view(it->second);
}

void ReplyCache::put(std::string request_id, std::string reply) {
  if (capacity_ == 0 || replies_.count(request_id)) return;
  while (replies_.size() >= capacity_) {
    replies_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(request_id);
  replies_.emplace(std::move(request_id), std::move(reply));
}

}  // namespace zshare::broker
