// send_budget.hpp: the bytes of chunk replies a seeder has queued for each downloader that libzmq has not sent
// yet, and the buffers those replies live in. A reply's buffer goes to libzmq with a free callback that gives its
// bytes back, so the count is exact whether the reply left or was dropped with its connection. A downloader
// that asks and never reads (the chunk size is its choice, up to 16 MiB) therefore holds at most its budget of
// the seeder's memory, not the socket's high-water mark times the largest chunk. Freed buffers are kept for the
// next replies (up to a bound): a fresh 1 MiB buffer per chunk cost the seeder a page fault per 4 KiB.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace zshare::peer {

class SendBudget {
 public:
  explicit SendBudget(std::int64_t bytes_per_downloader, std::size_t pooled_bytes = 64 << 20);

  // A message of `size` bytes counted against `downloader` (its routing id), or nothing when that downloader
  // already has its budget queued. Called by one thread; the bytes come back from whichever thread frees the
  // message, even after this object is gone (what it gives back to is shared with it).
  std::optional<zmq::message_t> allocate(const std::string& downloader, std::size_t size);
  // Forgets downloaders with nothing queued (call now and then).
  void sweep();

 private:
  struct Account {
    std::atomic<std::int64_t> queued{0};
  };
  struct Buffer {
    void* data = nullptr;
    std::size_t capacity = 0;
  };
  // Freed buffers, filled by whichever thread frees a message (libzmq's I/O thread).
  class Pool {
   public:
    explicit Pool(std::size_t limit) : limit_(limit) {}
    ~Pool();
    Buffer take(std::size_t capacity);
    void keep(Buffer buffer);

   private:
    const std::size_t limit_;
    std::mutex mutex_;
    std::vector<Buffer> buffers_;
    std::size_t bytes_ = 0;
  };
  // Made by the seeder's thread, read by the thread that frees the message. libzmq's queues order the two, but
  // a race detector cannot see inside libzmq: `made` (release/acquire) states the order in our own code.
  struct Release {
    std::shared_ptr<Pool> pool;
    std::shared_ptr<Account> account;
    std::int64_t bytes;
    std::size_t capacity;
    std::atomic<bool> made{false};
  };
  static void give_back(void* data, void* hint);

  const std::int64_t limit_;
  std::shared_ptr<Pool> pool_;
  std::unordered_map<std::string, std::shared_ptr<Account>> accounts_;
};

}  // namespace zshare::peer
