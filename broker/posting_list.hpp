// posting_list.hpp: one keyword's posting list, the ascending ids of the files that have it, in 16 bytes:
// up to two ids inline (most file names have a token no other file has), beyond that a malloc'd array grown by 1/4.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zshare::broker {

class PostingList {
 public:
  PostingList() = default;
  PostingList(const PostingList&) = delete;
  PostingList& operator=(const PostingList&) = delete;
  PostingList(PostingList&& other) noexcept;
  PostingList& operator=(PostingList&& other) noexcept;
  ~PostingList();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::uint32_t* data() const { return cap_ ? heap_ : inline_; }
  std::uint32_t operator[](std::size_t i) const { return data()[i]; }

  void push_back(std::uint32_t id);  // id must be greater than every id already in the list
  bool erase(std::uint32_t id);      // false if absent

  // The first index >= from whose id is >= target (size() if none): exponential then binary search, so
  // walking a list forward costs O(log gap) per step and O(1) memory lines when the gaps are small.
  std::size_t seek(std::size_t from, std::uint64_t target) const;

 private:
  static constexpr std::size_t kBlock = 8;  // ids a seek scans before it gallops

  void reallocate(std::uint32_t cap);

  union {
    std::uint32_t* heap_;
    std::uint32_t inline_[2] = {0, 0};
  };
  std::uint32_t size_ = 0;
  std::uint32_t cap_ = 0;  // 0: the ids are inline
};

// The ids in both a and b from positions ia and ib on, ascending, into out, until there are at least `want` of
// them (out has room for want + 3: a block of four may overshoot) or a list ends; ia and ib move past what was
// looked at, so a later call resumes. Returns how many; fewer than `want` means a list ended. Lists of similar
// length are merged four ids at a time; when one is much longer its side gallops instead.
std::size_t intersect(const PostingList& a, std::size_t& ia, const PostingList& b, std::size_t& ib, std::uint32_t* out,
                      std::size_t want);

}  // namespace zshare::broker
