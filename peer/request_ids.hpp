// request_ids.hpp: the request ids one client puts in `id`: a random 128-bit hex prefix, ':', a counter.
// Ids never repeat within a client, and the random prefix keeps clients (and restarts) apart (protocol.md).
#pragma once

#include <cstdint>
#include <string>

namespace zshare::peer {

class RequestIds {
 public:
  // A fresh random 32-hex-digit prefix from std::random_device.
  static RequestIds random();
  explicit RequestIds(std::string prefix) : prefix_(std::move(prefix)) {}

  // "<prefix>:<n>" with n = 1, 2, 3, ...
  std::string next();
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  std::uint64_t counter_ = 0;
};

}  // namespace zshare::peer
