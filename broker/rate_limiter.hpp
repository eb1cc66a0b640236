// rate_limiter.hpp: requests per client identity, a token bucket each (`rate` tokens a second, at most `burst`),
// keyed by an opaque identity: the client's CurveZMQ public key (the connection's routing id over --plaintext).
// Invariants: the table never holds more than max_identities buckets; a bucket that has refilled to its burst
// carries no information and is forgotten (an unknown identity starts full); at the cap the least recently seen
// identity is forgotten first. Time is an argument (monotonic microseconds), so tests never sleep.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace zshare::broker {

struct RateLimit {
  double rate = 2000;                  // tokens (requests) per second and identity; 0 turns the limiter off
  double burst = 4000;                 // the bucket's size: requests an idle identity may send at once (>= 1)
  std::size_t max_identities = 65536;  // buckets kept at most (about 150 bytes each)
};

struct Admission {
  bool admitted = true;
  std::uint32_t retry_after_ms = 0;  // when refused: until the bucket holds a whole token again
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimit limit);

  bool enabled() const { return limit_.rate > 0; }

  // Takes one token from `identity`'s bucket, or says how long until there is one.
  Admission admit(std::string_view identity, std::int64_t now_us);

  std::size_t identities() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::string identity;
    double tokens = 0;
    std::int64_t at_us = 0;  // when `tokens` was computed
  };
  using Order = std::list<Bucket>;  // most recently seen first

  double refilled(const Bucket& b, std::int64_t now_us) const;
  void forget(Order::iterator it);

  RateLimit limit_;
  Order order_;
  std::unordered_map<std::string_view, Order::iterator> buckets_;  // keys view their bucket's `identity`
};

}  // namespace zshare::broker
