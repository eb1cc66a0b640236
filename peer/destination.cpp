// destination.cpp: lstat, not stat, so a symlink at the destination is reported as one and never followed; the
// free-space check reads statvfs's f_bavail (what an unprivileged writer may use).
#include "peer/destination.hpp"

#include "common/byte_size.hpp"
#include "common/content_hash.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sys/stat.h>
#include <sys/statvfs.h>

namespace zshare::peer {

namespace fs = std::filesystem;

namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

bool is_folder(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Destination resolve_destination(const std::string& dest, const std::string& published_name) {
  if (dest == "-") return Destination{true, ""};
  const bool names_folder = dest.empty() || dest.back() == '/' || is_folder(dest);
  if (!names_folder) return Destination{false, dest};
  const std::string folder = dest.empty() ? "." : dest;
  if (!is_folder(folder)) throw DestinationError("the folder " + folder + " does not exist");
  if (!is_valid_file_name(published_name)) {
    throw DestinationError("the published name '" + published_name + "' cannot be a file name here; give a destination file");
  }
  return Destination{false, (fs::path(folder) / published_name).string()};
}

ExistingFile check_existing(const Destination& dest, const Hash& cid, std::uint64_t size, bool force) {
  if (dest.to_stdout) return ExistingFile::kAbsent;
  struct stat st {};
  if (::lstat(dest.path.c_str(), &st) != 0) {
    if (errno == ENOENT) return ExistingFile::kAbsent;
    throw DestinationError("cannot check " + dest.path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw DestinationError(dest.path + " is " + kind_of(st.st_mode) +
                           ", not a regular file: it is left untouched; choose another destination");
  }
  if (static_cast<std::uint64_t>(st.st_size) == size) {
    try {
      if (hash_file(dest.path).cid == cid) return ExistingFile::kSameContent;
    } catch (const std::exception& e) {
      throw DestinationError("cannot read " + dest.path + " to compare it: " + e.what());
    }
  }
  if (!force) {
    throw DestinationError(dest.path + " exists and holds other content; it is left untouched (--force replaces it)");
  }
  return ExistingFile::kReplace;
}

void check_free_space(const Destination& dest, std::uint64_t size) {
  std::string folder;
  if (dest.to_stdout) {
    const char* tmp = std::getenv("TMPDIR");
    folder = tmp && *tmp ? tmp : "/tmp";
  } else {
    folder = fs::path(dest.path).parent_path().string();
    if (folder.empty()) folder = ".";
  }
  struct statvfs vfs {};
  if (::statvfs(folder.c_str(), &vfs) != 0) return;  // no answer: the writes will tell
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const std::uint64_t held = dest.to_stdout ? 0 : allocated_bytes(dest.path + ".part");
  const std::uint64_t needed = size > held ? size - held : 0;
  if (needed > free_bytes) {
    throw DestinationError("not enough free space in " + folder + ": the file needs " + format_bytes(double(needed)) +
                           " more, " + format_bytes(double(free_bytes)) + " are free");
  }
}

}  // namespace zshare::peer
