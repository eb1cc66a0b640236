// time_formats.cpp: gmtime_r and snprintf: no locale, no time zone database.
// Negative epochs (before 1970) are floored to the second so the date and the ISO form agree.
#include "timesvc/time_formats.hpp"

#include <cstdio>
#include <ctime>

namespace zshare::timesvc {

std::string seeds_utc(std::int64_t epoch_ms) {
  std::int64_t secs = epoch_ms / 1000;
  if (epoch_ms % 1000 < 0) --secs;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%02d/%02d/%04d %02d:%02d:%02d", tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace zshare::timesvc
