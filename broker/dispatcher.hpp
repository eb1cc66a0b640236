// dispatcher.hpp: turns one request body into its reply and events: decoding, validation, the seeds'
// semantics, index and store updates. No sockets here, so unit tests and the fuzzer can drive it directly.
// Must be called inside an open Store transaction; the caller sends replies only after commit.
#pragma once

#include "broker/dial_queue.hpp"
#include "broker/file_index.hpp"
#include "broker/reply_cache.hpp"
#include "broker/session_liveness.hpp"
#include "broker/store.hpp"
#include "common/codec.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace zshare::broker {

// An event to publish once the transaction holding its change has committed.
struct Event {
  std::string topic;
  std::string body;  // msgpack map with seq, ts, user and the event's fields
  std::uint64_t seq = 0;  // the body's seq
};

struct BrokerStats {
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;
  std::uint64_t retries_answered = 0;
  std::uint64_t mutations = 0;  // mutation replies stored (for retried ids)
  std::uint64_t dropped = 0;
  std::uint64_t rate_limited = 0;  // answered RATE LIMITED (request_throttle.hpp), never dispatched
};

// The default heartbeat budget: heartbeats then take about 10 % of one core (README, "Many sessions").
inline constexpr double kDefaultHeartbeatRate = 3000;

struct DispatcherOptions {
  bool log_operations = true;        // every successful mutation also appends an operations-log record
  std::uint32_t heartbeat_misses = 3;  // a session silent this many asked intervals is disconnected
  // Heartbeats a second the broker budgets for all sessions together: it asks each session for its promised
  // interval or ceil(sessions / heartbeat_rate) seconds, whichever is longer (session_liveness.hpp).
  double heartbeat_rate = kDefaultHeartbeatRate;
  std::function<std::int64_t()> clock_ms;  // monotonic milliseconds; empty: std::chrono::steady_clock
  std::uint64_t max_files_per_user = 100000;  // PUBLISH beyond it: LIMIT EXCEEDED
  // Called at each CONNECT with the user and the endpoint it advertises (reachability_prober.hpp); empty: no
  // probes, every session's reachability stays unknown.
  std::function<void(std::string_view user, std::string_view endpoint)> probe;
  std::string relay;         // tcp://HOST:PORT of the relay peers use when neither side can dial the other; "": none
  std::string relay_secret;  // the 32 bytes shared with the relay: DIAL mints its tokens with them
  std::uint64_t relay_token_ttl_s = 600;   // a token pairs circuits until then (a transfer's retries included)
  std::function<std::uint64_t()> clock_s;  // Unix seconds for token expiry; empty: the system clock
};

class Dispatcher {
 public:
  Dispatcher(FileIndex& index, Store& store, ReplyCache& replies, BrokerStats& stats, std::uint64_t seq,
             DispatcherOptions options);

  // `client_key` is the sender's CurveZMQ public key (Z85, the ZAP User-Id); empty under --plaintext.
  // `peer_address` is the IP address the request came from (ZeroMQ's Peer-Address), for DIAL's callback_port.
  std::string handle(std::string_view body, std::vector<Event>& events, std::string_view client_key = {},
                     std::string_view peer_address = {});

  // A BAD REQUEST reply for a message that never reached handle() (wrong framing); counted.
  std::string bad_request(std::string_view sentence);

  // Disconnects the sessions whose heartbeats stopped (Paranoid Pirate); inside a store batch like handle().
  std::size_t expire_silent_sessions(std::vector<Event>& events);
  // Whether expire_silent_sessions() has sessions to end now (cheap until the earliest deadline).
  bool silent_sessions_due() { return !liveness_.expired(now_ms()).empty(); }

  // A probe's answer: `user`'s session advertising `endpoint` can (not) be reached from the broker. Recorded only
  // while that session is still the one probed. No event: events are the index's changes, each one logged, and a
  // session's reachability is neither (SEARCH, LOOKUP and LIST_USERS show it).
  void record_reachability(std::string_view user, std::string_view endpoint, bool reachable);

  std::uint64_t seq() const { return seq_; }
  // An event made outside the dispatcher (broker.started) takes the next seq, and its row where brokers share the
  // database; `e.body` already carries that seq (seq() + 1).
  void add_event(const Event& e);

  // ---- several brokers on one database (cluster.hpp; dispatcher_cluster.cpp) ----
  // Another broker's committed event, applied to memory as that broker applied it (the seq follows it). A body
  // that cannot be applied is a StoreError: memory could no longer be trusted to match the database.
  void apply(const StoredEvent& e);
  // Inside a locked batch: ends the sessions whose broker's lease lapsed (and with `own`, this broker's previous
  // process's), each as any session end (a log record and a peer.disconnected naming the broker).
  void end_lapsed_sessions(bool own, std::vector<Event>& events);
  // A dial order another broker received for `user`: queued when this broker holds the session, else dropped.
  void queue_dial(std::string_view user, Dial dial);
  // Sessions of other brokers: connected in the index, their heartbeats and dial orders handled elsewhere.
  bool held_elsewhere(UserId user) const { return remote_.count(user) != 0; }

 private:
  struct Request {
    MapView fields;
    std::string_view id;
    std::string_view ts;
    bool ts_local;
    std::string_view client_key;
    std::string_view peer_address;
  };
  using Handler = std::string (Dispatcher::*)(const Request&, std::vector<Event>&);
  struct Op {
    std::string_view name;
    Handler handler;
  };
  static const Op* find_op(std::string_view name);

  std::string on_register(const Request& r, std::vector<Event>& events);
  std::string on_unregister(const Request& r, std::vector<Event>& events);
  std::string on_connect(const Request& r, std::vector<Event>& events);
  std::string on_disconnect(const Request& r, std::vector<Event>& events);
  std::string on_publish(const Request& r, std::vector<Event>& events);
  std::string on_delete(const Request& r, std::vector<Event>& events);
  std::string on_list_users(const Request& r, std::vector<Event>& events);
  std::string on_list_content(const Request& r, std::vector<Event>& events);
  std::string on_search(const Request& r, std::vector<Event>& events);
  std::string on_lookup(const Request& r, std::vector<Event>& events);
  std::string on_stats(const Request& r, std::vector<Event>& events);
  std::string on_snapshot(const Request& r, std::vector<Event>& events);
  std::string on_heartbeat(const Request& r, std::vector<Event>& events);
  std::string on_dial(const Request& r, std::vector<Event>& events);
  std::string callback_of(const Request& r) const;
  void end_session(UserId user);  // forgets its liveness and its waiting dials
  // Ends `user`'s session (DISCONNECT, a heartbeat timeout, a replacing CONNECT): the index and end_session(), one
  // log record (DISCONNECT with `log_args`) and one peer.disconnected event saying `reason`, both stamped `ts`.
  void close_session(UserId user, std::string_view ts, bool ts_local, std::string_view reason,
                     std::string_view log_args, std::vector<Event>& events);

  // Who may act on a user: anyone (reads), or only the key that registered it (every change to it).
  enum class Access { kAnyone, kOwner };
  // The user a request names, which must exist, be accessible, and (when `connected`) have a session.
  UserId existing_user(std::string_view name, bool connected, std::string& failure, const Request& r,
                       Access access = Access::kAnyone);
  void file_map(FileId id, bool with_owner, MapWriter& w) const;  // a file's fields (and its owner's) into w
  // An array of file maps under `key` in reply, built in place.
  MapWriter& put_files(MapWriter& reply, std::string_view key, const std::vector<FileId>& files, bool with_owner) const;
  MapWriter event(const Request& r, std::string_view user) { return event_at(r.ts, user); }
  MapWriter event_at(std::string_view ts, std::string_view user);
  std::int64_t now_ms() const;
  void emit(std::vector<Event>& events, std::string_view topic, MapWriter& body);
  void log(const Request& r, std::string_view op, std::string_view user, std::string_view args) {
    log_at(r.ts, r.ts_local, op, user, args);
  }
  void log_at(std::string_view ts, bool ts_local, std::string_view op, std::string_view user, std::string_view args);

  FileIndex& index_;
  Store& store_;
  ReplyCache& replies_;
  BrokerStats& stats_;
  std::uint64_t seq_;
  DispatcherOptions options_;
  SessionLiveness liveness_;
  DialQueue dials_;
  Cluster* cluster_;                   // null: this broker is its database's only one
  std::unordered_set<UserId> remote_;  // sessions held by other brokers (cluster_ only)
};

// Whether an op is a mutation (catalogue.json): its reply is kept for retried ids, its change logged.
bool is_mutation(std::string_view op);

// The `reachable` field of a user in replies: true/false once probed, absent while unknown.
void put_reachable(MapWriter& w, Reachability r);

// A reply map's header: v, id (nil when unknown) and status; add `error` for failures.
MapWriter reply_header(std::string_view id, std::string_view status);
std::string failure_reply(std::string_view id, std::string_view status, std::string_view sentence);

}  // namespace zshare::broker
