// hash_cache.hpp: a seeder's memory of file hashes, keyed by path, size and modification time, in a small
// SQLite file, so a restarted `zshare-peer serve` does not read its whole share again. A changed file misses.
#pragma once

#include "common/content_hash.hpp"

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

  std::optional<ContentHashes> find(const std::string& path, std::uint64_t size, std::int64_t mtime_ns,
                                    std::uint32_t chunk_size) const;
  void put(const std::string& path, std::int64_t mtime_ns, const ContentHashes& hashes);

  // Hashes from the cache, or by reading the file (then remembered). `hashed` tells which happened.
  ContentHashes hashes_of(const std::string& path, std::uint32_t chunk_size, bool* hashed = nullptr);

 private:
  sqlite3* db_ = nullptr;
};

// The default cache file: $ZSHARE_HOME/hashes.db, else $XDG_CACHE_HOME/zshare/hashes.db, else ~/.cache/zshare/hashes.db.
std::string default_hash_cache_path();

}  // namespace zshare::peer
