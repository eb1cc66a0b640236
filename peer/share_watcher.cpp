// share_watcher.cpp: inotify watches the share folder itself (subfolders are never published, so nothing below it
// matters). A new regular file is "busy" from IN_CREATE (or IN_MODIFY of an existing one) until its IN_CLOSE_WRITE;
// a hard link (IN_CREATE of a file with several links) and a rename into the folder (IN_MOVED_TO) arrive whole.
// IN_Q_OVERFLOW lost events, so the busy set is dropped and the next pass rescans everything (each pass does).
// Polling compares lstat() of every entry with the previous look: an entry that differs is busy for one round.
#include "peer/share_watcher.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace zshare::peer {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kInotifyMask = IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                       IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

int poll_ms(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::max<long long>(0, std::min<long long>(ms, INT_MAX)));
}

}  // namespace

WatchMode watch_mode_named(const std::string& name) {
  if (name == "auto") return WatchMode::kAuto;
  if (name == "inotify") return WatchMode::kInotify;
  if (name == "poll") return WatchMode::kPoll;
  throw std::invalid_argument("not a way to follow a folder: '" + name + "' (auto, inotify or poll)");
}

ShareWatcher::ShareWatcher(std::string folder, ShareWatcherOptions options, LineLog log)
    : folder_(std::move(folder)), options_(options), log_(std::move(log)) {
  std::string why;
  if (options_.mode != WatchMode::kPoll && start_inotify(&why)) {
    description_ = "with inotify";
    return;
  }
  if (options_.mode == WatchMode::kInotify) {
    throw std::runtime_error("cannot follow " + folder_ + " with inotify: " + why);
  }
  description_ = "by polling every " + seconds_text(options_.poll_interval) +
                 (options_.mode == WatchMode::kPoll ? std::string(" (--watch poll)")
                                                    : " (inotify unavailable: " + why + ")");
  previous_ = snapshot();
  next_poll_ = Clock::now() + options_.poll_interval;
}

ShareWatcher::~ShareWatcher() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

bool ShareWatcher::start_inotify(std::string* why) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    *why = std::string("inotify_init1: ") + std::strerror(errno);
    return false;
  }
  if (::inotify_add_watch(fd, folder_.c_str(), kInotifyMask) < 0) {
    *why = std::string("inotify_add_watch: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  inotify_fd_ = fd;
  return true;
}

bool ShareWatcher::wait(std::chrono::milliseconds timeout) {
  return uses_inotify() ? wait_inotify(timeout) : wait_poll(timeout);
}

// ---- inotify ----

bool ShareWatcher::wait_inotify(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  for (;;) {
    const auto now = Clock::now();
    auto wake = until;
    if (dirty_) {  // due after a quiet moment, or at the latest max_delay after the burst began
      const auto due = std::min(last_change_ + options_.quiet, first_change_ + options_.max_delay);
      if (now >= due) {
        dirty_ = false;
        return true;
      }
      wake = std::min(due, until);
    }
    if (now >= until) return false;
    pollfd p{inotify_fd_, POLLIN, 0};
    if (::poll(&p, 1, poll_ms(wake - now) + 1) > 0) read_events();
  }
}

void ShareWatcher::read_events() {
  alignas(inotify_event) char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: drained
    for (ssize_t at = 0; at < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
      on_event(ev->mask, ev->len ? std::string(ev->name) : std::string());
      at += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
}

void ShareWatcher::on_event(std::uint32_t mask, const std::string& name) {
  const auto now = Clock::now();
  if (mask & IN_Q_OVERFLOW) {
    if (log_) log_("serve: too many changes at once (inotify queue overflow); rescanning the whole folder");
    busy_.clear();  // their IN_CLOSE_WRITE may be among the lost events
    changed(now);
    return;
  }
  if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
    if (log_) log_("serve: the share folder " + folder_ + " was removed or moved away; it is no longer followed");
    changed(now);
    return;
  }
  if (name.empty()) return;  // IN_IGNORED and other events of the folder itself
  if (mask & IN_CREATE) {
    struct stat st {};
    const bool new_file = !(mask & IN_ISDIR) && ::lstat((folder_ + "/" + name).c_str(), &st) == 0 &&
                          S_ISREG(st.st_mode) && st.st_nlink == 1;
    if (new_file) {
      busy_.insert(name);  // being written: wait for its IN_CLOSE_WRITE
    } else {
      changed(now);        // a folder, symlink, hard link or a file already gone: nothing will follow
    }
    return;
  }
  if (mask & IN_MODIFY) {
    busy_.insert(name);
    return;
  }
  if (mask & (IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE)) busy_.erase(name);
  changed(now);  // those and IN_ATTRIB (a new mtime or ctime must reach the catalog, or the seeder refuses the file)
}

void ShareWatcher::changed(Clock::time_point now) {
  if (!dirty_) first_change_ = now;
  dirty_ = true;
  last_change_ = now;
}

// ---- polling ----

bool ShareWatcher::wait_poll(std::chrono::milliseconds timeout) {
  const auto now = Clock::now();
  if (now < next_poll_) {
    std::this_thread::sleep_for(std::min<Clock::duration>(timeout, next_poll_ - now));
    if (Clock::now() < next_poll_) return false;
  }
  next_poll_ = Clock::now() + options_.poll_interval;
  Snapshot current = snapshot();
  std::set<std::string> moving;  // new or changed since the previous look: may still be written
  for (const auto& [name, entry] : current) {
    auto was = previous_.find(name);
    if (was == previous_.end() || was->second != entry) moving.insert(name);
  }
  const bool due = current != previous_ || !busy_.empty();  // a change, or files busy last round that settled
  previous_ = std::move(current);
  busy_ = std::move(moving);
  return due;
}

ShareWatcher::Snapshot ShareWatcher::snapshot() const {
  Snapshot out;
  try {
    for (auto& entry : read_folder(folder_)) out.emplace(entry.name, std::move(entry));
  } catch (const std::system_error&) {
    // Unreadable or gone: it reads as empty, a change the reconcile pass then reports.
  }
  return out;
}

}  // namespace zshare::peer
