// share_sync.cpp: a file is hashed again only when its FileIdentity (size, mtime, ctime, inode) differs from its
// catalog entry's, so a file replaced by one of the same size and mtime is hashed again too; the HashCache answers
// for files it has seen (a restart), so a pass over an unchanged folder of 10,000 files costs one lstat per file and
// no broker request. The log lines come from what the broker acknowledged.
#include "peer/share_sync.hpp"

#include <filesystem>

namespace zshare::peer {

ShareSync::ShareSync(std::string share, std::uint32_t chunk_size, ContentCatalog& catalog, HashCache& cache,
                     LineLog log)
    : share_(std::filesystem::absolute(share).string()),
      chunk_size_(chunk_size),
      catalog_(catalog),
      cache_(cache),
      log_(std::move(log)) {}

ShareChanges ShareSync::rescan(const std::set<std::string>& busy, const std::atomic<bool>* stop) {
  ShareChanges changes;
  const std::vector<FolderEntry> entries = read_folder(share_);
  std::set<std::string> kept, seen;  // names the catalog may keep; every name the folder holds
  for (const auto& entry : entries) {
    if (stop && *stop) {
      changes.complete = false;
      return changes;
    }
    seen.insert(entry.name);
    const ShareRule rule = share_rule(entry);
    if (rule != ShareRule::kPublish) {
      note_once(entry.name, skip_note(entry, rule));
      continue;
    }
    if (busy.count(entry.name)) {  // still being written: as it was, published or not
      kept.insert(entry.name);
      continue;
    }
    take(entry, changes);
    if (catalog_.find_name(entry.name)) kept.insert(entry.name);
  }
  for (const auto& content : catalog_.all()) {
    if (kept.count(content->name)) continue;
    catalog_.remove(content->name);
    changes.removed.push_back(content->name);
  }
  for (auto it = noted_.begin(); it != noted_.end();) it = seen.count(*it) ? std::next(it) : noted_.erase(it);
  return changes;
}

void ShareSync::take(const FolderEntry& entry, ShareChanges& changes) {
  const std::string path = (std::filesystem::path(share_) / entry.name).string();
  const auto known = catalog_.find_name(entry.name);
  // A chmod or chown moves ctime alone: the file is hashed again (the HashCache misses too) and keeps its content
  // id, a "touched" entry the index does not hear of. A rare extra read, the price of never serving stale bytes.
  if (known && known->path == path && known->identity == entry.identity) return;
  try {
    bool fresh = false;
    // The identity is the one read before hashing: a change during the hashing makes the seeder refuse the entry
    // and the watcher report the file again.
    ContentHashes h = cache_.hashes_of(path, chunk_size_, &fresh);
    ++(fresh ? changes.hashed : changes.from_cache);
    const Hash cid = h.cid;
    catalog_.add(std::make_shared<SharedContent>(
        SharedContent{entry.name, path, std::move(h), known ? known->description : "", entry.identity}));
    if (!known) changes.added.push_back(entry.name);
    else if (known->hashes.cid != cid) changes.changed.push_back(entry.name);
    else ++changes.touched;
    noted_.erase(entry.name);
  } catch (const std::exception& e) {
    if (known) catalog_.remove(entry.name);  // unreadable now: not servable either
    changes.failures.push_back(entry.name + ": " + e.what());
    note_once(entry.name, "serve: skipping " + entry.name + ": " + e.what());
  }
}

ReconcileReport ShareSync::reconcile(BrokerClient& broker, const std::string& user, const std::set<std::string>& busy,
                                     const std::atomic<bool>* stop) {
  ReconcileReport report;
  report.changes = rescan(busy, stop);
  if (!report.changes.complete) return report;
  if (!report.changes.index_affected() && !index_in_doubt_) return report;
  index_in_doubt_ = true;  // until the sync below has seen to every entry
  report.sync = sync_published(broker, user, catalog_, true, stop);
  report.synced = true;
  index_in_doubt_ = !report.sync.complete;
  log_sync(report.sync);
  return report;
}

void ShareSync::note_once(const std::string& name, const std::string& sentence) {
  if (sentence.empty() || !noted_.insert(name).second) return;
  if (log_) log_(sentence);
}

void ShareSync::log_sync(const SyncReport& sync) const {
  if (!log_) return;
  auto described = [this](const std::string& name) {
    const auto content = catalog_.find_name(name);
    if (!content) return std::string();
    return std::to_string(content->hashes.size) + " bytes, cid " + log_cid(content->hashes.cid);
  };
  for (const auto& name : sync.published) log_("serve: published " + name + " (" + described(name) + ")");
  for (const auto& name : sync.republished) {
    log_("serve: republished " + name + " (changed; now " + described(name) + ")");
  }
  for (const auto& name : sync.deleted) log_("serve: withdrawn " + name);
  for (const auto& failure : sync.failures) log_("serve: " + failure);
  if (sync.sent() + sync.deleted.size() + sync.failures.size() == 0) return;
  log_("serve: index synced in one pass: " + std::to_string(sync.published.size()) + " published, " +
       std::to_string(sync.republished.size()) + " republished, " + std::to_string(sync.deleted.size()) +
       " withdrawn, " + std::to_string(sync.failures.size()) + " failed");
}

}  // namespace zshare::peer
