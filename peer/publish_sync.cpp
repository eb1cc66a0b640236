// publish_sync.cpp: one LIST_CONTENT, then a PUBLISH (after a DELETE when the entry differs) per entry whose
// cid and chunk size the index does not already hold exactly, then a DELETE per index entry left over.
#include "peer/publish_sync.hpp"

#include "common/validate.hpp"

#include <map>

namespace zshare::peer {

namespace {

std::string tree_of(const std::string& cid, std::uint64_t chunk_size) {
  return cid + "/" + std::to_string(chunk_size);
}

}  // namespace

SyncReport sync_published(BrokerClient& broker, const std::string& user, const ContentCatalog& catalog,
                          bool delete_extra, const std::atomic<bool>* stop) {
  SyncReport report;
  std::map<std::string, std::string> indexed;  // name -> tree the index holds
  BrokerReply listed = broker.list_content(user);
  if (!listed.ok()) {
    report.failures.push_back("LIST_CONTENT " + user + ": " + listed.status + " " + listed.error);
    return report;
  }
  for (const auto& f : listed.fields.value("files", nlohmann::json::array())) {
    indexed[f.value("name", "")] = tree_of(f.value("cid", ""), f.value("chunk_size", std::uint64_t{0}));
  }
  for (const auto& content : catalog.all()) {
    if (stop && *stop) {  // before the deletions below, which need every entry seen to
      report.complete = false;
      return report;
    }
    const auto& h = content->hashes;
    const std::string cid = to_hex(h.cid);
    const std::string tree = tree_of(cid, h.chunk_size);
    auto known = indexed.find(content->name);
    const bool was_indexed = known != indexed.end();
    const bool same = was_indexed && known->second == tree;
    if (was_indexed) indexed.erase(known);
    if (same) continue;
    if (was_indexed) broker.delete_file(user, content->name);  // it changed: the index must describe what we serve
    PublishRequest req{user, content->name, content->description, h.size, cid, h.chunk_size};
    BrokerReply pub = broker.publish(req);
    if (pub.ok()) (was_indexed ? report.republished : report.published).push_back(content->name);
    else report.failures.push_back("PUBLISH " + content->name + ": " + pub.status + " " + pub.error);
  }
  if (delete_extra) {
    for (const auto& [name, tree] : indexed) {
      BrokerReply del = broker.delete_file(user, name);
      if (del.ok()) report.deleted.push_back(name);
      else report.failures.push_back("DELETE " + name + ": " + del.status + " " + del.error);
    }
  }
  return report;
}

}  // namespace zshare::peer
