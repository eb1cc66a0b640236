// transfer_endpoint.hpp: the peer's transfer ROUTER (other peers will fetch chunks from it: fileio3).
// Bound for the whole life of the object, unbound (closed) when it is destroyed; the actual endpoint is known.
#pragma once

#include <zmq.hpp>

#include <optional>
#include <string>

namespace zshare::peer {

class TransferEndpoint {
 public:
  // Binds a ROUTER to `bind_address` (e.g. "tcp://127.0.0.1:*"); throws zmq::error_t when it cannot.
  TransferEndpoint(zmq::context_t& ctx, const std::string& bind_address);

  // The address actually bound (ZMQ_LAST_ENDPOINT), with the port a wildcard was given.
  const std::string& bound_endpoint() const { return bound_; }

 private:
  zmq::socket_t router_;
  std::string bound_;
};

// The endpoint other peers should dial: `bound` with its host replaced by `host` when one is given
// ("tcp://0.0.0.0:4000" + "files.example" -> "tcp://files.example:4000"). IPv6 hosts get brackets.
// Throws std::invalid_argument when `bound` is not tcp://HOST:PORT.
std::string advertised_endpoint(const std::string& bound, const std::optional<std::string>& host);

}  // namespace zshare::peer
