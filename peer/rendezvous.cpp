// rendezvous.cpp: reading dial orders and choosing the seeder's way out.
#include "peer/rendezvous.hpp"

#include "common/port_probe.hpp"
#include "common/relay_token.hpp"
#include "common/validate.hpp"

namespace zshare::peer {

namespace {

bool plausible_endpoint(const std::string& e) {
  try {
    check_endpoint(e);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::vector<DialOrder> dial_orders(const nlohmann::json& reply) {
  std::vector<DialOrder> orders;
  const auto it = reply.find("dials");
  if (it == reply.end() || !it->is_array()) return orders;
  for (const auto& d : *it) {
    if (!d.is_object()) continue;
    DialOrder o;
    if (d.contains("callback") && d["callback"].is_string()) o.callback = d["callback"].get<std::string>();
    if (d.contains("relay") && d["relay"].is_string()) o.relay = d["relay"].get<std::string>();
    if (d.contains("host") && d["host"].is_string()) o.host = d["host"].get<std::string>();
    if (!o.callback.empty() && !plausible_endpoint(o.callback)) o.callback.clear();
    if (!o.relay.empty() && (!plausible_endpoint(o.relay) || o.host.empty() || o.host.size() > 255 ||
                             o.host.find_first_of(":/ ") != std::string::npos)) {
      o.relay.clear();
    }
    if (!o.callback.empty() || !o.relay.empty()) orders.push_back(std::move(o));
  }
  return orders;
}

std::optional<DialOut> choose_path(const DialOrder& order, std::chrono::milliseconds probe) {
  if (!order.callback.empty() && tcp_port_open(order.callback, probe).value_or(false)) {
    return DialOut{order.callback, ""};
  }
  if (!order.relay.empty()) return DialOut{relay_endpoint_for(order.host), socks_proxy_of(order.relay)};
  return std::nullopt;
}

std::string relay_endpoint_for(const std::string& host) {
  return "tcp://" + host + ":" + std::to_string(relay_token::kTokenPort);
}

std::string socks_proxy_of(const std::string& relay) {
  const std::string scheme = "tcp://";
  return relay.rfind(scheme, 0) == 0 ? relay.substr(scheme.size()) : relay;
}

}  // namespace zshare::peer

namespace zshare::peer {

void set_socks_proxy(zmq::socket_t& socket, const std::string& proxy) {
  const int rc = proxy.empty() ? zmq_setsockopt(socket.handle(), ZMQ_SOCKS_PROXY, nullptr, 0)
                               : zmq_setsockopt(socket.handle(), ZMQ_SOCKS_PROXY, proxy.data(), proxy.size());
  if (rc != 0) throw zmq::error_t();
}

}  // namespace zshare::peer
