// start_event.hpp: broker.started, the event that says "this broker (re)started: every session has ended"
// (sessions live in memory only; where several brokers share a database, only this broker's sessions, each ended
// by its own peer.disconnected first: the body then names the broker and says scope "broker"),
// and how it reaches subscribers although a PUB drops what it sends while
// nobody is subscribed: it is held on the events XPUB until the first subscription arrives or another event is
// published, whichever comes first. Invariant: it goes out at most once and before every later event.
#pragma once

#include "broker/dispatcher.hpp"

#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>
#include <string_view>

namespace zshare::broker {

inline constexpr std::string_view kBrokerStartedTopic = "broker.started";

// The event's body: seq, ts, and how many registered users (all offline now) and files the broker restored; with
// `broker` (several brokers on one database), its name and scope "broker".
Event broker_started_event(std::uint64_t seq, std::string_view ts, std::size_t users, std::size_t files,
                           std::string_view broker = {});

// Sends one event on the events socket: topic frame, body frame.
void send_event(zmq::socket_t& pub, const Event& e);

// Holds the events of a start (broker.started, and before it, with several brokers, the events that ended this
// broker's previous sessions and those other brokers committed while it loaded), released together.
class HeldEvent {
 public:
  void hold(std::vector<Event> events) { held_ = std::move(events); }
  bool holding() const { return !held_.empty(); }

  // Reads what subscribers sent the XPUB ((un)subscriptions); a subscription releases the held event.
  void on_subscriptions(zmq::socket_t& xpub);
  // Sends the held events, if any: called before any other event is published.
  void release(zmq::socket_t& xpub);

 private:
  std::vector<Event> held_;
};

}  // namespace zshare::broker
