// main.cpp: zshare-events: prints the broker's events as they happen (human lines or JSON lines), optionally
// after a snapshot of the whole index (--snapshot); gaps in seq are reported on stderr, never silent.
#include "tools/events/event_stream.hpp"

#include "common/curve_keys.hpp"

#include "common/cli_parse.hpp"
#include "common/endpoint_list.hpp"
#include "zshare/version.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  CLI::App app{"zshare-events: watch a zshare broker's events"};
  app.set_version_flag("--version", zshare::version_line("zshare-events"));  // one line on stdout, exit 0
  zshare::tools::EventStreamOptions opts;
  bool json = false;
  std::optional<std::uint64_t> count;
  std::optional<double> timeout_s;
  zshare::cli::config_option(app, "events", "read options from this file");
  std::string events = "tcp://127.0.0.1:5556";
  std::string brokers = "tcp://127.0.0.1:5555";
  double probe_after_s = 2.0;
  zshare::cli::add_endpoint_list(app, "--events", events,
                                 "the broker's event PUB endpoint, or several separated by commas (one per broker "
                                 "of --broker, in its order) to fail over between",
                                 "ZSHARE_EVENTS");
  zshare::cli::add_endpoint_list(app, "--broker", brokers,
                                 "the broker's control endpoint (for --snapshot), or several separated by commas: "
                                 "with several --events, each broker's, asked whether it is alive when its events "
                                 "fall silent",
                                 "ZSHARE_BROKER");
  app.add_option("--probe-after", probe_after_s,
                 "with several --events: seconds of silence after which the broker in use is asked whether it is "
                 "alive (STATS; when another broker of the list answers, its events are followed)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--topic", opts.topics, "only events whose topic starts with this (repeatable: user. file. peer.)");
  app.add_flag("--snapshot", opts.snapshot,
               "first print the whole index (Clone pattern), then the updates; after missed events (a gap, e.g. a "
               "broker restart's broker.started) the index again");
  app.add_flag("--json", json, "one JSON object per line (topic, seq and the event's fields)");
  app.add_option("--count", count, "exit 0 after this many events (snapshot lines not counted)");
  app.add_option("--timeout", timeout_s, "exit after this many seconds (1 if --count was not reached)")
      ->check(CLI::Range(0.0, 1e6));
  std::string broker_key;
  app.add_option("--broker-key", broker_key, "the broker's CurveZMQ public key, or its .pub file")
      ->envname("ZSHARE_BROKER_KEY");
  app.add_flag("--plaintext", opts.security.plaintext, "no CurveZMQ: for a broker run with --plaintext");
  if (auto code = zshare::cli::parse(app, argc, argv)) return *code;  // 0 after --help, 2 on a usage error
  try {
    opts.events = zshare::parse_endpoint_list(events);
    opts.brokers = zshare::parse_endpoint_list(brokers);
    opts.probe_after = std::chrono::milliseconds(std::llround(probe_after_s * 1000.0));
    zshare::tools::check_failover_lists(opts);
    if (opts.security.plaintext) {
      std::cerr << "zshare-events: WARNING: --plaintext: CurveZMQ is off" << std::endl;
    } else if (broker_key.empty()) {
      throw zshare::curve::KeyError("no broker key: pass --broker-key (the broker's public key or .pub file), "
                                    "or --plaintext for a broker run with --plaintext");
    } else {
      opts.security.broker_key = zshare::curve::read_public_key(broker_key);
      opts.security.own = zshare::curve::generate();  // a subscriber acts as nobody: a fresh key per run
    }
  } catch (const std::exception& e) {
    std::cerr << "zshare-events: " << e.what() << std::endl;
    return 2;
  }

  zmq::context_t ctx;
  zshare::tools::EventStream stream(ctx, opts);
  std::uint64_t gaps = 0;
  if (opts.topics.empty()) {
    stream.on_gap = [&gaps](std::uint64_t expected, std::uint64_t got) {
      ++gaps;
      std::cerr << "zshare-events: gap: expected seq " << expected << ", got " << got << " (" << (got - expected)
                << " events missed)" << std::endl;
    };
  }
  stream.on_failover = [](const std::string& from, const std::string& to) {
    std::cerr << "zshare-events: the broker of " << from << " stopped answering; following " << to << std::endl;
  };
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t seen = 0;
  try {
    for (;;) {
      auto wait = std::chrono::milliseconds(200);
      if (timeout_s) {
        const auto left = std::chrono::duration<double>(*timeout_s) - (std::chrono::steady_clock::now() - start);
        if (left.count() <= 0) return count ? 1 : 0;
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(left) + std::chrono::milliseconds(1));
      }
      auto e = stream.next(wait);
      if (!e) continue;
      if (json) std::cout << e->fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      else std::cout << zshare::tools::human_line(*e) << '\n';
      std::cout.flush();
      if (e->topic.rfind("snapshot.", 0) == 0) continue;
      if (count && ++seen >= *count) return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "zshare-events: " << e.what() << std::endl;
    return 2;
  }
}
