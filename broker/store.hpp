// store.hpp: the broker's durable state behind one interface: users, files, the event sequence, the replies of
// mutations (for retried request ids) and the outbox of operations-log records (log_shipper.hpp). Two
// implementations: SqliteStore (one file, the embedded default) and PgStore (a PostgreSQL database); open_store()
// picks by the --db string. The caller groups a batch of requests into one transaction; nothing is acknowledged
// before commit() returns. Both create and migrate their schema themselves.
// Errors: StoreError is fatal (memory can no longer be trusted to match the database; a restart rebuilds it);
// StoreUnavailable (a StoreError) says the database cannot be reached now: the batch did not commit, and the
// store reconnects by itself on a later call.
#pragma once

#include "broker/cluster.hpp"
#include "broker/file_index.hpp"
#include "rpclog/log_record.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zshare::broker {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The database is out of reach (connection lost, server shutting down or starting): a batch that meets it fails
// as a whole at commit(), and the next calls try to reconnect (with backoff) until it is back.
struct StoreUnavailable : StoreError {
  using StoreError::StoreError;
};

// Reads the outbox on a connection of its own, for LogShipper's thread (never the broker's connection).
class OutboxReader {
 public:
  virtual ~OutboxReader() = default;
  // Up to `limit` records with seq > `after`, oldest first (their broker_id left empty).
  virtual std::vector<rpclog::LogRecord> read_after(std::uint64_t after, std::size_t limit) = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A batch: begin() opens it, the first write starts the transaction, commit() commits it if any write happened
  // (and throws StoreUnavailable when a write or the commit met an unreachable database). A batch of reads costs
  // nothing.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  virtual bool wrote() const = 0;

  virtual void insert_user(std::string_view name, std::string_view key, std::string_view ts) = 0;  // key: Z85 or ""
  virtual void delete_user(std::string_view name) = 0;  // and the user's files
  virtual void insert_file(std::string_view user, const FileRecord& file, std::string_view ts) = 0;
  virtual void delete_file(std::string_view user, std::string_view name) = 0;
  virtual void put_reply(std::string_view request_id, std::string_view reply) = 0;
  virtual void set_seq(std::uint64_t seq) = 0;
  // A record for the operations log, shipped later by LogShipper (same transaction as the change).
  virtual void append_log(std::string_view ts, bool ts_local, std::string_view user, std::string_view operation,
                          std::string_view args) = 0;
  virtual void delete_outbox_through(std::uint64_t seq) = 0;  // records the logger has stored
  // Deletes stored replies older than the newest `keep`.
  virtual void prune_replies(std::size_t keep) = 0;

  // A random id made once per database: the logger keys its deduplication by (broker id, outbox seq).
  virtual const std::string& broker_id() const = 0;
  // What the database is, for log lines (a PostgreSQL URI without its password).
  virtual std::string describe() const = 0;
  // A new reader of the outbox on its own connection; callable from another thread. Where several brokers share the
  // database, one reader at a time reads (the others read nothing until its connection is gone).
  virtual std::unique_ptr<OutboxReader> open_outbox_reader() const = 0;
  // The brokers sharing this database (cluster.hpp), or null: this broker is the database's only one.
  virtual Cluster* cluster() { return nullptr; }

  // Start-up: fills the index (users, then files in publishing order, then the sessions other brokers hold) from
  // one snapshot and returns the last event seq of that snapshot.
  std::uint64_t load(FileIndex& index);
  // The newest `keep` stored replies, oldest first; older ones are deleted.
  void load_replies(std::size_t keep, const std::function<void(std::string, std::string)>& each);

 protected:
  // A stored file row: its owner's name, and the record without its owner's id (the index assigns those).
  struct StoredFile {
    std::string user;
    FileRecord file;
  };
  // The rows load() reads, each in its order: users by registration, files by publication, replies oldest first.
  // scan_files hands over one row object, refilled row to row (its strings keep their capacity: no allocation
  // per file at start-up).
  virtual void scan_users(const std::function<void(std::string name, std::string key)>& each) = 0;
  virtual void scan_files(const std::function<void(StoredFile&)>& each) = 0;
  virtual std::size_t count_rows(const char* table) = 0;  // "users" or "files": sizes the index before a load
  virtual void scan_replies(const std::function<void(std::string request_id, std::string reply)>& each) = 0;
  virtual std::uint64_t stored_seq() = 0;
  // The sessions kept in the database (several brokers: those other brokers hold); none in a store without them.
  virtual void scan_sessions(const std::function<void(std::string user, std::string endpoint)>&) {}
  // Around load(): every scan reads one snapshot (a store with a single writer, itself, needs nothing).
  virtual void begin_snapshot() {}
  virtual void end_snapshot() noexcept {}

 private:
  std::uint64_t load_snapshot(FileIndex& index);
};

// A PostgreSQL URI (postgresql://... or postgres://...) opens a PgStore; anything else is a SQLite file path.
bool is_postgres_uri(std::string_view db);
std::unique_ptr<Store> open_store(const std::string& db);

}  // namespace zshare::broker
