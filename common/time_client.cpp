// time_client.cpp: TimeClient over the gSOAP proxy generated from schemas/timesvc.h (C++ namespace ztcli).
// Invariant: while the service is marked down, now() touches no socket until retry_at has passed.
#include "common/time_client.hpp"

#include <sys/socket.h>

#include <cstdlib>
#include <ostream>
#include <utility>

#include "common/timestamp.hpp"
#include "common/validate.hpp"
#include "ztcliZshareTimeProxy.h"

namespace zshare {
namespace {

// gSOAP timeouts: negative values are microseconds.
int soap_timeout(std::chrono::milliseconds ms) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(ms).count();
  if (us < 1000) us = 1000;
  if (us > 2'000'000'000) us = 2'000'000'000;
  return -static_cast<int>(us);
}

Stamp local_stamp() {
  Stamp s;
  s.epoch_ms = now_epoch_ms();
  s.iso8601 = iso8601_utc(s.epoch_ms);
  s.local = true;
  return s;
}

}  // namespace

std::string resolve_timesvc_url(const std::string& cli_value) {
  if (!cli_value.empty()) return cli_value;
  const char* env = std::getenv("ZSHARE_TIMESVC");
  return env ? std::string(env) : std::string();
}

struct TimeClient::Impl {
  Impl(std::string u, std::ostream& w, Options o)
      : url(std::move(u)), warnings(w), options(o), proxy(SOAP_IO_KEEPALIVE, SOAP_IO_KEEPALIVE) {
    struct soap* soap = proxy.soap;
    soap->connect_timeout = soap_timeout(options.timeout);
    soap->send_timeout = soap_timeout(options.timeout);
    soap->recv_timeout = soap_timeout(options.timeout);
    soap->transfer_timeout = soap_timeout(options.timeout * 2);
    soap->socket_flags = MSG_NOSIGNAL;  // a server that closed the connection must not kill us with SIGPIPE
  }

  // One request; false (and why) on any transport or protocol trouble.
  bool ask(Stamp& out, std::string& why) {
    // A keep-alive connection the server has since closed fails once; retry once on a fresh connection.
    const bool reused = soap_valid_socket(proxy.soap->socket);
    ztcli::zt__nowResponse response;
    int rc = proxy.now(url.c_str(), nullptr, response);
    if (rc != SOAP_OK && reused) {
      proxy.soap_close_socket();
      proxy.destroy();
      rc = proxy.now(url.c_str(), nullptr, response);
    }
    bool ok = rc == SOAP_OK && is_valid_timestamp(response.iso8601) && response.epochMs > 0;
    if (ok) {
      out.iso8601 = response.iso8601;
      out.epoch_ms = response.epochMs;
      out.local = false;
    } else if (rc != SOAP_OK) {
      char buf[512];
      proxy.soap_sprint_fault(buf, sizeof buf);
      why = buf;
      for (char& c : why) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      while (!why.empty() && why.back() == ' ') why.pop_back();
      proxy.soap_close_socket();
    } else {
      why = "malformed reply (iso8601 '" + response.iso8601 + "')";
      proxy.soap_close_socket();
    }
    proxy.destroy();
    return ok;
  }

  Stamp now() {
    if (url.empty()) return local_stamp();
    auto t = std::chrono::steady_clock::now();
    if (down && t < retry_at) return local_stamp();
    Stamp stamp;
    std::string why;
    if (ask(stamp, why)) {
      down = false;
      return stamp;
    }
    if (!down) {
      warnings << "warning: time service " << url << " unavailable (" << why
               << "); stamping with the local clock (marked local), retrying every "
               << options.retry_after.count() << " ms" << std::endl;
    }
    down = true;
    retry_at = std::chrono::steady_clock::now() + options.retry_after;
    return local_stamp();
  }

  std::string url;
  std::ostream& warnings;
  Options options;
  ztcli::ZshareTimeProxy proxy;
  bool down = false;  // the last attempt failed; a warning has been written for this outage
  std::chrono::steady_clock::time_point retry_at{};
};

TimeClient::TimeClient(std::string url, std::ostream& warnings)
    : TimeClient(std::move(url), warnings, Options{}) {}
TimeClient::TimeClient(std::string url, std::ostream& warnings, Options options)
    : impl_(std::make_unique<Impl>(std::move(url), warnings, options)) {}
TimeClient::~TimeClient() = default;
TimeClient::TimeClient(TimeClient&&) noexcept = default;
TimeClient& TimeClient::operator=(TimeClient&&) noexcept = default;

Stamp TimeClient::now() { return impl_->now(); }
const std::string& TimeClient::url() const { return impl_->url; }

}  // namespace zshare
