// hash_cache.cpp: one table; leaves are stored as one blob of 32-byte hashes. A stat before and after hashing
// guards against caching hashes of a file that changed while it was read.
#include "peer/hash_cache.hpp"

#include <sqlite3.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>

namespace zshare::peer {

namespace {

struct Stat {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

Stat stat_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  return Stat{static_cast<std::uint64_t>(st.st_size),
              static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

}  // namespace

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
               "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
               " chunk_size INTEGER, cid BLOB, root BLOB, leaves BLOB)",
               nullptr, nullptr, nullptr);
}

HashCache::~HashCache() { sqlite3_close(db_); }

std::optional<ContentHashes> HashCache::find(const std::string& path, std::uint64_t size, std::int64_t mtime_ns,
                                             std::uint32_t chunk_size) const {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT cid, root, leaves FROM hashes WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3"
                     " AND chunk_size = ?4",
                     -1, &s, nullptr);
  sqlite3_bind_text(s, 1, path.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(size));
  sqlite3_bind_int64(s, 3, mtime_ns);
  sqlite3_bind_int64(s, 4, chunk_size);
  std::optional<ContentHashes> out;
  if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32 && sqlite3_column_bytes(s, 1) == 32 &&
      sqlite3_column_bytes(s, 2) % 32 == 0) {
    ContentHashes h;
    h.size = size;
    h.chunk_size = chunk_size;
    std::memcpy(h.cid.data(), sqlite3_column_blob(s, 0), 32);
    std::memcpy(h.root.data(), sqlite3_column_blob(s, 1), 32);
    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, 2)) / 32;
    h.leaves.resize(n);
    if (n) std::memcpy(h.leaves.data(), sqlite3_column_blob(s, 2), n * 32);
    if (merkle_root(h.leaves) == h.root) out = std::move(h);  // a damaged row is a miss, not a lie
  }
  sqlite3_finalize(s);
  return out;
}

void HashCache::put(const std::string& path, std::int64_t mtime_ns, const ContentHashes& h) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO hashes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &s, nullptr);
  sqlite3_bind_text(s, 1, path.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(h.size));
  sqlite3_bind_int64(s, 3, mtime_ns);
  sqlite3_bind_int64(s, 4, h.chunk_size);
  sqlite3_bind_blob(s, 5, h.cid.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(s, 6, h.root.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(s, 7, h.leaves.empty() ? nullptr : h.leaves.data(), static_cast<int>(h.leaves.size() * 32),
                    SQLITE_TRANSIENT);
  sqlite3_step(s);  // a cache: a failed write only costs a re-hash next time
  sqlite3_finalize(s);
}

ContentHashes HashCache::hashes_of(const std::string& path, std::uint32_t chunk_size, bool* hashed) {
  const Stat before = stat_of(path);
  if (auto cached = find(path, before.size, before.mtime_ns, chunk_size)) {
    if (hashed) *hashed = false;
    return *cached;
  }
  ContentHashes h = hash_file(path, chunk_size);
  const Stat after = stat_of(path);
  if (after.size == before.size && after.mtime_ns == before.mtime_ns && h.size == before.size) {
    put(path, before.mtime_ns, h);
  }
  if (hashed) *hashed = true;
  return h;
}

}  // namespace zshare::peer
