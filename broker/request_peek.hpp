// request_peek.hpp: a message's header (id and op) read without serving it, with tight bounds and never a throw:
// for the replies the broker sends instead of serving a request (RATE LIMITED, STORE UNAVAILABLE), which echo its id.
// Works on replies too (they carry `id`). An id that is missing, not a 1-64 byte UTF-8 string, or unreadable is "".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zshare::broker {

struct PeekedHeader {
  std::string id;
  std::optional<std::string> op;
};

PeekedHeader peek_header(std::string_view message);

}  // namespace zshare::broker
