// progress_meter.cpp: samples of (time, bytes fetched) within the window give the rate; the line is padded so
// a shorter redraw fully covers the longer one before it.
#include "peer/progress_meter.hpp"

#include "common/byte_size.hpp"

#include <cstdio>

namespace zshare::peer {

ProgressMeter::ProgressMeter(std::ostream& err, std::chrono::seconds window)
    : err_(err), window_(window), started_(Clock::now()) {}

double ProgressMeter::rate() const {
  if (samples_.size() < 2) return 0;
  const auto& first = samples_.front();
  const auto& last = samples_.back();
  const double secs = std::chrono::duration<double>(last.at - first.at).count();
  if (secs < 0.2) return 0;
  return static_cast<double>(last.fetched - first.fetched) / secs;
}

std::string ProgressMeter::line(const Progress& p, Clock::time_point now) const {
  const double r = rate();
  const double pct = p.total ? 100.0 * static_cast<double>(p.done) / static_cast<double>(p.total) : 100.0;
  std::string eta = "--:--";
  if (p.done >= p.total) eta = "0:00";
  else if (r > 0) eta = format_duration(static_cast<double>(p.total - p.done) / r);
  char text[512];
  std::snprintf(text, sizeof text, "%s  %s / %s  %3.0f%%  %s/s  ETA %s  %zu source%s  %s", p.name.c_str(),
                format_bytes(static_cast<double>(p.done)).c_str(), format_bytes(static_cast<double>(p.total)).c_str(),
                pct, format_bytes(r).c_str(), eta.c_str(), p.sources, p.sources == 1 ? "" : "s",
                format_duration(std::chrono::duration<double>(now - started_).count()).c_str());
  return text;
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
