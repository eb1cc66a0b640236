// file_identity.hpp: the answer to "is this still the file that was hashed?": size, modification time, status
// change time and inode, read from one stat. Every place that asks the question (ShareSync's decision to re-hash,
// the catalog entry the seeder checks before serving, the HashCache key) compares these four values, never fewer.
// Why all four: a file replaced by another of the same size and mtime (mv over it, `cp -p`, a rewrite followed by
// `touch -r`) keeps size and mtime; the replacement has another inode, or (rewritten in place) a new ctime, which no
// user can set back. ctime also moves on chmod/chown: such a file is re-hashed once and keeps its content id.
#pragma once

#include <cstdint>
#include <string>

struct stat;

namespace zshare::peer {

struct FileIdentity {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;  // st_mtim: settable by anyone who may write the file (utime, touch -r, cp -p)
  std::int64_t ctime_ns = 0;  // st_ctim: set by the kernel on every write, rename, chmod, chown; never settable
  std::uint64_t inode = 0;    // st_ino: a file moved or copied over the path has another one

  bool operator==(const FileIdentity& o) const {
    return size == o.size && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns && inode == o.inode;
  }
  bool operator!=(const FileIdentity& o) const { return !(*this == o); }
};

// The identity a stat (or lstat, fstat) reported.
FileIdentity identity_of(const struct stat& st);

// The identity of the file at `path` (stat(): a symlink is followed). Throws std::system_error when it cannot be read.
FileIdentity identity_of(const std::string& path);

}  // namespace zshare::peer
