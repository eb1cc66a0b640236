// source_link.cpp: the DEALER's options, the handshake monitor (CurveZMQ only) and the request encoding.
#include "peer/source_link.hpp"

#include "common/codec.hpp"
#include "common/port_probe.hpp"
#include "common/transfer_protocol.hpp"
#include "peer/rendezvous.hpp"

#include <zmq_addon.hpp>

#include <atomic>
#include <cstring>

namespace zshare::peer {

SourceLink::SourceLink(zmq::context_t& ctx, const Source& s, const DownloadOptions& options,
                       std::uint32_t chunk_size, std::uint32_t window)
    : socket(ctx, zmq::socket_type::dealer) {
  const curve::LinkSecurity& security = options.security;
  report.user = s.user;
  report.endpoint = s.endpoint;
  socket.set(zmq::sockopt::linger, 0);
  constexpr std::int64_t kReplyMapBytes = 4096;  // a reply's fields beside its chunk or layer page
  socket.set(zmq::sockopt::maxmsgsize,
             std::max<std::int64_t>(chunk_size, transfer::kMaxLeavesPerManifest * 32) + kReplyMapBytes);
  socket.set(zmq::sockopt::rcvhwm, static_cast<int>(window) + 8);
  if (!security.plaintext && !curve::is_z85_key(s.key)) {
    report.dropped_because = "the broker lists no CurveZMQ key for this source";
    return;  // never dial a source we could not authenticate
  }
  security.dial(socket, s.key);  // CurveZMQ refuses a seeder that does not hold exactly this key
  if (!security.plaintext) watch_handshakes(ctx);
  if (!s.reachable && options.rendezvous) {
    await_dial_out(s, options);
    return;
  }
  socket.connect(s.endpoint);
}

// The source dials us: we listen (when we can) and dial the relay (when there is one); whichever way it comes,
// the CurveZMQ roles stay as they are, so the source must still prove the key the broker lists. Requests go only
// to a connection that is up (ZMQ_IMMEDIATE): none is queued on the relay's while the source came the other way.
void SourceLink::await_dial_out(const Source& s, const DownloadOptions& options) {
  socket.set(zmq::sockopt::immediate, 1);
  std::uint16_t port = 0;
  if (!options.callback_bind.empty()) {
    try {
      socket.bind(options.callback_bind);
      const std::string bound = socket.get(zmq::sockopt::last_endpoint);
      port = static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1)));
    } catch (const std::exception&) {
      port = 0;  // no listening here (e.g. the address is not ours): the relay may still do
    }
  }
  const RendezvousAnswer answer = options.rendezvous(s, port);
  if (!answer.error.empty()) {
    drop(answer.error);
    return;
  }
  if (!answer.relay_endpoint.empty()) {
    set_socks_proxy(socket, answer.relay_proxy);
    socket.connect(answer.relay_endpoint);
  }
  dialled_out_to_us_ = true;
  report.endpoint = s.endpoint + " (behind NAT: asked to dial out" +
                    std::string(port ? " to us" : "") + (answer.relay_endpoint.empty() ? "" : port ? " or via the relay" : " via the relay") + ")";
  waiting_ = true;
}

bool SourceLink::ready() {
  if (!waiting_) return alive();
  if (!alive()) return false;
  if (socket.get(zmq::sockopt::events) & ZMQ_POLLOUT) waiting_ = false;
  return !waiting_;
}

void SourceLink::drop(std::string why) {
  report.dropped_because = std::move(why);
  close();
}

// Stops the monitor before the socket closes: libzmq leaks a monitored socket's event pipe otherwise.
void SourceLink::close() {
  if (monitor_) {
    if (socket) zmq_socket_monitor(socket.handle(), nullptr, 0);
    monitor_->close();
    monitor_.reset();
  }
  if (socket) socket.close();
}

bool SourceLink::send(const std::string& request) {
  const bool sent = socket.send(zmq::buffer(request), zmq::send_flags::dontwait).has_value();
  if (sent) blocked_since.reset();
  else if (!blocked_since) blocked_since = Clock::now();
  return sent;
}

std::optional<std::vector<zmq::message_t>> SourceLink::receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) return std::nullopt;
  answered_ = true;
  return frames;
}

std::string SourceLink::silence(std::string what) {
  if (!monitor_) return what + unreachable_note();
  bool succeeded = false, failed = false;
  for (;;) {
    std::vector<zmq::message_t> event;
    if (!zmq::recv_multipart(*monitor_, std::back_inserter(event), zmq::recv_flags::dontwait)) break;
    if (event.empty() || event[0].size() < 2) continue;
    std::uint16_t id = 0;
    std::memcpy(&id, event[0].data(), sizeof id);
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) succeeded = true;
    if (id & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
              ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) {
      failed = true;
    }
  }
  if (failed && !succeeded) {
    return what + ": it failed the CurveZMQ handshake, so the process at " + report.endpoint +
           " does not hold the key the broker lists for " + report.user;
  }
  return succeeded ? what : what + unreachable_note();
}

// For a source we dialled and never heard: is anything listening there, from here? A peer behind NAT or a firewall
// advertises an endpoint nobody outside can open, which is no sign of a corrupt file or a lying index.
std::string SourceLink::unreachable_note() const {
  if (dialled_out_to_us_ || tcp_port_open(report.endpoint, std::chrono::milliseconds(500)).value_or(true)) return "";
  return " (nothing accepts connections at " + report.endpoint +
         " from here: it is behind NAT or a firewall, which the broker had not found out yet)";
}

void SourceLink::watch_handshakes(zmq::context_t& ctx) {
  static std::atomic<std::uint64_t> next{0};
  const std::string address = "inproc://zshare-download-monitor-" + std::to_string(next++);
  constexpr int kEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                          ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(socket.handle(), address.c_str(), kEvents) != 0) return;  // a diagnosis only
  monitor_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
  monitor_->set(zmq::sockopt::linger, 0);
  monitor_->connect(address);
}

std::string transfer_request(std::string_view op, std::uint64_t id, const Hash& cid, std::uint32_t chunk_size,
                             std::string_view key, std::uint64_t value) {
  MapWriter w;
  w.put("v", transfer::kVersion).put("op", op).put("id", id).put("cid", to_hex(cid));
  w.put("chunk_size", std::uint64_t{chunk_size}).put(key, value);
  return w.finish();
}

std::string why_dropped(const std::vector<std::unique_ptr<SourceLink>>& links) {
  std::string why;
  for (const auto& l : links) {
    if (!l->report.dropped_because.empty()) why += "; " + l->report.user + " " + l->report.dropped_because;
  }
  return why;
}

}  // namespace zshare::peer
