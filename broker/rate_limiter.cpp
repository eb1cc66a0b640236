// rate_limiter.cpp: a bucket is refilled lazily, when its identity is next seen; the least recently seen end of
// the list is swept on every call while its buckets are full again, so the table holds about the identities
// active within the last burst/rate seconds (2 s by default) and never more than max_identities.
#include "broker/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace zshare::broker {

namespace {
constexpr double kSlack = 1e-9;  // tokens are sums of products of doubles: a whole token may read 0.9999999999
}  // namespace

RateLimiter::RateLimiter(RateLimit limit) : limit_(limit) {
  if (limit_.rate < 0 || !std::isfinite(limit_.rate)) throw std::invalid_argument("rate limit must be >= 0");
  if (enabled() && (limit_.burst < 1 || !std::isfinite(limit_.burst))) {
    throw std::invalid_argument("rate burst must be at least 1");
  }
  limit_.max_identities = std::max<std::size_t>(limit_.max_identities, 1);
}

double RateLimiter::refilled(const Bucket& b, std::int64_t now_us) const {
  const double elapsed_s = now_us > b.at_us ? static_cast<double>(now_us - b.at_us) / 1e6 : 0.0;
  return std::min(limit_.burst, b.tokens + elapsed_s * limit_.rate);
}

void RateLimiter::forget(Order::iterator it) {
  buckets_.erase(std::string_view(it->identity));
  order_.erase(it);
}

Admission RateLimiter::admit(std::string_view identity, std::int64_t now_us) {
  if (!enabled()) return {};
  while (!order_.empty() && refilled(order_.back(), now_us) >= limit_.burst - kSlack) forget(std::prev(order_.end()));

  auto found = buckets_.find(identity);
  if (found == buckets_.end()) {
    if (buckets_.size() >= limit_.max_identities) forget(std::prev(order_.end()));
    order_.push_front(Bucket{std::string(identity), limit_.burst, now_us});
    found = buckets_.emplace(std::string_view(order_.front().identity), order_.begin()).first;
  } else {
    order_.splice(order_.begin(), order_, found->second);
  }
  Bucket& b = *found->second;
  b.tokens = refilled(b, now_us);
  b.at_us = std::max(b.at_us, now_us);
  if (b.tokens >= 1 - kSlack) {
    b.tokens = std::max(0.0, b.tokens - 1);
    return {};
  }
  const double wait_ms = std::ceil((1 - b.tokens) / limit_.rate * 1000.0 - 1e-6);
  return {false, static_cast<std::uint32_t>(std::clamp(wait_ms, 1.0, 4.0e9))};
}

}  // namespace zshare::broker
