// test_store.cpp: the SQLite store against a real file: what is committed comes back on reopen,
// what is rolled back does not, and the seq and stored replies persist.
#include "broker/store.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace zshare;
using namespace zshare::broker;

namespace {

struct TempDb {
  TempDb() {
    char dir[] = "/tmp/zshare-store-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    folder = dir;
    path = folder + "/broker.db";
  }
  ~TempDb() { std::system(("rm -rf '" + folder + "'").c_str()); }
  std::string folder;
  std::string path;
};

FileRecord file_named(const std::string& name) {
  FileRecord f;
  f.name = name;
  f.description = "desc of " + name;
  f.size = 123;
  f.chunk_size = 16384;
  f.cid.fill(0xab);
  f.root.fill(0xcd);
  return f;
}

}  // namespace

TEST_CASE("committed users, files, seq and replies survive reopening", "[store]") {
  TempDb tmp;
  {
    Store store(tmp.path);
    store.begin();
    store.insert_user("alice", "", "2026-01-01T00:00:00.000Z");
    store.insert_user("bob", "", "2026-01-01T00:00:00.000Z");
    store.insert_file("alice", file_named("a.txt"), "ts");
    store.insert_file("bob", file_named("b.txt"), "ts");
    store.insert_file("alice", file_named("c.txt"), "ts");
    store.delete_file("alice", "a.txt");
    store.put_reply("req-1", "reply-bytes");
    store.set_seq(41);
    store.commit();
  }
  Store store(tmp.path);
  FileIndex index;
  CHECK(store.load(index) == 41);
  CHECK(index.user_count() == 2);
  REQUIRE(index.file_count() == 2);
  const auto alice = index.find_user("alice");
  REQUIRE(alice);
  const auto c = index.find_file(*alice, "c.txt");
  REQUIRE(c);
  CHECK(index.file(*c).description == "desc of c.txt");
  CHECK(index.file(*c).cid == file_named("x").cid);
  CHECK(index.file(*c).root == file_named("x").root);
  CHECK_FALSE(index.find_file(*alice, "a.txt"));

  std::vector<std::pair<std::string, std::string>> replies;
  store.load_replies(10, [&](std::string id, std::string r) { replies.emplace_back(id, r); });
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].second == "reply-bytes");
}

TEST_CASE("a rolled-back transaction leaves nothing behind", "[store]") {
  TempDb tmp;
  {
    Store store(tmp.path);
    store.begin();
    store.insert_user("ghost", "", "ts");
    store.rollback();
  }
  Store store(tmp.path);
  FileIndex index;
  store.load(index);
  CHECK(index.user_count() == 0);
}

TEST_CASE("unregistering deletes the user's files, and replies are pruned to the newest", "[store]") {
  TempDb tmp;
  {
    Store store(tmp.path);
    store.begin();
    store.insert_user("alice", "", "ts");
    store.insert_file("alice", file_named("a.txt"), "ts");
    store.delete_user("alice");
    for (int i = 0; i < 20; ++i) store.put_reply("r" + std::to_string(i), "x");
    store.commit();
  }
  Store store(tmp.path);
  FileIndex index;
  store.load(index);
  CHECK(index.user_count() == 0);
  CHECK(index.file_count() == 0);
  std::vector<std::string> ids;
  store.load_replies(5, [&](std::string id, std::string) { ids.push_back(id); });
  CHECK(ids == std::vector<std::string>{"r15", "r16", "r17", "r18", "r19"});
}

TEST_CASE("a database path that cannot be opened is a clear error", "[store]") {
  CHECK_THROWS_WITH(Store("/nonexistent-dir/x/broker.db"), Catch::Contains("cannot open database"));
}
