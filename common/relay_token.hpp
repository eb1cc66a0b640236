// relay_token.hpp: the capability that lets two peers behind NAT meet at zshare-relay. The broker mints a token with
// a secret it shares with the relay; both ends of one transfer link dial the relay through libzmq's SOCKS5 client
// with the token as the host name ("s.<expiry>.<nonce>.<mac>" for the seeder, "d...." for the downloader). The relay
// pairs one `s` and one `d` of the same expiry and nonce. mac = the first 128 bits, in hex, of
// HMAC-SHA256(secret, "zshare-relay-v2|" + side + "|" + expiry + "|" + nonce), side "s" or "d"; a token is valid
// before its expiry (unix seconds).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zshare::relay_token {

enum class Side { kSeeder, kDownloader };

// One side's token: the side is part of what the mac covers, so holding one side's token gives no way to make
// the other's (nobody can be both ends of a circuit and use the relay as a free tunnel).
struct Token {
  std::uint64_t expiry_s = 0;  // unix seconds; the token is valid while now < expiry_s
  std::string nonce_hex;       // 32 lowercase hex digits (16 random bytes): with the expiry, it names the pair
  std::string mac_hex;         // 32 lowercase hex digits (the first 16 bytes of the HMAC)
};

// The two sides of one link, as the broker mints them: the same expiry and nonce, each side's own mac.
struct Pair {
  Token seeder;
  Token downloader;
};

constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kNonceHexLength = 32;
constexpr std::size_t kMacHexLength = 32;
constexpr std::uint16_t kTokenPort = 9;  // the port of the connect endpoint; the relay ignores it

// The shared secret: a file of 64 hex digits and an optional newline, readable by its owner only (like ssh, a file
// group or others may read is refused). Returns the 32 raw bytes; throws std::runtime_error naming the path and the
// problem.
std::string load_secret(const std::string& path);
// Writes a fresh random secret to `path`: created 0600, never overwriting an existing file (throws when it exists).
void write_new_secret(const std::string& path);

// Both sides' tokens, valid for `ttl_s` seconds from `now_s`, with a fresh random nonce.
Pair mint(std::string_view secret, std::uint64_t now_s, std::uint64_t ttl_s);
// `side`'s mac of (expiry, nonce) under `secret`: 32 lowercase hex digits.
std::string mac_of(std::string_view secret, Side side, std::uint64_t expiry_s, std::string_view nonce_hex);

std::string host_for(const Token& token, Side side);          // "s.<expiry>.<nonce>.<mac>"
std::string connect_endpoint(const Token& token, Side side);  // "tcp://" + host_for + ":9"

struct Claim {
  Token token;
  Side side;
};
// The host name's syntax only (no secret needed): side letter, canonical decimal expiry (no sign, no leading zero),
// 32 lowercase hex nonce and mac. nullopt for anything else.
std::optional<Claim> parse(std::string_view host);
// The mac is `side`'s (compared in constant time) and now_s < expiry_s.
bool valid(std::string_view secret, const Token& token, Side side, std::uint64_t now_s);

}  // namespace zshare::relay_token
