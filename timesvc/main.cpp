// main.cpp: zshare-timesvc: parse options, start a TimeServer, wait for SIGINT/SIGTERM, stop, exit 0.
// Prints one line "zshare-timesvc listening on <url>" once it accepts connections (useful with --port 0).
#include <iostream>
#include <stdexcept>

#include "common/cli_parse.hpp"
#include "zshare/version.hpp"

#include <CLI/CLI.hpp>

#include "common/stop_signals.hpp"
#include "timesvc/time_server.hpp"

int main(int argc, char** argv) {
  zshare::timesvc::ServerOptions options;
  CLI::App app{"zshare-timesvc: SOAP time service (UTC time as ISO 8601, epoch milliseconds, DD/MM/YYYY HH:MM:SS)"};
  app.set_version_flag("--version", zshare::version_line("zshare-timesvc"));  // one line on stdout, exit 0
  zshare::cli::config_option(app, "timesvc", "read options from this file (TOML or INI: port = 8080)");
  app.add_option("--bind", options.bind, "address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "worker threads")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--idle-timeout-ms", options.idle_timeout_ms, "close idle keep-alive connections after this")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  app.add_option("--io-timeout-ms", options.io_timeout_ms, "drop a connection whose send/receive stalls this long")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  app.add_option("--linger-us", options.linger_us, "wait this long on a connection for its next request")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  if (auto code = zshare::cli::parse(app, argc, argv)) return *code;  // 0 after --help, 2 on a usage error

  zshare::StopSignals stop;  // first: the server's threads inherit the blocked signals
  zshare::timesvc::TimeServer server(options);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::cerr << "zshare-timesvc: " << e.what() << std::endl;
    return zshare::cli::kExitUsage;  // could not start (the port is taken, ...): a usage error
  }
  std::cout << "zshare-timesvc listening on " << server.url() << std::endl;

  const int sig = stop.wait();
  server.stop();
  std::cout << "zshare-timesvc stopped (signal " << sig << ")" << std::endl;
  return 0;
}
