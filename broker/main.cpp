// main.cpp: zshare-broker's command line: options (CLI11, with --config), signals, then Broker::run.
// SIGINT/SIGTERM finish the batch in hand, close the database cleanly and exit 0.
#include "broker/broker.hpp"

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <iostream>

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: let zmq_poll return EINTR at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  zshare::broker::BrokerOptions opts;
  CLI::App app{"zshare-broker: the index of users and files of a zshare network"};
  app.set_config("--config", "", "read options from this file (TOML or INI: bind = \"tcp://...\")");
  app.add_option("--bind", opts.bind, "control ROUTER endpoint")->capture_default_str();
  app.add_option("--events", opts.events, "event PUB endpoint")->capture_default_str();
  app.add_option("--db", opts.db, "SQLite database file")->capture_default_str();
  app.add_option("--max-batch", opts.max_batch, "requests committed in one transaction at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--rpclog", opts.rpclog, "operations logger HOST:PORT, or none")->capture_default_str();
  app.add_option("--heartbeat-misses", opts.heartbeat_misses,
                 "disconnect a session silent for this many of the heartbeat intervals it promised")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--reply-cache", opts.reply_cache, "replies kept for retried request ids")->capture_default_str();
  app.add_option("--rate-limit", opts.rate_limit.rate,
                 "requests a second per client (token bucket per connection); 0: no limit")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--rate-burst", opts.rate_limit.burst, "requests a client may send at once before --rate-limit applies")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e9));
  app.add_option("--rate-clients", opts.rate_limit.max_identities,
                 "clients whose buckets are remembered at most (the least recently seen are forgotten)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}));
  app.add_option("--max-files-per-user", opts.max_files_per_user, "files one user may publish at most")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40));
  CLI11_PARSE(app, argc, argv);

  install_signal_handlers();
  try {
    zshare::broker::Broker broker(opts);
    std::cerr << "zshare-broker: control " << broker.control_endpoint() << ", events " << broker.events_endpoint()
              << ", db " << opts.db << " (" << broker.index().user_count() << " users, "
              << broker.index().file_count() << " files; broker.started is seq " << broker.seq() << ")" << std::endl;
    broker.run(g_stop);
    std::cerr << "zshare-broker: stopped cleanly" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "zshare-broker: fatal: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
