// request_pool.cpp: the request pool and the canned-replies file (request_pool.hpp).
#include "bench/request_pool.hpp"

#include "bench/workload.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace zshare::bench {

namespace {

constexpr char kMagic[] = "ZSHARE-CANNED 1\n";
constexpr std::uint64_t kPoolSeed = 0x7a73686172652d31ULL;  // any constant: the pool is the same in every run

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint32_t get_u32(const std::string& in, std::size_t& at, const std::string& path) {
  if (in.size() - at < 4) throw std::runtime_error(path + ": truncated canned-replies file");
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  at += 4;
  return v;
}

}  // namespace

std::vector<PoolEntry> make_pool(std::size_t size, std::uint64_t users, double list_fraction) {
  std::mt19937_64 rng(kPoolSeed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<PoolEntry> pool;
  pool.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    if (unit(rng) < list_fraction) pool.push_back({RequestKind::kListContent, user_name(rng() % users)});
    else pool.push_back({RequestKind::kSearch, search_query(rng)});
  }
  return pool;
}

void write_canned(const std::string& path, const std::vector<std::string>& replies) {
  std::string out(kMagic);
  put_u32(out, static_cast<std::uint32_t>(replies.size()));
  for (const auto& r : replies) {
    put_u32(out, static_cast<std::uint32_t>(r.size()));
    out += r;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f.write(out.data(), static_cast<std::streamsize>(out.size())) || !f.flush())
    throw std::runtime_error("cannot write " + path);
}

std::vector<std::string> read_canned(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  const std::string in((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::size_t magic = std::strlen(kMagic);
  if (in.compare(0, magic, kMagic) != 0) throw std::runtime_error(path + " is not a canned-replies file");
  std::size_t at = magic;
  const std::uint32_t n = get_u32(in, at, path);
  std::vector<std::string> replies;
  replies.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t len = get_u32(in, at, path);
    if (in.size() - at < len) throw std::runtime_error(path + ": truncated canned-replies file");
    replies.emplace_back(in, at, len);
    at += len;
  }
  if (at != in.size()) throw std::runtime_error(path + ": bytes after the last canned reply");
  return replies;
}

}  // namespace zshare::bench
