// test_event_failover.cpp: zshare-events' stream given two brokers, over real loopback sockets: broker A is dead
// (nothing listens), broker B is a stand-in (a ROUTER that answers every request OK and a PUB that keeps
// publishing). After its silence the stream asks A, fails over to B, and prints B's events; with one broker it
// never asks anything. Every wait has a deadline.
#include "tools/events/event_stream.hpp"

#include "common/codec.hpp"
#include "common/protocol.hpp"

#include "loopback.hpp"

#include <catch2/catch.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace zshare;
using namespace zshare::tools;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using zshare::test::dead_endpoint;

namespace {

// Broker B: its control ROUTER answers every request OK (recording the ops asked), its PUB publishes a
// user.registered event every 20 ms, both from one thread, until stopped or 10 s passed.
class StandbyBroker {
 public:
  explicit StandbyBroker(zmq::context_t& ctx)
      : router_(ctx, zmq::socket_type::router), pub_(ctx, zmq::socket_type::pub) {
    for (auto* s : {&router_, &pub_}) {
      s->set(zmq::sockopt::linger, 0);
      s->bind("tcp://127.0.0.1:*");
    }
    control = router_.get(zmq::sockopt::last_endpoint);
    events = pub_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~StandbyBroker() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::string control, events;
  std::vector<std::string> ops;  // read after finish()

 private:
  void serve() {
    const auto deadline = Clock::now() + 10s;
    for (std::uint64_t seq = 1; !stop_ && Clock::now() < deadline; ++seq) {
      zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, 20ms);
      if (items[0].revents & ZMQ_POLLIN) answer();
      const std::string body = MapWriter().put("seq", seq).put("user", "bea").finish();
      pub_.send(zmq::str_buffer("user.registered"), zmq::send_flags::sndmore);
      pub_.send(zmq::buffer(body), zmq::send_flags::none);
    }
  }
  void answer() {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(router_, std::back_inserter(frames)) || frames.size() != 3) return;
    Message request = Message::decode(frames[2].data(), frames[2].size());
    ops.emplace_back(request.root().str("op", 32));
    const std::string reply = MapWriter()
                                  .put("v", protocol::kVersion)
                                  .put("id", request.root().str("id", 64))
                                  .put("status", "OK")
                                  .put("seq", std::uint64_t{0})
                                  .finish();
    router_.send(frames[0], zmq::send_flags::sndmore);
    router_.send(zmq::message_t(), zmq::send_flags::sndmore);
    router_.send(zmq::buffer(reply), zmq::send_flags::none);
  }

  zmq::socket_t router_, pub_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

EventStreamOptions plaintext_options(std::vector<std::string> events, std::vector<std::string> brokers) {
  EventStreamOptions o;
  o.events = std::move(events);
  o.brokers = std::move(brokers);
  o.broker_timeout = 300ms;
  o.probe_after = 100ms;
  o.security.plaintext = true;
  return o;
}

// The first event within `limit`, asking in slices as zshare-events does.
std::optional<StreamEvent> first_event(EventStream& stream, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (auto e = stream.next(100ms)) return e;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("with broker A dead, the event stream asks, fails over to broker B and prints B's events",
          "[events][failover]") {
  zmq::context_t ctx;
  StandbyBroker b(ctx);
  const std::string dead_events = dead_endpoint(ctx), dead_control = dead_endpoint(ctx);
  EventStream stream(ctx, plaintext_options({dead_events, b.events}, {dead_control, b.control}));
  std::vector<std::pair<std::string, std::string>> moves;
  stream.on_failover = [&moves](const std::string& from, const std::string& to) { moves.emplace_back(from, to); };
  CHECK(stream.events_endpoint() == dead_events);

  const auto e = first_event(stream, 5000ms);
  REQUIRE(e);
  CHECK(e->topic == "user.registered");
  CHECK(stream.events_endpoint() == b.events);
  REQUIRE(moves.size() == 1);
  CHECK(moves[0] == std::make_pair(dead_events, b.events));
  b.finish();
  REQUIRE_FALSE(b.ops.empty());
  CHECK(b.ops[0] == "STATS");  // the probe that told B alive, after A's tries went unanswered
}

TEST_CASE("with one broker the event stream never asks it anything, however long the silence", "[events][failover]") {
  zmq::context_t ctx;
  StandbyBroker quiet(ctx);  // its events go unheard: the stream subscribes to a dead endpoint
  EventStream stream(ctx, plaintext_options({dead_endpoint(ctx)}, {quiet.control}));
  const auto start = Clock::now();
  CHECK_FALSE(first_event(stream, 600ms));  // six times probe_after
  CHECK(Clock::now() - start >= 600ms);
  quiet.finish();
  CHECK(quiet.ops.empty());
}

TEST_CASE("several events endpoints need one broker each, in the same order", "[events][failover]") {
  CHECK_THROWS_AS(check_failover_lists(plaintext_options({"tcp://a:1", "tcp://b:1"}, {"tcp://a:2"})),
                  std::invalid_argument);
  CHECK_NOTHROW(check_failover_lists(plaintext_options({"tcp://a:1", "tcp://b:1"}, {"tcp://a:2", "tcp://b:2"})));
  CHECK_NOTHROW(check_failover_lists(plaintext_options({"tcp://a:1"}, {"tcp://a:2", "tcp://b:2"})));
}
