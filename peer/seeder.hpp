// seeder.hpp: the peer's transfer ROUTER and the thread that serves it (schemas/transfer.md): MANIFEST and
// CHUNK requests for content in the ContentCatalog, by content id only. Bound for the object's whole life.
// Memory stays bounded: downloaders keep a window of requests in flight and each one's reply queue is capped.
// A refused CHUNK says why: the file was removed (FILE NOT EXIST) or changed on disk since it was hashed
// (FILE CHANGED), or it could not be read (INTERNAL ERROR). With a log, each finished upload is one line.
#pragma once

#include "common/byte_bucket.hpp"
#include "common/curve_keys.hpp"
#include "common/transfer_protocol.hpp"
#include "peer/content_catalog.hpp"
#include "peer/line_log.hpp"
#include "peer/rendezvous.hpp"
#include "peer/send_budget.hpp"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace zshare::peer {

struct SeederOptions {
  curve::LinkSecurity security;    // CurveZMQ server with the peer's own key, the one the broker lists
  std::uint64_t rate_limit = 0;     // bytes per second for all uploads together; 0: unlimited
  std::uint32_t corrupt_every = 0;  // test-only fault switch: flip a byte in every Nth chunk served
  LineLog log;                      // one line per finished upload (from the seeder's thread); empty: none
  std::chrono::milliseconds upload_idle{2000};  // a downloader silent this long has finished its upload
};

struct SeederStats {
  std::uint64_t chunks_served = 0;
  std::uint64_t bytes_served = 0;
  std::uint64_t refused = 0;        // requests answered with an error status
  std::uint64_t dropped = 0;        // replies not sent: the downloader's queue was full or it left
};

class Seeder {
 public:
  // Binds a ROUTER to `bind_address` (e.g. "tcp://127.0.0.1:*") and starts serving; throws zmq::error_t.
  Seeder(zmq::context_t& ctx, const std::string& bind_address, const ContentCatalog& catalog,
         SeederOptions options = {});
  ~Seeder();
  Seeder(const Seeder&) = delete;
  Seeder& operator=(const Seeder&) = delete;

  // The address actually bound (ZMQ_LAST_ENDPOINT), with the port a wildcard was given.
  const std::string& bound_endpoint() const { return bound_; }
  SeederStats stats() const;
  // Connects out to downloaders that cannot dial us (behind NAT: rendezvous.hpp); thread-safe, done by the
  // serving thread within its next poll. Each such connection is closed once its downloader has been silent
  // for kDialIdle (or never spoke within it).
  void dial(std::vector<DialOut> outs);
  static constexpr std::chrono::seconds kDialIdle{15};

 private:
  void run();
  void serve(std::vector<zmq::message_t>& frames);
  bool reply(std::vector<zmq::message_t>& envelope, zmq::message_t body);  // sent?
  void throttle(std::size_t bytes);
  // Upload log: chunks served, summed per (downloader, content); a line once the downloader has been idle.
  void count_upload(const zmq::message_t& request, const std::string& routing_id, const SharedContent& content,
                    std::size_t bytes);
  void flush_uploads(bool all);
  void connect_dialled();               // the dial() requests, on the serving thread
  void close_idle_dialled(bool all);    // connections out whose downloader went quiet
  static std::string dial_routing_id();  // "dial-" + 32 random hex digits
  // `h`'s chunk layer at `chunk_size` (>= its own): its own, or folded once and kept. A layer depends only on the
  // content id and the chunk size, so the key is those two; a handful are kept (each is at most half of ours).
  const std::vector<Hash>& layer_at(const ContentHashes& h, std::uint32_t chunk_size);

  struct Upload {
    std::string name;
    std::string cid_hex;
    std::string who;  // the downloader's CurveZMQ key (User-Id, when a ZAP handler names it) and address
    std::uint64_t bytes = 0;
    std::uint64_t chunks = 0;
    std::chrono::steady_clock::time_point last;
  };

  const ContentCatalog& catalog_;
  SeederOptions options_;
  zmq::socket_t router_;
  ByteBucket upload_cap_;  // options_.rate_limit, used only by the serving thread
  std::string bound_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> chunks_served_{0}, bytes_served_{0}, refused_{0}, dropped_{0};
  std::unordered_map<std::string, Upload> uploads_;  // routing id + raw cid -> what it took so far
  static constexpr std::size_t kFoldedLayers = 16;
  std::unordered_map<std::string, std::vector<Hash>> folded_;  // raw cid + chunk size -> layer (serving thread)
  // Replies queued in router_ may be freed after this object is gone (libzmq's I/O thread): what they give back
  // to is shared with them (send_budget.hpp).
  SendBudget send_budget_{transfer::kSeederQueuedBytesPerDownloader};
  std::chrono::steady_clock::time_point swept_ = std::chrono::steady_clock::now();
  std::mutex dial_mutex_;
  std::vector<DialOut> to_dial_;          // under dial_mutex_
  std::atomic<bool> dial_pending_{false};
  struct Dialled {
    std::string endpoint;  // what was connected (through `proxy` when set)
    std::chrono::steady_clock::time_point last;
  };
  std::unordered_map<std::string, Dialled> dialled_;  // routing id given to the connection -> it (serving thread)

  std::thread thread_;
};

// The endpoint other peers should dial: `bound` with its host replaced by `host` when one is given
// ("tcp://0.0.0.0:4000" + "files.example" -> "tcp://files.example:4000"). IPv6 hosts get brackets.
// Throws std::invalid_argument when `bound` is not tcp://HOST:PORT.
std::string advertised_endpoint(const std::string& bound, const std::optional<std::string>& host);

}  // namespace zshare::peer
