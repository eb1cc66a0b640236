// pg_connection.cpp: connect (with a connect timeout and TCP keepalives unless the URI says otherwise), prepare,
// run, and sort every failure into "out of reach" (drop the connection, retry later) or "a real error".
#include "broker/pg_connection.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>

namespace zshare::broker {

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

// SQLSTATE classes that say the server cannot serve us now rather than that a statement is wrong (the batch fails as
// a whole, memory reloads).
bool out_of_reach(const char* sqlstate) {
  if (!sqlstate || std::strlen(sqlstate) < 2) return true;  // no server answer at all: a client-side failure
  const std::string_view cls(sqlstate, 2);
  // 40: a deadlock or serialization failure (a transaction to run again, not a wrong statement).
  return cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58";
}

// libpq's message on one line (it spreads some over several, with tabs): for the broker's log lines.
std::string one_line(const char* message) {
  std::string m;
  for (const char* p = message ? message : ""; *p; ++p) {
    const bool space = *p == '\n' || *p == '\t' || *p == ' ';
    if (!space) m += *p;
    else if (!m.empty() && m.back() != ' ') m += ' ';
  }
  if (!m.empty() && m.back() == ' ') m.pop_back();
  return m;
}

}  // namespace

PgParams& PgParams::str(std::string_view v) {
  values_.emplace_back(v);
  lengths_.push_back(static_cast<int>(v.size()));
  formats_.push_back(1);
  return *this;
}

PgParams& PgParams::integer(std::int64_t v) { return text_value(std::to_string(v)); }

PgParams& PgParams::text_value(std::string v) {
  lengths_.push_back(static_cast<int>(v.size()));
  values_.push_back(std::move(v));
  formats_.push_back(0);
  return *this;
}

const char* const* PgParams::values() const {
  pointers_.clear();
  for (const auto& v : values_) pointers_.push_back(v.data());
  return pointers_.data();
}

std::string_view PgRow::view(int column) const {
  const char* p = PQgetvalue(result_, row_, column);
  return std::string_view(p, static_cast<std::size_t>(PQgetlength(result_, row_, column)));
}

std::string PgRow::bytes(int column) const { return std::string(view(column)); }

std::int64_t PgRow::integer(int column) const {
  // Binary integers are big-endian, 2, 4 or 8 bytes.
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row_, column));
  const int n = PQgetlength(result_, row_, column);
  std::uint64_t v = (n > 0 && (p[0] & 0x80)) ? ~std::uint64_t{0} : 0;  // sign-extend
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return static_cast<std::int64_t>(v);
}

bool PgRow::boolean(int column) const {
  return PQgetlength(result_, row_, column) == 1 && PQgetvalue(result_, row_, column)[0] != 0;
}

PgConnection::PgConnection(std::string uri) : uri_(std::move(uri)) { ensure_connected(); }

void PgConnection::prepare(std::vector<PgStatement> statements) {
  statements_ = std::move(statements);
  ensure_connected();
  prepare_statements();
}

PgConnection::~PgConnection() { PQfinish(conn_); }

void PgConnection::ensure_connected() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return;
  PQfinish(conn_);
  conn_ = nullptr;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now);
    throw StoreUnavailable("PostgreSQL is unreachable (" + last_error_ + "); next attempt in " +
                           std::to_string(wait.count()) + " ms");
  }
  try {
    connect();
    prepare_statements();
    for (const auto& c : channels_) check(PQexec(conn_, ("LISTEN " + c).c_str()), "LISTEN");
    ++generation_;
    backoff_ = std::chrono::milliseconds(0);
  } catch (const StoreUnavailable& e) {
    PQfinish(conn_);
    conn_ = nullptr;
    last_error_ = e.what();
    backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
    next_attempt_ = std::chrono::steady_clock::now() + backoff_;
    throw;
  } catch (...) {
    PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

void PgConnection::connect() {
  // Our defaults first: the URI's own settings, expanded from dbname, come later and win.
  // client_min_messages: the server's NOTICEs ("relation already exists, skipping") are no news for the broker's log.
  // The server side too must not wait hours for a broker that is gone while it holds the write lock (its host cut
  // off: TCP keepalives; its process frozen: a transaction idle for a minute is ended). A batch is never idle in its
  // transaction for more than a round trip; the start-up load pauses in its snapshot only while words are indexed.
  const char* keywords[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval", "keepalives_count",
                            "application_name", "options",         "dbname",              nullptr};
  const char* options =
      "-c client_min_messages=warning -c idle_in_transaction_session_timeout=60000 "
      "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3";
  const char* values[] = {"5", "10", "5", "3", "zshare-broker", options, uri_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (!conn_) throw StoreUnavailable("PostgreSQL: out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) throw StoreUnavailable("cannot connect to " + describe() + ": " +
                                                               one_line(PQerrorMessage(conn_)));
  const char* encoding = PQparameterStatus(conn_, "server_encoding");
  if (!encoding || std::string_view(encoding) != "UTF8") {
    // Names are UTF-8 and must come back byte for byte: a SQL_ASCII or LATIN1 database would not keep them so.
    throw StoreError("the database " + describe() + " uses encoding " + (encoding ? encoding : "?") +
                     "; zshare needs UTF8 (createdb -E UTF8 -T template0)");
  }
  if (PQsetClientEncoding(conn_, "UTF8") != 0) unavailable("cannot set the client encoding to UTF8");
}

void PgConnection::prepare_statements() {
  for (const auto& s : statements_) check(PQprepare(conn_, s.name, s.sql, 0, nullptr), s.name);
}

void PgConnection::listen(std::string channel) {
  ensure_connected();
  check(PQexec(conn_, ("LISTEN " + channel).c_str()), "LISTEN");
  channels_.push_back(std::move(channel));
}

void PgConnection::notify(std::string_view channel, std::string_view payload) {
  exec("SELECT pg_notify($1, $2)", PgParams().str(channel).str(payload));
}

int PgConnection::socket() const { return conn_ ? PQsocket(conn_) : -1; }

bool PgConnection::take_notifications(std::vector<PgNotification>& out) {
  if (!conn_) return false;
  if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) {
    PQfinish(conn_);  // the server closed it: the next statement connects again
    conn_ = nullptr;
    return true;
  }
  bool any = false;
  while (PGnotify* n = PQnotifies(conn_)) {
    any = true;
    out.push_back(PgNotification{n->relname ? n->relname : "", n->extra ? n->extra : ""});
    PQfreemem(n);
  }
  return any;
}

void PgConnection::exec(const char* sql) {
  flush();
  ensure_connected();
  check(PQexec(conn_, sql), sql);
}

void PgConnection::exec(const char* sql, const PgParams& params) {
  each_row(sql, params, [](const PgRow&) {});
}

void PgConnection::run(const char* statement, const PgParams& params) {
  flush();
  ensure_connected();
  check(PQexecPrepared(conn_, statement, params.size(), params.values(), params.lengths(), params.formats(), 1),
        statement);
}

// Statements queued at most before they are sent anyway: the server's results for them must fit the socket's
// buffers while the client is still sending (a blocking connection in pipeline mode).
constexpr std::size_t kMaxQueued = 256;

void PgConnection::queue(const char* statement, PgParams params, bool prepared) {
  if (queue_.empty()) {
    ensure_connected();
    queue_generation_ = generation_;
  }
  queue_.push_back(Queued{statement, prepared, std::move(params)});
  if (queue_.size() >= kMaxQueued) flush();
}

void PgConnection::flush() {
  if (!queue_.empty()) pipeline(nullptr, nullptr, nullptr);
}

void PgConnection::pipeline(const char* sql, const PgParams* params,
                            const std::function<void(const PgRow&)>* each) {
  std::vector<Queued> queued;
  queued.swap(queue_);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK || queue_generation_ != generation_) {
    unavailable("the connection was lost with " + std::to_string(queued.size()) + " statements of a transaction");
  }
  if (!PQenterPipelineMode(conn_)) unavailable(one_line(PQerrorMessage(conn_)));
  bool sent = true;
  for (const auto& q : queued) {
    const PgParams& p = q.params;
    sent = sent && (q.prepared ? PQsendQueryPrepared(conn_, q.statement, p.size(), p.values(), p.lengths(),
                                                     p.formats(), 1)
                               : PQsendQueryParams(conn_, q.statement, p.size(), nullptr, p.values(), p.lengths(),
                                                   p.formats(), 1));
  }
  if (sql) sent = sent && PQsendQueryParams(conn_, sql, params->size(), nullptr, params->values(), params->lengths(),
                                            params->formats(), 1);
  if (!sent || !PQpipelineSync(conn_)) unavailable(one_line(PQerrorMessage(conn_)));
  // One result (then a null) per statement, then the sync. The first failure is thrown once all are read; the
  // statements after it were not run (PGRES_PIPELINE_ABORTED).
  std::string failure;
  bool failure_unavailable = false;
  const std::size_t statements = queued.size() + (sql ? 1 : 0);
  for (std::size_t i = 0; i < statements; ++i) {
    const char* what = i < queued.size() ? queued[i].statement : sql;
    while (PGresult* r = PQgetResult(conn_)) {
      const auto status = PQresultStatus(r);
      if (status == PGRES_TUPLES_OK && i == queued.size() && failure.empty() && each) {
        try {
          for (int row = 0; row < PQntuples(r); ++row) (*each)(PgRow(r, row));
        } catch (...) {
          PQclear(r);
          unavailable("a row reader failed in a pipeline");  // the pipeline's state is unknown: start over
        }
      } else if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_PIPELINE_ABORTED &&
                 failure.empty()) {
        failure = std::string(what) + ": " + one_line(PQresultErrorMessage(r));
        failure_unavailable = PQstatus(conn_) != CONNECTION_OK ||
                              out_of_reach(PQresultErrorField(r, PG_DIAG_SQLSTATE));
      }
      PQclear(r);
    }
    if (PQstatus(conn_) != CONNECTION_OK) unavailable(failure.empty() ? "the connection broke in a pipeline" : failure);
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || !PQexitPipelineMode(conn_)) {
    unavailable(failure.empty() ? "a pipeline ended out of step: " + one_line(PQerrorMessage(conn_)) : failure);
  }
  if (failure.empty()) return;
  if (failure_unavailable) unavailable(failure);
  throw StoreError("PostgreSQL: " + failure);
}

void PgConnection::each_row(const char* sql, const PgParams& params, const std::function<void(const PgRow&)>& each) {
  if (!queue_.empty()) return pipeline(sql, &params, &each);  // the queued statements and this one: one round trip
  ensure_connected();
  if (!PQsendQueryParams(conn_, sql, params.size(), nullptr, params.values(), params.lengths(), params.formats(), 1)) {
    unavailable(one_line(PQerrorMessage(conn_)));
  }
  PQsetSingleRowMode(conn_);
  // Every result is read to the end (libpq requires it) even after a failure; the first failure is thrown then.
  std::string failure;
  bool failure_unavailable = false;
  while (PGresult* r = PQgetResult(conn_)) {
    const auto status = PQresultStatus(r);
    if (status == PGRES_SINGLE_TUPLE && failure.empty()) {
      try {
        each(PgRow(r, 0));
      } catch (...) {
        PQclear(r);
        while (PGresult* rest = PQgetResult(conn_)) PQclear(rest);
        throw;
      }
    } else if (status != PGRES_SINGLE_TUPLE && status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK &&
               failure.empty()) {
      failure = std::string(sql) + ": " + one_line(PQresultErrorMessage(r));
      failure_unavailable = PQstatus(conn_) != CONNECTION_OK || out_of_reach(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    }
    PQclear(r);
  }
  if (failure.empty()) return;
  if (failure_unavailable) unavailable(failure);
  throw StoreError("PostgreSQL: " + failure);
}

void PgConnection::check(PGresult* result, const char* what) {
  const auto status = PQresultStatus(result);
  if (result && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)) {
    PQclear(result);
    return;
  }
  const std::string message = std::string(what) + ": " +
                              one_line(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  const bool gone = !result || PQstatus(conn_) != CONNECTION_OK ||
                    out_of_reach(PQresultErrorField(result, PG_DIAG_SQLSTATE));
  PQclear(result);
  if (gone) unavailable(message);
  throw StoreError("PostgreSQL: " + message);
}

void PgConnection::unavailable(const std::string& why) {
  // The connection is dropped: whatever it was doing is over (an open transaction rolls back on the server).
  PQfinish(conn_);
  conn_ = nullptr;
  last_error_ = why;
  throw StoreUnavailable("PostgreSQL is unreachable: " + why);
}

void PgConnection::rollback() noexcept {
  queue_.clear();  // what was not sent never ran
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
  PQclear(PQexec(conn_, "ROLLBACK"));
}

bool PgConnection::in_transaction() const {
  return conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

std::string PgConnection::describe() const {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri_.c_str(), &error);
  PQfreemem(error);
  if (!options) return "PostgreSQL (an unreadable URI)";
  std::string user, host, port, dbname;
  for (auto* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view k = o->keyword;
    if (k == "user") user = o->val;
    else if (k == "host") host = o->val;
    else if (k == "port") port = o->val;
    else if (k == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  return "postgresql://" + (user.empty() ? "" : user + "@") + host + (port.empty() ? "" : ":" + port) + "/" + dbname;
}

}  // namespace zshare::broker
