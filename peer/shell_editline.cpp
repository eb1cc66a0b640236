// shell_editline.cpp: libedit through its readline interface. Completion: the first word completes to command
// names, HELP's argument too; any other word to file names (PUBLISH and GET_FILE paths). Keys are read here, not
// by libedit, so that Ctrl-C (taken by the console's StopSignals watcher) can end the line being typed.
#include "peer/shell_editline.hpp"

#include "peer/shell_command.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cwchar>
#include <filesystem>
#include <system_error>
#include <vector>

#include <editline/readline.h>
#include <poll.h>
#include <unistd.h>

namespace zshare::peer {

namespace {

constexpr int kHistoryLines = 1000;

char* next_command_name(const char* text, int state) {
  static std::vector<std::string> matches;
  static std::size_t at = 0;
  if (state == 0) {
    matches = complete_command(text);
    at = 0;
  }
  if (at >= matches.size()) return nullptr;
  return ::strdup(matches[at++].c_str());
}

// Which word is being completed: command names for the first, and for the second after HELP.
char** complete(const char* text, int start, int /*end*/) {
  const std::string before(rl_line_buffer, static_cast<std::size_t>(start));
  ShellCommand typed = parse_shell_command(before);
  if (typed.name.empty() || (typed.name == "HELP" && typed.args.empty())) {
    rl_attempted_completion_over = 1;  // no file names in their place
    return rl_completion_matches(text, next_command_name);
  }
  return nullptr;  // file names
}

StopSignals* g_interrupts = nullptr;  // the live editor's
bool g_interrupted = false;           // read_key ended the line because of Ctrl-C

// One key for libedit: the next character on the terminal (multibyte sequences decoded, as libedit's own reader
// does), or EOF, which ends the line, when an interrupt arrived first.
int read_key(FILE* /*in*/) {
  std::mbstate_t state{};
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_interrupts ? g_interrupts->fd() : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return EOF;
    }
    if (fds[1].revents & POLLIN) {
      g_interrupted = true;
      return EOF;
    }
    char byte = 0;
    const ssize_t n = ::read(STDIN_FILENO, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return EOF;
    wchar_t wide = 0;
    const std::size_t used = std::mbrtowc(&wide, &byte, 1, &state);
    if (used == static_cast<std::size_t>(-2)) continue;  // more bytes of this character to come
    if (used == static_cast<std::size_t>(-1)) return static_cast<unsigned char>(byte);  // not the locale's: as is
    return static_cast<int>(wide);
  }
}

}  // namespace

LineEditor::LineEditor(std::string history_file, StopSignals* interrupts)
    : history_file_(std::move(history_file)), interrupts_(interrupts) {
  g_interrupts = interrupts_;
  rl_getc_function = read_key;  // before libedit starts (the first readline())
  rl_readline_name = const_cast<char*>("zshare");
  rl_attempted_completion_function = complete;
  using_history();
  stifle_history(kHistoryLines);
  if (!history_file_.empty()) read_history(history_file_.c_str());  // a missing file is no error
}

LineEditor::~LineEditor() {
  if (!history_file_.empty()) write_history(history_file_.c_str());
  g_interrupts = nullptr;
}

std::optional<std::string> LineEditor::read(const std::string& prompt) {
  g_interrupted = false;
  char* raw = readline(prompt.c_str());
  if (!raw && g_interrupted) {
    std::fputs("^C\n", stdout);
    std::fflush(stdout);
    if (interrupts_) interrupts_->clear();
    return std::string();
  }
  if (!raw) return std::nullopt;
  std::string line(raw);
  std::free(raw);
  if (line.find_first_not_of(" \t") != std::string::npos) {
    if (line != last_) add_history(line.c_str());
    last_ = line;
  }
  return line;
}

std::string default_history_file() {
  std::filesystem::path dir;
  if (const char* home = std::getenv("ZSHARE_HOME"); home && *home) {
    dir = home;
  } else if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    dir = std::filesystem::path(state) / "zshare";
  } else if (const char* user_home = std::getenv("HOME"); user_home && *user_home) {
    dir = std::filesystem::path(user_home) / ".local" / "state" / "zshare";
  } else {
    return "";
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "";
  return (dir / "shell_history").string();
}

}  // namespace zshare::peer
