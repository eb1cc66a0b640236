// test_log_shipper.cpp: LogShipper against a logger that accepts connections and drops them at once (a logger
// restarting, a host whose service is broken): its backoff holds however often the broker says new records
// were committed; a notify() during the backoff used to cut it short, so it reconnected after every batch.
#include "broker/log_shipper.hpp"
#include "broker/sqlite_store.hpp"
#include "loopback.hpp"
#include "temp_folder.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

using namespace zshare::broker;
using zshare::test::TempFolder;

namespace {

// A TCP listener on loopback that accepts every connection, counts it and closes it, until stopped.
struct DroppingLogger {
  DroppingLogger() {
    fd = zshare::test::bound_loopback_socket(port);
    REQUIRE(::listen(fd, 64) == 0);
    thread = std::thread([this] {
      while (!stop) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) == 1) {
          const int c = ::accept(fd, nullptr, nullptr);
          if (c >= 0) {
            ++accepted;
            ::close(c);
          }
        }
      }
    });
  }
  ~DroppingLogger() {
    stop = true;
    thread.join();
    ::close(fd);
  }

  int fd = -1;
  std::uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  std::thread thread;
};

}  // namespace

TEST_CASE("the log shipper backs off from a failing logger however often new records are committed", "[log_shipper]") {
  TempFolder dir;
  SqliteStore store(dir / "broker.db");
  store.begin();
  store.append_log("2026-11-30T08:00:00.000Z", false, "alice", "REGISTER", "");
  store.commit();
  DroppingLogger logger;
  std::ostringstream report;
  {
    LogShipper shipper(store, "127.0.0.1:" + std::to_string(logger.port), report);
    // The broker commits a batch every 2 ms for 2 s, each followed by notify().
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) {
      shipper.notify();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    CHECK(shipper.acked_through() == 0);
  }
  // Backoff from 100 ms doubling: attempts at about 0, 0.1, 0.3, 0.7 and 1.5 s. Without it, one per notify.
  INFO("connections in 2 s: " << logger.accepted.load() << "; report: " << report.str());
  CHECK(logger.accepted.load() >= 1);
  CHECK(logger.accepted.load() <= 8);
  CHECK(report.str().find("operations log waits in the outbox") != std::string::npos);
}
