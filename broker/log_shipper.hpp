// log_shipper.hpp: drains the broker's durable outbox to zshare-rpclog in batches, on its own thread and
// its own connection to the store (Store::open_outbox_reader), never on the request path. A record leaves the outbox (deleted by the
// broker's loop) only after the logger acknowledged it; while the logger is down records wait, and they are delivered in order when it returns.
#pragma once

#include "broker/store.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace zshare::broker {

class LogShipper {
 public:
  // `store` outlives the shipper; only its broker id and a reader of its own are used, from the shipper's thread.
  LogShipper(const Store& store, std::string logger_address, std::ostream& report);
  ~LogShipper();  // stops the thread; what is not shipped stays in the outbox for the next start
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  void notify();  // new records were committed
  std::uint64_t shipped() const { return shipped_.load(); }
  // Every outbox record up to this seq is stored by the logger: the broker deletes them in its own
  // transactions (one writer, so the shipper never contends for the store's write locks).
  std::uint64_t acked_through() const { return acked_.load(); }

 private:
  void run();
  std::vector<rpclog::LogRecord> read_batch(std::unique_ptr<OutboxReader>& reader);
  // Waits `d`, or less when notified (with `wake_on_notify`) or stopping; false when stopping.
  bool wait_for(std::chrono::milliseconds d, bool wake_on_notify);

  const Store& store_;
  std::string broker_id_;
  std::string address_;
  std::ostream& report_;
  std::atomic<std::uint64_t> shipped_{0};
  std::atomic<std::uint64_t> acked_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool dirty_ = true;  // ship what an earlier run left behind
  std::thread thread_;
};

}  // namespace zshare::broker
