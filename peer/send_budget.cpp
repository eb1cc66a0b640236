// send_budget.cpp: zmq_msg_init_data with a pooled buffer and a Release record as the hint. Buffers are sized
// in 64 KiB steps, so replies of one chunk size (whose maps differ by a few bytes) reuse each other's buffers.
#include "peer/send_budget.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace zshare::peer {

namespace {
constexpr std::size_t kStep = 64 * 1024;
}

SendBudget::SendBudget(std::int64_t bytes_per_downloader, std::size_t pooled_bytes)
    : limit_(bytes_per_downloader), pool_(std::make_shared<Pool>(pooled_bytes)) {}

std::optional<zmq::message_t> SendBudget::allocate(const std::string& downloader, std::size_t size) {
  auto& account = accounts_[downloader];
  if (!account) account = std::make_shared<Account>();
  const auto bytes = static_cast<std::int64_t>(size);
  if (account->queued.load() + bytes > limit_ && account->queued.load() > 0) return std::nullopt;
  const std::size_t capacity = std::max<std::size_t>(1, (size + kStep - 1) / kStep) * kStep;
  const Buffer buffer = pool_->take(capacity);
  account->queued += bytes;
  auto* release = new Release{pool_, account, bytes, buffer.capacity};
  release->made.store(true, std::memory_order_release);
  return zmq::message_t(buffer.data, size, &SendBudget::give_back, release);
}

void SendBudget::give_back(void* data, void* hint) {
  auto* release = static_cast<Release*>(hint);
  (void)release->made.load(std::memory_order_acquire);  // pairs with the store in allocate()
  release->account->queued -= release->bytes;
  release->pool->keep(Buffer{data, release->capacity});
  delete release;
}

void SendBudget::sweep() {
  for (auto it = accounts_.begin(); it != accounts_.end();) {
    if (it->second->queued.load() == 0 && it->second.use_count() == 1) {
      it = accounts_.erase(it);
    } else {
      ++it;
    }
  }
}

SendBudget::Pool::~Pool() {
  for (auto& b : buffers_) std::free(b.data);
}

SendBudget::Buffer SendBudget::Pool::take(std::size_t capacity) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = buffers_.begin(); it != buffers_.end(); ++it) {
      if (it->capacity != capacity) continue;
      const Buffer found = *it;
      *it = buffers_.back();
      buffers_.pop_back();
      bytes_ -= found.capacity;
      return found;
    }
  }
  void* data = std::malloc(capacity);
  if (!data) throw std::bad_alloc();
  return Buffer{data, capacity};
}

void SendBudget::Pool::keep(Buffer buffer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes_ + buffer.capacity <= limit_) {
      buffers_.push_back(buffer);
      bytes_ += buffer.capacity;
      return;
    }
  }
  std::free(buffer.data);
}

}  // namespace zshare::peer
