// manifest_fetch.hpp: a download's first step: the chunk layer (one node per chunk) from whichever source answers
// first with a layer that folds up to the content id. Every source is asked at once, so a dead one listed first
// costs nothing; a source whose layer is wrong or that does not answer is dropped, with the reason.
#pragma once

#include "common/validate.hpp"
#include "peer/downloader.hpp"
#include "peer/source_link.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace zshare::peer {

struct LayerRequest {
  Hash cid{};
  std::uint32_t chunk_size = 0;
  std::uint64_t chunks = 0;
  unsigned height = 0;  // the layer's height in the tree (content_hash.hpp, layer_height)
  std::chrono::milliseconds timeout{5000};
};

// The verified layer, or empty when no source gave one (each link says why, or `stopped` became true).
std::vector<Hash> fetch_chunk_layer(std::vector<std::unique_ptr<SourceLink>>& links, const LayerRequest& want,
                                    std::uint64_t& next_id, const std::function<bool()>& stopped);

}  // namespace zshare::peer
