// file_index.hpp: the broker's in-memory index of users, sessions and published files, with keyword and
// content-id search. SQLite (store.hpp) is the durable copy; this is rebuilt from it at start-up.
// Invariants: a live file belongs to a live user; posting lists hold exactly the live files, sorted by id.
// Layout (347 bytes a file at 1M files, measured with v1's 96-byte record; 32 fewer now): a 64-byte record, name
// and description in one allocation, hash tables of 4-byte ids that compare against the records, posting lists
// with one or two ids inline.
#pragma once

#include "broker/compact_table.hpp"
#include "broker/posting_list.hpp"
#include "common/validate.hpp"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace zshare::broker {

using UserId = std::uint32_t;
using FileId = std::uint32_t;

// What add_file takes (and the store reads and writes).
struct FileRecord {
  Hash cid{};
  std::uint64_t size = 0;
  std::string name;
  std::string description;
  UserId user = 0;
  std::uint32_t chunk_size = 0;
  bool live = false;
};

// What file() returns: a file's fields by value, name and description viewing the index's copy (valid until the
// file is removed). A removed id reads as live == false with empty name and description.
struct FileView {
  Hash cid{};
  std::uint64_t size = 0;
  std::string_view name;
  std::string_view description;
  UserId user = 0;
  std::uint32_t chunk_size = 0;
  bool live = false;
};

// Whether the broker could open a TCP connection to a session's advertised endpoint (reachability_prober.hpp).
enum class Reachability : std::uint8_t { kUnknown, kReachable, kUnreachable };

struct UserRecord {
  std::string name;
  std::string endpoint;       // the advertised transfer endpoint while connected
  Reachability reachable = Reachability::kUnknown;  // of `endpoint`, this session; unknown until probed
  std::string key;            // the CurveZMQ public key (Z85) that owns the user; empty under --plaintext
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
  // Sizes the tables for this many users and files before a bulk load (Store::load), so they never rehash.
  void reserve(std::size_t users, std::size_t files);

  std::optional<UserId> find_user(std::string_view name) const;
  UserId add_user(std::string name, std::string key = {});
  std::size_t remove_user(UserId id);  // removes the user's files too; returns how many
  void connect(UserId id, std::string endpoint);
  void disconnect(UserId id);
  void set_reachable(UserId id, Reachability r) { users_[id].reachable = r; }
  const UserRecord& user(UserId id) const { return users_[id]; }

  std::optional<FileId> find_file(UserId user, std::string_view name) const;
  FileId add_file(const FileRecord& record);  // record.user must be live and the name not yet published by it
  void remove_file(FileId id);
  FileView file(FileId id) const;

  // Starts loading what building replies for `files` reads (records, texts, with_owner: owners) into the cache,
  // so a page of results waits for memory once rather than once per file.
  void prefetch(const std::vector<FileId>& files, bool with_owner) const;

  std::vector<UserId> connected_users() const;       // sorted by name
  std::vector<UserId> live_users() const;            // sorted by name
  SearchPage live_files(std::uint64_t cursor, std::size_t limit) const;  // every live file, by id
  std::vector<FileId> files_of(UserId user) const;   // sorted by name

  // Files whose name or description has every one of `words` (already lower-cased keywords), and, when
  // `cid` is given, that content id. Ids >= cursor, at most `limit`. With `online_only`, only files whose owner
  // is connected: the filter is applied before the page is cut, so `next` pages over online files alone. A page
  // stops early, with a `next`, once the filter has turned down kMaxSkipped candidates: a common word while few
  // owners are online (right after a restart) costs a bounded walk per page, not the whole posting list.
  SearchPage search(const std::vector<std::string>& words, const std::optional<Hash>& cid, std::uint64_t cursor,
                    std::size_t limit, bool online_only = false) const;

  static constexpr std::size_t kMaxSkipped = 8192;

  std::size_t user_count() const { return live_users_; }
  std::size_t file_count() const { return live_files_; }
  std::size_t connected_count() const { return connected_; }

 private:
  friend class IndexLoader;
  FileId add_record(const FileRecord& record);  // add_file but the words
  void add_words(FileId id);                     // the posting lists of a file's words

  // One file: 64 bytes, 64-aligned so it is exactly one cache line. text holds "name\0description"
  // (lengths below); null once the file is removed.
  struct alignas(64) Record {
    Hash cid{};
    std::uint64_t size = 0;
    std::unique_ptr<char[]> text;
    UserId user = 0;
    std::uint32_t chunk_size = 0;
    FileId next_same_cid = IdTable::kNone;  // the other live files with this cid, a chain from by_cid_'s entry
    std::uint16_t name_len = 0;             // kLongText: lengths are in an 8-byte header before the name
    std::uint16_t description_len = 0;
  };
  static_assert(sizeof(void*) != 8 || sizeof(Record) == 64, "a record should stay 64 bytes");
  static constexpr std::uint16_t kLongText = 0xFFFF;
  // One keyword: its posting list, the hash of its text, and where its first file has it (so a lookup can
  // check a hash match against that file's text instead of storing the word).
  struct Term {
    PostingList files;
    std::uint32_t hash = 0;
    std::uint32_t text_offset = 0;  // in the first file's "name\0description"
  };
  using TermId = std::uint32_t;

  static std::string_view text_of(const Record& r);  // "name\0description"
  static std::string_view name_of(const Record& r);
  static std::string_view description_of(const Record& r);
  static std::uint64_t name_key(UserId user, std::string_view name);
  static std::uint64_t cid_key(const Hash& cid);
  static std::uint32_t word_hash(std::string_view word);

  std::uint32_t find_term(std::string_view word, std::uint32_t hash) const;  // or IdTable::kNone
  std::uint32_t find_cid(const Hash& cid) const;                             // first file of the chain, or kNone
  void add_posting(FileId id, std::size_t offset, std::string_view word);  // offset: in id's text
  void remove_posting(FileId id, std::string_view word);
  SearchPage search_cid(const Hash& cid, const std::vector<std::string>& words, std::uint64_t cursor,
                        std::size_t limit, bool online_only) const;
  bool owner_online(FileId id) const { return online_[files_[id].user] != 0; }
  static SearchPage cut_short(SearchPage& page, FileId last_examined);
  static std::uint64_t user_key(std::string_view name);

  std::vector<UserRecord> users_;
  std::vector<std::uint8_t> online_;  // users_[u].connected, dense: searches filter every candidate by it
  IdTable user_by_name_;              // live users by name
  Chunked<Record> files_;  // by FileId; removed files stay as tombstones
  Chunked<Term> terms_;    // by TermId; terms whose list emptied are reused from free_terms_
  std::vector<TermId> free_terms_;
  IdTable by_name_;   // live files by (user, name)
  IdTable by_cid_;    // one live file per distinct cid; the others hang off its next_same_cid chain
  IdTable by_word_;   // terms with a non-empty posting list
  std::size_t live_users_ = 0;
  std::size_t live_files_ = 0;
  std::size_t connected_ = 0;
};

// Many files added at once, at start-up (Store::load): the words of the files are indexed on a second thread
// while the caller reads the next rows and add() fills the other tables. Nothing else may use the index until
// finish() has returned (the destructor finishes too, dropping any error).
class IndexLoader {
 public:
  explicit IndexLoader(FileIndex& index);
  ~IndexLoader();
  IndexLoader(const IndexLoader&) = delete;
  IndexLoader& operator=(const IndexLoader&) = delete;

  void add(const FileRecord& record);  // as FileIndex::add_file
  void finish();  // waits until every word is indexed; rethrows what the word thread failed with

 private:
  static constexpr FileId kBatch = 4096;  // files handed to the word thread at a time

  void hand_over(FileId end);  // files below `end` may be indexed
  void wait_idle();            // until the word thread has indexed everything handed over
  void index_words();          // the word thread

  FileIndex& index_;
  std::mutex mutex_;
  std::condition_variable work_;  // more handed over, or done
  std::condition_variable idle_;  // the word thread caught up
  FileId handed_;                 // files below it are the word thread's
  FileId indexed_;                // files below it have their words indexed
  bool done_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace zshare::broker
