// transfer_endpoint.cpp: LINGER 0 so unbinding never waits, ZMQ_MAXMSGSIZE because the socket faces the network.
// Serving chunks on the socket arrives with the transfer issue; for now it is only bound and advertised.
#include "peer/transfer_endpoint.hpp"

#include "common/protocol.hpp"

#include <stdexcept>

namespace zshare::peer {

TransferEndpoint::TransferEndpoint(zmq::context_t& ctx, const std::string& bind_address)
    : router_(ctx, zmq::socket_type::router) {
  router_.set(zmq::sockopt::linger, 0);
  router_.set(zmq::sockopt::maxmsgsize, protocol::kSocketMaxMessageBytes);
  router_.bind(bind_address);
  bound_ = router_.get(zmq::sockopt::last_endpoint);
}

std::string advertised_endpoint(const std::string& bound, const std::optional<std::string>& host) {
  const std::string scheme = "tcp://";
  const auto colon = bound.rfind(':');
  if (bound.rfind(scheme, 0) != 0 || colon == std::string::npos || colon < scheme.size()) {
    throw std::invalid_argument("not a tcp://HOST:PORT endpoint: " + bound);
  }
  if (!host || host->empty()) return bound;
  std::string h = *host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  return scheme + h + bound.substr(colon);
}

}  // namespace zshare::peer
