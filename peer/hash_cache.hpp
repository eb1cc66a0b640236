// hash_cache.hpp: a seeder's memory of file hashes, keyed by path and FileIdentity (size, mtime, ctime, inode), in
// a small SQLite file, so a restarted `zshare-peer serve` does not read its whole share again. A changed file
// misses, even one replaced by another of the same size and mtime. A cache file of an older protocol (whole-file
// SHA-256 ids) is migrated on open: its rows are dropped, and each file is hashed again once.
#pragma once

#include "common/content_hash.hpp"
#include "peer/file_identity.hpp"

#include <cstdint>
#include <optional>
#include <string>

struct sqlite3;

namespace zshare::peer {

class HashCache {
 public:
  explicit HashCache(const std::string& path);  // throws std::runtime_error when it cannot be opened
  ~HashCache();
  HashCache(const HashCache&) = delete;
  HashCache& operator=(const HashCache&) = delete;

  std::optional<ContentHashes> find(const std::string& path, const FileIdentity& identity,
                                    std::uint32_t chunk_size) const;
  void put(const std::string& path, const FileIdentity& identity, const ContentHashes& hashes);

  // Hashes from the cache, or by reading the file (then remembered). `hashed` tells which happened.
  ContentHashes hashes_of(const std::string& path, std::uint32_t chunk_size, bool* hashed = nullptr);

 private:
  sqlite3* db_ = nullptr;
};

// The default cache file: $ZSHARE_HOME/hashes.db, else $XDG_CACHE_HOME/zshare/hashes.db, else ~/.cache/zshare/hashes.db.
std::string default_hash_cache_path();

}  // namespace zshare::peer
