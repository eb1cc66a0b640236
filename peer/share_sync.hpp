// share_sync.hpp: one reconcile pass of `serve`: read the share folder, bring the ContentCatalog in line with it
// (hashing new and changed files through the HashCache; the seeder serves from the catalog), then make the
// broker's index match the catalog with sync_published: one LIST_CONTENT, then only the PUBLISH/DELETE it needs.
// Passes run after each settled burst of changes (ShareWatcher), never once per change.
// Invariants: a file named busy (still being written) is left exactly as it is; a file the folder no longer holds
// (or no longer holds as a publishable regular file) leaves the catalog, so the seeder refuses it at once.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/content_catalog.hpp"
#include "peer/hash_cache.hpp"
#include "peer/line_log.hpp"
#include "peer/publish_sync.hpp"
#include "peer/share_folder.hpp"

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace zshare::peer {

// What one rescan did to the catalog.
struct ShareChanges {
  std::vector<std::string> added;    // names new to the catalog
  std::vector<std::string> changed;  // names whose content id changed
  std::vector<std::string> removed;  // names that left the catalog
  std::size_t touched = 0;           // same content, new modification time: the catalog follows, the index needn't
  std::size_t hashed = 0;            // files read and hashed
  std::size_t from_cache = 0;        // files whose hashes came from the HashCache
  std::vector<std::string> failures; // files that could not be hashed, one sentence each
  bool complete = true;              // false when stopped midway (nothing was removed then)

  bool index_affected() const { return !added.empty() || !changed.empty() || !removed.empty(); }
};

struct ReconcileReport {
  ShareChanges changes;
  SyncReport sync;
  bool synced = false;  // the broker was asked (one LIST_CONTENT and what followed)
};

class ShareSync {
 public:
  // `catalog` and `cache` must outlive this object. `log` gets one line per published, republished and withdrawn
  // file, each skipped entry (once while it stays), and failures.
  ShareSync(std::string share, std::uint32_t chunk_size, ContentCatalog& catalog, HashCache& cache, LineLog log);

  // Reads the folder and updates the catalog; asks no broker. `stop`, when given, ends the pass early (incomplete).
  // Throws std::system_error when the folder cannot be read (the catalog is then left as it was).
  ShareChanges rescan(const std::set<std::string>& busy, const std::atomic<bool>* stop = nullptr);

  // rescan(), then sync_published(delete_extra) when the catalog changed or an earlier sync did not finish.
  // Throws what rescan and BrokerClient throw (BrokerUnreachable, BadReply); the index then stays in doubt
  // and the next pass syncs it even without a change.
  ReconcileReport reconcile(BrokerClient& broker, const std::string& user, const std::set<std::string>& busy,
                            const std::atomic<bool>* stop = nullptr);

  bool index_in_doubt() const { return index_in_doubt_; }

 private:
  void take(const FolderEntry& entry, ShareChanges& changes);  // a publishable file: catalog it, hashing if new
  void note_once(const std::string& name, const std::string& sentence);
  void log_sync(const SyncReport& sync) const;

  std::string share_;
  std::uint32_t chunk_size_;
  ContentCatalog& catalog_;
  HashCache& cache_;
  LineLog log_;
  std::set<std::string> noted_;  // names already reported as skipped or failed; forgotten when they leave
  bool index_in_doubt_ = true;   // the first pass always syncs
};

}  // namespace zshare::peer
