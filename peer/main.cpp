// main.cpp: zshare-peer's entry point: hands argv and the standard streams to run_peer_cli.
// Nothing else lives here, so every behaviour can be tested in-process through the zshare_peer library.
#include "peer/peer_cli.hpp"

#include <csignal>
#include <iostream>
#include <unistd.h>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill us in the middle of a DISCONNECT
  // The standard streams stay synchronized with stdio: the seeder and the session keeper report on std::cerr
  // from their own threads, and only synchronized standard streams may be written by several threads at once.
  return zshare::peer::run_peer_cli(argc, argv, {std::cin, std::cout, std::cerr, ::isatty(STDIN_FILENO) != 0, ::isatty(STDERR_FILENO) != 0});
}
