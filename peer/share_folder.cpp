// share_folder.cpp: readdir + fstatat(AT_SYMLINK_NOFOLLOW): one system call per entry, so a pass over a folder of
// 10,000 files stays cheap enough to run after every burst of changes.
#include "peer/share_folder.hpp"

#include "common/validate.hpp"

#include <cerrno>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

namespace zshare::peer {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::vector<FolderEntry> read_folder(const std::string& folder) {
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) throw std::system_error(errno, std::generic_category(), "cannot read the folder " + folder);
  std::vector<FolderEntry> out;
  const int dfd = ::dirfd(dir);
  while (const dirent* d = ::readdir(dir)) {
    const std::string name = d->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone since readdir
    out.push_back(FolderEntry{name, static_cast<unsigned>(st.st_mode), identity_of(st)});
  }
  ::closedir(dir);
  return out;
}

ShareRule share_rule(const FolderEntry& e) {
  if (e.name.empty() || e.name[0] == '.' || ends_with(e.name, ".part")) return ShareRule::kHidden;
  if (S_ISLNK(e.mode)) return ShareRule::kSymlink;
  if (S_ISDIR(e.mode)) return ShareRule::kFolder;
  if (!S_ISREG(e.mode)) return ShareRule::kOther;
  if (!is_valid_file_name(e.name)) return ShareRule::kBadName;
  return ShareRule::kPublish;
}

std::string skip_note(const FolderEntry& e, ShareRule rule) {
  switch (rule) {
    case ShareRule::kSymlink:
      return "serve: skipping " + e.name + ": symlinks are not published (they may lead out of the share)";
    case ShareRule::kFolder:
      return "serve: skipping folder " + e.name +
             "/: subfolders are not published (published names are flat, see schemas/protocol.md)";
    case ShareRule::kBadName:
      return "serve: skipping " + e.name + ": not a valid published name";
    default:
      return "";
  }
}

}  // namespace zshare::peer
