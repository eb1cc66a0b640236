// request_throttle.cpp: only a refused message is decoded, and only for its header (id to echo, op to spare
// heartbeats), with tighter bounds than the dispatcher's; an undecodable one is refused with a nil id.
#include "broker/request_throttle.hpp"

#include "broker/dispatcher.hpp"
#include "broker/request_peek.hpp"
#include "common/protocol.hpp"
#include "zshare/protocol_ops.hpp"

#include <cmath>

namespace zshare::broker {

namespace p = zshare::protocol;

namespace {

std::string number(double x) {
  const double r = std::round(x);
  return std::fabs(x - r) < 1e-9 ? std::to_string(static_cast<long long>(r)) : std::to_string(x);
}

}  // namespace

std::optional<std::string> RequestThrottle::refuse(std::string_view identity, std::string_view body,
                                                   std::int64_t now_us) {
  const Admission a = limiter_.admit(identity, now_us);
  if (a.admitted) return std::nullopt;
  const PeekedHeader header = peek_header(body);
  if (header.op == std::optional<std::string>(p::op::kHeartbeat)) return std::nullopt;
  MapWriter w = reply_header(header.id, p::status::kRateLimited);
  w.put("error", "this client is over its rate limit (" + number(limit_.rate) + " requests a second, bursts of " +
                     number(limit_.burst) + "); nothing was done: send it again in " +
                     std::to_string(a.retry_after_ms) + " ms");
  w.put("retry_after_ms", static_cast<std::uint64_t>(a.retry_after_ms));
  return w.finish();
}

}  // namespace zshare::broker
