// test_send_budget.cpp: a seeder's queued reply bytes per downloader come back when libzmq frees the messages,
// and a downloader over its budget gets no new message while another one still does.
#include "peer/send_budget.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

using namespace zshare::peer;

TEST_CASE("send budget: a downloader's queued bytes are capped and given back when its messages are freed",
          "[send_budget]") {
  SendBudget budget(3000);
  std::vector<zmq::message_t> queued;
  for (int i = 0; i < 3; ++i) {
    auto m = budget.allocate("slow", 1000);
    REQUIRE(m);
    CHECK(m->size() == 1000);
    queued.push_back(std::move(*m));
  }
  CHECK_FALSE(budget.allocate("slow", 1000));  // 3000 bytes queued and unsent
  CHECK(budget.allocate("other", 1000));        // each downloader has its own budget
  queued.pop_back();                            // libzmq sent (freed) one of them
  CHECK(budget.allocate("slow", 1000));
  queued.clear();
  budget.sweep();
  CHECK(budget.allocate("slow", 3000));
}

TEST_CASE("send budget: one reply larger than the budget still goes when nothing is queued", "[send_budget]") {
  SendBudget budget(100);
  auto m = budget.allocate("d", 500);
  REQUIRE(m);
  CHECK_FALSE(budget.allocate("d", 1));
}

TEST_CASE("send budget: a message outliving the budget object still gives its bytes and buffer back",
          "[send_budget]") {
  std::optional<zmq::message_t> kept;
  {
    SendBudget budget(1 << 20);
    kept = budget.allocate("d", 70000);
    REQUIRE(kept);
    std::memset(kept->data(), 0x5a, kept->size());
  }
  // The budget is gone; the message's buffer is still its own (not freed with the pool) ...
  const auto* bytes = static_cast<const unsigned char*>(kept->data());
  CHECK(std::all_of(bytes, bytes + kept->size(), [](unsigned char b) { return b == 0x5a; }));
  kept.reset();  // ... and freeing it gives back to a pool and account it shares (ASan: no use after free)
  CHECK_FALSE(kept);
}
