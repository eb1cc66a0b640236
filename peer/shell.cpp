// shell.cpp: one line in, one answer out (QUIT may also print the DISCONNECT it does first).
// Commands needing the current user are refused locally before CONNECT; the broker still judges the rest.
#include "peer/shell.hpp"

#include "common/codec.hpp"
#include "common/content_hash.hpp"
#include "common/protocol.hpp"
#include "common/validate.hpp"
#include "peer/broker_commands.hpp"
#include "peer/file_identity.hpp"
#include "peer/get_command.hpp"
#include "peer/live_session.hpp"
#include "peer/progress_meter.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace zshare::peer {

namespace {

namespace status = protocol::status;

CommandResult usage(const std::string& command, std::string sentence) {
  return CommandResult::local(command, Outcome::kUsage, status::kBadRequest, std::move(sentence));
}

}  // namespace

Shell::Shell(zmq::context_t& ctx, BrokerClient& broker, ResponsePrinter& printer, ShellOptions options)
    : ctx_(ctx), broker_(broker), printer_(printer), options_(std::move(options)) {}

std::optional<std::string> Shell::advertised() const {
  if (!current_user_) return std::nullopt;
  return advertised_;
}

int Shell::run(std::istream& in) {
  return run([&](const std::string& prompt) -> std::optional<std::string> {
    if (options_.interactive) printer_.prompt(prompt);
    std::string line;
    if (!std::getline(in, line)) {
      if (options_.interactive) printer_.prompt("\n");
      return std::nullopt;
    }
    return line;
  });
}

int Shell::run(const LineSource& next) {
  while (!quit_) {
    std::optional<std::string> line = next(prompt());
    if (!line) {
      execute_line("QUIT");  // end of input acts as QUIT
      break;
    }
    execute_line(*line);
  }
  return options_.interactive ? 0 : exit_code_;
}

std::string Shell::prompt() const {
  return current_user_ ? "zshare(" + *current_user_ + ")> " : std::string("zshare> ");
}

void Shell::show(const CommandResult& result) {
  printer_.print(result);
  if (result.command == "HELP" && result.ok() && !options_.json) {
    // The data lines the printer does not know: one "<usage>\t<what it does>" line per command.
    for (const auto& entry : result.fields["commands"]) {
      if (const auto* syntax = find_command(entry.value("name", ""))) printer_.prompt(help_line(*syntax) + "\n");
    }
  }
  if (result.ok()) return;
  exit_code_ = std::max(exit_code_, result.outcome == Outcome::kUnreachable && result.status != status::kInternalError
                                        ? 2
                                        : 1);
}

bool Shell::execute_line(std::string_view line) {
  if (quit_) return false;
  ShellCommand command = parse_shell_command(line);
  if (command.name.empty() || command.name[0] == '#') return true;  // blank line or comment
  const CommandSyntax* syntax = find_command(command.name);
  if (!syntax) {  // a FAIL line of its own, so a script reading the answers keeps its place
    show(usage(command.name, "unknown command '" + command.name + "'; commands: " + command_names() +
                                 " (HELP <command> says more)"));
    return true;
  }
  if (auto problem = usage_problem(command, *syntax)) {
    show(usage(command.name, *problem));
    return true;
  }
  try {
    show(dispatch(command));
  } catch (const std::exception& e) {  // e.g. a reply field of the wrong type: report it, keep the shell alive
    show(CommandResult::local(command.name, Outcome::kUnreachable, status::kInternalError, e.what()));
  }
  if (options_.interrupts) options_.interrupts->clear();  // a Ctrl-C ends the command it came during, no more
  return !quit_;
}

CommandResult Shell::help(const ShellCommand& c) {
  std::vector<const CommandSyntax*> listed;
  if (c.args.empty()) {
    for (const auto& syntax : shell_commands()) listed.push_back(&syntax);
  } else {
    std::string name = c.args[0];
    for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    const CommandSyntax* syntax = find_command(name);
    if (!syntax) return usage("HELP", "unknown command '" + c.args[0] + "'; commands: " + command_names());
    listed.push_back(syntax);
  }
  CommandResult result = CommandResult::local("HELP", Outcome::kOk, status::kOk, "");
  nlohmann::json commands = nlohmann::json::array();
  for (const auto* syntax : listed) {
    commands.push_back({{"name", std::string(syntax->name)},
                        {"usage", std::string(syntax->usage)},
                        {"does", std::string(syntax->does)}});
  }
  result.fields["commands"] = commands;
  return result;
}

CommandResult Shell::dispatch(const ShellCommand& c) {
  const auto& name = c.name;
  if (name == "REGISTER") return register_command(broker_, c.args[0]);
  if (name == "UNREGISTER") return unregister(c.args[0]);
  if (name == "CONNECT") return connect(c.args[0]);
  if (name == "DISCONNECT") return disconnect(c.args[0]);
  if (name == "PUBLISH") return publish(c);
  if (name == "DELETE") return delete_file(c.args[0]);
  if (name == "LIST_USERS") return list_users_command(broker_);
  if (name == "LIST_CONTENT") return list_content_command(broker_, c.args[0]);
  if (name == "SEARCH") {
    SearchQuery query;
    // SEARCH --all <words...>: offline owners' files too ("--all" is no keyword: keywords have no '-'); any
    // case, like the command names.
    std::string first = c.args[0];
    for (auto& ch : first) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    query.include_offline = first == "--all";
    query.words = c.text_after(query.include_offline ? 1 : 0);
    query.page_size = options_.search_page_size;
    return search_command(broker_, query);
  }
  if (name == "GET_FILE") return get_file(c.args[0], c.args[1], c.args[2]);
  if (name == "HELP") return help(c);
  return quit();  // QUIT: the only command left in shell_commands()
}

std::optional<CommandResult> Shell::require_connected(const std::string& command) const {
  if (current_user_) return std::nullopt;
  return CommandResult::local(command, Outcome::kRefused, status::kUserNotConnected,
                              "no user is connected in this shell; CONNECT <user> first");
}

void Shell::forget_session() {
  keeper_.reset();
  current_user_.reset();
  transfer_.reset();  // closes the ROUTER: the endpoint is unbound
  advertised_.clear();
}

CommandResult Shell::connect(const std::string& user) {
  const std::string command = "CONNECT";
  if (auto bad = invalid_user(command, user)) return *bad;
  if (current_user_ && *current_user_ != user) {
    return usage(command, "this shell is connected as " + *current_user_ + "; DISCONNECT " + *current_user_ +
                              " first (one user per shell)");
  }
  if (current_user_) {  // the broker would replace our own session with itself: nothing to gain
    return CommandResult::local(command, Outcome::kRefused, status::kUserAlreadyConnected,
                                "this shell is already connected as " + user);
  }
  // Asked first: under CurveZMQ our CONNECT would take the session from another process serving this user.
  if (auto refused = refuse_live_session(ctx_, broker_, command, user)) return *refused;
  const bool bound_here = !transfer_;
  if (bound_here) {
    try {
      transfer_ = std::make_unique<Seeder>(ctx_, options_.listen, catalog_, options_.seeder);
      advertised_ = advertised_endpoint(transfer_->bound_endpoint(), options_.advertise_host);
      check_endpoint(advertised_);
    } catch (const std::exception& e) {
      transfer_.reset();
      return usage(command, "cannot set up the transfer endpoint (--listen " + options_.listen + "): " + e.what());
    }
  }
  std::optional<std::uint64_t> beat;
  if (options_.heartbeat.count() > 0) beat = static_cast<std::uint64_t>(options_.heartbeat.count());
  CommandResult result = ask_broker(command, broker_, [&] { return broker_.connect(user, advertised_, beat); });
  if (result.ok()) {
    current_user_ = user;
    if (beat) {
      keeper_ = std::make_unique<SessionKeeper>(
          ctx_, SessionKeeperOptions{broker_.failover_order(), options_.timesvc, user, advertised_, options_.heartbeat,
                               broker_.security(), transfer_.get(), asked_interval(result.fields, options_.heartbeat)},
          catalog_, std::cerr);
    }
    if (catalog_owner_ != user) catalog_.clear();  // another user's files are not this user's to serve
    catalog_owner_ = user;
  } else if (bound_here) {
    transfer_.reset();  // CONNECT failed: nobody will dial this endpoint
    advertised_.clear();
  }
  return result;
}

CommandResult Shell::disconnect(const std::string& user) {
  const std::string command = "DISCONNECT";
  if (auto bad = invalid_user(command, user)) return *bad;
  if (current_user_ && *current_user_ == user) keeper_.reset();  // no reconnecting behind the user's back
  CommandResult result = ask_broker(command, broker_, [&] { return broker_.disconnect(user); });
  // The broker no longer holds a session for our user (OK, or it forgot it, e.g. after a restart).
  const bool session_gone = result.ok() || result.status == status::kUserNotConnected ||
                            result.status == status::kUserDoesNotExist;
  if (current_user_ && *current_user_ == user && session_gone) forget_session();
  return result;
}

CommandResult Shell::unregister(const std::string& user) {
  CommandResult result = unregister_command(broker_, user);
  if (result.ok() && current_user_ && *current_user_ == user) forget_session();
  if (result.ok() && catalog_owner_ == user) catalog_.clear();
  return result;
}

CommandResult Shell::publish(const ShellCommand& c) {
  const std::string command = "PUBLISH";
  if (auto refused = require_connected(command)) return *refused;
  const std::string& path = c.args[0];
  const std::string name = std::filesystem::path(path).filename().string();
  if (auto bad = invalid_file_name(command, name)) return *bad;
  const std::string description = c.text_after(1);
  try {
    check_description(description);
  } catch (const BadRequest& e) {
    return usage(command, e.what());
  }
  std::error_code ec;
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec))) {
    return usage(command, path + " is a symlink; publish the file it points to (the seeder never follows links)");
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    return usage(command, path + " is not a readable regular file" + (ec ? ": " + ec.message() : std::string()));
  }
  FileIdentity identity;  // taken before hashing: a later change is caught by the seeder
  ContentHashes hashes;
  try {
    identity = identity_of(path);
    hashes = hash_file(path);
  } catch (const std::exception& e) {
    return usage(command, std::string("cannot read the file: ") + e.what());
  }
  PublishRequest request{*current_user_, name,          description, hashes.size, to_hex(hashes.cid),
                         hashes.chunk_size};
  CommandResult result = ask_broker(command, broker_, [&] { return broker_.publish(request); });
  if (result.ok()) {
    const std::string absolute = std::filesystem::absolute(path).string();
    catalog_.add(
        std::make_shared<SharedContent>(SharedContent{name, absolute, std::move(hashes), description, identity}));
  }
  return result;
}

CommandResult Shell::delete_file(const std::string& name) {
  const std::string command = "DELETE";
  if (auto refused = require_connected(command)) return *refused;
  if (auto bad = invalid_file_name(command, name)) return *bad;
  CommandResult result = ask_broker(command, broker_, [&] { return broker_.delete_file(*current_user_, name); });
  if (result.ok()) catalog_.remove(name);
  return result;
}

// Needs no CONNECT: fetching is not sharing. Ctrl-C stops it (INTERRUPTED, the .part kept for the next GET_FILE).
CommandResult Shell::get_file(const std::string& user, const std::string& name, const std::string& local_path) {
  const std::string command = "GET_FILE";
  if (auto bad = invalid_user(command, user)) return *bad;
  if (auto bad = invalid_file_name(command, name)) return *bad;
  if (local_path == "-") {  // the console's own output carries its answers, not file bytes
    return CommandResult::local(command, Outcome::kUsage, status::kBadRequest,
                                "the console cannot write a file to standard output; give a path");
  }
  GetRequest request;
  request.target = user + ":" + name;
  request.dest = local_path;
  request.only_user = user;
  request.download = options_.download;
  request.max_tries = 1;  // the console answers each command at once; `zshare-peer get` is the one that retries
  if (options_.interrupts) request.download.stop = &options_.interrupts->flag();
  if (!options_.progress) return get_command(ctx_, broker_, command, request);
  ProgressMeter meter(*options_.progress, std::chrono::seconds(5), terminal_columns(STDERR_FILENO));
  GetObserver observer;
  observer.progress = [&meter](const Progress& p) { meter.update(p); };
  observer.note = [&](const std::string& sentence) {
    meter.break_line();
    *options_.progress << sentence << '\n' << std::flush;
  };
  CommandResult result = get_command(ctx_, broker_, command, request, observer);
  meter.break_line();  // the answer starts on its own line
  return result;
}

CommandResult Shell::quit() {
  if (current_user_) show(disconnect(*current_user_));
  forget_session();  // even when the DISCONNECT failed: this process is leaving
  quit_ = true;
  return CommandResult::local("QUIT", Outcome::kOk, status::kOk, "");
}

}  // namespace zshare::peer
