// test_dispatcher.cpp: the broker's request semantics without sockets: the seeds' statuses, events with
// increasing seq, the reply cache for retried ids, and BAD REQUEST for malformed requests.
#include "broker/dispatcher.hpp"
#include "broker/sqlite_store.hpp"

#include "common/protocol.hpp"
#include "common/relay_token.hpp"
#include "common/validate.hpp"
#include "zshare/protocol_ops.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace zshare;
using namespace zshare::broker;

namespace {

struct Fixture {
  explicit Fixture(std::uint64_t max_files_per_user = 100000, std::string relay = "",
                   double heartbeat_rate = kDefaultHeartbeatRate) {
    char dir[] = "/tmp/zshare-disp-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    folder = dir;
    store = std::make_unique<SqliteStore>(folder + "/broker.db");
    DispatcherOptions options;
    options.clock_ms = [this] { return clock; };
    options.max_files_per_user = max_files_per_user;
    options.heartbeat_rate = heartbeat_rate;
    options.probe = [this](std::string_view user, std::string_view endpoint) {
      probes.emplace_back(std::string(user), std::string(endpoint));
    };
    options.relay = std::move(relay);
    options.relay_secret = std::string(32, 'k');
    options.clock_s = [] { return std::uint64_t{1800000000}; };
    dispatcher = std::make_unique<Dispatcher>(index, *store, cache, stats, 0, options);
    store->begin();
  }
  ~Fixture() {
    store->rollback();
    dispatcher.reset();
    store.reset();
    std::system(("rm -rf '" + folder + "'").c_str());
  }

  // Sends op with fields under a fresh id (or `id`) and returns the decoded reply's status.
  // `key` plays the sender's CurveZMQ public key (the ZAP User-Id); empty is a plaintext broker.
  std::string call(const std::string& op, MapWriter fields, const std::string& id = "", const std::string& key = "") {
    fields.put("v", version).put("op", op).put("ts", ts);
    fields.put("id", id.empty() ? "req-" + std::to_string(++counter) : id);
    last_reply = dispatcher->handle(fields.finish(), events, key, peer_address);
    last = std::make_unique<Message>(Message::decode(last_reply.data(), last_reply.size()));
    return std::string(last->root().str("status", 64));
  }

  std::string folder;
  FileIndex index;
  ReplyCache cache{1000};
  BrokerStats stats;
  std::unique_ptr<Store> store;
  std::unique_ptr<Dispatcher> dispatcher;
  std::vector<Event> events;
  std::string last_reply;
  std::unique_ptr<Message> last;
  int counter = 0;
  std::uint64_t version = protocol::kVersion;  // the `v` call() sends
  std::string ts = "2026-11-22T00:00:00.000Z";  // the `ts` call() sends
  std::int64_t clock = 1000000;  // the dispatcher's monotonic milliseconds, moved by the tests
  std::string peer_address = "192.0.2.7";  // where call()'s requests come from (ZeroMQ's Peer-Address)
  std::vector<std::pair<std::string, std::string>> probes;  // (user, endpoint) the dispatcher asked to probe

  // The operations-log records written so far, "ts user OP args" each, oldest first (commits the batch to read them).
  std::vector<std::string> log_records() {
    store->commit();
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((folder + "/broker.db").c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT ts, user, operation, args FROM outbox ORDER BY seq", -1, &stmt, nullptr) ==
            SQLITE_OK);
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string line;
      for (int i = 0; i < 4; ++i) {
        line += (i ? " " : "") + std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)));
      }
      out.push_back(line);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    store->begin();
    return out;
  }

  // The topic and the `reason` (when it has one) of each event so far, and checks that seq rises by one.
  std::vector<std::string> event_summary() const {
    std::vector<std::string> out;
    std::uint64_t last_seq = 0;
    for (const auto& e : events) {
      Message m = Message::decode(e.body.data(), e.body.size());
      if (last_seq) CHECK(m.root().uint("seq") == last_seq + 1);
      last_seq = m.root().uint("seq");
      const auto reason = m.root().opt_str("reason", 64);
      out.push_back(e.topic + (reason ? " " + std::string(*reason) : ""));
    }
    return out;
  }
};

MapWriter user(const std::string& name) {
  MapWriter w;
  w.put("user", name);
  return w;
}

MapWriter publish(const std::string& name, const std::string& file) {
  MapWriter w;
  w.put("user", name).put("name", file).put("description", "a test file").put("size", std::uint64_t{10});
  w.put("cid", std::string(64, 'a')).put("chunk_size", std::uint64_t{16384});
  return w;
}

}  // namespace

TEST_CASE("the seeds' statuses for register, connect, publish, delete", "[dispatcher]") {
  Fixture f;
  CHECK(f.call("REGISTER", user("alice")) == "OK");
  CHECK(f.call("REGISTER", user("alice")) == "USERNAME IN USE");
  CHECK(f.call("CONNECT", user("carol").put("endpoint", "tcp://127.0.0.1:1")) == "USER DOES NOT EXIST");
  CHECK(f.call("PUBLISH", publish("alice", "a.txt")) == "USER NOT CONNECTED");
  CHECK(f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1")) == "OK");
  CHECK(f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1")) == "USER ALREADY CONNECTED");
  CHECK(f.call("PUBLISH", publish("alice", "a.txt")) == "OK");
  CHECK(f.call("PUBLISH", publish("alice", "a.txt")) == "CONTENT ALREADY PUBLISHED");
  CHECK(f.call("DELETE", user("alice").put("name", "b.txt")) == "CONTENT NOT PUBLISHED");
  CHECK(f.call("LOOKUP", user("alice").put("name", "b.txt")) == "FILE NOT EXIST");
  CHECK(f.call("DELETE", user("alice").put("name", "a.txt")) == "OK");
  CHECK(f.call("DISCONNECT", user("alice")) == "OK");
  CHECK(f.call("DISCONNECT", user("alice")) == "USER NOT CONNECTED");
  CHECK(f.call("UNREGISTER", user("alice")) == "OK");
  CHECK(f.call("UNREGISTER", user("alice")) == "USER DOES NOT EXIST");

  std::vector<std::string> topics;
  std::uint64_t last_seq = 0;
  for (const auto& e : f.events) {
    topics.push_back(e.topic);
    Message m = Message::decode(e.body.data(), e.body.size());
    CHECK(m.root().uint("seq") == last_seq + 1);
    last_seq = m.root().uint("seq");
  }
  CHECK(topics == std::vector<std::string>{"user.registered", "peer.connected", "file.published", "file.deleted",
                                           "peer.disconnected", "user.unregistered"});
}

TEST_CASE("v3: another version is refused with the broker's own, and file entries carry no root", "[dispatcher]") {
  Fixture f;
  f.version = 1;
  CHECK(f.call("REGISTER", user("alice")) == "BAD REQUEST");
  CHECK(f.last->root().str("error", 200) == "unsupported protocol version 1 (this broker speaks 3)");
  CHECK(f.last->root().uint("v") == 3);
  f.version = 2;
  CHECK(f.call("STATS", MapWriter()) == "BAD REQUEST");
  CHECK(f.last->root().str("error", 200) == "unsupported protocol version 2 (this broker speaks 3)");
  CHECK(f.index.user_count() == 0);

  f.version = protocol::kVersion;
  REQUIRE(f.call("REGISTER", user("alice")) == "OK");
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1")) == "OK");
  REQUIRE(f.call("PUBLISH", publish("alice", "a.txt")) == "OK");  // no root: v3's cid is the Merkle root
  CHECK(f.call("PUBLISH", publish("alice", "b.txt").put("root", "not even a hash")) == "OK");  // an unknown key
  Message published = Message::decode(f.events.back().body.data(), f.events.back().body.size());
  CHECK(f.events.back().topic == "file.published");
  CHECK(published.root().uint("chunk_size") == 16384);
  CHECK_FALSE(published.root().has("root"));

  const auto entry_ok = [](const MapView& file) {
    CHECK(file.str("cid", 64) == std::string(64, 'a'));
    CHECK(file.uint("chunk_size") == 16384);
    CHECK(file.uint("size") == 10);
    CHECK_FALSE(file.has("root"));
  };
  REQUIRE(f.call("LIST_CONTENT", user("alice")) == "OK");
  const auto listed = f.last->root().maps("files");
  REQUIRE(listed.size() == 2);
  for (const auto& file : listed) entry_ok(file);
  REQUIRE(f.call("SEARCH", MapWriter().put("cid", std::string(64, 'a'))) == "OK");
  const auto found = f.last->root().maps("results");
  REQUIRE(found.size() == 2);
  for (const auto& file : found) entry_ok(file);
  REQUIRE(f.call("LOOKUP", user("alice").put("name", "a.txt")) == "OK");
  entry_ok(f.last->root().map("file"));
  REQUIRE(f.call("SNAPSHOT", MapWriter()) == "OK");
  const auto snapshot = f.last->root().maps("files");
  REQUIRE(snapshot.size() == 2);
  for (const auto& file : snapshot) entry_ok(file);
}

TEST_CASE("PUBLISH: only an empty file has the all-zero content id, and an empty file has only that one",
          "[dispatcher]") {
  Fixture f;
  REQUIRE(f.call("REGISTER", user("alice")) == "OK");
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1")) == "OK");
  auto file = [](const std::string& name, std::uint64_t size, char cid) {
    MapWriter w;
    w.put("user", "alice").put("name", name).put("size", size).put("cid", std::string(64, cid));
    w.put("chunk_size", std::uint64_t{16384});
    return w;
  };
  CHECK(f.call("PUBLISH", file("empty-liar.bin", 0, 'a')) == "BAD REQUEST");
  CHECK(f.call("PUBLISH", file("zero-liar.bin", 10, '0')) == "BAD REQUEST");
  CHECK(f.call("PUBLISH", file("empty.bin", 0, '0')) == "OK");
  CHECK(f.index.file_count() == 1);
}

TEST_CASE("PUBLISH beyond the files-per-user limit is LIMIT EXCEEDED and changes nothing", "[dispatcher]") {
  Fixture f(2);
  f.call("REGISTER", user("alice"));
  f.call("REGISTER", user("bob"));
  f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1"));
  f.call("CONNECT", user("bob").put("endpoint", "tcp://127.0.0.1:2"));
  CHECK(f.call("PUBLISH", publish("alice", "one.txt")) == "OK");
  CHECK(f.call("PUBLISH", publish("alice", "two.txt")) == "OK");
  f.events.clear();
  const auto mutations = f.stats.mutations;
  CHECK(f.call("PUBLISH", publish("alice", "three.txt")) == "LIMIT EXCEEDED");
  CHECK(f.last->root().str("error", 200).find("2 files") != std::string_view::npos);
  CHECK(f.call("PUBLISH", publish("alice", "one.txt")) == "CONTENT ALREADY PUBLISHED");  // the specific status first
  CHECK(f.index.file_count() == 2);
  CHECK(f.events.empty());
  CHECK(f.stats.mutations == mutations + 2);  // refusals are stored replies too (a retry gets the same answer)
  CHECK(f.call("PUBLISH", publish("bob", "three.txt")) == "OK");  // the limit is per user
  CHECK(f.call("DELETE", user("alice").put("name", "one.txt")) == "OK");
  CHECK(f.call("PUBLISH", publish("alice", "three.txt")) == "OK");  // room again
}

TEST_CASE("a retried request id is answered from the cache and applied once", "[dispatcher]") {
  Fixture f;
  CHECK(f.call("REGISTER", user("alice"), "same-id") == "OK");
  const std::string first = f.last_reply;
  CHECK(f.call("REGISTER", user("alice"), "same-id") == "OK");
  CHECK(f.last_reply == first);
  CHECK(f.events.size() == 1);
  CHECK(f.stats.retries_answered == 1);
  CHECK(f.call("REGISTER", user("alice")) == "USERNAME IN USE");
}

TEST_CASE("only the key that registered a user may change it, and reads are open to every key", "[dispatcher][curve]") {
  Fixture f;
  const std::string alice(40, 'A'), mallory(40, 'M');
  CHECK(f.call("REGISTER", user("alice"), "", alice) == "OK");
  CHECK(f.last->root().str("key", 64) == alice);
  MapWriter connect = user("alice");
  connect.put("endpoint", "tcp://127.0.0.1:7000");
  CHECK(f.call("CONNECT", std::move(connect), "", mallory) == "DENIED");
  MapWriter connect_again = user("alice");
  connect_again.put("endpoint", "tcp://127.0.0.1:7000");
  CHECK(f.call("CONNECT", std::move(connect_again), "", alice) == "OK");
  CHECK(f.call("PUBLISH", publish("alice", "song.mp3"), "", mallory) == "DENIED");
  CHECK(f.call("PUBLISH", publish("alice", "song.mp3"), "", alice) == "OK");
  MapWriter del = user("alice");
  del.put("name", "song.mp3");
  CHECK(f.call("DELETE", std::move(del), "", mallory) == "DENIED");
  CHECK(f.last->root().str("error", 200).find("another key") != std::string_view::npos);
  CHECK(f.call("HEARTBEAT", user("alice"), "", mallory) == "DENIED");
  CHECK(f.call("DISCONNECT", user("alice"), "", mallory) == "DENIED");
  CHECK(f.call("UNREGISTER", user("alice"), "", mallory) == "DENIED");
  CHECK(f.call("LIST_CONTENT", user("alice"), "", mallory) == "OK");
  MapWriter q;
  q.put("q", "song");
  CHECK(f.call("SEARCH", std::move(q), "", mallory) == "OK");
  const auto results = f.last->root().maps("results");
  REQUIRE(results.size() == 1);
  CHECK(results[0].str("key", 64) == alice);  // the downloader dials exactly this key
  CHECK(f.index.user(*f.index.find_user("alice")).connected);
  CHECK(f.index.files_of(*f.index.find_user("alice")).size() == 1);
  CHECK(f.call("UNREGISTER", user("alice"), "", alice) == "OK");
}

TEST_CASE("the reply cache is per key: another key reusing a request id gets its own answer", "[dispatcher][curve]") {
  Fixture f;
  const std::string alice(40, 'A'), mallory(40, 'M');
  CHECK(f.call("REGISTER", user("alice"), "shared-id", alice) == "OK");
  CHECK(f.call("UNREGISTER", user("alice"), "id-2", mallory) == "DENIED");
  CHECK(f.call("UNREGISTER", user("alice"), "id-2", alice) == "OK");
  CHECK(f.call("REGISTER", user("alice"), "shared-id", alice) == "OK");  // alice's retry: cached
  CHECK(f.stats.retries_answered == 1);
  CHECK_FALSE(f.index.find_user("alice").has_value());
}

TEST_CASE("malformed requests get BAD REQUEST with a sentence and change nothing", "[dispatcher]") {
  Fixture f;
  CHECK(f.call("FROB", user("alice")) == "BAD REQUEST");
  CHECK(f.last->root().str("error", 200).find("unknown op") != std::string_view::npos);
  CHECK(f.call("REGISTER", user("bad name")) == "BAD REQUEST");
  CHECK(f.call("REGISTER", MapWriter().put("user", std::uint64_t{3})) == "BAD REQUEST");
  CHECK(f.call("SEARCH", MapWriter()) == "BAD REQUEST");
  CHECK(f.call("SEARCH", MapWriter().put("q", "...")) == "BAD REQUEST");
  CHECK(f.call("SEARCH", MapWriter().put("q", "x").put("limit", std::uint64_t{0})) == "BAD REQUEST");

  const std::string not_msgpack = "\xc1garbage";
  const std::string reply = f.dispatcher->handle(not_msgpack, f.events);
  Message m = Message::decode(reply.data(), reply.size());
  CHECK(m.root().str("status", 64) == "BAD REQUEST");
  CHECK(m.root().is_nil("id"));

  const std::string big(protocol::kMaxMessageBytes + 1, 'x');
  const std::string big_reply = f.dispatcher->handle(big, f.events);
  CHECK(Message::decode(big_reply.data(), big_reply.size()).root().str("error", 200).find("limit") !=
        std::string_view::npos);

  CHECK(f.index.user_count() == 0);
  CHECK(f.events.empty());
  CHECK(f.stats.bad_requests == 8);
}

TEST_CASE("search returns owner, endpoint and online flag, and pages", "[dispatcher]") {
  Fixture f;
  f.call("REGISTER", user("alice"));
  f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:7"));
  for (int i = 0; i < 5; ++i) f.call("PUBLISH", publish("alice", "song" + std::to_string(i) + ".ogg"));
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "TEST").put("limit", std::uint64_t{3})) == "OK");
  auto results = f.last->root().maps("results");
  REQUIRE(results.size() == 3);
  CHECK(results[0].str("user", 64) == "alice");
  CHECK(results[0].str("endpoint", 64) == "tcp://127.0.0.1:7");
  CHECK(results[0].opt_bool("online") == true);
  const auto next = f.last->root().uint("next");
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "test").put("cursor", next)) == "OK");
  CHECK(f.last->root().maps("results").size() == 2);
  CHECK(f.last->root().is_nil("next"));
}

TEST_CASE("SEARCH shows online owners' files unless include_offline is true", "[dispatcher]") {
  Fixture f;
  for (const char* name : {"alice", "bob"}) {
    f.call("REGISTER", user(name));
    f.call("CONNECT", user(name).put("endpoint", "tcp://127.0.0.1:7"));
    f.call("PUBLISH", publish(name, std::string(name) + ".ogg"));
  }
  f.call("DISCONNECT", user("bob"));
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "test")) == "OK");
  auto results = f.last->root().maps("results");
  REQUIRE(results.size() == 1);
  CHECK(results[0].str("user", 64) == "alice");
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "test").put("include_offline", false)) == "OK");
  CHECK(f.last->root().maps("results").size() == 1);
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "test").put("include_offline", true)) == "OK");
  results = f.last->root().maps("results");
  REQUIRE(results.size() == 2);
  CHECK(results[1].str("user", 64) == "bob");
  CHECK(results[1].opt_bool("online") == false);
  CHECK(results[1].str("endpoint", 64).empty());
  CHECK(f.call("SEARCH", MapWriter().put("q", "test").put("include_offline", "yes")) == "BAD REQUEST");
  REQUIRE(f.call("LOOKUP", user("bob").put("name", "bob.ogg")) == "OK");  // LOOKUP answers offline files as before
}

TEST_CASE("a session that promised heartbeats is expired after three silent intervals", "[dispatcher]") {
  Fixture f;
  f.call("REGISTER", user("alice"));
  f.call("REGISTER", user("bob"));
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1").put("heartbeat_ms", std::uint64_t{1000})) == "OK");
  REQUIRE(f.call("CONNECT", user("bob").put("endpoint", "tcp://127.0.0.1:2")) == "OK");  // promised nothing
  CHECK(f.call("CONNECT", user("alice").put("endpoint", "tcp://127.0.0.1:1").put("heartbeat_ms", std::uint64_t{5})) ==
        "BAD REQUEST");

  f.clock += 2500;
  CHECK(f.call("HEARTBEAT", user("alice")) == "OK");  // alive: the silence starts again from here
  f.clock += 2500;
  f.events.clear();
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 0);

  f.clock += 1000;  // 3.5 s since alice's last heartbeat
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 1);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].topic == "peer.disconnected");
  Message ev = Message::decode(f.events[0].body.data(), f.events[0].body.size());
  CHECK(ev.root().str("reason", 64) == "heartbeat timeout");
  CHECK_FALSE(f.index.user(*f.index.find_user("alice")).connected);
  CHECK(f.index.user(*f.index.find_user("bob")).connected);  // never expired by silence
  CHECK(f.call("HEARTBEAT", user("alice")) == "USER NOT CONNECTED");
  CHECK(f.call("HEARTBEAT", user("carol")) == "USER DOES NOT EXIST");
}

// A fixture whose broker budgets `rate` heartbeats a second for all sessions together.
Fixture budgeted(double rate) { return Fixture(100000, "", rate); }

// CONNECTs `name` (registered here) promising `promised_ms` (0: no heartbeats); returns the reply's heartbeat_ms,
// 0 when it has none.
std::uint64_t connect_asked(Fixture& f, const std::string& name, std::uint64_t promised_ms) {
  REQUIRE(f.call("REGISTER", user(name)) == "OK");
  MapWriter w = user(name).put("endpoint", "tcp://127.0.0.1:1");
  if (promised_ms) w.put("heartbeat_ms", promised_ms);
  REQUIRE(f.call("CONNECT", w) == "OK");
  return f.last->root().opt_uint("heartbeat_ms").value_or(0);
}

// HEARTBEATs `name`; returns the reply's heartbeat_ms, 0 when it has none.
std::uint64_t beat_asked(Fixture& f, const std::string& name) {
  REQUIRE(f.call("HEARTBEAT", user(name)) == "OK");
  return f.last->root().opt_uint("heartbeat_ms").value_or(0);
}

TEST_CASE("the broker asks each session for its promise or the budget's floor, which grows with the sessions",
          "[dispatcher][heartbeat]") {
  Fixture f = budgeted(2);  // 2 heartbeats a second: the floor is sessions / 2 seconds
  CHECK(connect_asked(f, "s1", 1000) == 1000);  // floor 500 ms: the promise stands
  CHECK(connect_asked(f, "s2", 1000) == 1000);  // floor 1000 ms
  CHECK(connect_asked(f, "s3", 1000) == 1500);  // floor 1500 ms: slower than promised
  CHECK(connect_asked(f, "mute", 0) == 0);      // promised nothing: neither asked nor counted
  CHECK(connect_asked(f, "s4", 1000) == 2000);
  CHECK(connect_asked(f, "slow", 9000) == 9000);  // a promise above the floor (2500 ms) is kept
  CHECK(beat_asked(f, "s1") == 2500);           // every heartbeat reply asks again, as the floor has moved
  CHECK(beat_asked(f, "slow") == 9000);
  CHECK(beat_asked(f, "mute") == 0);            // it may beat, but it is asked for nothing
  REQUIRE(f.call("DISCONNECT", user("s4")) == "OK");
  REQUIRE(f.call("DISCONNECT", user("slow")) == "OK");
  CHECK(beat_asked(f, "s1") == 1500);           // fewer sessions, a lower floor

  // Promises are accepted from 100 ms to one hour; the floor itself never asks for more than an hour.
  REQUIRE(f.call("REGISTER", user("odd")) == "OK");
  CHECK(f.call("CONNECT", user("odd").put("endpoint", "tcp://127.0.0.1:1").put("heartbeat_ms", std::uint64_t{99})) ==
        "BAD REQUEST");
  CHECK(f.call("CONNECT", user("odd").put("endpoint", "tcp://127.0.0.1:1").put("heartbeat_ms",
                                                                                  std::uint64_t{3600001})) == "BAD REQUEST");
  CHECK(f.last->root().str("error", 200) == "field 'heartbeat_ms' must be from 100 to 3600000 (one hour)");
  CHECK(connect_asked(f, "hourly", 3600000) == 3600000);
  Fixture tiny = budgeted(1.0 / 7200);  // one heartbeat every two hours for everyone
  CHECK(connect_asked(tiny, "lonely", 100) == 3600000);
}

TEST_CASE("a session silent for misses x the interval asked of it is expired, and not before",
          "[dispatcher][heartbeat]") {
  Fixture f = budgeted(1);  // the floor is one second per session
  const std::int64_t t0 = f.clock;
  CHECK(connect_asked(f, "alice", 1000) == 1000);
  CHECK(connect_asked(f, "bob", 1000) == 2000);  // asked for 2 s though it promised 1 s

  f.clock = t0 + 3000;  // alice silent for exactly 3 x 1 s: not yet
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 0);
  f.clock = t0 + 3001;  // alice is late; bob, silent for more than 3 x his promise, is not: he was asked for 2 s
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 1);
  CHECK_FALSE(f.index.user(*f.index.find_user("alice")).connected);
  CHECK(f.index.user(*f.index.find_user("bob")).connected);
  f.clock = t0 + 6000;
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 0);
  f.clock = t0 + 6001;
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 1);
  CHECK_FALSE(f.index.user(*f.index.find_user("bob")).connected);

  // Each heartbeat reply sets the interval anew: carol, asked for 1 s alone, is asked for 2 s once dave is there.
  const std::int64_t t1 = f.clock;
  CHECK(connect_asked(f, "carol", 1000) == 1000);
  CHECK(connect_asked(f, "dave", 1000) == 2000);
  f.clock = t1 + 2000;
  CHECK(beat_asked(f, "carol") == 2000);
  CHECK(beat_asked(f, "dave") == 2000);
  f.clock = t1 + 2000 + 6000;  // both silent for exactly 3 x 2 s
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 0);
  f.clock = t1 + 2000 + 6001;
  CHECK(f.dispatcher->expire_silent_sessions(f.events) == 2);
  CHECK(f.event_summary().back() == "peer.disconnected heartbeat timeout");
}

TEST_CASE("an id or op that is not UTF-8 is refused and never echoed (replies stay valid UTF-8)", "[dispatcher]") {
  // Found by tests/integration/bad_input.py: the id was echoed byte for byte, the op inside the error sentence.
  Fixture f;
  const std::string bad_id = "id-\xff\xfe";
  CHECK(f.call("STATS", MapWriter(), bad_id) == "BAD REQUEST");
  CHECK(f.last->root().is_nil("id"));
  CHECK(f.last->root().str("error", 200).find("UTF-8") != std::string_view::npos);
  CHECK(f.call("REG\xffISTER", user("alice")) == "BAD REQUEST");
  const auto error = f.last->root().str("error", 200);
  CHECK(is_valid_utf8(error));
  CHECK(error.find("unknown op") != std::string_view::npos);
  CHECK(f.call(std::string("ST\0ATS", 6), MapWriter()) == "BAD REQUEST");  // a NUL would cut the sentence
  CHECK(f.last->root().str("error", 200) == "unknown op (not printable UTF-8)");
  CHECK(f.index.user_count() == 0);
}

TEST_CASE("a BAD REQUEST found after decoding echoes the request's id intact", "[dispatcher]") {
  // Found by tests/fuzz: the id used to point into the decoded message, already freed when the error was
  // caught. The id must come back byte for byte.
  Fixture f;
  const std::string id = "client-7f3a:" + std::string(40, 'x');
  CHECK(f.call("LOOKUP", MapWriter().put("ulice", "a").put("name", "song.mp3"), id) == "BAD REQUEST");
  CHECK(f.last->root().str("id", 64) == id);
  CHECK(f.last->root().str("error", 200).find("'user'") != std::string_view::npos);
}

TEST_CASE("CONNECT asks for a reachability probe; its answer is recorded and shown", "[dispatcher][nat]") {
  Fixture f;
  REQUIRE(f.call("REGISTER", user("alice")) == "OK");
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.1.0.2:4000")) == "OK");
  REQUIRE(f.probes.size() == 1);
  CHECK(f.probes[0] == std::make_pair(std::string("alice"), std::string("tcp://10.1.0.2:4000")));
  REQUIRE(f.call("LIST_USERS", MapWriter()) == "OK");
  CHECK_FALSE(f.last->root().maps("users").at(0).has("reachable"));  // unknown until probed

  f.dispatcher->record_reachability("alice", "tcp://10.9.9.9:1", true);  // another session's answer
  REQUIRE(f.call("LIST_USERS", MapWriter()) == "OK");
  CHECK_FALSE(f.last->root().maps("users").at(0).has("reachable"));
  f.events.clear();
  f.dispatcher->record_reachability("alice", "tcp://10.1.0.2:4000", false);
  CHECK(f.events.empty());  // not an index change: no event, no seq
  REQUIRE(f.call("LIST_USERS", MapWriter()) == "OK");
  CHECK(f.last->root().maps("users").at(0).opt_bool("reachable") == std::optional<bool>(false));
  REQUIRE(f.call("PUBLISH", publish("alice", "a.txt")) == "OK");
  REQUIRE(f.call("SEARCH", MapWriter().put("cid", std::string(64, 'a'))) == "OK");
  CHECK(f.last->root().maps("results").at(0).opt_bool("reachable") == std::optional<bool>(false));

  REQUIRE(f.call("DISCONNECT", user("alice")) == "OK");  // a new session is unknown again
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://198.51.100.5:4000")) == "OK");
  REQUIRE(f.call("LIST_USERS", MapWriter()) == "OK");
  CHECK_FALSE(f.last->root().maps("users").at(0).has("reachable"));
}

TEST_CASE("DIAL: the seeder's next heartbeat carries the callback on the requester's address", "[dispatcher][nat]") {
  Fixture f;
  REQUIRE(f.call("REGISTER", user("seeder")) == "OK");
  CHECK(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{5000})) == "USER NOT CONNECTED");
  REQUIRE(f.call("CONNECT", user("seeder").put("endpoint", "tcp://10.1.0.2:4000").put("heartbeat_ms", std::uint64_t{1000})) == "OK");
  REQUIRE(f.call("HEARTBEAT", user("seeder")) == "OK");
  CHECK_FALSE(f.last->root().has("dials"));  // nothing asked yet

  REQUIRE(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{5000})) == "OK");
  CHECK(f.last->root().str("callback", 255) == "tcp://192.0.2.7:5000");
  CHECK_FALSE(f.last->root().has("relay"));  // this broker has none
  f.peer_address = "::ffff:203.0.113.9";  // an IPv4 client on a dual-stack socket
  REQUIRE(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{6000})) == "OK");
  CHECK(f.last->root().str("callback", 255) == "tcp://203.0.113.9:6000");
  f.peer_address = "2001:db8::1";
  REQUIRE(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{7000})) == "OK");
  CHECK(f.last->root().str("callback", 255) == "tcp://[2001:db8::1]:7000");

  REQUIRE(f.call("HEARTBEAT", user("seeder")) == "OK");
  auto dials = f.last->root().maps("dials");
  REQUIRE(dials.size() == 3);
  CHECK(dials.at(0).str("callback", 255) == "tcp://192.0.2.7:5000");
  CHECK(dials.at(2).str("callback", 255) == "tcp://[2001:db8::1]:7000");
  REQUIRE(f.call("HEARTBEAT", user("seeder")) == "OK");
  CHECK_FALSE(f.last->root().has("dials"));  // taken once

  CHECK(f.call("DIAL", user("seeder")) == "NO ROUTE");  // no callback, no relay
  f.dispatcher->record_reachability("seeder", "tcp://10.1.0.2:4000", true);
  CHECK(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{5000})) == "NO ROUTE");  // dial it directly
  f.dispatcher->record_reachability("seeder", "tcp://10.1.0.2:4000", false);
  REQUIRE(f.call("REGISTER", user("mute")) == "OK");
  REQUIRE(f.call("CONNECT", user("mute").put("endpoint", "tcp://10.1.0.3:4000")) == "OK");  // promised no heartbeat
  CHECK(f.call("DIAL", user("mute").put("callback_port", std::uint64_t{5000})) == "NO ROUTE");
  CHECK(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{0})) == "BAD REQUEST");
  CHECK(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{70000})) == "BAD REQUEST");
  // A named address is refused: a seeder only ever dials where the request came from (no third host, no SSRF).
  CHECK(f.call("DIAL", user("seeder").put("callback", "tcp://10.0.0.1:22")) == "BAD REQUEST");
  CHECK(f.call("DIAL", user("seeder").put("callback", "tcp://1.2.3.4:5").put("callback_port", std::uint64_t{5})) ==
        "BAD REQUEST");
  f.peer_address = "";  // e.g. inproc: no address to call back
  CHECK(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{5000})) == "BAD REQUEST");

  // A dial not fetched within its lifetime is dropped; a disconnect forgets the waiting ones.
  f.peer_address = "192.0.2.7";
  REQUIRE(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{5})) == "OK");
  f.clock += DialQueue::kLifetimeMs + 1;
  REQUIRE(f.call("HEARTBEAT", user("seeder")) == "OK");
  CHECK_FALSE(f.last->root().has("dials"));
  REQUIRE(f.call("DIAL", user("seeder").put("callback_port", std::uint64_t{5})) == "OK");
  REQUIRE(f.call("DISCONNECT", user("seeder")) == "OK");
  REQUIRE(f.call("CONNECT", user("seeder").put("endpoint", "tcp://10.1.0.2:4000").put("heartbeat_ms", std::uint64_t{1000})) == "OK");
  REQUIRE(f.call("HEARTBEAT", user("seeder")) == "OK");
  CHECK_FALSE(f.last->root().has("dials"));
}

TEST_CASE("DIAL with a relay: one token, the downloader's side in the reply, the seeder's in its heartbeat",
          "[dispatcher][nat]") {
  Fixture f(100000, "tcp://198.51.100.10:7000");
  REQUIRE(f.call("REGISTER", user("seeder")) == "OK");
  REQUIRE(f.call("CONNECT", user("seeder").put("endpoint", "tcp://10.1.0.2:4000").put("heartbeat_ms", std::uint64_t{1000})) == "OK");
  REQUIRE(f.call("DIAL", user("seeder")) == "OK");  // no callback: the relay only
  CHECK_FALSE(f.last->root().has("callback"));
  CHECK(f.last->root().str("relay", 255) == "tcp://198.51.100.10:7000");
  const auto mine = relay_token::parse(f.last->root().str("host", 255));
  REQUIRE(mine);
  CHECK(mine->side == relay_token::Side::kDownloader);
  CHECK(relay_token::valid(std::string(32, 'k'), mine->token, relay_token::Side::kDownloader, 1800000000));
  REQUIRE(f.call("HEARTBEAT", user("seeder")) == "OK");
  auto dials = f.last->root().maps("dials");
  REQUIRE(dials.size() == 1);
  CHECK_FALSE(dials.at(0).has("callback"));
  CHECK(dials.at(0).str("relay", 255) == "tcp://198.51.100.10:7000");
  const auto theirs = relay_token::parse(dials.at(0).str("host", 255));
  REQUIRE(theirs);
  CHECK(theirs->side == relay_token::Side::kSeeder);
  CHECK(theirs->token.nonce_hex == mine->token.nonce_hex);  // the two sides of one pair
  CHECK(theirs->token.expiry_s == mine->token.expiry_s);
  CHECK(relay_token::valid(std::string(32, 'k'), theirs->token, relay_token::Side::kSeeder, 1800000000));
  // Each side holds its own mac: the downloader's cannot pass for the seeder's.
  CHECK_FALSE(relay_token::valid(std::string(32, 'k'), mine->token, relay_token::Side::kSeeder, 1800000000));
}

TEST_CASE("the dispatcher serves every op the catalogue names", "[dispatcher]") {
  Fixture f;
  for (std::string_view op : protocol::op::kAll) {
    f.call(std::string(op), MapWriter());  // no fields: BAD REQUEST for most, but never as an unknown op
    const auto error = f.last->root().opt_str("error", 200).value_or("");
    CHECK(error.find("unknown op") == std::string_view::npos);
  }
}

TEST_CASE("CONNECT from the key that owns the user replaces its session at once, with the events and log records "
          "of both ends", "[dispatcher][curve]") {
  Fixture f;
  const std::string alice(40, 'A'), mallory(40, 'M');
  REQUIRE(f.call("REGISTER", user("alice"), "", alice) == "OK");
  f.ts = "2026-11-22T00:00:01.000Z";
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.0.0.1:6000").put("heartbeat_ms", std::uint64_t{60000}),
                 "", alice) == "OK");
  CHECK(f.last->root().opt_bool("replaced") == false);

  // The peer crashed and restarts: same key, a new endpoint, no waiting for the old session's timeout.
  f.ts = "2026-11-22T00:00:02.000Z";
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.0.0.1:6001").put("heartbeat_ms", std::uint64_t{1000}),
                 "restart-1", alice) == "OK");
  CHECK(f.last->root().opt_bool("replaced") == true);
  const std::string replaced_reply = f.last_reply;
  CHECK(f.event_summary() == std::vector<std::string>{"user.registered", "peer.connected",
                                                      "peer.disconnected replaced by a new session", "peer.connected"});
  Message connected = Message::decode(f.events.back().body.data(), f.events.back().body.size());
  CHECK(connected.root().str("endpoint", 64) == "tcp://10.0.0.1:6001");
  CHECK(connected.root().str("key", 64) == alice);
  const auto& u = f.index.user(*f.index.find_user("alice"));
  CHECK(u.connected);
  CHECK(u.endpoint == "tcp://10.0.0.1:6001");
  CHECK(f.probes.back().second == "tcp://10.0.0.1:6001");

  // Every event is a log record: the old session's end is logged as the replacing request stamped it.
  CHECK(f.log_records() == std::vector<std::string>{
                               "2026-11-22T00:00:00.000Z alice REGISTER key=" + alice,
                               "2026-11-22T00:00:01.000Z alice CONNECT tcp://10.0.0.1:6000",
                               "2026-11-22T00:00:02.000Z alice DISCONNECT replaced by a new session",
                               "2026-11-22T00:00:02.000Z alice CONNECT tcp://10.0.0.1:6001"});

  // A retry of the replacing CONNECT is answered from the cache: replaced once.
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.0.0.1:6001"), "restart-1", alice) == "OK");
  CHECK(f.last_reply == replaced_reply);
  CHECK(f.events.size() == 4);

  // The new session's promise counts, not the old one's: 1 s heartbeats, expired after 3 silent seconds.
  f.clock += 3500;
  std::vector<Event> expired;
  CHECK(f.dispatcher->expire_silent_sessions(expired) == 1);

  // Another key is DENIED, whatever the session's state, and nothing is published.
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.0.0.9:6000"), "", alice) == "OK");
  const auto before = f.events.size();
  CHECK(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.0.0.9:6666"), "", mallory) == "DENIED");
  CHECK(f.events.size() == before);
  CHECK(f.index.user(*f.index.find_user("alice")).endpoint == "tcp://10.0.0.9:6000");
}

TEST_CASE("without a key that owns the user, a connected user stays USER ALREADY CONNECTED", "[dispatcher][curve]") {
  Fixture f;
  // --plaintext: no client key proves anything.
  REQUIRE(f.call("REGISTER", user("lab")) == "OK");
  REQUIRE(f.call("CONNECT", user("lab").put("endpoint", "tcp://10.0.0.1:6000")) == "OK");
  CHECK(f.call("CONNECT", user("lab").put("endpoint", "tcp://10.0.0.1:6001")) == "USER ALREADY CONNECTED");
  CHECK(f.last->root().str("error", 200) == "user 'lab' is already connected");
  // A user registered without a key (over --plaintext) belongs to nobody: a key proves nothing about it either.
  const std::string someone(40, 'S');
  CHECK(f.call("CONNECT", user("lab").put("endpoint", "tcp://10.0.0.1:6002"), "", someone) == "USER ALREADY CONNECTED");
  CHECK(f.event_summary() == std::vector<std::string>{"user.registered", "peer.connected"});
  CHECK(f.index.user(*f.index.find_user("lab")).endpoint == "tcp://10.0.0.1:6000");
}

TEST_CASE("the reply cache keeps failed mutations' replies too, and a reused id gets the stored reply whatever it "
          "now asks", "[dispatcher]") {
  Fixture f;
  REQUIRE(f.call("REGISTER", user("alice")) == "OK");
  REQUIRE(f.call("REGISTER", user("alice"), "taken") == "USERNAME IN USE");
  REQUIRE(f.call("UNREGISTER", user("alice")) == "OK");
  CHECK(f.call("REGISTER", user("alice"), "taken") == "USERNAME IN USE");  // stored, though the name is free now
  CHECK_FALSE(f.index.find_user("alice"));
  CHECK(f.call("CONNECT", user("bob").put("endpoint", "tcp://10.0.0.1:1"), "taken") == "USERNAME IN USE");  // any op
  CHECK(f.stats.retries_answered == 2);
  // Reads are not cached: the same id is answered afresh.
  CHECK(f.call("LIST_CONTENT", user("alice"), "taken") == "USER DOES NOT EXIST");
  // Nor is BAD REQUEST: the id is still free.
  CHECK(f.call("REGISTER", user("bad name"), "fresh") == "BAD REQUEST");
  CHECK(f.call("REGISTER", user("carol"), "fresh") == "OK");
}

TEST_CASE("SEARCH: q and cid together must both match, and a q without keywords is refused", "[dispatcher]") {
  Fixture f;
  REQUIRE(f.call("REGISTER", user("alice")) == "OK");
  REQUIRE(f.call("CONNECT", user("alice").put("endpoint", "tcp://10.0.0.1:1")) == "OK");
  REQUIRE(f.call("PUBLISH", publish("alice", "song.ogg")) == "OK");
  MapWriter other = publish("alice", "other.ogg");
  other.put("cid", std::string(64, 'b'));
  REQUIRE(f.call("PUBLISH", std::move(other)) == "OK");
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "song").put("cid", std::string(64, 'a'))) == "OK");
  CHECK(f.last->root().maps("results").size() == 1);
  REQUIRE(f.call("SEARCH", MapWriter().put("q", "song").put("cid", std::string(64, 'b'))) == "OK");
  CHECK(f.last->root().maps("results").empty());  // other.ogg has the cid but not the word
  CHECK(f.call("SEARCH", MapWriter().put("q", "...").put("cid", std::string(64, 'a'))) == "BAD REQUEST");
  CHECK(f.call("SEARCH", MapWriter().put("q", "")) == "BAD REQUEST");
}

TEST_CASE("ts must be an ISO 8601 UTC time with milliseconds", "[dispatcher]") {
  Fixture f;
  for (const char* bad : {"not-a-date", "2026-11-22T00:00:00Z", "2026-11-22T00:00:00.000+00:00", "2026-11-22 00:00:00.000Z",
                          "2026-13-01T00:00:00.000Z", "2026-02-29T00:00:00.000Z", "2026-11-22T24:00:00.000Z", ""}) {
    f.ts = bad;
    CHECK(f.call("REGISTER", user("alice")) == "BAD REQUEST");
    CHECK(f.last->root().str("error", 200).find("field 'ts'") != std::string_view::npos);
  }
  CHECK(f.index.user_count() == 0);
  f.ts = "2028-02-29T23:59:59.999Z";  // a leap day
  CHECK(f.call("REGISTER", user("alice")) == "OK");
}
