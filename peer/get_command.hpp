// get_command.hpp: `zshare-peer get` and the shell's GET_FILE: resolve what to fetch through the broker
// (LOOKUP for user:name, SEARCH by content id for its sources), then run the multi-source Downloader.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/command_result.hpp"
#include "peer/downloader.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace zshare::peer {

struct GetRequest {
  std::string target;                    // a content id (64 hex digits) or user:name
  std::string dest;                      // where the file goes (written as dest.part until complete)
  std::optional<std::string> only_user;  // GET_FILE: fetch from this user only
  DownloadOptions download;
  // While the content has holders and none of them is online (a broker restart ends every session until the
  // peers reconnect, within a heartbeat), the sources are asked for again for this long before giving up.
  std::chrono::milliseconds source_wait{2000};
};

// `command` names the result ("GET" or "GET_FILE"). Statuses: OK; the broker's (FILE NOT EXIST, USER DOES
// NOT EXIST, ...); USER NOT CONNECTED (no online source); DOWNLOAD FAILED (every source failed; .part kept).
CommandResult get_command(zmq::context_t& ctx, BrokerClient& broker, const std::string& command,
                          const GetRequest& request, const ProgressFn& progress = {});

// A progress line for a terminal ("\r  12.0 MiB / 40.0 MiB  30%  8.1 MiB/s  ETA 3s  2 sources").
ProgressFn terminal_progress(std::ostream& err);

}  // namespace zshare::peer
