// serve_command.cpp: the share is a flat folder of regular files; symlinks, dotfiles and names the protocol
// refuses are skipped with a note, so nothing outside the share is ever published or served.
#include "peer/serve_command.hpp"

#include "common/protocol.hpp"
#include "common/validate.hpp"
#include "peer/broker_commands.hpp"
#include "peer/content_catalog.hpp"
#include "peer/hash_cache.hpp"

#include <filesystem>
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
  CommandResult conn = ask_broker("CONNECT", broker, [&] { return broker.connect(o.user, endpoint); });
  if (conn.status == status::kUserAlreadyConnected) {  // a session an earlier run of ours left behind
    ask_broker("DISCONNECT", broker, [&] { return broker.disconnect(o.user); });
    conn = ask_broker("CONNECT", broker, [&] { return broker.connect(o.user, endpoint); });
  }
  if (!conn.ok()) {
    printer.print(conn);
    return exit_code(conn);
  }

  // Make the index match the share.
  HashCache cache(o.hash_cache.empty() ? default_hash_cache_path() : o.hash_cache);
  // name -> what the index holds for it: cid, chunk size and root must all match what we would serve.
  std::map<std::string, std::string> indexed;
  auto tree_of = [](const std::string& cid, std::uint64_t chunk_size, const std::string& root) {
    return cid + "/" + std::to_string(chunk_size) + "/" + root;
  };
  CommandResult listed = list_content_command(broker, o.user);
  for (const auto& f : listed.fields.value("files", nlohmann::json::array())) {
    indexed[f.value("name", "")] =
        tree_of(f.value("cid", ""), f.value("chunk_size", std::uint64_t{0}), f.value("root", ""));
  }
  std::uint64_t hashed = 0, cached = 0, published = 0, failed = 0;
  for (const auto& file : scan_share(o.share, printer)) {
    if (stop) break;
    ContentHashes h;
    try {
      bool fresh = false;
      h = cache.hashes_of(file.path, o.chunk_size, &fresh);
      (fresh ? hashed : cached)++;
    } catch (const std::exception& e) {
      printer.note("serve: skipping " + file.name + ": " + e.what());
      continue;
    }
    const std::string cid = to_hex(h.cid);
    const std::string tree = tree_of(cid, h.chunk_size, to_hex(h.root));
    auto known = indexed.find(file.name);
    if (known != indexed.end() && known->second != tree) {
      // The file changed, or is now cut into other chunks: the index must describe what we serve.
      ask_broker("DELETE", broker, [&] { return broker.delete_file(o.user, file.name); });
    }
    if (known == indexed.end() || known->second != tree) {
      PublishRequest req{o.user, file.name, "", h.size, cid, h.chunk_size, to_hex(h.root)};
      CommandResult pub = ask_broker("PUBLISH", broker, [&] { return broker.publish(req); });
      if (!pub.ok()) {
        printer.print(pub);
        ++failed;
        continue;
      }
      ++published;
    }
    if (known != indexed.end()) indexed.erase(known);
    catalog.add(std::make_shared<SharedContent>(SharedContent{file.name, file.path, std::move(h)}));
  }
  for (const auto& [name, cid] : indexed) {  // published earlier, gone from the share now
    ask_broker("DELETE", broker, [&] { return broker.delete_file(o.user, name); });
  }

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

  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the seeder thread does the work

  seeder.reset();
  CommandResult bye = ask_broker("DISCONNECT", broker, [&] { return broker.disconnect(o.user); });
  printer.print(bye);
  return bye.ok() ? 0 : exit_code(bye);
}

}  // namespace zshare::peer
