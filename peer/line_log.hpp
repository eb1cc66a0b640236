// line_log.hpp: where `serve` writes its log lines (published, withdrawn, uploads): a function taking one line,
// so the serve loop and the seeder thread can share a stream and tests can collect the lines in-process.
#pragma once

#include "common/content_hash.hpp"

#include <functional>
#include <ostream>
#include <string>

namespace zshare::peer {

// Takes one complete line, without its newline. An empty LineLog logs nothing.
using LineLog = std::function<void(const std::string& line)>;

// A LineLog writing to `out` (which must outlive it), one whole line at a time under a mutex of its own, so
// lines from several threads never interleave.
LineLog locked_line_log(std::ostream& out);

// A content id as log lines show it: its first 12 hex digits, enough to tell files apart and to grep for.
std::string log_cid(const Hash& cid);

}  // namespace zshare::peer
