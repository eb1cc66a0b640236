// test_lazy_pirate.cpp: the Lazy Pirate client against a scripted ROUTER in a thread: RATE LIMITED is waited
// out (retry_after_ms) and the same bytes are resent on the same socket; a wait past the deadline is not taken.
#include "common/codec.hpp"
#include "common/lazy_pirate.hpp"
#include "common/protocol.hpp"

#include <catch2/catch.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <thread>
#include <vector>

using namespace zshare;

namespace {

std::string reply_with(std::string_view status, std::optional<std::uint64_t> retry_after_ms) {
  MapWriter w;
  w.put("v", protocol::kVersion).put("id", "r-1").put("status", status);
  if (status != "OK") w.put("error", "slow down");
  if (retry_after_ms) w.put("retry_after_ms", *retry_after_ms);
  return w.finish();
}

// A ROUTER that answers its first `refusals` requests RATE LIMITED (retry_after_ms) and the next one OK,
// recording every body it received.
struct ScriptedBroker {
  ScriptedBroker(zmq::context_t& ctx, int refusals, std::uint64_t retry_after_ms)
      : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
    thread = std::thread([this, refusals, retry_after_ms] {
      for (int n = 0; n <= refusals; ++n) {
        zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, std::chrono::milliseconds(5000));
        if (!(items[0].revents & ZMQ_POLLIN)) return;
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(router, std::back_inserter(frames))) return;
        bodies.push_back(frames.back().to_string());
        const std::string reply = n < refusals ? reply_with("RATE LIMITED", retry_after_ms) : reply_with("OK", {});
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
