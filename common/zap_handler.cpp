// zap_handler.cpp: request frames per RFC 27: version, request id, domain, address, identity, mechanism,
// then the mechanism's credentials (for CURVE, the client's 32-byte public key). The reply's user id is the key.
#include "common/zap_handler.hpp"

#include <zmq_addon.hpp>

#include <array>
#include <chrono>
#include <iterator>
#include <string>
#include <vector>

namespace zshare::curve {

ZapHandler::ZapHandler(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { run(); });  // the socket is used only by this thread from here on
}

ZapHandler::~ZapHandler() {
  stop_.store(true);
  thread_.join();
}

void ZapHandler::run() {
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(100));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
      const auto text = [&](std::size_t i) { return i < frames.size() ? frames[i].to_string() : std::string(); };
      std::string status = "400";
      std::string reason = "only CURVE clients are admitted";
      std::string user_id;
      if (text(0) != "1.0") {
        reason = "unsupported ZAP version";
      } else if (text(5) == "CURVE" && frames.size() == 7 && frames[6].size() == 32) {
        std::array<char, 41> z85{};
        zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(frames[6].data()), 32);
        user_id = z85.data();
        status = "200";
        reason = "OK";
      }
      (status == "200" ? admitted_ : refused_).fetch_add(1);
      const std::array<std::string, 6> reply = {"1.0", text(1), status, reason, user_id, ""};
      for (std::size_t i = 0; i < reply.size(); ++i) {
        socket_.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;  // the context is closing
      // Anything else concerns one handshake only; that client is not admitted and may retry.
    }
  }
}

}  // namespace zshare::curve
