// log_record.cpp: the log line format, both ways. Fields never contain the separators: control bytes are
// replaced, and spaces are kept only in args (the last free-text field before the tab).
#include "rpclog/log_record.hpp"

#include <charconv>

namespace zshare::rpclog {

namespace {

std::string clean(std::string_view s, bool keep_spaces) {
  std::string out(s);
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || (!keep_spaces && c == ' ')) c = keep_spaces ? ' ' : '_';
  }
  return out;
}

bool is_word(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.' ||
                    c == '_' || c == ':' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> invalid_field(const LogRecord& r) {
  if (!is_word(r.broker_id, 64)) return "broker_id must be 1-64 characters of 0-9 A-Z a-z . _ : + -";
  if (!is_word(r.user, 64)) return "user must be 1-64 characters of 0-9 A-Z a-z . _ : + -";
  if (!is_word(r.operation, 32)) return "operation must be 1-32 characters of 0-9 A-Z a-z . _ : + -";
  if (!is_word(r.timestamp, 64)) return "timestamp must be 1-64 characters of 0-9 A-Z a-z . _ : + -";
  return std::nullopt;
}

std::string format_line(const LogRecord& r) {
  std::string line = clean(r.timestamp.empty() ? "-" : r.timestamp, false);
  if (r.ts_local) line.push_back('*');
  line += ' ' + clean(r.user.empty() ? "-" : r.user, false);
  line += ' ' + clean(r.operation.empty() ? "-" : r.operation, false);
  if (!r.args.empty()) line += ' ' + clean(r.args, true);
  line += "\t#" + clean(r.broker_id, false) + ':' + std::to_string(r.seq) + '\n';
  return line;
}

std::optional<LogRecord> parse_line(std::string_view line) {
  const auto tab = line.rfind("\t#");
  if (tab == std::string_view::npos) return std::nullopt;
  const auto key = line.substr(tab + 2);
  const auto colon = key.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  LogRecord r;
  r.broker_id = std::string(key.substr(0, colon));
  const auto seq_text = key.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), r.seq);
  if (ec != std::errc() || ptr != seq_text.data() + seq_text.size()) return std::nullopt;

  std::string_view text = line.substr(0, tab);
  auto next_word = [&text]() {
    const auto sp = text.find(' ');
    std::string_view w = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    return w;
  };
  std::string_view ts = next_word();
  if (!ts.empty() && ts.back() == '*') {
    r.ts_local = true;
    ts.remove_suffix(1);
  }
  r.timestamp = std::string(ts);
  r.user = std::string(next_word());
  r.operation = std::string(next_word());
  r.args = std::string(text);
  return r;
}

}  // namespace zshare::rpclog
