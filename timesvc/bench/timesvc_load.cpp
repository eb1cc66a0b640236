// timesvc_load.cpp: zshare-bench-timesvc: N client threads (TimeClient, keep-alive) call `now` on a time
// service for a bounded count and time; reports requests/s, p50 and p99, against a raw-TCP baseline.
//
// Baseline (same run, same client threads, same connection count): a loopback TCP ping-pong server, one
// thread per connection, exchanging as many bytes as a SOAP `now` round trip (no HTTP, no XML). The ratio
// timesvc/baseline is the figure to compare across machines; absolute numbers on shared boxes are noise.
// Without --url the service runs in this process (TimeServer), so it shares the CPUs with the clients,
// exactly as the baseline server does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/time_client.hpp"
#include "timesvc/time_server.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  double requests_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
};

struct Load {
  int clients = 8;
  int requests = 5000;  // per client
  double seconds = 10;  // per client, whichever bound comes first
};

Result summarize(std::vector<std::vector<double>>& per_client, std::uint64_t failed, double elapsed_s) {
  std::vector<double> all;
  for (auto& v : per_client) all.insert(all.end(), v.begin(), v.end());
  Result r;
  r.ok = all.size();
  r.failed = failed;
  if (all.empty()) return r;
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()))]; };
  r.p50_us = pct(0.50);
  r.p99_us = pct(0.99);
  r.requests_per_s = static_cast<double>(all.size()) / elapsed_s;
  return r;
}

// Runs `one` (returns false on a failed request) from `load.clients` threads; each thread gets its own
// state from make_state(). Latencies in microseconds.
template <typename MakeState, typename One>
Result drive(const Load& load, MakeState make_state, One one) {
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(load.clients));
  std::atomic<std::uint64_t> failed{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start;
  for (int i = 0; i < load.clients; ++i) {
    threads.emplace_back([&, i] {
      auto state = make_state();
      auto& mine = lat[static_cast<std::size_t>(i)];
      mine.reserve(static_cast<std::size_t>(load.requests));
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      const auto end = Clock::now() + std::chrono::duration<double>(load.seconds);
      for (int n = 0; n < load.requests && Clock::now() < end; ++n) {
        const auto t0 = Clock::now();
        const bool ok = one(*state);
        const auto t1 = Clock::now();
        if (ok) {
          mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  while (ready.load() < load.clients) std::this_thread::yield();
  start = Clock::now();
  go.store(true);
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return summarize(lat, failed.load(), elapsed);
}

// ---- raw TCP ping-pong baseline ------------------------------------------------------------------

bool read_full(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool write_full(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

class PingPongServer {
 public:
  PingPongServer(std::size_t request_bytes, std::size_t reply_bytes) : req_(request_bytes), rep_(reply_bytes) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0) {
      throw std::runtime_error("baseline: cannot listen");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // listening socket shut down
        int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns_.emplace_back([this, c] {
          std::string in(req_, '\0'), out(rep_, 'x');
          while (read_full(c, in.data(), in.size()) && write_full(c, out.data(), out.size())) {
          }
          ::close(c);
        });
      }
    });
  }
  ~PingPongServer() {
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : conns_) t.join();  // clients have closed their ends by now
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  std::size_t req_, rep_;
  int fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> conns_;
};

struct PingPongClient {
  PingPongClient(int port, std::size_t req, std::size_t rep) : out(req, 'q'), in(rep, '\0') {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~PingPongClient() { ::close(fd); }
  bool round_trip() { return write_full(fd, out.data(), out.size()) && read_full(fd, in.data(), in.size()); }
  int fd = -1;
  std::string out, in;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string spread(const std::vector<double>& v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(v.empty() || *hi >= 100 ? 0 : 2);
  if (!v.empty()) s << "[" << *lo << " .. " << *hi << "]";
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  Load load;
  std::string url;
  int server_threads = 8;
  int server_linger_us = zshare::timesvc::ServerOptions{}.linger_us;
  int runs = 5;
  bool baseline = true;
  // A SOAP `now` round trip by TimeClient on loopback (strace): 523 bytes of request, 701 of reply.
  std::size_t request_bytes = 523, reply_bytes = 701;
  CLI::App app{"zshare-bench-timesvc: time service requests/s and latency under concurrent keep-alive clients"};
  app.add_option("--url", url, "time service to load (default: one started in-process)");
  app.add_option("--clients", load.clients, "concurrent client threads")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--requests", load.requests, "requests per client per run")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seconds", load.seconds, "time bound per run")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--runs", runs, "runs (median and spread reported)")->check(CLI::Range(1, 100))->capture_default_str();
  app.add_option("--server-threads", server_threads, "worker threads of the in-process service")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--server-linger-us", server_linger_us, "linger_us of the in-process service")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_flag("!--no-baseline", baseline, "skip the raw TCP ping-pong baseline");
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<zshare::timesvc::TimeServer> server;
  if (url.empty()) {
    zshare::timesvc::ServerOptions o;
    o.port = 0;
    o.threads = server_threads;
    o.linger_us = server_linger_us;
    server = std::make_unique<zshare::timesvc::TimeServer>(o);
    server->start();
    url = server->url();
  }
  std::cout << "zshare-bench-timesvc: " << url << ", " << load.clients << " clients x " << load.requests
            << " requests (<= " << load.seconds << " s), " << runs << " runs"
            << (server ? ", in-process service with " + std::to_string(server_threads) + " threads" : "") << "\n";

  std::vector<double> rps, p50, p99, base_rps, base_p99, ratio;
  std::uint64_t failures = 0;
  std::ostringstream warnings;
  for (int run = 0; run < runs; ++run) {
    Result t = drive(
        load, [&] { return std::make_unique<zshare::TimeClient>(url, warnings); },
        [](zshare::TimeClient& c) { return !c.now().local; });
    failures += t.failed;
    rps.push_back(t.requests_per_s);
    p50.push_back(t.p50_us);
    p99.push_back(t.p99_us);
    std::printf("run %d  timesvc : %9.0f req/s  p50 %7.1f us  p99 %7.1f us  (%llu ok, %llu failed)\n", run + 1,
                t.requests_per_s, t.p50_us, t.p99_us, static_cast<unsigned long long>(t.ok),
                static_cast<unsigned long long>(t.failed));
    if (baseline) {
      PingPongServer pp(request_bytes, reply_bytes);
      Result b = drive(
          load, [&] { return std::make_unique<PingPongClient>(pp.port(), request_bytes, reply_bytes); },
          [](PingPongClient& c) { return c.round_trip(); });
      base_rps.push_back(b.requests_per_s);
      base_p99.push_back(b.p99_us);
      ratio.push_back(b.requests_per_s > 0 ? t.requests_per_s / b.requests_per_s : 0);
      std::printf("run %d  baseline: %9.0f req/s  p50 %7.1f us  p99 %7.1f us\n", run + 1, b.requests_per_s,
                  b.p50_us, b.p99_us);
    }
    std::fflush(stdout);
  }
  std::printf("timesvc   req/s median %.0f %s, p50 median %.1f us, p99 median %.1f us %s\n", median(rps),
              spread(rps).c_str(), median(p50), median(p99), spread(p99).c_str());
  if (baseline) {
    std::printf("baseline  req/s median %.0f %s, p99 median %.1f us\n", median(base_rps), spread(base_rps).c_str(),
                median(base_p99));
    std::printf("ratio timesvc/baseline req/s: median %.3f %s\n", median(ratio), spread(ratio).c_str());
  }
  if (failures > 0) std::printf("FAILED requests: %llu\n%s", static_cast<unsigned long long>(failures), warnings.str().c_str());
  if (server) server->stop();
  return failures > 0 ? 1 : 0;
}
