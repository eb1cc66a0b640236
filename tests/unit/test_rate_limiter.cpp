// test_rate_limiter.cpp: the broker's token bucket per client identity, on an injected clock (microseconds as
// an argument; nothing sleeps): burst, refill, retry_after_ms, independence of identities, the table's bound.
#include "broker/rate_limiter.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace zshare::broker;

namespace {

constexpr std::int64_t kSecond = 1000000;

RateLimit limit(double rate, double burst, std::size_t max_identities = 1000) {
  RateLimit l;
  l.rate = rate;
  l.burst = burst;
  l.max_identities = max_identities;
  return l;
}

}  // namespace

TEST_CASE("a new identity may send its burst at once, then one more per 1/rate seconds", "[ratelimit]") {
  RateLimiter r(limit(10, 5));  // 10 a second, 5 at once
  const std::int64_t t = 42 * kSecond;
  for (int i = 0; i < 5; ++i) CHECK(r.admit("alice", t).admitted);
  const Admission refused = r.admit("alice", t);
  CHECK_FALSE(refused.admitted);
  CHECK(refused.retry_after_ms == 100);  // one token every 100 ms
  // 60 ms later the bucket holds 0.6 of a token: still refused, 40 ms to go.
  const Admission later = r.admit("alice", t + 60000);
  CHECK_FALSE(later.admitted);
  CHECK(later.retry_after_ms == 40);
  // After the promised wait it is admitted, and refused again right after (the token was spent).
  CHECK(r.admit("alice", t + 100000).admitted);
  CHECK_FALSE(r.admit("alice", t + 100000).admitted);
}

TEST_CASE("an idle bucket refills to its burst, never above", "[ratelimit]") {
  RateLimiter r(limit(10, 3));
  std::int64_t t = 0;
  for (int i = 0; i < 3; ++i) CHECK(r.admit("bob", t).admitted);
  CHECK_FALSE(r.admit("bob", t).admitted);
  t += 3600 * kSecond;  // an hour idle: 36,000 tokens' worth, but the bucket holds 3
  for (int i = 0; i < 3; ++i) CHECK(r.admit("bob", t).admitted);
  CHECK_FALSE(r.admit("bob", t).admitted);
}

TEST_CASE("identities have separate buckets; refusals spend nothing", "[ratelimit]") {
  RateLimiter r(limit(1, 2));
  CHECK(r.admit("a", 0).admitted);
  CHECK(r.admit("a", 0).admitted);
  CHECK_FALSE(r.admit("a", 0).admitted);
  CHECK(r.admit("b", 0).admitted);  // another identity is not affected by a's exhaustion
  CHECK(r.admit(std::string("a\0x", 3), 0).admitted);  // identities are bytes, NUL included
  // Being refused again and again does not push the next token further away.
  for (int i = 0; i < 100; ++i) CHECK_FALSE(r.admit("a", 500000).admitted);
  CHECK(r.admit("a", 1000000).admitted);
}

TEST_CASE("a clock that goes back refills nothing and breaks nothing", "[ratelimit]") {
  RateLimiter r(limit(10, 1));
  CHECK(r.admit("c", 10 * kSecond).admitted);
  CHECK_FALSE(r.admit("c", 9 * kSecond).admitted);
  CHECK(r.admit("c", 10 * kSecond + 100000).admitted);
}

TEST_CASE("rate 0 turns the limiter off; a burst below one token is refused at construction", "[ratelimit]") {
  RateLimiter off(limit(0, 0));
  CHECK_FALSE(off.enabled());
  for (int i = 0; i < 100000; ++i) REQUIRE(off.admit("flood", 0).admitted);
  CHECK(off.identities() == 0);
  CHECK_THROWS(RateLimiter(limit(10, 0.5)));
  CHECK_THROWS(RateLimiter(limit(-1, 10)));
}

TEST_CASE("the table never holds more than max_identities buckets", "[ratelimit]") {
  RateLimiter r(limit(1, 10, 100));
  std::size_t most = 0;
  // 100,000 identities within one microsecond, none of whose buckets refills: only the cap bounds the table.
  for (int i = 0; i < 100000; ++i) {
    REQUIRE(r.admit("client-" + std::to_string(i), 7).admitted);  // a new identity starts with a full bucket
    most = std::max(most, r.identities());
  }
  CHECK(most == 100);
  CHECK(r.identities() == 100);
}

TEST_CASE("buckets that refilled are forgotten, so idle identities cost no memory", "[ratelimit]") {
  RateLimiter r(limit(100, 10, 100000));
  for (int i = 0; i < 1000; ++i) r.admit("burst-" + std::to_string(i), 0);
  CHECK(r.identities() == 1000);
  // Each spent one token: refilled after 10 ms. Seen again 1 s later, the whole table is swept.
  r.admit("late", kSecond);
  CHECK(r.identities() == 1);
}

TEST_CASE("at the cap the least recently seen identity is forgotten, not an active one", "[ratelimit]") {
  RateLimiter r(limit(0.001, 1, 3));  // one token per 1000 s: nothing refills during the test
  CHECK(r.admit("hog", 0).admitted);
  CHECK_FALSE(r.admit("hog", 0).admitted);
  CHECK(r.admit("b", 1).admitted);
  CHECK(r.admit("c", 2).admitted);
  CHECK_FALSE(r.admit("hog", 3).admitted);  // seen again: now the most recent
  CHECK(r.admit("d", 4).admitted);          // the table is full: b, the least recently seen, goes
  CHECK(r.identities() == 3);
  CHECK_FALSE(r.admit("hog", 5).admitted);  // the active identity's empty bucket was kept
  CHECK(r.admit("b", 6).admitted);          // b starts over with a full bucket (c goes)
  CHECK(r.admit("d", 7).admitted == false); // d spent its only token at 4
}
