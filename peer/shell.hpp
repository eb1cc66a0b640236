// shell.hpp: the seeds' console: reads commands line by line, answers each with the output contract.
// Invariant: the seeder (transfer ROUTER) is bound exactly while the shell has a current (CONNECTed) user,
// and serves exactly what this shell published and did not delete.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/command_result.hpp"
#include "peer/response_printer.hpp"
#include "peer/shell_command.hpp"
#include "peer/content_catalog.hpp"
#include "peer/downloader.hpp"
#include "peer/seeder.hpp"
#include "peer/session_keeper.hpp"
#include "common/stop_signals.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace zshare::peer {

struct ShellOptions {
  std::string listen = "tcp://127.0.0.1:*";     // where the transfer ROUTER binds after CONNECT
  std::optional<std::string> advertise_host;    // replaces the host of the advertised endpoint
  std::uint64_t search_page_size = 100;          // `limit` of each SEARCH request
  bool interactive = false;                      // a person types: prompt() before each line, exit code 0
  bool json = false;                             // --json: HELP answers one object, not data lines
  SeederOptions seeder;                          // how this peer serves its files while connected
  DownloadOptions download;                      // how GET_FILE downloads
  std::chrono::milliseconds heartbeat{1000};     // promised at CONNECT; 0: no heartbeat, no self-recovery
  std::string timesvc;                           // for the session keeper's own stamps
  // Ctrl-C on a terminal (may be null): stops the running GET_FILE (INTERRUPTED, its .part kept); the shell
  // clears it after each command, so it never outlives the command it interrupted.
  StopSignals* interrupts = nullptr;
  // Where GET_FILE draws `get`'s progress line and notes (standard error on a terminal); null: none.
  std::ostream* progress = nullptr;
};

class Shell {
 public:
  Shell(zmq::context_t& ctx, BrokerClient& broker, ResponsePrinter& printer, ShellOptions options);

  // The next line, shown `prompt` when someone types; nullopt at the end of input.
  using LineSource = std::function<std::optional<std::string>(const std::string& prompt)>;

  // Runs lines until QUIT or the end of `in` (which acts as QUIT); returns the exit code: 0 when interactive,
  // else the worst of every answer: 0 all OK, 1 a FAIL line, 2 a connection error (BROKER UNREACHABLE).
  int run(std::istream& in);
  // The same, lines from `next` (the line editor on a terminal).
  int run(const LineSource& next);
  // "zshare> ", or "zshare(alice)> " while alice is connected.
  std::string prompt() const;
  // Runs one line and prints its answer; returns false once the shell has quit.
  bool execute_line(std::string_view line);

  const std::optional<std::string>& current_user() const { return current_user_; }
  // The endpoint CONNECT advertised; nullopt while not connected.
  std::optional<std::string> advertised() const;

 private:
  CommandResult dispatch(const ShellCommand& command);
  CommandResult connect(const std::string& user);
  CommandResult disconnect(const std::string& user);
  CommandResult unregister(const std::string& user);
  CommandResult publish(const ShellCommand& command);
  CommandResult delete_file(const std::string& name);
  CommandResult get_file(const std::string& user, const std::string& name, const std::string& local_path);
  CommandResult quit();
  CommandResult help(const ShellCommand& command);
  // Prints the answer and folds it into the exit code.
  void show(const CommandResult& result);
  // `<CMD> FAIL, USER NOT CONNECTED` when no user is connected; nullopt otherwise.
  std::optional<CommandResult> require_connected(const std::string& command) const;
  void forget_session();

  zmq::context_t& ctx_;
  BrokerClient& broker_;
  ResponsePrinter& printer_;
  ShellOptions options_;
  std::optional<std::string> current_user_;
  ContentCatalog catalog_;
  std::string catalog_owner_;  // the user the catalog's files were published as
  std::unique_ptr<Seeder> transfer_;
  std::unique_ptr<SessionKeeper> keeper_;  // declared after transfer_: stops first
  std::string advertised_;
  bool quit_ = false;
  int exit_code_ = 0;  // the worst answer so far (see run)
};

}  // namespace zshare::peer
