// test_time_client.cpp: TimeClient against an in-process TimeServer: remote stamps while it runs; local
// stamps, one warning and no waiting while it is down; recovery after the backoff; idle keep-alive clients.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/time_client.hpp"
#include "common/timestamp.hpp"
#include "timesvc/time_formats.hpp"
#include "timesvc/time_server.hpp"

using zshare::Stamp;
using zshare::TimeClient;
using zshare::timesvc::ServerOptions;
using zshare::timesvc::TimeServer;

namespace {

ServerOptions loopback_any_port(int threads = 2) {
  ServerOptions o;
  o.bind = "127.0.0.1";
  o.port = 0;
  o.threads = threads;
  return o;
}

std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void check_consistent(const Stamp& s) {
  CHECK(s.iso8601.size() == 24);
  CHECK(s.iso8601 == zshare::iso8601_utc(s.epoch_ms));
}

// Polls until TimeClient answers from the service, or the deadline passes.
bool wait_for_remote(TimeClient& client, std::chrono::seconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (!client.now().local) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

TEST_CASE("seeds_utc formats DD/MM/YYYY HH:MM:SS in UTC, truncating milliseconds", "[timesvc]") {
  CHECK(zshare::timesvc::seeds_utc(0) == "01/01/1970 00:00:00");
  CHECK(zshare::timesvc::seeds_utc(1'700'000'000'999) == "14/11/2023 22:13:20");
  CHECK(zshare::timesvc::seeds_utc(951'782'400'000) == "29/02/2000 00:00:00");
  CHECK(zshare::timesvc::seeds_utc(-1) == "31/12/1969 23:59:59");
}

TEST_CASE("TimeClient gets stamps from a running time service", "[timesvc]") {
  TimeServer server(loopback_any_port());
  server.start();
  REQUIRE(server.port() > 0);
  std::ostringstream warnings;
  TimeClient client(server.url(), warnings);

  const auto before = zshare::now_epoch_ms();
  const Stamp s = client.now();
  const auto after = zshare::now_epoch_ms();
  CHECK_FALSE(s.local);
  CHECK(s.epoch_ms >= before - 1000);  // same host, same clock; slack only for a clock step
  CHECK(s.epoch_ms <= after + 1000);
  check_consistent(s);

  // Many calls over the kept-alive connection, all from the service, never going backwards much.
  std::int64_t last = s.epoch_ms;
  for (int i = 0; i < 200; ++i) {
    const Stamp t = client.now();
    REQUIRE_FALSE(t.local);
    CHECK(t.epoch_ms >= last - 1000);
    last = t.epoch_ms;
  }
  CHECK(warnings.str().empty());
  server.stop();
}

TEST_CASE("TimeClient falls back to local stamps, warns once, and does not wait while the service is down",
          "[timesvc]") {
  auto server = std::make_unique<TimeServer>(loopback_any_port());
  server->start();
  const int port = server->port();
  std::ostringstream warnings;
  TimeClient::Options options;
  options.retry_after = std::chrono::milliseconds(200);
  TimeClient client(server->url(), warnings, options);
  REQUIRE_FALSE(client.now().local);

  server->stop();
  server.reset();
  for (int i = 0; i < 50; ++i) {
    const Stamp s = client.now();  // returns (bounded by the client's timeouts) with a usable stamp
    CHECK(s.local);
    check_consistent(s);
  }
  CHECK(count_lines(warnings.str()) == 1);
  CHECK(warnings.str().find("time service") != std::string::npos);

  // The service comes back on the same port: the client finds it again after the backoff.
  ServerOptions again = loopback_any_port();
  again.port = port;
  TimeServer restarted(again);
  restarted.start();
  CHECK(wait_for_remote(client, std::chrono::seconds(10)));
  CHECK(count_lines(warnings.str()) == 1);
}

TEST_CASE("TimeClient with no URL stamps locally without a warning", "[timesvc]") {
  std::ostringstream warnings;
  TimeClient client("", warnings);
  const Stamp s = client.now();
  CHECK(s.local);
  check_consistent(s);
  CHECK(warnings.str().empty());
}

TEST_CASE("TimeClient against a port nobody listens on", "[timesvc]") {
  // Find a port that was free a moment ago: bind a server to port 0, note the port, stop it.
  int port = 0;
  {
    TimeServer probe(loopback_any_port(1));
    probe.start();
    port = probe.port();
  }
  std::ostringstream warnings;
  TimeClient client("http://127.0.0.1:" + std::to_string(port), warnings);
  for (int i = 0; i < 10; ++i) CHECK(client.now().local);
  CHECK(count_lines(warnings.str()) == 1);
}

TEST_CASE("idle keep-alive connections do not hold the server's only worker", "[timesvc]") {
  TimeServer server(loopback_any_port(1));
  server.start();
  std::ostringstream warnings;
  std::vector<std::unique_ptr<TimeClient>> clients;
  for (int i = 0; i < 6; ++i) clients.push_back(std::make_unique<TimeClient>(server.url(), warnings));
  // Each client keeps its connection open between calls; with one worker, a thread-per-connection
  // server would make every client but the first time out.
  for (int round = 0; round < 5; ++round) {
    for (auto& c : clients) CHECK_FALSE(c->now().local);
  }
  CHECK(warnings.str().empty());
}

TEST_CASE("resolve_timesvc_url: --timesvc wins, then ZSHARE_TIMESVC, else none", "[timesvc]") {
  const char* saved = std::getenv("ZSHARE_TIMESVC");
  const std::string saved_value = saved ? saved : "";
  ::setenv("ZSHARE_TIMESVC", "http://127.0.0.1:9", 1);
  CHECK(zshare::resolve_timesvc_url("http://127.0.0.1:7") == "http://127.0.0.1:7");
  CHECK(zshare::resolve_timesvc_url("") == "http://127.0.0.1:9");
  ::unsetenv("ZSHARE_TIMESVC");
  CHECK(zshare::resolve_timesvc_url("").empty());
  if (saved) ::setenv("ZSHARE_TIMESVC", saved_value.c_str(), 1);
}

TEST_CASE("TimeServer start reports an address in use", "[timesvc]") {
  TimeServer first(loopback_any_port(1));
  first.start();
  ServerOptions same = loopback_any_port(1);
  same.port = first.port();
  TimeServer second(same);
  CHECK_THROWS_AS(second.start(), std::runtime_error);
}
