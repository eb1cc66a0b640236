// relay_token.cpp: minting, spelling, parsing and checking relay tokens (HMAC-SHA256 and RAND_bytes of OpenSSL),
// and the secret file they are keyed with (64 hex digits, owner-only, never overwritten).
#include "common/relay_token.hpp"

#include "common/private_file.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace zshare::relay_token {

namespace {

constexpr std::string_view kMacContext = "zshare-relay-v2|";
constexpr std::size_t kMaxSecretFileBytes = 2 * kSecretBytes + 2;  // hex digits, "\r\n" at most
constexpr std::size_t kMaxExpiryDigits = 20;                        // 2^64 - 1 has 20 digits

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * size, '0');
  for (std::size_t i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return hex;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_lower_hex(std::string_view text, std::size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Decimal seconds as written by host_for: digits only, no leading zero (so one token has one spelling), fits 64 bits.
std::optional<std::uint64_t> parse_expiry(std::string_view text) {
  if (text.empty() || text.size() > kMaxExpiryDigits || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::string random_hex(std::size_t bytes) {
  unsigned char buffer[64];
  if (bytes > sizeof buffer || RAND_bytes(buffer, static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("cannot draw random bytes (OpenSSL RAND_bytes failed)");
  }
  return to_hex(buffer, bytes);
}

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("secret file " + path + ": " + problem);
}

// The file's bytes, after checking it is a small regular file only its owner may read.
std::string read_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail(path, std::string("cannot open it: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  if (auto loose = loose_permissions(path, st)) {
    ::close(fd);
    fail(path, "it holds the relay secret, and " + *loose);
  }
  std::string text(kMaxSecretFileBytes + 1, '\0');
  const ssize_t got = ::read(fd, text.data(), text.size());
  const int read_errno = errno;
  ::close(fd);
  if (got < 0) fail(path, std::string("cannot read it: ") + std::strerror(read_errno));
  text.resize(static_cast<std::size_t>(got));
  return text;
}

}  // namespace

std::string load_secret(const std::string& path) {
  std::string text = read_private_file(path);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.size() != 2 * kSecretBytes) {
    fail(path, "must hold exactly 64 hex digits (and an optional newline); make one with `zshare-relay secret " +
                   path + "`");
  }
  std::string secret(kSecretBytes, '\0');
  for (std::size_t i = 0; i < kSecretBytes; ++i) {
    const int high = hex_value(text[2 * i]);
    const int low = hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0) fail(path, "holds a character that is not a hex digit");
    secret[i] = static_cast<char>(high << 4 | low);
  }
  return secret;
}

void write_new_secret(const std::string& path) {
  const std::string text = random_hex(kSecretBytes) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int open_errno = errno;
    fail(path, std::string("cannot create it: ") + std::strerror(open_errno) +
                   (open_errno == EEXIST ? " (an existing secret is never overwritten)" : ""));
  }
  const bool written = ::fchmod(fd, 0600) == 0 &&  // whatever the umask: owner read/write, nobody else
                       ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    fail(path, std::string("cannot write it: ") + std::strerror(write_errno));
  }
}

std::string mac_of(std::string_view secret, Side side, std::uint64_t expiry_s, std::string_view nonce_hex) {
  std::string message(kMacContext);
  message += side == Side::kSeeder ? "s|" : "d|";
  message += std::to_string(expiry_s);
  message += '|';
  message += nonce_hex;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &digest_size) == nullptr ||
      digest_size < kMacHexLength / 2) {
    throw std::runtime_error("HMAC-SHA256 failed (OpenSSL)");
  }
  return to_hex(digest, kMacHexLength / 2);
}

Pair mint(std::string_view secret, std::uint64_t now_s, std::uint64_t ttl_s) {
  if (ttl_s > UINT64_MAX - now_s) throw std::invalid_argument("relay token: now + ttl does not fit in 64 bits");
  Pair pair;
  pair.seeder.expiry_s = now_s + ttl_s;
  pair.seeder.nonce_hex = random_hex(kNonceHexLength / 2);
  pair.downloader = pair.seeder;
  pair.seeder.mac_hex = mac_of(secret, Side::kSeeder, pair.seeder.expiry_s, pair.seeder.nonce_hex);
  pair.downloader.mac_hex = mac_of(secret, Side::kDownloader, pair.downloader.expiry_s, pair.downloader.nonce_hex);
  return pair;
}

std::string host_for(const Token& token, Side side) {
  return std::string(side == Side::kSeeder ? "s." : "d.") + std::to_string(token.expiry_s) + "." + token.nonce_hex +
         "." + token.mac_hex;
}

std::string connect_endpoint(const Token& token, Side side) {
  return "tcp://" + host_for(token, side) + ":" + std::to_string(kTokenPort);
}

std::optional<Claim> parse(std::string_view host) {
  if (host.size() < 2 || host[1] != '.' || (host[0] != 's' && host[0] != 'd')) return std::nullopt;
  Claim claim;
  claim.side = host[0] == 's' ? Side::kSeeder : Side::kDownloader;
  std::string_view rest = host.substr(2);
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto expiry = parse_expiry(rest.substr(0, dot));
  rest.remove_prefix(dot + 1);
  // nonce "." mac: exactly two fields of 32 lowercase hex digits.
  if (!expiry || rest.size() != kNonceHexLength + 1 + kMacHexLength || rest[kNonceHexLength] != '.') {
    return std::nullopt;
  }
  const std::string_view nonce = rest.substr(0, kNonceHexLength);
  const std::string_view mac = rest.substr(kNonceHexLength + 1);
  if (!is_lower_hex(nonce, kNonceHexLength) || !is_lower_hex(mac, kMacHexLength)) return std::nullopt;
  claim.token.expiry_s = *expiry;
  claim.token.nonce_hex = std::string(nonce);
  claim.token.mac_hex = std::string(mac);
  return claim;
}

bool valid(std::string_view secret, const Token& token, Side side, std::uint64_t now_s) {
  if (token.mac_hex.size() != kMacHexLength) return false;
  const std::string expected = mac_of(secret, side, token.expiry_s, token.nonce_hex);
  const bool mac_ok = CRYPTO_memcmp(expected.data(), token.mac_hex.data(), kMacHexLength) == 0;
  return mac_ok && now_s < token.expiry_s;
}

}  // namespace zshare::relay_token
