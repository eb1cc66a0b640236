// serve_command.hpp: `zshare-peer serve --user U --share DIR`: how a seeder runs for days. Registers if needed,
// connects, makes the index match the share (publishes new and changed files, deletes vanished ones), then
// follows the folder (ShareWatcher: inotify, or polling) and reconciles after each settled burst of changes
// (ShareSync), serving the files until told to stop; then disconnects. Hashes come from a HashCache, so a restart
// reads nothing again. Every change and every finished upload is one "serve: ..." line on the log.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/response_printer.hpp"
#include "peer/line_log.hpp"
#include "peer/seeder.hpp"
#include "peer/share_watcher.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

namespace zshare::peer {

struct ServeOptions {
  std::string user;
  std::string share;
  std::string listen = "tcp://127.0.0.1:*";
  std::optional<std::string> advertise_host;
  std::string hash_cache;  // empty: default_hash_cache_path()
  std::uint32_t chunk_size = kDefaultChunkSize;
  SeederOptions seeder;                       // its log is serve's own (below)
  ShareWatcherOptions watch;                  // inotify or polling, and how bursts are coalesced
  LineLog log;                                // serve's log lines; empty: std::cerr
  std::chrono::milliseconds heartbeat{1000};  // promised at CONNECT; the broker expires a silent session
  std::string timesvc;                        // for the session keeper's own stamps
};

// Returns the process exit code: 0 after a clean stop, 1 when the broker refused, 2 on usage or connection errors.
int serve_command(zmq::context_t& ctx, BrokerClient& broker, const ServeOptions& options,
                  const std::atomic<bool>& stop, ResponsePrinter& printer);

}  // namespace zshare::peer
