// request_throttle.cpp: only a refused message is decoded, and only for its header (id to echo, op to spare
// heartbeats), with tighter bounds than the dispatcher's; an undecodable one is refused with a nil id.
#include "broker/request_throttle.hpp"

#include "broker/dispatcher.hpp"
#include "common/codec.hpp"
#include "common/protocol.hpp"
#include "common/validate.hpp"
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
  std::string id;
  if (body.size() <= p::kMaxMessageBytes) {
    try {
      DecodeLimits limits;
      limits.array = 64;
      limits.depth = 4;
      limits.str = p::kMaxMessageBytes;
      limits.bin = p::kMaxMessageBytes;
      Message msg = Message::decode(body.data(), body.size(), limits);
      MapView root = msg.root();
      if (root.opt_str("op", p::kMaxOpBytes) == std::optional<std::string_view>(p::op::kHeartbeat)) return std::nullopt;
      if (const auto* raw = root.find("id"); raw && raw->type == msgpack::type::STR && raw->via.str.size >= 1 &&
                                             raw->via.str.size <= p::kMaxIdBytes &&
                                             is_valid_utf8({raw->via.str.ptr, raw->via.str.size})) {
        id.assign(raw->via.str.ptr, raw->via.str.size);
      }
    } catch (const BadRequest&) {
      // not decodable: refused all the same, with a nil id
    }
  }
  MapWriter w = reply_header(id, p::status::kRateLimited);
  w.put("error", "this client is over its rate limit (" + number(limit_.rate) + " requests a second, bursts of " +
                     number(limit_.burst) + "); nothing was done: send it again in " +
                     std::to_string(a.retry_after_ms) + " ms");
  w.put("retry_after_ms", static_cast<std::uint64_t>(a.retry_after_ms));
  return w.finish();
}

}  // namespace zshare::broker
