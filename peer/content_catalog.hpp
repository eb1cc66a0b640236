// content_catalog.hpp: what this peer publishes and may serve: name -> local file, size, chunk hashes.
// Thread-safe (the shell or serve loop adds and removes, the seeder thread looks up by content id).
#pragma once

#include "common/content_hash.hpp"
#include "peer/file_identity.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace zshare::peer {

struct SharedContent {
  std::string name;  // as published
  std::string path;  // the local file
  ContentHashes hashes;
  std::string description;
  // The file as it was before hashing (size, mtime, ctime, inode): a file whose identity differs now is not served
  // (its bytes may be new, even with the same size and mtime) until a rescan has hashed it again.
  FileIdentity identity;
};

class ContentCatalog {
 public:
  void add(std::shared_ptr<const SharedContent> content);  // replaces an entry of the same name
  void remove(const std::string& name);
  void clear();
  // Any published entry with this content id; null when nothing of it is published.
  std::shared_ptr<const SharedContent> find(const Hash& cid) const;
  std::shared_ptr<const SharedContent> find_name(const std::string& name) const;
  std::vector<std::shared_ptr<const SharedContent>> all() const;

 private:
  void unindex(const std::shared_ptr<const SharedContent>& gone);  // with mutex_ held

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const SharedContent>> by_name_;
  std::unordered_map<std::string, std::shared_ptr<const SharedContent>> by_cid_;  // 32 raw bytes -> entry
};

}  // namespace zshare::peer
