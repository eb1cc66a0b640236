// test_store.cpp: both stores, SQLite (a file) and PostgreSQL (a throw-away cluster, pg_test_cluster.hpp), through
// open_store() and the Store interface: what is committed comes back on reopen, what is rolled back does not, the seq,
// stored replies and the outbox persist, bytes (NUL, UTF-8) come back as they went in. Then what is each one's own:
// a v1 SQLite database is upgraded in place; PostgreSQL's schema version is checked, and a lost connection fails
// the batch as a whole (StoreUnavailable at commit, nothing stored) and comes back by itself.
#include "broker/pg_store.hpp"
#include "broker/sqlite_store.hpp"
#include "broker/store.hpp"
#include "pg_test_cluster.hpp"
#include "temp_folder.hpp"

#include <catch2/catch.hpp>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace zshare;
using namespace zshare::broker;
using zshare::test::PgTestCluster;
using zshare::test::TempFolder;

namespace {

// A fresh, empty database of each kind, named as --db names it.
struct SqliteDb {
  std::string db() const { return folder / "broker.db"; }
  std::string path() const { return db(); }
  TempFolder folder{"zshare-store"};
};

// PostgreSQL is part of the test environment (tools/install-deps.sh installs it): without it, these cases fail.
struct PgDb {
  PgDb() : cluster(PgTestCluster::get()), uri(cluster ? cluster->create_database() : "") {
    if (!cluster) FAIL("no PostgreSQL binaries (initdb, pg_ctl): tools/install-deps.sh installs them");
  }
  std::string db() const { return uri; }
  PgTestCluster* cluster;
  std::string uri;
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

std::vector<std::pair<std::string, std::string>> stored_replies(Store& store, std::size_t keep) {
  std::vector<std::pair<std::string, std::string>> out;
  store.load_replies(keep, [&](std::string id, std::string r) { out.emplace_back(std::move(id), std::move(r)); });
  return out;
}

// Runs one statement on a PostgreSQL database directly, outside the Store.
void pg_exec(const std::string& uri, const std::string& sql) {
  PGconn* conn = PQconnectdb(uri.c_str());
  PGresult* r = PQexec(conn, sql.c_str());
  const auto status = PQresultStatus(r);
  INFO(sql << ": " << PQerrorMessage(conn));
  PQclear(r);
  PQfinish(conn);
  REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
}

// Cuts every other connection to the database, as a server restart or an administrator would.
void cut_connections(const std::string& uri) {
  pg_exec(uri, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE datname = current_database() AND pid <> pg_backend_pid()");
}

}  // namespace

TEMPLATE_TEST_CASE("committed users, files, seq and replies survive reopening", "[store]", SqliteDb, PgDb) {
  TestType tmp;
  {
    auto store = open_store(tmp.db());
    store->begin();
    store->insert_user("alice", "", "2026-01-01T00:00:00.000Z");
    store->insert_user("bob", "", "2026-01-01T00:00:00.000Z");
    store->insert_file("alice", file_named("a.txt"), "ts");
    store->insert_file("bob", file_named("b.txt"), "ts");
    store->insert_file("alice", file_named("c.txt"), "ts");
    store->delete_file("alice", "a.txt");
    store->put_reply("req-1", "reply-bytes");
    store->set_seq(41);
    CHECK(store->wrote());
    store->commit();
    CHECK_FALSE(store->wrote());
  }
  auto store = open_store(tmp.db());
  FileIndex index;
  CHECK(store->load(index) == 41);
  CHECK(index.user_count() == 2);
  REQUIRE(index.file_count() == 2);
  const auto alice = index.find_user("alice");
  REQUIRE(alice);
  const auto c = index.find_file(*alice, "c.txt");
  REQUIRE(c);
  CHECK(index.file(*c).description == "desc of c.txt");
  CHECK(index.file(*c).cid == file_named("x").cid);
  CHECK(index.file(*c).size == 123);
  CHECK(index.file(*c).chunk_size == 16384);
  CHECK_FALSE(index.find_file(*alice, "a.txt"));
  CHECK(stored_replies(*store, 10) == std::vector<std::pair<std::string, std::string>>{{"req-1", "reply-bytes"}});
}

TEMPLATE_TEST_CASE("a rolled-back transaction leaves nothing behind, and a batch of reads writes nothing", "[store]",
                   SqliteDb, PgDb) {
  TestType tmp;
  {
    auto store = open_store(tmp.db());
    store->begin();
    CHECK_FALSE(store->wrote());
    store->commit();
    store->begin();
    store->insert_user("ghost", "", "ts");
    store->rollback();
  }
  auto store = open_store(tmp.db());
  FileIndex index;
  CHECK(store->load(index) == 0);
  CHECK(index.user_count() == 0);
}

TEMPLATE_TEST_CASE("unregistering deletes the user's files, and replies are pruned to the newest", "[store]", SqliteDb,
                   PgDb) {
  TestType tmp;
  {
    auto store = open_store(tmp.db());
    store->begin();
    store->insert_user("alice", "", "ts");
    store->insert_file("alice", file_named("a.txt"), "ts");
    store->delete_user("alice");
    for (int i = 0; i < 20; ++i) store->put_reply("r" + std::to_string(i), "x");
    store->put_reply("r3", "again");  // replaced: it becomes the newest
    store->commit();
  }
  auto store = open_store(tmp.db());
  FileIndex index;
  store->load(index);
  CHECK(index.user_count() == 0);
  CHECK(index.file_count() == 0);
  std::vector<std::string> ids;
  for (const auto& [id, reply] : stored_replies(*store, 5)) ids.push_back(id);
  CHECK(ids == std::vector<std::string>{"r16", "r17", "r18", "r19", "r3"});
}

TEMPLATE_TEST_CASE("bytes come back as they went in: NUL in a description or a request id, UTF-8 names", "[store]",
                   SqliteDb, PgDb) {
  TestType tmp;
  using namespace std::string_literals;
  FileRecord f = file_named("\xc3\xa9t\xc3\xa9 \xe2\x98\x83.flac");
  f.description = "before\0after \xf0\x9f\x8e\xb5"s;
  f.size = (std::uint64_t{1} << 62) + 5;
  f.chunk_size = 16 * 1024 * 1024;
  for (std::size_t i = 0; i < f.cid.size(); ++i) f.cid[i] = static_cast<std::uint8_t>(i * 37);  // 0x00 and 0xff too
  const std::string request_id = "key id\0with NUL"s;
  const std::string reply = "\x81\xa2id\0\xff"s;
  {
    auto store = open_store(tmp.db());
    store->begin();
    store->insert_user("\xc3\xa9mile", "0123456789012345678901234567890123456789", "ts");
    store->insert_file("\xc3\xa9mile", f, "ts");
    store->put_reply(request_id, reply);
    store->commit();
  }
  auto store = open_store(tmp.db());
  FileIndex index;
  store->load(index);
  const auto user = index.find_user("\xc3\xa9mile");
  REQUIRE(user);
  CHECK(index.user(*user).key == "0123456789012345678901234567890123456789");
  const auto id = index.find_file(*user, f.name);
  REQUIRE(id);
  CHECK(index.file(*id).description == f.description);
  CHECK(index.file(*id).size == f.size);
  CHECK(index.file(*id).chunk_size == f.chunk_size);
  CHECK(index.file(*id).cid == f.cid);
  CHECK(stored_replies(*store, 10) == std::vector<std::pair<std::string, std::string>>{{request_id, reply}});
}

TEMPLATE_TEST_CASE("the outbox reader sees committed records in order, and not those deleted", "[store]", SqliteDb,
                   PgDb) {
  TestType tmp;
  auto store = open_store(tmp.db());
  const std::string id = store->broker_id();
  CHECK(id.size() == 16);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  auto reader = store->open_outbox_reader();
  store->begin();
  store->append_log("2026-01-01T00:00:00.000Z", false, "alice", "REGISTER", "");
  store->append_log("2026-01-01T00:00:01.000Z", true, "alice", "PUBLISH", "a.txt 5 ab");
  store->append_log("2026-01-01T00:00:02.000Z", false, "bob", "REGISTER", "key=k");
  CHECK(reader->read_after(0, 10).empty());  // not committed yet
  store->commit();
  auto all = reader->read_after(0, 10);
  REQUIRE(all.size() == 3);
  CHECK(all[0].seq < all[1].seq);
  CHECK(all[1].seq < all[2].seq);
  CHECK((all[1].timestamp == "2026-01-01T00:00:01.000Z" && all[1].ts_local && all[1].user == "alice" &&
         all[1].operation == "PUBLISH" && all[1].args == "a.txt 5 ab"));
  CHECK_FALSE(all[0].ts_local);
  auto after_first = reader->read_after(all[0].seq, 1);
  REQUIRE(after_first.size() == 1);
  CHECK(after_first[0].seq == all[1].seq);
  store->begin();
  store->delete_outbox_through(all[1].seq);
  store->commit();
  auto left = reader->read_after(0, 10);
  REQUIRE(left.size() == 1);
  CHECK(left[0].user == "bob");
  CHECK(open_store(tmp.db())->broker_id() == id);  // made once per database
}

TEST_CASE("open_store picks PostgreSQL for its URIs and SQLite for anything else", "[store]") {
  CHECK(is_postgres_uri("postgresql://zshare@db.example/zshare"));
  CHECK(is_postgres_uri("postgres:///zshare?host=/run/postgresql"));
  CHECK_FALSE(is_postgres_uri("zshare-broker.db"));
  CHECK_FALSE(is_postgres_uri("/var/lib/zshare/postgresql://x"));
  CHECK_FALSE(is_postgres_uri("host=db dbname=zshare"));  // a libpq keyword string is a file name here
}

TEST_CASE("a database path that cannot be opened is a clear error", "[store]") {
  CHECK_THROWS_WITH(open_store("/nonexistent-dir/x/broker.db"), Catch::Contains("cannot open database"));
}

TEST_CASE("a PostgreSQL server that does not answer is StoreUnavailable at start, with the reason", "[store][pg]") {
  // Port 1 on loopback: nothing listens there; the URI's password never shows in the message.
  try {
    open_store("postgresql://zshare:secret@127.0.0.1:1/zshare?connect_timeout=2");
    FAIL("opened a store on a port where nothing listens");
  } catch (const StoreUnavailable& e) {
    CHECK_THAT(e.what(), Catch::Contains("cannot connect to postgresql://zshare@127.0.0.1:1/zshare"));
    CHECK_THAT(e.what(), !Catch::Contains("secret"));
  }
}

TEST_CASE("a PostgreSQL database of a newer schema version is refused", "[store][pg]") {
  PgDb tmp;
  open_store(tmp.db());
  pg_exec(tmp.db(), "UPDATE meta SET value = value + 1 WHERE key = 'schema_version'");
  CHECK_THROWS_WITH(open_store(tmp.db()), Catch::Contains("newer than this broker's"));
  pg_exec(tmp.db(), "UPDATE meta SET value = value - 1 WHERE key = 'schema_version'");
  CHECK_NOTHROW(open_store(tmp.db()));  // and an up-to-date one opens again, its tables kept
}

TEST_CASE("a lost PostgreSQL connection fails the batch as a whole and the store comes back by itself",
          "[store][pg]") {
  PgDb tmp;
  auto store = open_store(tmp.db());

  // Cut between batches: the next batch's first statement finds the connection dead and takes a fresh one.
  cut_connections(tmp.db());
  store->begin();
  store->insert_user("after-idle-cut", "", "ts");
  CHECK_NOTHROW(store->commit());

  // Cut in the middle of a batch: later writes are not thrown at the caller, the commit is, and nothing of the
  // batch is stored.
  store->begin();
  store->insert_user("lost-1", "", "ts");
  cut_connections(tmp.db());
  store->insert_user("lost-2", "", "ts");
  store->set_seq(7);
  CHECK(store->wrote());  // the batch holds its replies: they must learn it failed
  CHECK_THROWS_AS(store->commit(), StoreUnavailable);
  CHECK_FALSE(store->wrote());

  // The next batch reconnects and commits.
  store->begin();
  store->insert_user("next", "", "ts");
  store->commit();

  FileIndex index;
  CHECK(open_store(tmp.db())->load(index) == 0);
  CHECK(index.find_user("after-idle-cut"));
  CHECK(index.find_user("next"));
  CHECK_FALSE(index.find_user("lost-1"));
  CHECK_FALSE(index.find_user("lost-2"));
  CHECK(index.user_count() == 2);
}

TEST_CASE("the PostgreSQL outbox reader survives a server restart", "[store][pg]") {
  PgDb tmp;
  auto store = open_store(tmp.db());
  auto reader = store->open_outbox_reader();
  tmp.cluster->restart();
  store->begin();
  store->append_log("ts", false, "alice", "REGISTER", "");
  store->commit();
  // Its connection died with the restart: a read may report that once (StoreUnavailable, as LogShipper expects),
  // and the next one reconnects.
  std::vector<rpclog::LogRecord> got;
  for (int attempt = 0; attempt < 2 && got.empty(); ++attempt) {
    try {
      got = reader->read_after(0, 10);
    } catch (const StoreUnavailable&) {
    }
  }
  CHECK(got.size() == 1);
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
  SqliteDb tmp;
  // The files table as protocol v1 wrote it, with a v1 user (no key column yet) and two files.
  exec_sql(tmp.path(), R"sql(
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
  REQUIRE(files_columns(tmp.path()) ==
          std::vector<std::string>{"id", "user", "name", "description", "size", "cid", "chunk_size", "root",
                                   "published_ts"});
  {
    SqliteStore store(tmp.path());
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
  CHECK(files_columns(tmp.path()) ==
        std::vector<std::string>{"id", "user", "name", "description", "size", "cid", "chunk_size", "published_ts"});
  SqliteStore again(tmp.path());  // opening an upgraded database changes nothing
  FileIndex index;
  CHECK(again.load(index) == 17);
  CHECK(index.file_count() == 3);
  CHECK(files_columns(tmp.path()).size() == 8);
}
