// progress_meter.hpp: the progress line `get` shows on a terminal, and the lines around it. The rate and ETA
// are measured over the last few seconds and count only bytes fetched by this run (not those resumed from a
// .part); whatever is printed next starts on its own line.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <ostream>
#include <string>

namespace zshare::peer {

struct Progress {
  std::string name;            // what is being fetched, as the user knows it
  std::uint64_t done = 0;      // verified bytes, resumed ones included
  std::uint64_t total = 0;
  std::uint64_t fetched = 0;   // verified bytes received by this run
  std::size_t sources = 0;     // sources in use
};

// The width of the terminal on `fd`; 0 when it is none or does not say.
std::size_t terminal_columns(int fd);

class ProgressMeter {
 public:
  using Clock = std::chrono::steady_clock;
  // `columns`: the terminal's width (0: unknown); the line is kept shorter than it, so redraws never wrap.
  explicit ProgressMeter(std::ostream& err, std::chrono::seconds window = std::chrono::seconds(5),
                         std::size_t columns = 0);

  // Redraws the line (at most every 200 ms unless the download is complete). `now` is for tests.
  void update(const Progress& p, Clock::time_point now = Clock::now());
  // Ends an open progress line, so a message that follows starts on its own line.
  void break_line();
  // Bytes per second over the window; 0 until two samples are at least 200 ms apart.
  double rate() const;
  // The line as it would be drawn (without the leading carriage return).
  std::string line(const Progress& p, Clock::time_point now) const;

 private:
  struct Sample {
    Clock::time_point at;
    std::uint64_t fetched;
  };
  std::ostream& err_;
  std::chrono::seconds window_;
  std::size_t columns_;
  std::string name_;
  Clock::time_point started_;
  Clock::time_point drawn_{};
  std::deque<Sample> samples_;
  bool open_ = false;
};

}  // namespace zshare::peer
