// broker.hpp: the zshare-broker daemon as a class: a ROUTER for requests, a PUB for events, an event loop
// with group commit (one store transaction per batch of requests in hand, replies only after commit).
// Tests drive it in-process; main.cpp only parses options and handles signals. Each start consumes one event seq
// for broker.started (start_event.hpp), committed before the first request is served.
// A store outage (PostgreSQL out of reach: StoreUnavailable) is survived, not fatal: the batch that met it is
// answered STORE UNAVAILABLE, memory (index, reply cache, sessions) is dropped since it may hold that batch's
// changes, every request is answered STORE UNAVAILABLE until the store is back, and then memory is rebuilt from
// it exactly as at a start, with a new broker.started.
// Several brokers on one PostgreSQL database (cluster.hpp) serve one network: a batch takes the database-wide write
// lock before its first mutation and first catches up with the events other brokers committed; between batches the
// broker follows them (woken by NOTIFY, and at least every second), applying them to its memory and publishing
// them, so every broker's PUB carries one stream in seq order. It renews its lease every second, and ends the
// sessions of brokers whose lease lapsed.
#pragma once

#include "broker/dispatcher.hpp"
#include "broker/file_index.hpp"
#include "broker/log_shipper.hpp"
#include "broker/reachability_prober.hpp"
#include "broker/reply_cache.hpp"
#include "broker/request_throttle.hpp"
#include "broker/start_event.hpp"
#include "broker/store.hpp"
#include "common/zap_handler.hpp"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <cstddef>
#include <string>
#include <vector>

namespace zshare::broker {

struct BrokerOptions {
  std::string bind = "tcp://127.0.0.1:5555";
  std::string events = "tcp://127.0.0.1:5556";
  std::string db = "zshare-broker.db";  // a SQLite file, or a postgresql:// URI (store.hpp)
  std::size_t max_batch = 512;        // requests committed together at most
  std::size_t reply_cache = 100000;   // replies of mutations kept for retried request ids
  std::string rpclog = "127.0.0.1:5557";  // the operations logger, HOST:PORT; "none": no operations log
  std::uint32_t heartbeat_misses = 3;     // sessions silent this many asked intervals are disconnected
  double heartbeat_rate = kDefaultHeartbeatRate;  // heartbeats a second budgeted for all sessions together
  std::string key_file = "zshare-broker.key";  // the broker's CurveZMQ keypair (zshare-broker keygen)
  bool plaintext = false;                 // no CurveZMQ: a trusted lab network only
  RateLimit rate_limit;                   // requests per client identity (token bucket); rate 0: unlimited
  std::uint64_t max_files_per_user = 100000;
  // Each CONNECT's advertised endpoint is tried from here (a TCP connect, this long at most): SEARCH, LOOKUP and
  // LIST_USERS then say `reachable`. 0: no probes (every session's reachability stays unknown).
  std::chrono::milliseconds probe_timeout{2000};
  std::string relay;              // tcp://HOST:PORT of the zshare-relay peers use; "": no relayed links
  std::string relay_secret_file;  // the secret shared with that relay (zshare-relay secret FILE)
  // Several brokers on one database: this one's name among them (sessions are held under it; a restart under the
  // same name ends its previous sessions at once), and its lease: its sessions end this long after it stops renewing.
  std::string name;  // "": <hostname>:<port of bind>
  std::chrono::milliseconds lease{5000};
};

class Broker {
 public:
  explicit Broker(BrokerOptions options);

  // Serves until `stop` becomes true (checked at least every 200 ms and after each batch).
  void run(const std::atomic<bool>& stop);

  std::string control_endpoint() const { return router_.get(zmq::sockopt::last_endpoint); }
  std::string events_endpoint() const { return pub_.get(zmq::sockopt::last_endpoint); }
  // While serving() only: during a store outage there is no index.
  const FileIndex& index() const { return state_->index; }
  std::uint64_t seq() const { return state_->dispatcher.seq(); }
  bool serving() const { return state_ != nullptr; }
  const Store& store() const { return *store_; }
  const std::string& public_key() const { return public_key_; }  // empty under plaintext

 private:
  struct Pending {
    std::vector<zmq::message_t> envelope;
    std::string reply;
  };
  // What memory holds of the store, built from it at start and again after an outage.
  struct State {
    State(Store& store, BrokerStats& stats, std::size_t reply_cache, const DispatcherOptions& options);
    FileIndex index;
    ReplyCache replies;
    std::uint64_t loaded_seq;      // the seq of the snapshot loaded
    std::uint64_t started_seq = 0;  // broker.started's seq (restore)
    Dispatcher dispatcher;
  };
  // Builds the State and commits broker.started's seq; returns the events of that, broker.started last.
  std::vector<Event> restore();
  void lose_state(const std::exception& why);
  void try_restore();  // during an outage, at each housekeeping tick (the store's backoff spaces real attempts)
  std::string unavailable_reply(std::string_view request) const;
  void serve_batch();
  void housekeep();  // silent sessions, shipped outbox records, the lease
  // Several brokers: other brokers' events after `state`'s seq, applied and appended to `out`; false when this
  // broker fell behind the events kept (then it must reload).
  bool catch_up(State& state, std::vector<Event>& out, std::uint64_t published = 0);
  void catch_up_replies(State& state);  // under the lock: the replies stored since, every broker's, into the cache
  void lock_for_writes();  // the batch's write lock, then catch_up, publishing what it applied
  void follow();           // between batches: catch_up outside the lock, publishing what it applied
  void take_notifications();  // other brokers' NOTIFYs: events to follow, dial orders to queue
  void keep_lease(std::vector<Event>& events);  // inside a locked batch: renewal done, lapsed sessions ended
  Pending answer(std::vector<zmq::message_t>& frames, std::vector<Event>& events);
  void send_reply(Pending& p);
  void publish(const Event& e);

  BrokerOptions options_;
  std::unique_ptr<Store> store_;
  Cluster* cluster_;  // null: this broker is its database's only one
  std::chrono::steady_clock::time_point next_lease_{};
  std::chrono::steady_clock::time_point next_follow_{};
  BrokerStats stats_;
  DispatcherOptions dispatcher_options_;
  std::unique_ptr<State> state_;  // null during a store outage
  RequestThrottle throttle_;
  std::unique_ptr<LogShipper> shipper_;
  std::unique_ptr<ReachabilityProber> prober_;
  HeldEvent start_event_;
  std::size_t replies_since_prune_ = 0;
  std::uint64_t published_seq_ = 0;  // the seq of the last event published (kept across a reload)
  std::uint64_t outbox_deleted_through_ = 0;
  std::chrono::steady_clock::time_point next_liveness_check_ = std::chrono::steady_clock::now();
  zmq::context_t ctx_{1};
  std::unique_ptr<curve::ZapHandler> zap_;  // after ctx_ and before the sockets: it outlives their handshakes
  std::string public_key_;
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  zmq::socket_t pub_{ctx_, zmq::socket_type::xpub};  // a PUB that also hears subscriptions (start_event.hpp)
};

}  // namespace zshare::broker
