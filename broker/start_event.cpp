// start_event.cpp: an XPUB passes each new subscription up as a message whose first byte is 1 (0 for an
// unsubscription); they are drained whenever the socket is readable, so they never pile up.
#include "broker/start_event.hpp"

#include "common/codec.hpp"

namespace zshare::broker {

Event broker_started_event(std::uint64_t seq, std::string_view ts, std::size_t users, std::size_t files,
                           std::string_view broker) {
  MapWriter w;
  w.put("seq", seq);
  w.put("ts", ts);
  w.put("users", static_cast<std::uint64_t>(users));
  w.put("files", static_cast<std::uint64_t>(files));
  if (!broker.empty()) w.put("broker", broker).put("scope", "broker");
  return Event{std::string(kBrokerStartedTopic), w.finish(), seq};
}

void send_event(zmq::socket_t& pub, const Event& e) {
  pub.send(zmq::buffer(e.topic), zmq::send_flags::sndmore);
  pub.send(zmq::buffer(e.body), zmq::send_flags::none);
}

void HeldEvent::on_subscriptions(zmq::socket_t& xpub) {
  bool subscribed = false;
  zmq::message_t m;
  while (xpub.recv(m, zmq::recv_flags::dontwait)) {
    if (m.size() > 0 && static_cast<const unsigned char*>(m.data())[0] == 1) subscribed = true;
  }
  if (subscribed) release(xpub);
}

void HeldEvent::release(zmq::socket_t& xpub) {
  for (const auto& e : held_) send_event(xpub, e);
  held_.clear();
}

}  // namespace zshare::broker
