// main.cpp: zshare-broker's command line: options (CLI11, with --config), signals, then Broker::run.
// SIGINT/SIGTERM finish the batch in hand, close the database cleanly and exit 0.
#include "broker/broker.hpp"
#include "common/curve_keys.hpp"
#include "common/stop_signals.hpp"

#include "common/cli_parse.hpp"
#include "zshare/version.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

// `zshare-broker keygen`: the long-term keypair (0600) and its public half (.pub, 0644) for the peers.
int keygen(const std::string& key_file) {
  try {
    const auto keys = zshare::curve::generate();
    std::string pub = key_file;
    if (pub.size() > 4 && pub.compare(pub.size() - 4, 4, ".key") == 0) pub.resize(pub.size() - 4);
    pub += ".pub";
    zshare::curve::write_secret_file(key_file, keys);
    zshare::curve::write_public_file(pub, keys.public_key);
    // The Z85 key may hold `!` and `$`, which an unquoted shell word mangles: say how to pass it safely.
    std::cout << "zshare-broker: wrote " << key_file << " (secret, 0600: it stays with the broker) and " << pub
              << " (public: for the peers)\n"
              << "peers pass --broker-key " << pub << ", or the key itself in single quotes: --broker-key '"
              << keys.public_key << "'\n"
              << "or the same key in hex: --broker-key " << zshare::curve::hex_of_z85(keys.public_key) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "zshare-broker: keygen: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  zshare::broker::BrokerOptions opts;
  CLI::App app{"zshare-broker: the index of users and files of a zshare network"};
  app.set_version_flag("--version", zshare::version_line("zshare-broker"));  // one line on stdout, exit 0
  zshare::cli::config_option(app, "broker", "read options from this file (TOML or INI: bind = \"tcp://...\")");
  app.add_option("--bind", opts.bind, "control ROUTER endpoint")->capture_default_str();
  app.add_option("--events", opts.events, "event PUB endpoint")->capture_default_str();
  app.add_option("--db", opts.db,
                 "the database: a SQLite file (created if missing), or PostgreSQL as a libpq URI "
                 "postgresql://USER@HOST[:PORT]/DBNAME (its tables are created if missing)")
      ->capture_default_str();
  app.add_option("--max-batch", opts.max_batch, "requests committed in one transaction at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--rpclog", opts.rpclog, "operations logger HOST:PORT, or none")->capture_default_str();
  app.add_option("--heartbeat-misses", opts.heartbeat_misses,
                 "disconnect a session silent for this many of the heartbeat intervals asked of it")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--heartbeat-rate", opts.heartbeat_rate,
                 "heartbeats a second budgeted for all sessions together: each session is asked for the interval "
                 "it promised, or sessions/rate seconds when that is longer")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e7));
  app.add_option("--reply-cache", opts.reply_cache, "replies kept for retried request ids")->capture_default_str();
  app.add_option("--rate-limit", opts.rate_limit.rate,
                 "requests a second per client (a token bucket per CurveZMQ key; per connection with --plaintext); "
                 "0: no limit")
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
  app.add_option("--key", opts.key_file, "the broker's CurveZMQ keypair file (made by `zshare-broker keygen`)")
      ->capture_default_str();
  app.add_option("--relay", opts.relay,
                 "tcp://HOST:PORT of the zshare-relay that peers which cannot dial each other use (needs "
                 "--relay-secret-file)");
  app.add_option("--relay-secret-file", opts.relay_secret_file,
                 "the secret shared with that relay (`zshare-relay secret FILE` makes one)");
  app.add_option("--name", opts.name,
                 "this broker's name among the brokers sharing a PostgreSQL database (sessions are held under it; "
                 "unique per broker) [<hostname>:<port of --bind>]");
  double lease_s = 5.0;
  app.add_option("--lease", lease_s,
                 "seconds after which the sessions of a broker sharing a PostgreSQL database end once it stops "
                 "(it renews its lease every second while it runs)")
      ->capture_default_str()
      ->check(CLI::Range(2.0, 3600.0));
  double probe_timeout_s = 2.0;
  app.add_option("--probe-timeout", probe_timeout_s,
                 "seconds a CONNECT's advertised endpoint is given to accept a TCP connection from the broker "
                 "(searches then say whether it is reachable); 0: no probes")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  app.add_flag("--plaintext", opts.plaintext, "no CurveZMQ encryption or user keys: for a trusted lab network only");
  app.fallthrough();  // before add_subcommand: `keygen --key FILE` takes the main option after the subcommand
  auto* keygen_cmd = app.add_subcommand("keygen", "create the broker's keypair at --key and its public half (.pub)");
  app.require_subcommand(0, 1);
  if (auto code = zshare::cli::parse(app, argc, argv)) return *code;  // 0 after --help, 2 on a usage error
  if (keygen_cmd->parsed()) return keygen(opts.key_file);
  opts.probe_timeout = std::chrono::milliseconds(static_cast<long long>(probe_timeout_s * 1000.0));
  opts.lease = std::chrono::milliseconds(static_cast<long long>(lease_s * 1000.0));
  if (opts.plaintext) {
    std::cerr << "zshare-broker: WARNING: --plaintext: CurveZMQ is off; anyone who can reach these ports can read "
                 "the traffic and act as any user" << std::endl;
  }

  zshare::StopSignals stop;  // before the Broker starts its threads, which inherit the blocked signals
  try {
    zshare::broker::Broker broker(opts);
    std::cerr << "zshare-broker: control " << broker.control_endpoint() << ", events " << broker.events_endpoint()
              << ", db " << broker.store().describe() << " (" << broker.index().user_count() << " users, "
              << broker.index().file_count() << " files; broker.started is seq " << broker.seq() << ")"
              << (opts.plaintext ? std::string(", plaintext") : ", CurveZMQ key " + broker.public_key())
              << (opts.relay.empty() ? std::string() : ", relay " + opts.relay) << std::endl;
    broker.run(stop.flag());
    std::cerr << "zshare-broker: stopped cleanly" << std::endl;
  } catch (const zshare::curve::KeyError& e) {
    std::cerr << "zshare-broker: fatal: " << e.what() << std::endl;
    if (std::string(e.what()).find("No such file") != std::string::npos) {
      std::cerr << "(create the keypair with `zshare-broker keygen --key " << opts.key_file
                << "`, or run a trusted lab network with --plaintext)" << std::endl;
    }
    return zshare::cli::kExitUsage;  // the broker could not start: a usage error, never a FAIL status
  } catch (const std::exception& e) {
    std::cerr << "zshare-broker: fatal: " << e.what() << std::endl;
    return zshare::cli::kExitUsage;
  }
  return 0;
}
