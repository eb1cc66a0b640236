// main.cpp: zshare-peer's entry point: hands argv and the standard streams to run_peer_cli.
// Nothing else lives here, so every behaviour can be tested in-process through the zshare_peer library.
#include "peer/peer_cli.hpp"

#include <csignal>
#include <iostream>
#include <unistd.h>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill us in the middle of a DISCONNECT
  std::ios::sync_with_stdio(false);
  return zshare::peer::run_peer_cli(argc, argv, {std::cin, std::cout, std::cerr, ::isatty(STDIN_FILENO) != 0, ::isatty(STDERR_FILENO) != 0});
}
