// curve_keys.cpp: key files are small TOML-shaped text (public-key = "...", secret-key = "..."), so an
// operator can read the public half and paste it into a peer's config; secrets are refused when not 0600.
#include "common/curve_keys.hpp"

#include "common/private_file.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace zshare::curve {

namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// The value of `name = "..."` in a key file, or empty when absent.
std::string field(const std::string& text, std::string_view name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    if (line.compare(start, name.size(), name) != 0) continue;
    const auto open = line.find('"', start + name.size());
    const auto close = open == std::string::npos ? open : line.find('"', open + 1);
    if (close == std::string::npos) continue;
    return line.substr(open + 1, close - open - 1);
  }
  return {};
}

std::string read_small_file(const std::string& path, struct stat& st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw KeyError("cannot open key file " + path + ": " + std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 4096) {
    ::close(fd);
    throw KeyError("key file " + path + " is not a regular file of at most 4 KiB");
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  const ssize_t got = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (got != static_cast<ssize_t>(text.size())) throw KeyError("cannot read key file " + path);
  return text;
}

void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  // Written whole under a temporary name, then linked into place: a reader (another peer starting at the
  // same moment) sees no file or the whole file, and link() refuses to replace an existing key.
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw KeyError("cannot create key file " + path + ": " + std::strerror(errno));
  const bool written = ::fchmod(fd, mode) == 0 &&  // the umask must not loosen or tighten what we promise
                       ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  const bool linked = written && ::link(tmp.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (!written) throw KeyError("cannot write key file " + path + ": " + std::strerror(write_errno));
  if (!linked) {
    throw KeyError("cannot create key file " + path + ": " + std::strerror(link_errno) +
                   (link_errno == EEXIST ? " (an existing key is never overwritten)" : ""));
  }
}

}  // namespace

bool is_z85_key(std::string_view text) {
  return text.size() == kZ85KeyLength && text.find_first_not_of(kZ85Alphabet) == std::string_view::npos;
}

KeyPair generate() {
  char pub[41];
  char sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw KeyError(std::string("cannot create a CurveZMQ keypair: ") + zmq_strerror(zmq_errno()));
  }
  return KeyPair{pub, sec};
}

void write_secret_file(const std::string& path, const KeyPair& keys) {
  write_new_file(path,
                 "# zshare CurveZMQ keypair. The secret key must stay private: keep this file mode 0600.\n"
                 "public-key = \"" + keys.public_key + "\"\n" +
                 "secret-key = \"" + keys.secret_key + "\"\n",
                 0600);
}

void write_public_file(const std::string& path, std::string_view public_key) {
  write_new_file(path,
                 "# zshare CurveZMQ public key: give it to the peers (--broker-key, or broker-key in their config).\n"
                 "public-key = \"" + std::string(public_key) + "\"\n",
                 0644);
}

KeyPair read_secret_file(const std::string& path) {
  struct stat st {};
  const std::string text = read_small_file(path, st);
  if (auto loose = loose_permissions(path, st)) {
    throw KeyError("key file " + path + " holds a secret key, and " + *loose);
  }
  KeyPair keys{field(text, "public-key"), field(text, "secret-key")};
  if (!is_z85_key(keys.public_key) || !is_z85_key(keys.secret_key)) {
    throw KeyError("key file " + path + " needs public-key and secret-key lines, each a 40-character Z85 key");
  }
  char derived[41];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived) {
    throw KeyError("key file " + path + ": its public key does not belong to its secret key");
  }
  return keys;
}

std::string read_public_key(const std::string& key_or_path) {
  // A file that exists is read as one: a 40-character path can be made of Z85 characters alone
  // ("/tmp/zshare-natbench-3gwp0p31/broker.pub" is), and taken as a key it would fail every handshake.
  struct stat st {};
  const bool is_file = ::stat(key_or_path.c_str(), &st) == 0;
  if (!is_file && is_z85_key(key_or_path)) return key_or_path;
  if (!is_file) {
    if (auto from_hex = z85_of_hex(key_or_path)) return *from_hex;
  }
  const std::string text = read_small_file(key_or_path, st);
  if (!field(text, "secret-key").empty()) {
    throw KeyError(key_or_path + " holds a secret key: give peers only its public half (the .pub file `keygen` "
                   "wrote beside it); whoever holds the secret key can pose as this server");
  }
  std::string key = field(text, "public-key");
  if (!is_z85_key(key)) {
    throw KeyError(key_or_path + " is neither a 40-character Z85 public key nor a key file with a public-key line");
  }
  return key;
}

std::optional<std::string> z85_of_hex(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  std::uint8_t raw[32];
  for (std::size_t i = 0; i < 32; ++i) {
    int v = 0;
    for (char c : text.substr(2 * i, 2)) {
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return std::nullopt;
    }
    raw[i] = static_cast<std::uint8_t>(v);
  }
  char z85[41];
  if (!zmq_z85_encode(z85, raw, sizeof raw)) return std::nullopt;
  return std::string(z85);
}

std::string hex_of_z85(std::string_view key) {
  std::uint8_t raw[32];
  const std::string text(key);
  if (!is_z85_key(text) || !zmq_z85_decode(raw, text.c_str())) return "";
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : raw) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string default_key_dir() {
  if (const char* home = std::getenv("ZSHARE_HOME"); home && *home) return home;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) return std::string(xdg) + "/zshare";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.config/zshare";
  throw KeyError("no key folder: set --key-dir, ZSHARE_HOME or HOME");
}

KeyPair load_or_create(const std::string& dir) {
  const std::string path = dir + "/peer.key";
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return read_secret_file(path);
  // mkdir -p with 0700 for the parts we create; an existing folder keeps its mode.
  for (std::size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string part = dir.substr(0, slash);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      throw KeyError("cannot create key folder " + part + ": " + std::strerror(errno));
    }
    if (slash == std::string::npos) break;
  }
  const KeyPair keys = generate();
  try {
    write_secret_file(path, keys);
  } catch (const KeyError&) {
    if (::lstat(path.c_str(), &st) == 0) return read_secret_file(path);  // another process created it first
    throw;
  }
  return keys;
}

void make_server(zmq::socket_t& socket, const KeyPair& own) {
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

void make_client(zmq::socket_t& socket, const KeyPair& own, std::string_view server_public_key) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_key);
  socket.set(zmq::sockopt::curve_publickey, own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

}  // namespace zshare::curve
