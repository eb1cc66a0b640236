// loopback.hpp: endpoints for the socket tests. dead_endpoint() gives a loopback port nothing listens on (bound a
// moment ago and closed since): a broker that is not running. bound_loopback_socket() is the TCP socket the plain
// socket tests start from.
#pragma once

#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace zshare::test {

// A TCP socket (socket(2) `flags` added to SOCK_STREAM) bound to an ephemeral port of 127.0.0.1, not listening yet;
// the port goes to `port`.
inline int bound_loopback_socket(std::uint16_t& port, int flags = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | flags, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port = ntohs(a.sin_port);
  return fd;
}

inline std::string dead_endpoint(zmq::context_t& ctx) {
  zmq::socket_t probe(ctx, zmq::socket_type::router);
  probe.set(zmq::sockopt::linger, 0);
  probe.bind("tcp://127.0.0.1:*");
  return probe.get(zmq::sockopt::last_endpoint);
}

}  // namespace zshare::test
