// private_file.hpp: is a file holding a secret (a CurveZMQ secret key, the relay's secret) readable only by whom it
// must be? Its owner alone (mode 0600 or stricter), like ssh asks of a private key; or, for a systemd credential
// (a file under $CREDENTIALS_DIRECTORY, which systemd makes readable by the service alone), nobody else: newer
// systemd gives the service read access through an ACL, so stat shows group bits there (0440).
#pragma once

#include <optional>
#include <string>

#include <sys/stat.h>

namespace zshare {

// Nothing when `st` (the file at `path`) is private enough; else the problem, in words, e.g.
// "has mode 0644; only its owner may read it (chmod 600 PATH)".
std::optional<std::string> loose_permissions(const std::string& path, const struct stat& st);

}  // namespace zshare
