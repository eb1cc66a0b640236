// rpclog_client.hpp: a client of zshare-rpclog over TCP to a known port (no rpcbind needed), used by the
// broker's outbox shipper and by `zshare-rpclog tail`. Reconnects on the next call after a failure.
#pragma once

#include "rpclog/log_record.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

typedef struct __rpc_client CLIENT;

namespace zshare::rpclog {

struct LoggerUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RpcLogClient {
 public:
  // `address` is HOST:PORT. `timeout` bounds the connect, every send and every reply: a logger host that
  // is down, drops packets or stops reading costs a call at most about `timeout`, never a hang.
  RpcLogClient(const std::string& address, std::chrono::milliseconds timeout);
  ~RpcLogClient();
  RpcLogClient(const RpcLogClient&) = delete;
  RpcLogClient& operator=(const RpcLogClient&) = delete;

  // Returns the highest seq the logger stored durably. Throws LoggerUnavailable (transport, or the logger's
  // own I/O error); after that nothing of the batch may be assumed stored.
  std::uint64_t log(const std::vector<LogRecord>& batch);
  std::vector<LogRecord> query(const std::string& user, const std::string& operation, unsigned last);

  const std::string& address() const { return address_; }

 private:
  void connect();
  void drop();

  std::string address_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::chrono::milliseconds timeout_;
  CLIENT* client_ = nullptr;
};

// Splits HOST:PORT; throws std::invalid_argument with a sentence when it is not one.
void split_host_port(const std::string& address, std::string& host, std::uint16_t& port);

}  // namespace zshare::rpclog
