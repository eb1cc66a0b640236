// socks5_handshake.hpp: the server side of a SOCKS5 handshake (RFC 1928) as libzmq's SOCKS client speaks it:
// greeting `05 n methods...` answered `05 00` (no authentication), then a CONNECT request for a domain name
// `05 01 00 03 len name port`. The parser tells exactly how many bytes to read next, so the relay never reads past
// the request: whatever follows it belongs to the circuit. The answer to the request (success once paired, or a
// failure) is the relay's to send; reply() spells it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zshare::relay {

namespace socks5 {

constexpr unsigned char kVersion = 0x05;
constexpr unsigned char kNoAuthentication = 0x00;
constexpr unsigned char kNoAcceptableMethod = 0xff;
constexpr unsigned char kConnect = 0x01;
constexpr unsigned char kDomainName = 0x03;

enum class Reply : unsigned char {
  kSucceeded = 0x00,
  kGeneralFailure = 0x01,
  kNotAllowed = 0x02,  // "connection not allowed by ruleset": a token the relay refuses
  kCommandNotSupported = 0x07,
  kAddressTypeNotSupported = 0x08,
};

// The 10-byte answer to a request: `05 code 00 01` and a bound address of 0.0.0.0:0.
std::string reply(Reply code);

}  // namespace socks5

class Socks5Handshake {
 public:
  enum class Step { kGreeting, kRequest, kDone, kRefused };

  // How many bytes to read next: never more than the current message still lacks (0 once kDone or kRefused).
  std::size_t wanted() const { return step_ == Step::kDone || step_ == Step::kRefused ? 0 : need_ - buffer_.size(); }
  // Takes bytes just read (at most wanted()); returns what to send the client now, "" when nothing.
  std::string consume(std::string_view bytes);

  Step step() const { return step_; }
  const std::string& host() const { return host_; }  // kDone: the domain name of the CONNECT request
  std::uint16_t port() const { return port_; }       // kDone: its port
  const char* refusal() const { return refusal_; }   // kRefused: why, in a few words

 private:
  std::string on_greeting();
  std::string on_request();
  std::string refuse(const char* why, std::string answer);

  Step step_ = Step::kGreeting;
  std::string buffer_;     // the current message so far
  std::size_t need_ = 2;   // its length as known so far
  std::string host_;
  std::uint16_t port_ = 0;
  const char* refusal_ = "";
};

}  // namespace zshare::relay
