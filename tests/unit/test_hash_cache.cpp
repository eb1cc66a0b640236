// test_hash_cache.cpp: the HashCache key is the whole FileIdentity (size, mtime, ctime, inode), and cache files of
// older schemas or none at all still open: a cache written before ctime_ns and inode were columns is migrated in
// place and its rows miss (even one holding another file's hashes under the same path, size and mtime) until the
// file is hashed again; a file that is not SQLite at all only makes every lookup miss.
#include "peer/hash_cache.hpp"
#include "tests/unit/temp_folder.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fstream>
#include <set>
#include <string>

using namespace zshare;
using namespace zshare::peer;

namespace {

constexpr std::uint32_t kChunk = 16384;

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Runs `sql` on the SQLite file at `path` outside any HashCache.
void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  INFO(message);
  REQUIRE(rc == SQLITE_OK);
}

std::set<std::string> columns(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA table_info(hashes)", -1, &s, nullptr) == SQLITE_OK);
  std::set<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) out.insert(reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// The first schema (path, size, mtime_ns, chunk_size, cid, root, leaves), as written by earlier versions, with one
// row: `hashes` under `path` and the size and mtime of `identity`. Hashes of other bytes make the row a stale one,
// exactly what a replaced file of the same size and mtime left behind.
void write_old_cache(const std::string& cache, const std::string& path, const FileIdentity& identity,
                     const ContentHashes& hashes) {
  exec(cache, "CREATE TABLE hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, chunk_size INTEGER,"
              " cid BLOB, root BLOB, leaves BLOB)");
  std::string leaves;
  for (const auto& leaf : hashes.leaves) leaves += to_hex(leaf);
  exec(cache, "INSERT INTO hashes VALUES ('" + path + "', " + std::to_string(identity.size) + ", " +
                  std::to_string(identity.mtime_ns) + ", " + std::to_string(hashes.chunk_size) + ", x'" +
                  to_hex(hashes.cid) + "', x'" + to_hex(hashes.root) + "', x'" + leaves + "')");
}

}  // namespace

TEST_CASE("hash cache: a row answers only for the same path, size, mtime, ctime and inode", "[hash_cache]") {
  test::TempFolder folder("zshare-hash-cache");
  const std::string file = folder / "a.txt";
  write(file, "first bytes");
  HashCache cache(folder / "hashes.db");
  bool hashed = false;
  const ContentHashes first = cache.hashes_of(file, kChunk, &hashed);
  CHECK(hashed);
  CHECK(first.cid == sha256("first bytes", 11));
  cache.hashes_of(file, kChunk, &hashed);
  CHECK_FALSE(hashed);

  const FileIdentity id = identity_of(file);
  CHECK(cache.find(file, id, kChunk));
  for (auto other : {FileIdentity{id.size + 1, id.mtime_ns, id.ctime_ns, id.inode},
                     FileIdentity{id.size, id.mtime_ns + 1, id.ctime_ns, id.inode},
                     FileIdentity{id.size, id.mtime_ns, id.ctime_ns + 1, id.inode},
                     FileIdentity{id.size, id.mtime_ns, id.ctime_ns, id.inode + 1}}) {
    CHECK_FALSE(cache.find(file, other, kChunk));
  }
  CHECK_FALSE(cache.find(file, id, kChunk * 2));
  CHECK_FALSE(cache.find(folder / "b.txt", id, kChunk));
}

TEST_CASE("hash cache: an old-schema cache file opens, is migrated, and its rows miss until hashed again",
          "[hash_cache]") {
  test::TempFolder folder("zshare-hash-cache");
  const std::string file = folder / "b.txt";
  const std::string stale = folder / "stale.txt";
  const std::string cache_path = folder / "hashes.db";
  write(file, "new bytes");
  write(stale, "old bytes");  // the same size: the bytes the old row was hashed from
  const FileIdentity id = identity_of(file);
  write_old_cache(cache_path, file, id, hash_file(stale, kChunk));
  REQUIRE(columns(cache_path).count("inode") == 0);

  {
    HashCache cache(cache_path);  // must not throw
    CHECK(columns(cache_path) == std::set<std::string>{"path", "size", "mtime_ns", "chunk_size", "cid", "root",
                                                       "leaves", "ctime_ns", "inode"});
    CHECK_FALSE(cache.find(file, id, kChunk));  // the old row matched on path, size and mtime: no longer enough
    bool hashed = false;
    const ContentHashes h = cache.hashes_of(file, kChunk, &hashed);
    CHECK(hashed);
    CHECK(h.cid == sha256("new bytes", 9));
    cache.hashes_of(file, kChunk, &hashed);  // the row was rewritten with the full key
    CHECK_FALSE(hashed);
  }
  HashCache reopened(cache_path);  // an already migrated file opens as it is, its rows kept
  bool hashed = true;
  CHECK(reopened.hashes_of(file, kChunk, &hashed).cid == sha256("new bytes", 9));
  CHECK_FALSE(hashed);
}

TEST_CASE("hash cache: a file that is not a SQLite database opens and only misses", "[hash_cache]") {
  test::TempFolder folder("zshare-hash-cache");
  const std::string file = folder / "c.txt";
  write(file, "some bytes");
  write(folder / "hashes.db", std::string(4096, 'x'));
  HashCache cache(folder / "hashes.db");
  bool hashed = false;
  CHECK(cache.hashes_of(file, kChunk, &hashed).cid == sha256("some bytes", 10));
  CHECK(hashed);
  cache.hashes_of(file, kChunk, &hashed);
  CHECK(hashed);  // nothing could be remembered
}
