// port_probe.hpp: does anything accept TCP connections at a tcp://HOST:PORT endpoint? A diagnosis when a ZeroMQ
// peer is silent: an open port with no answer means a handshake that failed (a CurveZMQ key, or --plaintext on
// one side only), a closed one means nothing runs there.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace zshare {

// True: a TCP connection was accepted; false: refused, unreachable or timed out; nothing when `endpoint` is not
// tcp://HOST:PORT or HOST does not resolve.
std::optional<bool> tcp_port_open(const std::string& endpoint, std::chrono::milliseconds timeout);

}  // namespace zshare
