// validate.cpp: byte-level checks of user input; no allocation beyond error messages.
// UTF-8 validation rejects overlong forms, surrogates and code points above U+10FFFF.
#include "common/validate.hpp"

#include "common/codec.hpp"
#include "common/protocol.hpp"

#include <algorithm>

namespace zshare {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) { ++p; continue; }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (static_cast<std::size_t>(end - p) < len) return false;
    for (std::size_t i = 1; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += len;
  }
  return true;
}

bool is_valid_user(std::string_view s) {
  if (s.empty() || s.size() > protocol::kMaxUserBytes) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_valid_file_name(std::string_view s) {
  if (s.empty() || s.size() > protocol::kMaxFileNameBytes) return false;
  if (s.find('/') != std::string_view::npos || s.find('\0') != std::string_view::npos) return false;
  if (s.find("..") != std::string_view::npos || s == ".") return false;
  return is_valid_utf8(s);
}

void check_user(std::string_view s) {
  if (!is_valid_user(s)) throw BadRequest("user name must be 1-64 characters of A-Z a-z 0-9 . _ -");
}

void check_file_name(std::string_view s) {
  if (!is_valid_file_name(s)) {
    throw BadRequest("file name must be 1-255 bytes of UTF-8 with no '/', NUL or '..'");
  }
}

void check_description(std::string_view s) {
  if (s.size() > protocol::kMaxDescriptionBytes || !is_valid_utf8(s)) {
    throw BadRequest("description must be at most 1024 bytes of UTF-8");
  }
}

namespace {

// The value of the `n` decimal digits at s[at, at + n), or -1 when one of them is not a digit.
int digits_at(std::string_view s, std::size_t at, std::size_t n) {
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// A TCP port as an endpoint ends: 1-5 digits, 1 to 65535.
bool is_port(std::string_view s) {
  const int port = s.empty() || s.size() > 5 ? -1 : digits_at(s, 0, s.size());
  return port >= 1 && port <= 65535;
}

}  // namespace

void check_endpoint(std::string_view s) {
  // Control bytes (NUL above all: ZeroMQ would dial the endpoint cut short at it) and spaces are never part of one.
  const bool plain = std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
  });
  const auto colon = s.rfind(':');  // the port's: an IPv6 host's own colons come before it, in brackets
  const bool host_and_port = s.rfind("tcp://", 0) == 0 && colon != std::string_view::npos && colon > 6 &&
                             is_port(s.substr(colon + 1));
  if (s.size() > protocol::kMaxEndpointBytes || !host_and_port || !is_valid_utf8(s) || !plain) {
    throw BadRequest("endpoint must look like tcp://HOST:PORT, PORT from 1 to 65535 (at most 255 bytes, no spaces "
                     "or control characters)");
  }
}

bool valid_chunk_size(std::uint64_t n) {
  return n >= protocol::kMinChunkSize && n <= protocol::kMaxChunkSize && (n & (n - 1)) == 0;
}

void check_chunk_size(std::uint64_t n) {
  if (!valid_chunk_size(n)) {
    throw BadRequest("chunk_size must be a power of two from 16384 to 16777216");
  }
}

bool is_valid_timestamp(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS.mmmZ: common/timestamp.hpp's form, which every zshare client and the time service send.
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' ||
      s[23] != 'Z') {
    return false;
  }
  const int year = digits_at(s, 0, 4), month = digits_at(s, 5, 2), day = digits_at(s, 8, 2);
  const int hour = digits_at(s, 11, 2), minute = digits_at(s, 14, 2), second = digits_at(s, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 59 || digits_at(s, 20, 3) < 0) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

void check_timestamp(std::string_view s) {
  if (!is_valid_timestamp(s)) {
    throw BadRequest("field 'ts' must be an ISO 8601 UTC time with milliseconds, YYYY-MM-DDTHH:MM:SS.mmmZ "
                     "(e.g. 2026-11-22T09:30:00.000Z)");
  }
}

bool try_parse_hash(std::string_view hex, Hash& out) {
  if (hex.size() != 64) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    int v = 0;
    for (std::size_t j = 0; j < 2; ++j) {
      char c = hex[2 * i + j];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else return false;
      v = v * 16 + d;
    }
    out[i] = static_cast<std::uint8_t>(v);
  }
  return true;
}

Hash parse_hash(std::string_view hex, std::string_view field) {
  Hash h{};
  if (!try_parse_hash(hex, h)) {
    throw BadRequest("field '" + std::string(field) + "' must be 64 lowercase hex digits");
  }
  return h;
}

HexHash hex_of(const Hash& h) {
  static const char* digits = "0123456789abcdef";
  HexHash out;
  for (std::size_t i = 0; i < 32; ++i) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 0xF];
  }
  return out;
}

std::string to_hex(const Hash& h) {
  const HexHash hex = hex_of(h);
  return std::string(hex.data(), hex.size());
}

}  // namespace zshare
