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
      {"REGISTER", 1, 1, "REGISTER <user>", "creates a user owned by this peer's key"},
      {"UNREGISTER", 1, 1, "UNREGISTER <user>", "removes a user and withdraws its files"},
      {"CONNECT", 1, 1, "CONNECT <user>", "starts a session: serves this shell's files and advertises them"},
      {"DISCONNECT", 1, 1, "DISCONNECT <user>", "ends the session"},
      {"PUBLISH", 1, kAnyCount, "PUBLISH <path> <description...>",
       "hashes a file and publishes it under its base name (needs CONNECT)"},
      {"DELETE", 1, 1, "DELETE <name>", "withdraws a published file (needs CONNECT)"},
      {"LIST_USERS", 0, 0, "LIST_USERS", "lists the connected users and their endpoints"},
      {"LIST_CONTENT", 1, 1, "LIST_CONTENT <user>", "lists a user's published files"},
      {"SEARCH", 1, kAnyCount, "SEARCH [--all] <words...>",
       "finds online users' files by words (--all: offline users' too)"},
      {"GET_FILE", 3, 3, "GET_FILE <user> <remote name> <local path>",
       "downloads a user's file to a local path, verified (Ctrl-C stops it)"},
      {"HELP", 0, 1, "HELP [<command>]", "lists the commands, or says what one does"},
      {"QUIT", 0, 0, "QUIT", "disconnects cleanly and leaves (also end of input, Ctrl-D)"},
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

std::string help_line(const CommandSyntax& syntax) {
  return std::string(syntax.usage) + "\t" + std::string(syntax.does);
}

std::vector<std::string> complete_command(std::string_view prefix) {
  const std::string wanted = upper(std::string(prefix));
  bool lower = !prefix.empty();
  for (char c : prefix) {
    if (std::isupper(static_cast<unsigned char>(c))) lower = false;
  }
  std::vector<std::string> out;
  for (const auto& c : shell_commands()) {
    if (c.name.substr(0, wanted.size()) != wanted) continue;
    std::string name(c.name);
    if (lower) {
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace zshare::peer
