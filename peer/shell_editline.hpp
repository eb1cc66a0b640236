// shell_editline.hpp: the console's line editor on a terminal (libedit): history (Up/Down, kept in a file) and
// Tab completion of command names, Ctrl-C dropping the line being typed. Used only when stdin and stdout are
// terminals; piped input reads plain lines. One at a time (libedit's readline interface is one global editor).
#pragma once

#include "common/stop_signals.hpp"

#include <optional>
#include <string>

namespace zshare::peer {

class LineEditor {
 public:
  // `history_file`: read now, written back by the destructor; "" keeps history in memory only. `interrupts`
  // (the console's SIGINT, may be null): one arriving while a line is typed drops that line.
  explicit LineEditor(std::string history_file, StopSignals* interrupts = nullptr);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // The next line, edited after `prompt`; nullopt at the end of input (Ctrl-D on an empty line). After Ctrl-C
  // the line typed so far is dropped ("^C" ends it on the terminal), the interrupt is cleared, and "" returned.
  std::optional<std::string> read(const std::string& prompt);

 private:
  std::string history_file_;
  StopSignals* interrupts_;
  std::string last_;  // the newest history line: a run of the same line is kept once
};

// $ZSHARE_HOME/shell_history, else $XDG_STATE_HOME/zshare/shell_history (~/.local/state/zshare/ without it);
// "" when none can be named. The folder is made when missing.
std::string default_history_file();

}  // namespace zshare::peer
