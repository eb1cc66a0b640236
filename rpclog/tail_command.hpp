// tail_command.hpp: `zshare-rpclog tail`: the newest records of a running logger through its QUERY call, as log
// lines (log_record.hpp's format) or JSON objects, once or following new ones until SIGINT/SIGTERM.
#pragma once

#include "zshare/protocol_ops.hpp"

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>

namespace zshare::rpclog {

struct TailOptions {
  std::string server = "127.0.0.1:5557";
  std::string user;       // only this user's records; empty: all
  std::string operation;  // only this operation; empty: all
  unsigned last = 20;
  bool json = false;
  bool follow = false;
  std::chrono::milliseconds poll{1000};  // --follow: how often to ask again
};

// The operations the broker logs, the catalogue's mutations: what --op accepts.
inline constexpr const auto& kLoggedOperations = protocol::op::kMutations;

// Prints the records; with `follow`, asks again every `poll` and prints the records not seen yet until `stop`
// rises (at most `last` new ones per poll). Throws on a logger that cannot be reached.
void tail_command(const TailOptions& options, std::ostream& out, const std::atomic<bool>& stop);

}  // namespace zshare::rpclog
