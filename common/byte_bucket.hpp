// byte_bucket.hpp: a token bucket counted in bytes, for the transfer caps (serve --rate-limit spends first and
// sleeps off its debt; get --rate-limit asks for a chunk only once the bucket holds it). `rate` bytes a second
// flow in, up to `room`; it starts empty.
#pragma once

#include <algorithm>
#include <chrono>

namespace zshare {

class ByteBucket {
 public:
  using Clock = std::chrono::steady_clock;

  ByteBucket(double rate, double room) : rate_(rate), room_(room) {}

  // Adds what the rate earned since the last refill, up to the room.
  void refill(Clock::time_point now = Clock::now()) {
    tokens_ = std::min(room_, tokens_ + rate_ * std::chrono::duration<double>(now - refilled_).count());
    refilled_ = now;
  }
  // Takes `bytes` when the bucket holds them; false (and nothing taken) otherwise.
  bool try_take(double bytes) {
    if (tokens_ < bytes) return false;
    tokens_ -= bytes;
    return true;
  }
  // Takes `bytes` even into debt; returns how long until the debt is paid off (zero when there is none).
  std::chrono::duration<double> take(double bytes) {
    tokens_ -= bytes;
    return std::chrono::duration<double>(tokens_ < 0 ? -tokens_ / rate_ : 0.0);
  }

 private:
  double rate_;
  double room_;
  double tokens_ = 0;
  Clock::time_point refilled_ = Clock::now();
};

}  // namespace zshare
