// time_formats.hpp: the forms zshare-timesvc answers in, beyond common/timestamp.hpp's ISO 8601:
// the seeds' "DD/MM/YYYY HH:MM:SS" (UTC, whole seconds, truncated, never rounded up).
#pragma once

#include <cstdint>
#include <string>

namespace zshare::timesvc {

std::string seeds_utc(std::int64_t epoch_ms);

}  // namespace zshare::timesvc
