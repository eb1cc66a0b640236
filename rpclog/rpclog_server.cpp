// rpclog_server.cpp: libtirpc's svc API driven by our own poll loop (not svc_run), so SIGTERM and tests
// can stop it. Replies are allocated with malloc/strdup because rpcgen's freeresult releases them with free.
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

RpcLogServer::RpcLogServer(LogFile& log, const std::string& host, std::uint16_t port, std::ostream& report)
    : log_(log) {
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
  // Protocol 0: register the dispatcher without asking rpcbind; then try rpcbind on our own.
  if (!svc_register(transport_, RPCLOG_PROG, RPCLOG_V1, rpclog_prog_1, 0)) {
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

void RpcLogServer::run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    std::vector<pollfd> fds(svc_pollfd, svc_pollfd + svc_max_pollfd);
    int ready = ::poll(fds.data(), fds.size(), 200);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    if (ready > 0) svc_getreq_poll(fds.data(), ready);
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
