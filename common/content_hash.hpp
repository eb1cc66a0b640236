// content_hash.hpp: SHA-256 content ids and per-chunk hashes under a Merkle root (schemas/protocol.md).
// The peer hashes a file once to publish it; downloads verify chunks against the same tree.
#pragma once

#include "common/validate.hpp"

#include <cstdint>
#include <string>
#include <vector>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace zshare {

inline constexpr std::uint32_t kDefaultChunkSize = 1024 * 1024;  // bench/run_transfer_bench.sh: best with window 32

struct ContentHashes {
  std::uint64_t size = 0;
  std::uint32_t chunk_size = kDefaultChunkSize;
  Hash cid{};               // SHA-256 of the whole file
  Hash root{};              // Merkle root of `leaves`
  std::vector<Hash> leaves; // SHA-256 of each chunk
};

Hash sha256(const void* data, std::size_t size);

// SHA-256 fed piece by piece (OpenSSL EVP underneath).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(const void* data, std::size_t size);
  Hash finish();

 private:
  ::evp_md_ctx_st* ctx_;
};
Hash merkle_root(const std::vector<Hash>& leaves);

// Reads the file once. Throws std::runtime_error with the path and errno text when it cannot.
ContentHashes hash_file(const std::string& path, std::uint32_t chunk_size = kDefaultChunkSize);

}  // namespace zshare
