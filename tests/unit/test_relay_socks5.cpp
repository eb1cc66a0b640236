// test_relay_socks5.cpp: the relay's SOCKS5 server handshake (relay/socks5_handshake.hpp) on the exact bytes
// libzmq 4.3.4 sends, fed whole and one byte at a time; it never asks for a byte past the request; greetings and
// requests it does not serve are refused with their SOCKS5 codes.
#include "relay/socks5_handshake.hpp"

#include <catch2/catch.hpp>

#include <string>

using zshare::relay::Socks5Handshake;
namespace socks5 = zshare::relay::socks5;

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::string request_for(const std::string& host, int port) {
  return bytes({5, 1, 0, 3, static_cast<int>(host.size())}) + host + bytes({port >> 8, port & 0xff});
}

// Feeds `input` in pieces of at most `step` bytes, each no longer than wanted(); returns every answer, joined.
std::string feed(Socks5Handshake& h, const std::string& input, std::size_t step) {
  std::string answers;
  std::size_t at = 0;
  while (at < input.size() && h.wanted() > 0) {
    const std::size_t take = std::min({step, h.wanted(), input.size() - at});
    answers += h.consume(std::string_view(input).substr(at, take));
    at += take;
  }
  return answers;
}

}  // namespace

TEST_CASE("socks5: libzmq's greeting and CONNECT request, whole or byte by byte", "[relay]") {
  const std::string host = "s.1700000000.00112233445566778899aabbccddeeff.2bf855c00240132f2e6082d47c1c9223";
  for (std::size_t step : {std::size_t{1}, std::size_t{1000}}) {
    CAPTURE(step);
    Socks5Handshake h;
    CHECK(h.wanted() == 2);
    CHECK(feed(h, bytes({5, 1, 0}), step) == bytes({5, 0}));
    CHECK(h.step() == Socks5Handshake::Step::kRequest);
    CHECK(h.wanted() == 4);
    CHECK(feed(h, request_for(host, 9), step).empty());  // the answer waits for the pairing
    CHECK(h.step() == Socks5Handshake::Step::kDone);
    CHECK(h.host() == host);
    CHECK(h.port() == 9);
    CHECK(h.wanted() == 0);
  }
}

TEST_CASE("socks5: the parser never asks for bytes past the request", "[relay]") {
  Socks5Handshake h;
  const std::string after = "ZMTP greeting bytes that belong to the circuit";
  const std::string stream = bytes({5, 2, 2, 0}) + request_for("d.1.x", 0x1234) + after;
  std::size_t at = 0;
  std::string answers;
  while (h.wanted() > 0) {
    const std::size_t n = std::min(h.wanted(), stream.size() - at);  // a read of exactly what it wants
    answers += h.consume(std::string_view(stream).substr(at, n));
    at += n;
  }
  CHECK(answers == bytes({5, 0}));  // the greeting offered user/password (2) and no-auth (0): no-auth chosen
  CHECK(h.host() == "d.1.x");
  CHECK(h.port() == 0x1234);
  CHECK(stream.substr(at) == after);
}

TEST_CASE("socks5: greetings it cannot serve are refused", "[relay]") {
  {
    Socks5Handshake h;
    CHECK(h.consume(bytes({4, 1})).empty());  // SOCKS4: no SOCKS5 answer makes sense; the relay closes
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
    CHECK(h.wanted() == 0);
  }
  {
    Socks5Handshake h;
    CHECK(h.consume(bytes({5, 0})) == bytes({5, 0xff}));
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
  }
  {
    Socks5Handshake h;  // user/password only (libzmq with ZMQ_SOCKS_USERNAME set)
    CHECK(feed(h, bytes({5, 1, 2}), 100) == bytes({5, 0xff}));
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
    CHECK(std::string(h.refusal()).find("no-authentication") != std::string::npos);
  }
}

TEST_CASE("socks5: requests other than CONNECT to a domain name are refused with their codes", "[relay]") {
  const auto after_greeting = [] {
    Socks5Handshake h;
    REQUIRE(feed(h, bytes({5, 1, 0}), 100) == bytes({5, 0}));
    return h;
  };
  {
    Socks5Handshake h = after_greeting();
    CHECK(h.consume(bytes({5, 2, 0, 3})) == socks5::reply(socks5::Reply::kCommandNotSupported));  // BIND
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
  }
  {
    Socks5Handshake h = after_greeting();
    CHECK(h.consume(bytes({5, 1, 0, 1})) == socks5::reply(socks5::Reply::kAddressTypeNotSupported));  // IPv4
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
  }
  {
    Socks5Handshake h = after_greeting();
    CHECK(h.consume(bytes({4, 1, 0, 3})) == socks5::reply(socks5::Reply::kGeneralFailure));
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
  }
  {
    Socks5Handshake h = after_greeting();
    CHECK(feed(h, bytes({5, 1, 0, 3, 0}), 100) == socks5::reply(socks5::Reply::kGeneralFailure));  // empty name
    CHECK(h.step() == Socks5Handshake::Step::kRefused);
  }
  CHECK(socks5::reply(socks5::Reply::kSucceeded) == bytes({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
  CHECK(socks5::reply(socks5::Reply::kNotAllowed) == bytes({5, 2, 0, 1, 0, 0, 0, 0, 0, 0}));
}
