// dial_out_worker.cpp: one order at a time: choose the path (rendezvous.cpp), say so in one line, connect.
#include "peer/dial_out_worker.hpp"

#include <string>

namespace zshare::peer {

DialOutWorker::DialOutWorker(std::function<void(std::vector<DialOut>)> dial, std::ostream& report,
                             std::chrono::milliseconds callback_probe)
    : dial_(std::move(dial)), report_(report), probe_(callback_probe) {
  thread_ = std::thread([this] { run(); });
}

DialOutWorker::~DialOutWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void DialOutWorker::push(std::vector<DialOrder> orders) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& o : orders) {
      if (queue_.size() >= kMaxQueued) queue_.pop_front();
      queue_.push_back(std::move(o));
    }
  }
  wake_.notify_one();
}

void DialOutWorker::run() {
  for (;;) {
    DialOrder order;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      order = std::move(queue_.front());
      queue_.pop_front();
    }
    std::optional<DialOut> out = choose_path(order, probe_);
    const std::string line =
        !out ? "zshare-peer: a downloader asked us to dial out to " + order.callback +
                   ", which does not accept connections from here, and the broker named no relay\n"
        : out->proxy.empty() ? "zshare-peer: a downloader cannot reach us; dialling out to its callback " +
                                   out->endpoint + "\n"
                             : "zshare-peer: a downloader cannot reach us; dialling out through the relay " +
                                   order.relay + "\n";
    report_ << line << std::flush;
    if (out) dial_({std::move(*out)});
  }
}

}  // namespace zshare::peer
