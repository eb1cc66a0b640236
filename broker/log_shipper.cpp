// log_shipper.cpp: read a batch (oldest first, after what was already acknowledged), LOG it, publish the
// acknowledged seq. After a restart unacknowledged-but-stored records are sent again: the logger dedupes. A store
// that cannot be read (PostgreSQL down) is waited out like a logger that is down: reported once, retried with backoff.
#include "broker/log_shipper.hpp"

#include "rpclog/rpclog_client.hpp"

#include <algorithm>
#include <vector>

namespace zshare::broker {

namespace {

constexpr std::size_t kBatch = 512;

}  // namespace

LogShipper::LogShipper(const Store& store, std::string logger_address, std::ostream& report)
    : store_(store), broker_id_(store.broker_id()), address_(std::move(logger_address)), report_(report) {
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

bool LogShipper::wait_for(std::chrono::milliseconds d, bool wake_on_notify) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, d, [this, wake_on_notify] { return stop_ || (wake_on_notify && dirty_); });
  dirty_ = false;
  return !stop_;
}

std::vector<rpclog::LogRecord> LogShipper::read_batch(std::unique_ptr<OutboxReader>& reader) {
  if (!reader) reader = store_.open_outbox_reader();
  try {
    auto batch = reader->read_after(acked_.load(), kBatch);
    for (auto& r : batch) r.broker_id = broker_id_;
    return batch;
  } catch (const StoreError&) {
    reader.reset();  // opened afresh on the next try
    throw;
  }
}

void LogShipper::run() {
  rpclog::RpcLogClient client(address_, std::chrono::seconds(2));
  std::unique_ptr<OutboxReader> reader;
  std::chrono::milliseconds backoff(100);
  bool outage_reported = false;
  std::string last_error;  // each different failure is reported once, so a new cause is never hidden
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) break;
    }
    try {
      const std::vector<rpclog::LogRecord> batch = read_batch(reader);
      if (batch.empty()) {
        if (!wait_for(std::chrono::seconds(1), true)) break;
        continue;
      }
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
      // The whole backoff: new records (notify) do not bring a logger or a database back sooner.
      if (!wait_for(backoff, false)) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }
}

}  // namespace zshare::broker
