// byte_size.hpp: sizes and rates as people write and read them: "10M", "1.5G", "512K" in (binary multiples, as
// aria2c and curl read them: K = 1024), "40.0 MiB" out. One parser for every --rate-limit of every program.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace zshare {

// "4096", "10K", "10M", "1.5G", "2T", with an optional "i" and/or "B" after the letter ("10MiB", "10MB"); no
// sign, no exponent. nullopt when the text is not such a size or the value does not fit in 64 bits.
std::optional<std::uint64_t> parse_byte_size(const std::string& text);

// 1536 -> "1.5 KiB"; below 1 KiB: "512 B".
std::string format_bytes(double bytes);

// Seconds as "0:07", "12:03", "1:02:03".
std::string format_duration(double seconds);

}  // namespace zshare
