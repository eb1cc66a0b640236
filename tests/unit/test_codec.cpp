// test_codec.cpp: msgpack map encoding and checked decoding: round trips, type errors, limits, garbage.
// Each failure must be a BadRequest with a sentence, never a crash or another exception type.
#include "common/codec.hpp"

#include <catch2/catch.hpp>

using namespace zshare;

TEST_CASE("a written map decodes with every field and type intact", "[codec]") {
  MapWriter inner;
  inner.put("x", std::uint64_t{7});
  std::vector<MapWriter> items(2);
  items[0].put("n", "a");
  items[1].put("n", "b");
  MapWriter w;
  w.put("s", "hello").put("u", std::uint64_t{42}).put("b", true).put_nil("z").put("m", inner).put("arr", items);
  const std::string bytes = w.finish();

  Message msg = Message::decode(bytes.data(), bytes.size());
  MapView root = msg.root();
  CHECK(root.str("s", 10) == "hello");
  CHECK(root.uint("u") == 42);
  CHECK(root.opt_bool("b") == true);
  CHECK(root.is_nil("z"));
  CHECK(root.map("m").uint("x") == 7);
  auto list = root.maps("arr");
  REQUIRE(list.size() == 2);
  CHECK(list[1].str("n", 1) == "b");
  CHECK_FALSE(root.opt_str("missing", 10).has_value());
}

TEST_CASE("wrong types, missing fields and long strings are BadRequest naming the field", "[codec]") {
  MapWriter w;
  w.put("user", std::uint64_t{5}).put("name", "abcdef");
  const std::string bytes = w.finish();
  Message msg = Message::decode(bytes.data(), bytes.size());
  CHECK_THROWS_WITH(msg.root().str("user", 64), Catch::Contains("'user'"));
  CHECK_THROWS_WITH(msg.root().str("other", 64), Catch::Contains("missing field 'other'"));
  CHECK_THROWS_WITH(msg.root().str("name", 3), Catch::Contains("longer than 3"));
  CHECK_THROWS_AS(msg.root().uint("name"), BadRequest);
}

TEST_CASE("bytes that are not exactly one msgpack map are refused", "[codec]") {
  const std::string garbage = "\xc1\xc1\xc1";
  CHECK_THROWS_AS(Message::decode(garbage.data(), garbage.size()), BadRequest);
  CHECK_THROWS_AS(Message::decode("", 0), BadRequest);

  MapWriter w;
  w.put("a", "b");
  std::string bytes = w.finish();
  CHECK_THROWS_WITH(Message::decode(bytes.data(), bytes.size() - 1), Catch::Contains("truncated"));
  std::string extra = bytes + "x";
  CHECK_THROWS_WITH(Message::decode(extra.data(), extra.size()), Catch::Contains("extra bytes"));

  const std::string array = "\x92\x01\x02";  // [1, 2]
  CHECK_THROWS_WITH(Message::decode(array.data(), array.size()), Catch::Contains("not a msgpack map"));
}

TEST_CASE("decode limits stop huge arrays and deep nesting before allocating", "[codec]") {
  // array32 header claiming 2^32-1 elements, with no elements behind it
  const std::string huge = std::string("\x81\xa1" "a" "\xdd\xff\xff\xff\xff", 8);
  CHECK_THROWS_AS(Message::decode(huge.data(), huge.size()), BadRequest);

  std::string deep(50, '\x91');  // [[[[...]]]]
  deep = "\x81\xa1" "a" + deep + "\x01";
  DecodeLimits limits;
  limits.depth = 4;
  CHECK_THROWS_WITH(Message::decode(deep.data(), deep.size(), limits), Catch::Contains("nested"));
}

TEST_CASE("a bin header written last takes a payload appended after it, read in place or copied", "[codec]") {
  const std::string payload(3000, 'x');
  std::string bytes = MapWriter().put("index", std::uint64_t{3}).put_bin_header("data", payload.size()).finish();
  bytes += payload;  // what the seeder reads from disk straight into the frame

  DecodeLimits in_place;
  in_place.bins_in_place = true;
  Message referenced = Message::decode(bytes.data(), bytes.size(), in_place);
  const std::string_view data = referenced.root().bin("data", payload.size());
  CHECK(data == payload);
  CHECK(data.data() == bytes.data() + bytes.size() - payload.size());  // no copy: it points into the frame
  CHECK(referenced.root().uint("index") == 3);

  Message copied = Message::decode(bytes.data(), bytes.size());
  CHECK(copied.root().bin("data", payload.size()) == payload);
  CHECK(copied.root().bin("data", payload.size()).data() != data.data());

  in_place.bin = payload.size() - 1;  // the bin limit still holds in place
  CHECK_THROWS_AS(Message::decode(bytes.data(), bytes.size(), in_place), BadRequest);
  CHECK_THROWS_WITH(Message::decode(bytes.data(), bytes.size() - 1, in_place), Catch::Contains("truncated"));
}

TEST_CASE("maps written in place into an array, and headers of 15, 16 and 65,536 fields", "[codec]") {
  MapWriter w;
  w.put_maps("files", 3, [](std::size_t i, MapWriter& m) {
    m.put("i", static_cast<std::uint64_t>(i));
    if (i == 1) m.put("extra", "x");  // maps of different sizes: each gets its own header
  });
  const std::string bytes = w.finish();
  Message msg = Message::decode(bytes.data(), bytes.size());
  const auto files = msg.root().maps("files");
  REQUIRE(files.size() == 3);
  CHECK(files[2].uint("i") == 2);
  CHECK(files[1].str("extra", 1) == "x");
  CHECK_FALSE(files[0].opt_str("extra", 1));

  for (std::size_t n : {std::size_t{15}, std::size_t{16}, std::size_t{65536}}) {
    MapWriter big;
    for (std::size_t k = 0; k < n; ++k) big.put("k" + std::to_string(k), static_cast<std::uint64_t>(k));
    const std::string b = big.finish();
    DecodeLimits limits;
    limits.map = 70000;
    Message m = Message::decode(b.data(), b.size(), limits);
    CHECK(m.root().uint("k" + std::to_string(n - 1)) == n - 1);
  }
}
