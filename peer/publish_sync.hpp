// publish_sync.hpp: makes the broker's index of one user match what this peer serves (its ContentCatalog):
// publishes what is missing, republishes what changed (content, chunk size or root). Used by serve at start
// and by the SessionKeeper after a broker restart, so a search after recovery finds what it found before.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/content_catalog.hpp"

#include <string>
#include <vector>

namespace zshare::peer {

struct SyncReport {
  std::size_t published = 0;   // new or changed entries sent
  std::size_t deleted = 0;     // index entries this peer no longer serves (only with delete_extra)
  std::vector<std::string> failures;  // one sentence each
};

// Throws BrokerUnreachable / BadReply like BrokerClient's calls.
SyncReport sync_published(BrokerClient& broker, const std::string& user, const ContentCatalog& catalog,
                          bool delete_extra);

}  // namespace zshare::peer
