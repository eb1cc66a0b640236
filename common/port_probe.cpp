// port_probe.cpp: getaddrinfo, then a non-blocking connect per address, waited on with poll.
#include "common/port_probe.hpp"

#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zshare {

namespace {

bool connects(const addrinfo& a, std::chrono::milliseconds timeout) {
  const int fd = ::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol);
  if (fd < 0) return false;
  bool open = ::connect(fd, a.ai_addr, a.ai_addrlen) == 0;
  if (!open && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      open = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return open;
}

}  // namespace

std::optional<bool> tcp_port_open(const std::string& endpoint, std::chrono::milliseconds timeout) {
  const std::string scheme = "tcp://";
  const auto colon = endpoint.rfind(':');
  if (endpoint.rfind(scheme, 0) != 0 || colon == std::string::npos || colon <= scheme.size()) return std::nullopt;
  std::string host = endpoint.substr(scheme.size(), colon - scheme.size());
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = endpoint.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found) return std::nullopt;
  bool open = false;
  for (const addrinfo* a = found; a && !open; a = a->ai_next) open = connects(*a, timeout);
  ::freeaddrinfo(found);
  return open;
}

}  // namespace zshare
