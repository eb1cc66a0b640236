// rpclog_client.cpp: clnttcp_create straight to HOST:PORT with CLSET_TIMEOUT bounding every call;
// any RPC failure destroys the handle so the next call reconnects.
#include "rpclog/rpclog_client.hpp"

#include "rpclog/rpclog_xdr.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>

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
  int sock = RPC_ANYSOCK;
  client_ = clnttcp_create(&addr, RPCLOG_PROG, RPCLOG_V1, &sock, 0, 0);
  if (!client_) throw LoggerUnavailable("cannot reach logger at " + address_ + clnt_spcreateerror(""));
  timeval tv{};
  tv.tv_sec = static_cast<long>(timeout_.count() / 1000);
  tv.tv_usec = static_cast<long>((timeout_.count() % 1000) * 1000);
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
