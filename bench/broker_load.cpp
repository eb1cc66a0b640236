// broker_load.cpp: zshare-bench-load: populates a broker's index (or seeds its database directly), drives N DEALER
// clients (closed or open loop) against the broker or a raw ROUTER echo baseline, and serves that echo. Two mixes:
// reads (SEARCH and LIST_CONTENT from a fixed pool, the echo's too) and writes (each client PUBLISHes a file nobody
// has, then DELETEs it, owner drawn at random among the connected users). A load may dial several brokers: client i
// goes to the i-th endpoint of the list, round robin, and the figures are the sum (the same generator either way).
//
// Invariants: every loop is bounded in count and time; sockets bind/connect to 127.0.0.1 only; request ids are
// unique (a random 64-bit prefix per process, the client's number and a counter). The machine-readable output is
// one line per measurement starting with "RESULT", then key=value pairs; run_broker_bench.sh parses it.
// With --broker-key the clients dial over CurveZMQ (populate: one keypair for the whole run, since REGISTER binds
// each user to its sender's key; load and stats: a fresh keypair per connection); without it they are plaintext,
// as the echo always is.
#include "bench/request_pool.hpp"
#include "bench/seed_store.hpp"
#include "bench/workload.hpp"
#include "common/codec.hpp"
#include "common/content_hash.hpp"
#include "common/curve_keys.hpp"
#include "common/endpoint_list.hpp"
#include "common/protocol.hpp"
#include "zshare/protocol_ops.hpp"
#include "common/stop_signals.hpp"
#include "common/zap_handler.hpp"
#include "common/timestamp.hpp"
#include "common/validate.hpp"

#include <CLI/CLI.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace proto = zshare::protocol;
namespace op = zshare::protocol::op;
using zshare::bench::fake_endpoint;
using zshare::bench::file_spec;
using zshare::bench::FileSpec;
using zshare::bench::splitmix64;
using zshare::bench::user_name;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---------------------------------------------------------------------------------------------------------------
// Requests.

// The `ts` field, reformatted at most once per millisecond.
class Stamp {
 public:
  const std::string& now() {
    const auto ms = zshare::now_epoch_ms();
    if (ms != ms_) {
      ms_ = ms;
      text_ = zshare::iso8601_utc(ms);
    }
    return text_;
  }

 private:
  std::int64_t ms_ = -1;
  std::string text_;
};

zshare::MapWriter header(std::string_view op, const std::string& id, Stamp& stamp) {
  zshare::MapWriter w;
  w.put("v", proto::kVersion).put("op", op).put("id", id).put("ts", stamp.now());
  return w;
}

std::string random_prefix() {
  std::random_device rd;
  const std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, r);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------------
// DEALER clients and the wait on many of them at once (ppoll on ZMQ_FD: sub-millisecond timeouts, no spinning).

// How the DEALERs dial: plaintext (no server key), or CurveZMQ with the broker's public key and either one keypair
// shared by every connection (populate: CONNECT and PUBLISH must come from the key that REGISTERed the user) or a
// fresh keypair per connection (load and stats: reads are open to any key, and each handshake is then a new client's).
struct Dial {
  std::string server_key;                        // Z85; empty: plaintext
  std::optional<zshare::curve::KeyPair> shared;  // unset: a fresh keypair per connection

  bool curve() const { return !server_key.empty(); }
  const char* name() const { return curve() ? "curve" : "plaintext"; }
  void apply(zmq::socket_t& sock) const {
    if (curve()) zshare::curve::make_client(sock, shared ? *shared : zshare::curve::generate(), server_key);
  }
};

struct Pending {
  Clock::time_point intended;  // when the request was due (open loop) or sent (closed loop)
  std::uint64_t tag = 0;       // the caller's: file index, or request kind
};

struct Conn {
  zmq::socket_t sock;
  int fd = -1;
  std::string prefix;  // "<process prefix>.<client>."
  std::uint64_t counter = 0;
  std::unordered_map<std::uint64_t, Pending> pending;
  Clock::time_point next_send{};
  std::uint64_t events_seen = 0;
  std::string unpublish_user, unpublish_name;  // the write mix: the file this client DELETEs next (empty: PUBLISH)

  Conn(zmq::context_t& ctx, const std::string& endpoint, std::string id_prefix, const Dial& dial)
      : sock(ctx, zmq::socket_type::dealer), prefix(std::move(id_prefix)) {
    dial.apply(sock);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::maxmsgsize, proto::kClientMaxMessageBytes);
    sock.set(zmq::sockopt::sndhwm, 200000);
    sock.set(zmq::sockopt::rcvhwm, 200000);
    sock.set(zmq::sockopt::reconnect_ivl, 10);
    sock.connect(endpoint);
    fd = sock.get(zmq::sockopt::fd);
  }

  std::string next_id() { return prefix + std::to_string(counter++); }

  void send(const std::string& body) {
    sock.send(zmq::message_t(), zmq::send_flags::sndmore);
    sock.send(zmq::buffer(body), zmq::send_flags::none);
  }

  // To the echo: a tag frame before the body, the pool entry's number (u32) and the request's counter (u64). The
  // echo answers with the tag and the entry's canned reply, so matching a reply decodes nothing more than the
  // broker's reply needs.
  void send(const std::string& body, std::uint32_t pool_index, std::uint64_t counter) {
    char tag[12];
    std::memcpy(tag, &pool_index, 4);
    std::memcpy(tag + 4, &counter, 8);
    sock.send(zmq::message_t(), zmq::send_flags::sndmore);
    sock.send(zmq::buffer(tag, sizeof tag), zmq::send_flags::sndmore);
    sock.send(zmq::buffer(body), zmq::send_flags::none);
  }

  // Receives one whole message without waiting; the body is its last frame. False when none is queued.
  bool try_recv(zmq::message_t& body) {
    zmq::message_t before;
    return try_recv(before, body);
  }

  // The same, keeping the frame before the body too (the echo's answer: the tag, then the canned reply).
  bool try_recv(zmq::message_t& before, zmq::message_t& body) {
    bool got = false;
    for (int frames = 0; frames < 64; ++frames) {
      zmq::message_t part;
      if (!sock.recv(part, zmq::recv_flags::dontwait)) return got;
      got = true;
      const bool more = part.more();
      before = std::move(body);
      body = std::move(part);
      if (!more) return true;
    }
    return got;
  }

  bool readable() { return (sock.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0; }
};

// The counter a reply's id carries, when the id has this connection's prefix.
bool id_counter(const Conn& c, std::string_view id, std::uint64_t& out) {
  if (id.size() <= c.prefix.size() || id.substr(0, c.prefix.size()) != c.prefix) return false;
  std::uint64_t v = 0;
  for (char ch : id.substr(c.prefix.size())) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  out = v;
  return true;
}

// Returns at once when a socket has a message queued, else sleeps in ppoll until one may have or `until`.
void wait_readable(std::vector<std::unique_ptr<Conn>>& conns, Clock::time_point until) {
  for (auto& c : conns)
    if (c->readable()) return;
  const auto now = Clock::now();
  if (until <= now) return;
  std::vector<pollfd> fds;
  fds.reserve(conns.size());
  for (auto& c : conns) fds.push_back(pollfd{c->fd, POLLIN, 0});
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until - now).count();
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  ::ppoll(fds.data(), fds.size(), &ts, nullptr);
}

std::string preview(const zmq::message_t& m) {
  std::string s(static_cast<const char*>(m.data()), std::min<std::size_t>(m.size(), 40));
  for (auto& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '.';
  return s;
}

zshare::DecodeLimits client_limits() {
  zshare::DecodeLimits lim;
  lim.array = 100000;
  lim.map = 256;
  lim.str = static_cast<std::size_t>(proto::kClientMaxMessageBytes);
  return lim;
}

std::string status_summary(const std::map<std::string, std::uint64_t>& statuses) {
  std::string s;
  for (const auto& [k, v] : statuses) {
    if (!s.empty()) s += ",";
    std::string key = k;
    std::replace(key.begin(), key.end(), ' ', '_');
    s += key + ":" + std::to_string(v);
  }
  return s.empty() ? "-" : s;
}

// ---------------------------------------------------------------------------------------------------------------
// populate: REGISTER, CONNECT, then PUBLISH, each phase pipelined over several clients.

struct PhaseResult {
  std::uint64_t ok = 0, existing = 0, errors = 0, unanswered = 0;
  std::map<std::string, std::uint64_t> statuses;
  double seconds = 0;
};

using MakeRequest = std::function<std::string(std::uint64_t index, const std::string& id, Stamp& stamp)>;
using OnReply = std::function<void(std::uint64_t index, const zmq::message_t& body)>;

PhaseResult run_pipelined(zmq::context_t& ctx, const std::string& endpoint, const Dial& dial, const std::string& phase,
                          int clients, int window, std::uint64_t count, const MakeRequest& make,
                          const std::set<std::string>& existing_statuses, double idle_timeout_s,
                          double phase_timeout_s, const std::string& process_prefix, const OnReply& on_reply = {}) {
  PhaseResult r;
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < clients; ++i)
    conns.push_back(
        std::make_unique<Conn>(ctx, endpoint, process_prefix + "." + phase + std::to_string(i) + ".", dial));
  Stamp stamp;
  const auto limits = client_limits();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(phase_timeout_s));
  const auto idle = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(idle_timeout_s));
  auto last_reply = start;
  std::uint64_t next_index = 0, answered = 0, next_progress = count / 10;
  std::size_t in_flight = 0;
  bool printed_error = false;
  zmq::message_t body;

  while (answered < count) {
    const auto now = Clock::now();
    if (now >= deadline) {
      std::fprintf(stderr, "%s: phase deadline of %.0f s reached\n", phase.c_str(), phase_timeout_s);
      break;
    }
    if (in_flight > 0 && now - last_reply >= idle) {
      std::fprintf(stderr, "%s: no reply for %.0f s with %zu requests in flight\n", phase.c_str(), idle_timeout_s,
                   in_flight);
      break;
    }
    for (auto& c : conns) {
      while (c->pending.size() < static_cast<std::size_t>(window) && next_index < count) {
        const std::uint64_t n = c->counter;
        const std::string id = c->next_id();
        c->send(make(next_index, id, stamp));
        c->pending.emplace(n, Pending{Clock::now(), next_index});
        ++next_index;
        ++in_flight;
      }
    }
    wait_readable(conns, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
    for (auto& c : conns) {
      for (int k = 0; k < 100000 && c->try_recv(body); ++k) {
        last_reply = Clock::now();
        std::string status = "UNDECODABLE";
        std::uint64_t n = 0;
        bool matched = false;
        try {
          const auto msg = zshare::Message::decode(body.data(), body.size(), limits);
          const auto root = msg.root();
          const auto id = root.opt_str("id", proto::kMaxIdBytes);
          matched = id && id_counter(*c, *id, n) && c->pending.count(n) > 0;
          status = std::string(root.opt_str("status", 64).value_or("NO STATUS"));
          if (status != proto::status::kOk && !printed_error && !existing_statuses.count(status)) {
            printed_error = true;
            std::fprintf(stderr, "%s: first error: %s: %s\n", phase.c_str(), status.c_str(),
                         std::string(root.opt_str("error", 1024).value_or("")).c_str());
          }
        } catch (const std::exception& e) {
          if (!printed_error) {
            printed_error = true;
            std::fprintf(stderr, "%s: undecodable reply (%s): %s\n", phase.c_str(), e.what(), preview(body).c_str());
          }
        }
        if (!matched) {
          ++r.statuses["UNMATCHED ID"];
          continue;
        }
        if (on_reply) on_reply(c->pending[n].tag, body);
        c->pending.erase(n);
        --in_flight;
        ++answered;
        ++r.statuses[status];
        if (status == proto::status::kOk) ++r.ok;
        else if (existing_statuses.count(status)) ++r.existing;
        else ++r.errors;
        if (count >= 100000 && answered >= next_progress) {
          std::fprintf(stderr, "%s: %" PRIu64 "/%" PRIu64 " in %.1f s\n", phase.c_str(), answered, count,
                       seconds_between(start, Clock::now()));
          next_progress += count / 10;
        }
      }
    }
  }
  r.unanswered = count - answered;
  r.seconds = seconds_between(start, Clock::now());
  std::printf("RESULT phase=%s n=%" PRIu64 " ok=%" PRIu64 " existing=%" PRIu64 " errors=%" PRIu64
              " unanswered=%" PRIu64 " seconds=%.3f rate=%.0f statuses=%s\n",
              phase.c_str(), count, r.ok, r.existing, r.errors, r.unanswered, r.seconds,
              r.seconds > 0 ? static_cast<double>(answered) / r.seconds : 0.0, status_summary(r.statuses).c_str());
  std::fflush(stdout);
  return r;
}

int cmd_populate(const std::string& endpoint, Dial dial, std::uint64_t users, std::uint64_t files, int clients,
                 int window, double idle_timeout_s, double phase_timeout_s) {
  if (users == 0) throw std::runtime_error("--users must be at least 1");
  if (dial.curve()) dial.shared = zshare::curve::generate();  // the owner of every user this run registers
  zmq::context_t ctx(1);
  const std::string prefix = random_prefix();
  const auto start = Clock::now();

  auto reg = run_pipelined(
      ctx, endpoint, dial, "register", clients, window, users,
      [](std::uint64_t i, const std::string& id, Stamp& st) {
        return header(op::kRegister, id, st).put("user", user_name(i)).finish();
      },
      {std::string(proto::status::kUsernameInUse)}, idle_timeout_s, phase_timeout_s, prefix);
  auto con = run_pipelined(
      ctx, endpoint, dial, "connect", clients, window, users,
      [](std::uint64_t i, const std::string& id, Stamp& st) {
        return header(op::kConnect, id, st).put("user", user_name(i)).put("endpoint", fake_endpoint(i)).finish();
      },
      {std::string(proto::status::kUserAlreadyConnected)}, idle_timeout_s, phase_timeout_s, prefix);
  auto pub = run_pipelined(
      ctx, endpoint, dial, "publish", clients, window, files,
      [users](std::uint64_t i, const std::string& id, Stamp& st) {
        const FileSpec f = file_spec(i, users);
        return header(op::kPublish, id, st)
            .put("user", f.user)
            .put("name", f.name)
            .put("description", f.description)
            .put("size", f.size)
            .put("cid", zshare::to_hex(f.cid))
            .put("chunk_size", static_cast<std::uint64_t>(zshare::kDefaultChunkSize))
            .finish();
      },
      {std::string(proto::status::kContentAlreadyPublished)}, idle_timeout_s, phase_timeout_s, prefix);

  const double total = seconds_between(start, Clock::now());
  const std::uint64_t errors = reg.errors + con.errors + pub.errors;
  const std::uint64_t unanswered = reg.unanswered + con.unanswered + pub.unanswered;
  std::printf("RESULT populate users=%" PRIu64 " files=%" PRIu64 " seconds=%.3f publish_seconds=%.3f"
              " files_per_s=%.0f errors=%" PRIu64 " unanswered=%" PRIu64 " security=%s\n",
              users, files, total, pub.seconds, pub.seconds > 0 ? static_cast<double>(files) / pub.seconds : 0.0,
              errors, unanswered, dial.name());
  return errors == 0 && unanswered == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// load: N clients, closed loop (one request in flight each) or open loop (a fixed schedule at R/N each).

enum Kind : std::uint64_t { kSearch = 0, kList = 1, kPublish = 2, kDelete = 3 };
const char* const kKindNames[] = {"SEARCH", "LIST_CONTENT", "PUBLISH", "DELETE"};

struct LoadConfig {
  std::vector<std::string> endpoints;  // client i dials endpoints[i % size]
  Dial dial;  // plaintext, or CurveZMQ with a fresh keypair per client
  bool write_mix = false;  // PUBLISH then DELETE of a fresh file, instead of the read pool
  int clients = 16;
  int threads = 1;
  double seconds = 5;
  double warmup = 1;
  double rate = 0;  // 0: closed loop
  double drain = 2;
  std::uint64_t users = 10000;
  double list_fraction = 0.2;
  std::uint64_t limit = 20;
  bool echo = false;  // the target is the ROUTER echo: it sends back the request, then its canned reply
  std::size_t pool = 50000;  // distinct requests (request_pool.hpp); the echo's canned replies must match
  std::vector<zshare::bench::PoolEntry> requests;  // make_pool(pool, users, list_fraction)
  std::size_t max_in_flight = 10000;  // per client, open loop
  std::string latency_log;            // when set: one line per measured reply (diagnosis of stalls)
};

struct LoadStats {
  std::uint64_t sent = 0, ok = 0, errors = 0, unanswered = 0, skipped = 0, unmatched = 0;
  std::uint64_t search_n = 0, search_results = 0, list_n = 0, list_files = 0, reply_bytes = 0;
  std::uint64_t publish_n = 0, delete_n = 0;
  double max_send_lag_us = 0;
  std::vector<std::uint32_t> lat_us;
  struct Sample {
    double due_ms;  // when the request was due, from the window's start
    std::uint32_t lat_us;
    std::uint32_t kind;
  };
  std::vector<Sample> samples;  // only with --latency-log
  std::map<std::string, std::uint64_t> statuses;
  std::string first_error;

  void merge(LoadStats&& o) {
    sent += o.sent, ok += o.ok, errors += o.errors, unanswered += o.unanswered, skipped += o.skipped;
    unmatched += o.unmatched, search_n += o.search_n, search_results += o.search_results, list_n += o.list_n;
    list_files += o.list_files, reply_bytes += o.reply_bytes, publish_n += o.publish_n, delete_n += o.delete_n;
    max_send_lag_us = std::max(max_send_lag_us, o.max_send_lag_us);
    lat_us.insert(lat_us.end(), o.lat_us.begin(), o.lat_us.end());
    samples.insert(samples.end(), o.samples.begin(), o.samples.end());
    for (const auto& [k, v] : o.statuses) statuses[k] += v;
    if (first_error.empty()) first_error = o.first_error;
  }
};

// Picks the next request from the pool at random and stamps it with its id and time.
class QueryMaker {
 public:
  QueryMaker(const LoadConfig& cfg, std::uint64_t seed) : cfg_(cfg), rng_(seed) {}

  // Builds the next request of `c`; `kind` says which it is, `index` its pool entry (reads only).
  std::string next(Conn& c, const std::string& id, Kind& kind, std::uint32_t& index) {
    index = 0;
    if (cfg_.write_mix) return next_mutation(c, id, kind);
    index = static_cast<std::uint32_t>(rng_() % cfg_.requests.size());
    return build(cfg_.requests[index], id, stamp_, cfg_.limit, kind);
  }

  static std::string build(const zshare::bench::PoolEntry& e, const std::string& id, Stamp& stamp,
                           std::uint64_t limit, Kind& kind) {
    if (e.kind == zshare::bench::RequestKind::kListContent) {
      kind = kList;
      return header(op::kListContent, id, stamp).put("user", e.arg).finish();
    }
    kind = kSearch;
    return header(op::kSearch, id, stamp).put("q", e.arg).put("limit", limit).finish();
  }

 private:
  // The write mix, per client: PUBLISH a file no one has (its name carries the request id, unique to this process:
  // a rerun never meets an earlier run's file), owned by a random user (the seeded users are unbound, so any key
  // may publish for them; they must be connected), then DELETE that file. A mutation's id is always fresh: a
  // retried id would be answered from the reply cache without touching the store.
  std::string next_mutation(Conn& c, const std::string& id, Kind& kind) {
    if (!c.unpublish_name.empty()) {
      kind = kDelete;
      std::string body = header(op::kDelete, id, stamp_).put("user", c.unpublish_user).put("name", c.unpublish_name).finish();
      c.unpublish_user.clear();
      c.unpublish_name.clear();
      return body;
    }
    kind = kPublish;
    c.unpublish_user = user_name(rng_() % cfg_.users);
    c.unpublish_name = "wmix-" + id + ".bin";
    const zshare::Hash cid = zshare::sha256(c.unpublish_name.data(), c.unpublish_name.size());
    return header(op::kPublish, id, stamp_)
        .put("user", c.unpublish_user)
        .put("name", c.unpublish_name)
        .put("description", "a file of the write mix, deleted right after")
        .put("size", std::uint64_t{1'000'000})
        .put("cid", zshare::to_hex(cid))
        .put("chunk_size", static_cast<std::uint64_t>(zshare::kDefaultChunkSize))
        .finish();
  }

  const LoadConfig& cfg_;
  std::mt19937_64 rng_;
  Stamp stamp_;
};

LoadStats run_load_thread(zmq::context_t& ctx, const LoadConfig& cfg, int first_client, int nclients,
                          const std::string& process_prefix, Clock::time_point start) {
  LoadStats st;
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < nclients; ++i)
    conns.push_back(std::make_unique<Conn>(ctx, cfg.endpoints[static_cast<std::size_t>(first_client + i) % cfg.endpoints.size()],
                                           process_prefix + "." + std::to_string(first_client + i) + ".", cfg.dial));
  QueryMaker maker(cfg, splitmix64(std::hash<std::string>{}(process_prefix) + static_cast<std::uint64_t>(first_client)));
  const auto limits = client_limits();
  const auto window_start = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.warmup));
  const auto window_end =
      window_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  const auto drain_end =
      window_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.drain));
  const bool open_loop = cfg.rate > 0;
  Clock::duration interval{};
  if (open_loop) {
    const double per_client = cfg.rate / cfg.clients;
    interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / per_client));
    std::mt19937_64 phase_rng(static_cast<std::uint64_t>(first_client) + 1);
    for (auto& c : conns)
      c->next_send = start + Clock::duration(static_cast<Clock::rep>(phase_rng() % static_cast<std::uint64_t>(
                                                                         std::max<Clock::rep>(1, interval.count()))));
  }
  st.lat_us.reserve(static_cast<std::size_t>(open_loop ? cfg.rate * (cfg.seconds + 1) / cfg.threads : 1 << 20));

  auto send_one = [&](Conn& c, Clock::time_point intended) {
    const std::uint64_t n = c.counter;
    const std::string id = c.next_id();
    Kind kind = kSearch;
    std::uint32_t index = 0;
    const std::string body = maker.next(c, id, kind, index);
    if (cfg.echo) c.send(body, index, n); else c.send(body);
    c.pending.emplace(n, Pending{intended, kind});
    ++st.sent;
  };

  if (!open_loop)
    for (auto& c : conns) send_one(*c, Clock::now());

  zmq::message_t body, tag;  // tag: the echo's frame before its canned reply
  // Bounded: the loop ends at drain_end at the latest, or as soon as nothing is pending after window_end.
  while (true) {
    auto now = Clock::now();
    if (now >= drain_end) break;
    if (now >= window_end) {
      bool any = false;
      for (auto& c : conns) any = any || !c->pending.empty();
      if (!any) break;
    }
    Clock::time_point wake = now >= window_end ? drain_end : std::min(window_end, now + std::chrono::milliseconds(100));
    if (open_loop && now < window_end) {
      for (auto& c : conns) {
        // Send everything that is due; a request sent late still counts its latency from when it was due.
        for (int k = 0; k < 1000 && c->next_send <= now && c->next_send < window_end; ++k) {
          if (c->pending.size() >= cfg.max_in_flight) {
            ++st.skipped;
          } else {
            const double lag = std::chrono::duration<double, std::micro>(now - c->next_send).count();
            st.max_send_lag_us = std::max(st.max_send_lag_us, c->next_send >= window_start ? lag : 0.0);
            send_one(*c, c->next_send);
          }
          c->next_send += interval;
        }
        wake = std::min(wake, c->next_send);
      }
    }
    wait_readable(conns, wake);
    for (auto& c : conns) {
      for (int k = 0; k < 100000 && (cfg.echo ? c->try_recv(tag, body) : c->try_recv(body)); ++k) {
        const auto t = Clock::now();
        std::uint64_t n = 0;
        std::string status;
        std::uint64_t items = 0;
        bool matched = false;
        try {
          // The same decoding of a broker's reply in both cases (the echo's is a canned copy of one).
          const auto msg = zshare::Message::decode(body.data(), body.size(), limits);
          const auto root = msg.root();
          if (cfg.echo) {
            matched = tag.size() == 12 && (std::memcpy(&n, tag.data<char>() + 4, 8), c->pending.count(n) > 0);
          } else {
            const auto id = root.opt_str("id", proto::kMaxIdBytes);
            matched = id && id_counter(*c, *id, n) && c->pending.count(n) > 0;
          }
          status = std::string(root.opt_str("status", 64).value_or("NO STATUS"));
          if (status == proto::status::kOk) {
            const auto* arr = root.find(root.has("results") ? "results" : "files");
            if (arr && arr->type == msgpack::type::ARRAY) items = arr->via.array.size;
          } else if (st.first_error.empty()) {
            st.first_error = status + ": " + std::string(root.opt_str("error", 1024).value_or(""));
          }
        } catch (const std::exception& e) {
          status = "UNDECODABLE";
          if (st.first_error.empty()) st.first_error = std::string("undecodable reply: ") + e.what();
        }
        if (!matched) {
          ++st.unmatched;
          continue;
        }
        const Pending p = c->pending[n];
        c->pending.erase(n);
        st.reply_bytes += body.size();
        const bool in_window = t >= window_start && t < window_end;
        if (in_window) {
          ++st.statuses[status];
          if (status == proto::status::kOk) {
            ++st.ok;
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - p.intended).count();
            st.lat_us.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(us, UINT32_MAX)));
            if (!cfg.latency_log.empty())
              st.samples.push_back({std::chrono::duration<double, std::milli>(p.intended - window_start).count(),
                                    st.lat_us.back(), static_cast<std::uint32_t>(p.tag)});
            if (p.tag == kSearch) ++st.search_n, st.search_results += items;
            else if (p.tag == kList) ++st.list_n, st.list_files += items;
            else if (p.tag == kPublish) ++st.publish_n;
            else ++st.delete_n;
          } else {
            ++st.errors;
          }
        }
        if (!open_loop && t < window_end) send_one(*c, Clock::now());
      }
    }
  }
  for (auto& c : conns)
    for (const auto& [n, p] : c->pending)
      if (p.intended >= window_start && p.intended < window_end) ++st.unanswered;
  return st;
}

double percentile_us(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())) - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int cmd_load(LoadConfig cfg, const std::string& label) {
  if (cfg.clients < 1 || cfg.threads < 1) throw std::runtime_error("--clients and --threads must be at least 1");
  if (cfg.seconds <= 0 || cfg.seconds > 3600) throw std::runtime_error("--seconds must be in (0, 3600]");
  cfg.threads = std::min(cfg.threads, cfg.clients);
  zmq::context_t ctx(1);
  const std::string prefix = random_prefix();
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  std::vector<LoadStats> parts(static_cast<std::size_t>(cfg.threads));
  std::vector<std::thread> threads;
  int first = 0;
  for (int t = 0; t < cfg.threads; ++t) {
    const int n = cfg.clients / cfg.threads + (t < cfg.clients % cfg.threads ? 1 : 0);
    threads.emplace_back([&, t, first, n] {
      std::this_thread::sleep_until(start);
      parts[static_cast<std::size_t>(t)] = run_load_thread(ctx, cfg, first, n, prefix, start);
    });
    first += n;
  }
  for (auto& th : threads) th.join();
  LoadStats st;
  for (auto& p : parts) st.merge(std::move(p));

  const double rps = static_cast<double>(st.ok) / cfg.seconds;
  const double p50 = percentile_us(st.lat_us, 0.50);
  const double p99 = percentile_us(st.lat_us, 0.99);
  const double p999 = percentile_us(st.lat_us, 0.999);
  const double maxl = st.lat_us.empty() ? 0 : *std::max_element(st.lat_us.begin(), st.lat_us.end());
  if (!st.first_error.empty()) std::fprintf(stderr, "load: first error: %s\n", st.first_error.c_str());
  if (!cfg.latency_log.empty()) {
    std::sort(st.samples.begin(), st.samples.end(), [](const auto& a, const auto& b) { return a.due_ms < b.due_ms; });
    std::FILE* f = std::fopen(cfg.latency_log.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + cfg.latency_log);
    std::fprintf(f, "due_ms latency_us kind\n");
    for (const auto& s : st.samples)
      std::fprintf(f, "%.3f %u %s\n", s.due_ms, s.lat_us, kKindNames[s.kind & 3]);
    std::fclose(f);
  }
  std::printf("RESULT load target=%s mix=%s endpoints=%zu mode=%s clients=%d threads=%d seconds=%.1f rate=%.0f sent=%" PRIu64
              " ok=%" PRIu64 " errors=%" PRIu64 " unanswered=%" PRIu64 " skipped=%" PRIu64 " unmatched=%" PRIu64
              " rps=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f max_send_lag_us=%.0f"
              " search=%" PRIu64 " search_avg_results=%.2f list=%" PRIu64 " list_avg_files=%.2f"
              " publish=%" PRIu64 " delete=%" PRIu64 " avg_reply_bytes=%.0f statuses=%s security=%s\n",
              label.c_str(), cfg.write_mix ? "write" : "read", cfg.endpoints.size(), cfg.rate > 0 ? "open" : "closed", cfg.clients, cfg.threads, cfg.seconds, cfg.rate, st.sent,
              st.ok, st.errors, st.unanswered, st.skipped, st.unmatched, rps, p50, p99, p999, maxl, st.max_send_lag_us,
              st.search_n, st.search_n ? static_cast<double>(st.search_results) / static_cast<double>(st.search_n) : 0.0,
              st.list_n, st.list_n ? static_cast<double>(st.list_files) / static_cast<double>(st.list_n) : 0.0,
              st.publish_n, st.delete_n,
              st.sent ? static_cast<double>(st.reply_bytes) / static_cast<double>(st.sent) : 0.0,
              status_summary(st.statuses).c_str(), cfg.dial.name());
  return st.ok > 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// stats: one STATS request, waiting until the broker answers (used to time a restart).

int cmd_stats(const std::string& endpoint, const Dial& dial, double timeout_s, std::int64_t since_epoch_ns) {
  zmq::context_t ctx(1);
  const std::string prefix = random_prefix() + ".stats.";
  std::vector<std::unique_ptr<Conn>> conns;
  Stamp stamp;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  // Lazy Pirate: the request waits in the DEALER's queue until the broker binds; after 5 s of silence the socket
  // is closed and reopened and the same request resent, in case the first connection was lost.
  auto attempt_end = start;
  std::string request;
  zmq::message_t body;
  for (int attempt = 0; attempt < 100000 && Clock::now() < deadline; ++attempt) {
    conns.clear();
    conns.push_back(std::make_unique<Conn>(ctx, endpoint, prefix, dial));
    Conn& c = *conns.front();
    if (request.empty()) request = header(op::kStats, c.next_id(), stamp).finish();
    c.send(request);
    attempt_end = std::min(deadline, Clock::now() + std::chrono::seconds(5));
    while (Clock::now() < attempt_end) {
      wait_readable(conns, attempt_end);
      for (int k = 0; k < 1000 && c.try_recv(body); ++k) {
        const auto msg = zshare::Message::decode(body.data(), body.size(), client_limits());
        const auto root = msg.root();
        std::uint64_t got = 0;
        const auto id = root.opt_str("id", proto::kMaxIdBytes);
        if (!id || !id_counter(c, *id, got) || got != 0) continue;
        const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
        const std::string status(root.opt_str("status", 64).value_or("NO STATUS"));
        std::ostringstream out;
        out << "RESULT stats status=" << (status == proto::status::kOk ? "OK" : "ERROR") << " security=" << dial.name()
            << " elapsed_ms=" << seconds_between(start, Clock::now()) * 1000;
        if (since_epoch_ns > 0) out << " since_ms=" << static_cast<double>(now_ns - since_epoch_ns) / 1e6;
        for (const char* key : {"users", "connected", "files", "seq", "requests", "bad_requests", "retries_answered",
                                "dropped"}) {
          const auto* v = root.find(key);
          if (v && v->type == msgpack::type::POSITIVE_INTEGER) out << " " << key << "=" << v->via.u64;
        }
        std::cout << out.str() << std::endl;
        if (status != proto::status::kOk)
          std::fprintf(stderr, "stats: %s: %s\n", status.c_str(),
                       std::string(root.opt_str("error", 1024).value_or("")).c_str());
        return status == proto::status::kOk ? 0 : 1;
      }
    }
  }
  std::fprintf(stderr, "stats: no answer from %s within %.1f s\n", endpoint.c_str(), timeout_s);
  return 2;
}

// ---------------------------------------------------------------------------------------------------------------
// echo: the baseline, a raw ROUTER that answers each request with the broker's reply to it, canned (request_pool.hpp):
// [identity][empty][tag][body] in, [identity][empty][tag][canned reply of the tag's pool entry] out. The reply
// frame points at the canned bytes (no copy). With a key file it serves over CurveZMQ, as the broker does (and, like
// the broker, admits any client key).

int cmd_echo(const std::string& endpoint, double max_seconds, const std::string& replies_path,
             const std::string& key_file) {
  const std::vector<std::string> canned = zshare::bench::read_canned(replies_path);
  if (canned.empty()) throw std::runtime_error(replies_path + " has no replies");
  zshare::StopSignals stop;  // before the context's threads, which inherit the blocked signals
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  std::unique_ptr<zshare::curve::ZapHandler> zap;
  if (!key_file.empty()) {
    zap = std::make_unique<zshare::curve::ZapHandler>(ctx);
    zshare::curve::make_server(router, zshare::curve::read_secret_file(key_file));
  }
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::maxmsgsize, proto::kSocketMaxMessageBytes);
  router.set(zmq::sockopt::sndhwm, 200000);
  router.set(zmq::sockopt::rcvhwm, 200000);
  router.bind(endpoint);
  std::fprintf(stderr, "echo: ROUTER bound to %s (%s), %zu canned replies\n", endpoint.c_str(),
               zap ? "curve" : "plaintext", canned.size());
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(max_seconds));
  std::uint64_t echoed = 0, refused = 0;
  std::vector<zmq::message_t> frames;
  while (!stop.flag().load() && Clock::now() < deadline) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    for (int k = 0; k < 10000; ++k) {
      frames.clear();
      if (!zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
      std::uint32_t index = 0;
      if (frames.size() != 4 || frames[2].size() != 12 ||
          (std::memcpy(&index, frames[2].data(), 4), index >= canned.size())) {
        ++refused;  // not the generator's: no answer
        continue;
      }
      const std::string& reply = canned[index];
      frames[3] = zmq::message_t(const_cast<char*>(reply.data()), reply.size(), nullptr, nullptr);
      zmq::send_multipart(router, frames);
      ++echoed;
    }
  }
  std::printf("RESULT echo echoed=%" PRIu64 " refused=%" PRIu64 "\n", echoed, refused);
  return 0;
}

// calibrate: every pool request once to the broker; the replies become the echo's canned replies.
int cmd_calibrate(const std::string& endpoint, const Dial& dial, const LoadConfig& cfg, const std::string& out) {
  zmq::context_t ctx(1);
  std::vector<std::string> replies(cfg.requests.size());
  std::uint64_t not_ok = 0;
  const auto r = run_pipelined(
      ctx, endpoint, dial, "calibrate", 4, 64, cfg.requests.size(),
      [&](std::uint64_t i, const std::string& id, Stamp& st) {
        Kind kind;
        return QueryMaker::build(cfg.requests[i], id, st, cfg.limit, kind);
      },
      {}, 60, 3600, random_prefix(),
      [&](std::uint64_t i, const zmq::message_t& body) { replies[i].assign(body.data<char>(), body.size()); });
  for (const auto& reply : replies) not_ok += reply.empty();
  if (r.errors > 0 || r.unanswered > 0 || not_ok > 0) {
    std::fprintf(stderr, "calibrate: %" PRIu64 " errors, %" PRIu64 " unanswered: no replies file written\n", r.errors,
                 r.unanswered + not_ok);
    return 1;
  }
  zshare::bench::write_canned(out, replies);
  std::size_t bytes = 0;
  for (const auto& reply : replies) bytes += reply.size();
  std::printf("RESULT calibrate pool=%zu avg_reply_bytes=%.0f seconds=%.3f\n", replies.size(),
              static_cast<double>(bytes) / static_cast<double>(replies.size()), r.seconds);
  return 0;
}

void check_loopback(const std::string& endpoint) {
  if (endpoint.rfind("tcp://127.0.0.1:", 0) != 0)
    throw std::runtime_error("endpoint must be tcp://127.0.0.1:PORT (loopback only): " + endpoint);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zshare-bench-load: populate a broker, load it (or the ROUTER echo baseline), serve the echo"};
  app.require_subcommand(1);
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::string broker_key;  // Z85 public key or a key file; empty: plaintext
  const char* const kBrokerKeyHelp =
      "the broker's CurveZMQ public key, or its .pub file: dial over Curve (default: plaintext, for a --plaintext "
      "broker or the echo)";

  auto* populate = app.add_subcommand("populate", "REGISTER and CONNECT users, then PUBLISH files");
  std::uint64_t users = 10000, files = 1000000;
  int pop_clients = 4, window = 128;
  double idle_timeout = 60, phase_timeout = 3600;
  populate->add_option("--connect", endpoint, "broker ROUTER endpoint");
  populate->add_option("--broker-key", broker_key, kBrokerKeyHelp);
  populate->add_option("--users", users, "users to register and connect")->check(CLI::Range(1, 10000000));
  populate->add_option("--files", files, "files to publish in total")->check(CLI::Range(0, 100000000));
  populate->add_option("--clients", pop_clients, "concurrent DEALER clients")->check(CLI::Range(1, 256));
  populate->add_option("--window", window, "requests in flight per client")->check(CLI::Range(1, 10000));
  populate->add_option("--idle-timeout", idle_timeout, "give up after this long without a reply (s)");
  populate->add_option("--phase-timeout", phase_timeout, "give up a phase after this long (s)");

  auto* seed = app.add_subcommand("seed", "write users and files straight into a new broker database (bulk load)");
  std::string seed_db, seed_key;
  seed->add_option("--db", seed_db, "the database to create (must not exist)")->required();
  seed->add_option("--users", users, "users")->check(CLI::Range(1, 10000000));
  seed->add_option("--files", files, "files, file i owned by user i % users")->check(CLI::Range(0, 100000000));
  seed->add_option("--owner-key", seed_key, "CurveZMQ public key (Z85 or a .pub file) owning every user; default none");

  auto* load = app.add_subcommand("load", "N DEALER clients issuing SEARCH and LIST_CONTENT, or PUBLISH and DELETE");
  LoadConfig cfg;
  std::string target = "broker", mix = "read";
  load->add_option("--connect", endpoint,
                   "broker (or echo) ROUTER endpoint, or a comma-separated list: client i dials the i-th, round robin");
  load->add_option("--broker-key", broker_key, kBrokerKeyHelp);
  load->add_option("--clients", cfg.clients, "concurrent DEALER clients")->check(CLI::Range(1, 4096));
  load->add_option("--threads", cfg.threads, "generator threads sharing the clients")->check(CLI::Range(1, 64));
  load->add_option("--seconds", cfg.seconds, "measured window (s)");
  load->add_option("--warmup", cfg.warmup, "unmeasured time before the window (s)")->check(CLI::Range(0.0, 600.0));
  load->add_option("--drain", cfg.drain, "wait for late replies after the window (s)")->check(CLI::Range(0.0, 600.0));
  load->add_option("--rate", cfg.rate, "open loop at this total rate (req/s); 0 = closed loop")
      ->check(CLI::Range(0.0, 10000000.0));
  load->add_option("--users", cfg.users, "users populated (LIST_CONTENT picks one at random)")
      ->check(CLI::Range(1, 10000000));
  load->add_option("--list-fraction", cfg.list_fraction, "share of LIST_CONTENT in the mix")
      ->check(CLI::Range(0.0, 1.0));
  load->add_option("--limit", cfg.limit, "SEARCH limit")->check(CLI::Range(1, 1000));
  load->add_option("--latency-log", cfg.latency_log, "write 'due_ms latency_us kind' per measured reply here");
  load->add_option("--target", target, "broker, or echo (it answers with the broker's canned replies)")
      ->check(CLI::IsMember({"broker", "echo"}));
  load->add_option("--mix", mix,
                   "read: SEARCH and LIST_CONTENT from the pool; write: PUBLISH a new file of a random (connected) "
                   "user, then DELETE it, per client")
      ->check(CLI::IsMember({"read", "write"}));
  load->add_option("--pool", cfg.pool, "distinct requests the clients draw from (the echo's canned replies match)")
      ->check(CLI::Range(1, 10000000));

  auto* calibrate = app.add_subcommand("calibrate", "ask the broker every pool request once; save its replies for the echo");
  std::string canned_path;
  calibrate->add_option("--connect", endpoint, "broker ROUTER endpoint");
  calibrate->add_option("--broker-key", broker_key, kBrokerKeyHelp);
  calibrate->add_option("--users", cfg.users, "users populated")->check(CLI::Range(1, 10000000));
  calibrate->add_option("--list-fraction", cfg.list_fraction, "share of LIST_CONTENT")->check(CLI::Range(0.0, 1.0));
  calibrate->add_option("--limit", cfg.limit, "SEARCH limit")->check(CLI::Range(1, 1000));
  calibrate->add_option("--pool", cfg.pool, "pool size, as the load runs'")->check(CLI::Range(1, 10000000));
  calibrate->add_option("--out", canned_path, "canned-replies file to write")->required();

  auto* stats = app.add_subcommand("stats", "send STATS and wait for the answer");
  double stats_timeout = 30;
  std::int64_t since_ns = 0;
  stats->add_option("--connect", endpoint, "broker ROUTER endpoint");
  stats->add_option("--broker-key", broker_key, kBrokerKeyHelp);
  stats->add_option("--timeout", stats_timeout, "give up after (s)")->check(CLI::Range(0.1, 3600.0));
  stats->add_option("--since-ns", since_ns, "also report ms since this CLOCK_REALTIME instant (date +%s%N)");

  auto* echo = app.add_subcommand("echo", "raw ZeroMQ ROUTER echo server (the baseline)");
  std::string bind = "tcp://127.0.0.1:5599";
  double echo_max = 7200;
  echo->add_option("--bind", bind, "endpoint to bind");
  echo->add_option("--max-seconds", echo_max, "exit after this long at most")->check(CLI::Range(1.0, 86400.0));
  std::string echo_replies, echo_key;
  echo->add_option("--replies", echo_replies, "canned-replies file (from calibrate) to answer with")->required();
  echo->add_option("--key", echo_key, "secret key file (zshare-broker keygen): serve over CurveZMQ; default plaintext");

  CLI11_PARSE(app, argc, argv);
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // 1 us: open-loop send times and ppoll wake-ups stay precise

  try {
    Dial dial;
    if (!broker_key.empty()) dial.server_key = zshare::curve::read_public_key(broker_key);
    if (*populate) {
      check_loopback(endpoint);
      return cmd_populate(endpoint, dial, users, files, pop_clients, window, idle_timeout, phase_timeout);
    }
    if (*seed)
      return zshare::bench::seed_store(seed_db, users, files,
                                       seed_key.empty() ? std::string() : zshare::curve::read_public_key(seed_key));
    if (*load) {
      cfg.endpoints = zshare::parse_endpoint_list(endpoint);
      for (const auto& e : cfg.endpoints) check_loopback(e);
      cfg.echo = target == "echo";
      cfg.write_mix = mix == "write";
      if (cfg.echo && cfg.write_mix) throw std::runtime_error("--mix write has no echo baseline (no canned replies)");
      cfg.dial = dial;
      cfg.requests = zshare::bench::make_pool(cfg.pool, cfg.users, cfg.list_fraction);
      return cmd_load(cfg, target);
    }
    if (*calibrate) {
      check_loopback(endpoint);
      cfg.requests = zshare::bench::make_pool(cfg.pool, cfg.users, cfg.list_fraction);
      return cmd_calibrate(endpoint, dial, cfg, canned_path);
    }
    if (*stats) {
      check_loopback(endpoint);
      return cmd_stats(endpoint, dial, stats_timeout, since_ns);
    }
    if (*echo) {
      check_loopback(bind);
      return cmd_echo(bind, echo_max, echo_replies, echo_key);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zshare-bench-load: %s\n", e.what());
    return 2;
  }
  return 0;
}
