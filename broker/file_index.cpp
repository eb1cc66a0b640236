// file_index.cpp: compact hash tables of ids (checked against the records on lookup) keep the per-file overhead
// small; keyword search intersects posting lists forward only (posting_list.cpp) and stops at limit + 1 matches.
#include "broker/file_index.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>

namespace zshare::broker {

namespace {

// The keyword rules of common/keywords.cpp, applied in place to a file's "name\0description": words are runs
// of ASCII letters and digits and bytes >= 0x80, ASCII-lowercased. The NUL between name and description ends
// a word just as the space keywords(name + ' ' + description) sees does.
bool is_word_byte(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

char fold(char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch; }

// Calls fn(offset, length) for each word of text, in order, until fn returns false.
template <class Fn>
void for_each_word(std::string_view text, Fn&& fn) {
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    while (i < n && !is_word_byte(text[i])) ++i;
    const std::size_t start = i;
    while (i < n && is_word_byte(text[i])) ++i;
    if (i > start && !fn(start, i - start)) return;
  }
}

bool word_equals(std::string_view text, std::size_t offset, std::size_t length, std::string_view word) {
  if (length != word.size()) return false;
  for (std::size_t i = 0; i < length; ++i) {
    if (fold(text[offset + i]) != word[i]) return false;
  }
  return true;
}

// Whether the word of text starting at `offset` is exactly `word` (a lower-cased keyword).
bool word_at(std::string_view text, std::size_t offset, std::string_view word) {
  const std::size_t end = offset + word.size();
  if (word.empty() || end > text.size() || (offset > 0 && is_word_byte(text[offset - 1]))) return false;
  if (end < text.size() && is_word_byte(text[end])) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char c = text[offset + i];
    if (!is_word_byte(c) || fold(c) != word[i]) return false;
  }
  return true;
}

// Where `word` first occurs in text as a whole word, or npos.
std::size_t find_word(std::string_view text, std::string_view word) {
  std::size_t found = std::string_view::npos;
  for_each_word(text, [&](std::size_t offset, std::size_t length) {
    if (!word_equals(text, offset, length, word)) return true;
    found = offset;
    return false;
  });
  return found;
}

bool has_word(std::string_view text, std::string_view word) { return find_word(text, word) != std::string_view::npos; }

struct Word {
  std::uint32_t offset;
  std::uint32_t length;
};

// The distinct keywords of text into `out`, each at its first occurrence; `lower` receives text lower-cased, which
// the offsets also index. Both are the caller's buffers, reused from file to file.
void distinct_words(std::string_view text, std::string& lower, std::vector<Word>& out) {
  lower.assign(text);
  for (char& c : lower) c = fold(c);
  out.clear();
  for_each_word(lower, [&](std::size_t offset, std::size_t length) {
    const std::string_view w(lower.data() + offset, length);
    for (const auto& o : out) {
      if (o.length == length && std::string_view(lower.data() + o.offset, o.length) == w) return true;
    }
    out.push_back(Word{static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(length)});
    return true;
  });
}

}  // namespace

// ---- record text ----

namespace {

struct TextLengths {
  std::size_t name = 0;
  std::size_t description = 0;
  std::size_t header = 0;  // bytes before the name
};

// Short texts keep their lengths in the record; long ones (name_len == long_marker) in a header.
TextLengths lengths_of(const char* text, std::uint16_t name_len, std::uint16_t description_len,
                       std::uint16_t long_marker) {
  if (name_len != long_marker) return TextLengths{name_len, description_len, 0};
  std::uint32_t n, d;
  std::memcpy(&n, text, sizeof n);
  std::memcpy(&d, text + sizeof n, sizeof d);
  return TextLengths{n, d, sizeof n + sizeof d};
}

}  // namespace

std::string_view FileIndex::text_of(const Record& r) {
  if (!r.text) return {};
  const auto l = lengths_of(r.text.get(), r.name_len, r.description_len, kLongText);
  return std::string_view(r.text.get() + l.header, l.name + 1 + l.description);
}

std::string_view FileIndex::name_of(const Record& r) {
  if (!r.text) return {};
  const auto l = lengths_of(r.text.get(), r.name_len, r.description_len, kLongText);
  return std::string_view(r.text.get() + l.header, l.name);
}

std::string_view FileIndex::description_of(const Record& r) {
  if (!r.text) return {};
  const auto l = lengths_of(r.text.get(), r.name_len, r.description_len, kLongText);
  return std::string_view(r.text.get() + l.header + l.name + 1, l.description);
}

// ---- keys ----

std::uint64_t FileIndex::name_key(UserId user, std::string_view name) {
  return std::hash<std::string_view>{}(name) ^ (static_cast<std::uint64_t>(user) * 0x9E3779B97F4A7C15ULL);
}

std::uint64_t FileIndex::cid_key(const Hash& cid) {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(cid.data()), cid.size()));
}

std::uint32_t FileIndex::word_hash(std::string_view word) {
  const std::uint64_t h = std::hash<std::string_view>{}(word);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

// ---- users ----

std::uint64_t FileIndex::user_key(std::string_view name) { return std::hash<std::string_view>{}(name); }

void FileIndex::reserve(std::size_t users, std::size_t files) {
  users_.reserve(users);
  online_.reserve(users);
  files_.reserve(files_.size() + files);
  user_by_name_.reserve(users, [this](UserId u) { return user_key(users_[u].name); });
  by_name_.reserve(files, [this](FileId f) { return name_key(files_[f].user, name_of(files_[f])); });
  by_cid_.reserve(files, [this](FileId f) { return cid_key(files_[f].cid); });
  // Most file names carry a word no other file has (a track number, a hash), so terms grow with files.
  by_word_.reserve(files, [this](TermId t) -> std::uint64_t { return terms_[t].hash; });
}

std::optional<UserId> FileIndex::find_user(std::string_view name) const {
  const UserId id = user_by_name_.find(user_key(name), [&](UserId u) { return users_[u].name == name; });
  if (id == IdTable::kNone) return std::nullopt;
  return id;
}

UserId FileIndex::add_user(std::string name, std::string key) {
  if (users_.size() >= IdTable::kNone) throw std::length_error("user index is full");
  const auto id = static_cast<UserId>(users_.size());
  const std::uint64_t hash = user_key(name);
  UserRecord u;
  u.name = std::move(name);
  u.key = std::move(key);
  u.live = true;
  users_.push_back(std::move(u));
  online_.push_back(0);
  user_by_name_.insert(hash, id, [this](UserId x) { return user_key(users_[x].name); });
  ++live_users_;
  return id;
}

std::size_t FileIndex::remove_user(UserId id) {
  auto& u = users_[id];
  const std::vector<FileId> owned = u.files;
  for (FileId f : owned) remove_file(f);
  disconnect(id);
  user_by_name_.erase(user_key(u.name), id, [this](UserId x) { return user_key(users_[x].name); });
  u.live = false;
  u.key.clear();
  u.key.shrink_to_fit();
  u.files.clear();
  u.files.shrink_to_fit();
  --live_users_;
  return owned.size();
}

void FileIndex::connect(UserId id, std::string endpoint) {
  auto& u = users_[id];
  if (!u.connected) ++connected_;
  u.connected = true;
  online_[id] = 1;
  u.endpoint = std::move(endpoint);
  u.reachable = Reachability::kUnknown;  // a new session: probed again
}

void FileIndex::disconnect(UserId id) {
  auto& u = users_[id];
  if (u.connected) --connected_;
  u.connected = false;
  online_[id] = 0;
  u.endpoint.clear();
  u.reachable = Reachability::kUnknown;
}

// ---- files ----

FileView FileIndex::file(FileId id) const {
  const Record& r = files_[id];
  FileView v;
  v.cid = r.cid;
  v.size = r.size;
  v.name = name_of(r);
  v.description = description_of(r);
  v.user = r.user;
  v.chunk_size = r.chunk_size;
  v.live = r.text != nullptr;
  return v;
}

std::optional<FileId> FileIndex::find_file(UserId user, std::string_view name) const {
  const FileId id = by_name_.find(name_key(user, name), [&](FileId f) {
    const Record& r = files_[f];
    return r.user == user && name_of(r) == name;
  });
  if (id == IdTable::kNone) return std::nullopt;
  return id;
}

std::uint32_t FileIndex::find_cid(const Hash& cid) const {
  return by_cid_.find(cid_key(cid), [&](FileId f) { return files_[f].cid == cid; });
}

std::uint32_t FileIndex::find_term(std::string_view word, std::uint32_t hash) const {
  return by_word_.find(hash, [&](TermId t) {
    const Term& term = terms_[t];
    return term.hash == hash && word_at(text_of(files_[term.files[0]]), term.text_offset, word);
  });
}

void FileIndex::add_posting(FileId id, std::size_t offset, std::string_view word) {
  const std::uint32_t hash = word_hash(word);
  TermId t = find_term(word, hash);
  if (t != IdTable::kNone) {
    terms_[t].files.push_back(id);  // ids only grow: the list stays sorted
    return;
  }
  if (!free_terms_.empty()) {
    t = free_terms_.back();
    free_terms_.pop_back();
  } else {
    t = static_cast<TermId>(terms_.size());
    terms_.emplace_back();
  }
  Term& term = terms_[t];
  term.hash = hash;
  term.text_offset = static_cast<std::uint32_t>(offset);
  term.files.push_back(id);
  by_word_.insert(hash, t, [this](TermId x) -> std::uint64_t { return terms_[x].hash; });
}

void FileIndex::remove_posting(FileId id, std::string_view word) {
  const std::uint32_t hash = word_hash(word);
  const TermId t = find_term(word, hash);
  if (t == IdTable::kNone) return;
  Term& term = terms_[t];
  const bool was_first = term.files[0] == id;
  if (!term.files.erase(id)) return;
  if (term.files.empty()) {
    by_word_.erase(hash, t, [this](TermId x) -> std::uint64_t { return terms_[x].hash; });
    free_terms_.push_back(t);
  } else if (was_first) {
    term.text_offset = static_cast<std::uint32_t>(find_word(text_of(files_[term.files[0]]), word));
  }
}

FileId FileIndex::add_file(const FileRecord& record) {
  const FileId id = add_record(record);
  add_words(id);
  return id;
}

FileId FileIndex::add_record(const FileRecord& record) {
  if (files_.size() >= IdTable::kNone) throw std::length_error("file index is full");
  const auto id = static_cast<FileId>(files_.size());
  const std::size_t n = record.name.size(), d = record.description.size();
  const bool long_text = n >= kLongText || d >= kLongText;
  if (long_text && (n > std::numeric_limits<std::uint32_t>::max() / 2 ||
                    d > std::numeric_limits<std::uint32_t>::max() / 2)) {
    throw std::length_error("file name or description too long");
  }
  const std::size_t header = long_text ? 2 * sizeof(std::uint32_t) : 0;
  std::unique_ptr<char[]> text(new char[header + n + 1 + d]);
  if (long_text) {
    const auto n32 = static_cast<std::uint32_t>(n), d32 = static_cast<std::uint32_t>(d);
    std::memcpy(text.get(), &n32, sizeof n32);
    std::memcpy(text.get() + sizeof n32, &d32, sizeof d32);
  }
  std::memcpy(text.get() + header, record.name.data(), n);
  text[header + n] = '\0';
  std::memcpy(text.get() + header + n + 1, record.description.data(), d);

  Record& r = files_.emplace_back();
  r.cid = record.cid;
  r.size = record.size;
  r.text = std::move(text);
  r.user = record.user;
  r.chunk_size = record.chunk_size;
  r.name_len = long_text ? kLongText : static_cast<std::uint16_t>(n);
  r.description_len = long_text ? 0 : static_cast<std::uint16_t>(d);

  by_name_.insert(name_key(r.user, record.name), id, [this](FileId f) {
    return name_key(files_[f].user, name_of(files_[f]));
  });
  const FileId head = find_cid(r.cid);
  if (head != IdTable::kNone) {
    r.next_same_cid = files_[head].next_same_cid;
    files_[head].next_same_cid = id;
  } else {
    by_cid_.insert(cid_key(r.cid), id, [this](FileId f) { return cid_key(files_[f].cid); });
  }
  users_[r.user].files.push_back(id);
  ++live_files_;
  return id;
}

void FileIndex::add_words(FileId id) {
  thread_local std::string lower;
  thread_local std::vector<Word> words;
  distinct_words(text_of(files_[id]), lower, words);
  for (const Word& w : words) add_posting(id, w.offset, std::string_view(lower.data() + w.offset, w.length));
}

void FileIndex::remove_file(FileId id) {
  Record& r = files_[id];
  if (!r.text) return;  // already removed
  by_name_.erase(name_key(r.user, name_of(r)), id, [this](FileId f) {
    return name_key(files_[f].user, name_of(files_[f]));
  });
  const FileId head = find_cid(r.cid);
  if (head == id) {
    const auto key = cid_key(r.cid);
    if (r.next_same_cid != IdTable::kNone) {
      by_cid_.replace(key, id, r.next_same_cid);
    } else {
      by_cid_.erase(key, id, [this](FileId f) { return cid_key(files_[f].cid); });
    }
  } else if (head != IdTable::kNone) {
    FileId p = head;
    while (files_[p].next_same_cid != id && files_[p].next_same_cid != IdTable::kNone) p = files_[p].next_same_cid;
    if (files_[p].next_same_cid == id) files_[p].next_same_cid = r.next_same_cid;
  }
  r.next_same_cid = IdTable::kNone;
  std::string lower;
  std::vector<Word> words;
  distinct_words(text_of(r), lower, words);
  for (const Word& w : words) remove_posting(id, std::string_view(lower.data() + w.offset, w.length));
  auto& owned = users_[r.user].files;
  owned.erase(std::remove(owned.begin(), owned.end(), id), owned.end());
  r.text.reset();
  r.name_len = 0;
  r.description_len = 0;
  --live_files_;
}

void FileIndex::prefetch(const std::vector<FileId>& files, bool with_owner) const {
  for (FileId id : files) __builtin_prefetch(&files_[id]);
  for (FileId id : files) {
    const Record& r = files_[id];
    __builtin_prefetch(r.text.get());
    if (with_owner) __builtin_prefetch(&users_[r.user]);
  }
  if (!with_owner) return;
  for (FileId id : files) {
    const UserRecord& u = users_[files_[id].user];
    __builtin_prefetch(u.endpoint.data());
    __builtin_prefetch(u.key.data());
  }
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
    if (!files_[id].text) continue;
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
  std::sort(out.begin(), out.end(),
            [this](FileId a, FileId b) { return name_of(files_[a]) < name_of(files_[b]); });
  return out;
}

// ---- search ----

SearchPage FileIndex::search_cid(const Hash& cid, const std::vector<std::string>& words, std::uint64_t cursor,
                                 std::size_t limit, bool online_only) const {
  std::vector<FileId> candidates;
  for (FileId f = find_cid(cid); f != IdTable::kNone; f = files_[f].next_same_cid) {
    if (f < cursor || (online_only && !owner_online(f))) continue;
    const std::string_view text = text_of(files_[f]);
    if (std::all_of(words.begin(), words.end(), [&](const std::string& w) { return has_word(text, w); })) {
      candidates.push_back(f);
    }
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

SearchPage FileIndex::cut_short(SearchPage& page, FileId last_examined) {
  // Every candidate up to last_examined was looked at: the next page resumes after it.
  page.next = static_cast<std::uint64_t>(last_examined) + 1;
  return std::move(page);
}

SearchPage FileIndex::search(const std::vector<std::string>& words, const std::optional<Hash>& cid,
                             std::uint64_t cursor, std::size_t limit, bool online_only) const {
  if (cid) return search_cid(*cid, words, cursor, limit, online_only);
  SearchPage page;
  if (words.empty() || limit == 0) return page;
  std::vector<const PostingList*> lists;
  lists.reserve(words.size());
  for (const auto& w : words) {
    const TermId t = find_term(w, word_hash(w));
    if (t == IdTable::kNone) return page;  // a keyword nobody has: no match
    lists.push_back(&terms_[t].files);
  }
  std::sort(lists.begin(), lists.end(), [](auto* a, auto* b) { return a->size() < b->size(); });
  page.files.reserve(std::min(limit, lists.front()->size()));

  std::vector<std::size_t> pos(lists.size(), 0);  // every list is walked forward only
  pos[0] = lists[0]->seek(0, cursor);
  std::size_t skipped = 0;  // candidates the online filter turned down: a page stops after kMaxSkipped of them
  if (lists.size() == 1) {
    for (std::size_t i = pos[0]; i < lists[0]->size(); ++i) {
      if (online_only && !owner_online((*lists[0])[i])) {
        if (++skipped == kMaxSkipped) return cut_short(page, (*lists[0])[i]);
        continue;
      }
      if (page.files.size() == limit) {
        page.next = (*lists[0])[i];
        break;
      }
      page.files.push_back((*lists[0])[i]);
    }
    return page;
  }
  // The two shortest lists are intersected in batches of what the page still needs; the other lists, if any,
  // check each candidate. Stops at limit + 1 matches: the last one is the next page's cursor.
  pos[1] = lists[1]->seek(0, cursor);
  constexpr std::size_t kBatch = 64;
  std::uint32_t batch[kBatch + 3];
  for (;;) {
    const std::size_t left = limit - page.files.size();
    const std::size_t want = left >= kBatch ? kBatch : left + 1;
    const std::size_t found = intersect(*lists[0], pos[0], *lists[1], pos[1], batch, want);
    for (std::size_t b = 0; b < found; ++b) {
      const FileId id = batch[b];
      bool in_all = true;
      for (std::size_t k = 2; k < lists.size() && in_all; ++k) {
        pos[k] = lists[k]->seek(pos[k], id);
        if (pos[k] == lists[k]->size()) return page;  // that list has nothing left at or above id
        in_all = (*lists[k])[pos[k]] == id;
      }
      if (!in_all) continue;
      if (online_only && !owner_online(id)) {
        if (++skipped == kMaxSkipped) return cut_short(page, id);
        continue;
      }
      if (page.files.size() == limit) {
        page.next = id;
        return page;
      }
      page.files.push_back(id);
    }
    if (found < want) break;
  }
  return page;
}

// ---- bulk load ----

IndexLoader::IndexLoader(FileIndex& index)
    : index_(index),
      handed_(static_cast<FileId>(index.files_.size())),
      indexed_(handed_),
      thread_([this] { index_words(); }) {}

IndexLoader::~IndexLoader() {
  try {
    finish();
  } catch (...) {  // the caller that wanted the error called finish() itself
  }
}

void IndexLoader::add(const FileRecord& record) {
  // A full chunk table moves when it grows: the word thread must not be reading it then.
  if (index_.files_.size() == index_.files_.capacity()) wait_idle();
  const FileId id = index_.add_record(record);
  if (id + 1 - handed_ >= kBatch) hand_over(id + 1);
}

void IndexLoader::hand_over(FileId end) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    handed_ = end;
  }
  work_.notify_one();
}

void IndexLoader::wait_idle() {
  hand_over(static_cast<FileId>(index_.files_.size()));
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return indexed_ == handed_ || error_; });
}

void IndexLoader::finish() {
  if (thread_.joinable()) {
    wait_idle();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    work_.notify_one();
    thread_.join();
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void IndexLoader::index_words() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return handed_ > indexed_ || done_; });
    if (handed_ == indexed_) return;  // done, and nothing left
    const FileId from = indexed_, to = handed_;
    lock.unlock();
    try {
      for (FileId id = from; id < to; ++id) index_.add_words(id);
    } catch (...) {
      lock.lock();
      error_ = std::current_exception();
      indexed_ = handed_;
      idle_.notify_all();
      return;
    }
    lock.lock();
    indexed_ = to;
    if (indexed_ == handed_) idle_.notify_all();
  }
}

}  // namespace zshare::broker
