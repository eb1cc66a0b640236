// main.cpp: zshare-relay's command line: options (CLI11, with --config), the secret file, signals, then
// RelayServer::run; or `zshare-relay secret FILE` to make the secret the relay shares with the broker.
// Prints "zshare-relay listening on tcp://HOST:PORT" as its first stdout line once it accepts connections.
#include "common/byte_size.hpp"
#include "common/relay_token.hpp"
#include "common/stop_signals.hpp"
#include "relay/relay_server.hpp"

#include "common/cli_parse.hpp"
#include "zshare/version.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <iostream>

namespace {

// `zshare-relay secret FILE`: 32 random bytes in hex, 0600, never over an existing file.
int write_secret(const std::string& path) {
  try {
    zshare::relay_token::write_new_secret(path);
    std::cout << "zshare-relay: wrote " << path << " (0600): give the same file to the broker (its relay secret) and "
              << "keep it from everyone else" << std::endl;
    return zshare::cli::kExitOk;
  } catch (const std::exception& e) {
    std::cerr << "zshare-relay: secret: " << e.what() << std::endl;
    return zshare::cli::kExitFail;
  }
}

std::chrono::milliseconds from_seconds(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

}  // namespace

int main(int argc, char** argv) {
  zshare::relay::RelayOptions opts;
  std::string secret_file;
  double pair_timeout_s = 30;
  double idle_timeout_s = 60;
  CLI::App app{"zshare-relay: pairs two peers that are both behind NAT and forwards their encrypted link"};
  app.set_version_flag("--version", zshare::version_line("zshare-relay"));  // one line on stdout, exit 0
  zshare::cli::config_option(app, "relay", "read options from this file (TOML or INI: bind = \"tcp://...\")");
  app.add_option("--bind", opts.bind, "listen endpoint, tcp://HOST:PORT (PORT 0 or *: any free port)")
      ->capture_default_str();
  app.add_option("--secret-file", secret_file,
                 "the secret shared with the broker (64 hex digits, mode 0600; `zshare-relay secret FILE` makes one)");
  app.add_option("--rate-limit", opts.rate_limit, "bytes a second per circuit, both ways together, e.g. 10M (0: none)")
      ->transform(zshare::cli::byte_size())
      ->capture_default_str();
  app.add_option("--max-circuits-per-ip", opts.max_circuits_per_ip,
                 "connections from one IP address at once, unpaired and paired (each end of a circuit counts)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--max-pending", opts.max_pending, "unpaired connections in all")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}));
  app.add_option("--pair-timeout", pair_timeout_s, "seconds a connection may wait for its other side")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 86400.0));
  app.add_option("--idle-timeout", idle_timeout_s, "seconds a circuit may pass no byte either way")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 864000.0));
  std::string new_secret;
  auto* secret_cmd = app.add_subcommand("secret", "write a fresh secret to FILE (0600; an existing file is kept)");
  secret_cmd->add_option("FILE", new_secret, "the secret file to create")->required();
  app.require_subcommand(0, 1);
  if (auto code = zshare::cli::parse(app, argc, argv)) return *code;  // 0 after --help, 2 on a usage error
  if (secret_cmd->parsed()) return write_secret(new_secret);
  if (secret_file.empty()) {
    std::cerr << "zshare-relay: --secret-file is required (make one with `zshare-relay secret FILE` and give the "
                 "broker the same file)" << std::endl;
    return zshare::cli::kExitUsage;
  }
  opts.pair_timeout = from_seconds(pair_timeout_s);
  opts.idle_timeout = from_seconds(idle_timeout_s);

  zshare::StopSignals stop;        // first: no thread may take SIGINT/SIGTERM with their default action
  std::signal(SIGPIPE, SIG_IGN);   // splice(2) into a reset socket raises SIGPIPE; its EPIPE is handled
  try {
    opts.secret = zshare::relay_token::load_secret(secret_file);
    zshare::relay::RelayServer relay(opts, std::cerr);
    std::cout << "zshare-relay listening on " << relay.endpoint() << std::endl;
    std::cerr << "zshare-relay: " << relay.endpoint() << ", rate limit "
              << (opts.rate_limit ? zshare::format_bytes(static_cast<double>(opts.rate_limit)) + "/s per circuit"
                                  : std::string("none"))
              << ", at most " << opts.max_circuits_per_ip << " connections per IP and " << opts.max_pending
              << " unpaired, pair timeout " << pair_timeout_s << " s, idle timeout " << idle_timeout_s << " s"
              << std::endl;
    relay.run(stop.flag(), stop.fd());
    std::cerr << "zshare-relay: stopped cleanly: " << relay.stats_line() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "zshare-relay: fatal: " << e.what() << std::endl;
    return zshare::cli::kExitUsage;  // the relay could not start (or its loop failed): never a FAIL status
  }
  return 0;
}
