// loopback.hpp: endpoints for the socket tests. dead_endpoint() gives a loopback port nothing listens on (bound a
// moment ago and closed since): a broker that is not running.
#pragma once

#include <zmq.hpp>

#include <string>

namespace zshare::test {

inline std::string dead_endpoint(zmq::context_t& ctx) {
  zmq::socket_t probe(ctx, zmq::socket_type::router);
  probe.set(zmq::sockopt::linger, 0);
  probe.bind("tcp://127.0.0.1:*");
  return probe.get(zmq::sockopt::last_endpoint);
}

}  // namespace zshare::test
