// hash_cache.cpp: one table, `tree_hashes`; a file's chunk layer is one blob of 32-byte nodes. A row answers only
// for the very file it was hashed from: the same path, size, mtime, ctime and inode (FileIdentity), and only when
// its layer folds up to its cid. A FileIdentity read before and after hashing guards against caching hashes of a
// file that changed while it was read.
// Schema history: caches before protocol v3 kept a table `hashes` of whole-file SHA-256 ids, which no longer name
// anything and cannot be converted without reading each file again; opening such a cache drops that table (the
// files are hashed again, once). Nothing about an old or damaged cache file fails the open: at worst, every
// lookup misses.
#include "peer/hash_cache.hpp"

#include <sqlite3.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace zshare::peer {

std::string default_hash_cache_path() {
  if (const char* zshare_home = std::getenv("ZSHARE_HOME"); zshare_home && *zshare_home) {
    return (std::filesystem::path(zshare_home) / "hashes.db").string();
  }
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::filesystem::path base = xdg && *xdg ? xdg : (home && *home ? std::filesystem::path(home) / ".cache" : "/tmp");
  return (base / "zshare" / "hashes.db").string();
}

HashCache::HashCache(const std::string& path) {
  std::error_code ec;
  const auto folder = std::filesystem::path(path).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, ec);
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    throw std::runtime_error("cannot open hash cache " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 2000);
  sqlite3_exec(db_,
               "PRAGMA journal_mode=WAL;"
               "PRAGMA synchronous=NORMAL;"  // a cache: a power cut may lose the last entries, never corrupt one
               "DROP TABLE IF EXISTS hashes;"  // ids of protocol v1/v2 (see the top of this file)
               "CREATE TABLE IF NOT EXISTS tree_hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
               " ctime_ns INTEGER, inode INTEGER, chunk_size INTEGER, cid BLOB, layer BLOB)",
               nullptr, nullptr, nullptr);
}

HashCache::~HashCache() { sqlite3_close(db_); }

std::optional<ContentHashes> HashCache::find(const std::string& path, const FileIdentity& identity,
                                             std::uint32_t chunk_size) const {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT cid, layer FROM tree_hashes WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3"
                         " AND ctime_ns = ?4 AND inode = ?5 AND chunk_size = ?6",
                         -1, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return std::nullopt;  // an unreadable or unmigratable cache file: a miss
  }
  sqlite3_bind_text(s, 1, path.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(identity.size));
  sqlite3_bind_int64(s, 3, identity.mtime_ns);
  sqlite3_bind_int64(s, 4, identity.ctime_ns);
  sqlite3_bind_int64(s, 5, static_cast<sqlite3_int64>(identity.inode));
  sqlite3_bind_int64(s, 6, chunk_size);
  std::optional<ContentHashes> out;
  if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32 && sqlite3_column_bytes(s, 1) % 32 == 0) {
    ContentHashes h;
    h.size = identity.size;
    h.chunk_size = chunk_size;
    std::memcpy(h.cid.data(), sqlite3_column_blob(s, 0), 32);
    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, 1)) / 32;
    h.layer.resize(n);
    if (n) std::memcpy(h.layer.data(), sqlite3_column_blob(s, 1), n * 32);
    // A damaged row is a miss, not a lie.
    if (n == chunk_count(h.size, chunk_size) && layer_root(h.layer, layer_height(h.size, chunk_size)) == h.cid) {
      out = std::move(h);
    }
  }
  sqlite3_finalize(s);
  return out;
}

void HashCache::put(const std::string& path, const FileIdentity& identity, const ContentHashes& h) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO tree_hashes (path, size, mtime_ns, ctime_ns, inode, chunk_size, cid,"
                         " layer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         -1, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return;  // a cache: a failed write only costs a re-hash next time
  }
  sqlite3_bind_text(s, 1, path.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(identity.size));
  sqlite3_bind_int64(s, 3, identity.mtime_ns);
  sqlite3_bind_int64(s, 4, identity.ctime_ns);
  sqlite3_bind_int64(s, 5, static_cast<sqlite3_int64>(identity.inode));
  sqlite3_bind_int64(s, 6, h.chunk_size);
  sqlite3_bind_blob(s, 7, h.cid.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(s, 8, h.layer.empty() ? nullptr : h.layer.data(), static_cast<int>(h.layer.size() * 32),
                    SQLITE_TRANSIENT);
  sqlite3_step(s);  // a cache: a failed write only costs a re-hash next time
  sqlite3_finalize(s);
}

ContentHashes HashCache::hashes_of(const std::string& path, std::uint32_t chunk_size, bool* hashed) {
  const FileIdentity before = identity_of(path);
  if (auto cached = find(path, before, chunk_size)) {
    if (hashed) *hashed = false;
    return *cached;
  }
  ContentHashes h = hash_file(path, chunk_size, false);  // a share's symlinks are never published
  if (identity_of(path) == before && h.size == before.size) put(path, before, h);
  if (hashed) *hashed = true;
  return h;
}

}  // namespace zshare::peer
