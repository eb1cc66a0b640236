// content_hash.hpp: content ids as Merkle roots over 16 KiB blocks (the BEP 52 layout; schemas/protocol.md,
// "Content ids and chunk hashes"). One pass over the bytes gives every chunk's node and the root, so a chunk is
// verified by folding its own blocks, and the id does not depend on anyone's chunk size.
#pragma once

#include "common/validate.hpp"

#include <cstdint>
#include <string>
#include <vector>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace zshare {

inline constexpr std::uint32_t kBlockSize = 16 * 1024;            // the tree's leaves hash blocks of this size
inline constexpr std::uint32_t kDefaultChunkSize = 1024 * 1024;   // bench/run_transfer_bench.sh: best with window 32

// A file's id and its chunk layer: the tree's nodes that each cover one chunk of `chunk_size` bytes.
struct ContentHashes {
  std::uint64_t size = 0;
  std::uint32_t chunk_size = kDefaultChunkSize;
  Hash cid{};               // the Merkle root
  std::vector<Hash> layer;  // one node per chunk; they fold up to `cid` (layer_root)
};

Hash sha256(const void* data, std::size_t size);
Hash hash_pair(const Hash& left, const Hash& right);  // a parent: SHA-256 of its children's 64 bytes

// The hash of a subtree of `height` whose leaves are all padding (32 zero bytes at height 0).
const Hash& pad_hash(unsigned height);
// The tree's height: log2 of its leaf count padded to a power of two (0 for one block or none).
unsigned tree_height(std::uint64_t size);
// The height of the chunk layer for `chunk_size` (a power of two, a multiple of kBlockSize): the chunk's own
// height, or the tree's when the whole file fits in one chunk (that chunk's node is then the root).
unsigned layer_height(std::uint64_t size, std::uint32_t chunk_size);
// The number of chunks of `chunk_size` in a file of `size` bytes.
std::uint64_t chunk_count(std::uint64_t size, std::uint32_t chunk_size);

// Folds a layer of nodes at `height` up to the root, padding it with pad_hash(height) to a power of two.
Hash layer_root(std::vector<Hash> layer, unsigned height);
// The same layer for a chunk `factor` times larger (a power of two): every `factor` nodes fold into one.
std::vector<Hash> coarser_layer(const std::vector<Hash>& layer, unsigned height, std::uint32_t factor);

// Hashes chunks: the node of `size` bytes (at most 2^height blocks) at `height`. Keeps one OpenSSL context, so
// one per thread; never shared between threads.
class ChunkHasher {
 public:
  ChunkHasher();
  ~ChunkHasher();
  ChunkHasher(const ChunkHasher&) = delete;
  ChunkHasher& operator=(const ChunkHasher&) = delete;
  Hash node(const void* data, std::size_t size, unsigned height);

 private:
  Hash block(const void* data, std::size_t size);
  ::evp_md_ctx_st* ctx_;
  std::vector<Hash> level_;
};

// Reads the file once. Throws std::runtime_error with the path and the reason when it cannot, or when `path` is
// not a regular file (a FIFO is refused, never waited on) or is a symlink and `follow_symlinks` is false.
ContentHashes hash_file(const std::string& path, std::uint32_t chunk_size = kDefaultChunkSize,
                        bool follow_symlinks = true);

}  // namespace zshare
