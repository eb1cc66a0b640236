// test_validate.cpp: the protocol's name, description, hash, endpoint and timestamp rules at their edges.
// The rules are in schemas/protocol.md; these tests pin them. Also the endpoint lists of --broker (failover).
#include "common/codec.hpp"
#include "common/endpoint_list.hpp"
#include "common/timestamp.hpp"
#include "common/validate.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace zshare;

TEST_CASE("user names are 1-64 of A-Z a-z 0-9 . _ -", "[validate]") {
  CHECK(is_valid_user("alice"));
  CHECK(is_valid_user("a.b_c-9"));
  CHECK(is_valid_user(std::string(64, 'x')));
  CHECK_FALSE(is_valid_user(""));
  CHECK_FALSE(is_valid_user(std::string(65, 'x')));
  CHECK_FALSE(is_valid_user("al ice"));
  CHECK_FALSE(is_valid_user("al/ice"));
  CHECK_FALSE(is_valid_user("ålice"));
  CHECK_THROWS_AS(check_user("bad name"), BadRequest);
}

TEST_CASE("file names: 1-255 bytes of UTF-8, no slash, NUL or ..", "[validate]") {
  CHECK(is_valid_file_name("song.mp3"));
  CHECK(is_valid_file_name("canción.flac"));
  CHECK(is_valid_file_name(std::string(255, 'n')));
  CHECK_FALSE(is_valid_file_name(""));
  CHECK_FALSE(is_valid_file_name(std::string(256, 'n')));
  CHECK_FALSE(is_valid_file_name("a/b"));
  CHECK_FALSE(is_valid_file_name(".."));
  CHECK_FALSE(is_valid_file_name("x..y"));
  CHECK_FALSE(is_valid_file_name("."));
  CHECK_FALSE(is_valid_file_name(std::string("a\0b", 3)));
  CHECK_FALSE(is_valid_file_name("bad\xff"));
}

TEST_CASE("UTF-8 validation rejects overlongs, surrogates and truncation", "[validate]") {
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("\xe2\x82\xac"));          // euro sign
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));      // emoji
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));        // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));    // surrogate
  CHECK_FALSE(is_valid_utf8("\xe2\x82"));        // truncated
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
}

TEST_CASE("hashes are 64 lowercase hex digits and round-trip", "[validate]") {
  Hash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(i * 7);
  const std::string hex = to_hex(h);
  CHECK(hex.size() == 64);
  CHECK(parse_hash(hex, "cid") == h);
  const HexHash fixed = hex_of(h);
  CHECK(std::string(fixed.data(), fixed.size()) == hex);
  CHECK(hex.substr(0, 6) == "00070e");
  std::string upper = hex;
  upper[1] = 'A';
  Hash out{};
  CHECK_FALSE(try_parse_hash(std::string(63, 'a'), out));
  CHECK_FALSE(try_parse_hash(std::string(64, 'g'), out));
  CHECK_THROWS_WITH(parse_hash("0E" + std::string(62, '0'), "root"), Catch::Contains("'root'"));
}

TEST_CASE("endpoints and chunk sizes", "[validate]") {
  CHECK_NOTHROW(check_endpoint("tcp://127.0.0.1:4000"));
  CHECK_THROWS_AS(check_endpoint("ipc:///tmp/x"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://host"), BadRequest);
  CHECK_THROWS_AS(check_endpoint(std::string("tcp://a\0b:1", 12)), BadRequest);  // ZeroMQ would dial "tcp://a"
  CHECK_THROWS_AS(check_endpoint("tcp://a b:1"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://ab:1\n"), BadRequest);
  // HOST:PORT: a host, and a port from 1 to 65535 after the last ':' (an IPv6 host's own colons are in brackets).
  CHECK_NOTHROW(check_endpoint("tcp://[::1]:5555"));
  CHECK_NOTHROW(check_endpoint("tcp://peer.example.net:65535"));
  CHECK_THROWS_AS(check_endpoint("tcp://host:"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://:6000"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://host:http"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://host:0"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://host:65536"), BadRequest);
  CHECK_THROWS_AS(check_endpoint("tcp://host:000001"), BadRequest);
  CHECK_NOTHROW(check_chunk_size(16384));
  CHECK_NOTHROW(check_chunk_size(1 << 20));
  CHECK_THROWS_AS(check_chunk_size(1000), BadRequest);
  CHECK_THROWS_AS(check_chunk_size(8192), BadRequest);
  CHECK_THROWS_AS(check_chunk_size(32 << 20), BadRequest);
}

TEST_CASE("timestamps: ISO 8601 UTC with milliseconds, a real date and time of day", "[validate]") {
  CHECK(is_valid_timestamp("2026-11-22T09:30:00.000Z"));
  CHECK(is_valid_timestamp("1999-12-31T23:59:59.999Z"));
  CHECK(is_valid_timestamp("2000-02-29T00:00:00.000Z"));  // 2000 is a leap year
  CHECK(is_valid_timestamp("2028-02-29T12:00:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("2100-02-29T12:00:00.000Z"));  // 2100 is not
  CHECK_FALSE(is_valid_timestamp("2026-04-31T12:00:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("2026-00-10T12:00:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("2026-11-00T12:00:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("2026-11-22T24:00:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("2026-11-22T23:60:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("2026-11-22T23:59:60.000Z"));
  CHECK_FALSE(is_valid_timestamp("2026-11-22T09:30:00Z"));         // no milliseconds
  CHECK_FALSE(is_valid_timestamp("2026-11-22T09:30:00.0000Z"));    // four digits
  CHECK_FALSE(is_valid_timestamp("2026-11-22T09:30:00.000+00:00"));
  CHECK_FALSE(is_valid_timestamp("2026-11-22t09:30:00.000z"));
  CHECK_FALSE(is_valid_timestamp("2026-11-22T09:3a:00.000Z"));
  CHECK_FALSE(is_valid_timestamp("not-a-date"));
  CHECK_FALSE(is_valid_timestamp(""));
  CHECK_THROWS_WITH(check_timestamp("not-a-date"), Catch::Contains("YYYY-MM-DDTHH:MM:SS.mmmZ"));
  CHECK(is_valid_timestamp(iso8601_utc(1795000000123)));  // what this side sends (common/timestamp.hpp)
}

TEST_CASE("an endpoint list is endpoints separated by commas, each checked, the bad one named", "[validate]") {
  using List = std::vector<std::string>;
  CHECK(parse_endpoint_list("tcp://a:5555") == List{"tcp://a:5555"});
  CHECK(parse_endpoint_list("tcp://a:5555,tcp://[::1]:5555") == List{"tcp://a:5555", "tcp://[::1]:5555"});
  CHECK(parse_endpoint_list(" tcp://a:1 ,\ttcp://b:2") == List{"tcp://a:1", "tcp://b:2"});
  CHECK_THROWS_WITH(parse_endpoint_list("tcp://a:1,tcp://b"), Catch::Contains("'tcp://b' (entry 2 of 2)"));
  CHECK_THROWS_WITH(parse_endpoint_list("tcp://a:1,,tcp://b:2"), Catch::Contains("an empty entry (entry 2 of 3)"));
  CHECK_THROWS_WITH(parse_endpoint_list("tcp://a:1,"), Catch::Contains("an empty entry (entry 2 of 2)"));
  CHECK_THROWS_WITH(parse_endpoint_list("ipc:///x"), Catch::Contains("'ipc:///x' is not an endpoint: endpoint must"));
  CHECK_THROWS_AS(parse_endpoint_list(""), std::invalid_argument);

  const List three{"tcp://a:1", "tcp://b:2", "tcp://c:3"};
  CHECK(rotated(three, 0) == three);
  CHECK(rotated(three, 2) == List{"tcp://c:3", "tcp://a:1", "tcp://b:2"});
  CHECK(joined(three) == "tcp://a:1, tcp://b:2, tcp://c:3");
}
