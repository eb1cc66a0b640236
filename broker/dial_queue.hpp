// dial_queue.hpp: the requests to dial out that wait for a seeder's next HEARTBEAT (transfer.md, "Paths"): a
// downloader that cannot reach the seeder asks the broker (DIAL); the seeder learns it from its heartbeat reply
// and connects out, to the downloader's callback or to the relay. A few per seeder, for a short while.
#pragma once

#include "broker/file_index.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace zshare::broker {

struct Dial {
  std::string callback;    // tcp://HOST:PORT the downloader listens on; "" when it gave none
  std::string relay;       // tcp://HOST:PORT of the relay; "" without one
  std::string relay_host;  // the seeder's side of the relay token ("s.<expiry>.<nonce>.<mac>")
};

class DialQueue {
 public:
  static constexpr std::size_t kMaxPerUser = 16;          // older ones give way: the downloader asks again
  static constexpr std::int64_t kLifetimeMs = 30000;      // one not fetched by then is dropped

  void push(UserId user, Dial dial, std::int64_t now_ms);
  // The dials waiting for `user` (oldest first), which leave the queue.
  std::vector<Dial> take(UserId user, std::int64_t now_ms);
  void forget(UserId user) { queued_.erase(user); }

 private:
  struct Entry {
    Dial dial;
    std::int64_t at_ms;
  };
  std::unordered_map<UserId, std::deque<Entry>> queued_;
};

}  // namespace zshare::broker
