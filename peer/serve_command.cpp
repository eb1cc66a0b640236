// serve_command.cpp: the share is a flat folder of regular files; symlinks, dotfiles and names the protocol
// refuses are skipped with a note, so nothing outside the share is ever published or served.
#include "peer/serve_command.hpp"

#include "common/protocol.hpp"
#include "common/validate.hpp"
#include "peer/broker_commands.hpp"
#include "peer/content_catalog.hpp"
#include "peer/hash_cache.hpp"
#include "peer/publish_sync.hpp"
#include "peer/session_keeper.hpp"

#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

namespace zshare::peer {

namespace {

namespace status = protocol::status;
namespace fs = std::filesystem;

struct ShareFile {
  std::string name;
  std::string path;
};

std::vector<ShareFile> scan_share(const std::string& share, ResponsePrinter& printer) {
  std::vector<ShareFile> files;
  for (const auto& entry : fs::directory_iterator(share)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code ec;
    const auto st = entry.symlink_status(ec);
    if (ec || fs::is_symlink(st)) {
      printer.note("serve: skipping " + name + ": symlinks are not published (they may lead out of the share)");
      continue;
    }
    if (!fs::is_regular_file(st)) continue;
    if (!is_valid_file_name(name)) {
      printer.note("serve: skipping " + name + ": not a valid published name");
      continue;
    }
    files.push_back(ShareFile{name, fs::absolute(entry.path()).string()});
  }
  return files;
}

}  // namespace

int serve_command(zmq::context_t& ctx, BrokerClient& broker, const ServeOptions& o, const std::atomic<bool>& stop,
                  ResponsePrinter& printer) {
  std::error_code ec;
  if (!fs::is_directory(o.share, ec)) {
    printer.print(CommandResult::local("SERVE", Outcome::kUsage, status::kBadRequest, o.share + " is not a folder"));
    return 2;
  }
  CommandResult reg = register_command(broker, o.user);
  if (!reg.ok() && reg.status != status::kUsernameInUse) {
    printer.print(reg);
    return exit_code(reg);
  }

  ContentCatalog catalog;
  std::unique_ptr<Seeder> seeder;
  std::string endpoint;
  try {
    seeder = std::make_unique<Seeder>(ctx, o.listen, catalog, o.seeder);
    endpoint = advertised_endpoint(seeder->bound_endpoint(), o.advertise_host);
  } catch (const std::exception& e) {
    printer.print(CommandResult::local("SERVE", Outcome::kUsage, status::kBadRequest,
                                       "cannot listen on " + o.listen + ": " + e.what()));
    return 2;
  }
  std::optional<std::uint64_t> beat;  // none: no heartbeat promised, no self-recovery
  if (o.heartbeat.count() > 0) beat = static_cast<std::uint64_t>(o.heartbeat.count());
  CommandResult conn = ask_broker("CONNECT", broker, [&] { return broker.connect(o.user, endpoint, beat); });
  if (conn.status == status::kUserAlreadyConnected) {  // a session an earlier run of ours left behind
    ask_broker("DISCONNECT", broker, [&] { return broker.disconnect(o.user); });
    conn = ask_broker("CONNECT", broker, [&] { return broker.connect(o.user, endpoint, beat); });
  }
  if (!conn.ok()) {
    printer.print(conn);
    return exit_code(conn);
  }
  // Heartbeats start now: hashing a large share can take longer than the broker waits for a sign of life.
  std::unique_ptr<SessionKeeper> keeper;
  if (beat) {
    keeper = std::make_unique<SessionKeeper>(
        ctx, SessionKeeperOptions{broker.endpoint(), o.timesvc, o.user, endpoint, o.heartbeat, broker.security()}, catalog, std::cerr);
  }

  // Hash the share (from the cache where it can), then make the index match it.
  HashCache cache(o.hash_cache.empty() ? default_hash_cache_path() : o.hash_cache);
  std::uint64_t hashed = 0, cached = 0;
  for (const auto& file : scan_share(o.share, printer)) {
    if (stop) break;
    try {
      bool fresh = false;
      const std::int64_t mtime = file_mtime_ns(file.path);  // before hashing: a later change is caught
      ContentHashes h = cache.hashes_of(file.path, o.chunk_size, &fresh);
      (fresh ? hashed : cached)++;
      catalog.add(std::make_shared<SharedContent>(SharedContent{file.name, file.path, std::move(h), "", mtime}));
    } catch (const std::exception& e) {
      printer.note("serve: skipping " + file.name + ": " + e.what());
    }
  }
  SyncReport sync;
  try {
    sync = sync_published(broker, o.user, catalog, true);
  } catch (const std::exception& e) {
    printer.print(CommandResult::local("SERVE", Outcome::kUnreachable, status::kBrokerUnreachable, e.what()));
    return 2;
  }
  for (const auto& f : sync.failures) printer.note("serve: " + f);
  const std::uint64_t published = sync.published, failed = sync.failures.size();

  CommandResult serving = CommandResult::local("SERVE", Outcome::kOk, status::kOk, "");
  serving.fields["user"] = o.user;
  serving.fields["endpoint"] = endpoint;
  serving.fields["files"] = catalog.all().size();
  serving.fields["published"] = published;
  serving.fields["hashed"] = hashed;
  serving.fields["from_cache"] = cached;
  serving.fields["failed"] = failed;
  printer.print(serving);
  printer.note("serve: " + o.user + " serves " + std::to_string(catalog.all().size()) + " files on " + endpoint +
               " (" + std::to_string(hashed) + " hashed, " + std::to_string(cached) + " from the hash cache)");

  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // seeder and keeper do the work
  keeper.reset();
  seeder.reset();
  CommandResult bye = ask_broker("DISCONNECT", broker, [&] { return broker.disconnect(o.user); });
  printer.print(bye);
  return bye.ok() ? 0 : exit_code(bye);
}

}  // namespace zshare::peer
