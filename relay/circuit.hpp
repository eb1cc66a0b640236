// circuit.hpp: one paired circuit of zshare-relay: the seeder's and the downloader's sockets and, each way, a pipe
// that splice(2) fills from one socket and drains into the other, so payload never enters user space.
// Invariants: a socket is read only while the pipe it feeds has room and the circuit's rate budget is not in debt
// (backpressure: a slow reader stops its writer's side, the relay holds at most one pipe of bytes each way); an end
// of stream is passed on as shutdown(SHUT_WR) once the pipe before it is empty; the circuit is done when both ways
// are, failed at the first socket error. The sockets are not owned: the relay closes them.
#pragma once

#include "common/byte_bucket.hpp"
#include "relay/unique_fd.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace zshare::relay {

class Circuit {
 public:
  using Clock = ByteBucket::Clock;
  enum class State { kOpen, kDone, kFailed };
  static constexpr int kSeederEnd = 0;
  static constexpr int kDownloaderEnd = 1;

  // `rate`: bytes a second both ways together, 0 for no limit. `pipe_bytes`: each pipe's size to ask for, 0 for the
  // kernel's default (64 KiB). Throws std::system_error when a pipe cannot be made.
  Circuit(int seeder_fd, int downloader_fd, std::uint64_t rate, std::size_t pipe_bytes, Clock::time_point now);

  // Moves what can move both ways now, without blocking; returns the circuit's state afterwards.
  State pump(Clock::time_point now);
  // The epoll events (EPOLLIN, EPOLLOUT) the socket of `end` should be watched for after a pump.
  std::uint32_t wanted_events(int end) const;

  State state() const { return state_; }
  const std::string& failure() const { return failure_; }  // kFailed: the socket error, e.g. "Connection reset"
  // Set while the rate budget is in debt: no socket is read before this time (pump again then).
  std::optional<Clock::time_point> paused_until() const { return paused_until_; }
  Clock::time_point last_activity() const { return last_activity_; }
  std::uint64_t bytes_from(int end) const { return ways_[end].delivered; }  // bytes delivered from `end` to the other

 private:
  // One way: the socket read, the pipe between, the socket written.
  struct Way {
    int from = -1;
    int to = -1;
    UniqueFd pipe_read;
    UniqueFd pipe_write;
    std::size_t capacity = 0;  // the pipe's size
    std::size_t in_pipe = 0;   // bytes spliced in, not yet out
    bool stalled = false;      // the last splice in found the pipe full (or the socket empty) with bytes in it
    bool end_of_stream = false;
    bool shut = false;         // end of stream passed on (shutdown of `to` for writing)
    std::uint64_t delivered = 0;
  };

  bool pump_way(Way& way, Clock::time_point now);  // one round each way; true when a byte moved
  bool fill(Way& way, Clock::time_point now);
  bool drain(Way& way, Clock::time_point now);
  bool readable(const Way& way) const;
  void fail(const char* step, int error);

  std::array<Way, 2> ways_;  // [kSeederEnd]: seeder -> downloader; [kDownloaderEnd]: downloader -> seeder
  std::size_t splice_limit_ = 0;  // bytes one splice in may take (smaller under a rate limit, for smooth pacing)
  std::optional<ByteBucket> budget_;
  std::optional<Clock::time_point> paused_until_;
  Clock::time_point last_activity_;
  State state_ = State::kOpen;
  std::string failure_;
};

}  // namespace zshare::relay
