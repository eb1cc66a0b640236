// response_printer.cpp: formatting is pure (text_lines, json_line); ResponsePrinter only writes and flushes.
// Flushing after every command lets a program driving the shell through a pipe read each answer at once.
#include "peer/response_printer.hpp"

#include "common/protocol.hpp"

namespace zshare::peer {

namespace {

using nlohmann::json;

// A field as one line's worth of text: strings as they are, numbers in decimal, anything else empty.
std::string field_text(const json& item, const char* key) {
  if (!item.is_object()) return "";
  auto it = item.find(key);
  if (it == item.end()) return "";
  std::string text;
  if (it->is_string()) text = it->get<std::string>();
  else if (it->is_number_unsigned()) text = std::to_string(it->get<std::uint64_t>());
  else if (it->is_number_integer()) text = std::to_string(it->get<std::int64_t>());
  else return "";
  for (char& c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = ' ';
  }
  return text;
}

const json& items(const json& fields, const char* key) {
  static const json kEmpty = json::array();
  auto it = fields.find(key);
  return (it != fields.end() && it->is_array()) ? *it : kEmpty;
}

}  // namespace

std::vector<std::string> text_lines(const CommandResult& result) {
  std::vector<std::string> lines;
  if (result.status == protocol::status::kOk) {
    lines.push_back(result.command + " OK");
  } else {
    lines.push_back(result.command + " FAIL, " + result.status);
    return lines;
  }
  if (result.command == "LIST_USERS") {
    for (const auto& u : items(result.fields, "users")) {
      lines.push_back(field_text(u, "user") + " " + field_text(u, "endpoint"));
    }
  } else if (result.command == "LIST_CONTENT") {
    for (const auto& f : items(result.fields, "files")) {
      lines.push_back(field_text(f, "name") + "\t" + field_text(f, "size") + "\t" + field_text(f, "cid") + "\t" +
                      field_text(f, "description"));
    }
  } else if (result.command == "GET") {  // where the file went (several files: which is which)
    lines.push_back(field_text(result.fields, "dest"));
  } else if (result.command == "SEARCH") {
    for (const auto& f : items(result.fields, "results")) {
      lines.push_back(field_text(f, "user") + "\t" + field_text(f, "name") + "\t" + field_text(f, "size") + "\t" +
                      field_text(f, "cid") + "\t" + field_text(f, "endpoint") + "\t" + field_text(f, "description"));
    }
  }
  return lines;
}

std::string json_line(const CommandResult& result) {
  json object = result.fields.is_object() ? result.fields : json::object();
  object["command"] = result.command;
  object["status"] = result.status;
  if (!result.diagnostic.empty() && !object.contains("error")) object["error"] = result.diagnostic;
  return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

void ResponsePrinter::print(const CommandResult& result) {
  if (format_ == OutputFormat::kJson) {
    out_ << json_line(result) << '\n';
  } else {
    for (const auto& line : text_lines(result)) out_ << line << '\n';
  }
  out_.flush();
  if (!result.diagnostic.empty()) err_ << result.command << ": " << result.diagnostic << '\n' << std::flush;
}

void ResponsePrinter::note(const std::string& sentence) { err_ << sentence << '\n' << std::flush; }

void ResponsePrinter::prompt(const std::string& text) { out_ << text << std::flush; }

}  // namespace zshare::peer
