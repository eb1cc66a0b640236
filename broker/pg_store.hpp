// pg_store.hpp: the Store in a PostgreSQL database (--db postgresql://...), over libpq with prepared statements.
// One transaction per batch, begun by its first write, as SqliteStore does. The difference is what a lost
// connection does: a write that meets it is not thrown at the dispatcher (which would leave the request
// unanswered) but remembered, and commit() throws StoreUnavailable for the whole batch; nothing of it is
// acknowledged. The connection comes back by itself (pg_connection.hpp). The schema is created and migrated here,
// its version kept in meta.schema_version.
#pragma once

#include "broker/pg_connection.hpp"
#include "broker/store.hpp"

#include <string>

namespace zshare::broker {

class PgStore final : public Store {
 public:
  explicit PgStore(const std::string& uri);

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
  std::string describe() const override { return conn_.describe(); }
  std::unique_ptr<OutboxReader> open_outbox_reader() const override;

  static constexpr std::int64_t kSchemaVersion = 1;

 protected:
  void scan_users(const std::function<void(std::string name, std::string key)>& each) override;
  void scan_files(const std::function<void(StoredFile&)>& each) override;
  std::size_t count_rows(const char* table) override;
  void scan_replies(const std::function<void(std::string request_id, std::string reply)>& each) override;
  std::uint64_t stored_seq() override;

 private:
  void migrate();
  std::string load_broker_id();
  void write(const char* statement, const PgParams& params);  // inside the batch's transaction, begun if needed
  void begin_transaction();

  std::string uri_;
  PgConnection conn_;
  std::string broker_id_;
  bool in_batch_ = false;
  bool in_transaction_ = false;
  std::string batch_failure_;  // why a write of this batch met an unreachable database; commit() throws it
};

}  // namespace zshare::broker
