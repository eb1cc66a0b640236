// serve_command.hpp: `zshare-peer serve --user U --share DIR`: how a seeder runs for days. Registers if needed,
// connects, makes the index match the share (publishes new and changed files, deletes vanished ones), serves
// them until told to stop, then disconnects. Hashes come from a HashCache, so a restart reads nothing again.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/response_printer.hpp"
#include "peer/seeder.hpp"

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
  SeederOptions seeder;
  std::chrono::milliseconds heartbeat{1000};  // promised at CONNECT; the broker expires a silent session
  std::string timesvc;                        // for the session keeper's own stamps
};

// Returns the process exit code: 0 after a clean stop, 1 when the broker refused, 2 on usage or connection errors.
int serve_command(zmq::context_t& ctx, BrokerClient& broker, const ServeOptions& options,
                  const std::atomic<bool>& stop, ResponsePrinter& printer);

}  // namespace zshare::peer
