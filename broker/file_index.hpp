// file_index.hpp: the broker's in-memory index of users, sessions and published files, with keyword and
// content-id search. SQLite (store.hpp) is the durable copy; this is rebuilt from it at start-up.
// Invariants: a live file belongs to a live user; posting lists hold exactly the live files, sorted by id.
#pragma once

#include "common/validate.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zshare::broker {

using UserId = std::uint32_t;
using FileId = std::uint32_t;

struct FileRecord {
  Hash cid{};
  Hash root{};
  std::uint64_t size = 0;
  std::string name;
  std::string description;
  UserId user = 0;
  std::uint32_t chunk_size = 0;
  bool live = false;
};

struct UserRecord {
  std::string name;
  std::string endpoint;       // the advertised transfer endpoint while connected
  std::vector<FileId> files;  // live files, in publishing order
  bool live = false;
  bool connected = false;
};

// One page of search results: file ids in ascending order, and the cursor of the next page if any.
struct SearchPage {
  std::vector<FileId> files;
  std::optional<std::uint64_t> next;
};

class FileIndex {
 public:
  std::optional<UserId> find_user(std::string_view name) const;
  UserId add_user(std::string name);
  std::size_t remove_user(UserId id);  // removes the user's files too; returns how many
  void connect(UserId id, std::string endpoint);
  void disconnect(UserId id);
  const UserRecord& user(UserId id) const { return users_[id]; }

  std::optional<FileId> find_file(UserId user, std::string_view name) const;
  FileId add_file(FileRecord record);  // record.user must be live and the name not yet published by it
  void remove_file(FileId id);
  const FileRecord& file(FileId id) const { return files_[id]; }

  std::vector<UserId> connected_users() const;       // sorted by name
  std::vector<UserId> live_users() const;            // sorted by name
  SearchPage live_files(std::uint64_t cursor, std::size_t limit) const;  // every live file, by id
  std::vector<FileId> files_of(UserId user) const;   // sorted by name

  // Files whose name or description has every one of `words` (already lower-cased keywords), and, when
  // `cid` is given, that content id. Ids >= cursor, at most `limit`.
  SearchPage search(const std::vector<std::string>& words, const std::optional<Hash>& cid, std::uint64_t cursor,
                    std::size_t limit) const;

  std::size_t user_count() const { return live_users_; }
  std::size_t file_count() const { return live_files_; }
  std::size_t connected_count() const { return connected_; }

 private:
  static std::uint64_t name_key(UserId user, std::string_view name);
  static std::uint64_t cid_key(const Hash& cid);
  bool matches(const FileRecord& f, const std::vector<std::string>& words) const;
  SearchPage search_cid(const Hash& cid, const std::vector<std::string>& words, std::uint64_t cursor,
                        std::size_t limit) const;

  std::vector<UserRecord> users_;
  std::unordered_map<std::string, UserId> user_by_name_;
  std::vector<FileRecord> files_;                             // by FileId; removed files stay as tombstones
  std::unordered_multimap<std::uint64_t, FileId> by_name_;    // (user, name) hash -> file
  std::unordered_multimap<std::uint64_t, FileId> by_cid_;     // cid prefix -> file
  std::unordered_map<std::string, std::vector<FileId>> postings_;  // keyword -> sorted live file ids
  std::size_t live_users_ = 0;
  std::size_t live_files_ = 0;
  std::size_t connected_ = 0;
};

}  // namespace zshare::broker
