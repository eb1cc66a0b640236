// byte_size.cpp: the parser reads digits, at most one decimal point, then a unit letter from "KMGT" (either
// case) with optional "i" and "B"; the product is rounded down and checked against 2^64.
#include "common/byte_size.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstdio>

namespace zshare {

std::optional<std::uint64_t> parse_byte_size(const std::string& text) {
  std::size_t i = 0;
  std::string number;
  bool point = false;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !point))) {
    point = point || text[i] == '.';
    number += text[i++];
  }
  if (number.empty() || number == ".") return std::nullopt;
  double factor = 1;
  if (i < text.size()) {
    const std::string units = "KMGT";
    const auto at = units.find(static_cast<char>(std::toupper(static_cast<unsigned char>(text[i]))));
    if (at != std::string::npos) {
      factor = std::pow(1024.0, static_cast<double>(at + 1));
      ++i;
      if (i < text.size() && (text[i] == 'i' || text[i] == 'I')) ++i;
    }
    if (i < text.size() && (text[i] == 'B' || text[i] == 'b')) ++i;
  }
  if (i != text.size()) return std::nullopt;
  errno = 0;
  const double parsed = std::strtod(number.c_str(), nullptr);  // digits and one point: always a number, maybe inf
  const double value = std::floor(parsed * factor);
  if (errno == ERANGE || !(value < 18446744073709551616.0)) return std::nullopt;  // past 2^64

  return static_cast<std::uint64_t>(value);
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  else std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
  return buf;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(seconds < 0 ? 0 : seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

}  // namespace zshare
