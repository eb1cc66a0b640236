// file_identity.cpp: the one place a struct stat becomes a FileIdentity (nanosecond times from st_mtim, st_ctim).
#include "peer/file_identity.hpp"

#include <cerrno>
#include <system_error>

#include <sys/stat.h>

namespace zshare::peer {

namespace {

std::int64_t nanoseconds(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec; }

}  // namespace

FileIdentity identity_of(const struct stat& st) {
  return FileIdentity{static_cast<std::uint64_t>(st.st_size), nanoseconds(st.st_mtim), nanoseconds(st.st_ctim),
                      static_cast<std::uint64_t>(st.st_ino)};
}

FileIdentity identity_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::system_error(errno, std::generic_category(), path);
  return identity_of(st);
}

}  // namespace zshare::peer
