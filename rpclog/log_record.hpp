// log_record.hpp: one operations-log record as C++ sees it, and its line in the log file:
// `<timestamp>[*] <user> <OPERATION> <args>\t#<broker id>:<seq>` (`*` marks a stamp from the peer's own clock).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zshare::rpclog {

struct LogRecord {
  std::string broker_id;
  std::uint64_t seq = 0;
  std::string timestamp;
  bool ts_local = false;
  std::string user;
  std::string operation;
  std::string args;

  bool operator==(const LogRecord& o) const {
    return broker_id == o.broker_id && seq == o.seq && timestamp == o.timestamp && ts_local == o.ts_local &&
           user == o.user && operation == o.operation && args == o.args;
  }
};

// Why a record cannot be stored as a line that reads back the same (nullopt when it can): broker id, user,
// operation and timestamp must be words of [0-9A-Za-z._:+-] (the timestamp without a trailing '*').
std::optional<std::string> invalid_field(const LogRecord& r);

// The record's line, newline included; tabs, newlines and other control bytes in fields become spaces.
std::string format_line(const LogRecord& r);
// Parses a line without its newline; nullopt when it is not one of ours.
std::optional<LogRecord> parse_line(std::string_view line);

}  // namespace zshare::rpclog
