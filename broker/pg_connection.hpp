// pg_connection.hpp: one libpq connection that comes back by itself, shared by PgStore and its outbox reader.
// A lost connection is noticed on use and dropped; the next call connects again once the backoff allows (at once
// the first time, then 100 ms doubling to 5 s) and prepares the statements anew. Errors that say the server is out
// of reach (the connection itself, SQLSTATE classes 08 connection, 53 resources, 57 shutdown/cancel, 58 system)
// are StoreUnavailable; any other is a StoreError. Parameters go in binary (strings, raw bytes for text and bytea
// alike) or as decimal text (integers); results come back in binary.
#pragma once

#include "broker/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace zshare::broker {

// A NOTIFY received: its channel and payload.
struct PgNotification {
  std::string channel;
  std::string payload;
};

// A statement prepared on every (re)connection under its name.
struct PgStatement {
  const char* name;
  const char* sql;
};

// The parameters of one statement, kept alive until it ran.
class PgParams {
 public:
  PgParams& str(std::string_view v);  // text or bytea: the bytes as they are
  PgParams& integer(std::int64_t v);
  PgParams& boolean(bool v) { return text_value(v ? "t" : "f"); }

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const;
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  PgParams& text_value(std::string v);
  std::vector<std::string> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  mutable std::vector<const char*> pointers_;
};

// One row of a binary-format result.
class PgRow {
 public:
  PgRow(const PGresult* result, int row) : result_(result), row_(row) {}
  std::string bytes(int column) const;  // text or bytea
  std::string_view view(int column) const;  // the same, valid while the row's result lives
  std::int64_t integer(int column) const;  // int2, int4 or int8
  bool boolean(int column) const;

 private:
  const PGresult* result_;
  int row_;
};

class PgConnection {
 public:
  explicit PgConnection(std::string uri);  // connects at once: throws StoreUnavailable when it cannot
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Prepares `statements` now and on every later connection.
  void prepare(std::vector<PgStatement> statements);
  // LISTENs on `channel` now and on every later connection (notifications sent while disconnected are lost: a
  // listener reads what it missed when it is back).
  void listen(std::string channel);
  void notify(std::string_view channel, std::string_view payload);  // pg_notify: at once, or at the commit
  // The connection's socket, for poll(); -1 while disconnected.
  int socket() const;
  // Reads what the server sent while idle, and the notifications earlier statements collected, into `out`; true when
  // any came (or the connection broke: the next statement reconnects or says the server is out of reach).
  bool take_notifications(std::vector<PgNotification>& out);
  // Counts the connections made so far: what a session holds on the server (an advisory lock) lasts while it stays.
  std::uint64_t generation() const { return generation_; }
  void exec(const char* sql, const PgParams& params);        // an unprepared statement with parameters
  void exec(const char* sql);                                  // simple protocol: BEGIN, COMMIT, DDL
  void run(const char* statement, const PgParams& params);     // a prepared statement, no rows wanted
  // A query's rows one at a time (libpq's single-row mode: a large table is never held whole in memory).
  void each_row(const char* sql, const PgParams& params, const std::function<void(const PgRow&)>& each);
  void rollback() noexcept;  // ends an open transaction, if the connection still stands
  bool in_transaction() const;

  // user@host:port/dbname, without a password.
  std::string describe() const;

 private:
  void ensure_connected();
  void connect();
  void prepare_statements();
  void check(PGresult* result, const char* what);  // frees `result`; throws StoreUnavailable or StoreError
  [[noreturn]] void unavailable(const std::string& why);

  std::string uri_;
  std::vector<PgStatement> statements_;
  std::vector<std::string> channels_;  // LISTENed on every connection
  std::uint64_t generation_ = 0;
  PGconn* conn_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
};

}  // namespace zshare::broker
