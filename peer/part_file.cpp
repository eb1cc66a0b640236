// part_file.cpp: every open of a .part refuses what is not a regular file (lstat first, then O_NOFOLLOW and
// fstat), so a symlink or device planted at <dest>.part is never written through. commit() uses
// renameat2(RENAME_NOREPLACE) (link + unlink where the filesystem lacks it) so a destination that appeared
// during the download is never clobbered.
#include "peer/part_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace zshare::peer {

namespace {

DestinationError io_error(const std::string& what, const std::string& path) {
  return DestinationError(what + " " + path + ": " + std::strerror(errno));
}

void size_to(int fd, std::uint64_t size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const auto error = io_error("cannot size", path);
    ::close(fd);
    throw error;
  }
}

void sync_folder_of(const std::string& path) {
  const auto folder = std::filesystem::path(path).parent_path();
  int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

constexpr const char* kTag = "user.zshare.target";  // the .part's extended attribute: what it is a download of

// The target a .part was tagged with; empty when it has none (or the filesystem keeps no extended attributes).
std::string tag_of(int fd) {
  char buf[512];
  const ssize_t n = ::fgetxattr(fd, kTag, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// rename() that never replaces: renameat2's RENAME_NOREPLACE, or link + unlink where it is not supported.
bool rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS) return false;
  if (::link(from.c_str(), to.c_str()) != 0) return false;
  ::unlink(from.c_str());
  return true;
}

}  // namespace

PartFile PartFile::beside(const std::string& dest, std::uint64_t size, const std::string& what, bool reuse_other) {
  const std::string path = dest + ".part";
  struct stat st {};
  const bool existed = ::lstat(path.c_str(), &st) == 0;
  if (existed && !S_ISREG(st.st_mode)) {
    throw DestinationError(path + " exists and is not a regular file; move it away or choose another destination");
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0) throw io_error("cannot open", path);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DestinationError(path + " is not a regular file");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw DestinationError("another download is writing " + path + " (a second `get` to the same destination?)");
  }
  if (existed && static_cast<std::uint64_t>(st.st_size) != size && !reuse_other && tag_of(fd) != what) {
    ::close(fd);
    throw DestinationError(path + " holds an unfinished download of something else (" + std::to_string(st.st_size) +
                           " bytes, this file has " + std::to_string(size) +
                           "); it is left alone: remove it, or use --force to start over in it");
  }
  size_to(fd, size, path);
  if (!what.empty()) ::fsetxattr(fd, kTag, what.data(), what.size(), 0);  // best effort: not every filesystem has them
  return PartFile(fd, path, existed);
}

PartFile PartFile::anonymous(std::uint64_t size) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string folder = tmp && *tmp ? tmp : "/tmp";
  int fd = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {  // a filesystem without O_TMPFILE: a named temporary file, unlinked at once
    std::string name = folder + "/zshare-get-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) throw io_error("cannot make a temporary file in", folder);
    ::unlink(name.c_str());
  }
  size_to(fd, size, folder);
  return PartFile(fd, "", false);
}

PartFile::PartFile(PartFile&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), existed_(other.existed_) {
  other.fd_ = -1;
}

PartFile::~PartFile() {
  if (fd_ >= 0) ::close(fd_);
}

void PartFile::resize(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) throw io_error("cannot size", named() ? path_ : "the temporary file");
}

bool PartFile::read(void* buf, std::size_t n, std::uint64_t offset) const {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

void PartFile::write(const void* buf, std::size_t n, std::uint64_t offset) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw io_error("cannot write", named() ? path_ : std::string("the temporary file"));
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

void PartFile::commit(const std::string& dest, bool replace) {
  if (!named()) return;  // its bytes already went to the output
  if (::fsync(fd_) != 0) throw io_error("cannot sync", path_);
  ::close(fd_);
  fd_ = -1;
  struct stat st {};
  if (::lstat(dest.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw DestinationError(dest + " appeared during the download and is not a regular file; it is left alone "
                           "and the download is kept in " + path_);
  }
  const bool renamed = replace ? ::rename(path_.c_str(), dest.c_str()) == 0 : rename_no_replace(path_, dest);
  if (!renamed) {
    if (errno == EEXIST) {
      throw DestinationError(dest + " appeared during the download; it is left alone and the download is kept in " +
                             path_ + " (run the same command with --force to replace it)");
    }
    throw io_error("cannot rename " + path_ + " onto", dest);
  }
  sync_folder_of(dest);
}

void PartFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (named()) ::unlink(path_.c_str());
}

std::uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace zshare::peer
