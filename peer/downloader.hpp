// downloader.hpp: fetches one file from one or more seeders at once (multi-source, credit-based: each source
// has a window of chunk requests in flight), verifies every chunk against the Merkle tree whose root the
// broker's index holds, writes to <dest>.part and renames it when complete. Resumes from a kept .part.
#pragma once

#include "common/curve_keys.hpp"
#include "common/transfer_protocol.hpp"
#include "common/validate.hpp"

#include <zmq.hpp>

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
};

struct DownloadPlan {
  Hash cid{};
  Hash root{};
  std::uint64_t size = 0;
  std::uint32_t chunk_size = 0;
  std::vector<Source> sources;
  std::string dest;
};

struct DownloadOptions {
  std::uint32_t window = transfer::kDefaultWindow;           // chunk requests in flight per source
  std::chrono::milliseconds source_timeout{5000};            // a source silent this long is dropped
  std::uint32_t max_bad_chunks_per_source = 3;               // a source sending more bad chunks is dropped
  curve::LinkSecurity security;                              // our keys; each source's key comes with it
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
  std::string error;             // why it failed, one sentence
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;
  std::uint64_t chunks_resumed = 0;   // verified chunks found in an existing .part
  std::uint64_t bad_chunks = 0;
  std::uint64_t bytes_received = 0;
  double seconds = 0;
  std::vector<SourceReport> sources;
};

// Called now and then while downloading: bytes verified so far, total, sources in use.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total, std::size_t sources)>;

class Downloader {
 public:
  Downloader(zmq::context_t& ctx, DownloadOptions options) : ctx_(ctx), options_(options) {}
  // Never throws for network or source trouble (that is the report's error); throws std::runtime_error only
  // when the destination cannot be written at all.
  DownloadReport run(const DownloadPlan& plan, const ProgressFn& progress = {});

 private:
  zmq::context_t& ctx_;
  DownloadOptions options_;
};

}  // namespace zshare::peer
