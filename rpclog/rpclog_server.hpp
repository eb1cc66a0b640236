// rpclog_server.hpp: the ONC-RPC server of the operations log: a TCP transport on a fixed port, registered
// with rpcbind when it runs, dispatching rpcgen's stubs to a LogFile. One per process (rpcgen's stubs
// are free functions, so they reach the server through one process-wide pointer set here).
// Connections are read without blocking (libtirpc's non-blocking record mode), so a client that sends half
// a record and goes silent stalls nobody; one whose record stays incomplete for `record_timeout` is closed.
#pragma once

#include "rpclog/log_file.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <unordered_map>

typedef struct __rpc_svcxprt SVCXPRT;
struct svc_req;

namespace zshare::rpclog {

class RpcLogServer {
 public:
  // Binds host:port (port 0: any free port). Throws std::runtime_error when it cannot.
  RpcLogServer(LogFile& log, const std::string& host, std::uint16_t port, std::ostream& report,
               std::chrono::milliseconds record_timeout = std::chrono::seconds(10));
  ~RpcLogServer();
  RpcLogServer(const RpcLogServer&) = delete;
  RpcLogServer& operator=(const RpcLogServer&) = delete;

  // Serves until `stop` is true (checked at least every 200 ms).
  void run(const std::atomic<bool>& stop);

  std::uint16_t port() const { return port_; }
  bool registered_with_rpcbind() const { return rpcbind_; }
  LogFile& log() { return log_; }

 private:
  using Clock = std::chrono::steady_clock;

  static void dispatch(svc_req* request, SVCXPRT* transport);  // marks the record complete, then rpcgen's stub
  bool registered(int fd) const;                               // libtirpc still serves this descriptor
  void close_stalled(Clock::time_point now);

  LogFile& log_;
  std::ostream& report_;
  std::chrono::milliseconds record_timeout_;
  // Connections whose current record has begun but not been dispatched yet, and since when.
  std::unordered_map<int, Clock::time_point> partial_;
  SVCXPRT* transport_ = nullptr;
  int socket_ = -1;
  std::uint16_t port_ = 0;
  bool rpcbind_ = false;
};

}  // namespace zshare::rpclog
