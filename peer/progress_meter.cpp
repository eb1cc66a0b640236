// progress_meter.cpp: samples of (time, bytes fetched) within the window give the rate; the line is padded so
// a shorter redraw fully covers the longer one before it.
#include "peer/progress_meter.hpp"

#include "common/byte_size.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>

#include <sys/ioctl.h>

namespace zshare::peer {

std::size_t terminal_columns(int fd) {
  struct winsize terminal {};
  return ::ioctl(fd, TIOCGWINSZ, &terminal) == 0 ? terminal.ws_col : 0;
}

ProgressMeter::ProgressMeter(std::ostream& err, std::chrono::seconds window, std::size_t columns)
    : err_(err), window_(window), columns_(columns), started_(Clock::now()) {}

double ProgressMeter::rate() const {
  if (samples_.size() < 2) return 0;
  const auto& first = samples_.front();
  const auto& last = samples_.back();
  const double secs = std::chrono::duration<double>(last.at - first.at).count();
  if (secs < 0.2) return 0;
  return static_cast<double>(last.fetched - first.fetched) / secs;
}

std::string ProgressMeter::line(const Progress& p, Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  double r = rate();
  if (r == 0 && elapsed > 0 && p.done >= p.total) r = static_cast<double>(p.fetched) / elapsed;  // too short a window
  // Rounded down, so 100% means complete; the ETA rounded up, so 0:00 means done.
  const double pct = p.total ? std::floor(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total)) : 100.0;
  std::string eta = "--:--";
  if (p.done >= p.total) eta = "0:00";
  else if (r > 0) eta = format_duration(std::ceil(static_cast<double>(p.total - p.done) / r));
  char tail[256];
  std::snprintf(tail, sizeof tail, "  %s / %s  %3.0f%%  %s/s  ETA %s  %zu source%s  %s",
                format_bytes(static_cast<double>(p.done)).c_str(), format_bytes(static_cast<double>(p.total)).c_str(),
                pct, format_bytes(r).c_str(), eta.c_str(), p.sources, p.sources == 1 ? "" : "s",
                format_duration(elapsed).c_str());
  std::string name = p.name;
  const std::size_t room = columns_ > std::strlen(tail) + 4 ? columns_ - std::strlen(tail) - 4 : 0;
  if (columns_ > 0 && name.size() > room) {  // one terminal line: the name gives way, keeping its end
    name = room > 3 ? "..." + name.substr(name.size() - (room - 3)) : name.substr(0, room);
  }
  return name + tail;
}

void ProgressMeter::update(const Progress& p, Clock::time_point now) {
  if (p.name != name_ || (!samples_.empty() && p.fetched < samples_.back().fetched)) {  // a new file
    break_line();
    name_ = p.name;
    started_ = now;
    samples_.clear();
  }
  samples_.push_back(Sample{now, p.fetched});
  while (samples_.size() > 2 && now - samples_[1].at >= window_) samples_.pop_front();
  const bool complete = p.done >= p.total;
  if (!complete && open_ && now - drawn_ < std::chrono::milliseconds(200)) return;
  drawn_ = now;
  err_ << '\r' << line(p, now) << "   " << std::flush;
  open_ = true;
}

void ProgressMeter::break_line() {
  if (!open_) return;
  err_ << '\n' << std::flush;
  open_ = false;
}

}  // namespace zshare::peer
