// request_peek.cpp: decoded with the dispatcher's limits (64-element arrays, depth 4, the message size cap).
#include "broker/request_peek.hpp"

#include "common/codec.hpp"
#include "common/protocol.hpp"
#include "common/validate.hpp"

namespace zshare::broker {

namespace p = zshare::protocol;

PeekedHeader peek_header(std::string_view message) {
  PeekedHeader h;
  if (message.size() > p::kMaxMessageBytes) return h;
  try {
    DecodeLimits limits;
    limits.array = 64;
    limits.depth = 4;
    limits.str = p::kMaxMessageBytes;
    limits.bin = p::kMaxMessageBytes;
    Message msg = Message::decode(message.data(), message.size(), limits);
    MapView root = msg.root();
    if (auto op = root.opt_str("op", p::kMaxOpBytes)) h.op = std::string(*op);
    if (const auto* raw = root.find("id"); raw && raw->type == msgpack::type::STR && raw->via.str.size >= 1 &&
                                           raw->via.str.size <= p::kMaxIdBytes &&
                                           is_valid_utf8({raw->via.str.ptr, raw->via.str.size})) {
      h.id.assign(raw->via.str.ptr, raw->via.str.size);
    }
  } catch (const BadRequest&) {
    // not decodable, or an op that is no string: what was read so far stands
  }
  return h;
}

}  // namespace zshare::broker
