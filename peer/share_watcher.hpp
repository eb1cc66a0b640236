// share_watcher.hpp: tells `serve` when its share folder changed, so one reconcile pass can follow it. Two ways:
// inotify on the folder (the default), or polling it every --poll-interval when inotify cannot be set up or is
// not wanted. Bursts are coalesced: a change marks the folder dirty, and wait() reports it once the folder has
// been quiet for a moment (bounded by a maximum delay, so a constant stream of changes is still followed).
// Invariant: a name in busy() is a file still being written (open for writing under inotify; its FileIdentity
// changed since the previous poll); a reconcile leaves it alone until a later wait() reports it settled.
#pragma once

#include "peer/line_log.hpp"
#include "peer/share_folder.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace zshare::peer {

enum class WatchMode { kAuto, kInotify, kPoll };  // kAuto: inotify, else polling

// "auto", "inotify" or "poll" (serve's --watch); throws std::invalid_argument for anything else.
WatchMode watch_mode_named(const std::string& name);

struct ShareWatcherOptions {
  WatchMode mode = WatchMode::kAuto;
  std::chrono::milliseconds poll_interval{2000};  // between two looks at the folder when polling
  std::chrono::milliseconds quiet{300};           // inotify: a burst is over after this long without an event
  std::chrono::milliseconds max_delay{2000};      // inotify: a change waits at most this long for quiet
};

class ShareWatcher {
 public:
  // Starts following `folder`. Throws std::runtime_error when inotify is asked for and cannot watch it.
  // `log` gets the rare events a reader should know of (an overflowed event queue, the folder gone).
  ShareWatcher(std::string folder, ShareWatcherOptions options, LineLog log = {});
  ~ShareWatcher();
  ShareWatcher(const ShareWatcher&) = delete;
  ShareWatcher& operator=(const ShareWatcher&) = delete;

  bool uses_inotify() const { return inotify_fd_ >= 0; }
  // How the folder is followed, for serve's start-up line ("with inotify", "by polling every 2 s (...)").
  const std::string& description() const { return description_; }

  // Waits at most `timeout` (keep it short: the caller checks its stop flag between calls). True when the
  // folder changed and settled: reconcile it now, leaving busy() alone.
  bool wait(std::chrono::milliseconds timeout);
  const std::set<std::string>& busy() const { return busy_; }

 private:
  using Snapshot = std::map<std::string, FolderEntry>;  // what a poll saw, by name

  bool start_inotify(std::string* why);  // false (and why) when inotify cannot watch the folder
  bool wait_inotify(std::chrono::milliseconds timeout);
  void read_events();
  void on_event(std::uint32_t mask, const std::string& name);
  void changed(std::chrono::steady_clock::time_point now);
  bool wait_poll(std::chrono::milliseconds timeout);
  Snapshot snapshot() const;

  std::string folder_;
  ShareWatcherOptions options_;
  LineLog log_;
  std::string description_;
  int inotify_fd_ = -1;
  std::set<std::string> busy_;
  // inotify: a change not yet reported, since when, and the latest event of its burst.
  bool dirty_ = false;
  std::chrono::steady_clock::time_point first_change_, last_change_;
  // polling: the previous look and when the next one is due.
  Snapshot previous_;
  std::chrono::steady_clock::time_point next_poll_;
};

}  // namespace zshare::peer
