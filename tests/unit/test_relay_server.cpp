// test_relay_server.cpp: zshare-relay's RelayServer in-process on loopback, driven by raw SOCKS5 clients (the bytes
// libzmq sends): a pair is answered only once both sides are there and then passes bytes both ways and half closes;
// bad tokens and a taken side are refused with 05 02 and counted by reason; a reader that stops reading stops its
// writer (the relay buffers a pipe, not the stream), and everything arrives once it reads again; an end that sends
// its last bytes and closes after the other end's half close loses none of them.
#include "common/relay_token.hpp"
#include "relay/relay_server.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstring>
#include <sstream>
#include <string>
#include <future>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace zshare;
using relay::RelayOptions;
using relay::RelayServer;
using relay::UniqueFd;
using relay_token::Side;

namespace {

const std::string kSecret(relay_token::kSecretBytes, 'k');

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

const std::string kSucceeded = bytes({5, 0, 0, 1, 0, 0, 0, 0, 0, 0});
const std::string kNotAllowed = bytes({5, 2, 0, 1, 0, 0, 0, 0, 0, 0});

// A RelayServer on 127.0.0.1, its loop on a thread until the object goes (stats are read after stop()).
struct RunningRelay {
  explicit RunningRelay(RelayOptions options) : server(with_defaults(std::move(options)), log) {
    std::signal(SIGPIPE, SIG_IGN);  // as zshare-relay's main does: splice into a reset socket raises it
    port = static_cast<std::uint16_t>(std::stoi(server.endpoint().substr(server.endpoint().rfind(':') + 1)));
    loop = std::thread([this] { server.run(stopping); });
  }
  ~RunningRelay() { stop(); }
  void stop() {
    stopping = true;
    if (loop.joinable()) loop.join();
  }
  static RelayOptions with_defaults(RelayOptions options) {
    options.bind = "tcp://127.0.0.1:0";
    options.secret = kSecret;
    return options;
  }

  std::ostringstream log;  // written by the loop thread; read only after stop()
  RelayServer server;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::thread loop;
};

// `receive_buffer`: SO_RCVBUF before connecting (0: the kernel's), to make a slow reader's buffers fill early.
UniqueFd connect_to(std::uint16_t port, int receive_buffer = 0) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  if (receive_buffer > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  timeval timeout{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Without Catch's assertions, which are not thread-safe: what a writer thread calls (its caller checks the result).
bool write_all(int fd, const std::string& data) {
  std::size_t at = 0;
  while (at < data.size()) {
    const ssize_t n = ::send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

void send_all(int fd, const std::string& data) { REQUIRE(write_all(fd, data)); }

// Exactly `size` bytes, or fewer when the stream ends or 5 s pass without a byte.
std::string receive(int fd, std::size_t size) {
  std::string out(size, '\0');
  std::size_t at = 0;
  while (at < size) {
    const ssize_t n = ::recv(fd, out.data() + at, size - at, 0);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  out.resize(at);
  return out;
}

bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// Greeting and request as libzmq sends them; returns the socket, the request's answer not yet read.
UniqueFd socks_request(std::uint16_t port, const std::string& host, int receive_buffer = 0) {
  UniqueFd fd = connect_to(port, receive_buffer);
  send_all(fd.get(), bytes({5, 1, 0}));
  REQUIRE(receive(fd.get(), 2) == bytes({5, 0}));
  send_all(fd.get(), bytes({5, 1, 0, 3, static_cast<int>(host.size())}) + host + bytes({0, 9}));
  return fd;
}

}  // namespace

TEST_CASE("relay: a pair is answered once both sides came, then bytes pass both ways and half closes pass on",
          "[relay]") {
  RunningRelay relay({});
  const auto token = relay_token::mint(kSecret, static_cast<std::uint64_t>(::time(nullptr)), 600);
  UniqueFd seeder = socks_request(relay.port, relay_token::host_for(token.seeder, Side::kSeeder));
  send_all(seeder.get(), "early");  // sent before the answer: kept for the circuit
  CHECK_FALSE(readable_within(seeder.get(), 200));  // alone: no answer yet
  UniqueFd downloader = socks_request(relay.port, relay_token::host_for(token.downloader, Side::kDownloader));
  CHECK(receive(seeder.get(), kSucceeded.size()) == kSucceeded);
  CHECK(receive(downloader.get(), kSucceeded.size()) == kSucceeded);
  CHECK(receive(downloader.get(), 5) == "early");

  const std::string big(3 << 20, 'x');
  bool written = false;
  std::thread writer([&] { written = write_all(downloader.get(), big); });
  CHECK(receive(seeder.get(), big.size()) == big);
  writer.join();
  CHECK(written);
  send_all(seeder.get(), "reply");
  CHECK(receive(downloader.get(), 5) == "reply");

  // The seeder stops writing: the downloader sees the end, and may still write to the seeder.
  REQUIRE(::shutdown(seeder.get(), SHUT_WR) == 0);
  CHECK(receive(downloader.get(), 1).empty());
  send_all(downloader.get(), "after");
  CHECK(receive(seeder.get(), 5) == "after");
  REQUIRE(::shutdown(downloader.get(), SHUT_WR) == 0);
  CHECK(receive(seeder.get(), 1).empty());  // both ways ended: the circuit closes

  relay.stop();
  const auto& stats = relay.server.stats();
  CHECK(stats.paired == 1);
  CHECK(stats.ended.at("closed") == 1);
  CHECK(stats.bytes_forwarded == 5 + big.size() + 5 + 5);
  CHECK_THAT(relay.log.str(), Catch::Contains("circuit end nonce=" + token.seeder.nonce_hex.substr(0, 8)) &&
                                  Catch::Contains("reason=closed"));
  CHECK_THAT(relay.log.str(), !Catch::Contains("xxxx"));  // no payload in the log
}

TEST_CASE("relay: bad mac, expired, malformed tokens and a taken side are refused with 05 02", "[relay]") {
  RelayOptions options;
  options.unix_now = [] { return std::uint64_t{10000}; };
  RunningRelay relay(options);
  const auto token = relay_token::mint(kSecret, 10000, 600);
  auto forged = token.seeder;
  forged.mac_hex = relay_token::mac_of(std::string(32, 'x'), Side::kSeeder, forged.expiry_s, forged.nonce_hex);
  const auto expired = relay_token::mint(kSecret, 9000, 1000);  // expiry 10000 == now
  // The downloader's own token presented as the seeder's side: holding one side never makes the other.
  for (const std::string& host : {relay_token::host_for(forged, Side::kSeeder),
                                  relay_token::host_for(token.downloader, Side::kSeeder),
                                  relay_token::host_for(expired.seeder, Side::kSeeder), std::string("example.com")}) {
    CAPTURE(host);
    UniqueFd fd = socks_request(relay.port, host);
    CHECK(receive(fd.get(), 10) == kNotAllowed);
    CHECK(receive(fd.get(), 1).empty());  // and closed
  }
  UniqueFd first = socks_request(relay.port, relay_token::host_for(token.seeder, Side::kSeeder));
  UniqueFd second = socks_request(relay.port, relay_token::host_for(token.seeder, Side::kSeeder));
  CHECK(receive(second.get(), 10) == kNotAllowed);  // one seeder per token
  UniqueFd downloader = socks_request(relay.port, relay_token::host_for(token.downloader, Side::kDownloader));
  CHECK(receive(first.get(), 10) == kSucceeded);  // the refused ones took nothing from the genuine pair
  CHECK(receive(downloader.get(), 10) == kSucceeded);
  UniqueFd third = socks_request(relay.port, relay_token::host_for(token.downloader, Side::kDownloader));
  CHECK(receive(third.get(), 10) == kNotAllowed);  // the live circuit holds the token

  relay.stop();
  const auto& refused = relay.server.stats().refused;
  CHECK(refused.at("bad-mac") == 2);
  CHECK(refused.at("expired") == 1);
  CHECK(refused.at("malformed-token") == 1);
  CHECK(refused.at("side-taken") == 2);
  CHECK(relay.server.stats().paired == 1);
}

TEST_CASE("relay: a reader that stops reading stops its writer, and nothing is lost when it reads again", "[relay]") {
  RunningRelay relay({});
  const auto token = relay_token::mint(kSecret, static_cast<std::uint64_t>(::time(nullptr)), 600);
  UniqueFd seeder = socks_request(relay.port, relay_token::host_for(token.seeder, Side::kSeeder));
  UniqueFd downloader = socks_request(relay.port, relay_token::host_for(token.downloader, Side::kDownloader));
  REQUIRE(receive(seeder.get(), 10) == kSucceeded);
  REQUIRE(receive(downloader.get(), 10) == kSucceeded);
  // The downloader reads nothing; the seeder writes without blocking until every buffer on the way is full.
  REQUIRE(::fcntl(seeder.get(), F_SETFL, O_NONBLOCK) == 0);
  const std::string block(64 << 10, 'z');
  std::size_t written = 0;
  for (int quiet_polls = 0; quiet_polls < 5;) {
    const ssize_t n = ::send(seeder.get(), block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      quiet_polls = 0;
      continue;
    }
    REQUIRE(errno == EAGAIN);
    pollfd p{seeder.get(), POLLOUT, 0};
    if (::poll(&p, 1, 100) == 0) ++quiet_polls;  // 0.5 s without room: the relay stopped reading it
  }
  INFO("bytes written before the seeder blocked: " << written);
  CHECK(written < (64u << 20));  // the kernel's socket buffers and one pipe, not the whole stream
  CHECK(receive(downloader.get(), written).size() == written);
}

TEST_CASE("relay: an end that answers a half close with its last bytes and closes loses none of them", "[relay]") {
  RunningRelay relay({});
  const auto token = relay_token::mint(kSecret, static_cast<std::uint64_t>(::time(nullptr)), 600);
  UniqueFd seeder = socks_request(relay.port, relay_token::host_for(token.seeder, Side::kSeeder), 64 << 10);  // reads late
  UniqueFd downloader = socks_request(relay.port, relay_token::host_for(token.downloader, Side::kDownloader));
  REQUIRE(receive(seeder.get(), 10) == kSucceeded);
  REQUIRE(receive(downloader.get(), 10) == kSucceeded);
  REQUIRE(::shutdown(seeder.get(), SHUT_WR) == 0);  // "that was the request"
  REQUIRE(receive(downloader.get(), 1).empty());
  // The answer, then a full close, while the seeder reads nothing: the relay sees the downloader's socket shut both
  // ways (its FIN came after ours went: EPOLLHUP) with megabytes still to pass on.
  const std::string answer(4 << 20, 'a');
  std::promise<void> closed;
  bool answered = false;
  std::thread answering([&] {
    answered = write_all(downloader.get(), answer);
    downloader.reset();
    closed.set_value();
  });
  closed.get_future().wait_for(std::chrono::seconds(3));  // the close first when the buffers take it all
  CHECK(receive(seeder.get(), answer.size() + 1) == answer);  // all of it, then the end
  answering.join();
  CHECK(answered);
  relay.stop();
  CHECK(relay.server.stats().ended.at("closed") == 1);
}
