// destination.hpp: where `get` may put a file, decided before anything is transferred. "-" is standard output;
// a folder means <folder>/<published name>; a device, FIFO, socket or symlink is refused and left untouched; an
// existing regular file is replaced only with --force, and one that already holds the content is kept as it is.
#pragma once

#include "common/validate.hpp"
#include "peer/part_file.hpp"

#include <cstdint>
#include <string>

namespace zshare::peer {

struct Destination {
  bool to_stdout = false;
  std::string path;  // the final file (empty for standard output)
};

// What the user's `dest` means for a file published as `published_name`: "-" standard output; "" the current
// folder; an existing folder, or a path ending in '/', <folder>/<published_name>; else the path itself.
// Throws DestinationError (a folder that does not exist, an invalid published name).
Destination resolve_destination(const std::string& dest, const std::string& published_name);

enum class ExistingFile {
  kAbsent,       // nothing there: download
  kSameContent,  // a regular file holding exactly this content: nothing to do
  kReplace,      // a regular file with other content, and --force: download, then replace it
};

// Checks what is at the destination. Throws DestinationError for anything that is not a regular file, and for a
// regular file with other content when `force` is false. Hashes an existing file of the right size once.
ExistingFile check_existing(const Destination& dest, const Hash& cid, std::uint64_t size, bool force);

// Throws DestinationError when the filesystem holding `dest` (or $TMPDIR, for standard output) has less room
// than the download still needs (what a resumable .part already holds is counted as there).
void check_free_space(const Destination& dest, std::uint64_t size);

}  // namespace zshare::peer
