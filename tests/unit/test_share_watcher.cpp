// test_share_watcher.cpp: ShareWatcher on a real folder, with inotify and by polling: a file still open for writing
// is busy and reported only once closed; a burst of files is reported once; a rename into the folder arrives whole;
// an overflowed event queue is one change; polling holds a changed file back for one round. Every wait has a
// deadline; no case sleeps and hopes.
#include "peer/share_watcher.hpp"
#include "tests/unit/temp_folder.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace zshare::peer;
using zshare::test::TempFolder;
using namespace std::chrono_literals;

namespace {

void write_file(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Calls wait() until it reports a change or `deadline` passes; true when it reported one.
bool reported_within(ShareWatcher& watcher, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (watcher.wait(50ms)) return true;
  }
  return false;
}

ShareWatcherOptions inotify_options() {
  ShareWatcherOptions o;
  o.mode = WatchMode::kInotify;
  o.quiet = 50ms;
  o.max_delay = 300ms;
  return o;
}

}  // namespace

TEST_CASE("inotify: a file open for writing is busy, reported once it is closed", "[share_watcher]") {
  TempFolder folder("zshare-watcher");
  ShareWatcher watcher(folder.path, inotify_options());
  REQUIRE(watcher.uses_inotify());
  CHECK(watcher.description() == "with inotify");

  const int fd = ::open((folder / "growing.bin").c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "half", 4) == 4);
  CHECK_FALSE(reported_within(watcher, 400ms));  // longer than quiet and max_delay: nothing is due
  CHECK(watcher.busy().count("growing.bin") == 1);

  REQUIRE(::write(fd, " and the rest", 13) == 13);
  ::close(fd);
  CHECK(reported_within(watcher, 2000ms));
  CHECK(watcher.busy().empty());
}

TEST_CASE("inotify: a burst is reported once, and a rename in and a delete are changes", "[share_watcher]") {
  TempFolder folder("zshare-watcher");
  TempFolder outside("zshare-watcher");
  ShareWatcher watcher(folder.path, inotify_options());
  for (int i = 0; i < 500; ++i) write_file(folder / ("f" + std::to_string(i)), "x");
  CHECK(reported_within(watcher, 2000ms));
  CHECK(watcher.busy().empty());
  CHECK_FALSE(reported_within(watcher, 200ms));  // the whole burst was one report

  write_file(outside / "moved.bin", "whole");
  REQUIRE(::rename((outside / "moved.bin").c_str(), (folder / "moved.bin").c_str()) == 0);
  CHECK(reported_within(watcher, 2000ms));
  CHECK(watcher.busy().empty());

  REQUIRE(::unlink((folder / "f0").c_str()) == 0);
  CHECK(reported_within(watcher, 2000ms));
}

TEST_CASE("polling: a new or changed file is held back one round, then reported settled", "[share_watcher]") {
  TempFolder folder("zshare-watcher");
  ShareWatcherOptions o;
  o.mode = WatchMode::kPoll;
  o.poll_interval = 100ms;
  ShareWatcher watcher(folder.path, o);
  CHECK_FALSE(watcher.uses_inotify());
  CHECK(watcher.description() == "by polling every 100 ms (--watch poll)");

  write_file(folder / "new.bin", "data");
  REQUIRE(reported_within(watcher, 2000ms));
  CHECK(watcher.busy().count("new.bin") == 1);  // new since the previous look: it may still be written
  REQUIRE(reported_within(watcher, 2000ms));
  CHECK(watcher.busy().empty());                // the same on the next look: settled
  CHECK_FALSE(reported_within(watcher, 300ms));  // and nothing more

  REQUIRE(::unlink((folder / "new.bin").c_str()) == 0);
  CHECK(reported_within(watcher, 2000ms));
}

TEST_CASE("inotify asked for on a folder that does not exist is an error, auto falls back to polling",
          "[share_watcher]") {
  TempFolder folder("zshare-watcher");
  CHECK_THROWS_WITH(ShareWatcher(folder / "missing", inotify_options()),
                    Catch::Contains("cannot follow") && Catch::Contains("inotify_add_watch"));
  ShareWatcherOptions o;
  o.mode = WatchMode::kAuto;
  ShareWatcher fallback(folder / "missing", o);
  CHECK(fallback.description().find("by polling every 2 s (inotify unavailable: inotify_add_watch") == 0);
}

TEST_CASE("inotify: an overflowed event queue is reported as one change, with a note", "[share_watcher]") {
  long queue = 0;
  {
    std::ifstream limit("/proc/sys/fs/inotify/max_queued_events");
    limit >> queue;
  }
  // Linux's default is 16384; a machine tuned far past that would make this case write millions of events, so it
  // fails saying so rather than passing without having overflowed anything.
  INFO("/proc/sys/fs/inotify/max_queued_events is " << queue);
  REQUIRE((queue > 0 && queue <= 1000000));
  TempFolder folder("zshare-watcher");
  std::vector<std::string> notes;
  ShareWatcher watcher(folder.path, inotify_options(), [&](const std::string& line) { notes.push_back(line); });
  // Writes to two files in turn: one IN_MODIFY each (inotify merges only an event equal to the one before it),
  // more than the queue holds while nobody reads it.
  const int a = ::open((folder / "a").c_str(), O_WRONLY | O_CREAT, 0644);
  const int b = ::open((folder / "b").c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE((a >= 0 && b >= 0));
  for (long i = 0; i < queue / 2 + 100; ++i) {
    REQUIRE(::write(a, "x", 1) == 1);
    REQUIRE(::write(b, "x", 1) == 1);
  }
  ::close(a);
  ::close(b);
  CHECK(reported_within(watcher, 5000ms));
  CHECK(watcher.busy().empty());
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("inotify queue overflow") != std::string::npos);
}

TEST_CASE("watch mode names (serve --watch): auto, inotify, poll", "[share_watcher]") {
  CHECK(watch_mode_named("auto") == WatchMode::kAuto);
  CHECK(watch_mode_named("inotify") == WatchMode::kInotify);
  CHECK(watch_mode_named("poll") == WatchMode::kPoll);
  CHECK_THROWS_AS(watch_mode_named("fanotify"), std::invalid_argument);
}
