// broker_client.cpp: request building with MapWriter, reply checking with Message::decode and MapView.
// ts comes from zshare-timesvc through the TimeClient when one is set, else from the local clock (ts_local).
#include "peer/broker_client.hpp"

#include "common/codec.hpp"
#include "common/endpoint_list.hpp"
#include "common/protocol.hpp"
#include "common/timestamp.hpp"
#include "zshare/protocol_ops.hpp"

namespace zshare::peer {

bool BrokerReply::ok() const { return status == protocol::status::kOk; }

BrokerClient::BrokerClient(zmq::context_t& ctx, std::vector<std::string> brokers, std::chrono::milliseconds timeout,
                           curve::LinkSecurity security, int attempts)
    : security_(std::move(security)),
      pirate_(ctx, std::move(brokers), timeout, attempts,
              [this](zmq::socket_t& socket) { security_.dial_broker(socket); }),
      timeout_(timeout),
      ids_(RequestIds::random()) {}

std::vector<std::string> BrokerClient::failover_order() const {
  return rotated(pirate_.endpoints(), pirate_.current());
}

std::string BrokerClient::begin(MapWriter& request, std::string_view op) {
  std::string id = ids_.next();
  if (clock_) {
    const Stamp stamp = clock_->now();
    request.put("v", protocol::kVersion).put("op", op).put("id", id).put("ts", stamp.iso8601).put("ts_local", stamp.local);
  } else {
    request.put("v", protocol::kVersion).put("op", op).put("id", id).put("ts", now_iso8601_utc()).put("ts_local", true);
  }
  return id;
}

BrokerReply BrokerClient::call(const MapWriter& request, const std::string& id) {
  const std::string bytes = pirate_.request(request.finish());
  try {
    Message message = Message::decode(bytes.data(), bytes.size());
    MapView root = message.root();
    auto reply_id = root.opt_str("id", protocol::kMaxIdBytes);
    if (!reply_id || *reply_id != id) {
      throw BadReply("the broker answered request " + id + " with id " +
                     (reply_id ? "'" + std::string(*reply_id) + "'" : std::string("nil")));
    }
    BrokerReply reply;
    reply.status = std::string(root.str("status", 64));
    if (!reply.ok()) reply.error = std::string(root.opt_str("error", protocol::kMaxMessageBytes).value_or(""));
    // The bytes are a valid msgpack map (checked above), so nlohmann's reader only changes their form.
    reply.fields = nlohmann::json::from_msgpack(bytes);
    return reply;
  } catch (const BadRequest& e) {
    throw BadReply(std::string("the broker's reply could not be read: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw BadReply(std::string("the broker's reply could not be read: ") + e.what());
  }
}

BrokerReply BrokerClient::register_user(const std::string& user) {
  MapWriter w;
  auto id = begin(w, protocol::op::kRegister);
  w.put("user", user);
  return call(w, id);
}

BrokerReply BrokerClient::unregister_user(const std::string& user) {
  MapWriter w;
  auto id = begin(w, protocol::op::kUnregister);
  w.put("user", user);
  return call(w, id);
}

BrokerReply BrokerClient::connect(const std::string& user, const std::string& endpoint,
                                  std::optional<std::uint64_t> heartbeat_ms) {
  MapWriter w;
  auto id = begin(w, protocol::op::kConnect);
  w.put("user", user).put("endpoint", endpoint);
  if (heartbeat_ms) w.put("heartbeat_ms", *heartbeat_ms);
  return call(w, id);
}

BrokerReply BrokerClient::heartbeat(const std::string& user) {
  MapWriter w;
  auto id = begin(w, protocol::op::kHeartbeat);
  w.put("user", user);
  return call(w, id);
}

BrokerReply BrokerClient::dial(const std::string& user, std::uint16_t callback_port) {
  MapWriter w;
  auto id = begin(w, protocol::op::kDial);
  w.put("user", user);
  if (callback_port) w.put("callback_port", std::uint64_t{callback_port});
  return call(w, id);
}

BrokerReply BrokerClient::disconnect(const std::string& user) {
  MapWriter w;
  auto id = begin(w, protocol::op::kDisconnect);
  w.put("user", user);
  return call(w, id);
}

BrokerReply BrokerClient::publish(const PublishRequest& r) {
  MapWriter w;
  auto id = begin(w, protocol::op::kPublish);
  w.put("user", r.user)
      .put("name", r.name)
      .put("description", r.description)
      .put("size", r.size)
      .put("cid", r.cid)
      .put("chunk_size", r.chunk_size);
  return call(w, id);
}

BrokerReply BrokerClient::delete_file(const std::string& user, const std::string& name) {
  MapWriter w;
  auto id = begin(w, protocol::op::kDelete);
  w.put("user", user).put("name", name);
  return call(w, id);
}

BrokerReply BrokerClient::list_users() {
  MapWriter w;
  auto id = begin(w, protocol::op::kListUsers);
  return call(w, id);
}

BrokerReply BrokerClient::list_content(const std::string& user) {
  MapWriter w;
  auto id = begin(w, protocol::op::kListContent);
  w.put("user", user);
  return call(w, id);
}

BrokerReply BrokerClient::search(const SearchRequest& r) {
  MapWriter w;
  auto id = begin(w, protocol::op::kSearch);
  if (r.q) w.put("q", *r.q);
  if (r.cid) w.put("cid", *r.cid);
  if (r.limit) w.put("limit", *r.limit);
  if (r.cursor) w.put("cursor", *r.cursor);
  if (r.include_offline) w.put("include_offline", true);
  return call(w, id);
}

BrokerReply BrokerClient::lookup(const std::string& user, const std::string& name) {
  MapWriter w;
  auto id = begin(w, protocol::op::kLookup);
  w.put("user", user).put("name", name);
  return call(w, id);
}

}  // namespace zshare::peer
