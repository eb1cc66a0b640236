// log_shipper.cpp: read a batch (oldest first, after what was already acknowledged), LOG it, publish the
// acknowledged seq. After a restart unacknowledged-but-stored records are sent again: the logger dedupes.
#include "broker/log_shipper.hpp"

#include "rpclog/rpclog_client.hpp"

#include <sqlite3.h>

#include <vector>

namespace zshare::broker {

namespace {

constexpr int kBatch = 512;

std::string text(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

}  // namespace

LogShipper::LogShipper(std::string db_path, std::string broker_id, std::string logger_address, std::ostream& report)
    : db_path_(std::move(db_path)), broker_id_(std::move(broker_id)), address_(std::move(logger_address)),
      report_(report) {
  std::string host;
  std::uint16_t port = 0;
  rpclog::split_host_port(address_, host, port);  // a bad address fails at start-up, not in the thread
  thread_ = std::thread([this] { run(); });
}

LogShipper::~LogShipper() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LogShipper::notify() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dirty_ = true;
  }
  wake_.notify_one();
}

bool LogShipper::wait_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, d, [this] { return stop_ || dirty_; });
  dirty_ = false;
  return !stop_;
}

void LogShipper::run() {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    report_ << "zshare-broker: log shipper cannot open " << db_path_ << ": " << sqlite3_errmsg(db) << std::endl;
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* select = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT seq, ts, ts_local, user, operation, args FROM outbox WHERE seq > ?2 ORDER BY seq LIMIT ?1",
                         -1, &select, nullptr) != SQLITE_OK) {
    report_ << "zshare-broker: log shipper cannot read the outbox: " << sqlite3_errmsg(db) << std::endl;
    sqlite3_close(db);
    return;
  }

  rpclog::RpcLogClient client(address_, std::chrono::seconds(2));
  std::chrono::milliseconds backoff(100);
  bool outage_reported = false;
  std::string last_error;  // each different failure is reported once, so a new cause is never hidden
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) break;
    }
    std::vector<rpclog::LogRecord> batch;
    sqlite3_bind_int(select, 1, kBatch);
    sqlite3_bind_int64(select, 2, static_cast<sqlite3_int64>(acked_.load()));
    while (sqlite3_step(select) == SQLITE_ROW) {
      rpclog::LogRecord r;
      r.broker_id = broker_id_;
      r.seq = static_cast<std::uint64_t>(sqlite3_column_int64(select, 0));
      r.timestamp = text(select, 1);
      r.ts_local = sqlite3_column_int(select, 2) != 0;
      r.user = text(select, 3);
      r.operation = text(select, 4);
      r.args = text(select, 5);
      batch.push_back(std::move(r));
    }
    sqlite3_reset(select);
    if (batch.empty()) {
      if (!wait_for(std::chrono::seconds(1))) break;
      continue;
    }
    try {
      const std::uint64_t acked = client.log(batch);
      if (acked > acked_.load()) acked_.store(acked);
      shipped_ += batch.size();
      if (outage_reported) report_ << "zshare-broker: logger " << address_ << " is back; shipping" << std::endl;
      outage_reported = false;
      last_error.clear();
      backoff = std::chrono::milliseconds(100);
    } catch (const std::exception& e) {
      if (!outage_reported || last_error != e.what()) {
        report_ << "zshare-broker: operations log waits in the outbox: " << e.what() << std::endl;
        outage_reported = true;
        last_error = e.what();
      }
      if (!wait_for(backoff)) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }
  sqlite3_finalize(select);
  sqlite3_close(db);
}

}  // namespace zshare::broker
