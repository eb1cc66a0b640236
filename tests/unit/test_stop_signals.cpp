// test_stop_signals.cpp: SIGTERM and SIGINT sent to the process become StopSignals' flag, taken by its watcher
// thread; threads started after it inherit the blocked signals, and its end restores the caller's mask.
#include "common/stop_signals.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace zshare;

namespace {

bool blocked_here(int sig) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, sig) == 1;
}

}  // namespace

TEST_CASE("StopSignals: a SIGTERM sent to the process sets the flag and names itself") {
  StopSignals stop;
  CHECK_FALSE(stop.flag().load());
  CHECK(stop.received() == 0);
  CHECK(stop.wait_for(std::chrono::milliseconds(1)) == 0);
  REQUIRE(kill(getpid(), SIGTERM) == 0);  // the process, as `kill PID` does: no handler runs, the watcher takes it
  REQUIRE(stop.wait_for(std::chrono::seconds(10)) == SIGTERM);
  CHECK(stop.flag().load());
  CHECK(stop.received() == SIGTERM);
  CHECK(stop.wait() == SIGTERM);  // returns at once once one has arrived
}

TEST_CASE("StopSignals: the first signal names the stop; a later one is absorbed") {
  StopSignals stop;
  REQUIRE(kill(getpid(), SIGINT) == 0);
  REQUIRE(stop.wait_for(std::chrono::seconds(10)) == SIGINT);
  REQUIRE(kill(getpid(), SIGTERM) == 0);  // would end the process if nobody took it
  CHECK(stop.wait() == SIGINT);
}

TEST_CASE("StopSignals: threads started after it inherit the blocked signals; its end restores the mask") {
  REQUIRE_FALSE(blocked_here(SIGTERM));
  {
    StopSignals stop;
    CHECK(blocked_here(SIGTERM));
    CHECK(blocked_here(SIGINT));
    bool in_worker = false;
    std::thread worker([&] { in_worker = blocked_here(SIGTERM) && blocked_here(SIGINT); });
    worker.join();
    CHECK(in_worker);
  }
  CHECK_FALSE(blocked_here(SIGTERM));
  CHECK_FALSE(blocked_here(SIGINT));
}

namespace {

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

}  // namespace

TEST_CASE("StopSignals: the console's SIGINT only; its fd is readable while the flag is up; clear() re-arms") {
  REQUIRE_FALSE(blocked_here(SIGTERM));
  StopSignals interrupts({SIGINT});
  CHECK(blocked_here(SIGINT));
  CHECK_FALSE(blocked_here(SIGTERM));  // not taken: a SIGTERM still ends the console
  CHECK_FALSE(readable(interrupts.fd(), 0));
  for (int round = 0; round < 2; ++round) {  // one Ctrl-C, handled, then the next
    REQUIRE(kill(getpid(), SIGINT) == 0);
    REQUIRE(readable(interrupts.fd(), 10000));
    CHECK(interrupts.flag().load());
    CHECK(interrupts.received() == SIGINT);
    interrupts.clear();
    CHECK_FALSE(interrupts.flag().load());
    CHECK(interrupts.received() == 0);
    CHECK_FALSE(readable(interrupts.fd(), 0));
  }
}
