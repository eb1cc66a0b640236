// test_file_index.cpp: the in-memory index: users, sessions, per-user files, keyword and cid search,
// paging, and that removals leave no trace in search results; a randomized comparison with a brute-force search.
#include "broker/file_index.hpp"

#include "common/keywords.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

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
  for (auto id : ids) out.push_back(std::string(index.file(id).name));
  return out;
}

Hash cid_of(std::uint8_t b) {
  Hash h;
  h.fill(b);
  return h;
}

// Every page of a search, following the cursor; checks the ids ascend across pages.
std::vector<FileId> all_pages(const FileIndex& index, const std::vector<std::string>& words,
                              const std::optional<Hash>& cid, std::size_t limit, bool online_only = false) {
  std::vector<FileId> seen;
  std::uint64_t cursor = 0;
  for (int pages = 0; pages < 100000; ++pages) {
    auto page = index.search(words, cid, cursor, limit, online_only);
    REQUIRE(page.files.size() <= limit);
    seen.insert(seen.end(), page.files.begin(), page.files.end());
    if (!page.next) break;
    if (!online_only) REQUIRE(page.files.size() == limit);  // only the online filter may cut a page short
    if (!page.files.empty()) REQUIRE(*page.next > page.files.back());
    REQUIRE(*page.next > cursor);
    cursor = *page.next;
  }
  CHECK(std::adjacent_find(seen.begin(), seen.end(), [](auto a, auto b) { return a >= b; }) == seen.end());
  return seen;
}

std::vector<FileId> keyword_search(const FileIndex& index, const std::string& q) {
  return all_pages(index, keywords(q), std::nullopt, 1000);
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

TEST_CASE("file() gives every field back, and a removed id reads as not live", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  FileRecord f = make_file(u, "Song.ogg", "a Song", 3);
  f.size = 123456789012ULL;
  f.chunk_size = 65536;
  const FileId id = index.add_file(f);
  auto v = index.file(id);
  CHECK(v.live);
  CHECK(v.name == "Song.ogg");
  CHECK(v.description == "a Song");
  CHECK(v.cid == cid_of(3));
  CHECK(v.size == 123456789012ULL);
  CHECK(v.chunk_size == 65536);
  CHECK(v.user == u);
  index.remove_file(id);
  CHECK_FALSE(index.file(id).live);
  CHECK(index.file(id).name.empty());
  CHECK(index.file_count() == 0);
}

TEST_CASE("case folding happens in keywords(): the index holds lower-cased ASCII words only", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  const FileId a = index.add_file(make_file(u, "BLUE-River.FLAC", "Café DEL Mar", 1));
  CHECK(index.search(keywords("blue RIVER flac"), std::nullopt, 0, 10).files == std::vector<FileId>{a});
  CHECK(index.search({"BLUE"}, std::nullopt, 0, 10).files.empty());  // not a keyword: keywords() folds
  CHECK(index.search({"blue river"}, std::nullopt, 0, 10).files.empty());
  CHECK(index.search({""}, std::nullopt, 0, 10).files.empty());
  CHECK(index.search(keywords("café del"), std::nullopt, 0, 10).files == std::vector<FileId>{a});
  CHECK(index.search(keywords("CAFÉ"), std::nullopt, 0, 10).files.empty());  // é is not folded
  CHECK(index.search(keywords("caf"), std::nullopt, 0, 10).files.empty());   // whole words only
  CHECK(index.search(keywords("blu"), std::nullopt, 0, 10).files.empty());
  CHECK(index.search(keywords("flacx"), std::nullopt, 0, 10).files.empty());
  // A word split between the name and the description is two words.
  const FileId b = index.add_file(make_file(u, "abc", "def", 2));
  CHECK(index.search(keywords("abcdef"), std::nullopt, 0, 10).files.empty());
  CHECK(index.search(keywords("def abc"), std::nullopt, 0, 10).files == std::vector<FileId>{b});
}

TEST_CASE("a token unique to one file, and the same token once that file is deleted", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  std::vector<FileId> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(index.add_file(make_file(u, "track-" + std::to_string(100000 + i) + "-blue.flac", "common", 1)));
  }
  CHECK(keyword_search(index, "100007") == std::vector<FileId>{ids[7]});
  CHECK(keyword_search(index, "100007 blue") == std::vector<FileId>{ids[7]});
  CHECK(keyword_search(index, "100007 100008").empty());
  index.remove_file(ids[7]);
  CHECK(keyword_search(index, "100007").empty());
  CHECK(keyword_search(index, "blue").size() == 49);
  CHECK_FALSE(index.find_file(u, "track-100007-blue.flac"));
  // Re-adding the name after deletion: a new id, found by name and by its token again.
  const FileId again = index.add_file(make_file(u, "track-100007-blue.flac", "common", 1));
  CHECK(again != ids[7]);
  CHECK(index.find_file(u, "track-100007-blue.flac") == again);
  CHECK(keyword_search(index, "100007") == std::vector<FileId>{again});
  CHECK(keyword_search(index, "common").back() == again);
}

TEST_CASE("many files sharing a token page without repeats, with and without other words", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  const UserId v = index.add_user("bob");
  std::vector<FileId> every, third, seventh, both;
  for (int i = 0; i < 5000; ++i) {
    std::string desc = "shared";
    if (i % 3 == 0) desc += " third";
    if (i % 7 == 0) desc += " seventh";
    if (i == 4320) desc += " rare";
    const FileId id = index.add_file(make_file(i % 2 ? u : v, "f" + std::to_string(i), desc, 1));
    every.push_back(id);
    if (i % 3 == 0) third.push_back(id);
    if (i % 7 == 0) seventh.push_back(id);
    if (i % 21 == 0) both.push_back(id);
  }
  for (std::size_t limit : {1, 2, 3, 7, 20, 1000}) {
    CHECK(all_pages(index, keywords("shared"), std::nullopt, limit) == every);
    CHECK(all_pages(index, keywords("third shared"), std::nullopt, limit) == third);
    CHECK(all_pages(index, keywords("seventh third"), std::nullopt, limit) == both);
    CHECK(all_pages(index, keywords("shared seventh third"), std::nullopt, limit) == both);
    CHECK(all_pages(index, keywords("rare shared third"), std::nullopt, limit) == std::vector<FileId>{every[4320]});
  }
  // A cursor between matches starts at the next one; one past the last id finds nothing.
  auto page = index.search(keywords("seventh third"), std::nullopt, both[3] + 1, 2);
  CHECK(page.files == std::vector<FileId>{both[4], both[5]});
  CHECK(page.next == both[6]);
  CHECK(index.search(keywords("shared"), std::nullopt, every.back() + 1, 10).files.empty());
  CHECK(index.search(keywords("shared"), std::nullopt, std::uint64_t{1} << 40, 10).files.empty());
  CHECK(index.search(keywords("shared"), std::nullopt, 0, 0).files.empty());
  // Removing every other file of the shared token, then all of them.
  std::vector<FileId> kept;
  for (std::size_t i = 0; i < every.size(); ++i) {
    if (i % 2) index.remove_file(every[i]); else kept.push_back(every[i]);
  }
  CHECK(all_pages(index, keywords("shared"), std::nullopt, 20) == kept);
  CHECK(index.remove_user(v) == kept.size());
  CHECK(keyword_search(index, "shared").empty());
  CHECK(keyword_search(index, "third").empty());
  CHECK(index.file_count() == 0);
}

TEST_CASE("the first file of a posting list can go and the word is still found in the others", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  const FileId a = index.add_file(make_file(u, "a", "the river", 1));
  const FileId b = index.add_file(make_file(u, "b", "river of Rivers", 2));
  CHECK(keyword_search(index, "river") == std::vector<FileId>{a, b});
  index.remove_file(a);
  CHECK(keyword_search(index, "river") == std::vector<FileId>{b});
  const FileId c = index.add_file(make_file(u, "c", "RIVER", 3));
  CHECK(keyword_search(index, "river") == std::vector<FileId>{b, c});
  CHECK(keyword_search(index, "rivers") == std::vector<FileId>{b});
  index.remove_file(b);
  CHECK(keyword_search(index, "river") == std::vector<FileId>{c});
  CHECK(keyword_search(index, "rivers").empty());
  CHECK(keyword_search(index, "the").empty());
}

TEST_CASE("files sharing a content id: cid search pages by id and survives any removal order", "[index]") {
  FileIndex index;
  std::vector<UserId> users;
  for (int i = 0; i < 6; ++i) users.push_back(index.add_user("user" + std::to_string(i)));
  std::vector<FileId> same;
  for (int i = 0; i < 30; ++i) {
    same.push_back(index.add_file(make_file(users[i % 6], "copy" + std::to_string(i), i % 2 ? "odd" : "even", 7)));
    index.add_file(make_file(users[i % 6], "other" + std::to_string(i), "odd even", static_cast<std::uint8_t>(8 + i)));
  }
  CHECK(all_pages(index, {}, cid_of(7), 4) == same);
  std::vector<FileId> odd;
  for (std::size_t i = 1; i < same.size(); i += 2) odd.push_back(same[i]);
  CHECK(all_pages(index, keywords("odd"), cid_of(7), 3) == odd);
  CHECK(all_pages(index, keywords("odd even"), cid_of(7), 3).empty());
  CHECK(index.search({}, cid_of(7), same[10], 2).files == std::vector<FileId>{same[10], same[11]});
  CHECK(index.search({}, cid_of(99), 0, 10).files.empty());
  // Remove the first, the last, some in the middle, then the rest.
  std::vector<FileId> left = same;
  for (FileId id : {same[0], same[29], same[13], same[14], same[1]}) {
    index.remove_file(id);
    left.erase(std::find(left.begin(), left.end(), id));
    CHECK(all_pages(index, {}, cid_of(7), 5) == left);
  }
  for (FileId id : left) index.remove_file(id);
  CHECK(index.search({}, cid_of(7), 0, 10).files.empty());
  CHECK(index.search({}, cid_of(8), 0, 10).files.size() == 1);
  const FileId back = index.add_file(make_file(users[0], "copy0", "even", 7));
  CHECK(index.search({}, cid_of(7), 0, 10).files == std::vector<FileId>{back});
}

TEST_CASE("live_files pages over live files only, and files_of sorts by name", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  std::vector<FileId> ids;
  for (const char* n : {"delta", "alpha", "charlie", "bravo", "echo"}) ids.push_back(index.add_file(make_file(u, n, "", 1)));
  index.remove_file(ids[2]);
  CHECK(names(index, index.files_of(u)) == std::vector<std::string>{"alpha", "bravo", "delta", "echo"});
  auto page = index.live_files(0, 2);
  CHECK(page.files == std::vector<FileId>{ids[0], ids[1]});
  CHECK(page.next == ids[3]);
  page = index.live_files(*page.next, 2);
  CHECK(page.files == std::vector<FileId>{ids[3], ids[4]});
  CHECK_FALSE(page.next);
}

TEST_CASE("names and descriptions longer than 64 KiB keep every byte and every word", "[index]") {
  FileIndex index;
  const UserId u = index.add_user("alice");
  std::string desc(70000, 'x');
  desc += " needle";
  const FileId a = index.add_file(make_file(u, std::string(66000, 'n'), desc, 1));
  const FileId b = index.add_file(make_file(u, "short", "needle", 2));
  CHECK(index.file(a).description == desc);
  CHECK(index.file(a).name.size() == 66000);
  CHECK(index.find_file(u, std::string(66000, 'n')) == a);
  CHECK(keyword_search(index, "needle") == std::vector<FileId>{a, b});
  index.remove_file(a);
  CHECK(keyword_search(index, "needle") == std::vector<FileId>{b});
}

TEST_CASE("random publishes and deletions: search agrees with a brute-force scan", "[index]") {
  std::mt19937 rng(12345);
  FileIndex index;
  std::vector<UserId> users;
  for (int i = 0; i < 8; ++i) users.push_back(index.add_user("u" + std::to_string(i)));
  // A skewed vocabulary: some words in most files, some in few, plus a token unique to each file.
  const std::vector<std::string> vocab = {"a", "b", "c", "d", "e", "f", "g", "h", "Common", "rare", "x1", "x2"};
  std::map<FileId, std::pair<std::vector<std::string>, std::uint8_t>> live;  // id -> keywords, cid byte
  std::set<std::pair<UserId, std::string>> names_in_use;
  int serial = 0;
  auto publish = [&] {
    const UserId u = users[rng() % users.size()];
    const std::string name = "file-" + std::to_string(serial++) + "." + vocab[rng() % 8];
    std::string desc;
    for (int w = 0; w < 4; ++w) {
      const auto r = rng() % 100;
      desc += (r < 60 ? vocab[r % 8] : r < 90 ? vocab[8] : vocab[9 + r % 3]) + " ";
    }
    const auto cid = static_cast<std::uint8_t>(rng() % 40);
    const FileId id = index.add_file(make_file(u, name, desc, cid));
    live[id] = {keywords(name + " " + desc), cid};
    names_in_use.insert({u, name});
  };
  auto brute = [&](const std::vector<std::string>& words, std::optional<std::uint8_t> cid) {
    std::vector<FileId> out;
    for (const auto& [id, f] : live) {
      if (cid && f.second != *cid) continue;
      if (std::all_of(words.begin(), words.end(), [&](const std::string& w) {
            return std::find(f.first.begin(), f.first.end(), w) != f.first.end();
          })) {
        out.push_back(id);
      }
    }
    return out;
  };
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 700; ++i) publish();
    std::vector<FileId> ids;
    for (const auto& [id, f] : live) ids.push_back(id);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (std::size_t i = 0; i < ids.size() / 2; ++i) {
      const auto f = index.file(ids[i]);
      REQUIRE(index.find_file(f.user, f.name) == ids[i]);
      names_in_use.erase({f.user, std::string(f.name)});
      index.remove_file(ids[i]);
      live.erase(ids[i]);
    }
    REQUIRE(index.file_count() == live.size());
    for (const auto& [u, n] : names_in_use) REQUIRE(index.find_file(u, n));
    for (int q = 0; q < 60; ++q) {
      std::vector<std::string> words;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int w = 0; w < n; ++w) words.push_back(keywords(vocab[rng() % vocab.size()]).front());
      if (q % 10 == 0 && !live.empty()) words.push_back(std::next(live.begin(), rng() % live.size())->second.first[0]);
      std::optional<std::uint8_t> cid;
      if (q % 4 == 0) cid = static_cast<std::uint8_t>(rng() % 40);
      const std::size_t limit = 1 + rng() % 50;
      std::optional<Hash> cid_hash;
      if (cid) cid_hash = cid_of(*cid);
      INFO("round " << round << " query " << q << " limit " << limit);
      CHECK(all_pages(index, words, cid_hash, limit) == brute(words, cid));
    }
  }
}

TEST_CASE("online_only filters inside the search: pages of online owners' files, full and without repeats",
          "[index]") {
  FileIndex index;
  std::vector<UserId> users;
  for (int i = 0; i < 5; ++i) users.push_back(index.add_user("user" + std::to_string(i)));
  index.connect(users[1], "tcp://127.0.0.1:1");
  index.connect(users[3], "tcp://127.0.0.1:3");
  // 500 files over 5 users, interleaved, so online files are scattered through every posting list.
  std::vector<FileId> online_river, online_blue, online_cid;
  for (int i = 0; i < 500; ++i) {
    const UserId u = users[i % 5];
    const bool online = index.user(u).connected;
    const std::string desc = i % 3 ? "river blue" : "river";
    const FileId id = index.add_file(make_file(u, "f" + std::to_string(i), desc, i % 7 ? 1 : 2));
    if (!online) continue;
    online_river.push_back(id);
    if (i % 3) online_blue.push_back(id);
    if (i % 7 == 0) online_cid.push_back(id);
  }
  REQUIRE(online_river.size() == 200);
  for (std::size_t limit : {1, 7, 64, 65, 199, 200, 1000}) {
    CAPTURE(limit);
    CHECK(all_pages(index, {"river"}, std::nullopt, limit, true) == online_river);        // one posting list
    CHECK(all_pages(index, {"river", "blue"}, std::nullopt, limit, true) == online_blue);  // an intersection
    CHECK(all_pages(index, {}, cid_of(2), limit, true) == online_cid);                     // a cid chain
    CHECK(all_pages(index, {"river"}, std::nullopt, limit, false).size() == 500);          // everything
  }
  // A page is filled with online files even when offline ones come first: never a short page with a next.
  auto page = index.search({"river"}, std::nullopt, 0, 10, true);
  CHECK(page.files.size() == 10);
  CHECK(page.files.front() == online_river.front());
  REQUIRE(page.next);
  CHECK(*page.next == online_river[10]);
  // Sessions change what is found at once; nobody online: nothing, and no next.
  index.disconnect(users[1]);
  index.disconnect(users[3]);
  auto none = index.search({"river"}, std::nullopt, 0, 10, true);
  CHECK(none.files.empty());
  CHECK_FALSE(none.next);
  index.connect(users[0], "tcp://127.0.0.1:9");
  CHECK(all_pages(index, {"river"}, std::nullopt, 33, true).size() == 100);
}

TEST_CASE("users by name: thousands added and removed, found by name alone, a name re-registered is a new user",
          "[index]") {
  FileIndex index;
  index.reserve(100, 0);  // fewer than will come: the table must still grow
  std::vector<UserId> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back(index.add_user("user-" + std::to_string(i)));
  for (int i = 0; i < 3000; i += 3) index.remove_user(ids[static_cast<std::size_t>(i)]);
  for (int i = 0; i < 3000; ++i) {
    const auto found = index.find_user("user-" + std::to_string(i));
    if (i % 3 == 0) {
      CHECK_FALSE(found);
    } else {
      REQUIRE(found);
      CHECK(*found == ids[static_cast<std::size_t>(i)]);
    }
  }
  const UserId again = index.add_user("user-0");
  CHECK(again != ids[0]);
  CHECK(index.find_user("user-0") == again);
  CHECK(index.user_count() == 2001);
}

TEST_CASE("a bulk load into reserved tables finds every file by name, cid and word", "[index]") {
  FileIndex index;
  index.reserve(10, 5000);
  const UserId u = index.add_user("loader");
  for (int i = 0; i < 5000; ++i)
    index.add_file(make_file(u, "item-" + std::to_string(i) + ".bin", i % 2 ? "odd" : "even",
                             static_cast<std::uint8_t>(i % 251)));
  CHECK(index.file_count() == 5000);
  REQUIRE(index.find_file(u, "item-4999.bin"));
  CHECK(index.file(*index.find_file(u, "item-4999.bin")).name == "item-4999.bin");
  CHECK(keyword_search(index, "odd").size() == 2500);
  CHECK(keyword_search(index, "item 1234").size() == 1);
  CHECK(all_pages(index, {}, cid_of(7), 1000).size() == 20);  // i % 251 == 7 for 20 of 5000
}

TEST_CASE("files loaded through IndexLoader (words on a second thread) are found as if added one by one", "[index]") {
  FileIndex one_by_one, loaded;
  for (FileIndex* index : {&one_by_one, &loaded}) {
    index->add_user("a");
    index->add_user("b");
  }
  loaded.reserve(2, 1000);  // fewer than come: the loader must also cope with a chunk table that grows
  std::vector<FileRecord> files;
  for (int i = 0; i < 20000; ++i)
    files.push_back(make_file(static_cast<UserId>(i % 2), "song-" + std::to_string(i) + ".ogg",
                              std::string(i % 3 ? "blue" : "red") + " take " + std::to_string(i % 97),
                              static_cast<std::uint8_t>(i % 200)));
  for (const auto& f : files) one_by_one.add_file(f);
  {
    IndexLoader loader(loaded);
    for (const auto& f : files) loader.add(f);
    loader.finish();
  }
  REQUIRE(loaded.file_count() == one_by_one.file_count());
  for (const char* q : {"blue", "red take 5", "song 19999 ogg", "take 96 blue", "nothing"})
    CHECK(keyword_search(loaded, q) == keyword_search(one_by_one, q));
  CHECK(all_pages(loaded, {}, cid_of(3), 1000) == all_pages(one_by_one, {}, cid_of(3), 1000));
  CHECK(loaded.find_file(1, "song-19999.ogg") == one_by_one.find_file(1, "song-19999.ogg"));
}

TEST_CASE("a common word while its owners are offline: pages stop after kMaxSkipped turned down, and all pages "
          "together give exactly the online files", "[index]") {
  FileIndex index;
  const UserId on = index.add_user("on");
  const UserId off = index.add_user("off");
  index.connect(on, "tcp://127.0.0.1:1");
  std::vector<FileId> online;
  for (int i = 0; i < 30000; ++i) {
    const UserId owner = i % 10000 == 0 ? on : off;
    const FileId id = index.add_file(make_file(owner, "f" + std::to_string(i), "common take", 1));
    if (owner == on) online.push_back(id);
  }
  for (const char* q : {"common", "common take"}) {  // one list; two lists intersected
    const auto first = index.search(keywords(q), std::nullopt, 0, 10, true);
    CHECK(first.files == std::vector<FileId>{online[0]});
    REQUIRE(first.next);
    CHECK(*first.next == online[0] + FileIndex::kMaxSkipped + 1);  // resumes after the last candidate looked at
    CHECK(all_pages(index, keywords(q), std::nullopt, 10, true) == online);
  }
  CHECK(all_pages(index, keywords("common"), std::nullopt, 10, false).size() == 30000);  // no filter, full pages
}
