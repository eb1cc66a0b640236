// test_lazy_pirate.cpp: the Lazy Pirate client against a scripted ROUTER in a thread: RATE LIMITED is waited
// out (retry_after_ms) and the same bytes are resent on the same socket; a wait past the deadline is not taken.
// Failover over real sockets: a broker that hears but never answers, or one nobody runs, is left for the next
// of the list after its tries, with the same bytes (same request id); the client stays with the one that answered.
#include "common/codec.hpp"
#include "common/lazy_pirate.hpp"
#include "common/protocol.hpp"

#include "loopback.hpp"

#include <catch2/catch.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace zshare;

using zshare::test::dead_endpoint;

namespace {

std::string reply_with(std::string_view status, std::optional<std::uint64_t> retry_after_ms) {
  MapWriter w;
  w.put("v", protocol::kVersion).put("id", "r-1").put("status", status);
  if (status != "OK") w.put("error", "slow down");
  if (retry_after_ms) w.put("retry_after_ms", *retry_after_ms);
  return w.finish();
}

// A ROUTER that answers its first `refusals` requests `refusal` (RATE LIMITED unless said, with retry_after_ms) and
// the next `answers` OK, recording every body it received.
struct ScriptedBroker {
  ScriptedBroker(zmq::context_t& ctx, int refusals, std::uint64_t retry_after_ms, int answers = 1,
                 std::string refusal = "RATE LIMITED")
      : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
    thread = std::thread([this, refusals, retry_after_ms, answers, refusal] {
      for (int n = 0; n < refusals + answers; ++n) {
        zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, std::chrono::milliseconds(5000));
        if (!(items[0].revents & ZMQ_POLLIN)) return;
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(router, std::back_inserter(frames))) return;
        bodies.push_back(frames.back().to_string());
        const std::string reply = n < refusals ? reply_with(refusal, retry_after_ms) : reply_with("OK", {});
        router.send(frames[0], zmq::send_flags::sndmore);
        router.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
        router.send(zmq::buffer(reply), zmq::send_flags::none);
      }
    });
  }
  void finish() {
    if (thread.joinable()) thread.join();
  }
  ~ScriptedBroker() { finish(); }

  zmq::socket_t router;
  std::string endpoint;
  std::vector<std::string> bodies;
  std::thread thread;
};

// A ROUTER that hears every request and answers none (a broker hung, or one whose replies are lost), recording
// the bodies until finish() or 10 s.
struct SilentBroker {
  explicit SilentBroker(zmq::context_t& ctx) : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
    thread = std::thread([this] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!stop && std::chrono::steady_clock::now() < deadline) {
        zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, std::chrono::milliseconds(20));
        std::vector<zmq::message_t> frames;
        if ((items[0].revents & ZMQ_POLLIN) && zmq::recv_multipart(router, std::back_inserter(frames))) {
          bodies.push_back(frames.back().to_string());
        }
      }
    });
  }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  ~SilentBroker() { finish(); }

  zmq::socket_t router;
  std::string endpoint;
  std::vector<std::string> bodies;
  std::atomic<bool> stop{false};
  std::thread thread;
};

std::string stats_request(const std::string& id) { return MapWriter().put("op", "STATS").put("id", id).finish(); }

std::string status_of(const std::string& reply) {
  return std::string(Message::decode(reply.data(), reply.size()).root().str("status", 64));
}

std::string id_of(const std::string& request) {
  return std::string(Message::decode(request.data(), request.size()).root().str("id", 64));
}

}  // namespace

TEST_CASE("resend_wait reads RATE LIMITED and STORE UNAVAILABLE replies only", "[lazy_pirate]") {
  CHECK(resend_wait(reply_with("RATE LIMITED", 250)) == std::chrono::milliseconds(250));
  CHECK(resend_wait(reply_with("RATE LIMITED", {})) == std::chrono::milliseconds(100));
  CHECK(resend_wait(reply_with("STORE UNAVAILABLE", 1000)) == std::chrono::milliseconds(1000));
  CHECK_FALSE(resend_wait(reply_with("OK", {})));
  CHECK_FALSE(resend_wait(reply_with("BAD REQUEST", 250)));
  CHECK_FALSE(resend_wait("RATE LIMITED, but not msgpack"));
  // A file description that happens to say RATE LIMITED does not make an OK reply a refusal.
  CHECK_FALSE(resend_wait(MapWriter().put("status", "OK").put("description", "RATE LIMITED").finish()));
}

TEST_CASE("a RATE LIMITED reply is waited out and the same request is sent again", "[lazy_pirate]") {
  zmq::context_t ctx;
  ScriptedBroker broker(ctx, 2, 40);
  LazyPirateClient client(ctx, broker.endpoint, std::chrono::milliseconds(3000));
  const std::string body = MapWriter().put("op", "STATS").put("id", "r-1").finish();
  const auto start = std::chrono::steady_clock::now();
  const std::string reply = client.request(body);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(Message::decode(reply.data(), reply.size()).root().str("status", 64) == "OK");
  broker.finish();
  REQUIRE(broker.bodies.size() == 3);
  CHECK(broker.bodies[1] == body);
  CHECK(broker.bodies[2] == body);
  CHECK(took >= std::chrono::milliseconds(80));  // two waits of retry_after_ms
}

TEST_CASE("a wait beyond the deadline is not taken: the RATE LIMITED reply is returned", "[lazy_pirate]") {
  zmq::context_t ctx;
  ScriptedBroker broker(ctx, 1, 60000);
  LazyPirateClient client(ctx, broker.endpoint, std::chrono::milliseconds(1500));
  const auto start = std::chrono::steady_clock::now();
  const std::string reply = client.request(MapWriter().put("op", "STATS").put("id", "r-1").finish());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  CHECK(Message::decode(reply.data(), reply.size()).root().str("status", 64) == "RATE LIMITED");
  // Release the scripted broker, which waits for one more request.
  LazyPirateClient(ctx, broker.endpoint, std::chrono::milliseconds(3000)).request("bye");
}

TEST_CASE("a broker that hears but never answers is left for the next of the list after its tries; the same "
          "request goes there, and the client stays with the broker that answered", "[lazy_pirate][failover]") {
  zmq::context_t ctx;
  SilentBroker silent(ctx);
  ScriptedBroker live(ctx, 0, 0, 2);
  LazyPirateClient client(ctx, std::vector<std::string>{silent.endpoint, live.endpoint},
                          std::chrono::milliseconds(600));
  const std::string first = stats_request("r-7");
  CHECK(status_of(client.request(first)) == "OK");
  CHECK(client.endpoint() == live.endpoint);
  CHECK(client.current() == 1);

  const std::string second = stats_request("r-8");
  const auto start = std::chrono::steady_clock::now();
  CHECK(status_of(client.request(second)) == "OK");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(200));  // no try at the silent one
  live.finish();
  silent.finish();

  REQUIRE(silent.bodies.size() == 3);  // its three tries, and nothing of the second request
  for (const auto& body : silent.bodies) CHECK(body == first);
  REQUIRE(live.bodies.size() == 2);
  CHECK(live.bodies[0] == first);  // the same bytes: the same request id on both brokers
  CHECK(id_of(live.bodies[0]) == id_of(silent.bodies[0]));
  CHECK(live.bodies[1] == second);
}

TEST_CASE("a first broker nobody runs costs its tries, then the second answers", "[lazy_pirate][failover]") {
  zmq::context_t ctx;
  const std::string dead = dead_endpoint(ctx);
  ScriptedBroker live(ctx, 0, 0);
  LazyPirateClient client(ctx, std::vector<std::string>{dead, live.endpoint}, std::chrono::milliseconds(300));
  const std::string body = stats_request("r-9");
  const auto start = std::chrono::steady_clock::now();
  CHECK(status_of(client.request(body)) == "OK");
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300));  // the dead one's tries first
  CHECK(client.endpoint() == live.endpoint);
  live.finish();
  REQUIRE(live.bodies.size() == 1);
  CHECK(live.bodies[0] == body);
}

TEST_CASE("when no broker of the list answers, the error names them all and the next request starts over at the "
          "broker it started at", "[lazy_pirate][failover]") {
  zmq::context_t ctx;
  SilentBroker a(ctx), b(ctx);
  LazyPirateClient client(ctx, std::vector<std::string>{a.endpoint, b.endpoint}, std::chrono::milliseconds(600));
  const std::string body = stats_request("r-10");
  try {
    client.request(body);
    FAIL("a request that no broker answered returned");
  } catch (const BrokerUnreachable& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains(a.endpoint) && Catch::Contains(b.endpoint));
  }
  CHECK(client.current() == 0);  // round robin: all the way round
  a.finish();
  b.finish();
  CHECK(a.bodies == std::vector<std::string>(3, body));
  CHECK(b.bodies == std::vector<std::string>(3, body));
}

TEST_CASE("with a list, STORE UNAVAILABLE sends the same request to the next broker at once; the last one is waited out",
          "[lazy_pirate]") {
  zmq::context_t ctx;
  // A lost its database: it refuses every request for 10 s (longer than the client's deadline); B answers.
  ScriptedBroker a(ctx, 1, 10000, 0, "STORE UNAVAILABLE");
  ScriptedBroker b(ctx, 0, 0, 1);
  LazyPirateClient client(ctx, std::vector<std::string>{a.endpoint, b.endpoint}, std::chrono::milliseconds(3000));
  const std::string body = stats_request("moved-1");
  const std::string reply = client.request(body);
  // OK, from B: A's wait (10 s) is longer than the deadline, so a client that stayed would have returned A's refusal.
  CHECK(status_of(reply) == "OK");
  a.finish();
  b.finish();
  REQUIRE(a.bodies.size() == 1);
  REQUIRE(b.bodies.size() == 1);
  CHECK(a.bodies[0] == body);  // the same bytes, the same id, at both
  CHECK(b.bodies[0] == body);
  CHECK(client.endpoint() == b.endpoint);  // it stays with the broker that has its database

  // Every broker of the list without its database: the last one tried is waited out (its retry_after_ms), as a
  // single broker is, and then answers.
  ScriptedBroker c(ctx, 1, 200, 0, "STORE UNAVAILABLE");
  ScriptedBroker d(ctx, 1, 200, 1, "STORE UNAVAILABLE");
  LazyPirateClient both(ctx, std::vector<std::string>{c.endpoint, d.endpoint}, std::chrono::milliseconds(3000));
  CHECK(status_of(both.request(stats_request("moved-2"))) == "OK");
  c.finish();
  d.finish();
  CHECK(c.bodies.size() == 1);
  CHECK(d.bodies.size() == 2);  // refused once, waited out, resent
}
