// share_folder.hpp: what a share folder holds and which of its entries `serve` publishes. Published names are
// flat (schemas/protocol.md: no '/'), so only the folder's own regular files count: subfolders, symlinks (they may
// lead out of the share), dotfiles, `*.part` files (downloads in progress) and other kinds are never published.
// Entries are read with lstat(): nothing here follows a link.
#pragma once

#include "peer/file_identity.hpp"

#include <string>
#include <vector>

namespace zshare::peer {

struct FolderEntry {
  std::string name;
  unsigned mode = 0;  // st_mode
  FileIdentity identity;  // size, mtime, ctime, inode: a change to any of them is a change to the entry

  bool operator==(const FolderEntry& o) const { return name == o.name && mode == o.mode && identity == o.identity; }
  bool operator!=(const FolderEntry& o) const { return !(*this == o); }
};

// Every entry of `folder` but "." and "..", in no particular order. Throws std::system_error when the folder
// cannot be read (gone, not a folder, no permission).
std::vector<FolderEntry> read_folder(const std::string& folder);

enum class ShareRule {
  kPublish,   // a regular file with a valid published name
  kHidden,    // a dotfile or a *.part file: skipped without a word
  kSymlink,   // skipped with a note: it may lead out of the share
  kFolder,    // skipped with a note: subfolders are not published
  kBadName,   // skipped with a note: the protocol refuses the name
  kOther,     // FIFO, socket, device: skipped without a word
};

ShareRule share_rule(const FolderEntry& entry);

// The note `serve` logs once when it skips `entry` under `rule`; empty for the rules skipped without a word.
std::string skip_note(const FolderEntry& entry, ShareRule rule);

}  // namespace zshare::peer
