// time_server.cpp: the dispatcher (poll over the listener, idle keep-alive connections and a wake-up
// eventfd) and the worker pool. Invariant: every open connection is in exactly one place: the ready
// queue, a worker's hands (inflight), the returned list, or the dispatcher's idle list.
#include "timesvc/time_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "timesvc/time_service.hpp"

namespace zshare::timesvc {
namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  int served = 0;  // requests served on this connection so far
  Clock::time_point idle_since{};
};

// gSOAP timeouts: positive values are seconds, negative microseconds. Whole seconds stay positive because
// the engine also prints the value in its "Keep-Alive: timeout=N" response header.
int soap_timeout_ms(int ms) {
  if (ms <= 0) return 0;
  if (ms % 1000 == 0 || ms > 2'000'000) return (ms + 999) / 1000;  // (microseconds would overflow int)
  return -ms * 1000;
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The workers' soap->fclosesocket: when gSOAP ends a connection it shuts it down but leaves the descriptor
// open; the worker closes it under the lock as it clears its inflight entry. (gSOAP used to close it outside
// the lock, so stop() could shut down that descriptor number after another connection or thread reused it.)
int leave_open(struct soap*, SOAP_SOCKET) { return SOAP_OK; }

}  // namespace

struct TimeServer::Impl {
  explicit Impl(ServerOptions o) : options(std::move(o)) {}

  ServerOptions options;
  TimeService master;  // holds the listening socket; the template for the workers' contexts
  int listen_fd = -1;
  int wake_fd = -1;
  int bound_port = 0;
  std::string own_url;
  bool started = false;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::deque<Conn> ready;         // readable connections waiting for a worker
  std::atomic<std::size_t> ready_count{0};  // ready.size(), readable without the lock
  std::vector<Conn> returned;     // kept-alive connections handed back to the dispatcher
  std::vector<int> inflight;      // per worker: the fd it is serving, or -1
  std::atomic<int> open_conns{0};

  std::thread dispatcher;
  std::vector<std::thread> workers;

  void wake() {
    std::uint64_t one = 1;
    ssize_t n = ::write(wake_fd, &one, sizeof one);
    (void)n;  // the counter can only saturate, which still wakes the poller
  }

  void close_conn(int fd) {
    ::close(fd);
    open_conns.fetch_sub(1, std::memory_order_relaxed);
  }

  void dispatch_loop();
  void worker_loop(std::size_t index, TimeService& svc);
  bool serve_one(TimeService& svc);
};

TimeServer::TimeServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

TimeServer::~TimeServer() { stop(); }

void TimeServer::start() {
  Impl& m = *impl_;
  if (m.started) throw std::runtime_error("TimeServer already started");
  const ServerOptions& o = m.options;
  if (o.threads < 1 || o.threads > 1024) throw std::runtime_error("threads must be 1..1024");
  if (o.port < 0 || o.port > 65535) throw std::runtime_error("port must be 0..65535");
  if (o.max_connections < 1) throw std::runtime_error("max_connections must be >= 1");

  struct soap* soap = m.master.soap;
  soap->bind_flags = SO_REUSEADDR;
  soap->recv_timeout = soap_timeout_ms(o.io_timeout_ms);
  soap->send_timeout = soap_timeout_ms(o.io_timeout_ms);
  soap->transfer_timeout = soap_timeout_ms(o.request_timeout_ms);
  soap->max_keep_alive = o.max_keep_alive;
  if (!soap_valid_socket(m.master.bind(o.bind.c_str(), o.port, 128))) {
    char buf[512];
    m.master.soap_sprint_fault(buf, sizeof buf);
    throw std::runtime_error("cannot listen on " + o.bind + ":" + std::to_string(o.port) + ": " + buf);
  }
  m.listen_fd = soap->master;
  ::fcntl(m.listen_fd, F_SETFL, ::fcntl(m.listen_fd, F_GETFL) | O_NONBLOCK);
  ::fcntl(m.listen_fd, F_SETFD, FD_CLOEXEC);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  m.bound_port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  const bool v6 = o.bind.find(':') != std::string::npos;
  m.own_url = "http://" + (v6 ? "[" + o.bind + "]" : o.bind) + ":" + std::to_string(m.bound_port);
  soap->user = &m.own_url;  // TimeService::http_get's fallback location; copied into every worker context

  m.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m.wake_fd < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));

  m.stopping = false;
  m.inflight.assign(static_cast<std::size_t>(o.threads), -1);
  m.started = true;  // from here on stop() can undo whatever part of the start happened
  try {
    for (int i = 0; i < o.threads; ++i) {
      std::shared_ptr<TimeService> svc(m.master.copy());
      svc->soap->fclosesocket = &leave_open;
      m.workers.emplace_back([&m, i, svc] { m.worker_loop(static_cast<std::size_t>(i), *svc); });
    }
    m.dispatcher = std::thread([&m] { m.dispatch_loop(); });
  } catch (...) {
    stop();
    throw;
  }
}

void TimeServer::stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;
    for (int fd : m.inflight) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);  // unblocks a worker stuck on a slow client
    }
  }
  m.cv.notify_all();
  m.wake();
  if (m.dispatcher.joinable()) m.dispatcher.join();
  for (auto& t : m.workers) t.join();
  m.workers.clear();
  for (const Conn& c : m.ready) m.close_conn(c.fd);
  for (const Conn& c : m.returned) m.close_conn(c.fd);
  m.ready.clear();
  m.returned.clear();
  soap_closesocket(m.listen_fd);
  m.master.soap->master = SOAP_INVALID_SOCKET;
  m.listen_fd = -1;
  ::close(m.wake_fd);
  m.wake_fd = -1;
  m.started = false;
}

int TimeServer::port() const { return impl_->bound_port; }
std::string TimeServer::url() const { return impl_->own_url; }

void TimeServer::Impl::dispatch_loop() {
  std::vector<Conn> idle;
  std::vector<pollfd> fds;
  Clock::time_point accept_paused_until{};
  const auto idle_limit = std::chrono::milliseconds(options.idle_timeout_ms);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) break;
      const auto t = Clock::now();
      for (Conn& c : returned) {
        c.idle_since = t;
        idle.push_back(c);
      }
      returned.clear();
    }
    // Close idle connections past their deadline; find the next deadline.
    const auto t = Clock::now();
    auto next_deadline = t + std::chrono::seconds(1);
    for (std::size_t i = 0; i < idle.size();) {
      const auto deadline = idle[i].idle_since + idle_limit;
      if (deadline <= t) {
        close_conn(idle[i].fd);
        idle[i] = idle.back();
        idle.pop_back();
        continue;
      }
      if (deadline < next_deadline) next_deadline = deadline;
      ++i;
    }

    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    const bool accepting =
        open_conns.load(std::memory_order_relaxed) < options.max_connections && t >= accept_paused_until;
    if (!accepting && accept_paused_until > t && accept_paused_until < next_deadline) {
      next_deadline = accept_paused_until;
    }
    fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});  // negative fd: poll ignores it
    for (const Conn& c : idle) fds.push_back({c.fd, POLLIN, 0});
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - t).count() + 1;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(wait));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen with valid descriptors; stop serving rather than spin
    }
    if (fds[0].revents & POLLIN) {
      std::uint64_t count;
      ssize_t r = ::read(wake_fd, &count, sizeof count);
      (void)r;
    }

    // Idle connections with input (a request, or EOF / error the worker will see) go to the workers.
    std::vector<Conn> now_ready;
    std::size_t keep = 0;
    for (std::size_t i = 0; i < idle.size(); ++i) {
      if (fds[i + 2].revents != 0) {
        now_ready.push_back(idle[i]);
      } else {
        idle[keep++] = idle[i];
      }
    }
    idle.resize(keep);
    // New connections wait in the idle list too, until they send something: a client that connects and
    // stays silent costs a descriptor, not a worker.
    if (fds[1].revents & POLLIN) {
      while (open_conns.load(std::memory_order_relaxed) < options.max_connections) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          // EAGAIN: drained. Out of descriptors (EMFILE...): the listener stays readable, so pause
          // accepting briefly instead of spinning on it.
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
            accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
          }
          break;
        }
        open_conns.fetch_add(1, std::memory_order_relaxed);
        set_nodelay(fd);
        idle.push_back(Conn{fd, 0, Clock::now()});
      }
    }
    if (!now_ready.empty()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        for (const Conn& c : now_ready) ready.push_back(c);
        ready_count.store(ready.size(), std::memory_order_relaxed);
      }
      if (now_ready.size() == 1) {
        cv.notify_one();
      } else {
        cv.notify_all();
      }
    }
  }
  for (const Conn& c : idle) close_conn(c.fd);
}

// Serves one request on svc.soap->socket, as the generated serve() does for one keep-alive round.
// True when the connection may carry another request.
bool TimeServer::Impl::serve_one(TimeService& svc) {
  struct soap* soap = svc.soap;
  if (soap_begin_serve(soap)) {
    // SOAP_STOP..SOAP_FILE: answered already (the GET hook). Below: EOF, timeout, bad HTTP (the engine
    // has answered what it could). SOAP_POST and up: an HTTP request without a SOAP envelope, which the
    // generated serve() would silently skip, leaving the client waiting: answer a fault and close.
    if (soap->error >= SOAP_POST) {
      soap_sender_fault(soap, "not a SOAP request", nullptr);
      soap_send_fault(soap);
      return false;
    }
    if (soap->error < SOAP_STOP) return false;
  } else if (svc.dispatch() && soap->error && soap->error < SOAP_STOP) {
    soap_send_fault(soap);
    return false;
  }
  return soap_valid_socket(soap->socket) && soap->keep_alive > 0;
}

void TimeServer::Impl::worker_loop(std::size_t index, TimeService& svc) {
  struct soap* soap = svc.soap;
  for (;;) {
    Conn c;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return stopping || !ready.empty(); });
      if (stopping) return;
      c = ready.front();
      ready.pop_front();
      ready_count.store(ready.size(), std::memory_order_relaxed);
      inflight[index] = c.fd;
    }
    soap->socket = c.fd;
    bool keep = true;
    bool again = false;  // the next request is here (or, lingering, arrived): serve it on this worker
    do {
      // As generated serve(): counts down to 0, when the engine answers "Connection: close".
      soap->keep_alive = options.max_keep_alive > 0 ? options.max_keep_alive - c.served : 1;
      if (soap->keep_alive < 0) soap->keep_alive = 0;
      keep = serve_one(svc);
      ++c.served;
      again = keep && soap->bufidx < soap->buflen;  // pipelined: already in this context's buffer
      svc.destroy();
      if (keep && !again && options.linger_us > 0 && ready_count.load(std::memory_order_relaxed) == 0) {
        // Nobody waits for a worker: wait a moment for this client's next request before handing back.
        pollfd p{c.fd, POLLIN, 0};
        timespec ts{options.linger_us / 1000000, static_cast<long>(options.linger_us % 1000000) * 1000};
        again = ::ppoll(&p, 1, &ts, nullptr) == 1;
      }
    } while (again);

    // The engine may have ended the connection itself (soap->socket is then invalid; see leave_open).
    const bool still_open = soap_valid_socket(soap->socket);
    soap->socket = SOAP_INVALID_SOCKET;
    std::lock_guard<std::mutex> lock(mu);
    inflight[index] = -1;
    if (keep && still_open && !stopping) {
      returned.push_back(c);
      wake();
    } else {
      close_conn(c.fd);
    }
  }
}

}  // namespace zshare::timesvc
