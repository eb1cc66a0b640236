// line_log.cpp: the mutex is shared by every copy of the returned function, so copies stay one writer; control
// characters become spaces, so an entry is always exactly one line.
#include "peer/line_log.hpp"

#include "common/validate.hpp"

#include <memory>
#include <mutex>

namespace zshare::peer {

LineLog locked_line_log(std::ostream& out) {
  auto mutex = std::make_shared<std::mutex>();
  return [&out, mutex](std::string line) {
    for (char& c : line) {  // a file name may hold a newline; the log stays one entry per line
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte == 0x7f) c = ' ';
    }
    std::lock_guard<std::mutex> lock(*mutex);
    out << line << '\n' << std::flush;
  };
}

std::string log_cid(const Hash& cid) { return to_hex(cid).substr(0, 12); }

}  // namespace zshare::peer
