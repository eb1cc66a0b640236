// rpclog_client.cpp: our own non-blocking connect to HOST:PORT bounded by the timeout, then clnt_vc_create on
// the connected socket (it connects only sockets that are not connected yet); CLSET_TIMEOUT bounds every reply
// and SO_SNDTIMEO every send. Any RPC failure destroys the handle so the next call reconnects.
#include "rpclog/rpclog_client.hpp"

#include "rpclog/rpclog_xdr.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zshare::rpclog {

void split_host_port(const std::string& address, std::string& host, std::uint16_t& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    throw std::invalid_argument("logger address must be HOST:PORT, got '" + address + "'");
  }
  host = address.substr(0, colon);
  const std::string digits = address.substr(colon + 1);
  unsigned long p = 0;
  try {
    std::size_t used = 0;
    p = std::stoul(digits, &used);
    if (used != digits.size()) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    throw std::invalid_argument("logger port must be a number, got '" + digits + "'");
  }
  if (p == 0 || p > 65535) throw std::invalid_argument("logger port must be 1-65535");
  port = static_cast<std::uint16_t>(p);
}

RpcLogClient::RpcLogClient(const std::string& address, std::chrono::milliseconds timeout)
    : address_(address), timeout_(timeout) {
  split_host_port(address, host_, port_);
}

RpcLogClient::~RpcLogClient() { drop(); }

void RpcLogClient::drop() {
  if (client_) clnt_destroy(client_);
  client_ = nullptr;
}

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<long>(d.count() / 1000);
  tv.tv_usec = static_cast<long>((d.count() % 1000) * 1000);
  return tv;
}

// A TCP socket connected to `addr` within `timeout`, or -1 with `why` set. clnttcp_create's own connect is
// blocking: a logger host that drops SYNs would hold it for the kernel's whole SYN retry time (minutes), and
// libtirpc holds its process-wide clnt_fd_lock meanwhile.
int connect_within(const sockaddr_in& addr, std::chrono::milliseconds timeout, std::string& why) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno == EINPROGRESS) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLOUT, 0};
      const int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        why = "connect timed out after " + std::to_string(timeout.count()) + " ms";
        ::close(fd);
        return -1;
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      rc = err == 0 ? 0 : -1;
      errno = err;
      break;
    }
  }
  if (rc != 0) {
    why = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  // libtirpc's client I/O is blocking: back to blocking mode, with every send bounded (a logger that stops
  // reading must not hold a write forever; replies are bounded by CLSET_TIMEOUT).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const timeval tv = to_timeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

}  // namespace

void RpcLogClient::connect() {
  if (client_) return;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host_.c_str(), nullptr, &hints, &found) != 0 || !found) {
    throw LoggerUnavailable("cannot resolve logger host '" + host_ + "'");
  }
  sockaddr_in addr{};
  std::memcpy(&addr, found->ai_addr, sizeof addr);
  ::freeaddrinfo(found);
  addr.sin_port = htons(port_);
  std::string why;
  const int fd = connect_within(addr, timeout_, why);
  if (fd < 0) throw LoggerUnavailable("cannot reach logger at " + address_ + ": " + why);
  netbuf server{};
  server.maxlen = server.len = sizeof addr;
  server.buf = &addr;
  // A send buffer as large as the logger's record limit: every call leaves as one fragment (see kMaxRecordBytes).
  client_ = clnt_vc_create(fd, &server, RPCLOG_PROG, RPCLOG_V1, kMaxRecordBytes, 0);
  if (!client_) {
    ::close(fd);
    throw LoggerUnavailable("cannot reach logger at " + address_ + clnt_spcreateerror(""));
  }
  clnt_control(client_, CLSET_FD_CLOSE, nullptr);  // clnt_destroy closes the socket
  timeval tv = to_timeval(timeout_);
  clnt_control(client_, CLSET_TIMEOUT, reinterpret_cast<char*>(&tv));
}

std::uint64_t RpcLogClient::log(const std::vector<LogRecord>& batch) {
  connect();
  std::vector<log_record> wire(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) to_xdr(batch[i], wire[i]);
  log_batch arg{};
  arg.log_batch_len = static_cast<u_int>(wire.size());
  arg.log_batch_val = wire.data();
  log_result result{};
  if (rpclog_log_1(&arg, &result, client_) != RPC_SUCCESS) {
    std::string why = clnt_sperror(client_, "");
    drop();
    throw LoggerUnavailable("logger " + address_ + " did not answer LOG:" + why);
  }
  const int status = result.status;
  const std::string error = result.error ? result.error : "";
  const std::uint64_t acked = result.acked_through;
  xdr_free(reinterpret_cast<xdrproc_t>(xdr_log_result), reinterpret_cast<char*>(&result));
  if (status != RPCLOG_OK) throw LoggerUnavailable("logger " + address_ + " failed to store: " + error);
  return acked;
}

std::vector<LogRecord> RpcLogClient::query(const std::string& user, const std::string& operation, unsigned last) {
  connect();
  query_args args{};
  args.user = const_cast<char*>(user.c_str());
  args.operation = const_cast<char*>(operation.c_str());
  args.last = last;
  query_result result{};
  if (rpclog_query_1(&args, &result, client_) != RPC_SUCCESS) {
    std::string why = clnt_sperror(client_, "");
    drop();
    throw LoggerUnavailable("logger " + address_ + " did not answer QUERY:" + why);
  }
  std::vector<LogRecord> out;
  for (u_int i = 0; i < result.records.records_len; ++i) out.push_back(from_xdr(result.records.records_val[i]));
  const int status = result.status;
  const std::string error = result.error ? result.error : "";
  xdr_free(reinterpret_cast<xdrproc_t>(xdr_query_result), reinterpret_cast<char*>(&result));
  if (status != RPCLOG_OK) throw LoggerUnavailable("logger " + address_ + " failed to query: " + error);
  return out;
}

}  // namespace zshare::rpclog
