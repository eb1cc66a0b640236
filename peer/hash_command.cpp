// hash_command.cpp: one read of each file through hash_file; the chunk size does not change the id, so the
// default one is used.
#include "peer/hash_command.hpp"

#include "common/cli_parse.hpp"
#include "common/content_hash.hpp"

#include <stdexcept>

namespace zshare::peer {

int hash_command(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  int code = cli::kExitOk;
  for (const auto& path : files) {
    try {
      const ContentHashes h = hash_file(path);
      out << to_hex(h.cid) << "  " << path << '\n' << std::flush;
    } catch (const std::exception& e) {
      err << "zshare-peer hash: " << e.what() << '\n' << std::flush;
      code = cli::kExitFail;
    }
  }
  return code;
}

}  // namespace zshare::peer
