// posting_list.cpp: growth and shrinking of a posting list (realloc, which large blocks do by remapping pages),
// and the galloping search used by the intersection in FileIndex::search.
#include "broker/posting_list.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
  if (target > 0xFFFFFFFFu) return n;
  const auto t = static_cast<std::uint32_t>(target);
  if (from + kBlock > n) {  // the tail: at most kBlock - 1 ids
    while (from < n && ids[from] < t) ++from;
    return from;
  }
  // Most seeks move a few places: count the ids below the target among the next kBlock, without branches.
  std::size_t below = 0;
  for (std::size_t j = 0; j < kBlock; ++j) below += ids[from + j] < t;
  if (below < kBlock) return from + below;
  // Gallop: ids[lo] < t, and hi == n or ids[hi] >= t once the loop ends.
  std::size_t lo = from + kBlock - 1, step = kBlock, hi = lo + step;
  while (hi < n && ids[hi] < t) {
    lo = hi;
    step <<= 1;
    hi = lo + step;
  }
  if (hi > n) hi = n;
  while (hi - lo > kBlock) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (ids[mid] < t) lo = mid; else hi = mid;
  }
  std::size_t i = lo + 1;
  while (i < hi && ids[i] < t) ++i;
  return i;
}

namespace {

// One list much longer than the other: each id of the short one seeks forward in the long one.
std::size_t intersect_gallop(const PostingList& small, std::size_t& is, const PostingList& big, std::size_t& ib,
                             std::uint32_t* out, std::size_t want) {
  std::size_t count = 0;
  while (count < want && is < small.size()) {
    const std::uint32_t id = small[is];
    ib = big.seek(ib, id);
    if (ib == big.size()) break;
    if (big[ib] == id) {
      out[count++] = id;
      ++ib;
    }
    ++is;
  }
  return count;
}

}  // namespace

std::size_t intersect(const PostingList& a, std::size_t& ia, const PostingList& b, std::size_t& ib, std::uint32_t* out,
                      std::size_t want) {
  constexpr std::size_t kSkew = 12;  // above this length ratio galloping beats merging (measured: ~10-12)
  const std::size_t na = a.size(), nb = b.size();
  if (ia >= na || ib >= nb) return 0;
  if ((na - ia) * kSkew < nb - ib) return intersect_gallop(a, ia, b, ib, out, want);
  if ((nb - ib) * kSkew < na - ia) return intersect_gallop(b, ib, a, ia, out, want);
  const std::uint32_t* x = a.data();
  const std::uint32_t* y = b.data();
  std::size_t count = 0;
#if defined(__SSE2__)
  // Four by four: every id of x's block against every id of y's block, then the block with the smaller last id
  // moves on (both when equal). An id can match only once: what follows a block is above all of it.
  while (count < want && ia + 4 <= na && ib + 4 <= nb) {
    const __m128i vx = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + ia));
    const __m128i vy = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + ib));
    __m128i eq = _mm_cmpeq_epi32(vx, vy);
    eq = _mm_or_si128(eq, _mm_cmpeq_epi32(vx, _mm_shuffle_epi32(vy, _MM_SHUFFLE(0, 3, 2, 1))));
    eq = _mm_or_si128(eq, _mm_cmpeq_epi32(vx, _mm_shuffle_epi32(vy, _MM_SHUFFLE(1, 0, 3, 2))));
    eq = _mm_or_si128(eq, _mm_cmpeq_epi32(vx, _mm_shuffle_epi32(vy, _MM_SHUFFLE(2, 1, 0, 3))));
    for (int mask = _mm_movemask_ps(_mm_castsi128_ps(eq)); mask != 0; mask &= mask - 1) {
      out[count++] = x[ia + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)))];
    }
    const std::uint32_t xmax = x[ia + 3], ymax = y[ib + 3];
    ia += xmax <= ymax ? 4 : 0;
    ib += ymax <= xmax ? 4 : 0;
  }
#endif
  while (count < want && ia < na && ib < nb) {
    const std::uint32_t u = x[ia], v = y[ib];
    if (u == v) {
      out[count++] = u;
      ++ia;
      ++ib;
    } else {
      ia += u < v;
      ib += v < u;
    }
  }
  return count;
}

}  // namespace zshare::broker
