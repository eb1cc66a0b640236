// timestamp.hpp: the ISO 8601 UTC stamps (with milliseconds) that requests and events carry in `ts`.
// The time service (zshare-timesvc) gives the same format; this is the local-clock fallback.
#pragma once

#include <cstdint>
#include <string>

namespace zshare {

std::string iso8601_utc(std::int64_t epoch_ms);
std::string now_iso8601_utc();
std::int64_t now_epoch_ms();

}  // namespace zshare
