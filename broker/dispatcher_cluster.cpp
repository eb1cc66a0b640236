// dispatcher_cluster.cpp: the dispatcher's part where several brokers share one database (cluster.hpp): other
// brokers' events applied to this broker's memory exactly as their dispatchers applied them (the bodies carry whole
// records), and the sessions of brokers whose lease lapsed ended like any session.
#include "broker/dispatcher.hpp"

#include "common/protocol.hpp"
#include "common/timestamp.hpp"
#include "common/validate.hpp"

namespace zshare::broker {

namespace p = zshare::protocol;

namespace {

// What ends the sessions of a broker that is gone: the peer.disconnected reason and the log's args.
std::string lapsed_reason(const LapsedSession& s, const std::string& self) {
  return s.broker == self ? "broker restarted" : "broker " + s.broker + " stopped";
}

}  // namespace

void Dispatcher::apply(const StoredEvent& e) {
  try {
    DecodeLimits limits;
    limits.str = p::kMaxMessageBytes;
    limits.bin = p::kMaxMessageBytes;
    const Message msg = Message::decode(e.body.data(), e.body.size(), limits);
    const MapView body = msg.root();
    if (e.topic == "broker.started") {
      // Another broker started: its previous process's sessions ended with their own events before this one.
    } else if (e.topic == "user.registered") {
      const auto name = body.str("user", p::kMaxUserBytes);
      if (index_.find_user(name)) throw StoreError("user '" + std::string(name) + "' is registered already");
      index_.add_user(std::string(name), std::string(body.str("key", 64)));
    } else {
      const auto name = body.str("user", p::kMaxUserBytes);
      const auto user = index_.find_user(name);
      if (!user) throw StoreError("user '" + std::string(name) + "' is not registered");
      if (e.topic == "user.unregistered") {
        index_.remove_user(*user);
        end_session(*user);
      } else if (e.topic == "peer.connected") {
        end_session(*user);  // a session this broker held was replaced: its peer.disconnected came first
        index_.connect(*user, std::string(body.str("endpoint", p::kMaxEndpointBytes)));
        remote_.insert(*user);
      } else if (e.topic == "peer.disconnected") {
        index_.disconnect(*user);
        end_session(*user);
      } else if (e.topic == "file.published") {
        FileRecord f;
        f.user = *user;
        f.name = std::string(body.str("name", p::kMaxFileNameBytes));
        f.description = std::string(body.str("description", p::kMaxDescriptionBytes));
        f.size = body.uint("size");
        f.cid = parse_hash(body.str("cid", 64), "cid");
        f.chunk_size = static_cast<std::uint32_t>(body.uint("chunk_size"));
        if (index_.find_file(f.user, f.name)) throw StoreError("'" + f.name + "' is published already");
        index_.add_file(std::move(f));
      } else if (e.topic == "file.deleted") {
        const auto file = index_.find_file(*user, body.str("name", p::kMaxFileNameBytes));
        if (!file) throw StoreError("the deleted file is not published");
        index_.remove_file(*file);
      } else {
        throw StoreError("unknown topic");
      }
    }
  } catch (const StoreError& x) {
    throw StoreError("event " + std::to_string(e.seq) + " (" + e.topic + " by broker " + e.broker +
                     ") does not apply to this broker's index: " + x.what());
  } catch (const std::exception& x) {  // a body that does not decode
    throw StoreError("event " + std::to_string(e.seq) + " (" + e.topic + " by broker " + e.broker +
                     ") cannot be read: " + x.what());
  }
  seq_ = e.seq;
}

void Dispatcher::end_lapsed_sessions(bool own, std::vector<Event>& events) {
  if (!cluster_) return;
  const auto lapsed = cluster_->lapsed_sessions(own);
  if (lapsed.empty()) return;
  const std::string ts = now_iso8601_utc();
  for (const LapsedSession& s : lapsed) {
    const auto user = index_.find_user(s.user);
    if (user && index_.user(*user).connected) {
      const std::string reason = lapsed_reason(s, cluster_->name());
      close_session(*user, ts, true, reason, reason, events);
    } else {
      cluster_->delete_session(s.user);  // a row memory did not show as a session: nothing to announce
    }
  }
}

}  // namespace zshare::broker
