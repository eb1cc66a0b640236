// workload.hpp: the benchmarks' synthetic catalogue, the same for every tool that loads or seeds a broker: file i
// belongs to user i % users and is named track-<i>-<adjective>-<noun>.<ext>; its description has a genre and three
// words of a 1,000-word vocabulary. With N files a description word matches ~N/330 files, an adjective or noun
// ~N/100, adjective+noun ~N/10,000, adjective+description word ~N/33,000; SEARCH queries draw from those four.
#pragma once

#include "common/validate.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace zshare::bench {

std::uint64_t splitmix64(std::uint64_t x);

const std::vector<std::string>& vocabulary();  // the 1,000 description words
std::string user_name(std::uint64_t u);         // user-00042
std::string fake_endpoint(std::uint64_t u);     // a loopback endpoint nobody listens on

struct FileSpec {
  std::string user, name, description;
  Hash cid{};  // sha256 of a per-file seed: the index never checks ids against bytes
  std::uint64_t size = 0;
};
FileSpec file_spec(std::uint64_t i, std::uint64_t users);

// A SEARCH `q` of one of the four kinds above, chosen uniformly.
std::string search_query(std::mt19937_64& rng);

}  // namespace zshare::bench
