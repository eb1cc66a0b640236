// zap_handler.hpp: the ZeroMQ Authentication Protocol (RFC 27) handler of one context. It admits every
// CurveZMQ client and names it by its public key (Z85), which the broker reads as each message's User-Id.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <thread>

namespace zshare::curve {

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 on `ctx`; must exist before the context's Curve servers bind.
  explicit ZapHandler(zmq::context_t& ctx);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  std::uint64_t admitted() const { return admitted_.load(); }
  std::uint64_t refused() const { return refused_.load(); }

 private:
  void run();

  zmq::socket_t socket_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> admitted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace zshare::curve
