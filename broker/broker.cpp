// broker.cpp: the event loop, plain top to bottom: poll, drain up to max_batch requests, answer each in one
// transaction, commit, then send the replies and publish the events. A store error is fatal by design: nothing of
// the failed batch was acknowledged, and a restart rebuilds memory from the database. A store outage
// (StoreUnavailable) does the same without the restart: drop memory, answer STORE UNAVAILABLE, rebuild when back.
#include "broker/broker.hpp"

#include "broker/request_peek.hpp"
#include "common/curve_keys.hpp"
#include "common/protocol.hpp"
#include "common/relay_token.hpp"
#include "common/timestamp.hpp"

#include <zmq_addon.hpp>

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <iterator>

namespace zshare::broker {

namespace {

// What a STORE UNAVAILABLE reply asks the client to wait before resending.
constexpr std::uint64_t kStoreRetryAfterMs = 1000;

// Several brokers on one database: the lease is renewed (and lapsed ones looked for) this often at most, other
// brokers' events are read at least this often without a NOTIFY, this many at a time, and this many are kept for
// brokers that fall behind (one further behind reloads).
constexpr std::chrono::milliseconds kLeaseRenewal{1000};
constexpr std::chrono::milliseconds kFollowFloor{1000};
constexpr std::size_t kFollowBatch = 1000;
constexpr std::uint64_t kKeptEvents = 100000;

// The default --name: this host and the control port, unique among the brokers of a database unless two share both.
std::string default_name(const std::string& bind) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  const auto colon = bind.rfind(':');
  return std::string(*host ? host : "broker") + ":" + (colon == std::string::npos ? bind : bind.substr(colon + 1));
}

struct FellBehind : StoreUnavailable {
  FellBehind() : StoreUnavailable("this broker fell behind the events the database keeps; it reloads its index") {}
};

DispatcherOptions dispatcher_options(const BrokerOptions& o, std::function<void(std::string_view, std::string_view)> probe) {
  DispatcherOptions d;
  d.log_operations = o.rpclog != "none";
  d.heartbeat_misses = o.heartbeat_misses;
  d.heartbeat_rate = o.heartbeat_rate;
  d.max_files_per_user = o.max_files_per_user;
  d.probe = std::move(probe);
  if (!o.relay.empty()) {
    if (o.relay_secret_file.empty()) throw std::runtime_error("--relay needs --relay-secret-file (the relay's secret)");
    d.relay = o.relay;
    d.relay_secret = relay_token::load_secret(o.relay_secret_file);
  }
  return d;
}

}  // namespace

Broker::State::State(Store& store, BrokerStats& stats, std::size_t reply_cache, const DispatcherOptions& options)
    : replies(reply_cache),
      loaded_seq(store.load(index)),
      dispatcher(index, store, replies, stats, loaded_seq, options) {
  store.load_replies(reply_cache, [this](std::string id, std::string reply) { replies.put(std::move(id), std::move(reply)); });
}

Broker::Broker(BrokerOptions options)
    : options_(std::move(options)),
      store_(open_store(options_.db)),
      cluster_(store_->cluster()),
      dispatcher_options_(dispatcher_options(
          options_, options_.probe_timeout.count() > 0
                        ? std::function<void(std::string_view, std::string_view)>(
                              [this](std::string_view user, std::string_view endpoint) {
                                prober_->probe(std::string(user), std::string(endpoint));
                              })
                        : nullptr)),
      throttle_(options_.rate_limit) {
  if (cluster_) cluster_->set_name(options_.name.empty() ? default_name(options_.bind) : options_.name);
  std::vector<Event> started = restore();  // held for the first subscriber: nobody can be subscribed yet
  if (!options_.plaintext) {
    // Every client is admitted (anyone may register); the ZAP handler names each by its public key, and
    // the dispatcher lets only the key that registered a user change it.
    const curve::KeyPair keys = curve::read_secret_file(options_.key_file);
    public_key_ = keys.public_key;
    zap_ = std::make_unique<curve::ZapHandler>(ctx_);
    curve::make_server(router_, keys);
    curve::make_server(pub_, keys);
  }
  router_.set(zmq::sockopt::linger, 0);
  router_.set(zmq::sockopt::maxmsgsize, protocol::kSocketMaxMessageBytes);
  router_.set(zmq::sockopt::router_mandatory, true);
  router_.set(zmq::sockopt::sndhwm, 100000);
  router_.set(zmq::sockopt::rcvhwm, 100000);
  router_.bind(options_.bind);
  pub_.set(zmq::sockopt::linger, 0);
  pub_.set(zmq::sockopt::sndhwm, 100000);
  pub_.bind(options_.events);
  published_seq_ = started.back().seq;  // held for the first subscriber, and never published again
  start_event_.hold(std::move(started));
  if (options_.probe_timeout.count() > 0) prober_ = std::make_unique<ReachabilityProber>(options_.probe_timeout);
  if (options_.rpclog != "none") shipper_ = std::make_unique<LogShipper>(*store_, options_.rpclog, std::cerr);
}

std::vector<Event> Broker::restore() {
  state_.reset();  // the old index goes first: never two in memory
  // Several brokers: the lease first, so that nobody takes this broker's sessions-to-be for a dead one's.
  if (cluster_) cluster_->renew_lease(options_.lease);
  next_lease_ = std::chrono::steady_clock::now() + kLeaseRenewal;
  auto state = std::make_unique<State>(*store_, stats_, options_.reply_cache, dispatcher_options_);
  if (cluster_) {
    cluster_->renew_lease(options_.lease);  // and again once loaded: a long load may outlast the lease
    next_lease_ = std::chrono::steady_clock::now() + kLeaseRenewal;
  }
  // Every session ended (with the previous process, or with the outage): say so with the next seq, durably, before
  // serving anyone. Several brokers: this broker's sessions only, each with its own event, after the events other
  // brokers committed since the snapshot loaded.
  std::vector<Event> events;
  store_->begin();
  try {
    if (cluster_) {
      cluster_->lock_writes();
      if (!catch_up(*state, events, published_seq_)) throw FellBehind();
      catch_up_replies(*state);
      state->dispatcher.end_lapsed_sessions(true, events);
    }
    events.push_back(broker_started_event(state->dispatcher.seq() + 1, now_iso8601_utc(), state->index.user_count(),
                                          state->index.file_count(), cluster_ ? cluster_->name() : ""));
    state->dispatcher.add_event(events.back());
    store_->set_seq(state->dispatcher.seq());
    store_->commit();
  } catch (...) {
    store_->rollback();
    throw;
  }
  state->started_seq = state->dispatcher.seq();
  state_ = std::move(state);
  replies_since_prune_ = 0;
  outbox_deleted_through_ = 0;  // what the logger acknowledged is deleted again: a failed batch may have held it
  return events;
}

void Broker::lose_state(const std::exception& e) {
  // The index, the reply cache and the seq may hold the changes of the batch that did not commit, and nothing
  // tells which: all of memory goes, sessions included (as at a restart), and is rebuilt from the store.
  state_.reset();
  std::cerr << "zshare-broker: the store is out of reach (" << e.what()
            << "); answering STORE UNAVAILABLE until it is back" << std::endl;
}

void Broker::try_restore() {
  try {
    const std::vector<Event> events = restore();
    std::cerr << "zshare-broker: the store is back; serving again (" << state_->index.user_count() << " users, "
              << state_->index.file_count() << " files; broker.started is seq " << state_->started_seq << ")"
              << std::endl;
    for (const auto& e : events) publish(e);
  } catch (const StoreUnavailable&) {
    state_.reset();  // still out of reach: the next tick tries again
  }
}

std::string Broker::unavailable_reply(std::string_view request) const {
  MapWriter w = reply_header(peek_header(request).id, protocol::status::kStoreUnavailable);
  w.put("error", "the broker's database is out of reach; nothing was done: send the same request again in " +
                     std::to_string(kStoreRetryAfterMs) + " ms");
  w.put("retry_after_ms", kStoreRetryAfterMs);
  return w.finish();
}

void Broker::run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    // Several brokers: the database connection is polled too, for other brokers' NOTIFYs.
    const int notify_fd = cluster_ && state_ ? cluster_->notify_socket() : -1;
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {pub_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, notify_fd, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, notify_fd >= 0 ? 3 : 2, std::chrono::milliseconds(200));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal: re-check `stop`
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) start_event_.on_subscriptions(pub_);
    if (items[2].revents & ZMQ_POLLIN) take_notifications();
    if (items[0].revents & ZMQ_POLLIN) serve_batch();
    if (std::chrono::steady_clock::now() >= next_liveness_check_) {
      housekeep();
      next_liveness_check_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    }
  }
}

void Broker::housekeep() {
  // The periodic housekeeping batch: silent sessions, and outbox records the logger has stored. Several brokers:
  // other brokers' events at least every kFollowFloor, and every kLeaseRenewal the lease and the sessions of brokers
  // whose lease lapsed.
  if (!state_) return try_restore();
  const auto now = std::chrono::steady_clock::now();
  if (cluster_) take_notifications();  // also those that arrived while other statements ran (the socket is drained)
  if (!state_) return;
  if (cluster_ && now >= next_follow_) {
    next_follow_ = now + kFollowFloor;
    follow();
    if (!state_) return;
  }
  const bool lease_due = cluster_ && now >= next_lease_;
  if (lease_due) {
    next_lease_ = now + std::min(kLeaseRenewal, options_.lease / 3);
    try {
      cluster_->renew_lease(options_.lease);
    } catch (const StoreUnavailable& e) {
      return lose_state(e);
    }
  }
  std::vector<Event> events;
  Dispatcher& dispatcher = state_->dispatcher;
  store_->begin();
  try {
    // Several brokers: sessions are expired only under the lock, after the catch-up (a session may have moved to
    // another broker meanwhile), and only when the lock was taken for it: a deadline passing between the question
    // and the expiry must wait for the next tick, never be acted on with memory that did not catch up.
    const bool expire = !cluster_ || dispatcher.silent_sessions_due();
    if (cluster_ && (lease_due || expire)) {
      lock_for_writes();
      if (lease_due) keep_lease(events);
    }
    if (expire) dispatcher.expire_silent_sessions(events);
    if (prober_) {
      for (const auto& probed : prober_->take()) {
        dispatcher.record_reachability(probed.user, probed.endpoint, probed.reachable);
      }
    }
    if (!events.empty()) store_->set_seq(dispatcher.seq());
    if (shipper_ && shipper_->acked_through() > outbox_deleted_through_) {
      outbox_deleted_through_ = shipper_->acked_through();
      store_->delete_outbox_through(outbox_deleted_through_);
    }
    store_->commit();
  } catch (const StoreUnavailable& e) {
    store_->rollback();
    return lose_state(e);
  } catch (...) {
    store_->rollback();
    throw;
  }
  if (shipper_ && !events.empty()) shipper_->notify();
  for (const auto& e : events) publish(e);
}

bool Broker::catch_up(State& state, std::vector<Event>& out, std::uint64_t published) {
  // From the last event this broker published when that is older than its memory (a reload after an outage: the
  // events committed meanwhile are in the snapshot loaded, but its subscribers have not seen them), else from
  // memory's seq. Events memory holds already are only published.
  std::uint64_t next = (published && published < state.dispatcher.seq() ? published : state.dispatcher.seq()) + 1;
  for (;;) {
    std::size_t read = 0;
    bool gap = false;
    cluster_->events_after(next - 1, kFollowBatch, [&](const StoredEvent& e) {
      if (gap) return;
      if (e.seq != next) {
        if (e.seq > state.dispatcher.seq() + 1) {
          gap = true;  // memory misses events that were pruned: reload
          return;
        }
        next = e.seq;  // only events to publish again were pruned: subscribers see a gap in the seq
      }
      if (e.seq > state.dispatcher.seq()) state.dispatcher.apply(e);
      out.push_back(Event{e.topic, e.body, e.seq});
      ++next;
      ++read;
    });
    if (gap) return false;
    if (read < kFollowBatch) return true;
  }
}

void Broker::catch_up_replies(State& state) {
  cluster_->new_replies([&state](std::string id, std::string reply) {
    state.replies.put(std::move(id), std::move(reply));
  });
}

void Broker::lock_for_writes() {
  // A failure here fails the batch at commit (every held request is answered STORE UNAVAILABLE, memory reloads):
  // what it decides on memory that did not catch up is never acknowledged. The other brokers' replies come too: a
  // retry that moved here finds its reply in the cache.
  cluster_->lock_writes();
  std::vector<Event> applied;
  const bool caught_up = catch_up(*state_, applied);
  catch_up_replies(*state_);
  for (const auto& e : applied) publish(e);
  if (!caught_up) cluster_->fail_batch(FellBehind().what());
}

void Broker::follow() {
  std::vector<Event> applied;
  bool caught_up = true;
  try {
    caught_up = catch_up(*state_, applied);
  } catch (const StoreUnavailable&) {
    // What was applied stands (each event whole); the next write, or the lease, finds out whether the store is gone.
  }
  for (const auto& e : applied) publish(e);
  if (!caught_up) lose_state(FellBehind());
}

void Broker::take_notifications() {
  // What other brokers said: events committed (follow them), dial orders for the sessions this broker holds.
  std::vector<std::pair<std::string, Dial>> dials;
  if (cluster_->take_notifications(dials) && state_) follow();
  if (!state_) return;
  for (auto& [user, dial] : dials) state_->dispatcher.queue_dial(user, std::move(dial));
}

void Broker::keep_lease(std::vector<Event>& events) {
  state_->dispatcher.end_lapsed_sessions(false, events);
  if (state_->dispatcher.seq() > kKeptEvents) cluster_->prune_events(state_->dispatcher.seq() - kKeptEvents);
}

namespace {

// Envelope: the frames up to and including the empty delimiter (REQ, or DEALER that sends one); a DEALER without a
// delimiter has just its identity. Exactly one body frame must follow: this is where it is.
std::size_t body_index(const std::vector<zmq::message_t>& frames) {
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].size() == 0) return i + 1;
  }
  return 1;
}

// Whether the request names a mutation (its op read without serving it).
bool mutates(const std::vector<zmq::message_t>& frames) {
  const std::size_t at = body_index(frames);
  if (frames.size() != at + 1) return false;
  const auto op = peek_header(frames[at].to_string_view()).op;
  return op && is_mutation(*op);
}

}  // namespace

Broker::Pending Broker::answer(std::vector<zmq::message_t>& frames, std::vector<Event>& events) {
  Pending p;
  const std::size_t body_at = body_index(frames);
  const std::size_t bodies = frames.size() > body_at ? frames.size() - body_at : 0;
  if (throttle_.limiter().enabled()) {
    // Before anything else, malformed messages included.
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    const auto body = bodies == 1 ? frames[body_at].to_string_view() : std::string_view();
    // The bucket is the client's: its CurveZMQ key, which it keeps across connections (every Lazy Pirate retry
    // is a new one), so reconnecting buys no tokens. Over --plaintext there is no key: the connection's.
    const char* key = zap_ && frames.size() > 1 ? zmq_msg_gets(frames[1].handle(), "User-Id") : nullptr;
    const std::string_view client = key && *key ? std::string_view(key) : frames[0].to_string_view();
    if (auto refused = throttle_.refuse(client, body, now_us)) {
      ++stats_.requests;
      ++stats_.rate_limited;
      p.reply = std::move(*refused);
    }
  }
  for (std::size_t i = 0; i < body_at && i < frames.size(); ++i) p.envelope.push_back(std::move(frames[i]));
  if (!p.reply.empty()) return p;
  if (!state_) {
    ++stats_.requests;
    p.reply = unavailable_reply(bodies == 1 ? frames[body_at].to_string_view() : std::string_view());
    return p;
  }
  Dispatcher& dispatcher = state_->dispatcher;
  if (bodies != 1) {
    p.reply = dispatcher.bad_request("expected exactly one body frame after the envelope, got " +
                                      std::to_string(bodies));
    return p;
  }
  auto& body = frames[body_at];
  // The ZAP handler's User-Id: the sender's CurveZMQ public key, attached by libzmq to every frame it reads.
  const char* client_key = zap_ ? zmq_msg_gets(body.handle(), "User-Id") : "";
  if (zap_ && (!client_key || std::string_view(client_key).empty())) {  // cannot happen with ZAP bound first; never trust it
    p.reply = dispatcher.bad_request("the connection carries no CurveZMQ client key");
    return p;
  }
  const char* peer_address = zmq_msg_gets(body.handle(), "Peer-Address");  // for DIAL's callback_port
  p.reply = dispatcher.handle(std::string_view(static_cast<const char*>(body.data()), body.size()), events,
                               client_key, peer_address ? peer_address : "");
  return p;
}

void Broker::serve_batch() {
  // Replies to requests answered before the batch's first write go out at once: they saw only committed
  // state. From the first write on, replies wait for the commit, so nothing uncommitted is ever shown.
  std::vector<Pending> held;
  std::vector<Event> events;
  const std::uint64_t mutations_before = stats_.mutations;
  store_->begin();
  try {
    std::vector<zmq::message_t> frames;  // reused: its capacity outlives each request
    for (std::size_t n = 0; n < options_.max_batch; ++n) {
      frames.clear();
      if (!zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
      if (cluster_ && state_ && !store_->wrote() && mutates(frames)) lock_for_writes();
      Pending p = answer(frames, events);
      if (store_->wrote()) held.push_back(std::move(p));
      else send_reply(p);
    }
    if (!events.empty()) store_->set_seq(state_->dispatcher.seq());
    replies_since_prune_ += stats_.mutations - mutations_before;
    if (replies_since_prune_ > options_.reply_cache / 2 + 1) {
      store_->prune_replies(options_.reply_cache);
      replies_since_prune_ = 0;
    }
    store_->commit();
  } catch (const StoreUnavailable& e) {
    // Nothing of the batch is acknowledged: every held request learns so, under its own id; no event goes out.
    store_->rollback();
    lose_state(e);
    for (auto& p : held) {
      p.reply = unavailable_reply(p.reply);
      send_reply(p);
    }
    return;
  } catch (...) {
    store_->rollback();
    throw;
  }
  if (shipper_ && !events.empty()) shipper_->notify();  // every mutation has an event and a log record
  for (auto& p : held) send_reply(p);
  for (const auto& e : events) publish(e);
}

void Broker::send_reply(Pending& p) {
  try {
    for (auto& frame : p.envelope) {
      if (!router_.send(frame, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        ++stats_.dropped;
        return;
      }
    }
    if (!router_.send(zmq::buffer(p.reply), zmq::send_flags::dontwait)) ++stats_.dropped;
  } catch (const zmq::error_t& e) {
    if (e.num() != EHOSTUNREACH) throw;
    ++stats_.dropped;  // the client went away before its reply: nothing to deliver to
  }
}

void Broker::publish(const Event& e) {
  start_event_.release(pub_);  // broker.started, if still held, precedes every later event
  send_event(pub_, e);
  published_seq_ = e.seq;
}

}  // namespace zshare::broker
