// broker_commands.hpp: the commands that need no shell state (REGISTER, UNREGISTER, LIST_USERS, LIST_CONTENT,
// SEARCH), shared by the shell and the one-shot subcommands. Each validates its arguments before sending.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/command_result.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace zshare::peer {

// Runs one broker call as `command`: BrokerUnreachable and BadReply become results, never escape.
CommandResult ask_broker(const std::string& command, BrokerClient& broker, const std::function<BrokerReply()>& call);

// A usage failure (`<CMD> FAIL, BAD REQUEST`) when `user` breaks the user-name rule; nullopt when it is fine.
std::optional<CommandResult> invalid_user(const std::string& command, const std::string& user);
std::optional<CommandResult> invalid_file_name(const std::string& command, const std::string& name);

CommandResult register_command(BrokerClient& broker, const std::string& user);
CommandResult unregister_command(BrokerClient& broker, const std::string& user);
CommandResult list_users_command(BrokerClient& broker);
CommandResult list_content_command(BrokerClient& broker, const std::string& user);

struct SearchQuery {
  std::optional<std::string> words;           // sent as q
  std::optional<std::string> cid;             // 64 lowercase hex digits
  std::uint64_t page_size = 100;              // limit of each SEARCH request, 1..1000
  std::optional<std::uint64_t> max_results;   // stop after this many; nullopt follows `next` to the end
  bool include_offline = false;               // also files whose owner is offline (SEARCH --all)
};

// SEARCH page after page (following `next` until nil); the result's "results" holds every page's results.
CommandResult search_command(BrokerClient& broker, const SearchQuery& query);

}  // namespace zshare::peer
