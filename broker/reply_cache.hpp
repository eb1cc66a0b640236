// reply_cache.hpp: the replies of recent mutations by request id, so a retried request (Lazy Pirate) is
// answered as the first one was and never applied twice. Bounded: the oldest entry goes first.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace zshare::broker {

class ReplyCache {
 public:
  explicit ReplyCache(std::size_t capacity) : capacity_(capacity) {}

  std::optional<std::string_view> find(std::string_view request_id) const;
  void put(std::string request_id, std::string reply);
  std::size_t size() const { return replies_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::unordered_map<std::string, std::string> replies_;
  std::deque<std::string> order_;  // request ids, oldest first
};

}  // namespace zshare::broker
