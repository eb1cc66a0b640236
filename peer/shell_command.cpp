// shell_command.cpp: a single left-to-right scan; a quote opens only at the start of a word.
// `arg_ends` has one entry per argument, so text_after(n) never reads outside `line`.
#include "peer/shell_command.hpp"

#include <cctype>

namespace zshare::peer {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_blank(s[b])) ++b;
  while (e > b && is_blank(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

ShellCommand parse_shell_command(std::string_view line) {
  ShellCommand cmd;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  cmd.line = std::string(line);
  std::size_t i = 0;
  bool first = true;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size()) break;
    std::string word;
    if (line[i] == '"') {
      std::size_t close = line.find('"', i + 1);
      if (close == std::string_view::npos) {
        cmd.unterminated_quote = true;
        word = std::string(line.substr(i + 1));
        i = line.size();
      } else {
        word = std::string(line.substr(i + 1, close - i - 1));
        i = close + 1;
      }
    } else {
      std::size_t start = i;
      while (i < line.size() && !is_blank(line[i])) ++i;
      word = std::string(line.substr(start, i - start));
    }
    if (first) {
      cmd.name = upper(std::move(word));
      first = false;
    } else {
      cmd.args.push_back(std::move(word));
      cmd.arg_ends.push_back(i);
    }
  }
  return cmd;
}

std::string ShellCommand::text_after(std::size_t n) const {
  std::size_t from;
  if (n == 0) {
    std::size_t i = 0;
    while (i < line.size() && is_blank(line[i])) ++i;
    while (i < line.size() && !is_blank(line[i])) ++i;  // skip the command name
    from = i;
  } else if (n <= arg_ends.size()) {
    from = arg_ends[n - 1];
  } else {
    return "";
  }
  return trim(std::string_view(line).substr(from));
}

const std::vector<CommandSyntax>& shell_commands() {
  static const std::vector<CommandSyntax> kCommands = {
      {"REGISTER", 1, 1, "REGISTER <user>"},
      {"UNREGISTER", 1, 1, "UNREGISTER <user>"},
      {"CONNECT", 1, 1, "CONNECT <user>"},
      {"DISCONNECT", 1, 1, "DISCONNECT <user>"},
      {"PUBLISH", 1, kAnyCount, "PUBLISH <path> <description...>"},
      {"DELETE", 1, 1, "DELETE <name>"},
      {"LIST_USERS", 0, 0, "LIST_USERS"},
      {"LIST_CONTENT", 1, 1, "LIST_CONTENT <user>"},
      {"SEARCH", 1, kAnyCount, "SEARCH [--all] <words...>"},
      {"GET_FILE", 3, 3, "GET_FILE <user> <remote name> <local path>"},
      {"QUIT", 0, 0, "QUIT"},
  };
  return kCommands;
}

const CommandSyntax* find_command(std::string_view name) {
  for (const auto& c : shell_commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::optional<std::string> usage_problem(const ShellCommand& command, const CommandSyntax& syntax) {
  const std::string usage = "usage: " + std::string(syntax.usage);
  if (command.unterminated_quote) return "a quote is not closed; " + usage;
  const std::size_t n = command.args.size();
  if (n < syntax.min_args) return "missing argument; " + usage;
  if (syntax.max_args != kAnyCount && n > syntax.max_args) return "too many arguments; " + usage;
  for (std::size_t i = 0; i < n && i < syntax.min_args; ++i) {
    if (command.args[i].empty()) return "empty argument; " + usage;
  }
  return std::nullopt;
}

std::string command_names() {
  std::string out;
  for (const auto& c : shell_commands()) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

}  // namespace zshare::peer
