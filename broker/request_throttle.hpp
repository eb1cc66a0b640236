// request_throttle.hpp: whether the broker serves a message at all, decided before it is decoded or touches any
// state: its client identity's token bucket (rate_limiter.hpp). A refused request is answered RATE LIMITED with
// retry_after_ms and is neither applied nor stored (not even in the reply cache: its retry is served as new).
// HEARTBEAT is never refused: it spends a token when there is one, and is served when there is none, so a busy
// peer's session cannot be expired by its own traffic (a heartbeat costs no more than the refusal would).
#pragma once

#include "broker/rate_limiter.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zshare::broker {

class RequestThrottle {
 public:
  explicit RequestThrottle(RateLimit limit) : limit_(limit), limiter_(limit) {}

  // nullopt: serve the message. Otherwise the RATE LIMITED reply to send instead of serving it.
  std::optional<std::string> refuse(std::string_view identity, std::string_view body, std::int64_t now_us);

  const RateLimiter& limiter() const { return limiter_; }

 private:
  RateLimit limit_;
  RateLimiter limiter_;
};

}  // namespace zshare::broker
