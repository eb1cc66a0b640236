// circuit.cpp: splice(2) socket -> pipe -> socket each way, paced by a ByteBucket shared by both ways (spend first,
// then pause reading until the debt is paid), with end of stream passed on as a half close.
#include "relay/circuit.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

namespace zshare::relay {

namespace {

constexpr int kRoundsPerPump = 16;           // bounds one circuit's turn, so one busy circuit cannot starve others
constexpr std::size_t kMinPacedSplice = 4096;
constexpr double kPacingSlice = 0.1;         // under a rate limit, one splice takes at most 0.1 s worth of bytes
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr std::size_t kDefaultPipeBytes = 65536;

void make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
}

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

}  // namespace

Circuit::Circuit(int seeder_fd, int downloader_fd, std::uint64_t rate, std::size_t pipe_bytes,
                 Clock::time_point now)
    : last_activity_(now) {
  ways_[kSeederEnd].from = ways_[kDownloaderEnd].to = seeder_fd;
  ways_[kDownloaderEnd].from = ways_[kSeederEnd].to = downloader_fd;
  for (Way& way : ways_) {
    make_pipe(way.pipe_read, way.pipe_write);
    // Refused above fs.pipe-max-size or the user's pipe pages: the pipe keeps the kernel's default size.
    if (pipe_bytes > 0) ::fcntl(way.pipe_write.get(), F_SETPIPE_SZ, static_cast<int>(pipe_bytes));
    const int capacity = ::fcntl(way.pipe_write.get(), F_GETPIPE_SZ);
    way.capacity = capacity > 0 ? static_cast<std::size_t>(capacity) : kDefaultPipeBytes;
  }
  splice_limit_ = std::min(ways_[0].capacity, ways_[1].capacity);
  if (rate > 0) {
    splice_limit_ = std::clamp(static_cast<std::size_t>(static_cast<double>(rate) * kPacingSlice), kMinPacedSplice,
                               splice_limit_);
    budget_.emplace(static_cast<double>(rate), static_cast<double>(splice_limit_));
  }
}

Circuit::State Circuit::pump(Clock::time_point now) {
  if (state_ != State::kOpen) return state_;
  if (paused_until_ && now >= *paused_until_) paused_until_.reset();
  for (int round = 0; round < kRoundsPerPump; ++round) {
    bool moved = false;
    for (Way& way : ways_) {
      moved = pump_way(way, now) || moved;
      if (state_ == State::kFailed) return state_;
    }
    if (!moved) break;
  }
  if (ways_[0].shut && ways_[1].shut) state_ = State::kDone;
  return state_;
}

std::uint32_t Circuit::wanted_events(int end) const {
  if (state_ != State::kOpen) return 0;
  const Way& outgoing = ways_[end];      // read from this end
  const Way& incoming = ways_[1 - end];  // written to this end
  std::uint32_t events = 0;
  if (readable(outgoing)) events |= EPOLLIN;
  if (incoming.in_pipe > 0) events |= EPOLLOUT;  // a drain stopped on a full socket buffer
  return events;
}

bool Circuit::readable(const Way& way) const {
  return !way.end_of_stream && !way.stalled && !paused_until_ && way.in_pipe < way.capacity;
}

bool Circuit::pump_way(Way& way, Clock::time_point now) {
  bool moved = false;
  if (readable(way)) moved = fill(way, now);
  if (state_ == State::kFailed) return moved;
  if (way.in_pipe > 0) moved = drain(way, now) || moved;
  if (state_ == State::kFailed) return moved;
  if (way.end_of_stream && way.in_pipe == 0 && !way.shut) {
    way.shut = true;
    if (::shutdown(way.to, SHUT_WR) != 0 && errno != ENOTCONN) fail("shutdown", errno);
  }
  return moved;
}

// Socket -> pipe: at most the pipe's room and one pacing slice; the bytes taken are charged to the rate budget.
bool Circuit::fill(Way& way, Clock::time_point now) {
  const std::size_t room = std::min(way.capacity - way.in_pipe, splice_limit_);
  const ssize_t got = ::splice(way.from, nullptr, way.pipe_write.get(), nullptr, room, kSpliceFlags);
  if (got > 0) {
    way.in_pipe += static_cast<std::size_t>(got);
    last_activity_ = now;
    if (budget_) {
      budget_->refill(now);
      const auto debt = budget_->take(static_cast<double>(got));
      if (debt.count() > 0) paused_until_ = now + std::chrono::duration_cast<Clock::duration>(debt);
    }
    return true;
  }
  if (got == 0) {
    way.end_of_stream = true;
    return true;
  }
  if (would_block(errno)) {
    // With bytes in the pipe the pipe may be full (it counts buffers, not bytes): wait for a drain before reading.
    way.stalled = way.in_pipe > 0;
    return false;
  }
  fail("read", errno);
  return false;
}

// Pipe -> socket: all the pipe holds, or what the socket's send buffer takes.
bool Circuit::drain(Way& way, Clock::time_point now) {
  const ssize_t sent = ::splice(way.pipe_read.get(), nullptr, way.to, nullptr, way.in_pipe, kSpliceFlags);
  if (sent > 0) {
    way.in_pipe -= static_cast<std::size_t>(sent);
    way.delivered += static_cast<std::uint64_t>(sent);
    way.stalled = false;
    last_activity_ = now;
    return true;
  }
  if (sent < 0 && !would_block(errno)) fail("write", errno);
  return false;
}

void Circuit::fail(const char* step, int error) {
  state_ = State::kFailed;
  failure_ = std::string(step) + ": " + std::strerror(error);
}

}  // namespace zshare::relay
