// send_budget.hpp: the bytes of chunk replies a seeder has queued for each downloader that libzmq has not sent
// yet. A reply's buffer goes to libzmq with a free callback that gives its bytes back, so the count is exact
// whether the reply left or was dropped with its connection. A downloader that asks and never reads (the chunk
// size is its choice, up to 16 MiB) therefore holds at most its budget of the seeder's memory, not the socket's
// high-water mark times the largest chunk.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace zshare::peer {

class SendBudget {
 public:
  explicit SendBudget(std::int64_t bytes_per_downloader) : limit_(bytes_per_downloader) {}

  // A message of `size` bytes counted against `downloader` (its routing id), or nothing when that downloader
  // already has its budget queued. Used by one thread; the bytes come back from whichever thread frees them.
  std::optional<zmq::message_t> allocate(const std::string& downloader, std::size_t size);
  // Forgets downloaders with nothing queued (call now and then).
  void sweep();

 private:
  struct Account {
    std::atomic<std::int64_t> queued{0};
  };
  struct Release {
    std::shared_ptr<Account> account;
    std::int64_t bytes;
  };
  static void give_back(void* data, void* hint);

  const std::int64_t limit_;
  std::unordered_map<std::string, std::shared_ptr<Account>> accounts_;
};

}  // namespace zshare::peer
