// lazy_pirate.cpp: a fresh REQ socket per retry, since a REQ that lost its reply cannot send again.
// LINGER 0 so an abandoned request never holds the process open at exit. After a RATE LIMITED (or STORE
// UNAVAILABLE) reply the
// socket is in step (it received), so the same bytes go out again on it once the wait is over.
#include "common/lazy_pirate.hpp"

#include "common/codec.hpp"
#include "common/endpoint_list.hpp"
#include "common/protocol.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace zshare {

namespace {

// A reply saying the broker did nothing with the request: which refusal, and how long it asks the client to wait.
struct Refusal {
  bool store_unavailable;
  std::chrono::milliseconds wait;
};

std::optional<Refusal> refusal_of(const std::string& reply) {
  // Most replies are not refusals, and some are large (a SEARCH page): look for the status bytes first.
  const std::string_view refusals[] = {protocol::status::kRateLimited, protocol::status::kStoreUnavailable};
  const auto said = [&](std::string_view status) { return reply.find(status) != std::string::npos; };
  if (std::none_of(std::begin(refusals), std::end(refusals), said)) return std::nullopt;
  try {
    Message m = Message::decode(reply.data(), reply.size());
    const auto status = m.root().opt_str("status", 64);
    if (!status || std::find(std::begin(refusals), std::end(refusals), *status) == std::end(refusals)) {
      return std::nullopt;
    }
    const auto ms = m.root().opt_uint("retry_after_ms").value_or(100);
    return Refusal{*status == protocol::status::kStoreUnavailable,
                   std::chrono::milliseconds(std::max<std::uint64_t>(1, std::min<std::uint64_t>(ms, 3600 * 1000)))};
  } catch (const BadRequest&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<std::chrono::milliseconds> resend_wait(const std::string& reply) {
  const auto refusal = refusal_of(reply);
  if (!refusal) return std::nullopt;
  return refusal->wait;
}

LazyPirateClient::LazyPirateClient(zmq::context_t& ctx, std::vector<std::string> endpoints,
                                   std::chrono::milliseconds timeout, int attempts, SocketSetup setup)
    : ctx_(ctx),
      endpoints_(std::move(endpoints)),
      timeout_(timeout),
      per_attempt_(std::max<std::chrono::milliseconds>(timeout / std::max(attempts, 1), std::chrono::milliseconds(1))),
      attempts_(std::max(attempts, 1)),
      setup_(std::move(setup)) {
  if (endpoints_.empty()) throw std::invalid_argument("a Lazy Pirate client needs at least one endpoint");
}

LazyPirateClient::LazyPirateClient(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout,
                                   int attempts, SocketSetup setup)
    : LazyPirateClient(ctx, std::vector<std::string>{std::move(endpoint)}, timeout, attempts, std::move(setup)) {}

void LazyPirateClient::reopen() {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::req);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::maxmsgsize, protocol::kClientMaxMessageBytes);
  if (setup_) setup_(*socket_);
  socket_->connect(endpoint());
}

void LazyPirateClient::fail_over() {
  socket_.reset();
  current_ = (current_ + 1) % endpoints_.size();
}

std::string LazyPirateClient::request(const std::string& body) {
  for (std::size_t tried = 0; tried < endpoints_.size(); ++tried) {
    // A broker that lost its database (STORE UNAVAILABLE) is left for the next at once, while there is a next: the
    // others may still reach theirs. The last one tried waits it out like a single broker.
    const bool move_on = tried + 1 < endpoints_.size();
    if (auto reply = request_current(body, move_on)) {
      if (!move_on) return std::move(*reply);
      const auto refusal = refusal_of(*reply);
      if (!refusal || !refusal->store_unavailable) return std::move(*reply);
    }
    if (endpoints_.size() > 1) fail_over();  // the guide's multi-server variant: the same request, the next broker
  }
  const std::string tries =
      std::to_string(attempts_) + " attempts of " + std::to_string(per_attempt_.count()) + " ms";
  if (endpoints_.size() == 1) throw BrokerUnreachable("no reply from " + endpoint() + " after " + tries);
  throw BrokerUnreachable("no reply from any of " + joined(endpoints_) + " (" + tries + " each)");
}

std::optional<std::string> LazyPirateClient::request_current(const std::string& body, bool move_on_unavailable) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (int attempt = 0; attempt < attempts_;) {
    if (!socket_) reopen();
    socket_->send(zmq::buffer(body), zmq::send_flags::none);
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, per_attempt_);
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t reply;
      (void)socket_->recv(reply, zmq::recv_flags::none);
      std::string text = reply.to_string();
      const auto refusal = refusal_of(text);
      if (refusal && !(refusal->store_unavailable && move_on_unavailable) &&
          std::chrono::steady_clock::now() + refusal->wait + per_attempt_ <= deadline) {
        std::this_thread::sleep_for(refusal->wait);  // the broker said when; the same request goes out again
        continue;
      }
      return text;
    }
    socket_.reset();  // Lazy Pirate: abandon the socket, its pending request and any late reply
    ++attempt;
  }
  return std::nullopt;
}

}  // namespace zshare
