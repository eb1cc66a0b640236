// test_hash_cache.cpp: the HashCache key is the whole FileIdentity (size, mtime, ctime, inode), and cache files of
// older protocols or none at all still open: a cache of whole-file ids (v2) is dropped on open and its files are
// hashed again; a damaged row misses; a file that is not SQLite at all only makes every lookup miss.
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

std::set<std::string> tables(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &s, nullptr) == SQLITE_OK);
  std::set<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) out.insert(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// The cache of protocol v1/v2 (whole-file SHA-256 as the cid, a root over chunk hashes), as earlier versions wrote
// it, with one row for `path` under its full identity: the row's key matches, only what it means has changed.
void write_old_cache(const std::string& cache, const std::string& path, const FileIdentity& identity,
                     const std::string& bytes) {
  exec(cache, "CREATE TABLE hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, chunk_size INTEGER,"
              " cid BLOB, root BLOB, leaves BLOB, ctime_ns INTEGER, inode INTEGER)");
  const std::string old_cid = to_hex(sha256(bytes.data(), bytes.size()));
  exec(cache, "INSERT INTO hashes VALUES ('" + path + "', " + std::to_string(identity.size) + ", " +
                  std::to_string(identity.mtime_ns) + ", " + std::to_string(kChunk) + ", x'" + old_cid + "', x'" +
                  old_cid + "', x'" + old_cid + "', " + std::to_string(identity.ctime_ns) + ", " +
                  std::to_string(identity.inode) + ")");
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

TEST_CASE("hash cache: a cache of whole-file ids (protocol v2) opens, is dropped, and its files are hashed again",
          "[hash_cache]") {
  test::TempFolder folder("zshare-hash-cache");
  const std::string file = folder / "b.bin";
  const std::string cache_path = folder / "hashes.db";
  const std::string bytes(3 * kChunk + 5, 'b');  // several blocks: its v2 id and its v3 id differ
  write(file, bytes);
  const FileIdentity id = identity_of(file);
  write_old_cache(cache_path, file, id, bytes);

  {
    HashCache cache(cache_path);  // must not throw
    CHECK(tables(cache_path) == std::set<std::string>{"tree_hashes"});
    CHECK_FALSE(cache.find(file, id, kChunk));
    bool hashed = false;
    const ContentHashes h = cache.hashes_of(file, kChunk, &hashed);
    CHECK(hashed);
    CHECK(h.cid == hash_file(file, kChunk).cid);
    CHECK(h.cid != sha256(bytes.data(), bytes.size()));
    cache.hashes_of(file, kChunk, &hashed);
    CHECK_FALSE(hashed);
  }
  HashCache reopened(cache_path);  // a migrated file opens as it is, its rows kept
  bool hashed = true;
  CHECK(reopened.hashes_of(file, kChunk, &hashed).cid == hash_file(file, kChunk).cid);
  CHECK_FALSE(hashed);
}

TEST_CASE("hash cache: a damaged row (a layer that does not fold to its cid) is a miss", "[hash_cache]") {
  test::TempFolder folder("zshare-hash-cache");
  const std::string file = folder / "d.bin";
  write(file, std::string(2 * kChunk, 'd'));
  const std::string cache_path = folder / "hashes.db";
  { HashCache(cache_path).hashes_of(file, kChunk); }
  exec(cache_path, "UPDATE tree_hashes SET layer = zeroblob(64)");
  HashCache cache(cache_path);
  CHECK_FALSE(cache.find(file, identity_of(file), kChunk));
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
