// file_index.cpp: hash maps keyed by 64-bit digests (checked against the record on lookup) keep the
// per-file overhead small; keyword search intersects posting lists starting from the shortest one.
#include "broker/file_index.hpp"

#include "common/keywords.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

namespace zshare::broker {

namespace {

std::vector<std::string> file_keywords(const FileRecord& f) {
  std::string text = f.name;
  text.push_back(' ');
  text += f.description;
  return keywords(text);
}

}  // namespace

std::uint64_t FileIndex::name_key(UserId user, std::string_view name) {
  return std::hash<std::string_view>{}(name) ^ (static_cast<std::uint64_t>(user) * 0x9E3779B97F4A7C15ULL);
}

std::uint64_t FileIndex::cid_key(const Hash& cid) {
  std::uint64_t k;
  std::memcpy(&k, cid.data(), sizeof k);
  return k;
}

std::optional<UserId> FileIndex::find_user(std::string_view name) const {
  auto it = user_by_name_.find(std::string(name));
  if (it == user_by_name_.end()) return std::nullopt;
  return it->second;
}

UserId FileIndex::add_user(std::string name) {
  const auto id = static_cast<UserId>(users_.size());
  UserRecord u;
  u.name = name;
  u.live = true;
  users_.push_back(std::move(u));
  user_by_name_.emplace(std::move(name), id);
  ++live_users_;
  return id;
}

std::size_t FileIndex::remove_user(UserId id) {
  auto& u = users_[id];
  const std::vector<FileId> owned = u.files;
  for (FileId f : owned) remove_file(f);
  disconnect(id);
  user_by_name_.erase(u.name);
  u.live = false;
  u.files.clear();
  u.files.shrink_to_fit();
  --live_users_;
  return owned.size();
}

void FileIndex::connect(UserId id, std::string endpoint) {
  auto& u = users_[id];
  if (!u.connected) ++connected_;
  u.connected = true;
  u.endpoint = std::move(endpoint);
}

void FileIndex::disconnect(UserId id) {
  auto& u = users_[id];
  if (u.connected) --connected_;
  u.connected = false;
  u.endpoint.clear();
}

std::optional<FileId> FileIndex::find_file(UserId user, std::string_view name) const {
  auto range = by_name_.equal_range(name_key(user, name));
  for (auto it = range.first; it != range.second; ++it) {
    const auto& f = files_[it->second];
    if (f.live && f.user == user && f.name == name) return it->second;
  }
  return std::nullopt;
}

FileId FileIndex::add_file(FileRecord record) {
  const auto id = static_cast<FileId>(files_.size());
  record.live = true;
  by_name_.emplace(name_key(record.user, record.name), id);
  by_cid_.emplace(cid_key(record.cid), id);
  for (auto& word : file_keywords(record)) postings_[std::move(word)].push_back(id);  // ids only grow: stays sorted
  users_[record.user].files.push_back(id);
  files_.push_back(std::move(record));
  ++live_files_;
  return id;
}

void FileIndex::remove_file(FileId id) {
  auto& f = files_[id];
  auto erase_one = [id](auto& map, std::uint64_t key) {
    auto range = map.equal_range(key);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == id) {
        map.erase(it);
        return;
      }
    }
  };
  erase_one(by_name_, name_key(f.user, f.name));
  erase_one(by_cid_, cid_key(f.cid));
  for (const auto& word : file_keywords(f)) {
    auto it = postings_.find(word);
    if (it == postings_.end()) continue;
    auto& list = it->second;
    auto pos = std::lower_bound(list.begin(), list.end(), id);
    if (pos != list.end() && *pos == id) list.erase(pos);
    if (list.empty()) postings_.erase(it);
  }
  auto& owned = users_[f.user].files;
  owned.erase(std::remove(owned.begin(), owned.end(), id), owned.end());
  f.live = false;
  f.name = std::string();
  f.description = std::string();
  --live_files_;
}

std::vector<UserId> FileIndex::connected_users() const {
  std::vector<UserId> out;
  for (UserId i = 0; i < users_.size(); ++i) {
    if (users_[i].live && users_[i].connected) out.push_back(i);
  }
  std::sort(out.begin(), out.end(), [this](UserId a, UserId b) { return users_[a].name < users_[b].name; });
  return out;
}

std::vector<UserId> FileIndex::live_users() const {
  std::vector<UserId> out;
  for (UserId i = 0; i < users_.size(); ++i) {
    if (users_[i].live) out.push_back(i);
  }
  std::sort(out.begin(), out.end(), [this](UserId a, UserId b) { return users_[a].name < users_[b].name; });
  return out;
}

SearchPage FileIndex::live_files(std::uint64_t cursor, std::size_t limit) const {
  SearchPage page;
  for (std::uint64_t id = cursor; id < files_.size(); ++id) {
    if (!files_[id].live) continue;
    if (page.files.size() == limit) {
      page.next = id;
      break;
    }
    page.files.push_back(static_cast<FileId>(id));
  }
  return page;
}

std::vector<FileId> FileIndex::files_of(UserId user) const {
  std::vector<FileId> out = users_[user].files;
  std::sort(out.begin(), out.end(), [this](FileId a, FileId b) { return files_[a].name < files_[b].name; });
  return out;
}

bool FileIndex::matches(const FileRecord& f, const std::vector<std::string>& words) const {
  if (words.empty()) return true;
  const auto have = file_keywords(f);
  for (const auto& w : words) {
    if (std::find(have.begin(), have.end(), w) == have.end()) return false;
  }
  return true;
}

SearchPage FileIndex::search_cid(const Hash& cid, const std::vector<std::string>& words, std::uint64_t cursor,
                                 std::size_t limit) const {
  std::vector<FileId> candidates;
  auto range = by_cid_.equal_range(cid_key(cid));
  for (auto it = range.first; it != range.second; ++it) {
    const auto& f = files_[it->second];
    if (f.live && f.cid == cid && it->second >= cursor && matches(f, words)) candidates.push_back(it->second);
  }
  std::sort(candidates.begin(), candidates.end());
  SearchPage page;
  if (candidates.size() > limit) {
    page.next = candidates[limit];
    candidates.resize(limit);
  }
  page.files = std::move(candidates);
  return page;
}

SearchPage FileIndex::search(const std::vector<std::string>& words, const std::optional<Hash>& cid,
                             std::uint64_t cursor, std::size_t limit) const {
  if (cid) return search_cid(*cid, words, cursor, limit);
  SearchPage page;
  if (words.empty() || limit == 0) return page;
  std::vector<const std::vector<FileId>*> lists;
  for (const auto& w : words) {
    auto it = postings_.find(w);
    if (it == postings_.end()) return page;  // a keyword nobody has: no match
    lists.push_back(&it->second);
  }
  std::sort(lists.begin(), lists.end(), [](auto* a, auto* b) { return a->size() < b->size(); });
  const auto& shortest = *lists.front();
  for (auto it = std::lower_bound(shortest.begin(), shortest.end(), cursor); it != shortest.end(); ++it) {
    bool in_all = true;
    for (std::size_t i = 1; i < lists.size() && in_all; ++i) {
      in_all = std::binary_search(lists[i]->begin(), lists[i]->end(), *it);
    }
    if (!in_all) continue;
    if (page.files.size() == limit) {
      page.next = *it;
      break;
    }
    page.files.push_back(*it);
  }
  return page;
}

}  // namespace zshare::broker
