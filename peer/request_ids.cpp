// request_ids.cpp: the prefix is four 32-bit draws of std::random_device, printed as 32 lowercase hex digits.
// The counter starts at 1 so "<prefix>:0" is never sent.
#include "peer/request_ids.hpp"

#include <cstdio>
#include <random>

namespace zshare::peer {

RequestIds RequestIds::random() {
  std::random_device device;
  std::string prefix;
  for (int i = 0; i < 4; ++i) {
    char word[9];
    std::snprintf(word, sizeof word, "%08x", static_cast<unsigned>(device()));
    prefix += word;
  }
  return RequestIds(std::move(prefix));
}

std::string RequestIds::next() { return prefix_ + ":" + std::to_string(++counter_); }

}  // namespace zshare::peer
