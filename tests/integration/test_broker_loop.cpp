// test_broker_loop.cpp: the Broker class in-process with real ZeroMQ sockets over CurveZMQ: replies after
// commit, events on PUB, framing errors answered, users bound to keys, a clean stop that reopens the database,
// broker.started at each start (one seq, held for the first subscriber), and RATE LIMITED over a client's limit.
#include "broker/broker.hpp"

#include "common/codec.hpp"
#include "common/curve_keys.hpp"
#include "common/protocol.hpp"

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
  explicit RunningBroker(RateLimit limit = RateLimit{}) : rate_limit(limit) {
    char dir[] = "/tmp/zshare-loop-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    folder = dir;
    keys = curve::generate();
    curve::write_secret_file(folder + "/broker.key", keys);
    start();
  }
  void start() {
    BrokerOptions opts;
    opts.rate_limit = rate_limit;
    opts.bind = "tcp://127.0.0.1:*";
    opts.events = "tcp://127.0.0.1:*";
    opts.db = folder + "/broker.db";
    opts.rpclog = "none";
    opts.key_file = folder + "/broker.key";
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
  // A client socket that trusts this broker's key, with `own` (a fresh keypair unless given).
  void dial(zmq::socket_t& s, const curve::KeyPair& own = curve::generate()) const {
    curve::make_client(s, own, keys.public_key);
  }
  RateLimit rate_limit;
  std::string folder;
  curve::KeyPair keys;
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
  w.put("v", protocol::kVersion).put("op", op).put("id", op + "-" + user).put("ts", "2026-11-22T00:00:00.000Z");
  w.put("user", user);
  return w.finish();
}

// Sends `body` on a REQ socket and returns the decoded reply (which must come within 2 s).
Message call(zmq::socket_t& req, const std::string& body) {
  req.send(zmq::buffer(body), zmq::send_flags::none);
  auto reply = recv_within(req, 2000);
  return Message::decode(reply.back().data(), reply.back().size());
}

}  // namespace

TEST_CASE("REGISTER over REQ is answered and published as an event", "[broker]") {
  RunningBroker rb;
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "user.");
  rb.dial(sub);
  sub.connect(rb.broker->events_endpoint());
  zmq::socket_t req(ctx, zmq::socket_type::req);
  rb.dial(req);
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
  rb.dial(dealer);
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
    rb.dial(req);
    req.connect(rb.broker->control_endpoint());
    for (int i = 0; i < 20; ++i) {
      req.send(zmq::buffer(request("REGISTER", "u" + std::to_string(i))), zmq::send_flags::none);
      auto reply = recv_within(req, 2000);
      REQUIRE(Message::decode(reply.back().data(), reply.back().size()).root().str("status", 64) == "OK");
    }
  }
  rb.stop_loop();  // (reading seq while the loop runs would race with it)
  const auto seq_before = rb.broker->seq();  // broker.started (1) and the 20 registrations
  CHECK(seq_before == 21);
  rb.halt();
  rb.start();
  rb.stop_loop();
  CHECK(rb.broker->index().user_count() == 20);
  CHECK(rb.broker->seq() == seq_before + 1);  // nothing lost, and one seq for this start's broker.started
}

namespace {

struct SeenEvent {
  std::string topic;
  std::uint64_t seq = 0;
  std::uint64_t users = 0;
};

SeenEvent next_event(zmq::socket_t& sub) {
  auto ev = recv_within(sub, 5000);
  REQUIRE(ev.size() == 2);
  Message m = Message::decode(ev[1].data(), ev[1].size());
  SeenEvent e{ev[0].to_string(), m.root().uint("seq"), 0};
  if (e.topic == "broker.started") e.users = m.root().uint("users");
  return e;
}

}  // namespace

TEST_CASE("each start publishes broker.started with its own seq, held until a subscriber is there", "[broker]") {
  RunningBroker rb;
  zmq::context_t ctx;
  {
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    rb.dial(req);
    req.connect(rb.broker->control_endpoint());
    CHECK(call(req, request("REGISTER", "before")).root().str("status", 64) == "OK");
  }
  // broker.started (seq 1) went out just before user.registered (seq 2), to nobody: that subscriber came later.
  rb.halt();
  rb.start();  // seq 3 is this start's broker.started; nothing has been published since
  const auto events = rb.broker->events_endpoint();
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "");
  rb.dial(sub);
  sub.connect(events);
  // Joining late (after the start), the subscriber still gets it: the broker held it for the first subscription.
  const SeenEvent started = next_event(sub);
  CHECK(started.topic == "broker.started");
  CHECK(started.seq == 3);
  CHECK(started.users == 1);

  // Released once: later events follow it one by one, and a second subscriber does not get it again.
  zmq::socket_t late(ctx, zmq::socket_type::sub);
  late.set(zmq::sockopt::subscribe, "");
  rb.dial(late);
  late.connect(events);
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  rb.dial(req);
  req.connect(rb.broker->control_endpoint());
  CHECK(call(req, request("STATS", "stats")).root().uint("seq") == 3);  // (asked: the loop runs in its thread)
  bool late_joined = false;
  for (int i = 0; i < 50 && !late_joined; ++i) {  // the late SUB joins asynchronously: register until it hears one
    CHECK(call(req, request("REGISTER", "after" + std::to_string(i))).root().str("status", 64) == "OK");
    const SeenEvent e = next_event(sub);
    CHECK(e.topic == "user.registered");
    CHECK(e.seq == 4 + static_cast<std::uint64_t>(i));
    zmq::pollitem_t items[] = {{late.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(50));
    if (items[0].revents & ZMQ_POLLIN) {
      const SeenEvent first_late = next_event(late);
      CHECK(first_late.topic == "user.registered");  // never broker.started a second time
      late_joined = true;
    }
  }
  CHECK(late_joined);
}

TEST_CASE("broker.started goes out before the first other event when nobody subscribed", "[broker]") {
  RunningBroker rb;  // seq 1: broker.started, held
  zmq::context_t ctx;
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  rb.dial(req);
  req.connect(rb.broker->control_endpoint());
  CHECK(call(req, request("REGISTER", "first")).root().str("status", 64) == "OK");  // seq 2: releases seq 1 first
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "");
  rb.dial(sub);
  sub.connect(rb.broker->events_endpoint());
  // Nothing is held any more: the new subscriber hears only what comes after it joined (no broker.started).
  bool heard = false;
  for (int i = 0; i < 50 && !heard; ++i) {
    CHECK(call(req, request("REGISTER", "next" + std::to_string(i))).root().str("status", 64) == "OK");
    zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(50));
    if (items[0].revents & ZMQ_POLLIN) {
      const SeenEvent e = next_event(sub);
      CHECK(e.topic == "user.registered");
      CHECK(e.seq >= 3);
      heard = true;
    }
  }
  CHECK(heard);
}

TEST_CASE("a client over its rate limit gets RATE LIMITED, nothing is applied, and the same id later succeeds",
          "[broker][ratelimit]") {
  RateLimit limit;
  limit.rate = 1;  // a token a second: the margin for the checks made while the bucket is empty
  limit.burst = 3;
  RunningBroker rb(limit);
  zmq::context_t ctx;
  const curve::KeyPair client = curve::generate();
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  rb.dial(req, client);
  req.connect(rb.broker->control_endpoint());

  // The burst is admitted; the first refusal comes after it (a stalled machine may refill a token meanwhile).
  int admitted = 0;
  std::string refused_body;
  std::uint64_t retry_after_ms = 0;
  for (int i = 0; i < 10 && refused_body.empty(); ++i) {
    const std::string body = request("REGISTER", "u" + std::to_string(i));
    Message m = call(req, body);
    const auto status = m.root().str("status", 64);
    if (status == "OK") {
      ++admitted;
      continue;
    }
    REQUIRE(status == "RATE LIMITED");
    CHECK(m.root().str("id", 64) == "REGISTER-u" + std::to_string(i));
    CHECK(m.root().str("error", 300).find("rate limit") != std::string_view::npos);
    retry_after_ms = m.root().uint("retry_after_ms");
    refused_body = body;
  }
  REQUIRE_FALSE(refused_body.empty());
  CHECK(admitted >= 3);
  CHECK(retry_after_ms >= 1);
  CHECK(retry_after_ms <= 1000);

  // The bucket is the key's: a new connection of the same client (a Lazy Pirate retry) finds it empty too.
  {
    zmq::socket_t again(ctx, zmq::socket_type::req);
    again.set(zmq::sockopt::linger, 0);
    rb.dial(again, client);
    again.connect(rb.broker->control_endpoint());
    Message m = call(again, request("STATS", "same-key"));
    CHECK(m.root().str("status", 64) == "RATE LIMITED");
  }
  // A HEARTBEAT is never refused: it is served (this user has no session) although the bucket is empty.
  Message beat = call(req, request("HEARTBEAT", "u0"));
  CHECK(beat.root().str("status", 64) == "USER NOT CONNECTED");
  // Another key has its own bucket.
  zmq::socket_t other(ctx, zmq::socket_type::req);
  other.set(zmq::sockopt::linger, 0);
  rb.dial(other);
  other.connect(rb.broker->control_endpoint());
  // (the loop runs in its own thread: its state is read through STATS, never directly)
  Message first_stats = call(other, request("STATS", "x"));
  CHECK(first_stats.root().str("status", 64) == "OK");
  CHECK(first_stats.root().uint("users") == static_cast<std::uint64_t>(admitted));  // the refused one: not applied

  // After retry_after_ms the same request, same id, is served as new: nothing of the refusal was stored.
  std::this_thread::sleep_for(std::chrono::milliseconds(retry_after_ms));
  Message again = call(req, refused_body);
  CHECK(again.root().str("status", 64) == "OK");
  Message stats = call(other, request("STATS", "y"));
  CHECK(stats.root().uint("users") == static_cast<std::uint64_t>(admitted) + 1);
  CHECK(stats.root().uint("rate_limited") == 2);
}

// One request and its decoded status over a fresh REQ socket.
std::string status_of(zmq::socket_t& req, const std::string& body) {
  req.send(zmq::buffer(body), zmq::send_flags::none);
  auto reply = recv_within(req, 2000);
  return std::string(Message::decode(reply.back().data(), reply.back().size()).root().str("status", 64));
}

TEST_CASE("over CurveZMQ only the key that registered a user may change it, others get DENIED", "[broker][curve]") {
  RunningBroker rb;
  zmq::context_t ctx;
  const curve::KeyPair alice = curve::generate();
  const curve::KeyPair mallory = curve::generate();
  zmq::socket_t a(ctx, zmq::socket_type::req);
  rb.dial(a, alice);
  a.connect(rb.broker->control_endpoint());
  zmq::socket_t m(ctx, zmq::socket_type::req);
  rb.dial(m, mallory);
  m.connect(rb.broker->control_endpoint());

  REQUIRE(status_of(a, request("REGISTER", "alice")) == "OK");
  MapWriter connect;
  connect.put("v", protocol::kVersion).put("op", "CONNECT").put("id", "c-alice").put("ts", "2026-11-22T00:00:00.000Z");
  connect.put("user", "alice").put("endpoint", "tcp://127.0.0.1:7000");
  REQUIRE(status_of(a, connect.finish()) == "OK");
  CHECK(status_of(m, request("DISCONNECT", "alice")) == "DENIED");
  MapWriter mdel;
  mdel.put("v", protocol::kVersion).put("op", "DELETE").put("id", "d-m").put("ts", "2026-11-22T00:00:00.000Z");
  mdel.put("user", "alice").put("name", "x");
  CHECK(status_of(m, mdel.finish()) == "DENIED");
  CHECK(status_of(m, request("UNREGISTER", "alice")) == "DENIED");
  // Alice is still registered and connected, listed with the key that owns her.
  a.send(zmq::buffer(request("LIST_USERS", "alice")), zmq::send_flags::none);
  auto listed = recv_within(a, 2000);
  Message users = Message::decode(listed.back().data(), listed.back().size());
  const auto rows = users.root().maps("users");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].str("user", 64) == "alice");
  CHECK(rows[0].str("key", 64) == alice.public_key);
  CHECK(status_of(a, request("UNREGISTER", "alice")) == "OK");
}

TEST_CASE("a client that does not hold the broker's public key gets no answer", "[broker][curve]") {
  RunningBroker rb;
  zmq::context_t ctx;
  zmq::socket_t wrong(ctx, zmq::socket_type::req);
  wrong.set(zmq::sockopt::linger, 0);
  const curve::KeyPair impostor_server = curve::generate();
  curve::make_client(wrong, curve::generate(), impostor_server.public_key);
  wrong.connect(rb.broker->control_endpoint());
  wrong.send(zmq::buffer(request("REGISTER", "eve")), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{wrong.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(1500));
  CHECK_FALSE((items[0].revents & ZMQ_POLLIN));

  zmq::socket_t plain(ctx, zmq::socket_type::req);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(rb.broker->control_endpoint());
  plain.send(zmq::buffer(request("REGISTER", "eve")), zmq::send_flags::none);
  zmq::pollitem_t plain_items[] = {{plain.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(plain_items, 1, std::chrono::milliseconds(1500));
  CHECK_FALSE((plain_items[0].revents & ZMQ_POLLIN));

  // Neither reached the dispatcher: a client with the broker's key can register the name.
  zmq::socket_t good(ctx, zmq::socket_type::req);
  rb.dial(good);
  good.connect(rb.broker->control_endpoint());
  CHECK(status_of(good, request("REGISTER", "eve")) == "OK");
}
