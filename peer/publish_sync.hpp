// publish_sync.hpp: makes the broker's index of one user match what this peer serves (its ContentCatalog):
// publishes what is missing, republishes what changed (content or chunk size), and (delete_extra) deletes
// what it no longer serves. Used by serve's reconcile passes (ShareSync) and by the SessionKeeper after a broker
// restart, so a search after recovery finds what it found before.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/content_catalog.hpp"

#include <atomic>
#include <string>
#include <vector>

namespace zshare::peer {

struct SyncReport {
  std::vector<std::string> published;    // names the index did not hold, now published
  std::vector<std::string> republished;  // names the index held with other content: deleted, then published anew
  std::vector<std::string> deleted;      // index entries this peer no longer serves (only with delete_extra)
  std::vector<std::string> failures;     // one sentence each
  bool complete = true;                  // false when stopped before every entry was seen to

  std::size_t sent() const { return published.size() + republished.size(); }  // PUBLISH requests that succeeded
};

// Throws BrokerUnreachable / BadReply like BrokerClient's calls. `stop`, when given and set, ends the sync between
// two requests (the report then says complete = false).
SyncReport sync_published(BrokerClient& broker, const std::string& user, const ContentCatalog& catalog,
                          bool delete_extra, const std::atomic<bool>* stop = nullptr);

}  // namespace zshare::peer
