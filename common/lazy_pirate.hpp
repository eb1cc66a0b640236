// lazy_pirate.hpp: the ZeroMQ guide's Lazy Pirate client: REQ, poll with a timeout, on silence close,
// reopen and resend the same bytes. The broker's reply cache makes the resend safe for mutations.
// Given several brokers (the guide's multi-server variant), a request whose tries at the broker in use all went
// unanswered goes to the next one of the list, round robin, as the same bytes (same id: brokers on one store share
// the stored replies, so a mutation still applies once); the client then stays with the broker that answered.
// A RATE LIMITED or STORE UNAVAILABLE reply is honoured the same way: wait its retry_after_ms, resend the same
// bytes (same id): the broker did nothing with the request. With a list, STORE UNAVAILABLE (that broker lost its
// database) sends the request to the next broker at once instead; the last one tried is waited out.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

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

  // `timeout` is one request's deadline at one broker, shared evenly by `attempts` tries; with a list of N
  // brokers a request that none answers gives up after N times that. `endpoints` is never empty; the first is
  // used first.
  LazyPirateClient(zmq::context_t& ctx, std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
                   int attempts = 3, SocketSetup setup = {});
  LazyPirateClient(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout, int attempts = 3,
                   SocketSetup setup = {});

  // Returns the reply body; throws BrokerUnreachable when no broker of the list got an answer. A resend_wait()
  // reply is waited out and resent while the wait still leaves one attempt's time before the deadline; past
  // that, it is returned like any reply (it is an answer: the client does not fail over for it, but for STORE
  // UNAVAILABLE while another broker of the list is still untried).
  std::string request(const std::string& body);

  const std::string& endpoint() const { return endpoints_[current_]; }  // the broker in use
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  std::size_t current() const { return current_; }  // the index of endpoint() in endpoints()

 private:
  // The tries at the broker in use; nothing when none was answered.
  // With `move_on_unavailable`, a STORE UNAVAILABLE reply is returned at once (the caller tries the next broker).
  std::optional<std::string> request_current(const std::string& body, bool move_on_unavailable);
  void fail_over();  // the next broker of the list
  void reopen();

  zmq::context_t& ctx_;
  std::vector<std::string> endpoints_;
  std::size_t current_ = 0;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds per_attempt_;
  int attempts_;
  SocketSetup setup_;
  std::unique_ptr<zmq::socket_t> socket_;
};

}  // namespace zshare
