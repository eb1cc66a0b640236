// pg_store.hpp: the Store in a PostgreSQL database (--db postgresql://...), over libpq with prepared statements.
// One transaction per batch, begun by its first write, as SqliteStore does. The difference is what a lost
// connection does: a write that meets it is not thrown at the dispatcher (which would leave the request
// unanswered) but remembered, and commit() throws StoreUnavailable for the whole batch; nothing of it is
// acknowledged. The connection comes back by itself (pg_connection.hpp). The schema is created and migrated here,
// its version kept in meta.schema_version. Several brokers may serve one database (cluster.hpp): every write
// transaction holds one advisory lock, events and sessions are tables, and the outbox seq is taken under the lock
// (gap-free: the logger's keys stay 1..n whichever broker wrote).
#pragma once

#include "broker/pg_connection.hpp"
#include "broker/store.hpp"

#include <string>

namespace zshare::broker {

class PgStore final : public Store, public Cluster {
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
  Cluster* cluster() override { return this; }

  // Cluster
  void set_name(std::string name) override { name_ = std::move(name); }
  const std::string& name() const override { return name_; }
  void lock_writes() override;
  void fail_batch(std::string why) override;
  void events_after(std::uint64_t after, std::size_t limit,
                    const std::function<void(const StoredEvent&)>& each) override;
  void append_event(std::uint64_t seq, std::string_view topic, std::string_view body) override;
  void prune_events(std::uint64_t seq) override;
  std::optional<std::string> find_reply(std::string_view request_id) override;
  void put_session(std::string_view user, std::string_view endpoint) override;
  void delete_session(std::string_view user) override;
  void renew_lease(std::chrono::milliseconds lease) override;
  std::vector<LapsedSession> lapsed_sessions(bool own) override;
  void send_dial(std::string_view user, const Dial& dial) override;
  int notify_socket() const override { return conn_.socket(); }
  bool take_notifications(std::vector<std::pair<std::string, Dial>>& dials) override;

  static constexpr std::int64_t kSchemaVersion = 2;

 protected:
  void scan_users(const std::function<void(std::string name, std::string key)>& each) override;
  void scan_files(const std::function<void(StoredFile&)>& each) override;
  std::size_t count_rows(const char* table) override;
  void scan_replies(const std::function<void(std::string request_id, std::string reply)>& each) override;
  std::uint64_t stored_seq() override;
  void scan_sessions(const std::function<void(std::string user, std::string endpoint)>& each) override;
  void begin_snapshot() override;
  void end_snapshot() noexcept override;

 private:
  void migrate();
  std::string load_broker_id();
  void write(const char* statement, const PgParams& params);  // inside the batch's transaction, begun if needed
  void begin_transaction();
  void read_events(std::uint64_t after, std::size_t limit, StoredEvent& e,
                   const std::function<void(const StoredEvent&)>& each);

  std::string uri_;
  PgConnection conn_;
  std::string broker_id_;
  std::string name_;
  bool in_batch_ = false;
  bool in_transaction_ = false;
  std::int64_t outbox_seq_ = 0;     // the last outbox seq taken, read under the lock at the transaction's start
  std::int64_t outbox_stored_ = 0;  // its value in meta: written at commit when records were appended
  bool notify_ = false;             // events were appended: other brokers are notified at commit
  std::string batch_failure_;  // why a write of this batch met an unreachable database; commit() throws it
};

}  // namespace zshare::broker
