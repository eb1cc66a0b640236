// sqlite_store.hpp: the Store in one SQLite file (WAL, synchronous=FULL), the embedded default. Any SQLite error
// is a StoreError, which the broker treats as fatal (the database, not memory, is the truth it restarts from).
#pragma once

#include "broker/store.hpp"

#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace zshare::broker {

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;

  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  bool wrote() const override { return in_transaction_; }

  void insert_user(std::string_view name, std::string_view key, std::string_view ts) override;
  void delete_user(std::string_view name) override;
  void insert_file(std::string_view user, const FileRecord& file, std::string_view ts) override;
  void delete_file(std::string_view user, std::string_view name) override;
  void put_reply(std::string_view request_id, std::string_view reply) override;
  void set_seq(std::uint64_t seq) override;
  void append_log(std::string_view ts, bool ts_local, std::string_view user, std::string_view operation,
                  std::string_view args) override;
  void delete_outbox_through(std::uint64_t seq) override;
  void prune_replies(std::size_t keep) override;

  const std::string& broker_id() const override { return broker_id_; }
  std::string describe() const override { return path_; }
  std::unique_ptr<OutboxReader> open_outbox_reader() const override;

 protected:
  void scan_users(const std::function<void(std::string name, std::string key)>& each) override;
  void scan_files(const std::function<void(StoredFile&)>& each) override;
  std::size_t count_rows(const char* table) override;
  void scan_replies(const std::function<void(std::string request_id, std::string reply)>& each) override;
  std::uint64_t stored_seq() override;

 private:
  void exec(const char* sql);
  sqlite3_stmt* prepare(const char* sql);
  void run(sqlite3_stmt* stmt);
  void write(sqlite3_stmt* stmt);  // run() inside the batch's transaction, starting it if needed
  [[noreturn]] void fail(const char* what);
  std::string load_broker_id();
  void add_user_key_column();
  void drop_files_root_column();

  std::string path_;
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
