// test_relay_token.cpp: relay tokens (common/relay_token.hpp): a known answer computed apart (Python's hmac), the
// host spelling and its strict parse, validity up to the expiry, any changed field or secret refused; the secret
// file: written 0600 and never over another, read back, refused when loose, short, long or not hex.
#include "common/relay_token.hpp"

#include "temp_folder.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include <sys/stat.h>

using namespace zshare::relay_token;

namespace {

// bytes 00 01 ... 1f
std::string counting_secret() {
  std::string secret(kSecretBytes, '\0');
  for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<char>(i);
  return secret;
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary) << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string load_error(const std::string& path) {
  try {
    load_secret(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

const std::string kNonce = "00112233445566778899aabbccddeeff";

}  // namespace

TEST_CASE("relay token: the mac is the first 128 bits of HMAC-SHA256 over the spec's message", "[relay_token]") {
  // Python: hmac.new(bytes(range(32)), b"zshare-relay-v2|s|1700000000|0011...eeff", sha256).hexdigest()[:32]
  CHECK(mac_of(counting_secret(), Side::kSeeder, 1700000000, kNonce) == "2afdbc94390f2d297d1a7072d088d413");
  CHECK(mac_of(counting_secret(), Side::kDownloader, 1700000000, kNonce) == "e3e1637eba8bf10761bcae4a2fd3cf3c");
  const Token seeder{1700000000, kNonce, "2afdbc94390f2d297d1a7072d088d413"};
  CHECK(host_for(seeder, Side::kSeeder) ==
        "s.1700000000.00112233445566778899aabbccddeeff.2afdbc94390f2d297d1a7072d088d413");
  const Token downloader{1700000000, kNonce, "e3e1637eba8bf10761bcae4a2fd3cf3c"};
  CHECK(connect_endpoint(downloader, Side::kDownloader) ==
        "tcp://d.1700000000.00112233445566778899aabbccddeeff.e3e1637eba8bf10761bcae4a2fd3cf3c:9");
  CHECK(valid(counting_secret(), seeder, Side::kSeeder, 1699999999));
  CHECK(valid(counting_secret(), downloader, Side::kDownloader, 1699999999));
}

TEST_CASE("relay token: minted pairs parse back, are valid until their expiry, and differ", "[relay_token]") {
  const std::string secret = counting_secret();
  const Pair pair = mint(secret, 1000, 300);
  CHECK(pair.seeder.expiry_s == 1300);
  CHECK(pair.downloader.expiry_s == 1300);
  CHECK(pair.seeder.nonce_hex.size() == kNonceHexLength);
  CHECK(pair.downloader.nonce_hex == pair.seeder.nonce_hex);
  CHECK(pair.seeder.mac_hex == mac_of(secret, Side::kSeeder, 1300, pair.seeder.nonce_hex));
  CHECK(pair.downloader.mac_hex == mac_of(secret, Side::kDownloader, 1300, pair.seeder.nonce_hex));
  CHECK(pair.seeder.mac_hex != pair.downloader.mac_hex);
  for (Side side : {Side::kSeeder, Side::kDownloader}) {
    const Token& token = side == Side::kSeeder ? pair.seeder : pair.downloader;
    const auto claim = parse(host_for(token, side));
    REQUIRE(claim);
    CHECK(claim->side == side);
    CHECK(claim->token.expiry_s == token.expiry_s);
    CHECK(claim->token.nonce_hex == token.nonce_hex);
    CHECK(claim->token.mac_hex == token.mac_hex);
    CHECK(valid(secret, token, side, 1000));
    CHECK(valid(secret, token, side, 1299));
    CHECK_FALSE(valid(secret, token, side, 1300));  // the expiry is the first second it is no longer valid
    CHECK_FALSE(valid(secret, token, side, 5000));
  }
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) nonces.insert(mint(secret, 1000, 300).seeder.nonce_hex);
  CHECK(nonces.size() == 100);
  CHECK_THROWS_AS(mint(secret, UINT64_MAX - 5, 10), std::invalid_argument);
}

TEST_CASE("relay token: a changed expiry, nonce, mac, side or secret is refused", "[relay_token]") {
  const std::string secret = counting_secret();
  const Token token = mint(secret, 1000, 300).downloader;
  CHECK(valid(secret, token, Side::kDownloader, 1000));
  CHECK_FALSE(valid(secret, token, Side::kSeeder, 1000));  // a downloader cannot be the seeder's side too
  Token later = token;
  later.expiry_s += 1;  // stretching the lifetime breaks the mac
  CHECK_FALSE(valid(secret, later, Side::kDownloader, 1000));
  Token other_nonce = token;
  other_nonce.nonce_hex[0] = other_nonce.nonce_hex[0] == 'a' ? 'b' : 'a';
  CHECK_FALSE(valid(secret, other_nonce, Side::kDownloader, 1000));
  Token other_mac = token;
  other_mac.mac_hex[31] = other_mac.mac_hex[31] == '0' ? '1' : '0';
  CHECK_FALSE(valid(secret, other_mac, Side::kDownloader, 1000));
  Token short_mac = token;
  short_mac.mac_hex.pop_back();
  CHECK_FALSE(valid(secret, short_mac, Side::kDownloader, 1000));
  std::string other_secret = secret;
  other_secret[0] ^= 1;
  CHECK_FALSE(valid(other_secret, token, Side::kDownloader, 1000));
}

TEST_CASE("relay token: parse takes exactly the canonical spelling", "[relay_token]") {
  const std::string mac = "2bf855c00240132f2e6082d47c1c9223";
  const std::string good = "d.1700000000." + kNonce + "." + mac;
  REQUIRE(parse(good));
  CHECK(parse("s.0." + kNonce + "." + mac));  // expiry 0: well formed (and expired)
  const std::string upper_nonce = "00112233445566778899AABBCCDDEEFF";
  for (const std::string& bad : {
           std::string(""), std::string("d"), std::string("d."), std::string("x.1700000000." + kNonce + "." + mac),
           std::string("S.1700000000." + kNonce + "." + mac),          // side letters are lowercase
           std::string("d.01700000000." + kNonce + "." + mac),         // a leading zero: a second spelling
           std::string("d.-1." + kNonce + "." + mac), std::string("d.+1." + kNonce + "." + mac),
           std::string("d.." + kNonce + "." + mac),                    // no expiry
           std::string("d.18446744073709551616." + kNonce + "." + mac),  // 2^64
           std::string("d.1700000000." + upper_nonce + "." + mac),
           std::string("d.1700000000." + kNonce.substr(1) + "." + mac),
           std::string("d.1700000000." + kNonce + "." + mac + "0"),
           std::string("d.1700000000." + kNonce + "." + mac.substr(1)),
           std::string("d.1700000000." + kNonce + "." + mac + ".x"),
           std::string("d.1700000000." + kNonce + mac),
           std::string("d.1700000000." + kNonce + "." + mac.substr(0, 31) + "g"),
           std::string("d.1700000000." + kNonce + "." + mac + ":9"),
           good + std::string(1, '\0'),
       }) {
    CAPTURE(bad);
    CHECK_FALSE(parse(bad));
  }
  CHECK(parse("d.18446744073709551615." + kNonce + "." + mac));  // 2^64 - 1 fits
}

TEST_CASE("relay token: a new secret file is 0600, 64 hex digits, and never replaces a file", "[relay_token]") {
  zshare::test::TempFolder dir("zshare-relay-secret");
  const std::string path = dir / "relay.secret";
  write_new_secret(path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text.size() == 65);
  CHECK(text.back() == '\n');
  CHECK(text.find_first_not_of("0123456789abcdef\n") == std::string::npos);
  const std::string secret = load_secret(path);
  CHECK(secret.size() == kSecretBytes);
  // An existing file is kept as it was, and the error says so.
  try {
    write_new_secret(path);
    FAIL("write_new_secret replaced an existing file");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("never overwritten"));
  }
  CHECK(load_secret(path) == secret);
  // Two fresh secrets differ.
  write_new_secret(dir / "second.secret");
  CHECK(load_secret(dir / "second.secret") != secret);
}

TEST_CASE("relay token: load_secret reads hex with or without a newline, refuses loose modes and bad text",
          "[relay_token]") {
  zshare::test::TempFolder dir("zshare-relay-secret");
  const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  write_file(dir / "plain", hex, 0600);
  CHECK(load_secret(dir / "plain") == counting_secret());
  write_file(dir / "upper", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n", 0400);
  CHECK(load_secret(dir / "upper") == counting_secret());

  write_file(dir / "loose", hex + "\n", 0640);
  const std::string loose = load_error(dir / "loose");
  CHECK_THAT(loose, Catch::Contains(dir / "loose") && Catch::Contains("0640") && Catch::Contains("chmod 600"));
  write_file(dir / "world", hex + "\n", 0604);
  CHECK_THAT(load_error(dir / "world"), Catch::Contains("only its owner"));

  write_file(dir / "short", hex.substr(2) + "\n", 0600);
  CHECK_THAT(load_error(dir / "short"), Catch::Contains(dir / "short") && Catch::Contains("64 hex digits"));
  write_file(dir / "long", hex + "00\n", 0600);
  CHECK_THAT(load_error(dir / "long"), Catch::Contains("64 hex digits"));
  write_file(dir / "two-lines", hex + "\n\n", 0600);
  CHECK_THAT(load_error(dir / "two-lines"), Catch::Contains("64 hex digits"));
  write_file(dir / "not-hex", "zz" + hex.substr(2), 0600);
  CHECK_THAT(load_error(dir / "not-hex"), Catch::Contains("not a hex digit"));
  CHECK_THAT(load_error(dir / "missing"), Catch::Contains(dir / "missing") && Catch::Contains("No such file"));
  CHECK_THAT(load_error(dir.path), Catch::Contains("not a regular file"));
}
