// peer_cli.cpp: option parsing only; the work is Shell and broker_commands. One zmq context per run.
// Precedence of an option's value: command line, then environment (ZSHARE_BROKER), then --config, then default.
#include "peer/peer_cli.hpp"

#include "common/cli_parse.hpp"
#include "common/endpoint_list.hpp"
#include "common/stop_signals.hpp"
#include "peer/broker_client.hpp"
#include "peer/broker_commands.hpp"
#include "peer/get_command.hpp"
#include "peer/hash_command.hpp"
#include "peer/progress_meter.hpp"
#include "peer/serve_command.hpp"
#include "peer/response_printer.hpp"
#include "peer/shell.hpp"
#include "peer/shell_editline.hpp"
#include "zshare/version.hpp"

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

namespace zshare::peer {

namespace {

enum class Subcommand { kShell, kRegister, kUnregister, kListUsers, kListContent, kSearch, kGet, kServe, kHash };

// Everything the command line said, filled in by CLI11.
struct PeerOptions {
  std::string broker = "tcp://127.0.0.1:5555";
  std::string timesvc;
  bool json = false;
  double timeout_s = 3.0;
  Subcommand subcommand = Subcommand::kShell;
  ShellOptions shell;
  std::string advertise_host;
  std::string user;
  std::vector<std::string> words;
  std::optional<std::string> cid;
  std::optional<std::uint64_t> limit;
  bool search_all = false;
  GetRequest get;
  std::vector<std::string> get_what;  // targets, and perhaps a destination last (`get WHAT DEST`)
  std::string get_dir;                // -d: every target saved there under its published name
  std::string get_output;             // -o: the one target saved as this file ("-": standard output)
  bool quiet = false;
  bool no_progress = false;
  double source_timeout_s = 5.0;
  double wait_sources_s = 2.0;
  double retry_wait_s = 1.0;
  ServeOptions serve;
  std::vector<std::string> hash_files;
  double heartbeat_s = 1.0;
  std::string broker_key;  // the broker's public key, or a file holding it
  std::string key_dir;     // where this peer's keypair lives (created on first run)
  bool plaintext = false;
};

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

void define_options(CLI::App& app, PeerOptions& o) {
  app.fallthrough();  // global options may also follow the subcommand
  app.require_subcommand(1);
  const char* home = std::getenv("ZSHARE_HOME");  // moves everything of a peer: keys, hash cache, this file
  std::vector<std::string> first;
  if (home && *home) first.push_back(std::string(home) + "/config.toml");
  cli::config_option(app, "peer",
                     "read options from this file (TOML or INI; [shell], [get], [serve] sections; "
                     "$ZSHARE_HOME/config.toml comes first when ZSHARE_HOME is set)",
                     first);
  cli::add_endpoint_list(app, "--broker", o.broker,
                         "the broker's control endpoint, or several separated by commas to fail over between "
                         "(brokers of one network: one --broker-key)",
                         "ZSHARE_BROKER");
  app.add_option("--timesvc", o.timesvc, "the SOAP time service, http://HOST:PORT (stamps every operation)")
      ->envname("ZSHARE_TIMESVC");
  app.add_option("--heartbeat", o.heartbeat_s,
                 "seconds between heartbeats while connected (the broker drops a peer silent for 3); 0: none")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  app.add_option("--broker-key", o.broker_key,
                 "the broker's CurveZMQ public key, or its .pub file (from `zshare-broker keygen`)")
      ->envname("ZSHARE_BROKER_KEY");
  app.add_option("--key-dir", o.key_dir,
                 "folder of this peer's keypair, peer.key, made on first run (default $ZSHARE_HOME, else "
                 "~/.config/zshare)")
      ->envname("ZSHARE_KEY_DIR");
  app.add_flag("--plaintext", o.plaintext, "no CurveZMQ: for a broker run with --plaintext on a trusted lab network");
  app.add_flag("--json", o.json, "print one JSON object per response instead of text");
  app.add_option("--timeout", o.timeout_s,
                 "seconds to wait for the broker's answer to one request (3 tries), per broker of --broker")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();

  auto chosen = [&o](Subcommand s) { return [&o, s]() { o.subcommand = s; }; };

  auto* shell = app.add_subcommand("shell", "the console: reads commands line by line from stdin");
  shell->add_option("--listen", o.shell.listen, "where the transfer ROUTER binds after CONNECT")->capture_default_str();
  shell->add_option("--advertise", o.advertise_host, "host other peers should dial instead of the bound one, or a whole tcp://HOST:PORT (a forwarded port)");
  shell->add_option("--page-size", o.shell.search_page_size, "results per SEARCH request")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000}))
      ->capture_default_str();
  shell->callback(chosen(Subcommand::kShell));

  auto* reg = app.add_subcommand("register", "register a user name");
  reg->add_option("user", o.user, "the user name")->required();
  reg->callback(chosen(Subcommand::kRegister));

  auto* unreg = app.add_subcommand("unregister", "unregister a user and unpublish its files");
  unreg->add_option("user", o.user, "the user name")->required();
  unreg->callback(chosen(Subcommand::kUnregister));

  app.add_subcommand("list-users", "list the connected users and their endpoints")
      ->callback(chosen(Subcommand::kListUsers));

  auto* list_content = app.add_subcommand("list-content", "list the files a user published");
  list_content->add_option("user", o.user, "the user name")->required();
  list_content->callback(chosen(Subcommand::kListContent));

  auto* search = app.add_subcommand("search", "search the files of online users by keywords or content id");
  search->add_option("words", o.words, "keywords; a file matches when it has them all");
  search->add_option("--cid", o.cid, "exact content id (64 lowercase hex digits)");
  search->add_option("--limit", o.limit, "print at most N results")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}));
  search->add_flag("--all", o.search_all, "also files whose owner is offline (by default: online sources only)");
  search->callback(chosen(Subcommand::kSearch));

  auto* get = app.add_subcommand("get", "download files from every online peer that holds them, verified");
  get->add_option("what", o.get_what,
                  "content ids (64 hex digits) or user:name, then optionally where to save the one file: a file, a "
                  "folder, or - for standard output (default: the current folder, under the published name)")
      ->required();
  get->add_option("-d,--dir", o.get_dir, "save every file in this folder, under its published name");
  get->add_option("-o,--output", o.get_output, "save the one file as this path (- : standard output)");
  get->add_flag("--force", o.get.force, "replace an existing file that holds other content");
  get->add_option("--window", o.get.download.window, "chunk requests in flight per source")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  get->add_option("--rate-limit", o.get.download.rate_limit, "download cap in bytes per second, e.g. 10M (0: none)")
      ->transform(cli::byte_size())
      ->capture_default_str();
  get->add_option("--source-timeout", o.source_timeout_s, "seconds a silent source is given before it is dropped")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  get->add_option("--wait-sources", o.wait_sources_s,
                  "seconds to keep asking when every holder is offline (a broker restart: they reconnect)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  get->add_option("--max-tries", o.get.max_tries, "downloads tried when every source failed (resuming each time)")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  get->add_option("--retry-wait", o.retry_wait_s, "seconds between tries")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  get->add_flag("-q,--quiet", o.quiet, "no progress, no summary, no notes: only failures, on stderr");
  get->add_flag("--no-progress", o.no_progress, "no progress line (it shows only on a terminal anyway)");
  get->callback(chosen(Subcommand::kGet));

  auto* serve = app.add_subcommand("serve", "publish every file of a folder and serve it until SIGINT/SIGTERM");
  serve->add_option("--user", o.serve.user, "the user to serve as (registered if needed)")->required();
  serve->add_option("--share", o.serve.share, "the folder whose regular files are published")->required();
  serve->add_option("--listen", o.serve.listen, "where the transfer ROUTER binds")->capture_default_str();
  serve->add_option("--advertise", o.advertise_host, "host other peers should dial instead of the bound one, or a whole tcp://HOST:PORT (a forwarded port)");
  serve->add_option("--hash-cache", o.serve.hash_cache, "hash cache file (default $ZSHARE_HOME/hashes.db, else ~/.cache/zshare/hashes.db)");
  serve->add_option("--chunk-size", o.serve.chunk_size, "bytes per chunk for newly hashed files (power of two)")
      ->check(CLI::Range(16384u, 16777216u))
      ->capture_default_str();
  serve->add_option("--rate-limit", o.serve.seeder.rate_limit, "upload cap in bytes per second, e.g. 10M (0: none)")
      ->transform(cli::byte_size())
      ->capture_default_str();
  serve->add_option_function<std::string>(
           "--watch",
           [&o](const std::string& mode) { o.serve.watch.mode = watch_mode_named(mode); },
           "how the share is followed: auto (inotify, else polling), inotify, or poll")
      ->check(CLI::IsMember({"auto", "inotify", "poll"}))
      ->type_name("MODE")
      ->default_str("auto");
  serve->add_option_function<double>(
           "--poll-interval",
           [&o](double s) { o.serve.watch.poll_interval = std::chrono::milliseconds(std::llround(s * 1000.0)); },
           "seconds between two looks at the share when polling (--watch poll, or inotify unavailable)")
      ->check(CLI::Range(0.05, 3600.0))
      ->default_str("2");
  serve->add_option("--fault-corrupt-every", o.serve.seeder.corrupt_every,
                    "TESTING ONLY: flip a byte in every Nth chunk served")
      ->group("Testing");
  serve->callback(chosen(Subcommand::kServe));

  auto* hash = app.add_subcommand("hash", "print the content id of files (64 hex digits, as search --cid takes it)");
  hash->add_option("file", o.hash_files, "the files")->required();
  hash->callback(chosen(Subcommand::kHash));
  shell->add_option("--rate-limit", o.shell.seeder.rate_limit, "upload cap in bytes per second, e.g. 10M (0: none)")
      ->transform(cli::byte_size())
      ->capture_default_str();
  shell->add_option("--window", o.shell.download.window, "GET_FILE: chunk requests in flight per source")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
}

// The keys every socket of this run uses: the peer's own (made on first run) and the broker's public key.
curve::LinkSecurity link_security(const PeerOptions& o, std::ostream& err) {
  curve::LinkSecurity security;
  security.plaintext = o.plaintext;
  if (o.plaintext) {
    err << "zshare-peer: WARNING: --plaintext: CurveZMQ is off; anyone on the network can read this peer's "
           "traffic and act as its user\n" << std::flush;
    return security;
  }
  if (o.broker_key.empty()) {
    throw curve::KeyError(
        "no broker key: pass --broker-key with the broker's public key or its .pub file (or set broker-key in "
        "the config, or ZSHARE_BROKER_KEY); use --plaintext only against a broker run with --plaintext");
  }
  security.broker_key = curve::read_public_key(o.broker_key);
  security.own = curve::load_or_create(o.key_dir.empty() ? curve::default_key_dir() : o.key_dir);
  return security;
}

// A positional of `get` that names something to fetch (a content id or user:name), not a destination.
bool names_a_target(const std::string& word) {
  Hash ignored{};
  if (try_parse_hash(word, ignored)) return true;
  const auto colon = word.find(':');
  return colon != std::string::npos && is_valid_user(word.substr(0, colon)) && is_valid_file_name(word.substr(colon + 1));
}

// `get WHAT... [DEST]`, `get WHAT... -d DIR`, `get WHAT -o FILE`: the targets and the one destination they share.
// Throws CLI::ValidationError for a combination that cannot mean anything; a malformed target itself is left to
// get_command, which answers it `GET FAIL, BAD REQUEST` like any other.
std::pair<std::vector<std::string>, std::string> get_targets(const PeerOptions& o) {
  std::vector<std::string> targets = o.get_what;
  if (!o.get_dir.empty() && !o.get_output.empty()) throw CLI::ValidationError("-d and -o", "give one of them");
  if (!o.get_output.empty()) {
    if (targets.size() != 1) throw CLI::ValidationError("-o", "names one file; for several use -d DIR");
    return {targets, o.get_output};
  }
  if (!o.get_dir.empty()) {  // made when missing, as aria2c -d does
    std::error_code ec;
    std::filesystem::create_directories(o.get_dir, ec);
    if (ec) throw CLI::ValidationError("-d", "cannot make the folder " + o.get_dir + ": " + ec.message());
    return {targets, o.get_dir.back() == '/' ? o.get_dir : o.get_dir + "/"};
  }
  std::string dest;
  if (targets.size() >= 2 && !names_a_target(targets.back())) {
    dest = targets.back();
    targets.pop_back();
  }
  if (dest == "-" && targets.size() > 1) throw CLI::ValidationError("-", "standard output takes one file");
  if (!dest.empty() && dest.find(':') != std::string::npos && dest.find('/') == std::string::npos) {
    throw CLI::ValidationError("what", "'" + dest + "' looks like a mistyped user:name; to save under that name, "
                                       "use -o ./" + dest);
  }
  if (targets.size() > 1 && !dest.empty() && dest.back() != '/' && !std::filesystem::is_directory(dest)) {
    throw CLI::ValidationError("dest", "several files go to a folder, and " + dest + " is not one (use -d DIR)");
  }
  return {targets, dest};
}

// Runs one GET per target, each reported on its own; the exit code is the worst of them (an interrupt stops all).
int run_get(PeerOptions& o, zmq::context_t& ctx, BrokerClient& broker, ProcessIo io, const StopSignals& stop) {
  std::vector<std::string> targets;
  std::string dest;
  try {
    std::tie(targets, dest) = get_targets(o);
  } catch (const CLI::ValidationError& e) {
    io.err << "zshare-peer get: " << e.what() << '\n' << std::flush;
    return cli::kExitUsage;
  }
  o.get.download.source_timeout =
      std::chrono::milliseconds(std::max<long long>(100, std::llround(o.source_timeout_s * 1000.0)));
  o.get.source_wait = std::chrono::milliseconds(std::llround(o.wait_sources_s * 1000.0));
  o.get.retry_wait = std::chrono::milliseconds(std::llround(o.retry_wait_s * 1000.0));
  o.get.download.stop = &stop.flag();
  const bool to_stdout = dest == "-";  // then standard output carries the file's bytes and nothing else
  ResponsePrinter printer(to_stdout ? io.err : io.out, io.err, o.json ? OutputFormat::kJson : OutputFormat::kText);
  ProgressMeter meter(io.err, std::chrono::seconds(5), terminal_columns(STDERR_FILENO));
  GetObserver observer;
  if (io.stderr_is_tty && !o.json && !o.quiet && !o.no_progress) {
    observer.progress = [&meter](const Progress& p) { meter.update(p); };
  }
  if (!o.quiet) {
    observer.note = [&meter, &io](const std::string& sentence) {
      meter.break_line();
      io.err << sentence << '\n' << std::flush;
    };
  }
  int code = cli::kExitOk;
  for (const auto& target : targets) {
    GetRequest request = o.get;
    request.target = target;
    request.dest = dest;
    CommandResult result;
    try {
      result = get_command(ctx, broker, "GET", request, observer);
    } catch (const std::exception& e) {  // an index entry that cannot be used (a malformed root...): this file only
      result = CommandResult::local("GET", Outcome::kRefused, "DOWNLOAD FAILED", target + ": " + e.what());
    }
    meter.break_line();  // a failure, or whatever follows, starts on its own line
    if (result.outcome == Outcome::kInterrupted) result.signal = stop.received();
    printer.print(result);
    if (result.ok() && !o.json && !o.quiet) io.err << get_summary_line(result) << '\n' << std::flush;
    code = std::max(code, exit_code(result));
    if (result.outcome == Outcome::kInterrupted) break;
  }
  return code;
}

int run_subcommand(PeerOptions& o, ProcessIo io) {
  const auto timeout = std::chrono::milliseconds(std::max<long long>(1, std::llround(o.timeout_s * 1000.0)));
  const curve::LinkSecurity security = link_security(o, io.err);
  o.shell.seeder.security = o.serve.seeder.security = security;
  o.shell.download.security = o.get.download.security = security;
  // `serve` runs until SIGINT/SIGTERM, and `get` stops on them keeping its .part; taken before the context starts
  // threads, which inherit the blocked mask.
  // The console edits lines when a person is on both sides of it (it echoes what is typed on stdout); there
  // Ctrl-C cancels the running command or the line being typed, never the console.
  const bool line_editing = o.subcommand == Subcommand::kShell && io.stdin_is_tty && &io.in == &std::cin &&
                            &io.out == &std::cout && ::isatty(STDOUT_FILENO);
  std::optional<StopSignals> stop_signals;
  if (o.subcommand == Subcommand::kServe || o.subcommand == Subcommand::kGet) stop_signals.emplace();
  if (line_editing) stop_signals.emplace(std::initializer_list<int>{SIGINT});
  zmq::context_t ctx;
  BrokerClient broker(ctx, parse_endpoint_list(o.broker), timeout, security);
  const auto heartbeat = std::chrono::milliseconds(std::llround(o.heartbeat_s * 1000.0));
  o.shell.heartbeat = o.serve.heartbeat = heartbeat.count() > 0 && heartbeat.count() < 100
                                              ? std::chrono::milliseconds(100)
                                              : heartbeat;
  o.shell.timesvc = o.serve.timesvc = resolve_timesvc_url(o.timesvc);
  TimeClient clock(resolve_timesvc_url(o.timesvc), io.err);
  broker.set_clock(&clock);
  ResponsePrinter printer(io.out, io.err, o.json ? OutputFormat::kJson : OutputFormat::kText);

  CommandResult result;
  switch (o.subcommand) {
    case Subcommand::kShell: {
      if (!o.advertise_host.empty()) o.shell.advertise_host = o.advertise_host;
      o.shell.interactive = io.stdin_is_tty;
      o.shell.json = o.json;
      if (line_editing) o.shell.interrupts = &*stop_signals;
      if (io.stderr_is_tty && !o.json) o.shell.progress = &io.err;  // get's progress line for GET_FILE
      Shell console(ctx, broker, printer, o.shell);
      if (line_editing) {
        LineEditor editor(default_history_file(), &*stop_signals);
        return console.run([&editor](const std::string& prompt) { return editor.read(prompt); });
      }
      return console.run(io.in);
    }
    case Subcommand::kGet: return run_get(o, ctx, broker, io, *stop_signals);
    case Subcommand::kHash: return hash_command(o.hash_files, io.out, io.err);  // run_peer_cli runs it sooner
    case Subcommand::kServe: {
      if (!o.advertise_host.empty()) o.serve.advertise_host = o.advertise_host;
      return serve_command(ctx, broker, o.serve, stop_signals->flag(), printer);
    }
    case Subcommand::kRegister: result = register_command(broker, o.user); break;
    case Subcommand::kUnregister: result = unregister_command(broker, o.user); break;
    case Subcommand::kListUsers: result = list_users_command(broker); break;
    case Subcommand::kListContent: result = list_content_command(broker, o.user); break;
    case Subcommand::kSearch: {
      SearchQuery query;
      if (!o.words.empty()) query.words = join(o.words);
      query.cid = o.cid;
      query.include_offline = o.search_all;
      if (o.limit) {
        query.max_results = *o.limit;
        query.page_size = std::min<std::uint64_t>(*o.limit, 1000);
      }
      result = search_command(broker, query);
      break;
    }
  }
  printer.print(result);
  return exit_code(result);
}

}  // namespace

int run_peer_cli(int argc, const char* const* argv, ProcessIo io) {
  CLI::App app{"zshare-peer: share files on a zshare network (console: `shell`; scripts: one-shot subcommands)",
               "zshare-peer"};
  app.set_version_flag("--version", zshare::version_line("zshare-peer"));  // one line on stdout, exit 0
  PeerOptions options;
  define_options(app, options);
  if (auto code = cli::parse(app, argc, argv, io.out, io.err)) return *code;
  if (options.subcommand == Subcommand::kHash) return hash_command(options.hash_files, io.out, io.err);  // no broker
  try {
    return run_subcommand(options, io);
  } catch (const std::exception& e) {  // a last resort: report and fail, never abort
    io.err << "zshare-peer: " << e.what() << '\n' << std::flush;
    return 2;
  }
}

}  // namespace zshare::peer
