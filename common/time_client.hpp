// time_client.hpp: how a peer stamps an operation: ask zshare-timesvc (SOAP) for the time, and fall back
// to the local clock, marked local, when the service is down: one warning per outage, retry after a backoff.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

namespace zshare {

// One timestamp. iso8601 is "YYYY-MM-DDTHH:MM:SS.mmmZ" (common/timestamp.hpp's format) and agrees with
// epoch_ms. local is true when the time came from this host's clock instead of the time service.
struct Stamp {
  std::string iso8601;
  std::int64_t epoch_ms = 0;
  bool local = true;
};

// The URL a program should use: the --timesvc value when given, else $ZSHARE_TIMESVC, else "" (no service:
// every stamp is local, and no warning is written since nothing was asked for).
std::string resolve_timesvc_url(const std::string& cli_value);

// A time-service client with a keep-alive connection. Thread-compatible: use one per thread.
// now() never throws for service trouble and never waits longer than `timeout` (x2 when a stale keep-alive
// connection is retried once); while the service is down it answers from the local clock at once and asks
// the service again only `retry_after` after the last failure.
class TimeClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{500};       // connect, send and receive, each
    std::chrono::milliseconds retry_after{5000};  // backoff after a failure
  };

  // url: "http://host:port" (or "" for local stamps only). warnings: where the one line per outage goes;
  // it must outlive the client.
  TimeClient(std::string url, std::ostream& warnings);
  TimeClient(std::string url, std::ostream& warnings, Options options);
  ~TimeClient();
  TimeClient(TimeClient&&) noexcept;
  TimeClient& operator=(TimeClient&&) noexcept;
  TimeClient(const TimeClient&) = delete;
  TimeClient& operator=(const TimeClient&) = delete;

  Stamp now();
  const std::string& url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zshare
