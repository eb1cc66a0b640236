// sqlite_store.cpp: prepared statements, reused for every request; any SQLite error becomes a StoreError. The
// outbox reader opens the same file read-only (WAL lets it read beside the broker's writer).
#include "broker/sqlite_store.hpp"

#include <sqlite3.h>

#include <cstdio>

namespace zshare::broker {

namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY,
  registered_ts TEXT NOT NULL,
  key TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS files (
  id INTEGER PRIMARY KEY,
  user TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  size INTEGER NOT NULL,
  cid BLOB NOT NULL,
  chunk_size INTEGER NOT NULL,
  published_ts TEXT NOT NULL,
  UNIQUE (user, name)
);
CREATE TABLE IF NOT EXISTS replies (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL UNIQUE,
  reply BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  ts_local INTEGER NOT NULL,
  user TEXT NOT NULL,
  operation TEXT NOT NULL,
  args TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql";

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  // An empty view may have no data pointer, which SQLite would bind as NULL rather than ''.
  sqlite3_bind_text(s, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void bind_blob(sqlite3_stmt* s, int i, const void* p, std::size_t n) {
  sqlite3_bind_blob(s, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
}

std::string_view column_view(sqlite3_stmt* s, int i) {  // valid until the next step
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}

std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

Hash column_hash(sqlite3_stmt* s, int i) {
  Hash h{};
  if (sqlite3_column_bytes(s, i) == static_cast<int>(h.size())) {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, i));
    std::copy(p, p + h.size(), h.begin());
  }
  return h;
}

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec(kSchema);
  add_user_key_column();
  drop_files_root_column();
  begin_ = prepare("BEGIN IMMEDIATE");
  commit_ = prepare("COMMIT");
  insert_user_ = prepare("INSERT INTO users (name, key, registered_ts) VALUES (?1, ?2, ?3)");
  delete_user_ = prepare("DELETE FROM users WHERE name = ?1");
  delete_user_files_ = prepare("DELETE FROM files WHERE user = ?1");
  insert_file_ = prepare(
      "INSERT INTO files (user, name, description, size, cid, chunk_size, published_ts) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  delete_file_ = prepare("DELETE FROM files WHERE user = ?1 AND name = ?2");
  put_reply_ = prepare("INSERT OR REPLACE INTO replies (request_id, reply) VALUES (?1, ?2)");
  set_seq_ = prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?1)");
  append_log_ = prepare("INSERT INTO outbox (ts, ts_local, user, operation, args) VALUES (?1, ?2, ?3, ?4, ?5)");
  delete_outbox_ = prepare("DELETE FROM outbox WHERE seq <= ?1");
  broker_id_ = load_broker_id();
}

void SqliteStore::add_user_key_column() {
  // Databases made before CurveZMQ have no key column; their users stay unbound (any key may act for them)
  // until they register again, which is what they were under plaintext.
  sqlite3_stmt* s = prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'key'");
  const bool present = sqlite3_step(s) == SQLITE_ROW;
  sqlite3_finalize(s);
  if (!present) exec("ALTER TABLE users ADD COLUMN key TEXT NOT NULL DEFAULT ''");
}

void SqliteStore::drop_files_root_column() {
  // Protocol v1 kept a Merkle root over the publisher's chunks beside the whole-file cid; v3's cid is itself the
  // root over 16 KiB blocks. The rows stay: their v1 cids are served by no v3 seeder until their owners republish.
  sqlite3_stmt* s = prepare("SELECT 1 FROM pragma_table_info('files') WHERE name = 'root'");
  const bool present = sqlite3_step(s) == SQLITE_ROW;
  sqlite3_finalize(s);
  if (present) exec("ALTER TABLE files DROP COLUMN root");  // SQLite 3.35 or later
}

std::string SqliteStore::load_broker_id() {
  // A random id made once per database: the logger keys its deduplication by (broker id, outbox seq).
  exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('broker_id', abs(random()))");
  sqlite3_stmt* s = prepare("SELECT value FROM meta WHERE key = 'broker_id'");
  std::string id;
  if (sqlite3_step(s) == SQLITE_ROW) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(sqlite3_column_int64(s, 0)));
    id = buf;
  }
  sqlite3_finalize(s);
  return id;
}

void SqliteStore::delete_outbox_through(std::uint64_t seq) {
  sqlite3_bind_int64(delete_outbox_, 1, static_cast<sqlite3_int64>(seq));
  write(delete_outbox_);
}

void SqliteStore::append_log(std::string_view ts, bool ts_local, std::string_view user, std::string_view operation,
                       std::string_view args) {
  bind_text(append_log_, 1, ts);
  sqlite3_bind_int(append_log_, 2, ts_local ? 1 : 0);
  bind_text(append_log_, 3, user);
  bind_text(append_log_, 4, operation);
  bind_text(append_log_, 5, args);
  write(append_log_);
}

SqliteStore::~SqliteStore() {
  for (auto* s : {begin_, commit_, insert_user_, delete_user_, delete_user_files_, insert_file_, delete_file_,
                  put_reply_, set_seq_, append_log_, delete_outbox_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

void SqliteStore::fail(const char* what) {
  throw StoreError(std::string(what) + ": " + sqlite3_errmsg(db_));
}

void SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw StoreError(std::string("SQLite: ") + msg);
  }
}

sqlite3_stmt* SqliteStore::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) fail("prepare");
  return s;
}

void SqliteStore::run(sqlite3_stmt* stmt) {
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail("write");
}

void SqliteStore::begin() { in_batch_ = true; }

void SqliteStore::write(sqlite3_stmt* stmt) {
  if (in_batch_ && !in_transaction_) {
    run(begin_);
    in_transaction_ = true;
  }
  run(stmt);
}

void SqliteStore::commit() {
  in_batch_ = false;
  if (!in_transaction_) return;
  in_transaction_ = false;
  run(commit_);
}

void SqliteStore::rollback() noexcept {
  in_batch_ = false;
  in_transaction_ = false;
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteStore::insert_user(std::string_view name, std::string_view key, std::string_view ts) {
  bind_text(insert_user_, 1, name);
  bind_text(insert_user_, 2, key);
  bind_text(insert_user_, 3, ts);
  write(insert_user_);
}

void SqliteStore::delete_user(std::string_view name) {
  bind_text(delete_user_files_, 1, name);
  write(delete_user_files_);
  bind_text(delete_user_, 1, name);
  write(delete_user_);
}

void SqliteStore::insert_file(std::string_view user, const FileRecord& f, std::string_view ts) {
  bind_text(insert_file_, 1, user);
  bind_text(insert_file_, 2, f.name);
  bind_text(insert_file_, 3, f.description);
  sqlite3_bind_int64(insert_file_, 4, static_cast<sqlite3_int64>(f.size));
  bind_blob(insert_file_, 5, f.cid.data(), f.cid.size());
  sqlite3_bind_int64(insert_file_, 6, f.chunk_size);
  bind_text(insert_file_, 7, ts);
  write(insert_file_);
}

void SqliteStore::delete_file(std::string_view user, std::string_view name) {
  bind_text(delete_file_, 1, user);
  bind_text(delete_file_, 2, name);
  write(delete_file_);
}

void SqliteStore::put_reply(std::string_view request_id, std::string_view reply) {
  bind_text(put_reply_, 1, request_id);
  bind_blob(put_reply_, 2, reply.data(), reply.size());
  write(put_reply_);
}

void SqliteStore::set_seq(std::uint64_t seq) {
  sqlite3_bind_int64(set_seq_, 1, static_cast<sqlite3_int64>(seq));
  write(set_seq_);
}

void SqliteStore::scan_users(const std::function<void(std::string name, std::string key)>& each) {
  sqlite3_stmt* users = prepare("SELECT name, key FROM users ORDER BY rowid");
  int rc;
  while ((rc = sqlite3_step(users)) == SQLITE_ROW) each(column_text(users, 0), column_text(users, 1));
  sqlite3_finalize(users);
  if (rc != SQLITE_DONE) fail("load users");
}

std::size_t SqliteStore::count_rows(const char* table) {
  sqlite3_stmt* s = prepare((std::string("SELECT count(*) FROM ") + table).c_str());
  const std::size_t n = sqlite3_step(s) == SQLITE_ROW ? static_cast<std::size_t>(sqlite3_column_int64(s, 0)) : 0;
  sqlite3_finalize(s);
  return n;
}

void SqliteStore::scan_files(const std::function<void(StoredFile&)>& each) {
  sqlite3_stmt* files = prepare("SELECT user, name, description, size, cid, chunk_size FROM files ORDER BY id");
  StoredFile row;
  int rc;
  while ((rc = sqlite3_step(files)) == SQLITE_ROW) {
    row.user.assign(column_view(files, 0));
    row.file.name.assign(column_view(files, 1));
    row.file.description.assign(column_view(files, 2));
    row.file.size = static_cast<std::uint64_t>(sqlite3_column_int64(files, 3));
    row.file.cid = column_hash(files, 4);
    row.file.chunk_size = static_cast<std::uint32_t>(sqlite3_column_int64(files, 5));
    each(row);
  }
  sqlite3_finalize(files);
  if (rc != SQLITE_DONE) fail("load files");
}

std::uint64_t SqliteStore::stored_seq() {
  std::uint64_t seq = 0;
  sqlite3_stmt* meta = prepare("SELECT value FROM meta WHERE key = 'seq'");
  if (sqlite3_step(meta) == SQLITE_ROW) seq = static_cast<std::uint64_t>(sqlite3_column_int64(meta, 0));
  sqlite3_finalize(meta);
  return seq;
}

void SqliteStore::prune_replies(std::size_t keep) {
  sqlite3_stmt* s = prepare("DELETE FROM replies WHERE id <= (SELECT MAX(id) FROM replies) - ?1");
  sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(keep));
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) fail("prune replies");
}

void SqliteStore::scan_replies(const std::function<void(std::string request_id, std::string reply)>& each) {
  sqlite3_stmt* s = prepare("SELECT request_id, reply FROM replies ORDER BY id");
  while (sqlite3_step(s) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s, 1));
    each(column_text(s, 0), std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, 1))));
  }
  sqlite3_finalize(s);
}

namespace {

// The outbox of one SQLite file, read-only, on a connection of its own.
class SqliteOutboxReader final : public OutboxReader {
 public:
  explicit SqliteOutboxReader(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw StoreError("cannot open " + path + " to read the outbox: " + msg);
    }
    sqlite3_busy_timeout(db_, 5000);
    if (sqlite3_prepare_v2(db_, "SELECT seq, ts, ts_local, user, operation, args FROM outbox WHERE seq > ?2 "
                                "ORDER BY seq LIMIT ?1", -1, &select_, nullptr) != SQLITE_OK) {
      std::string msg = sqlite3_errmsg(db_);
      sqlite3_close(db_);
      throw StoreError("cannot read the outbox: " + msg);
    }
  }
  ~SqliteOutboxReader() override {
    sqlite3_finalize(select_);
    sqlite3_close(db_);
  }

  std::vector<rpclog::LogRecord> read_after(std::uint64_t after, std::size_t limit) override {
    std::vector<rpclog::LogRecord> batch;
    sqlite3_bind_int64(select_, 1, static_cast<sqlite3_int64>(limit));
    sqlite3_bind_int64(select_, 2, static_cast<sqlite3_int64>(after));
    int rc;
    while ((rc = sqlite3_step(select_)) == SQLITE_ROW) {
      rpclog::LogRecord r;
      r.seq = static_cast<std::uint64_t>(sqlite3_column_int64(select_, 0));
      r.timestamp = column_text(select_, 1);
      r.ts_local = sqlite3_column_int(select_, 2) != 0;
      r.user = column_text(select_, 3);
      r.operation = column_text(select_, 4);
      r.args = column_text(select_, 5);
      batch.push_back(std::move(r));
    }
    sqlite3_reset(select_);
    if (rc != SQLITE_DONE) throw StoreError(std::string("reading the outbox: ") + sqlite3_errmsg(db_));
    return batch;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
};

}  // namespace

std::unique_ptr<OutboxReader> SqliteStore::open_outbox_reader() const {
  return std::make_unique<SqliteOutboxReader>(path_);
}

}  // namespace zshare::broker
