// private_file.cpp: the mode check, and what counts as a systemd credential.
#include "common/private_file.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace zshare {

namespace {

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The file, resolved, is in the folder $CREDENTIALS_DIRECTORY names, resolved (no `..` or symlink games).
bool is_systemd_credential(const std::string& path) {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (!dir || !*dir) return false;
  char* real_dir = ::realpath(dir, nullptr);
  char* real_file = ::realpath(path.c_str(), nullptr);
  bool inside = false;
  if (real_dir && real_file) {
    const std::string folder = std::string(real_dir) + "/";
    inside = std::string(real_file).rfind(folder, 0) == 0;
  }
  std::free(real_dir);
  std::free(real_file);
  return inside;
}

}  // namespace

std::optional<std::string> loose_permissions(const std::string& path, const struct stat& st) {
  const mode_t allowed = is_systemd_credential(path) ? 0040 : 0;  // a credential's group read bit is systemd's ACL
  if ((st.st_mode & 077 & ~allowed) == 0) return std::nullopt;
  return "has mode " + octal_mode(st.st_mode) + "; only its owner may read it (chmod 600 " + path + ")";
}

}  // namespace zshare
