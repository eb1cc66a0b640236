// relay_server.hpp: zshare-relay's logic: pairs two inbound SOCKS5 connections that name the same relay token (one
// seeder `s`, one downloader `d`; common/relay_token.hpp) and forwards raw bytes between them (relay/circuit.hpp).
// The CurveZMQ session runs end to end through it: the relay never holds a key, never connects anywhere itself, and
// answers a request with success only once its circuit is paired. One thread, one epoll loop, non-blocking sockets.
// Limits: connections per source IP (from accept to close, whatever their stage: each end of a circuit counts),
// unpaired connections in all, an unpaired connection's lifetime (pair timeout), a circuit's silence (idle timeout)
// and its rate. At most one live circuit per token; after it closes the token may pair again until it expires.
#pragma once

#include "common/relay_token.hpp"
#include "relay/circuit.hpp"
#include "relay/socks5_handshake.hpp"
#include "relay/unique_fd.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace zshare::relay {

struct RelayOptions {
  std::string bind = "tcp://0.0.0.0:5558";  // tcp://HOST:PORT; port 0 or * picks a free one
  std::string secret;                       // the 32 raw bytes shared with the broker (relay_token::load_secret)
  std::uint64_t rate_limit = 0;             // bytes a second per circuit, both ways together; 0: no limit
  std::size_t max_circuits_per_ip = 32;     // connections from one IP, pending and active
  std::size_t max_pending = 1024;           // unpaired connections in all
  std::chrono::milliseconds pair_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  // Seconds since the epoch for token expiry; the system clock unless a test injects one.
  std::function<std::uint64_t()> unix_now;
};

// What the relay did since it started. Reasons are the words of the log lines (e.g. "bad-mac", "idle").
struct RelayStats {
  std::uint64_t accepted = 0;
  std::uint64_t paired = 0;
  std::uint64_t bytes_forwarded = 0;          // both ways, circuits ended so far
  std::map<std::string, std::uint64_t> refused;    // connections refused, by reason
  std::map<std::string, std::uint64_t> unpaired;   // connections that ended unpaired, by reason
  std::map<std::string, std::uint64_t> ended;      // circuits ended, by reason
};

class RelayServer {
 public:
  using Clock = Circuit::Clock;

  // Binds and listens; throws std::runtime_error with the reason (bad endpoint, port in use, no secret...).
  RelayServer(RelayOptions options, std::ostream& log);
  ~RelayServer();
  RelayServer(const RelayServer&) = delete;
  RelayServer& operator=(const RelayServer&) = delete;

  // The bound endpoint, tcp://HOST:PORT with the port chosen when the options said 0 or *.
  const std::string& endpoint() const { return endpoint_; }
  // Serves until `stop` is true; `wake_fd` (optional, e.g. StopSignals::fd()) readable wakes the loop at once,
  // else the flag is seen within 200 ms. Closes every connection before it returns.
  void run(const std::atomic<bool>& stop, int wake_fd = -1);
  const RelayStats& stats() const { return stats_; }
  std::string stats_line() const;  // the stats in one line: "accepted=... paired=... refused.bad-mac=..."

 private:
  enum class Stage { kHandshake, kPending, kPaired };
  struct Connection {
    std::uint64_t id = 0;
    UniqueFd fd;
    std::string ip;
    Clock::time_point accepted;
    Stage stage = Stage::kHandshake;
    Socks5Handshake handshake;
    std::string token_key;        // kPending, kPaired: the token's expiry.nonce.mac
    std::string nonce_prefix;     // for the log lines
    relay_token::Side side = relay_token::Side::kSeeder;
    std::uint64_t circuit = 0;    // kPaired
    std::uint32_t events = 0;     // what epoll watches now
    bool watched = false;         // added to the epoll set
    bool hung_up = false;         // kPaired: both ways of the socket shut; out of the epoll set for good
  };
  struct CircuitEntry {
    Circuit circuit;
    std::uint64_t ends[2];        // connection ids: [Circuit::kSeederEnd], [Circuit::kDownloaderEnd]
    std::string token_key;
    Clock::time_point paired;
    std::optional<Clock::time_point> resume_queued;  // the earliest pump already in resumes_
  };
  struct TokenSlot {
    std::uint64_t pending[2] = {0, 0};  // connection ids waiting for their other side, by side
    std::uint64_t circuit = 0;          // the live circuit of this token
  };
  // (time, circuit id): a circuit to pump then: a paced one whose debt is paid, or one with a hung-up end to read.
  using Resume = std::pair<Clock::time_point, std::uint64_t>;

  void bind_listener(const std::string& endpoint);
  void accept_all(Clock::time_point now);
  void dispatch(std::uint64_t id, std::uint32_t events, Clock::time_point now);
  void on_handshake(Connection& c, Clock::time_point now);
  void on_request(Connection& c, Clock::time_point now);
  const char* token_refusal(const relay_token::Token& token, relay_token::Side side) const;
  void pair(Connection& arriving, Connection& waiting, Clock::time_point now);
  std::size_t pipe_bytes_for_next_circuit() const;
  void on_circuit(std::uint64_t circuit_id, std::uint32_t events, Clock::time_point now, Connection* source);
  void unwatch_hung_up(Connection& c);
  void after_pump(std::uint64_t circuit_id, CircuitEntry& entry, Clock::time_point now);
  void refuse(Connection& c, const char* reason, socks5::Reply reply);
  void end_unpaired(Connection& c, const char* reason);
  void end_circuit(std::uint64_t circuit_id, const char* reason, const std::string& detail, Clock::time_point now);
  void close_connection(std::uint64_t id);
  void release_token(const std::string& key, std::uint64_t connection_id);
  void watch(Connection& c, std::uint32_t events);
  bool send_small(Connection& c, const std::string& bytes);
  static void discard_input(int fd);
  void sweep(Clock::time_point now);
  void pump_scheduled(Clock::time_point now);
  int wait_timeout_ms(Clock::time_point now) const;
  void log_line(const std::string& text);
  void log_refusal(const std::string& ip, const std::string& nonce_prefix, const char* reason);
  void drop_refused(Connection& c, const char* reason);
  void resume_listener(Clock::time_point now);

  RelayOptions options_;
  std::ostream& log_;
  UniqueFd epoll_;
  UniqueFd listener_;
  std::string endpoint_;
  std::uint64_t next_id_ = 2;  // 0: the listener, 1: the wake fd
  std::unordered_map<std::uint64_t, Connection> connections_;
  std::unordered_map<std::uint64_t, CircuitEntry> circuits_;
  std::unordered_map<std::string, TokenSlot> tokens_;
  std::unordered_map<std::string, std::size_t> per_ip_;
  std::size_t unpaired_ = 0;
  std::priority_queue<Resume, std::vector<Resume>, std::greater<Resume>> resumes_;
  Clock::time_point next_sweep_;
  std::chrono::milliseconds sweep_every_{200};
  std::optional<Clock::time_point> listener_paused_until_;  // out of descriptors: accept again later
  std::uint64_t log_second_ = 0;  // refusal lines are capped per second; the rest only counted
  std::uint64_t logged_this_second_ = 0;
  std::uint64_t unlogged_ = 0;
  RelayStats stats_;
};

}  // namespace zshare::relay
