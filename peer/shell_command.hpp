// shell_command.hpp: one console line cut into a command and its arguments, and each command's syntax.
// Pure functions: no I/O, so the unit tests cover every rule. Command names match in any case.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zshare::peer {

// A line as words separated by spaces or tabs; "double quotes" make one word of text with spaces.
struct ShellCommand {
  std::string name;               // the first word in upper case; empty for a blank line
  std::vector<std::string> args;  // the following words, quotes removed
  std::string line;               // the line as read, without a trailing CR
  std::vector<std::size_t> arg_ends;  // where each argument ends in `line` (for text_after)
  bool unterminated_quote = false;

  // The raw text after the first `n` arguments, outer blanks trimmed, inner spacing and quotes kept
  // (PUBLISH's description, SEARCH's keywords).
  std::string text_after(std::size_t n) const;
};

ShellCommand parse_shell_command(std::string_view line);

struct CommandSyntax {
  std::string_view name;
  std::size_t min_args;
  std::size_t max_args;  // kAnyCount: the rest of the line is free text
  std::string_view usage;
  std::string_view does;  // one sentence for HELP
};
inline constexpr std::size_t kAnyCount = static_cast<std::size_t>(-1);

// The console's commands, in the order the seeds listed them.
const std::vector<CommandSyntax>& shell_commands();
// nullptr when `name` (already upper case) is not a command.
const CommandSyntax* find_command(std::string_view name);

// A sentence saying what is wrong with the arguments ("usage: REGISTER <user>"), or nullopt when they fit.
std::optional<std::string> usage_problem(const ShellCommand& command, const CommandSyntax& syntax);

// "REGISTER, UNREGISTER, ..." for the unknown-command sentence.
std::string command_names();

// HELP's line for one command: "<usage>\t<what it does>".
std::string help_line(const CommandSyntax& syntax);

// Tab completion: the command names starting with `prefix` (any case), in the order of shell_commands(); in
// lower case when the prefix is non-empty lower case, so what is typed keeps its case.
std::vector<std::string> complete_command(std::string_view prefix);

}  // namespace zshare::peer
