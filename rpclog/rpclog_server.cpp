// rpclog_server.cpp: libtirpc's svc API driven by our own poll loop (not svc_run), so SIGTERM and tests
// can stop it. Replies are allocated with malloc/strdup because rpcgen's freeresult releases them with free.
// In blocking mode libtirpc reads a whole record before returning (each read may wait 35 s), so one client
// sending half a record stalled every other client; in its non-blocking mode (a maximum record size set on
// the listening transport) a partial record is kept per connection and the loop moves on.
#include "rpclog/rpclog_server.hpp"

#include "rpclog/rpclog_xdr.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <rpc/pmap_clnt.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

extern "C" void rpclog_prog_1(struct svc_req* rqstp, SVCXPRT* transp);

namespace zshare::rpclog {

namespace {

RpcLogServer* g_server = nullptr;  // rpcgen's stubs are free functions: this is how they find the server

}  // namespace

RpcLogServer::RpcLogServer(LogFile& log, const std::string& host, std::uint16_t port, std::ostream& report,
                           std::chrono::milliseconds record_timeout)
    : log_(log), report_(report), record_timeout_(record_timeout) {
  if (g_server) throw std::runtime_error("one RpcLogServer per process");
  socket_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (socket_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(socket_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(socket_);
    throw std::runtime_error("--bind must be an IPv4 address, got '" + host + "'");
  }
  if (::bind(socket_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(socket_, 64) != 0) {
    std::string err = std::strerror(errno);
    ::close(socket_);
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + err);
  }
  socklen_t len = sizeof addr;
  ::getsockname(socket_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);

  transport_ = svctcp_create(socket_, 0, 0);
  if (!transport_) {
    ::close(socket_);
    throw std::runtime_error("svctcp_create failed");
  }
  // Inherited by every connection this transport accepts; setting it switches them to non-blocking reads.
  int max_record = kMaxRecordBytes;
  if (!SVC_CONTROL(transport_, SVCSET_CONNMAXREC, &max_record)) {
    svc_destroy(transport_);
    throw std::runtime_error("libtirpc refused non-blocking connections (SVCSET_CONNMAXREC)");
  }
  // Protocol 0: register the dispatcher without asking rpcbind; then try rpcbind on our own.
  if (!svc_register(transport_, RPCLOG_PROG, RPCLOG_V1, &RpcLogServer::dispatch, 0)) {
    svc_destroy(transport_);
    throw std::runtime_error("svc_register failed");
  }
  pmap_unset(RPCLOG_PROG, RPCLOG_V1);
  rpcbind_ = pmap_set(RPCLOG_PROG, RPCLOG_V1, IPPROTO_TCP, port_);
  report << "zshare-rpclog: program " << RPCLOG_PROG << " version " << RPCLOG_V1 << " on " << host << ":"
         << port_ << (rpcbind_ ? ", registered with rpcbind" : ", rpcbind not running (reachable by port)")
         << std::endl;
  g_server = this;
}

RpcLogServer::~RpcLogServer() {
  g_server = nullptr;
  if (rpcbind_) pmap_unset(RPCLOG_PROG, RPCLOG_V1);
  svc_unregister(RPCLOG_PROG, RPCLOG_V1);
  if (transport_) svc_destroy(transport_);  // closes socket_
}

void RpcLogServer::dispatch(svc_req* request, SVCXPRT* transport) {
  if (g_server) g_server->partial_.erase(transport->xp_fd);
  rpclog_prog_1(request, transport);
}

bool RpcLogServer::registered(int fd) const {
  for (int i = 0; i < svc_max_pollfd; ++i) {
    if (svc_pollfd[i].fd == fd) return true;
  }
  return false;
}

void RpcLogServer::close_stalled(Clock::time_point now) {
  for (auto& [fd, since] : partial_) {
    if (since == Clock::time_point::max() || now - since < record_timeout_) continue;
    // libtirpc sees EOF on its next read and destroys the transport (we have no handle on it to do so).
    ::shutdown(fd, SHUT_RDWR);
    since = Clock::time_point::max();
    report_ << "zshare-rpclog: closed a connection whose record stayed incomplete for "
            << record_timeout_.count() << " ms" << std::endl;
  }
}

void RpcLogServer::run(const std::atomic<bool>& stop) {
  std::vector<pollfd> fds;
  while (!stop.load()) {
    fds.assign(svc_pollfd, svc_pollfd + svc_max_pollfd);
    int ready = ::poll(fds.data(), fds.size(), 200);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    const auto now = Clock::now();
    for (pollfd& p : fds) {
      if (p.fd < 0 || p.revents == 0) continue;
      if (p.revents & POLLNVAL) {  // not ours to close; libtirpc unregisters it (never expected)
        svc_getreq_poll(&p, 1);
        continue;
      }
      const bool connection = p.fd != socket_;
      if (connection) partial_.emplace(p.fd, now);  // input: a record has begun (or goes on: keeps its start)
      // libtirpc's non-blocking read tells EOF from "nothing yet" by errno alone (xdr_rec.c): a stale EAGAIN
      // would make a closed connection look idle forever.
      errno = 0;
      svc_getreq_common(p.fd);
      if (connection && !registered(p.fd)) partial_.erase(p.fd);  // libtirpc closed it (EOF, error, too big)
    }
    close_stalled(now);
  }
}

}  // namespace zshare::rpclog

using zshare::rpclog::g_server;
using zshare::rpclog::LogRecord;

namespace {

char* dup(const std::string& s) { return ::strdup(s.c_str()); }

}  // namespace

extern "C" bool_t rpclog_log_1_svc(log_batch* batch, log_result* result, struct svc_req*) {
  std::memset(result, 0, sizeof *result);
  std::vector<LogRecord> records;
  records.reserve(batch->log_batch_len);
  std::uint64_t highest = 0;
  for (unsigned i = 0; i < batch->log_batch_len; ++i) {
    const auto& in = batch->log_batch_val[i];
    records.push_back(zshare::rpclog::from_xdr(in));
    if (auto problem = zshare::rpclog::invalid_field(records.back())) {
      result->status = RPCLOG_BAD_REQUEST;
      result->error = dup("record " + std::to_string(i) + ": " + *problem);
      return TRUE;
    }
    highest = std::max<std::uint64_t>(highest, in.seq);
  }
  try {
    g_server->log().append(std::move(records));
    result->status = RPCLOG_OK;
    result->acked_through = highest;
    result->error = dup("");
  } catch (const std::exception& e) {
    result->status = RPCLOG_IO_ERROR;
    result->error = dup(std::string(e.what()).substr(0, 255));
  }
  return TRUE;
}

extern "C" bool_t rpclog_query_1_svc(query_args* args, query_result* result, struct svc_req*) {
  std::memset(result, 0, sizeof *result);
  try {
    const auto found = g_server->log().query(args->user ? args->user : "", args->operation ? args->operation : "",
                                             std::min<unsigned>(args->last, RPCLOG_MAX_QUERY));
    result->records.records_len = static_cast<u_int>(found.size());
    result->records.records_val = static_cast<log_record*>(std::calloc(found.size() + 1, sizeof(log_record)));
    for (std::size_t i = 0; i < found.size(); ++i) zshare::rpclog::to_xdr_malloc(found[i], result->records.records_val[i]);
    result->status = RPCLOG_OK;
    result->error = dup("");
  } catch (const std::exception& e) {
    result->status = RPCLOG_IO_ERROR;
    result->error = dup(std::string(e.what()).substr(0, 255));
  }
  return TRUE;
}

extern "C" int rpclog_prog_1_freeresult(SVCXPRT*, xdrproc_t xdr_result, caddr_t result) {
  xdr_free(xdr_result, result);
  return 1;
}
