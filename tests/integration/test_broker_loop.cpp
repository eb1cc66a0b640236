// test_broker_loop.cpp: the Broker class in-process with real ZeroMQ sockets: replies after commit,
// events on PUB, framing errors answered, and a clean stop that leaves the database reopenable.
#include "broker/broker.hpp"

#include "common/codec.hpp"

#include <catch2/catch.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <unistd.h>

using namespace zshare;
using namespace zshare::broker;

namespace {

struct RunningBroker {
  RunningBroker() {
    char dir[] = "/tmp/zshare-loop-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    folder = dir;
    start();
  }
  void start() {
    BrokerOptions opts;
    opts.bind = "tcp://127.0.0.1:*";
    opts.events = "tcp://127.0.0.1:*";
    opts.db = folder + "/broker.db";
    opts.rpclog = "none";
    broker = std::make_unique<Broker>(opts);
    stop = false;
    thread = std::thread([this] { broker->run(stop); });
  }
  // Stops the loop and joins its thread: from here on the broker's state may be read from this thread.
  void stop_loop() {
    if (!thread.joinable()) return;
    stop = true;
    thread.join();
  }
  void halt() {
    stop_loop();
    broker.reset();
  }
  ~RunningBroker() {
    if (broker) halt();
    std::system(("rm -rf '" + folder + "'").c_str());
  }
  std::string folder;
  std::unique_ptr<Broker> broker;
  std::atomic<bool> stop{false};
  std::thread thread;
};

// Receives one message on `s` within `ms`, or fails the test.
std::vector<zmq::message_t> recv_within(zmq::socket_t& s, int ms) {
  zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(ms));
  REQUIRE((items[0].revents & ZMQ_POLLIN));
  std::vector<zmq::message_t> frames;
  REQUIRE(zmq::recv_multipart(s, std::back_inserter(frames)));
  return frames;
}

std::string request(const std::string& op, const std::string& user) {
  MapWriter w;
  w.put("v", std::uint64_t{1}).put("op", op).put("id", op + "-" + user).put("ts", "2026-11-22T00:00:00.000Z");
  w.put("user", user);
  return w.finish();
}

}  // namespace

TEST_CASE("REGISTER over REQ is answered and published as an event", "[broker]") {
  RunningBroker rb;
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "user.");
  sub.connect(rb.broker->events_endpoint());
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.connect(rb.broker->control_endpoint());

  // A SUB joins asynchronously: repeat a harmless registration until its event is seen.
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0; !seen && std::chrono::steady_clock::now() < deadline; ++i) {
    req.send(zmq::buffer(request("REGISTER", "user" + std::to_string(i))), zmq::send_flags::none);
    auto reply = recv_within(req, 2000);
    Message m = Message::decode(reply.back().data(), reply.back().size());
    REQUIRE(m.root().str("status", 64) == "OK");
    zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    if (items[0].revents & ZMQ_POLLIN) {
      auto ev = recv_within(sub, 100);
      REQUIRE(ev.size() == 2);
      CHECK(ev[0].to_string() == "user.registered");
      seen = true;
    }
  }
  CHECK(seen);
}

TEST_CASE("a DEALER sending two body frames gets BAD REQUEST, and the broker keeps serving", "[broker]") {
  RunningBroker rb;
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.connect(rb.broker->control_endpoint());
  const std::string a = request("REGISTER", "a"), b = request("REGISTER", "b"), c = request("REGISTER", "c");
  std::array<zmq::const_buffer, 3> frames = {zmq::str_buffer(""), zmq::buffer(a), zmq::buffer(b)};
  REQUIRE(zmq::send_multipart(dealer, frames));
  auto reply = recv_within(dealer, 2000);
  Message bad = Message::decode(reply.back().data(), reply.back().size());
  CHECK(bad.root().str("status", 64) == "BAD REQUEST");
  CHECK(bad.root().str("error", 200).find("one body frame") != std::string_view::npos);

  std::array<zmq::const_buffer, 2> good = {zmq::str_buffer(""), zmq::buffer(c)};
  REQUIRE(zmq::send_multipart(dealer, good));
  auto ok = recv_within(dealer, 2000);
  Message ok_reply = Message::decode(ok.back().data(), ok.back().size());
  INFO(ok_reply.root().opt_str("error", 500).value_or(""));
  CHECK(ok_reply.root().str("status", 64) == "OK");
}

TEST_CASE("after a stop the database reopens with every acknowledged user", "[broker]") {
  RunningBroker rb;
  {
    zmq::context_t ctx;
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(rb.broker->control_endpoint());
    for (int i = 0; i < 20; ++i) {
      req.send(zmq::buffer(request("REGISTER", "u" + std::to_string(i))), zmq::send_flags::none);
      auto reply = recv_within(req, 2000);
      REQUIRE(Message::decode(reply.back().data(), reply.back().size()).root().str("status", 64) == "OK");
    }
  }
  rb.stop_loop();  // (reading seq while the loop runs would race with it)
  const auto seq_before = rb.broker->seq();
  rb.halt();
  rb.start();
  CHECK(rb.broker->index().user_count() == 20);
  CHECK(rb.broker->seq() == seq_before);
}
