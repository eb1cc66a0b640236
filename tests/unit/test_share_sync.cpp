// test_share_sync.cpp: serve's reconcile pass (ShareSync) on a real folder: which entries are published, what a
// rescan does to the catalog (added, changed, touched, removed, busy files left alone, nothing hashed twice; a file
// replaced by one of the same size and mtime, by a rename or a rewrite in place, is hashed again, after a restart
// too), the skip notes logged once; and a whole pass against the Broker class in-process (plaintext, real sockets):
// the index follows the folder, one LIST_CONTENT per pass, no broker request when nothing changed.
#include "broker/broker.hpp"
#include "common/validate.hpp"
#include "peer/broker_client.hpp"
#include "peer/share_folder.hpp"
#include "peer/share_sync.hpp"
#include "tests/unit/temp_folder.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace zshare;
using namespace zshare::peer;

namespace {

// A temporary folder holding a share folder and a hash cache, removed at the end.
struct TempShare {
  TempShare() : share(root / "share") { REQUIRE(::mkdir(share.c_str(), 0700) == 0); }

  std::string path(const std::string& name) const { return share + "/" + name; }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary | std::ios::trunc) << bytes;
  }
  // Sets the file's modification time to `seconds` since the epoch (its bytes unchanged).
  void set_mtime(const std::string& name, long seconds) const {
    const timespec times[2] = {{seconds, 0}, {seconds, 0}};
    REQUIRE(::utimensat(AT_FDCWD, path(name).c_str(), times, 0) == 0);
  }
  // Sets the file's modification time to `mtime_ns` exactly, as `touch -r` or `cp -p` do.
  void set_mtime_ns(const std::string& name, std::int64_t mtime_ns) const {
    const timespec t{static_cast<time_t>(mtime_ns / 1000000000LL), static_cast<long>(mtime_ns % 1000000000LL)};
    const timespec times[2] = {t, t};
    REQUIRE(::utimensat(AT_FDCWD, path(name).c_str(), times, 0) == 0);
  }
  // Waits (1 s at most) until the clock the kernel stamps ctime with has moved past `ctime_ns`, so the next change
  // to a file gets another ctime even where timestamps are coarse (one tick is a few ms): a probe outside the
  // share is rewritten until its ctime is later.
  void wait_ctime_past(std::int64_t ctime_ns) const {
    const std::string probe = root / "clock-probe";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (;;) {
      std::ofstream(probe, std::ios::trunc) << "tick";
      if (identity_of(probe).ctime_ns > ctime_ns) return;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
  }

  test::TempFolder root{"zshare-share-sync"};
  std::string share;
};

// A ShareSync over a TempShare with its own catalog and cache, collecting its log lines.
struct Fixture {
  Fixture()
      : cache(folder.root / "hashes.db"),
        sync(folder.share, 16384, catalog, cache, [this](const std::string& line) { lines.push_back(line); }) {}

  std::size_t lines_with(const std::string& text) const {
    std::size_t n = 0;
    for (const auto& l : lines) n += l.find(text) != std::string::npos;
    return n;
  }

  TempShare folder;
  ContentCatalog catalog;
  HashCache cache;
  std::vector<std::string> lines;
  ShareSync sync;
};

FolderEntry entry(const std::string& name, unsigned mode) { return FolderEntry{name, mode, FileIdentity{1, 1, 1, 1}}; }

std::string cid_of(const ContentCatalog& catalog, const std::string& name) {
  auto c = catalog.find_name(name);
  return c ? to_hex(c->hashes.cid) : "";
}

}  // namespace

TEST_CASE("share rule: only regular files with valid flat names are published", "[share_sync]") {
  CHECK(share_rule(entry("song.flac", S_IFREG | 0644)) == ShareRule::kPublish);
  CHECK(share_rule(entry(".hidden", S_IFREG | 0644)) == ShareRule::kHidden);
  CHECK(share_rule(entry("movie.mkv.part", S_IFREG | 0644)) == ShareRule::kHidden);
  CHECK(share_rule(entry(".git", S_IFDIR | 0755)) == ShareRule::kHidden);
  CHECK(share_rule(entry("sub", S_IFDIR | 0755)) == ShareRule::kFolder);
  CHECK(share_rule(entry("link", S_IFLNK | 0777)) == ShareRule::kSymlink);
  CHECK(share_rule(entry("fifo", S_IFIFO | 0644)) == ShareRule::kOther);
  CHECK(share_rule(entry("bad\xff", S_IFREG | 0644)) == ShareRule::kBadName);
  CHECK(skip_note(entry("sub", S_IFDIR), ShareRule::kFolder) ==
        "serve: skipping folder sub/: subfolders are not published (published names are flat, see "
        "schemas/protocol.md)");
  CHECK(skip_note(entry(".hidden", S_IFREG), ShareRule::kHidden).empty());
}

TEST_CASE("rescan: new, changed, touched and removed files reach the catalog, nothing is hashed twice",
          "[share_sync]") {
  Fixture f;
  f.folder.write("a.txt", "first a");
  f.folder.write("b.txt", "first b");
  ShareChanges first = f.sync.rescan({});
  CHECK(first.added.size() == 2);
  CHECK(first.hashed == 2);
  CHECK(first.index_affected());
  const std::string a_cid = cid_of(f.catalog, "a.txt");
  CHECK(a_cid == to_hex(sha256("first a", 7)));

  SECTION("an unchanged folder costs no hashing and changes nothing") {
    ShareChanges again = f.sync.rescan({});
    CHECK_FALSE(again.index_affected());
    CHECK(again.hashed + again.from_cache + again.touched == 0);
  }
  SECTION("a rewritten file gets its new content id") {
    f.folder.write("a.txt", "second a, longer");
    ShareChanges again = f.sync.rescan({});
    CHECK(again.changed == std::vector<std::string>{"a.txt"});
    CHECK(cid_of(f.catalog, "a.txt") == to_hex(sha256("second a, longer", 16)));
  }
  SECTION("a new modification time with the same bytes follows into the catalog, not the index") {
    f.folder.set_mtime("a.txt", 1000000000);
    ShareChanges again = f.sync.rescan({});
    CHECK_FALSE(again.index_affected());
    CHECK(again.touched == 1);
    CHECK(f.catalog.find_name("a.txt")->identity.mtime_ns == 1000000000LL * 1000000000LL);
  }
  SECTION("a file moved over another of the same size and mtime gets its new content id (another inode)") {
    f.folder.write("c.txt", "other b");  // the same size as b.txt
    const FileIdentity b = identity_of(f.folder.path("b.txt"));
    f.folder.set_mtime_ns("c.txt", b.mtime_ns);
    REQUIRE(::rename(f.folder.path("c.txt").c_str(), f.folder.path("b.txt").c_str()) == 0);
    const FileIdentity now = identity_of(f.folder.path("b.txt"));
    REQUIRE((now.size == b.size && now.mtime_ns == b.mtime_ns && now.inode != b.inode));
    ShareChanges again = f.sync.rescan({});
    CHECK(again.changed == std::vector<std::string>{"b.txt"});
    CHECK(cid_of(f.catalog, "b.txt") == to_hex(sha256("other b", 7)));
    CHECK(f.catalog.find_name("b.txt")->identity == now);
  }
  SECTION("a file rewritten in place with the same size, its mtime set back, gets its new content id (ctime)") {
    const FileIdentity a = identity_of(f.folder.path("a.txt"));
    f.folder.wait_ctime_past(a.ctime_ns);
    f.folder.write("a.txt", "other a");
    f.folder.set_mtime_ns("a.txt", a.mtime_ns);
    const FileIdentity now = identity_of(f.folder.path("a.txt"));
    REQUIRE((now.size == a.size && now.mtime_ns == a.mtime_ns && now.inode == a.inode && now.ctime_ns != a.ctime_ns));
    ShareChanges again = f.sync.rescan({});
    CHECK(again.changed == std::vector<std::string>{"a.txt"});
    CHECK(cid_of(f.catalog, "a.txt") == to_hex(sha256("other a", 7)));
  }
  SECTION("a chmod alone (a new ctime) is hashed again and keeps its content id: the index is not touched") {
    const FileIdentity a = identity_of(f.folder.path("a.txt"));
    f.folder.wait_ctime_past(a.ctime_ns);
    REQUIRE(::chmod(f.folder.path("a.txt").c_str(), 0600) == 0);
    ShareChanges again = f.sync.rescan({});
    CHECK_FALSE(again.index_affected());
    CHECK(again.touched == 1);
    CHECK(again.hashed == 1);
    CHECK(cid_of(f.catalog, "a.txt") == a_cid);
  }
  SECTION("a restart with the same hash cache after a same-size, same-mtime replacement hashes the new file") {
    f.folder.write("c.txt", "other a");
    const FileIdentity a = identity_of(f.folder.path("a.txt"));
    f.folder.set_mtime_ns("c.txt", a.mtime_ns);
    REQUIRE(::rename(f.folder.path("c.txt").c_str(), f.folder.path("a.txt").c_str()) == 0);
    ContentCatalog catalog;  // a new serve: an empty catalog over the same cache
    ShareSync restarted(f.folder.share, 16384, catalog, f.cache, {});
    ShareChanges again = restarted.rescan({});
    CHECK(again.hashed == 1);      // a.txt: the cached row is for the file it replaced
    CHECK(again.from_cache == 1);  // b.txt: unchanged
    CHECK(cid_of(catalog, "a.txt") == to_hex(sha256("other a", 7)));
  }
  SECTION("a deleted file leaves the catalog, so the seeder no longer finds its content") {
    REQUIRE(::unlink(f.folder.path("b.txt").c_str()) == 0);
    ShareChanges again = f.sync.rescan({});
    CHECK(again.removed == std::vector<std::string>{"b.txt"});
    CHECK_FALSE(f.catalog.find_name("b.txt"));
  }
  SECTION("a busy file (still being written) is left as it was, published or not") {
    f.folder.write("a.txt", "a rewrite in progress");
    f.folder.write("c.txt", "half of c");
    ShareChanges again = f.sync.rescan({"a.txt", "c.txt"});
    CHECK_FALSE(again.index_affected());
    CHECK(cid_of(f.catalog, "a.txt") == a_cid);
    CHECK_FALSE(f.catalog.find_name("c.txt"));
    ShareChanges settled = f.sync.rescan({});
    CHECK(settled.added == std::vector<std::string>{"c.txt"});
    CHECK(settled.changed == std::vector<std::string>{"a.txt"});
  }
  SECTION("a file replaced by a symlink or a folder is withdrawn") {
    REQUIRE(::unlink(f.folder.path("a.txt").c_str()) == 0);
    REQUIRE(::symlink(f.folder.path("b.txt").c_str(), f.folder.path("a.txt").c_str()) == 0);
    REQUIRE(::unlink(f.folder.path("b.txt").c_str()) == 0);
    REQUIRE(::mkdir(f.folder.path("b.txt").c_str(), 0700) == 0);
    ShareChanges again = f.sync.rescan({});
    CHECK(again.removed.size() == 2);
    CHECK(f.catalog.all().empty());
  }
}

TEST_CASE("rescan: skipped entries are noted once while they stay, dotfiles and .part files skipped silently",
          "[share_sync]") {
  Fixture f;
  f.folder.write(".hidden", "x");
  f.folder.write("get.bin.part", "x");
  REQUIRE(::mkdir(f.folder.path("sub").c_str(), 0700) == 0);
  f.folder.write("sub/inner.txt", "x");
  REQUIRE(::symlink("/etc/passwd", f.folder.path("escape").c_str()) == 0);
  f.folder.write("kept.txt", "x");
  for (int pass = 0; pass < 3; ++pass) f.sync.rescan({});
  CHECK(f.catalog.all().size() == 1);
  CHECK(f.lines_with("skipping folder sub/") == 1);
  CHECK(f.lines_with("skipping escape: symlinks are not published") == 1);
  CHECK(f.lines_with("hidden") == 0);
  CHECK(f.lines_with(".part") == 0);
  // Gone, then back: noted again.
  REQUIRE(::unlink(f.folder.path("escape").c_str()) == 0);
  f.sync.rescan({});
  REQUIRE(::symlink("/etc/passwd", f.folder.path("escape").c_str()) == 0);
  f.sync.rescan({});
  CHECK(f.lines_with("skipping escape") == 2);
}

TEST_CASE("rescan: a stop ends the pass early and removes nothing", "[share_sync]") {
  Fixture f;
  f.folder.write("a.txt", "a");
  f.sync.rescan({});
  std::atomic<bool> stop{true};
  REQUIRE(::unlink(f.folder.path("a.txt").c_str()) == 0);
  f.folder.write("b.txt", "b");
  ShareChanges stopped = f.sync.rescan({}, &stop);
  CHECK_FALSE(stopped.complete);
  CHECK(f.catalog.find_name("a.txt"));
}

TEST_CASE("reconcile: the broker's index follows the folder, one LIST_CONTENT per pass", "[share_sync]") {
  Fixture f;
  broker::BrokerOptions opts;
  opts.bind = "tcp://127.0.0.1:*";
  opts.events = "tcp://127.0.0.1:*";
  opts.db = f.folder.root / "broker.db";
  opts.rpclog = "none";
  opts.plaintext = true;
  broker::Broker broker(opts);
  std::atomic<bool> stop_broker{false};
  std::thread loop([&] { broker.run(stop_broker); });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop_broker, loop};

  zmq::context_t ctx;
  curve::LinkSecurity plaintext;
  plaintext.plaintext = true;
  BrokerClient client(ctx, {broker.control_endpoint()}, std::chrono::milliseconds(3000), plaintext);
  REQUIRE(client.register_user("alice").ok());
  REQUIRE(client.connect("alice", "tcp://127.0.0.1:1").ok());
  auto listed = [&] {
    std::map<std::string, std::string> out;
    const BrokerReply reply = client.list_content("alice");
    for (const auto& file : reply.fields["files"]) out[file["name"]] = file["cid"];
    return out;
  };

  f.folder.write("a.txt", "a one");
  f.folder.write("b.txt", "b one");
  ReconcileReport first = f.sync.reconcile(client, "alice", {});
  CHECK(first.synced);
  CHECK(first.sync.published.size() == 2);
  CHECK(listed() == std::map<std::string, std::string>{{"a.txt", to_hex(sha256("a one", 5))},
                                                       {"b.txt", to_hex(sha256("b one", 5))}});
  CHECK(f.lines_with("serve: published a.txt (5 bytes, cid " + to_hex(sha256("a one", 5)).substr(0, 12) + ")") == 1);

  ReconcileReport idle = f.sync.reconcile(client, "alice", {});
  CHECK_FALSE(idle.synced);  // nothing changed: the broker is not asked

  f.folder.write("a.txt", "a two");
  REQUIRE(::unlink(f.folder.path("b.txt").c_str()) == 0);
  f.folder.write("c.txt", "c one");
  ReconcileReport second = f.sync.reconcile(client, "alice", {});
  CHECK(second.sync.published == std::vector<std::string>{"c.txt"});
  CHECK(second.sync.republished == std::vector<std::string>{"a.txt"});
  CHECK(second.sync.deleted == std::vector<std::string>{"b.txt"});
  CHECK(listed() == std::map<std::string, std::string>{{"a.txt", to_hex(sha256("a two", 5))},
                                                       {"c.txt", to_hex(sha256("c one", 5))}});
  CHECK(f.lines_with("serve: republished a.txt (changed") == 1);
  CHECK(f.lines_with("serve: withdrawn b.txt") == 1);
  CHECK(f.lines_with("serve: index synced in one pass: 1 published, 1 republished, 1 withdrawn, 0 failed") == 1);
}
