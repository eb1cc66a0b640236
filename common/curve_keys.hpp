// curve_keys.hpp: CurveZMQ long-term keys: Z85 keypairs, key files that refuse loose permissions, and the
// socket options of each role (server with its own secret key; client that trusts exactly one server key).
#pragma once

#include <zmq.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace zshare::curve {

// A key file is missing, malformed, or readable by others; the message says which and how to fix it.
struct KeyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct KeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

constexpr std::size_t kZ85KeyLength = 40;

KeyPair generate();
bool is_z85_key(std::string_view text);

// A secret key file holds both keys; it is created 0600 and never overwritten. A public file holds one key.
void write_secret_file(const std::string& path, const KeyPair& keys);
void write_public_file(const std::string& path, std::string_view public_key);

// Reads a secret key file; refuses one that group or others may read or write (KeyError says how to fix).
KeyPair read_secret_file(const std::string& path);

// `key_or_path` is a public key itself (40 Z85 characters, or 64 hex digits: Z85 holds `!` and `$`, which a
// shell may mangle), or a public key file. A file holding a secret key is refused (KeyError): only the
// public half is ever handed out.
std::string read_public_key(const std::string& key_or_path);
// A public key in the other spelling: 64 hex digits as Z85 (nothing when it is not hex), Z85 as hex ("" when bad).
std::optional<std::string> z85_of_hex(std::string_view text);
std::string hex_of_z85(std::string_view key);

// The peer's identity: `dir`/peer.key, created (dir 0700, file 0600) on first use.
KeyPair load_or_create(const std::string& dir);

// The key folder when none is given: $ZSHARE_HOME, else $XDG_CONFIG_HOME/zshare, else ~/.config/zshare.
std::string default_key_dir();

void make_server(zmq::socket_t& socket, const KeyPair& own);
void make_client(zmq::socket_t& socket, const KeyPair& own, std::string_view server_public_key);

// How one program's sockets are secured: CurveZMQ with these keys, or plaintext for a trusted lab network.
struct LinkSecurity {
  bool plaintext = false;
  KeyPair own;
  std::string broker_key;  // the broker's public key (clients of the broker)

  void serve(zmq::socket_t& socket) const {
    if (!plaintext) make_server(socket, own);
  }
  void dial(zmq::socket_t& socket, std::string_view server_key) const {
    if (!plaintext) make_client(socket, own, server_key);
  }
  void dial_broker(zmq::socket_t& socket) const { dial(socket, broker_key); }
};

}  // namespace zshare::curve
