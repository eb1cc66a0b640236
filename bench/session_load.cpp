// session_load.cpp: zshare-bench-sessions: opens N CurveZMQ sessions to a broker (a DEALER each, each with its own
// fresh keypair), REGISTERs and CONNECTs them (a bounded window at a time), heartbeats every connected session at the
// interval the broker's replies ask for, and measures a window of fixed length once every session follows the final
// ask: heartbeats sent and answered, and with --broker-pid the broker's CPU time and RSS (/proc). One RESULT line.
// A DEALER holds two descriptors (its TCP connection and its mailbox), so the sessions are split over forked shard
// processes, each within the fd limit; the parent (no ZeroMQ of its own, forked before any context exists) steers
// them over pipes with one-line messages. Invariants: every loop is bounded in count and time; connections go to
// the endpoint given (run_session_bench.sh: 127.0.0.1 only); every request has a deadline.
#include "common/codec.hpp"
#include "common/curve_keys.hpp"
#include "common/protocol.hpp"
#include "zshare/protocol_ops.hpp"
#include "common/timestamp.hpp"

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace proto = zshare::protocol;
namespace st = zshare::protocol::status;
namespace op = zshare::protocol::op;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Config {
  std::string endpoint;
  std::string server_key;      // Z85
  std::size_t sessions = 20000;
  std::size_t shards = 0;      // 0: as few as the fd limit allows
  std::uint64_t promise_ms = 1000;
  std::size_t window = 256;    // sessions being set up (handshake, REGISTER, CONNECT) at once, per shard
  double connect_timeout_s = 900;
  double request_timeout_s = 30;
  double settle_s = -1;        // after connecting; < 0: the longest interval asked so far, plus a second
  double measure_s = 30;
  int broker_pid = 0;          // 0: no /proc figures
  std::string prefix;          // user names are <prefix>-<index>
};

// ---------------------------------------------------------------------------------------------------------------
// One-line messages between the parent and its shards: a word, then key=value pairs.

std::string get(const std::map<std::string, std::string>& kv, const std::string& key) {
  auto it = kv.find(key);
  return it == kv.end() ? "0" : it->second;
}

std::map<std::string, std::string> parse_kv(const std::string& line) {
  std::map<std::string, std::string> kv;
  std::istringstream in(line);
  std::string word;
  in >> kv["_"];
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) kv[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return kv;
}

void write_line(int fd, const std::string& line) {
  const std::string text = line + "\n";
  std::size_t done = 0;
  for (int tries = 0; done < text.size() && tries < 1000; ++tries) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n > 0) done += static_cast<std::size_t>(n);
    else if (n < 0 && errno != EINTR && errno != EAGAIN) return;
  }
}

// Accumulates bytes from a non-blocking pipe and hands out whole lines.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  int fd() const { return fd_; }
  // Reads what is there; false at end of file or on an error.
  bool fill() {
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) buffer_.append(buf, static_cast<std::size_t>(n));
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
  }
  bool next(std::string& line) {
    const auto nl = buffer_.find('\n');
    if (nl == std::string::npos) return false;
    line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return true;
  }

 private:
  int fd_;
  std::string buffer_;
};

// ---------------------------------------------------------------------------------------------------------------
// A shard: its sessions' sockets and one zmq_poll loop over those with a request in flight, plus the control pipe.

struct Session {
  enum class State { kRegistering, kConnecting, kConnected, kFailed };
  std::unique_ptr<zmq::socket_t> sock;
  std::string user;
  State state = State::kRegistering;
  std::string awaited;        // the id of the request in flight; empty: none
  std::uint64_t counter = 0;
  Clock::time_point sent{};
  std::uint64_t asked_ms = 0;
};

struct WindowCounts {
  std::uint64_t sent = 0, answered = 0, errors = 0, expired = 0, asked_min = 0, asked_max = 0;
  void asked(std::uint64_t ms) {
    asked_min = asked_min == 0 ? ms : std::min(asked_min, ms);
    asked_max = std::max(asked_max, ms);
  }
};

class Shard {
 public:
  Shard(const Config& cfg, std::size_t first, std::size_t count, int control_in, int control_out)
      : cfg_(cfg), first_(first), count_(count), control_(control_in), out_(control_out) {
    ctx_.set(zmq::ctxopt::max_sockets, static_cast<int>(count + 64));
  }

  int run() {
    start_ = Clock::now();
    const auto hard_stop = start_ + seconds(cfg_.connect_timeout_s + 3 * 3600);  // the parent normally says stop
    for (std::uint64_t turns = 0; !stopping_ && Clock::now() < hard_stop && turns < (1ULL << 40); ++turns) {
      const auto now = Clock::now();
      open_sessions(now);
      send_due_heartbeats(now);
      if (!poll_once()) break;
      expire_requests(Clock::now());
      report_connected(Clock::now());
    }
    return 0;
  }

 private:
  void open_sessions(Clock::time_point now) {
    if (now - start_ > seconds(cfg_.connect_timeout_s)) return;
    while (setting_up_ < cfg_.window && opened_ < count_) {
      Session s;
      s.user = cfg_.prefix + "-" + std::to_string(first_ + opened_);
      s.sock = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
      zshare::curve::make_client(*s.sock, zshare::curve::generate(), cfg_.server_key);
      s.sock->set(zmq::sockopt::linger, 0);
      s.sock->set(zmq::sockopt::maxmsgsize, proto::kClientMaxMessageBytes);
      s.sock->connect(cfg_.endpoint);
      sessions_.push_back(std::move(s));
      ++opened_;
      ++setting_up_;
      send(sessions_.size() - 1, request(sessions_.size() - 1, op::kRegister));
    }
  }

  // Session i's next request of `op`: the header and its user. Its id is the one the reply must carry.
  zshare::MapWriter request(std::size_t i, std::string_view op) {
    Session& s = sessions_[i];
    s.awaited = s.user + "." + std::to_string(s.counter++);
    zshare::MapWriter w;
    w.put("v", proto::kVersion).put("op", op).put("id", s.awaited).put("ts", zshare::now_iso8601_utc());
    w.put("user", s.user);
    return w;
  }

  void send(std::size_t i, const zshare::MapWriter& request) {
    Session& s = sessions_[i];
    s.sent = Clock::now();
    s.sock->send(zmq::message_t(), zmq::send_flags::sndmore);  // the empty delimiter, as REQ sends it
    s.sock->send(zmq::buffer(request.finish()), zmq::send_flags::none);
    in_flight_.push_back(i);
  }

  void send_due_heartbeats(Clock::time_point now) {
    for (int n = 0; n < 10000 && !due_.empty() && due_.top().first <= now; ++n) {
      const std::size_t i = due_.top().second;
      due_.pop();
      if (sessions_[i].state != Session::State::kConnected) continue;
      send(i, request(i, op::kHeartbeat));
      if (window_open_) ++window_.sent;
    }
  }

  // Waits for replies (until the next heartbeat is due, 50 ms at most) and handles them; false when told to stop.
  bool poll_once() {
    std::vector<zmq::pollitem_t> items;
    items.reserve(in_flight_.size() + 1);
    items.push_back({nullptr, control_.fd(), ZMQ_POLLIN, 0});
    for (std::size_t i : in_flight_) items.push_back({sessions_[i].sock->handle(), 0, ZMQ_POLLIN, 0});
    auto wait = std::chrono::milliseconds(50);
    if (!due_.empty()) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(due_.top().first - Clock::now());
      wait = std::clamp(until, std::chrono::milliseconds(0), wait);
    }
    zmq::poll(items.data(), items.size(), wait);
    if (items[0].revents & ZMQ_POLLIN) {
      if (!control_.fill()) return false;  // the parent is gone
      for (std::string line; control_.next(line);) on_control(line);
    }
    std::vector<std::size_t> readable;
    for (std::size_t k = 1; k < items.size(); ++k) {
      if (items[k].revents & ZMQ_POLLIN) readable.push_back(in_flight_[k - 1]);
    }
    for (std::size_t i : readable) receive(i);
    return !stopping_;
  }

  void receive(std::size_t i) {
    Session& s = sessions_[i];
    zmq::message_t body;
    for (int frames = 0; frames < 8; ++frames) {  // [empty delimiter, body]
      zmq::message_t part;
      if (!s.sock->recv(part, zmq::recv_flags::dontwait)) return;
      const bool more = part.more();
      body = std::move(part);
      if (!more) break;
    }
    std::string status = "UNDECODABLE";
    std::uint64_t asked = 0;
    try {
      zshare::Message m = zshare::Message::decode(body.data(), body.size());
      if (m.root().opt_str("id", proto::kMaxIdBytes).value_or("") != s.awaited) return;  // a stale reply
      status = std::string(m.root().str("status", 64));
      asked = m.root().opt_uint("heartbeat_ms").value_or(0);
    } catch (const std::exception&) {
    }
    done_waiting(i);
    on_reply(i, status, asked);
  }

  void done_waiting(std::size_t i) {
    sessions_[i].awaited.clear();
    in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), i));
  }

  // The session's next step after a reply: REGISTER, then CONNECT, then heartbeats at the asked interval.
  void on_reply(std::size_t i, const std::string& status, std::uint64_t asked) {
    Session& s = sessions_[i];
    const bool ok = status == st::kOk;
    switch (s.state) {
      case Session::State::kRegistering:
        if (!ok) return fail(i, op::kRegister, status);
        s.state = Session::State::kConnecting;
        send(i, request(i, op::kConnect).put("endpoint", "tcp://127.0.0.1:9").put("heartbeat_ms", cfg_.promise_ms));
        return;
      case Session::State::kConnecting:
        if (!ok) return fail(i, op::kConnect, status);
        if (asked == 0) return fail(i, op::kConnect, "NO heartbeat_ms IN REPLY");
        s.state = Session::State::kConnected;
        --setting_up_;
        ++connected_;
        connect_asked_max_ = std::max(connect_asked_max_, asked);
        break;
      case Session::State::kConnected:
        if (!ok) {
          if (window_open_) (status == st::kUserNotConnected ? window_.expired : window_.errors) += 1;
          return fail(i, op::kHeartbeat, status);
        }
        if (window_open_) {
          ++window_.answered;
          window_.asked(asked);
        }
        break;
      case Session::State::kFailed:
        return;
    }
    s.asked_ms = asked;
    due_.emplace(Clock::now() + std::chrono::milliseconds(asked), i);  // the keeper's way: wait after the reply
  }

  void fail(std::size_t i, std::string_view what, const std::string& status) {
    Session& s = sessions_[i];
    if (s.state != Session::State::kConnected) --setting_up_;
    else --connected_;
    s.state = Session::State::kFailed;
    ++errors_;
    if (errors_ <= 3) std::fprintf(stderr, "shard %zu: %.*s of %s: %s\n", first_, static_cast<int>(what.size()), what.data(),
                                    s.user.c_str(), status.c_str());
  }

  void expire_requests(Clock::time_point now) {
    if (now < next_expiry_check_) return;
    next_expiry_check_ = now + std::chrono::seconds(1);
    const auto limit = seconds(cfg_.request_timeout_s);
    std::vector<std::size_t> late;
    for (std::size_t i : in_flight_) {
      if (now - sessions_[i].sent > limit) late.push_back(i);
    }
    for (std::size_t i : late) {
      done_waiting(i);
      if (window_open_) ++window_.errors;
      fail(i, "request", "NO REPLY WITHIN " + std::to_string(cfg_.request_timeout_s) + " s");
    }
  }

  // Once every session of the shard is connected or failed (or the connect deadline passed): one line to the parent.
  void report_connected(Clock::time_point now) {
    if (reported_) return;
    const bool deadline = now - start_ > seconds(cfg_.connect_timeout_s);
    if (!(opened_ == count_ && setting_up_ == 0) && !deadline) return;
    reported_ = true;
    char line[256];
    std::snprintf(line, sizeof line, "connected ok=%zu errors=%" PRIu64 " unopened=%zu seconds=%.3f asked_max=%" PRIu64,
                  connected_, errors_, count_ - opened_, seconds_between(start_, now), connect_asked_max_);
    write_line(out_, line);
  }

  // "mark" opens the measured window, the next "mark" closes it and reports; "stop" ends the shard.
  void on_control(const std::string& line) {
    if (line == "stop") {
      stopping_ = true;
    } else if (line == "mark" && !window_open_) {
      window_ = WindowCounts{};
      window_open_ = true;
    } else if (line == "mark") {
      window_open_ = false;
      char out[256];
      std::snprintf(out, sizeof out,
                    "window sent=%" PRIu64 " answered=%" PRIu64 " errors=%" PRIu64 " expired=%" PRIu64
                    " asked_min=%" PRIu64 " asked_max=%" PRIu64 " connected=%zu",
                    window_.sent, window_.answered, window_.errors, window_.expired, window_.asked_min,
                    window_.asked_max, connected_);
      write_line(out_, out);
    }
  }

  const Config& cfg_;
  std::size_t first_, count_;
  LineReader control_;
  int out_;
  zmq::context_t ctx_{1};
  std::vector<Session> sessions_;
  std::vector<std::size_t> in_flight_;
  using Due = std::pair<Clock::time_point, std::size_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
  Clock::time_point start_, next_expiry_check_{};
  std::size_t opened_ = 0, setting_up_ = 0, connected_ = 0;
  std::uint64_t errors_ = 0, connect_asked_max_ = 0;
  bool reported_ = false, window_open_ = false, stopping_ = false;
  WindowCounts window_;
};

// ---------------------------------------------------------------------------------------------------------------
// The parent: forks the shards, steers the phases, reads the broker's /proc figures, prints the RESULT line.

struct Child {
  pid_t pid = -1;
  int to = -1;                        // the shard's control pipe (write end)
  std::unique_ptr<LineReader> from;   // its reports
};

struct BrokerSample {
  double cpu_s = 0;
  std::uint64_t rss_kb = 0;
};

BrokerSample sample_broker(int pid) {
  BrokerSample b;
  if (pid <= 0) return b;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) throw std::runtime_error("no broker process " + std::to_string(pid));
  std::istringstream fields(text.substr(paren + 2));  // from field 3, the state
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int n = 3; n <= 15 && fields >> f; ++n) {
    if (n == 14) utime = std::stoull(f);
    if (n == 15) stime = std::stoull(f);
  }
  b.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) b.rss_kb = std::stoull(line.substr(6));
  }
  return b;
}

// Sessions one shard may hold: a DEALER needs two descriptors; 64 are left for the rest.
std::size_t sessions_per_shard() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  const auto fds = static_cast<std::size_t>(lim.rlim_cur);
  if (fds < 200) throw std::runtime_error("the fd limit (ulimit -n " + std::to_string(fds) + ") is too low");
  return (fds - 64) / 2;
}

std::vector<Child> fork_shards(const Config& cfg, std::size_t shards) {
  std::vector<Child> children;
  const std::size_t per = (cfg.sessions + shards - 1) / shards;
  for (std::size_t k = 0; k < shards; ++k) {
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) throw std::runtime_error("pipe failed");
    const std::size_t first = k * per, count = std::min(per, cfg.sessions - first);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the parent
      ::close(down[1]);
      ::close(up[0]);
      for (const auto& c : children) ::close(c.to), ::close(c.from->fd());
      ::fcntl(down[0], F_SETFL, O_NONBLOCK);
      int rc = 1;
      try {
        rc = Shard(cfg, first, count, down[0], up[1]).run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "shard %zu: %s\n", first, e.what());
      }
      std::fflush(stderr);
      ::_exit(rc);
    }
    ::close(down[0]);
    ::close(up[1]);
    ::fcntl(up[0], F_SETFL, O_NONBLOCK);
    children.push_back(Child{pid, down[1], std::make_unique<LineReader>(up[0])});
  }
  return children;
}

// Waits until every child has sent a line starting with `word` (or `deadline`); returns them parsed, in order.
std::vector<std::map<std::string, std::string>> gather(std::vector<Child>& children, const std::string& word,
                                                       Clock::time_point deadline) {
  std::vector<std::map<std::string, std::string>> got(children.size());
  std::size_t missing = children.size();
  while (missing > 0 && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    for (auto& c : children) fds.push_back(pollfd{c.from->fd(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 200);
    for (std::size_t k = 0; k < children.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP))) continue;
      if (!children[k].from->fill() && got[k].empty()) {
        throw std::runtime_error("shard " + std::to_string(k) + " ended before saying '" + word + "'");
      }
      for (std::string line; children[k].from->next(line);) {
        auto kv = parse_kv(line);
        if (kv["_"] == word && got[k].empty()) got[k] = std::move(kv), --missing;
      }
    }
  }
  if (missing > 0) throw std::runtime_error(std::to_string(missing) + " shards did not say '" + word + "' in time");
  return got;
}

void tell(std::vector<Child>& children, const std::string& line) {
  for (auto& c : children) write_line(c.to, line);
}

void stop_shards(std::vector<Child>& children) {
  tell(children, "stop");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (auto& c : children) {
    int status = 0;
    while (::waitpid(c.pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::close(c.to);
  }
}

std::uint64_t sum(const std::vector<std::map<std::string, std::string>>& lines, const std::string& key) {
  std::uint64_t total = 0;
  for (const auto& kv : lines) total += std::stoull(get(kv, key));
  return total;
}

// The largest (or smallest) non-zero `key` of the lines; 0 when none has one.
std::uint64_t extreme(const std::vector<std::map<std::string, std::string>>& lines, const std::string& key,
                      bool largest) {
  std::uint64_t v = largest ? 0 : UINT64_MAX;
  for (const auto& kv : lines) {
    const std::uint64_t x = std::stoull(get(kv, key));
    if (x) v = largest ? std::max(v, x) : std::min(v, x);
  }
  return v == UINT64_MAX ? 0 : v;
}

int run(Config cfg) {
  const std::size_t per = sessions_per_shard();
  const std::size_t shards = cfg.shards ? cfg.shards : (cfg.sessions + per - 1) / per;
  if ((cfg.sessions + shards - 1) / shards > per) {
    throw std::runtime_error(std::to_string(shards) + " shards of " + std::to_string(per) +
                             " sessions (the fd limit) cannot hold " + std::to_string(cfg.sessions));
  }
  std::fprintf(stderr, "sessions: %zu over %zu shards, promising %" PRIu64 " ms\n", cfg.sessions, shards,
               cfg.promise_ms);
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<Child> children = fork_shards(cfg, shards);
  const auto start = Clock::now();
  const auto connected = gather(children, "connected", start + seconds(cfg.connect_timeout_s + 60));
  const double connect_s = seconds_between(start, Clock::now());
  const BrokerSample after_connect = sample_broker(cfg.broker_pid);
  const std::uint64_t asked_at_connect = extreme(connected, "asked_max", true);
  const double settle = cfg.settle_s >= 0 ? cfg.settle_s : static_cast<double>(asked_at_connect) / 1000.0 + 1.0;
  std::fprintf(stderr, "sessions: %" PRIu64 " connected in %.1f s (%" PRIu64 " errors); settling %.1f s\n",
               sum(connected, "ok"), connect_s, sum(connected, "errors"), settle);
  std::this_thread::sleep_for(seconds(settle));

  tell(children, "mark");
  const BrokerSample before = sample_broker(cfg.broker_pid);
  const auto window_start = Clock::now();
  std::this_thread::sleep_for(seconds(cfg.measure_s));
  const BrokerSample after = sample_broker(cfg.broker_pid);
  const double window_s = seconds_between(window_start, Clock::now());
  tell(children, "mark");
  const auto window = gather(children, "window", Clock::now() + std::chrono::seconds(30));
  stop_shards(children);

  const std::uint64_t answered = sum(window, "answered");
  const double cpu_s = after.cpu_s - before.cpu_s;
  std::printf("RESULT sessions requested=%zu connected=%" PRIu64 " connect_errors=%" PRIu64 " connect_seconds=%.3f"
              " shards=%zu promise_ms=%" PRIu64 " asked_min_ms=%" PRIu64 " asked_max_ms=%" PRIu64 " window_s=%.3f"
              " hb_sent=%" PRIu64 " hb_answered=%" PRIu64 " hb_errors=%" PRIu64 " hb_expired=%" PRIu64
              " hb_per_s=%.1f broker_cpu_s=%.3f broker_cpu_us_per_hb=%.2f broker_core_share=%.4f"
              " rss_connected_kb=%" PRIu64 " rss_end_kb=%" PRIu64 " still_connected=%" PRIu64 "\n",
              cfg.sessions, sum(connected, "ok"), sum(connected, "errors") + sum(connected, "unopened"), connect_s,
              shards, cfg.promise_ms, extreme(window, "asked_min", false), extreme(window, "asked_max", true), window_s,
              sum(window, "sent"), answered, sum(window, "errors"), sum(window, "expired"),
              static_cast<double>(answered) / window_s, cpu_s,
              answered ? cpu_s * 1e6 / static_cast<double>(answered) : 0.0, cpu_s / window_s, after_connect.rss_kb,
              after.rss_kb, sum(window, "connected"));
  std::fflush(stdout);
  return sum(window, "errors") + sum(window, "expired") + sum(connected, "errors") == 0 ? 0 : 1;
}

std::string random_prefix() {
  std::random_device rd;
  char buf[24];
  std::snprintf(buf, sizeof buf, "hb%08x", rd());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string key;
  CLI::App app{"zshare-bench-sessions: many CurveZMQ sessions heartbeating at the interval the broker asks for"};
  app.add_option("--connect", cfg.endpoint, "the broker's control endpoint (tcp://127.0.0.1:PORT)")->required();
  app.add_option("--broker-key", key, "the broker's public key or .pub file")->required();
  app.add_option("--sessions", cfg.sessions, "sessions to open")->capture_default_str()->check(CLI::Range(1, 10000000));
  app.add_option("--shards", cfg.shards, "processes to spread them over; 0: as few as the fd limit allows")
      ->capture_default_str();
  app.add_option("--promise-ms", cfg.promise_ms, "heartbeat_ms each CONNECT promises")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{100}, proto::kMaxHeartbeatMs));
  app.add_option("--window", cfg.window, "sessions being set up at once, per shard")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--connect-timeout", cfg.connect_timeout_s, "seconds for connecting every session")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--request-timeout", cfg.request_timeout_s, "seconds a request may stay unanswered (then: an error)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--settle", cfg.settle_s,
                 "seconds between connecting and measuring; default: the longest interval asked, plus 1")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--seconds", cfg.measure_s, "the measured heartbeat window")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--broker-pid", cfg.broker_pid, "the broker's pid: its CPU time and RSS are read from /proc");
  app.add_option("--prefix", cfg.prefix, "user names are PREFIX-<n>; default: random");
  CLI11_PARSE(app, argc, argv);
  try {
    cfg.server_key = zshare::curve::read_public_key(key);
    if (cfg.prefix.empty()) cfg.prefix = random_prefix();
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zshare-bench-sessions: %s\n", e.what());
    return 2;
  }
}
