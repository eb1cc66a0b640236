// test_content_hash.cpp: content ids and Merkle roots against independent computations.
// Known SHA-256 vectors pin the digest; the tree shape is checked leaf by leaf.
#include "common/content_hash.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace zshare;

namespace {

std::string temp_file(const std::string& content) {
  char path[] = "/tmp/zshare-hash-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  ::close(fd);
  return path;
}

Hash pair(const Hash& a, const Hash& b) {
  std::uint8_t buf[64];
  std::memcpy(buf, a.data(), 32);
  std::memcpy(buf + 32, b.data(), 32);
  return sha256(buf, 64);
}

}  // namespace

TEST_CASE("sha256 matches the FIPS test vector", "[hash]") {
  CHECK(to_hex(sha256("abc", 3)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("", 0)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("a file of three chunks: cid is the whole digest, root the padded tree", "[hash]") {
  const std::uint32_t chunk = 16384;
  std::string content(chunk * 2 + 100, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 31 + 7);
  const std::string path = temp_file(content);
  const ContentHashes h = hash_file(path, chunk);
  std::remove(path.c_str());

  CHECK(h.size == content.size());
  CHECK(h.cid == sha256(content.data(), content.size()));
  REQUIRE(h.leaves.size() == 3);
  CHECK(h.leaves[2] == sha256(content.data() + 2 * chunk, 100));
  const Hash expected = pair(pair(h.leaves[0], h.leaves[1]), pair(h.leaves[2], Hash{}));
  CHECK(h.root == expected);
}

TEST_CASE("an empty file has the empty digest and a zero root, and one chunk is its own root", "[hash]") {
  const std::string empty = temp_file("");
  const ContentHashes e = hash_file(empty, 16384);
  std::remove(empty.c_str());
  CHECK(e.size == 0);
  CHECK(e.leaves.empty());
  CHECK(e.root == Hash{});
  CHECK(to_hex(e.cid) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  const std::string one = temp_file("abc");
  const ContentHashes o = hash_file(one, 16384);
  std::remove(one.c_str());
  CHECK(o.root == sha256("abc", 3));
}

TEST_CASE("a missing file is an error that names it", "[hash]") {
  CHECK_THROWS_WITH(hash_file("/nonexistent/zshare-file"), Catch::Contains("/nonexistent/zshare-file"));
}
