// posting_list.cpp: growth and shrinking of a posting list (realloc, which large blocks do by remapping pages),
// and the galloping search used by the intersection in FileIndex::search.
#include "broker/posting_list.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace zshare::broker {

PostingList::PostingList(PostingList&& other) noexcept : size_(other.size_), cap_(other.cap_) {
  std::memcpy(&heap_, &other.heap_, sizeof heap_);  // the pointer or the inline ids alike
  other.size_ = 0;
  other.cap_ = 0;
}

PostingList& PostingList::operator=(PostingList&& other) noexcept {
  if (this != &other) {
    if (cap_) std::free(heap_);
    std::memcpy(&heap_, &other.heap_, sizeof heap_);
    size_ = other.size_;
    cap_ = other.cap_;
    other.size_ = 0;
    other.cap_ = 0;
  }
  return *this;
}

PostingList::~PostingList() {
  if (cap_) std::free(heap_);
}

void PostingList::reallocate(std::uint32_t cap) {
  if (cap <= 2) {  // back inline
    if (!cap_) return;
    std::uint32_t* old = heap_;
    inline_[0] = size_ > 0 ? old[0] : 0;
    inline_[1] = size_ > 1 ? old[1] : 0;
    std::free(old);
    cap_ = 0;
    return;
  }
  void* p;
  if (cap_) {
    p = std::realloc(heap_, std::size_t{cap} * sizeof(std::uint32_t));
    if (!p) throw std::bad_alloc();
  } else {
    p = std::malloc(std::size_t{cap} * sizeof(std::uint32_t));
    if (!p) throw std::bad_alloc();
    std::memcpy(p, inline_, size_ * sizeof(std::uint32_t));
  }
  heap_ = static_cast<std::uint32_t*>(p);
  cap_ = cap;
}

void PostingList::push_back(std::uint32_t id) {
  const std::uint32_t cap = cap_ ? cap_ : 2;
  if (size_ == cap) reallocate(cap < 4 ? 4 : cap + cap / 4);
  (cap_ ? heap_ : inline_)[size_++] = id;
}

bool PostingList::erase(std::uint32_t id) {
  const std::size_t i = seek(0, id);
  if (i == size_ || data()[i] != id) return false;
  std::uint32_t* ids = cap_ ? heap_ : inline_;
  std::memmove(ids + i, ids + i + 1, (size_ - i - 1) * sizeof(std::uint32_t));
  --size_;
  if (cap_ && size_ <= 2) {
    reallocate(2);
  } else if (cap_ > 8 && size_ < cap_ / 2) {
    reallocate(size_ + size_ / 4 + 1);
  }
  return true;
}

std::size_t PostingList::seek(std::size_t from, std::uint64_t target) const {
  const std::uint32_t* ids = data();
  const std::size_t n = size_;
  if (from >= n || ids[from] >= target) return from;
  // ids[lo] < target; find hi with ids[hi] >= target (or hi = n) by doubling steps.
  std::size_t lo = from, step = 1, hi = from + 1;
  while (hi < n && ids[hi] < target) {
    lo = hi;
    step <<= 1;
    hi = lo + step;
  }
  if (hi > n) hi = n;
  // Invariant: ids[lo] < target, and hi == n or ids[hi] >= target.
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (ids[mid] < target) lo = mid; else hi = mid;
  }
  return hi;
}

}  // namespace zshare::broker
