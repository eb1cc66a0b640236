// request_pool.hpp: the load generator's requests come from a fixed pool (the same for every run with the same
// knobs), so the echo baseline can answer each one with the bytes the broker answered it with: `calibrate` asks the
// broker each pool request once and saves the replies (a canned-replies file), and the echo sends back, for pool
// entry k, canned reply k. Both sides of the comparison then move the same reply bytes per request.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace zshare::bench {

enum class RequestKind : std::uint8_t { kSearch, kListContent };

struct PoolEntry {
  RequestKind kind;
  std::string arg;  // SEARCH: q; LIST_CONTENT: the user
};

// `size` requests drawn from the bench mix (workload.hpp): LIST_CONTENT of a random user with probability
// `list_fraction`, else SEARCH of a random query. Deterministic in its arguments.
std::vector<PoolEntry> make_pool(std::size_t size, std::uint64_t users, double list_fraction);

// The canned-replies file: "ZSHARE-CANNED 1\n", the entry count, then per entry its length and bytes (little
// endian u32s). Reading checks the header and every length against the file's size.
void write_canned(const std::string& path, const std::vector<std::string>& replies);
std::vector<std::string> read_canned(const std::string& path);

}  // namespace zshare::bench
