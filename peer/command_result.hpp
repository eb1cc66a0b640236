// command_result.hpp: what one console command or one-shot subcommand produced, before it is printed.
// `status` is the first output line's word(s); `fields` is the broker's reply (or a client-made one) as JSON.
#pragma once

#include "peer/broker_client.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace zshare::peer {

// Who decided the outcome; it chooses the one-shot exit code (0, 1, 2).
enum class Outcome {
  kOk,           // the broker said OK
  kRefused,      // the broker (or the peer's own rules, e.g. USER NOT CONNECTED) gave a FAIL status
  kUsage,        // the command line was wrong: missing argument, invalid name; nothing was sent
  kUnreachable,  // no answer, or an unreadable one, from the broker
  kInterrupted,  // SIGINT or SIGTERM stopped it (exit 128 + the signal's number, as shells report it)
};

struct CommandResult {
  std::string command;     // upper case, as printed: "REGISTER", "LIST_USERS", ...
  std::string status;      // "OK", "USERNAME IN USE", "BROKER UNREACHABLE", ...
  Outcome outcome = Outcome::kOk;
  std::string diagnostic;  // one sentence for stderr; empty when there is nothing to say
  int signal = 0;          // kInterrupted: the signal that stopped it (SIGINT when unknown)
  nlohmann::json fields = nlohmann::json::object();

  bool ok() const { return outcome == Outcome::kOk; }

  static CommandResult from_reply(std::string command, BrokerReply reply);
  // A result decided without the broker; `fields` gets status and error like a broker reply.
  static CommandResult local(std::string command, Outcome outcome, std::string_view status, std::string sentence);
};

// 0 on OK, 1 on a FAIL status, 2 on usage or connection errors, 128 + N when signal N interrupted it.
int exit_code(const CommandResult& result);

}  // namespace zshare::peer
