// socks5_handshake.cpp: the greeting and the CONNECT request, parsed as their lengths become known: a greeting is
// 2 bytes then `n` methods; a request is 4 bytes, then (domain names only) a length byte, the name and a port.
#include "relay/socks5_handshake.hpp"

namespace zshare::relay {

namespace socks5 {

std::string reply(Reply code) {
  return std::string{static_cast<char>(kVersion), static_cast<char>(code), 0x00, 0x01, 0, 0, 0, 0, 0, 0};
}

}  // namespace socks5

namespace {

constexpr std::size_t kGreetingHead = 2;  // version, number of methods
constexpr std::size_t kRequestHead = 4;   // version, command, reserved, address type
constexpr std::size_t kPortBytes = 2;

unsigned char byte_at(const std::string& bytes, std::size_t i) { return static_cast<unsigned char>(bytes[i]); }

}  // namespace

std::string Socks5Handshake::consume(std::string_view bytes) {
  buffer_.append(bytes.substr(0, wanted()));
  if (buffer_.size() < need_) return "";
  return step_ == Step::kGreeting ? on_greeting() : on_request();
}

std::string Socks5Handshake::refuse(const char* why, std::string answer) {
  step_ = Step::kRefused;
  refusal_ = why;
  return answer;
}

// `05 n methods...`: accepted when it offers "no authentication" (libzmq does unless given a user name).
std::string Socks5Handshake::on_greeting() {
  if (byte_at(buffer_, 0) != socks5::kVersion) return refuse("not a SOCKS5 greeting", "");
  const std::size_t methods = byte_at(buffer_, 1);
  const std::string no_method{static_cast<char>(socks5::kVersion), static_cast<char>(socks5::kNoAcceptableMethod)};
  if (methods == 0) return refuse("a SOCKS5 greeting offering no method", no_method);
  if (need_ == kGreetingHead) {
    need_ += methods;
    return "";
  }
  if (buffer_.find(static_cast<char>(socks5::kNoAuthentication), kGreetingHead) == std::string::npos) {
    return refuse("a SOCKS5 greeting without the no-authentication method", no_method);
  }
  step_ = Step::kRequest;
  buffer_.clear();
  need_ = kRequestHead;
  return std::string{static_cast<char>(socks5::kVersion), static_cast<char>(socks5::kNoAuthentication)};
}

// `05 01 00 03 len name port`: a CONNECT to a domain name (the token); anything else is refused with its code.
std::string Socks5Handshake::on_request() {
  if (need_ == kRequestHead) {
    if (byte_at(buffer_, 0) != socks5::kVersion) {
      return refuse("not a SOCKS5 request", socks5::reply(socks5::Reply::kGeneralFailure));
    }
    if (byte_at(buffer_, 1) != socks5::kConnect) {
      return refuse("a SOCKS5 command other than CONNECT", socks5::reply(socks5::Reply::kCommandNotSupported));
    }
    if (byte_at(buffer_, 3) != socks5::kDomainName) {
      return refuse("a SOCKS5 address that is not a domain name",
                    socks5::reply(socks5::Reply::kAddressTypeNotSupported));
    }
    need_ += 1;  // the name's length
    return "";
  }
  if (need_ == kRequestHead + 1) {
    const std::size_t length = byte_at(buffer_, kRequestHead);
    if (length == 0) return refuse("an empty SOCKS5 domain name", socks5::reply(socks5::Reply::kGeneralFailure));
    need_ += length + kPortBytes;
    return "";
  }
  host_ = buffer_.substr(kRequestHead + 1, need_ - kRequestHead - 1 - kPortBytes);
  port_ = static_cast<std::uint16_t>(byte_at(buffer_, need_ - 2) << 8 | byte_at(buffer_, need_ - 1));
  step_ = Step::kDone;
  buffer_.clear();
  return "";
}

}  // namespace zshare::relay
