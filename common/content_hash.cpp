// content_hash.cpp: one pass over the file feeds the whole-file digest and the chunk digests (OpenSSL EVP).
// Leaves are padded with zero hashes to a power of two, as BitTorrent v2 pads its piece layers.
#include "common/content_hash.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <stdexcept>
#include <unistd.h>

namespace zshare {

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 init failed");
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(ctx_); }

void Sha256Stream::update(const void* data, std::size_t size) { EVP_DigestUpdate(ctx_, data, size); }

Hash Sha256Stream::finish() {
  Hash h{};
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx_, h.data(), &len);
  return h;
}

Hash sha256(const void* data, std::size_t size) {
  Hash h{};
  unsigned len = 0;
  EVP_Digest(data, size, h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

Hash merkle_root(const std::vector<Hash>& leaves) {
  if (leaves.empty()) return Hash{};
  std::size_t width = 1;
  while (width < leaves.size()) width <<= 1;
  std::vector<Hash> level(leaves);
  level.resize(width, Hash{});
  while (level.size() > 1) {
    std::vector<Hash> up(level.size() / 2);
    for (std::size_t i = 0; i < up.size(); ++i) {
      std::uint8_t pair[64];
      std::memcpy(pair, level[2 * i].data(), 32);
      std::memcpy(pair + 32, level[2 * i + 1].data(), 32);
      up[i] = sha256(pair, sizeof pair);
    }
    level.swap(up);
  }
  return level[0];
}

ContentHashes hash_file(const std::string& path, std::uint32_t chunk_size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { ::close(*f); });

  ContentHashes out;
  out.chunk_size = chunk_size;
  Sha256Stream whole;
  std::vector<char> buf(chunk_size);
  for (;;) {
    std::size_t filled = 0;
    while (filled < chunk_size) {
      ssize_t n = ::read(fd, buf.data() + filled, chunk_size - filled);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(path + ": " + std::strerror(errno));
      }
      if (n == 0) break;
      filled += static_cast<std::size_t>(n);
    }
    if (filled == 0) break;
    whole.update(buf.data(), filled);
    out.leaves.push_back(sha256(buf.data(), filled));
    out.size += filled;
    if (filled < chunk_size) break;
  }
  out.cid = whole.finish();
  out.root = merkle_root(out.leaves);
  return out;
}

}  // namespace zshare
