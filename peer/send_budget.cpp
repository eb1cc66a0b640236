// send_budget.cpp: zmq_msg_init_data with a heap buffer and a Release record as the hint.
#include "peer/send_budget.hpp"

#include <cstdlib>
#include <new>

namespace zshare::peer {

std::optional<zmq::message_t> SendBudget::allocate(const std::string& downloader, std::size_t size) {
  auto& account = accounts_[downloader];
  if (!account) account = std::make_shared<Account>();
  const auto bytes = static_cast<std::int64_t>(size);
  if (account->queued.load() + bytes > limit_ && account->queued.load() > 0) return std::nullopt;
  void* buffer = std::malloc(size ? size : 1);
  if (!buffer) throw std::bad_alloc();
  account->queued += bytes;
  auto* release = new Release{account, bytes};
  return zmq::message_t(buffer, size, &SendBudget::give_back, release);
}

void SendBudget::give_back(void* data, void* hint) {
  auto* release = static_cast<Release*>(hint);
  release->account->queued -= release->bytes;
  delete release;
  std::free(data);
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

}  // namespace zshare::peer
