// test_content_hash.cpp: the Merkle tree against a naive one written here from the text of schemas/protocol.md
// (pad the leaves to a power of two, fold), for sizes around every boundary and every chunk size's layer.
// The independent vectors (a Python tree) are in tests/integration/content_id_test.py.
#include "common/content_hash.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <sys/stat.h>
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

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + 7 + i / 4099);
  return s;
}

// The naive tree: every leaf, padded with zero hashes to a power of two, folded pairwise to the top.
Hash naive_root(const std::string& data) {
  if (data.empty()) return Hash{};
  std::vector<Hash> level;
  for (std::size_t at = 0; at < data.size(); at += kBlockSize) {
    level.push_back(sha256(data.data() + at, std::min<std::size_t>(kBlockSize, data.size() - at)));
  }
  std::size_t width = 1;
  while (width < level.size()) width *= 2;
  level.resize(width, Hash{});
  while (level.size() > 1) {
    std::vector<Hash> up;
    for (std::size_t i = 0; i < level.size(); i += 2) up.push_back(hash_pair(level[i], level[i + 1]));
    level.swap(up);
  }
  return level[0];
}

ContentHashes hashed(const std::string& content, std::uint32_t chunk) {
  const std::string path = temp_file(content);
  ContentHashes h = hash_file(path, chunk);
  std::remove(path.c_str());
  return h;
}

}  // namespace

TEST_CASE("sha256 matches the FIPS test vector", "[hash]") {
  CHECK(to_hex(sha256("abc", 3)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("", 0)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("the content id is the padded tree's root, whatever the chunk size", "[hash]") {
  for (std::size_t size : {std::size_t{1}, std::size_t{16383}, std::size_t{16384}, std::size_t{16385},
                           std::size_t{3 * 16384}, std::size_t{5 * 16384 + 9}, std::size_t{(1 << 20) + 1},
                           std::size_t{3 * (1 << 20) - 1}}) {
    const std::string content = pattern(size);
    const Hash want = naive_root(content);
    for (std::uint32_t chunk : {16384u, 65536u, 1u << 20, 4u << 20}) {
      INFO("size " << size << ", chunk " << chunk);
      const ContentHashes h = hashed(content, chunk);
      CHECK(h.size == size);
      CHECK(h.cid == want);
      REQUIRE(h.layer.size() == chunk_count(size, chunk));
      CHECK(layer_root(h.layer, layer_height(size, chunk)) == want);
    }
  }
}

TEST_CASE("an empty file has a zero id and no chunks; a file of one block is that block's hash", "[hash]") {
  const ContentHashes e = hashed("", 16384);
  CHECK(e.size == 0);
  CHECK(e.layer.empty());
  CHECK(e.cid == Hash{});
  CHECK(hashed("abc", 1 << 20).cid == sha256("abc", 3));
}

TEST_CASE("a chunk's node is its blocks folded to the layer's height, the last one padded", "[hash]") {
  const std::uint32_t chunk = 65536;  // four blocks
  const std::string content = pattern(2 * chunk + 100);
  const ContentHashes h = hashed(content, chunk);
  REQUIRE(h.layer.size() == 3);
  const unsigned height = layer_height(content.size(), chunk);
  REQUIRE(height == 2);
  ChunkHasher hasher;
  for (std::size_t i = 0; i < 3; ++i) {
    const std::size_t len = std::min<std::size_t>(chunk, content.size() - i * chunk);
    CHECK(hasher.node(content.data() + i * chunk, len, height) == h.layer[i]);
  }
  const Hash last_leaf = sha256(content.data() + 2 * chunk, 100);
  CHECK(h.layer[2] == hash_pair(hash_pair(last_leaf, Hash{}), pad_hash(1)));
  CHECK(pad_hash(1) == hash_pair(Hash{}, Hash{}));
}

TEST_CASE("a coarser layer folds from a finer one, up to the root at most", "[hash]") {
  const std::string content = pattern(5 * 65536 + 77);  // 21 blocks: a tree of height 5
  const auto fine = hashed(content, 16384);
  const auto mid = hashed(content, 65536);
  const auto lone = hashed(content, 1 << 20);  // the whole file in one chunk
  CHECK(coarser_layer(fine.layer, 0, 4) == mid.layer);
  CHECK(coarser_layer(mid.layer, 2, 8) == lone.layer);
  REQUIRE(lone.layer.size() == 1);
  CHECK(lone.layer[0] == lone.cid);
}

TEST_CASE("a missing file is an error that names it", "[hash]") {
  CHECK_THROWS_WITH(hash_file("/nonexistent/zshare-file"), Catch::Contains("/nonexistent/zshare-file"));
}

TEST_CASE("a FIFO is refused at once, and a symlink when it must not be followed", "[hash]") {
  char dir[] = "/tmp/zshare-hash-dir-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string fifo = std::string(dir) + "/fifo", link = std::string(dir) + "/link";
  const std::string target = temp_file("abc");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  CHECK_THROWS_WITH(hash_file(fifo), Catch::Contains("not a regular file"));  // never waits for a writer
  CHECK_THROWS_WITH(hash_file(link, kDefaultChunkSize, false), Catch::Contains("a symlink"));
  CHECK(hash_file(link).cid == sha256("abc", 3));
  std::remove(fifo.c_str());
  std::remove(link.c_str());
  std::remove(target.c_str());
  ::rmdir(dir);
}
