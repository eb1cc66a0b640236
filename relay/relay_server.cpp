// relay_server.cpp: the relay's epoll loop, read top to bottom: accept (per-IP and pending caps), the SOCKS5
// handshake, the token check and pairing, forwarding (Circuit::pump), then the timers: paced circuits resuming, and
// a sweep closing unpaired connections past the pair timeout and circuits silent past the idle timeout.
#include "relay/relay_server.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

namespace zshare::relay {

namespace {

constexpr std::uint64_t kListenerId = 0;
constexpr std::uint64_t kWakeId = 1;
constexpr int kMaxEvents = 256;
constexpr std::size_t kNoncePrefix = 8;            // hex digits of the nonce the log lines show
constexpr std::uint64_t kRefusalLinesPerSecond = 10;
constexpr auto kListenerBackoff = std::chrono::milliseconds(100);
constexpr auto kMinSweep = std::chrono::milliseconds(20);
constexpr auto kMaxSweep = std::chrono::milliseconds(200);
constexpr auto kHungUpRepump = std::chrono::milliseconds(1);
// Pipes of 1 MiB splice about 1.4 times as fast as the default 64 KiB on loopback (bench/run_relay_bench.sh), but
// the kernel counts pipe capacity per user (fs.pipe-user-pages-soft, 64 MiB by default) and past that limit gives
// new pipes 2 pages. The first circuits get big pipes (16 x 2 x 1 MiB: half the default limit), the others the
// default, so a busy relay degrades no circuit to tiny pipes.
constexpr std::size_t kBigPipeBytes = 1 << 20;
constexpr std::size_t kBigPipeCircuits = 16;

int side_index(relay_token::Side side) {
  return side == relay_token::Side::kSeeder ? Circuit::kSeederEnd : Circuit::kDownloaderEnd;
}

std::system_error os_error(const std::string& what) { return std::system_error(errno, std::generic_category(), what); }

// "tcp://HOST:PORT" -> (HOST, PORT); HOST may be [v6] or *, PORT may be *. Throws on anything else.
std::pair<std::string, std::string> split_endpoint(const std::string& endpoint) {
  const std::string scheme = "tcp://";
  const auto colon = endpoint.rfind(':');
  if (endpoint.compare(0, scheme.size(), scheme) != 0 || colon == std::string::npos || colon < scheme.size()) {
    throw std::runtime_error("bind endpoint '" + endpoint + "' is not tcp://HOST:PORT");
  }
  std::string host = endpoint.substr(scheme.size(), colon - scheme.size());
  std::string port = endpoint.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "*") host = "0.0.0.0";
  if (port == "*") port = "0";
  if (host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw std::runtime_error("bind endpoint '" + endpoint + "' is not tcp://HOST:PORT (PORT 0-65535 or *)");
  }
  return {host, port};
}

std::string address_text(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text, sizeof text);
  } else if (address.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text, sizeof text);
  }
  return text;
}

std::uint16_t address_port(const sockaddr_storage& address) {
  return ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(address).sin6_port
                                             : reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

// Out of descriptors or memory: accepting again at once would spin.
bool accept_exhausted(int error) { return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM; }

std::string socket_error(int fd) {
  int error = 0;
  socklen_t size = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error == 0) return "hung up";
  return std::strerror(error);
}

std::uint64_t system_unix_now() { return static_cast<std::uint64_t>(std::time(nullptr)); }

}  // namespace

RelayServer::RelayServer(RelayOptions options, std::ostream& log) : options_(std::move(options)), log_(log) {
  if (options_.secret.size() != relay_token::kSecretBytes) {
    throw std::runtime_error("the relay secret must be 32 bytes (relay_token::load_secret of a secret file)");
  }
  if (options_.max_circuits_per_ip == 0 || options_.max_pending == 0) {
    throw std::runtime_error("--max-circuits-per-ip and --max-pending must be at least 1");
  }
  if (options_.pair_timeout.count() <= 0 || options_.idle_timeout.count() <= 0) {
    throw std::runtime_error("--pair-timeout and --idle-timeout must be positive");
  }
  if (!options_.unix_now) options_.unix_now = system_unix_now;
  sweep_every_ = std::clamp(std::min(options_.pair_timeout, options_.idle_timeout) / 4,
                            std::chrono::milliseconds(kMinSweep), std::chrono::milliseconds(kMaxSweep));
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw os_error("epoll_create1");
  bind_listener(options_.bind);
}

RelayServer::~RelayServer() = default;

void RelayServer::bind_listener(const std::string& endpoint) {
  const auto [host, port] = split_endpoint(endpoint);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("bind endpoint " + endpoint + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  UniqueFd fd(::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw os_error("socket");
  const int on = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // restart on the port at once (TIME_WAIT)
  if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0) throw os_error("cannot bind " + endpoint);
  if (::listen(fd.get(), SOMAXCONN) != 0) throw os_error("listen on " + endpoint);
  sockaddr_storage bound{};
  socklen_t size = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &size) != 0) throw os_error("getsockname");
  const std::string ip = address_text(bound);
  endpoint_ = "tcp://" + (bound.ss_family == AF_INET6 ? "[" + ip + "]" : ip) + ":" +
              std::to_string(address_port(bound));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kListenerId;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &event) != 0) throw os_error("epoll_ctl");
  listener_ = std::move(fd);
}

// ---- the loop ----

void RelayServer::run(const std::atomic<bool>& stop, int wake_fd) {
  if (wake_fd >= 0) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kWakeId;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd, &event) != 0) throw os_error("epoll_ctl (wake fd)");
  }
  next_sweep_ = Clock::now() + sweep_every_;
  epoll_event events[kMaxEvents];
  while (!stop.load()) {
    const int ready = ::epoll_wait(epoll_.get(), events, kMaxEvents, wait_timeout_ms(Clock::now()));
    if (ready < 0 && errno != EINTR) throw os_error("epoll_wait");
    const auto now = Clock::now();
    for (int i = 0; i < ready; ++i) dispatch(events[i].data.u64, events[i].events, now);
    pump_scheduled(now);
    resume_listener(now);
    if (now >= next_sweep_) sweep(now);
  }
  const auto now = Clock::now();
  while (!circuits_.empty()) end_circuit(circuits_.begin()->first, "relay-stopped", "", now);
  while (!connections_.empty()) end_unpaired(connections_.begin()->second, "relay-stopped");
  if (wake_fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, wake_fd, nullptr);
}

int RelayServer::wait_timeout_ms(Clock::time_point now) const {
  auto next = next_sweep_;
  if (!resumes_.empty()) next = std::min(next, resumes_.top().first);
  if (listener_paused_until_) next = std::min(next, *listener_paused_until_);
  if (next <= now) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
}

void RelayServer::dispatch(std::uint64_t id, std::uint32_t events, Clock::time_point now) {
  if (id == kListenerId) return accept_all(now);
  if (id == kWakeId) return;  // the loop sees the stop flag next
  const auto found = connections_.find(id);
  if (found == connections_.end()) return;  // closed earlier in this batch
  Connection& c = found->second;
  switch (c.stage) {
    case Stage::kHandshake:
      return on_handshake(c, now);
    case Stage::kPending:  // watched for EPOLLRDHUP only: the client left before its other side came
      return end_unpaired(c, "closed-unpaired");
    case Stage::kPaired:
      return on_circuit(c.circuit, events, now, &c);
  }
}

// ---- accept ----

void RelayServer::accept_all(Clock::time_point now) {
  while (true) {
    sockaddr_storage peer{};
    socklen_t size = sizeof peer;
    UniqueFd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &size, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (accept_exhausted(errno)) {
        log_line(std::string("cannot accept: ") + std::strerror(errno) + "; pausing accepts for 100 ms");
        listener_paused_until_ = now + kListenerBackoff;
        epoll_event event{};
        event.data.u64 = kListenerId;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &event);
      }
      return;  // EAGAIN: all taken; ECONNABORTED and the like: the next readiness tries again
    }
    ++stats_.accepted;
    const std::string ip = address_text(peer);
    const char* cap = per_ip_[ip] >= options_.max_circuits_per_ip ? "per-ip-cap"
                      : unpaired_ >= options_.max_pending          ? "pending-cap"
                                                                   : nullptr;
    if (cap) {  // closed at once: a flood costs one accept each
      if (per_ip_[ip] == 0) per_ip_.erase(ip);
      ++stats_.refused[cap];
      log_refusal(ip, "", cap);
      continue;
    }
    const int on = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // ZMTP's small frames pass without delay
    const std::uint64_t id = next_id_++;
    Connection& c = connections_[id];
    c.id = id;
    c.fd = std::move(fd);
    c.ip = ip;
    c.accepted = now;
    ++per_ip_[ip];
    ++unpaired_;
    watch(c, EPOLLIN);
  }
}

void RelayServer::resume_listener(Clock::time_point now) {
  if (!listener_paused_until_ || now < *listener_paused_until_) return;
  listener_paused_until_.reset();
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kListenerId;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &event);
}

// ---- the SOCKS5 handshake and pairing ----

void RelayServer::on_handshake(Connection& c, Clock::time_point now) {
  char buffer[512];  // the longest message, a request for a 255-byte name, is 262 bytes
  while (true) {
    const std::size_t wanted = std::min(c.handshake.wanted(), sizeof buffer);
    const ssize_t got = ::read(c.fd.get(), buffer, wanted);
    if (got == 0) return end_unpaired(c, "closed-unpaired");
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return end_unpaired(c, "socket-error");
    }
    const std::string answer = c.handshake.consume(std::string_view(buffer, static_cast<std::size_t>(got)));
    const bool sent = answer.empty() || send_small(c, answer);
    if (c.handshake.step() == Socks5Handshake::Step::kRefused) return drop_refused(c, "bad-socks");
    if (!sent) return end_unpaired(c, "socket-error");
    if (c.handshake.step() == Socks5Handshake::Step::kDone) return on_request(c, now);
  }
}

void RelayServer::on_request(Connection& c, Clock::time_point now) {
  const auto claim = relay_token::parse(c.handshake.host());
  if (!claim) return refuse(c, "malformed-token", socks5::Reply::kNotAllowed);
  c.nonce_prefix = claim->token.nonce_hex.substr(0, kNoncePrefix);
  if (const char* why = token_refusal(claim->token, claim->side)) return refuse(c, why, socks5::Reply::kNotAllowed);
  const int side = side_index(claim->side);
  c.token_key = std::to_string(claim->token.expiry_s) + "." + claim->token.nonce_hex;  // the pair, both sides
  c.side = claim->side;
  TokenSlot& slot = tokens_[c.token_key];
  if (slot.circuit != 0 || slot.pending[side] != 0) return refuse(c, "side-taken", socks5::Reply::kNotAllowed);
  if (const std::uint64_t other = slot.pending[1 - side]; other != 0) return pair(c, connections_.at(other), now);
  slot.pending[side] = c.id;
  c.stage = Stage::kPending;
  watch(c, EPOLLRDHUP);  // nothing is read before pairing: bytes sent early stay queued for the circuit
}

// nullptr when the token is genuine for `side` (another side's mac is a bad one) and not expired; else the reason.
const char* RelayServer::token_refusal(const relay_token::Token& token, relay_token::Side side) const {
  if (relay_token::valid(options_.secret, token, side, options_.unix_now())) return nullptr;
  const bool genuine = token.expiry_s > 0 && relay_token::valid(options_.secret, token, side, token.expiry_s - 1);
  return genuine ? "expired" : "bad-mac";
}

void RelayServer::pair(Connection& arriving, Connection& waiting, Clock::time_point now) {
  Connection& seeder = arriving.side == relay_token::Side::kSeeder ? arriving : waiting;
  Connection& downloader = arriving.side == relay_token::Side::kSeeder ? waiting : arriving;
  std::optional<Circuit> circuit;
  try {
    circuit.emplace(seeder.fd.get(), downloader.fd.get(), options_.rate_limit, pipe_bytes_for_next_circuit(), now);
  } catch (const std::system_error&) {
    return refuse(arriving, "no-resources", socks5::Reply::kGeneralFailure);  // the waiting side waits on
  }
  const std::string succeeded = socks5::reply(socks5::Reply::kSucceeded);
  if (!send_small(waiting, succeeded)) {  // it left before its RDHUP was seen: the arriving one waits instead
    end_unpaired(waiting, "closed-unpaired");
    return on_request(arriving, now);
  }
  if (!send_small(arriving, succeeded)) {
    end_unpaired(waiting, "partner-gone");
    return end_unpaired(arriving, "socket-error");
  }
  const std::uint64_t id = next_id_++;
  TokenSlot& slot = tokens_[arriving.token_key];
  slot.pending[0] = slot.pending[1] = 0;
  slot.circuit = id;
  for (Connection* end : {&seeder, &downloader}) {
    end->stage = Stage::kPaired;
    end->circuit = id;
    --unpaired_;
  }
  circuits_.emplace(id, CircuitEntry{std::move(*circuit), {seeder.id, downloader.id}, arriving.token_key, now, {}});
  ++stats_.paired;
  log_line("paired nonce=" + arriving.nonce_prefix + " s=" + seeder.ip + " d=" + downloader.ip);
  on_circuit(id, 0, now, nullptr);  // bytes the clients sent early move now
}

// ---- forwarding ----

std::size_t RelayServer::pipe_bytes_for_next_circuit() const {
  return circuits_.size() < kBigPipeCircuits ? kBigPipeBytes : 0;
}

// `source`: the end whose socket reported `events`; nullptr for a pump the relay schedules itself.
void RelayServer::on_circuit(std::uint64_t circuit_id, std::uint32_t events, Clock::time_point now,
                             Connection* source) {
  const auto found = circuits_.find(circuit_id);
  if (found == circuits_.end()) return;
  CircuitEntry& entry = found->second;
  const auto state = entry.circuit.pump(now);
  if (source && state == Circuit::State::kOpen) {
    if (events & EPOLLERR) return end_circuit(circuit_id, "error", socket_error(source->fd.get()), now);
    if (events & EPOLLHUP) unwatch_hung_up(*source);
  }
  after_pump(circuit_id, entry, now);
}

// Both ways of this socket are shut (its FIN came, and ours went): epoll would report it at every wait, so it leaves
// the epoll set. What it still holds to read is read by the circuit's pumps (after_pump schedules them).
void RelayServer::unwatch_hung_up(Connection& c) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
  c.watched = false;
  c.hung_up = true;
}

void RelayServer::after_pump(std::uint64_t circuit_id, CircuitEntry& entry, Clock::time_point now) {
  switch (entry.circuit.state()) {
    case Circuit::State::kDone:
      return end_circuit(circuit_id, "closed", "", now);
    case Circuit::State::kFailed:
      return end_circuit(circuit_id, "error", entry.circuit.failure(), now);
    case Circuit::State::kOpen:
      break;
  }
  std::optional<Clock::time_point> pump_again = entry.circuit.paused_until();
  for (int end : {Circuit::kSeederEnd, Circuit::kDownloaderEnd}) {
    Connection& c = connections_.at(entry.ends[end]);
    const std::uint32_t wanted = entry.circuit.wanted_events(end);
    if (!c.hung_up) {
      watch(c, wanted);
    } else if (wanted & EPOLLIN) {  // no event will say it is readable: it is (its bytes, then its end)
      pump_again = now + kHungUpRepump;
    }
  }
  if (pump_again && (!entry.resume_queued || *pump_again < *entry.resume_queued)) {
    resumes_.emplace(*pump_again, circuit_id);
    entry.resume_queued = pump_again;
  }
}

void RelayServer::pump_scheduled(Clock::time_point now) {
  while (!resumes_.empty() && resumes_.top().first <= now) {
    const auto [at, id] = resumes_.top();
    resumes_.pop();
    const auto found = circuits_.find(id);
    if (found == circuits_.end()) continue;
    if (found->second.resume_queued == at) found->second.resume_queued.reset();
    on_circuit(id, 0, now, nullptr);
  }
}

// ---- endings ----

void RelayServer::end_circuit(std::uint64_t circuit_id, const char* reason, const std::string& detail,
                              Clock::time_point now) {
  auto node = circuits_.extract(circuit_id);
  if (node.empty()) return;
  CircuitEntry& entry = node.mapped();
  const Connection& seeder = connections_.at(entry.ends[Circuit::kSeederEnd]);
  const Connection& downloader = connections_.at(entry.ends[Circuit::kDownloaderEnd]);
  const std::uint64_t s_to_d = entry.circuit.bytes_from(Circuit::kSeederEnd);
  const std::uint64_t d_to_s = entry.circuit.bytes_from(Circuit::kDownloaderEnd);
  const double seconds = std::chrono::duration<double>(now - entry.paired).count();
  std::ostringstream line;
  line << "circuit end nonce=" << seeder.nonce_prefix << " s=" << seeder.ip << " d=" << downloader.ip
       << " s_to_d=" << s_to_d << " d_to_s=" << d_to_s << " seconds=" << std::fixed << std::setprecision(1) << seconds
       << " reason=" << reason << (detail.empty() ? "" : " (" + detail + ")");
  log_line(line.str());
  ++stats_.ended[reason];
  stats_.bytes_forwarded += s_to_d + d_to_s;
  if (auto slot = tokens_.find(entry.token_key); slot != tokens_.end()) {
    slot->second.circuit = 0;
    if (slot->second.pending[0] == 0 && slot->second.pending[1] == 0) tokens_.erase(slot);
  }
  close_connection(entry.ends[0]);
  close_connection(entry.ends[1]);
}

void RelayServer::end_unpaired(Connection& c, const char* reason) {
  ++stats_.unpaired[reason];
  close_connection(c.id);
}

void RelayServer::refuse(Connection& c, const char* reason, socks5::Reply reply) {
  send_small(c, socks5::reply(reply));
  drop_refused(c, reason);
}

void RelayServer::drop_refused(Connection& c, const char* reason) {
  ++stats_.refused[reason];
  log_refusal(c.ip, c.nonce_prefix, reason);
  discard_input(c.fd.get());
  close_connection(c.id);
}

void RelayServer::close_connection(std::uint64_t id) {
  const auto found = connections_.find(id);
  if (found == connections_.end()) return;
  Connection& c = found->second;
  if (c.stage != Stage::kPaired) --unpaired_;
  if (c.stage == Stage::kPending) release_token(c.token_key, id);
  if (auto count = per_ip_.find(c.ip); count != per_ip_.end() && --count->second == 0) per_ip_.erase(count);
  connections_.erase(found);  // closes the socket, which leaves the epoll set with it
}

void RelayServer::release_token(const std::string& key, std::uint64_t connection_id) {
  const auto slot = tokens_.find(key);
  if (slot == tokens_.end()) return;
  for (auto& pending : slot->second.pending) {
    if (pending == connection_id) pending = 0;
  }
  if (slot->second.circuit == 0 && slot->second.pending[0] == 0 && slot->second.pending[1] == 0) tokens_.erase(slot);
}

// ---- timers ----

void RelayServer::sweep(Clock::time_point now) {
  std::vector<std::uint64_t> overdue;
  for (const auto& [id, c] : connections_) {
    if (c.stage != Stage::kPaired && now - c.accepted >= options_.pair_timeout) overdue.push_back(id);
  }
  for (const auto id : overdue) end_unpaired(connections_.at(id), "pair-timeout");
  overdue.clear();
  for (const auto& [id, entry] : circuits_) {
    if (now - entry.circuit.last_activity() >= options_.idle_timeout) overdue.push_back(id);
  }
  for (const auto id : overdue) end_circuit(id, "idle", "", now);
  next_sweep_ = now + sweep_every_;
}

// ---- small helpers ----

void RelayServer::watch(Connection& c, std::uint32_t events) {
  if (c.hung_up || (c.watched && c.events == events)) return;
  epoll_event event{};
  event.events = events;
  event.data.u64 = c.id;
  if (::epoll_ctl(epoll_.get(), c.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd.get(), &event) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
  c.watched = true;
  c.events = events;
}

// Reads away what the client already sent (the rest of a refused request): closing a socket with unread bytes
// resets it, and the reset may overtake the refusal's answer.
void RelayServer::discard_input(int fd) {
  char sink[4096];
  for (int i = 0; i < 4 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
}

// The handshake's answers are a few bytes on a fresh socket: its send buffer always takes them whole.
bool RelayServer::send_small(Connection& c, const std::string& bytes) {
  return ::send(c.fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

void RelayServer::log_refusal(const std::string& ip, const std::string& nonce_prefix, const char* reason) {
  const std::uint64_t second = options_.unix_now();
  if (second != log_second_) {
    if (unlogged_ > 0) {
      log_line(std::to_string(unlogged_) + " more refusals not logged (at most " +
               std::to_string(kRefusalLinesPerSecond) + " lines a second)");
    }
    log_second_ = second;
    logged_this_second_ = unlogged_ = 0;
  }
  if (logged_this_second_++ >= kRefusalLinesPerSecond) {
    ++unlogged_;
    return;
  }
  log_line("refused ip=" + ip + (nonce_prefix.empty() ? "" : " nonce=" + nonce_prefix) + " reason=" + reason);
}

// One write per line (std::cerr writes each << on its own): lines stay whole when another process shares the log.
void RelayServer::log_line(const std::string& text) {
  const std::string line = "zshare-relay: " + text + "\n";
  log_.write(line.data(), static_cast<std::streamsize>(line.size()));
  log_.flush();
}

std::string RelayServer::stats_line() const {
  std::ostringstream line;
  line << "accepted=" << stats_.accepted << " paired=" << stats_.paired << " bytes=" << stats_.bytes_forwarded;
  for (const auto& [reason, count] : stats_.refused) line << " refused." << reason << "=" << count;
  for (const auto& [reason, count] : stats_.unpaired) line << " unpaired." << reason << "=" << count;
  for (const auto& [reason, count] : stats_.ended) line << " ended." << reason << "=" << count;
  return line.str();
}

}  // namespace zshare::relay
