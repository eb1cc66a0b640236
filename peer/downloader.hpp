// downloader.hpp: fetches one file from one or more seeders at once (multi-source, credit-based: each source
// has a window of chunk requests in flight), verifies every chunk against the Merkle tree whose root is the
// content id, writes them to a PartFile (the caller commits it). Resumes from a kept .part; can feed the
// verified bytes in file order to a sink (standard output); stops early when its stop flag is raised.
// The work is a DownloadSession (download_session.hpp); this is its entry point.
#pragma once

#include "common/curve_keys.hpp"
#include "common/transfer_protocol.hpp"
#include "common/validate.hpp"
#include "peer/part_file.hpp"
#include "peer/progress_meter.hpp"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace zshare::peer {

struct Source {
  std::string user;
  std::string endpoint;
  std::string key;  // its CurveZMQ public key as the broker lists it: the only key this source may have
  // False when the broker could not open a connection to `endpoint` (behind NAT or a firewall): the link is then
  // made the other way round, by the source dialling out (DownloadOptions::rendezvous; transfer.md, "Paths").
  bool reachable = true;
};

// What the broker answered a DIAL for one source: the relay to dial through (SOCKS proxy HOST:PORT and the
// endpoint naming our side of the token) when the source may take that path; or why no link can be made.
struct RendezvousAnswer {
  std::string relay_proxy;
  std::string relay_endpoint;
  std::string error;  // non-empty: the source is dropped with this sentence
};
// Asks the broker to have `source` dial out to us: to `callback_port` on our address (0: we listen nowhere), or
// through the relay.
using RendezvousFn = std::function<RendezvousAnswer(const Source& source, std::uint16_t callback_port)>;

struct DownloadPlan {
  Hash cid{};                    // the Merkle root every chunk is verified against
  std::uint64_t size = 0;
  std::uint32_t chunk_size = 0;  // the largest of the sources' chunk sizes: each folds its layer up to it
  std::vector<Source> sources;
};

struct DownloadOptions {
  std::uint32_t window = transfer::kDefaultWindow;           // chunk requests in flight per source
  std::chrono::milliseconds source_timeout{5000};            // a source silent this long is dropped
  std::uint32_t max_bad_chunks_per_source = 3;               // a source sending more bad chunks is dropped
  curve::LinkSecurity security;                              // our keys; each source's key comes with it
  std::uint64_t rate_limit = 0;                              // bytes per second from all sources; 0: no cap
  const std::atomic<bool>* stop = nullptr;                   // raised (SIGINT, SIGTERM): give up at once
  unsigned hash_threads = 2;                                 // workers verifying and writing chunks
  // For sources the broker cannot reach: how to ask them to dial out (empty: such sources are dialled anyway),
  // where to listen for them ("": nowhere, the relay only), and how long to wait for them to arrive.
  RendezvousFn rendezvous;
  std::string callback_bind = "tcp://0.0.0.0:*";
  std::chrono::milliseconds rendezvous_timeout{10000};
};

struct SourceReport {
  std::string user;
  std::string endpoint;
  std::uint64_t chunks = 0;      // verified chunks it delivered
  std::uint64_t bad_chunks = 0;  // chunks that failed verification
  std::string dropped_because;   // empty while it stayed in use
};

struct DownloadReport {
  bool ok = false;
  bool interrupted = false;      // the stop flag was raised
  bool sources_failed = false;   // it failed for want of a working source: another try may succeed
  std::string error;             // why it failed, one sentence
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;
  std::uint64_t chunks_resumed = 0;   // verified chunks found in an existing .part
  std::uint64_t bad_chunks = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_done = 0;       // verified bytes in the file, resumed ones included
  std::uint64_t bytes_resumed = 0;    // of those, found in an existing .part
  double seconds = 0;
  std::vector<SourceReport> sources;
};

// Called now and then while downloading (Progress::name is left empty).
using ProgressFn = std::function<void(const Progress&)>;
// Given every verified byte once, in file order (a download to standard output); throws to abort.
using OrderedSink = std::function<void(const void* data, std::size_t size)>;

class Downloader {
 public:
  Downloader(zmq::context_t& ctx, DownloadOptions options) : ctx_(ctx), options_(options) {}
  // Never throws for network or source trouble (that is the report's error); throws DestinationError when the
  // file cannot be written, and whatever `sink` throws.
  DownloadReport run(const DownloadPlan& plan, PartFile& part, const ProgressFn& progress = {},
                     const OrderedSink& sink = {});

 private:
  zmq::context_t& ctx_;
  DownloadOptions options_;
};

}  // namespace zshare::peer
