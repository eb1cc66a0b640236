// lazy_pirate.cpp: a fresh REQ socket per retry, since a REQ that lost its reply cannot send again.
// LINGER 0 so an abandoned request never holds the process open at exit.
#include "common/lazy_pirate.hpp"

#include "common/protocol.hpp"

namespace zshare {

LazyPirateClient::LazyPirateClient(zmq::context_t& ctx, std::string endpoint, std::chrono::milliseconds timeout,
                                   int attempts, SocketSetup setup)
    : ctx_(ctx),
      endpoint_(std::move(endpoint)),
      per_attempt_(std::max<std::chrono::milliseconds>(timeout / std::max(attempts, 1), std::chrono::milliseconds(1))),
      attempts_(std::max(attempts, 1)),
      setup_(std::move(setup)) {}

void LazyPirateClient::reopen() {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::req);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::maxmsgsize, protocol::kClientMaxMessageBytes);
  if (setup_) setup_(*socket_);
  socket_->connect(endpoint_);
}

std::string LazyPirateClient::request(const std::string& body) {
  for (int attempt = 0; attempt < attempts_; ++attempt) {
    if (!socket_) reopen();
    socket_->send(zmq::buffer(body), zmq::send_flags::none);
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, per_attempt_);
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t reply;
      (void)socket_->recv(reply, zmq::recv_flags::none);
      return reply.to_string();
    }
    socket_.reset();  // Lazy Pirate: abandon the socket, its pending request and any late reply
  }
  throw BrokerUnreachable("no reply from " + endpoint_ + " after " + std::to_string(attempts_) +
                          " attempts of " + std::to_string(per_attempt_.count()) + " ms");
}

}  // namespace zshare
