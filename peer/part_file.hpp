// part_file.hpp: where a download's verified chunks live until it is complete. For a file destination that is
// <dest>.part (pre-sized, sparse), renamed onto <dest> once every chunk is verified, never over a file that
// appeared meanwhile unless asked to; for standard output an anonymous temporary file, from which the
// downloader copies the verified bytes to the output in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace zshare::peer {

// A destination or .part that cannot be used; what() is one sentence for the user.
class DestinationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PartFile {
 public:
  // Opens (or creates) <dest>.part, locks it (flock), sizes it and tags it with `what` (an extended attribute:
  // the target as given, so a later run knows the .part is its own). Refuses a .part that is not a regular file
  // (a symlink, FIFO, device), one another process is writing, and one of another size that is not tagged with
  // `what` (an unfinished download of something else) unless `reuse_other`. Throws DestinationError.
  static PartFile beside(const std::string& dest, std::uint64_t size, const std::string& what = "",
                         bool reuse_other = false);
  // An unnamed file in $TMPDIR (or /tmp), gone when closed: a download to standard output.
  static PartFile anonymous(std::uint64_t size);

  PartFile(PartFile&& other) noexcept;
  PartFile& operator=(PartFile&&) = delete;
  PartFile(const PartFile&) = delete;
  ~PartFile();

  bool existed() const { return existed_; }      // it may hold good chunks (an earlier run's, or an earlier try's)
  void mark_resumable() { existed_ = true; }      // after a try: the next one re-checks what this one wrote
  bool named() const { return !path_.empty(); }
  const std::string& path() const { return path_; }  // "<dest>.part"; empty for an anonymous file

  bool read(void* buf, std::size_t n, std::uint64_t offset) const;  // false on a short read
  void write(const void* buf, std::size_t n, std::uint64_t offset);  // throws DestinationError (ENOSPC, EIO...)
  void resize(std::uint64_t size);  // a new version of the same target; throws DestinationError

  // fsync, rename onto `dest`, fsync the folder: the file appears whole or not at all. Without `replace`, a
  // `dest` that exists by now is left alone (the .part stays) and DestinationError says so.
  void commit(const std::string& dest, bool replace);
  // Removes the .part: it holds nothing worth resuming.
  void discard();

 private:
  PartFile(int fd, std::string path, bool existed) : fd_(fd), path_(std::move(path)), existed_(existed) {}
  int fd_ = -1;
  std::string path_;
  bool existed_ = false;
};

// Bytes the file at `path` occupies on disk (0 when it does not exist): what a resumed .part already holds.
std::uint64_t allocated_bytes(const std::string& path);

}  // namespace zshare::peer
