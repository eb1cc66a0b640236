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

#include <chrono>
#include <iostream>
#include <iterator>

namespace zshare::broker {

namespace {

// What a STORE UNAVAILABLE reply asks the client to wait before resending.
constexpr std::uint64_t kStoreRetryAfterMs = 1000;

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
      started_seq(store.load(index) + 1),
      dispatcher(index, store, replies, stats, started_seq, options) {
  store.load_replies(reply_cache, [this](std::string id, std::string reply) { replies.put(std::move(id), std::move(reply)); });
}

Broker::Broker(BrokerOptions options)
    : options_(std::move(options)),
      store_(open_store(options_.db)),
      dispatcher_options_(dispatcher_options(
          options_, options_.probe_timeout.count() > 0
                        ? std::function<void(std::string_view, std::string_view)>(
                              [this](std::string_view user, std::string_view endpoint) {
                                prober_->probe(std::string(user), std::string(endpoint));
                              })
                        : nullptr)),
      throttle_(options_.rate_limit) {
  Event started = restore();
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
  start_event_.hold(std::move(started));
  if (options_.probe_timeout.count() > 0) prober_ = std::make_unique<ReachabilityProber>(options_.probe_timeout);
  if (options_.rpclog != "none") shipper_ = std::make_unique<LogShipper>(*store_, options_.rpclog, std::cerr);
}

Event Broker::restore() {
  state_.reset();  // the old index goes first: never two in memory
  auto state = std::make_unique<State>(*store_, stats_, options_.reply_cache, dispatcher_options_);
  // Every session ended (with the previous process, or with the outage): say so with the next seq, durably, before
  // serving anyone.
  store_->begin();
  try {
    store_->set_seq(state->started_seq);
    store_->commit();
  } catch (...) {
    store_->rollback();
    throw;
  }
  state_ = std::move(state);
  replies_since_prune_ = 0;
  outbox_deleted_through_ = 0;  // what the logger acknowledged is deleted again: a failed batch may have held it
  return broker_started_event(state_->started_seq, now_iso8601_utc(), state_->index.user_count(),
                              state_->index.file_count());
}

void Broker::lose_state(const StoreUnavailable& e) {
  // The index, the reply cache and the seq may hold the changes of the batch that did not commit, and nothing
  // tells which: all of memory goes, sessions included (as at a restart), and is rebuilt from the store.
  state_.reset();
  std::cerr << "zshare-broker: the store is out of reach (" << e.what()
            << "); answering STORE UNAVAILABLE until it is back" << std::endl;
}

void Broker::try_restore() {
  try {
    Event started = restore();
    std::cerr << "zshare-broker: the store is back; serving again (" << state_->index.user_count() << " users, "
              << state_->index.file_count() << " files; broker.started is seq " << state_->started_seq << ")"
              << std::endl;
    publish(started);
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
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}, {pub_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(200));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal: re-check `stop`
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) start_event_.on_subscriptions(pub_);
    if (items[0].revents & ZMQ_POLLIN) serve_batch();
    if (std::chrono::steady_clock::now() >= next_liveness_check_) {
      housekeep();
      next_liveness_check_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    }
  }
}

void Broker::housekeep() {
  // The periodic housekeeping batch: silent sessions, and outbox records the logger has stored.
  if (!state_) return try_restore();
  std::vector<Event> events;
  Dispatcher& dispatcher = state_->dispatcher;
  store_->begin();
  try {
    dispatcher.expire_silent_sessions(events);
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

Broker::Pending Broker::answer(std::vector<zmq::message_t>& frames, std::vector<Event>& events) {
  // Envelope: the frames up to and including the empty delimiter (REQ, or DEALER that sends one);
  // a DEALER without a delimiter has just its identity. Exactly one body frame must follow.
  Pending p;
  std::size_t body_at = 1;
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].size() == 0) {
      body_at = i + 1;
      break;
    }
  }
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
}

}  // namespace zshare::broker
