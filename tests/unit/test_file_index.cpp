// test_file_index.cpp: the in-memory index: users, sessions, per-user files, keyword and cid search,
// paging, and that removals leave no trace in search results.
#include "broker/file_index.hpp"

#include "common/keywords.hpp"

#include <catch2/catch.hpp>

using namespace zshare;
using namespace zshare::broker;

namespace {

FileRecord make_file(UserId user, std::string name, std::string description, std::uint8_t cid_byte) {
  FileRecord f;
  f.user = user;
  f.name = std::move(name);
  f.description = std::move(description);
  f.size = 1000;
  f.chunk_size = 16384;
  f.cid.fill(cid_byte);
  return f;
}

std::vector<std::string> names(const FileIndex& index, const std::vector<FileId>& ids) {
  std::vector<std::string> out;
  for (auto id : ids) out.push_back(index.file(id).name);
  return out;
}

}  // namespace

TEST_CASE("users register, connect and leave", "[index]") {
  FileIndex index;
  const UserId alice = index.add_user("alice");
  const UserId bob = index.add_user("bob");
  CHECK(index.find_user("alice") == alice);
  CHECK_FALSE(index.find_user("carol"));
  index.connect(bob, "tcp://127.0.0.1:2");
  index.connect(alice, "tcp://127.0.0.1:1");
  CHECK(index.connected_users() == std::vector<UserId>{alice, bob});
  CHECK(index.connected_count() == 2);
  index.disconnect(alice);
  CHECK(index.connected_users() == std::vector<UserId>{bob});
  CHECK(index.user(alice).endpoint.empty());
}

TEST_CASE("keyword search needs every word, ignores case and pages without repeats", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  for (int i = 0; i < 25; ++i) {
    index.add_file(make_file(u, "track-" + std::to_string(i) + ".flac", i % 2 ? "Blue River" : "red river", 1));
  }
  CHECK(index.search(keywords("BLUE river"), std::nullopt, 0, 100).files.size() == 12);
  CHECK(index.search(keywords("river"), std::nullopt, 0, 100).files.size() == 25);
  CHECK(index.search(keywords("green"), std::nullopt, 0, 100).files.empty());

  std::vector<FileId> seen;
  std::uint64_t cursor = 0;
  int pages = 0;
  for (;;) {
    auto page = index.search(keywords("river"), std::nullopt, cursor, 10);
    seen.insert(seen.end(), page.files.begin(), page.files.end());
    ++pages;
    if (!page.next) break;
    cursor = *page.next;
  }
  CHECK(pages == 3);
  REQUIRE(seen.size() == 25);
  CHECK(std::adjacent_find(seen.begin(), seen.end(), [](auto a, auto b) { return a >= b; }) == seen.end());
}

TEST_CASE("deleted files and unregistered users vanish from every lookup", "[index]") {
  FileIndex index;
  const UserId alice = index.add_user("alice");
  const UserId bob = index.add_user("bob");
  const FileId a1 = index.add_file(make_file(alice, "one.txt", "shared words", 9));
  index.add_file(make_file(alice, "two.txt", "shared words", 8));
  const FileId b1 = index.add_file(make_file(bob, "one.txt", "shared words", 9));

  Hash nine;
  nine.fill(9);
  CHECK(index.search({}, nine, 0, 10).files == std::vector<FileId>{a1, b1});
  CHECK(index.find_file(bob, "one.txt") == b1);

  index.remove_file(a1);
  CHECK_FALSE(index.find_file(alice, "one.txt"));
  CHECK(index.search({}, nine, 0, 10).files == std::vector<FileId>{b1});
  CHECK(names(index, index.files_of(alice)) == std::vector<std::string>{"two.txt"});

  CHECK(index.remove_user(alice) == 1);
  CHECK_FALSE(index.find_user("alice"));
  CHECK(index.file_count() == 1);
  CHECK(names(index, index.search(keywords("shared"), std::nullopt, 0, 10).files) ==
        std::vector<std::string>{"one.txt"});
}

TEST_CASE("search by cid and keywords together narrows to both", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  index.add_file(make_file(u, "a.iso", "debian installer", 1));
  const FileId b = index.add_file(make_file(u, "b.iso", "ubuntu installer", 2));
  Hash two;
  two.fill(2);
  CHECK(index.search(keywords("installer"), two, 0, 10).files == std::vector<FileId>{b});
  CHECK(index.search(keywords("debian"), two, 0, 10).files.empty());
}
