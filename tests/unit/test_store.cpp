// test_store.cpp: the SQLite store against a real file: what is committed comes back on reopen,
// what is rolled back does not, the seq and stored replies persist, and a v1 database is upgraded in place.
#include "broker/sqlite_store.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

using namespace zshare;
using namespace zshare::broker;

namespace {

struct TempDb {
  TempDb() {
    char dir[] = "/tmp/zshare-store-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    folder = dir;
    path = folder + "/broker.db";
  }
  ~TempDb() { std::system(("rm -rf '" + folder + "'").c_str()); }
  std::string folder;
  std::string path;
};

FileRecord file_named(const std::string& name) {
  FileRecord f;
  f.name = name;
  f.description = "desc of " + name;
  f.size = 123;
  f.chunk_size = 16384;
  f.cid.fill(0xab);
  return f;
}

}  // namespace

TEST_CASE("committed users, files, seq and replies survive reopening", "[store]") {
  TempDb tmp;
  {
    SqliteStore store(tmp.path);
    store.begin();
    store.insert_user("alice", "", "2026-01-01T00:00:00.000Z");
    store.insert_user("bob", "", "2026-01-01T00:00:00.000Z");
    store.insert_file("alice", file_named("a.txt"), "ts");
    store.insert_file("bob", file_named("b.txt"), "ts");
    store.insert_file("alice", file_named("c.txt"), "ts");
    store.delete_file("alice", "a.txt");
    store.put_reply("req-1", "reply-bytes");
    store.set_seq(41);
    store.commit();
  }
  SqliteStore store(tmp.path);
  FileIndex index;
  CHECK(store.load(index) == 41);
  CHECK(index.user_count() == 2);
  REQUIRE(index.file_count() == 2);
  const auto alice = index.find_user("alice");
  REQUIRE(alice);
  const auto c = index.find_file(*alice, "c.txt");
  REQUIRE(c);
  CHECK(index.file(*c).description == "desc of c.txt");
  CHECK(index.file(*c).cid == file_named("x").cid);
  CHECK_FALSE(index.find_file(*alice, "a.txt"));

  std::vector<std::pair<std::string, std::string>> replies;
  store.load_replies(10, [&](std::string id, std::string r) { replies.emplace_back(id, r); });
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].second == "reply-bytes");
}

TEST_CASE("a rolled-back transaction leaves nothing behind", "[store]") {
  TempDb tmp;
  {
    SqliteStore store(tmp.path);
    store.begin();
    store.insert_user("ghost", "", "ts");
    store.rollback();
  }
  SqliteStore store(tmp.path);
  FileIndex index;
  store.load(index);
  CHECK(index.user_count() == 0);
}

TEST_CASE("unregistering deletes the user's files, and replies are pruned to the newest", "[store]") {
  TempDb tmp;
  {
    SqliteStore store(tmp.path);
    store.begin();
    store.insert_user("alice", "", "ts");
    store.insert_file("alice", file_named("a.txt"), "ts");
    store.delete_user("alice");
    for (int i = 0; i < 20; ++i) store.put_reply("r" + std::to_string(i), "x");
    store.commit();
  }
  SqliteStore store(tmp.path);
  FileIndex index;
  store.load(index);
  CHECK(index.user_count() == 0);
  CHECK(index.file_count() == 0);
  std::vector<std::string> ids;
  store.load_replies(5, [&](std::string id, std::string) { ids.push_back(id); });
  CHECK(ids == std::vector<std::string>{"r15", "r16", "r17", "r18", "r19"});
}

TEST_CASE("a database path that cannot be opened is a clear error", "[store]") {
  CHECK_THROWS_WITH(SqliteStore("/nonexistent-dir/x/broker.db"), Catch::Contains("cannot open database"));
}

namespace {

// Runs SQL on a database file directly, outside the Store.
void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

std::vector<std::string> files_columns(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('files') ORDER BY cid", -1, &s, nullptr) ==
          SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

}  // namespace

TEST_CASE("a v1 database (files with a root column) opens, keeps every row and loses the column", "[store]") {
  TempDb tmp;
  // The files table as protocol v1 wrote it, with a v1 user (no key column yet) and two files.
  exec_sql(tmp.path, R"sql(
    CREATE TABLE users (name TEXT PRIMARY KEY, registered_ts TEXT NOT NULL);
    CREATE TABLE files (id INTEGER PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                        size INTEGER NOT NULL, cid BLOB NOT NULL, chunk_size INTEGER NOT NULL, root BLOB NOT NULL,
                        published_ts TEXT NOT NULL, UNIQUE (user, name));
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO users VALUES ('alice', 'ts');
    INSERT INTO files VALUES (1, 'alice', 'old.flac', 'from v1', 5000, zeroblob(32), 16384, zeroblob(32), 'ts');
    INSERT INTO files VALUES (2, 'alice', 'older.txt', '', 7, randomblob(32), 1048576, randomblob(32), 'ts');
    INSERT INTO meta VALUES ('seq', 17);
  )sql");
  REQUIRE(files_columns(tmp.path) ==
          std::vector<std::string>{"id", "user", "name", "description", "size", "cid", "chunk_size", "root",
                                   "published_ts"});
  {
    SqliteStore store(tmp.path);
    FileIndex index;
    CHECK(store.load(index) == 17);
    const auto alice = index.find_user("alice");
    REQUIRE(alice);
    REQUIRE(index.file_count() == 2);
    const auto old = index.find_file(*alice, "old.flac");
    REQUIRE(old);
    CHECK(index.file(*old).description == "from v1");
    CHECK(index.file(*old).size == 5000);
    CHECK(index.file(*old).chunk_size == 16384);
    CHECK(index.file(*old).cid == Hash{});
    REQUIRE(index.find_file(*alice, "older.txt"));
    CHECK(index.file(*index.find_file(*alice, "older.txt")).chunk_size == 1048576);
    // New rows go in without a root (a NOT NULL root column left behind would refuse them).
    store.begin();
    store.insert_file("alice", file_named("new.bin"), "ts");
    store.commit();
  }
  CHECK(files_columns(tmp.path) ==
        std::vector<std::string>{"id", "user", "name", "description", "size", "cid", "chunk_size", "published_ts"});
  SqliteStore again(tmp.path);  // opening an upgraded database changes nothing
  FileIndex index;
  CHECK(again.load(index) == 17);
  CHECK(index.file_count() == 3);
  CHECK(files_columns(tmp.path).size() == 8);
}
