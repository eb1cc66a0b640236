// content_hash.cpp: the Merkle tree of schemas/protocol.md. Folding pairs a level's last odd node with the padding
// hash of its height, which gives the same root as padding the leaves to a power of two, without hashing padding.
#include "common/content_hash.hpp"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace zshare {

namespace {

constexpr unsigned kMaxHeight = 64;

// Folds `nodes` (the first `count` of them hold nodes at `height`) level by level while `more(height, count)`;
// returns the height reached. The result is nodes[0..count).
template <typename More>
unsigned fold(std::vector<Hash>& nodes, std::size_t& count, unsigned height, More more) {
  while (more(height, count)) {
    const std::size_t up = (count + 1) / 2;
    for (std::size_t i = 0; i < up; ++i) {
      const Hash& right = 2 * i + 1 < count ? nodes[2 * i + 1] : pad_hash(height);
      nodes[i] = hash_pair(nodes[2 * i], right);
    }
    count = up;
    ++height;
  }
  return height;
}

unsigned log2_of(std::uint64_t power_of_two) {
  unsigned k = 0;
  while ((std::uint64_t{1} << k) < power_of_two) ++k;
  return k;
}

}  // namespace

Hash sha256(const void* data, std::size_t size) {
  Hash h{};
  unsigned len = 0;
  EVP_Digest(data, size, h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

Hash hash_pair(const Hash& left, const Hash& right) {
  std::uint8_t pair[64];
  std::memcpy(pair, left.data(), 32);
  std::memcpy(pair + 32, right.data(), 32);
  return sha256(pair, sizeof pair);
}

const Hash& pad_hash(unsigned height) {
  static const std::array<Hash, kMaxHeight> pads = [] {
    std::array<Hash, kMaxHeight> p{};
    for (unsigned h = 1; h < kMaxHeight; ++h) p[h] = hash_pair(p[h - 1], p[h - 1]);
    return p;
  }();
  if (height >= kMaxHeight) throw std::out_of_range("Merkle tree height out of range");
  return pads[height];
}

unsigned tree_height(std::uint64_t size) {
  const std::uint64_t blocks = (size + kBlockSize - 1) / kBlockSize;
  return blocks <= 1 ? 0 : log2_of(blocks);
}

unsigned layer_height(std::uint64_t size, std::uint32_t chunk_size) {
  return std::min(log2_of(chunk_size / kBlockSize), tree_height(size));
}

std::uint64_t chunk_count(std::uint64_t size, std::uint32_t chunk_size) {
  return size == 0 ? 0 : (size + chunk_size - 1) / chunk_size;
}

Hash layer_root(std::vector<Hash> layer, unsigned height) {
  if (layer.empty()) return Hash{};
  std::size_t count = layer.size();
  fold(layer, count, height, [](unsigned, std::size_t n) { return n > 1; });
  return layer[0];
}

std::vector<Hash> coarser_layer(const std::vector<Hash>& layer, unsigned height, std::uint32_t factor) {
  const unsigned levels = log2_of(factor);
  std::vector<Hash> out;
  out.reserve((layer.size() + factor - 1) / factor);
  std::vector<Hash> group;
  for (std::size_t first = 0; first < layer.size(); first += factor) {
    group.assign(layer.begin() + static_cast<std::ptrdiff_t>(first),
                 layer.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(first + factor, layer.size())));
    std::size_t count = group.size();
    fold(group, count, height, [&](unsigned h, std::size_t) { return h < height + levels; });
    out.push_back(group[0]);
  }
  return out;
}

ChunkHasher::ChunkHasher() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) throw std::runtime_error("SHA-256 init failed");
}

ChunkHasher::~ChunkHasher() { EVP_MD_CTX_free(ctx_); }

Hash ChunkHasher::block(const void* data, std::size_t size) {
  Hash h{};
  unsigned len = 0;
  if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1 || EVP_DigestUpdate(ctx_, data, size) != 1 ||
      EVP_DigestFinal_ex(ctx_, h.data(), &len) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return h;
}

Hash ChunkHasher::node(const void* data, std::size_t size, unsigned height) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  std::size_t count = 0;
  level_.resize((size + kBlockSize - 1) / kBlockSize);
  for (std::size_t at = 0; at < size; at += kBlockSize) {
    level_[count++] = block(bytes + at, std::min<std::size_t>(kBlockSize, size - at));
  }
  if (count == 0) return pad_hash(height);
  fold(level_, count, 0, [&](unsigned h, std::size_t) { return h < height; });
  return level_[0];
}

ContentHashes hash_file(const std::string& path, std::uint32_t chunk_size, bool follow_symlinks) {
  check_chunk_size(chunk_size);
  // O_NONBLOCK: a FIFO put in a file's place must not stall the caller (regular files ignore the flag).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow_symlinks ? 0 : O_NOFOLLOW));
  if (fd < 0) {
    const int err = errno;
    throw std::runtime_error(path + ": " + (err == ELOOP ? std::string("a symlink") : std::strerror(err)));
  }
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { ::close(*f); });
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  if (!S_ISREG(sb.st_mode)) throw std::runtime_error(path + ": not a regular file");
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  // The layer's height depends on the size (a file that fits in one chunk has its root as the chunk's node), so
  // the size is taken first; a file that grows or shrinks meanwhile is an error, not a wrong id.
  const auto expected = static_cast<std::uint64_t>(sb.st_size);
  const unsigned height = layer_height(expected, chunk_size);
  ContentHashes out;
  out.chunk_size = chunk_size;
  ChunkHasher hasher;
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
    out.layer.push_back(hasher.node(buf.data(), filled, height));
    out.size += filled;
    if (filled < chunk_size || out.size > expected) break;
  }
  if (out.size != expected) throw std::runtime_error(path + ": changed size while it was hashed");
  out.cid = layer_root(out.layer, height);
  return out;
}

}  // namespace zshare
