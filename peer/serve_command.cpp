// serve_command.cpp: the start-up sequence (register, listen, connect, heartbeat), one reconcile pass, then the
// loop: wait for the watcher (at most kStopCheck, so a stop is seen at once) and reconcile when it reports a settled
// change. The share is a flat folder of regular files; what is skipped and why is share_folder.hpp's rule.
#include "peer/serve_command.hpp"

#include "common/protocol.hpp"
#include "common/zap_handler.hpp"
#include "peer/broker_commands.hpp"
#include "peer/content_catalog.hpp"
#include "peer/hash_cache.hpp"
#include "peer/live_session.hpp"
#include "peer/session_keeper.hpp"
#include "peer/share_sync.hpp"

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <system_error>

namespace zshare::peer {

namespace {

namespace status = protocol::status;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kStopCheck{150};  // the longest the loop waits before looking at `stop`
constexpr std::chrono::seconds kSyncRetry{2};         // after a pass the broker could not answer

// The main loop: reconcile after each settled change, and again later when a pass could not reach the broker.
void follow_share(ShareWatcher& watcher, ShareSync& share, BrokerClient& broker, const std::string& user,
                  const std::atomic<bool>& stop, const LineLog& log) {
  auto retry_at = Clock::time_point::max();
  while (!stop) {
    const bool changed = watcher.wait(kStopCheck);
    if (!changed && !(share.index_in_doubt() && Clock::now() >= retry_at)) continue;
    try {
      share.reconcile(broker, user, watcher.busy(), &stop);
      retry_at = Clock::time_point::max();
    } catch (const std::exception& e) {  // BrokerUnreachable, BadReply, an unreadable folder
      log(std::string("serve: cannot follow the share right now (") + e.what() + "); trying again in " +
          std::to_string(kSyncRetry.count()) + " s");
      retry_at = Clock::now() + kSyncRetry;
    }
  }
}

}  // namespace

int serve_command(zmq::context_t& ctx, BrokerClient& broker, const ServeOptions& o, const std::atomic<bool>& stop,
                  ResponsePrinter& printer) {
  std::error_code ec;
  if (!fs::is_directory(o.share, ec)) {
    printer.print(CommandResult::local("SERVE", Outcome::kUsage, status::kBadRequest, o.share + " is not a folder"));
    return 2;
  }
  const LineLog log = o.log ? o.log : locked_line_log(std::cerr);
  // Followed from before the first scan, so a change made while it runs is not missed.
  std::unique_ptr<ShareWatcher> watcher;
  try {
    watcher = std::make_unique<ShareWatcher>(o.share, o.watch, log);
  } catch (const std::exception& e) {
    printer.print(CommandResult::local("SERVE", Outcome::kUsage, status::kBadRequest, e.what()));
    return 2;
  }
  CommandResult reg = register_command(broker, o.user);
  if (!reg.ok() && reg.status != status::kUsernameInUse) {
    printer.print(reg);
    return exit_code(reg);
  }
  // Asked before CONNECT, which under CurveZMQ would take the session from a live serve of the same key; and before
  // the seeder binds, which could be on the very endpoint the leftover session of a killed run advertises.
  if (auto refused = refuse_live_session(ctx, broker, "SERVE", o.user)) {
    printer.print(*refused);
    return exit_code(*refused);
  }

  ContentCatalog catalog;
  // With CurveZMQ, a ZAP handler names each downloader by its public key (User-Id) in the upload lines. It must
  // exist before the seeder binds, and outlive it.
  std::optional<curve::ZapHandler> zap;
  if (!o.seeder.security.plaintext) zap.emplace(ctx);
  SeederOptions seeder_options = o.seeder;
  seeder_options.log = [log](const std::string& line) { log("serve: " + line); };
  std::unique_ptr<Seeder> seeder;
  std::string endpoint;
  try {
    seeder = std::make_unique<Seeder>(ctx, o.listen, catalog, seeder_options);
    endpoint = advertised_endpoint(seeder->bound_endpoint(), o.advertise_host);
  } catch (const std::exception& e) {
    printer.print(CommandResult::local("SERVE", Outcome::kUsage, status::kBadRequest,
                                       "cannot listen on " + o.listen + ": " + e.what()));
    return 2;
  }
  std::optional<std::uint64_t> beat;  // none: no heartbeat promised, no self-recovery
  if (o.heartbeat.count() > 0) beat = static_cast<std::uint64_t>(o.heartbeat.count());
  CommandResult conn = ask_broker("CONNECT", broker, [&] { return broker.connect(o.user, endpoint, beat); });
  if (conn.status == status::kUserAlreadyConnected) {
    // A leftover session (nobody answered for it) that the broker keeps: over --plaintext no key proves we are
    // its user. End it and connect.
    ask_broker("DISCONNECT", broker, [&] { return broker.disconnect(o.user); });
    conn = ask_broker("CONNECT", broker, [&] { return broker.connect(o.user, endpoint, beat); });
  }
  if (conn.ok() && conn.fields.value("replaced", false)) {
    log("serve: " + o.user + " took over the session an earlier run left behind (nothing answered for it)");
  }
  if (!conn.ok()) {
    printer.print(conn);
    return exit_code(conn);
  }
  // Heartbeats start now: hashing a large share can take longer than the broker waits for a sign of life.
  std::unique_ptr<SessionKeeper> keeper;
  if (beat) {
    keeper = std::make_unique<SessionKeeper>(
        ctx, SessionKeeperOptions{broker.failover_order(), o.timesvc, o.user, endpoint, o.heartbeat, broker.security(),
                                  seeder.get(), asked_interval(conn.fields, o.heartbeat)},
        catalog, std::cerr);
  }

  // Hash the share (from the cache where it can), then make the index match it: the first reconcile pass.
  HashCache cache(o.hash_cache.empty() ? default_hash_cache_path() : o.hash_cache);
  log("serve: following " + o.share + " " + watcher->description());
  ShareSync share(o.share, o.chunk_size, catalog, cache, log);
  ReconcileReport first;
  try {
    first = share.reconcile(broker, o.user, {}, &stop);
  } catch (const std::system_error& e) {  // the folder could not be read
    printer.print(CommandResult::local("SERVE", Outcome::kUsage, status::kBadRequest, e.what()));
    return 2;
  } catch (const std::exception& e) {
    printer.print(CommandResult::local("SERVE", Outcome::kUnreachable, status::kBrokerUnreachable, e.what()));
    return 2;
  }

  CommandResult serving = CommandResult::local("SERVE", Outcome::kOk, status::kOk, "");
  serving.fields["user"] = o.user;
  serving.fields["endpoint"] = endpoint;
  serving.fields["files"] = catalog.all().size();
  serving.fields["published"] = first.sync.sent();
  serving.fields["hashed"] = first.changes.hashed;
  serving.fields["from_cache"] = first.changes.from_cache;
  serving.fields["failed"] = first.sync.failures.size() + first.changes.failures.size();
  printer.print(serving);
  log("serve: " + o.user + " serves " + std::to_string(catalog.all().size()) + " files on " + endpoint + " (" +
      std::to_string(first.changes.hashed) + " hashed, " + std::to_string(first.changes.from_cache) +
      " from the hash cache)");

  follow_share(*watcher, share, broker, o.user, stop, log);
  keeper.reset();
  seeder.reset();
  CommandResult bye = ask_broker("DISCONNECT", broker, [&] { return broker.disconnect(o.user); });
  printer.print(bye);
  return bye.ok() ? 0 : exit_code(bye);
}

}  // namespace zshare::peer
