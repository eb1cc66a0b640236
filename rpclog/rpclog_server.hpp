// rpclog_server.hpp: the ONC-RPC server of the operations log: a TCP transport on a fixed port, registered
// with rpcbind when it runs, dispatching rpcgen's stubs to a LogFile. One per process (rpcgen's stubs
// are free functions, so they reach the server through one process-wide pointer set here).
#pragma once

#include "rpclog/log_file.hpp"

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>

typedef struct __rpc_svcxprt SVCXPRT;

namespace zshare::rpclog {

class RpcLogServer {
 public:
  // Binds host:port (port 0: any free port). Throws std::runtime_error when it cannot.
  RpcLogServer(LogFile& log, const std::string& host, std::uint16_t port, std::ostream& report);
  ~RpcLogServer();
  RpcLogServer(const RpcLogServer&) = delete;
  RpcLogServer& operator=(const RpcLogServer&) = delete;

  // Serves until `stop` is true (checked at least every 200 ms).
  void run(const std::atomic<bool>& stop);

  std::uint16_t port() const { return port_; }
  bool registered_with_rpcbind() const { return rpcbind_; }
  LogFile& log() { return log_; }

 private:
  LogFile& log_;
  SVCXPRT* transport_ = nullptr;
  int socket_ = -1;
  std::uint16_t port_ = 0;
  bool rpcbind_ = false;
};

}  // namespace zshare::rpclog
