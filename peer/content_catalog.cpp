// content_catalog.cpp: a name-keyed map plus a content-id index, both under one mutex. Several names may
// share one content id; the index points at one of them and is repaired when that one is removed.
#include "peer/content_catalog.hpp"

namespace zshare::peer {

namespace {

std::string key(const Hash& cid) { return std::string(reinterpret_cast<const char*>(cid.data()), cid.size()); }

}  // namespace

void ContentCatalog::add(std::shared_ptr<const SharedContent> content) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto old = by_name_.find(content->name);
  if (old != by_name_.end()) unindex(old->second);
  by_cid_[key(content->hashes.cid)] = content;
  by_name_[content->name] = std::move(content);
}

void ContentCatalog::unindex(const std::shared_ptr<const SharedContent>& gone) {
  auto it = by_cid_.find(key(gone->hashes.cid));
  if (it == by_cid_.end() || it->second != gone) return;
  by_cid_.erase(it);
  for (const auto& [name, other] : by_name_) {  // another name with the same content keeps it servable
    if (other != gone && other->hashes.cid == gone->hashes.cid) {
      by_cid_[key(other->hashes.cid)] = other;
      break;
    }
  }
}

void ContentCatalog::remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return;
  auto gone = it->second;
  by_name_.erase(it);
  unindex(gone);
}

void ContentCatalog::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  by_name_.clear();
  by_cid_.clear();
}

std::shared_ptr<const SharedContent> ContentCatalog::find(const Hash& cid) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_cid_.find(key(cid));
  return it == by_cid_.end() ? nullptr : it->second;
}

std::shared_ptr<const SharedContent> ContentCatalog::find_name(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const SharedContent>> ContentCatalog::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<const SharedContent>> out;
  for (const auto& [name, content] : by_name_) out.push_back(content);
  return out;
}

}  // namespace zshare::peer
