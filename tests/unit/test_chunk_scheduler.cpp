// test_chunk_scheduler.cpp: the download's scheduling and failover rules, without sockets: chunks go out in file
// order and spread over the sources; a bad chunk goes to another source first; a dropped source's chunks go to
// the others; a late good copy from a dropped source still counts; nothing is asked twice at once.
#include "peer/chunk_scheduler.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <vector>

using namespace zshare::peer;
using Outcome = ChunkScheduler::Outcome;

TEST_CASE("scheduler: fresh chunks go out in file order, never two tickets for one chunk", "[scheduler]") {
  ChunkScheduler s(5, 2);
  CHECK(s.assign(0, true) == 0u);
  CHECK(s.assign(1, true) == 1u);
  CHECK(s.assign(0, true) == 2u);
  CHECK(s.outstanding(0) == 2);
  CHECK(s.outstanding(1) == 1);
  CHECK(s.assign(1, true) == 3u);
  CHECK(s.assign(1, true) == 4u);
  CHECK_FALSE(s.assign(0, true));  // everything is asked of someone
  for (std::uint32_t i = 0; i < 5; ++i) s.release(i == 0 || i == 2 ? 0 : 1, i, Outcome::kVerified);
  CHECK(s.complete());
  CHECK(s.outstanding(0) == 0);
  CHECK(s.outstanding(1) == 0);
}

TEST_CASE("scheduler: chunks a resumed .part holds are never asked for", "[scheduler]") {
  ChunkScheduler s(4, 1);
  s.mark_done(0);
  s.mark_done(2);
  CHECK(s.done_count() == 2);
  CHECK(s.assign(0, false) == 1u);
  CHECK(s.assign(0, false) == 3u);
  CHECK_FALSE(s.assign(0, false));
}

TEST_CASE("scheduler: a bad chunk goes to another source first, back to the same one when it is alone",
          "[scheduler]") {
  ChunkScheduler s(3, 2);
  REQUIRE(s.assign(0, true) == 0u);
  s.release(0, 0, Outcome::kBad);
  CHECK_FALSE(s.done(0));
  CHECK(s.assign(0, true) == 1u);  // source 0 sent chunk 0 bad: it gets a fresh one instead
  CHECK(s.assign(1, true) == 0u);  // the other source gets the bad one, before any fresh chunk
  s.release(1, 0, Outcome::kBad);  // bad again, from source 1 this time
  CHECK(s.assign(0, false) == 0u); // source 1 is gone: source 0 is asked again rather than never
}

TEST_CASE("scheduler: a dropped source's chunks are asked of the others before anything new", "[scheduler]") {
  ChunkScheduler s(6, 2);
  std::vector<std::uint32_t> of_zero;
  for (int i = 0; i < 3; ++i) of_zero.push_back(*s.assign(0, true));
  REQUIRE(s.assign(1, true) == 3u);
  for (auto i : of_zero) s.release(0, i, Outcome::kLost);  // source 0 dropped
  CHECK(s.outstanding(0) == 0);
  std::set<std::uint32_t> again;
  for (int i = 0; i < 3; ++i) again.insert(*s.assign(1, false));
  CHECK(again == std::set<std::uint32_t>(of_zero.begin(), of_zero.end()));
  CHECK(s.assign(1, false) == 4u);
}

TEST_CASE("scheduler: a good copy that arrives late from a dropped source still counts, once", "[scheduler]") {
  ChunkScheduler s(2, 2);
  REQUIRE(s.assign(0, true) == 0u);  // in the verifying stage when source 0 is dropped
  REQUIRE(s.assign(1, true) == 1u);
  s.release(1, 1, Outcome::kVerified);
  // Chunk 0 is still being verified: it is not handed out again meanwhile.
  CHECK_FALSE(s.assign(1, false));
  s.release(0, 0, Outcome::kVerified);
  CHECK(s.complete());
  CHECK(s.done_count() == 2);
}

TEST_CASE("scheduler: a lost chunk asked again elsewhere, then answered twice, is done once", "[scheduler]") {
  ChunkScheduler s(1, 2);
  REQUIRE(s.assign(0, true) == 0u);
  s.release(0, 0, Outcome::kLost);  // source 0 stopped answering
  REQUIRE(s.assign(1, false) == 0u);
  s.release(1, 0, Outcome::kVerified);
  CHECK(s.done_count() == 1);
  CHECK_FALSE(s.assign(1, false));
  CHECK(s.outstanding(1) == 0);
}

TEST_CASE("scheduler: when only an avoided chunk is left, that source gets nothing and the other gets it",
          "[scheduler]") {
  ChunkScheduler s(1, 2);
  REQUIRE(s.assign(0, true) == 0u);
  s.release(0, 0, Outcome::kBad);
  CHECK_FALSE(s.assign(0, true));  // the session then asks the next source rather than waiting
  CHECK(s.assign(1, true) == 0u);
}
