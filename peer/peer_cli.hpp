// peer_cli.hpp: zshare-peer's command line (CLI11): global options, the `shell` and the one-shot subcommands.
// Returns the process exit code (0 OK, 1 a FAIL status, 2 usage or connection errors) instead of exiting.
#pragma once

#include <istream>
#include <ostream>

namespace zshare::peer {

struct ProcessIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  bool stdin_is_tty = false;  // the shell prompts only then
  bool stderr_is_tty = false; // downloads show a progress line only then
};

int run_peer_cli(int argc, const char* const* argv, ProcessIo io);

}  // namespace zshare::peer
