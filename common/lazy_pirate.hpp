// lazy_pirate.hpp: the ZeroMQ guide's Lazy Pirate client: REQ, poll with a timeout, on silence close,
// reopen and resend the same bytes. The broker's reply cache makes the resend safe for mutations.
// A RATE LIMITED or STORE UNAVAILABLE reply is honoured the same way: wait its retry_after_ms, resend the same
// bytes (same id): the broker did nothing with the request.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace zshare {

struct BrokerUnreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// When `reply` is the broker's RATE LIMITED or STORE UNAVAILABLE: how long it asks the client to wait before resending
// (retry_after_ms, 100 ms when absent); nullopt for any other reply, readable or not.
std::optional<std::chrono::milliseconds> resend_wait(const std::string& reply);

class LazyPirateClient {
 public:
  // Prepares each fresh socket before it connects (CurveZMQ keys, say).
  using SocketSetup = std::function<void(zmq::socket_t&)>;

  // `timeout` is the whole deadline of one request, shared evenly by `attempts` tries.
  LazyPirateClient(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout, int attempts = 3,
                   SocketSetup setup = {});

  // Returns the reply body; throws BrokerUnreachable when no attempt got an answer. A resend_wait() reply is
  // waited out and resent while the wait still leaves one attempt's time before the deadline; past that, it
  // is returned like any reply.
  std::string request(const std::string& body);

  const std::string& endpoint() const { return endpoint_; }

 private:
  void reopen();

  zmq::context_t& ctx_;
  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds per_attempt_;
  int attempts_;
  SocketSetup setup_;
  std::unique_ptr<zmq::socket_t> socket_;
};

}  // namespace zshare
