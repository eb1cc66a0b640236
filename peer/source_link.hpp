// source_link.hpp: a downloader's link to one source: its DEALER (dialled with exactly the CurveZMQ key the broker
// lists, or dialled *by* that source when it is behind NAT), the requests it has in flight (request id -> chunk
// index), and what became of it, in words.
#pragma once

#include "common/curve_keys.hpp"
#include "common/validate.hpp"
#include "peer/downloader.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zshare::peer {

class SourceLink {
 public:
  using Clock = std::chrono::steady_clock;

  // Accepts replies of at most one chunk of `chunk_size` (or one MANIFEST page) and queues at most a few more
  // than `window` of them: a source cannot make us buffer what we did not ask for.
  // A source the broker cannot reach is asked to dial out (options.rendezvous): the link listens on
  // options.callback_bind and dials the relay, and is waiting() until the source has arrived one way or the other.
  SourceLink(zmq::context_t& ctx, const Source& source, const DownloadOptions& options, std::uint32_t chunk_size,
             std::uint32_t window);
  ~SourceLink() { close(); }
  SourceLink(const SourceLink&) = delete;
  SourceLink& operator=(const SourceLink&) = delete;

  bool alive() const { return report.dropped_because.empty(); }
  // True from a rendezvous until the source's connection is up (the socket can send); ready() checks and ends it.
  bool waiting() const { return waiting_; }
  bool answered() const { return answered_; }  // a reply (any) came on this link
  bool ready();
  // Drops the source: says why, closes the socket. Its requests in flight are the caller's to hand back.
  void drop(std::string why);
  // Sends a request map; false when it would block (the request was not sent).
  bool send(const std::string& request);
  // Waits up to `timeout` for one reply; nothing on silence.
  std::optional<std::vector<zmq::message_t>> receive(std::chrono::milliseconds timeout);
  // Why a source went silent, in words: one that refused our CurveZMQ handshake (it does not hold the key the
  // broker lists: an impostor on that endpoint, or the user's key changed) is told from one that is gone.
  std::string silence(std::string what);

  zmq::socket_t socket;
  std::unordered_map<std::uint64_t, std::uint32_t> in_flight;  // request id -> chunk index
  Clock::time_point last_progress = Clock::now();
  // Since when sends fail (a link made by the source dialling us sends only while that connection is up; once the
  // source closed it, nothing can be asked of it and nothing is in flight to time out).
  std::optional<Clock::time_point> blocked_since;
  SourceReport report;

 private:
  void close();
  void watch_handshakes(zmq::context_t& ctx);
  void await_dial_out(const Source& source, const DownloadOptions& options);
  std::string unreachable_note() const;
  bool waiting_ = false;
  bool dialled_out_to_us_ = false;
  bool answered_ = false;  // the source connects to us (rendezvous): its endpoint is not ours to probe
  std::unique_ptr<zmq::socket_t> monitor_;  // the socket's handshake events (CurveZMQ only)
};

// A transfer request (transfer.md): {v, op, id, cid, chunk_size, <key>: <value>}.
std::string transfer_request(std::string_view op, std::uint64_t id, const Hash& cid, std::uint32_t chunk_size,
                             std::string_view key, std::uint64_t value);

// "; alice stopped answering; bob answered FILE CHANGED (...)": what became of each dropped source.
std::string why_dropped(const std::vector<std::unique_ptr<SourceLink>>& links);

}  // namespace zshare::peer
