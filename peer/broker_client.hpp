// broker_client.hpp: the broker's ops (schemas/catalogue.json) as typed calls over a Lazy Pirate REQ client.
// Every request carries v=1, op, a fresh id, ts and ts_local; a reply whose id differs is refused (BadReply).
#pragma once

#include "common/curve_keys.hpp"
#include "common/lazy_pirate.hpp"
#include "common/time_client.hpp"
#include "peer/request_ids.hpp"

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zshare {
class MapWriter;
}

namespace zshare::peer {

// The broker answered with bytes that are not a reply to our request (undecodable, wrong id, no status).
struct BadReply : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One decoded reply: its status, its error sentence (empty on OK) and all its fields as JSON.
struct BrokerReply {
  std::string status;
  std::string error;
  nlohmann::json fields = nlohmann::json::object();
  bool ok() const;
};

struct PublishRequest {
  std::string user;
  std::string name;
  std::string description;
  std::uint64_t size = 0;
  std::string cid;   // 64 lowercase hex digits
  std::uint64_t chunk_size = 0;
};

struct SearchRequest {
  std::optional<std::string> q;
  std::optional<std::string> cid;
  std::optional<std::uint64_t> limit;
  std::optional<std::uint64_t> cursor;
  bool include_offline = false;  // false: the broker returns files of connected owners only
};

class BrokerClient {
 public:
  // `timeout` is the deadline of one request at one broker, shared by `attempts` Lazy Pirate tries; with several
  // `brokers` (one network: one keypair) a request none of them answered fails over to the next, and the client
  // stays with the one that answered. `security` says how to reach a broker (its CurveZMQ key and ours) and is
  // lent to the seeder, downloads and heartbeats.
  BrokerClient(zmq::context_t& ctx, std::vector<std::string> brokers, std::chrono::milliseconds timeout,
               curve::LinkSecurity security, int attempts = 3);

  // Each throws BrokerUnreachable when no attempt was answered, BadReply when the answer is unreadable.
  BrokerReply register_user(const std::string& user);
  BrokerReply unregister_user(const std::string& user);
  // With heartbeat_ms, the peer promises HEARTBEATs at that interval and the broker expires it when silent.
  BrokerReply connect(const std::string& user, const std::string& endpoint,
                      std::optional<std::uint64_t> heartbeat_ms = std::nullopt);
  BrokerReply heartbeat(const std::string& user);
  BrokerReply disconnect(const std::string& user);
  BrokerReply publish(const PublishRequest& request);
  BrokerReply delete_file(const std::string& user, const std::string& name);
  BrokerReply list_users();
  BrokerReply list_content(const std::string& user);
  BrokerReply search(const SearchRequest& request);
  BrokerReply lookup(const std::string& user, const std::string& name);
  // Asks `user` (connected, behind NAT) to dial out to us: to `callback_port` on the address the broker sees us
  // at (0: none), or through the broker's relay (the reply's `relay` and `host`).
  BrokerReply dial(const std::string& user, std::uint16_t callback_port);

  // Stamps every later request with the time service's time (local and marked so while it is down).
  void set_clock(TimeClient* clock) { clock_ = clock; }

  const std::string& endpoint() const { return pirate_.endpoint(); }  // the broker in use
  const std::vector<std::string>& endpoints() const { return pirate_.endpoints(); }
  // Every broker of the list, the one in use first: where another client of this peer (its heartbeats) starts.
  std::vector<std::string> failover_order() const;
  std::chrono::milliseconds timeout() const { return timeout_; }
  const curve::LinkSecurity& security() const { return security_; }

 private:
  // Starts a request map with the header fields; returns the id it carries.
  std::string begin(MapWriter& request, std::string_view op);
  BrokerReply call(const MapWriter& request, const std::string& id);

  curve::LinkSecurity security_;
  LazyPirateClient pirate_;
  std::chrono::milliseconds timeout_;
  RequestIds ids_;
  TimeClient* clock_ = nullptr;
};

}  // namespace zshare::peer
