// get_command.hpp: `zshare-peer get` and the shell's GET_FILE: resolve what to fetch through the broker
// (LOOKUP for user:name, SEARCH by content id for its sources), check the destination before anything moves,
// then run the multi-source Downloader, trying again (--max-tries) when every source failed.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/command_result.hpp"
#include "peer/downloader.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace zshare::peer {

struct GetRequest {
  std::string target;                    // a content id (64 hex digits) or user:name
  // "-": standard output; "": the current folder; a folder: <folder>/<published name>; else the file itself
  // (written as <dest>.part until complete).
  std::string dest;
  std::optional<std::string> only_user;  // GET_FILE: fetch from this user only
  DownloadOptions download;
  // While the content has holders and none of them is online (a broker restart ends every session until the
  // peers reconnect, within a heartbeat), the sources are asked for again for this long before giving up.
  std::chrono::milliseconds source_wait{2000};
  bool force = false;                    // replace an existing regular file that holds other content
  unsigned max_tries = 5;                // downloads tried when every source fails (aria2c's --max-tries)
  std::chrono::milliseconds retry_wait{1000};  // pause between tries
};

// What `get` tells the person at the terminal while it works; either may be empty.
struct GetObserver {
  std::function<void(const Progress&)> progress;
  std::function<void(const std::string&)> note;  // one sentence for stderr ("trying again in 1 s ...")
};

// `command` names the result ("GET" or "GET_FILE"). Statuses: OK (also when the destination already holds the
// content: `already` is true); the broker's (FILE NOT EXIST, USER DOES NOT EXIST, ...); USER NOT CONNECTED (no
// online source); DESTINATION REFUSED (a device, FIFO, folder or other file in the way; nothing transferred);
// NO SPACE; DOWNLOAD FAILED (every try failed; `part` names a kept .part); INTERRUPTED (the stop flag).
CommandResult get_command(zmq::context_t& ctx, BrokerClient& broker, const std::string& command,
                          const GetRequest& request, const GetObserver& observer = {});

// One line for a person about a finished GET: "saved ./a.flac: 40.0 MiB in 0:03 (12.5 MiB/s) from 2 sources".
std::string get_summary_line(const CommandResult& result);

}  // namespace zshare::peer
