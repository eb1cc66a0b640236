// main.cpp: zshare-rpclog's command line: serve the operations log (default), or `tail` it through QUERY.
// SIGINT/SIGTERM stop the server between requests; every acknowledged batch is already fsynced.
#include "common/stop_signals.hpp"
#include "rpclog/log_file.hpp"
#include "rpclog/rpclog_server.hpp"
#include "rpclog/tail_command.hpp"

#include "common/cli_parse.hpp"
#include "zshare/version.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"zshare-rpclog: the ONC-RPC operations logger of a zshare network"};
  app.set_version_flag("--version", zshare::version_line("zshare-rpclog"));  // one line on stdout, exit 0
  zshare::cli::config_option(app, "rpclog", "read options from this file");
  std::string bind = "127.0.0.1";
  int port = 5557;
  std::string log_path = "zshare-operations.log";
  app.add_option("--bind", bind, "IPv4 address to listen on")->capture_default_str();
  app.add_option("--port", port, "TCP port (also registered with rpcbind when it runs)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--log", log_path, "the operations log file")->capture_default_str();
  int record_timeout_ms = 10000;
  app.add_option("--record-timeout-ms", record_timeout_ms,
                 "close a connection whose request stays incomplete this long (a stalled or hostile client)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600000));

  auto* tail = app.add_subcommand("tail", "print the newest records of a running logger (QUERY)");
  zshare::rpclog::TailOptions to;
  tail->add_option("--server", to.server, "the logger's HOST:PORT")->capture_default_str();
  tail->add_option("--user", to.user, "only this user's records");
  tail->add_option("--op", to.operation, "only this operation")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(zshare::rpclog::kLoggedOperations),
                                                     std::end(zshare::rpclog::kLoggedOperations))));
  tail->add_option("-n,--last", to.last, "how many records (with --follow: at most this many new ones a second)")
      ->capture_default_str();
  tail->add_flag("--json", to.json, "one JSON object per record: ts, ts_local, user, op, args, broker, seq");
  tail->add_flag("-f,--follow", to.follow, "keep printing new records until SIGINT/SIGTERM");
  if (auto code = zshare::cli::parse(app, argc, argv)) return *code;  // 0 after --help, 2 on a usage error

  try {
    if (*tail) {
      zshare::StopSignals stop;
      zshare::rpclog::tail_command(to, std::cout, stop.flag());
      return 0;
    }
    zshare::StopSignals stop;  // first: the server's threads inherit the blocked signals
    zshare::rpclog::LogFile log(log_path, std::cerr);
    zshare::rpclog::RpcLogServer rpc(log, bind, static_cast<std::uint16_t>(port), std::cerr,
                                     std::chrono::milliseconds(record_timeout_ms));
    rpc.run(stop.flag());
    std::cerr << "zshare-rpclog: stopped cleanly" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "zshare-rpclog: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
