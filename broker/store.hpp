// store.hpp: the broker's durable state in one SQLite file (WAL, synchronous=FULL): users, files, the
// event sequence and the replies of mutations (for retried request ids). The caller groups a batch of
// requests into one transaction; nothing is acknowledged before commit() returns. The outbox table holds
// operations-log records until the logger has them (log_shipper.hpp).
#pragma once

#include "broker/file_index.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace zshare::broker {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A batch: begin() opens it, the first write starts the SQLite transaction, commit() commits it if any
  // write happened. A batch of reads costs nothing.
  void begin();
  void commit();
  void rollback() noexcept;
  bool wrote() const { return in_transaction_; }

  void insert_user(std::string_view name, std::string_view key, std::string_view ts);  // key: Z85 or empty
  void delete_user(std::string_view name);  // and the user's files
  void insert_file(std::string_view user, const FileRecord& file, std::string_view ts);
  void delete_file(std::string_view user, std::string_view name);
  void put_reply(std::string_view request_id, std::string_view reply);
  void set_seq(std::uint64_t seq);
  // A record for the operations log, shipped later by LogShipper (same transaction as the change).
  void append_log(std::string_view ts, bool ts_local, std::string_view user, std::string_view operation,
                  std::string_view args);
  void delete_outbox_through(std::uint64_t seq);  // records the logger has stored
  const std::string& broker_id() const { return broker_id_; }

  // Start-up: fills the index (users, then files in publishing order) and returns the last event seq.
  std::uint64_t load(FileIndex& index);
  // The newest `keep` stored replies, oldest first; older ones are deleted.
  void load_replies(std::size_t keep, const std::function<void(std::string, std::string)>& each);
  // Deletes stored replies older than the newest `keep`.
  void prune_replies(std::size_t keep);

 private:
  void exec(const char* sql);
  sqlite3_stmt* prepare(const char* sql);
  void run(sqlite3_stmt* stmt);
  void write(sqlite3_stmt* stmt);  // run() inside the batch's transaction, starting it if needed
  [[noreturn]] void fail(const char* what);
  std::string load_broker_id();
  std::size_t count_rows(const char* table);
  void add_user_key_column();
  void drop_files_root_column();

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* insert_user_ = nullptr;
  sqlite3_stmt* delete_user_ = nullptr;
  sqlite3_stmt* delete_user_files_ = nullptr;
  sqlite3_stmt* insert_file_ = nullptr;
  sqlite3_stmt* delete_file_ = nullptr;
  sqlite3_stmt* put_reply_ = nullptr;
  sqlite3_stmt* set_seq_ = nullptr;
  sqlite3_stmt* append_log_ = nullptr;
  sqlite3_stmt* delete_outbox_ = nullptr;
  std::string broker_id_;
  bool in_batch_ = false;
  bool in_transaction_ = false;
};

}  // namespace zshare::broker
