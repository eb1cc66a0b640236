// response_printer.hpp: the output contract: text (`<CMD> OK` / `<CMD> FAIL, <STATUS>` then data lines) or
// one JSON object per command; diagnostics always go to stderr, so stdout stays machine-readable.
#pragma once

#include "peer/command_result.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace zshare::peer {

enum class OutputFormat { kText, kJson };

// The stdout lines of a result in text form: the status line, then (on OK) one line per listed item:
// LIST_USERS `<user> <endpoint>`; LIST_CONTENT `<name>\t<size>\t<cid>\t<description>`;
// SEARCH `<user>\t<name>\t<size>\t<cid>\t<endpoint>\t<description>`; GET the destination. Control characters in values
// become spaces, so an item is always exactly one line.
std::vector<std::string> text_lines(const CommandResult& result);

// The result as one line of JSON: the reply's fields plus "command". Invalid UTF-8 is replaced, never thrown.
std::string json_line(const CommandResult& result);

class ResponsePrinter {
 public:
  ResponsePrinter(std::ostream& out, std::ostream& err, OutputFormat format) : out_(out), err_(err), format_(format) {}

  // Writes the result to stdout and its diagnostic (if any) to stderr, then flushes both.
  void print(const CommandResult& result);
  // One sentence for stderr only (unknown command, hints).
  void note(const std::string& sentence);

  // The bare prompt, without a newline (interactive shells only).
  void prompt(const std::string& text);

 private:
  std::ostream& out_;
  std::ostream& err_;
  OutputFormat format_;
};

}  // namespace zshare::peer
