// compact_table.hpp: the index's compact containers: IdTable, an open-addressing hash set of 32-bit ids whose
// keys live elsewhere (the caller hashes and compares), and Chunked, a vector that grows without moving.
// IdTable: linear probing, 4 bytes a slot, at most 70% full, deletion by backward shift (no tombstones), so a
// lookup never walks past the first empty slot. The caller passes the same 64-bit hash for an id every time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace zshare::broker {

class IdTable {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;

  std::size_t size() const { return used_; }

  // The first id under `hash` for which eq(id) holds, or kNone.
  template <class Eq>
  std::uint32_t find(std::uint64_t hash, Eq&& eq) const {
    if (slots_.empty()) return kNone;
    for (std::size_t i = home(hash);; i = (i + 1) & mask()) {
      const std::uint32_t id = slots_[i];
      if (id == kNone) return kNone;
      if (eq(id)) return id;
    }
  }

  // Adds `id` (not yet present). hash_of(other id) gives the hash of any id already in the table.
  template <class HashOf>
  void insert(std::uint64_t hash, std::uint32_t id, HashOf&& hash_of) {
    if ((used_ + 1) * 10 > slots_.size() * 7) grow(hash_of);
    place(hash, id);
    ++used_;
  }

  // Makes room for `n` ids in all without growing again (rehashing what is there, if anything).
  template <class HashOf>
  void reserve(std::size_t n, HashOf&& hash_of) {
    std::size_t want = 16;
    while (want * 7 < n * 10) want *= 2;
    if (want > slots_.size()) rehash(want, hash_of);
  }

  // Removes `id` (present under `hash`).
  template <class HashOf>
  void erase(std::uint64_t hash, std::uint32_t id, HashOf&& hash_of) {
    std::size_t hole = slot_of(hash, id);
    if (hole == kNoSlot) return;
    slots_[hole] = kNone;
    --used_;
    // Backward shift: move up every later entry of the cluster whose home is not between the hole and it.
    for (std::size_t i = (hole + 1) & mask(); slots_[i] != kNone; i = (i + 1) & mask()) {
      const std::size_t h = home(hash_of(slots_[i]));
      if (((i - h) & mask()) >= ((i - hole) & mask())) {
        slots_[hole] = slots_[i];
        slots_[i] = kNone;
        hole = i;
      }
    }
  }

  // Puts `to` where `from` was; both have the same hash.
  void replace(std::uint64_t hash, std::uint32_t from, std::uint32_t to) {
    const std::size_t i = slot_of(hash, from);
    if (i != kNoSlot) slots_[i] = to;
  }

 private:
  static constexpr std::size_t kNoSlot = ~std::size_t{0};

  static std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer: every input bit reaches the low bits
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint64_t hash) const { return static_cast<std::size_t>(mix(hash)) & mask(); }

  std::size_t slot_of(std::uint64_t hash, std::uint32_t id) const {
    if (slots_.empty()) return kNoSlot;
    for (std::size_t i = home(hash);; i = (i + 1) & mask()) {
      if (slots_[i] == id) return i;
      if (slots_[i] == kNone) return kNoSlot;
    }
  }

  void place(std::uint64_t hash, std::uint32_t id) {
    std::size_t i = home(hash);
    while (slots_[i] != kNone) i = (i + 1) & mask();
    slots_[i] = id;
  }

  template <class HashOf>
  void grow(HashOf& hash_of) {
    rehash(slots_.empty() ? 16 : slots_.size() * 2, hash_of);
  }

  template <class HashOf>
  void rehash(std::size_t size, HashOf& hash_of) {
    std::vector<std::uint32_t> old(size, kNone);
    old.swap(slots_);
    for (std::uint32_t id : old) {
      if (id != kNone) place(hash_of(id), id);
    }
  }

  std::vector<std::uint32_t> slots_;  // size 0 or a power of two
  std::size_t used_ = 0;
};

// A vector of T in chunks of 2^Shift elements: growing never copies elements nor doubles the footprint, and
// references stay valid.
template <class T, unsigned Shift = 12>
class Chunked {
 public:
  static constexpr std::size_t kChunk = std::size_t{1} << Shift;

  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return chunks_[i >> Shift][i & (kChunk - 1)]; }
  const T& operator[](std::size_t i) const { return chunks_[i >> Shift][i & (kChunk - 1)]; }

  // Room for n elements before the chunk table moves: until then another thread may read the elements already
  // there while this one appends (the loader indexes words on a second thread, file_index.hpp).
  void reserve(std::size_t n) { chunks_.reserve((n + kChunk - 1) >> Shift); }
  std::size_t capacity() const { return chunks_.capacity() * kChunk; }

  T& emplace_back() {
    if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<T[]>(kChunk));
    return (*this)[size_++];
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::size_t size_ = 0;
};

}  // namespace zshare::broker
