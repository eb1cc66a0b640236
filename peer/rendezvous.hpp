// rendezvous.hpp: links with a peer behind NAT (transfer.md, "Paths"). A downloader that cannot dial a seeder
// asks the broker (DIAL); the seeder finds the request in its next heartbeat reply (a dial order) and connects
// out: to the downloader's callback when a TCP connection to it opens, else through the relay, whose token the
// broker minted for both sides. Whoever dials, the seeder stays the CurveZMQ server of the link.
#pragma once

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace zshare::peer {

// One request to dial out, as a heartbeat reply carries it.
struct DialOrder {
  std::string callback;  // tcp://HOST:PORT the downloader listens on; "" when it gave none
  std::string relay;     // tcp://HOST:PORT of the relay; "" without one
  std::string host;      // our side of the relay token
};

// How to connect: `endpoint`, through the SOCKS5 proxy `proxy` (HOST:PORT, the relay) when not empty.
struct DialOut {
  std::string endpoint;
  std::string proxy;
};

// The dial orders in a HEARTBEAT reply's fields (`dials`); malformed entries are skipped.
std::vector<DialOrder> dial_orders(const nlohmann::json& heartbeat_reply);
// The seeder's choice for one order: the callback when a TCP connection to it opens within `probe` (from here,
// the only place that can tell), else the relay; nothing when neither works.
std::optional<DialOut> choose_path(const DialOrder& order, std::chrono::milliseconds probe);
// The endpoint naming a relay token's side ("tcp://<host>:9": the relay reads the host, not the port).
std::string relay_endpoint_for(const std::string& host);
// "tcp://relay.example:7000" -> "relay.example:7000", libzmq's ZMQ_SOCKS_PROXY form.
std::string socks_proxy_of(const std::string& relay);
// The proxy `socket`'s later connect() calls go through; "": none (libzmq 4.3 takes only a null option for that).
void set_socks_proxy(zmq::socket_t& socket, const std::string& proxy);

}  // namespace zshare::peer
