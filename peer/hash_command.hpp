// hash_command.hpp: `zshare-peer hash FILE...`: prints each file's content id, as sha256sum prints digests, since
// the id (a Merkle root over 16 KiB blocks, schemas/protocol.md) is no longer any common tool's output.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace zshare::peer {

// One line "<cid>  <path>" per file on `out`; a file it cannot read gets a line on `err` and makes the exit code 1.
int hash_command(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);

}  // namespace zshare::peer
