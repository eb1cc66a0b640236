// validate.hpp: the protocol's rules for names, descriptions, hashes, endpoints and timestamps (schemas/protocol.md).
// Each check_* throws BadRequest naming the field and the rule; is_* only answers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace zshare {

using Hash = std::array<std::uint8_t, 32>;

bool is_valid_utf8(std::string_view s);
bool is_valid_user(std::string_view s);
bool is_valid_file_name(std::string_view s);

void check_user(std::string_view s);
void check_file_name(std::string_view s);
void check_description(std::string_view s);
void check_endpoint(std::string_view s);  // tcp://HOST:PORT, PORT from 1 to 65535
void check_chunk_size(std::uint64_t n);
bool valid_chunk_size(std::uint64_t n);  // a power of two from 16 KiB to 16 MiB
bool is_valid_timestamp(std::string_view s);  // YYYY-MM-DDTHH:MM:SS.mmmZ, a real date and time of day (UTC)
void check_timestamp(std::string_view s);

// 64 lowercase hex digits <-> 32 bytes. parse_hash throws BadRequest naming `field`.
Hash parse_hash(std::string_view hex, std::string_view field);
bool try_parse_hash(std::string_view hex, Hash& out);
std::string to_hex(const Hash& h);
using HexHash = std::array<char, 64>;
HexHash hex_of(const Hash& h);  // to_hex without the allocation

}  // namespace zshare
