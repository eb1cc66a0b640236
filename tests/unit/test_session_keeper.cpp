// test_session_keeper.cpp: the peer's session keeper follows the heartbeat interval the broker asks for: a stand-in
// broker (a plaintext ROUTER on loopback) answers its heartbeats with chosen `heartbeat_ms` values, and the test
// watches the keeper's pace and the gaps between its heartbeats. Given two brokers, the first one dead, it moves on
// to the second and stays there. Every wait has a deadline.
#include "peer/session_keeper.hpp"

#include "common/codec.hpp"
#include "common/protocol.hpp"

#include "loopback.hpp"

#include <catch2/catch.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <optional>
#include <sstream>
#include <thread>

using namespace zshare;
using namespace zshare::peer;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// The broker's side of the keeper's REQ socket: receives its HEARTBEATs and answers each as told.
class StandInBroker {
 public:
  explicit StandInBroker(zmq::context_t& ctx) : router_(ctx, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
  }
  std::string endpoint() const { return router_.get(zmq::sockopt::last_endpoint); }

  // Waits up to `deadline` for the next request; true when one came (a HEARTBEAT is checked).
  bool receive(std::chrono::milliseconds deadline) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, deadline) == 0) return false;
    frames_.clear();
    REQUIRE(zmq::recv_multipart(router_, std::back_inserter(frames_)));
    REQUIRE(frames_.size() == 3);  // identity, empty delimiter, body
    Message msg = Message::decode(frames_[2].data(), frames_[2].size());
    CHECK(msg.root().str("op", 32) == "HEARTBEAT");
    id_ = std::string(msg.root().str("id", 64));
    received_at_ = Clock::now();
    return true;
  }

  // Answers the request received last with OK, asking for `heartbeat_ms` when given; returns when it was sent.
  Clock::time_point answer(std::optional<std::uint64_t> heartbeat_ms) {
    MapWriter w;
    w.put("v", protocol::kVersion).put("id", id_).put("status", "OK");
    if (heartbeat_ms) w.put("heartbeat_ms", *heartbeat_ms);
    router_.send(frames_[0], zmq::send_flags::sndmore);
    router_.send(zmq::message_t(), zmq::send_flags::sndmore);
    router_.send(zmq::buffer(w.finish()));
    return Clock::now();
  }

  Clock::time_point received_at() const { return received_at_; }

 private:
  zmq::socket_t router_;
  std::vector<zmq::message_t> frames_;
  std::string id_;
  Clock::time_point received_at_;
};

SessionKeeperOptions keeper_options(const std::string& broker, std::chrono::milliseconds promised,
                                    std::chrono::milliseconds asked = 0ms) {
  SessionKeeperOptions o;
  o.brokers = {broker};
  o.user = "alice";
  o.endpoint = "tcp://127.0.0.1:1";
  o.interval = promised;
  o.security.plaintext = true;
  o.asked = asked;
  return o;
}

// Waits up to two seconds for the keeper's pace to become `want`.
bool pace_becomes(const SessionKeeper& keeper, std::chrono::milliseconds want) {
  const auto deadline = Clock::now() + 2s;
  while (keeper.pace() != want && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  return keeper.pace() == want;
}

}  // namespace

TEST_CASE("asked_interval reads a reply's heartbeat_ms within the protocol's range, else keeps the given one",
          "[peer][heartbeat]") {
  CHECK(asked_interval(nlohmann::json{{"heartbeat_ms", 2500}}, 1000ms) == 2500ms);
  CHECK(asked_interval(nlohmann::json::object(), 1000ms) == 1000ms);             // an older broker asks nothing
  CHECK(asked_interval(nlohmann::json{{"heartbeat_ms", "soon"}}, 1000ms) == 1000ms);
  CHECK(asked_interval(nlohmann::json{{"heartbeat_ms", 5}}, 1000ms) == 100ms);  // never faster than 100 ms
  CHECK(asked_interval(nlohmann::json{{"heartbeat_ms", 1000000000000ULL}}, 1000ms) == 3600000ms);  // nor an hour
}

TEST_CASE("the session keeper heartbeats at the interval the broker's replies ask for, and keeps it when a reply "
          "asks nothing", "[peer][heartbeat]") {
  zmq::context_t ctx;
  StandInBroker broker(ctx);
  ContentCatalog catalog;
  std::ostringstream report;

  SECTION("the CONNECT reply's ask is the first pace") {
    SessionKeeper keeper(ctx, keeper_options(broker.endpoint(), 100ms, 300ms), catalog, report);
    CHECK(keeper.pace() == 300ms);
  }

  SECTION("each heartbeat reply sets the pace") {
    SessionKeeper keeper(ctx, keeper_options(broker.endpoint(), 100ms), catalog, report);
    CHECK(keeper.pace() == 100ms);  // its own promise until the broker asks
    REQUIRE(broker.receive(5000ms));
    auto answered = broker.answer(700);  // slower, please
    REQUIRE(pace_becomes(keeper, 700ms));
    REQUIRE(broker.receive(5000ms));
    CHECK(broker.received_at() - answered >= 700ms);  // a wait cannot end early: the gap is at least the ask

    answered = broker.answer(std::nullopt);  // a reply without heartbeat_ms: the pace stays
    REQUIRE(broker.receive(5000ms));
    CHECK(broker.received_at() - answered >= 700ms);
    CHECK(keeper.pace() == 700ms);

    broker.answer(200);  // faster again (sessions left the broker)
    REQUIRE(pace_becomes(keeper, 200ms));
    REQUIRE(broker.receive(5000ms));
    broker.answer(200);  // the keeper is waiting, not asking, when it is stopped
  }
  CHECK(report.str().find("unreachable") == std::string::npos);
}

TEST_CASE("a keeper whose broker does not answer moves on to the next broker of the list and stays there",
          "[peer][heartbeat][failover]") {
  zmq::context_t ctx;
  StandInBroker second(ctx);
  ContentCatalog catalog;
  std::ostringstream report;  // read once the keeper's thread is joined
  const std::string first = zshare::test::dead_endpoint(ctx);
  {
    SessionKeeperOptions options = keeper_options(first, 100ms);
    options.brokers = {first, second.endpoint()};
    SessionKeeper keeper(ctx, options, catalog, report);
    REQUIRE(second.receive(5000ms));  // after one unanswered try at the first (1 s)
    const auto answered = second.answer(std::nullopt);
    REQUIRE(second.receive(5000ms));
    CHECK(second.received_at() - answered < 1000ms);  // straight to the second: no try at the first on the way
    second.answer(3000);  // the keeper is waiting, not asking, when it is stopped
  }
  CHECK_THAT(report.str(), Catch::Contains("the broker at " + first + " stopped answering; moved to " +
                                           second.endpoint()));
}
