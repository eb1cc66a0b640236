// command_result.cpp: constructors that keep `status`, `outcome` and `fields` consistent with each other.
// A broker refusal keeps the broker's own error sentence as the diagnostic.
#include "peer/command_result.hpp"

#include <csignal>

namespace zshare::peer {

CommandResult CommandResult::from_reply(std::string command, BrokerReply reply) {
  CommandResult r;
  r.command = std::move(command);
  r.outcome = reply.ok() ? Outcome::kOk : Outcome::kRefused;
  r.status = std::move(reply.status);
  r.diagnostic = std::move(reply.error);
  r.fields = std::move(reply.fields);
  return r;
}

CommandResult CommandResult::local(std::string command, Outcome outcome, std::string_view status,
                                   std::string sentence) {
  CommandResult r;
  r.command = std::move(command);
  r.outcome = outcome;
  r.status = std::string(status);
  r.fields["status"] = r.status;
  if (!sentence.empty()) r.fields["error"] = sentence;
  r.diagnostic = std::move(sentence);
  return r;
}

int exit_code(const CommandResult& result) {
  switch (result.outcome) {
    case Outcome::kOk: return 0;
    case Outcome::kRefused: return 1;
    case Outcome::kUsage:
    case Outcome::kUnreachable: return 2;
    case Outcome::kInterrupted: return 128 + (result.signal ? result.signal : SIGINT);
  }
  return 2;
}

}  // namespace zshare::peer
