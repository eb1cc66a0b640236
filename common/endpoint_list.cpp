// endpoint_list.cpp: splitting on commas and trimming; each entry goes through check_endpoint, so a list accepts
// exactly what one endpoint would (tcp://HOST:PORT; an IPv6 host is bracketed, so it holds no comma).
#include "common/endpoint_list.hpp"

#include "common/codec.hpp"
#include "common/validate.hpp"

#include <stdexcept>

namespace zshare {

namespace {

std::string_view trimmed(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// Where an entry sits, for the error: nothing when the list has one entry.
std::string place(std::size_t index, std::size_t count) {
  if (count < 2) return "";
  return " (entry " + std::to_string(index + 1) + " of " + std::to_string(count) + ")";
}

}  // namespace

std::vector<std::string> parse_endpoint_list(std::string_view text) {
  std::vector<std::string_view> entries;
  for (std::size_t start = 0;;) {
    const auto comma = text.find(',', start);
    entries.push_back(trimmed(text.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::vector<std::string> endpoints;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    try {
      check_endpoint(entries[i]);
    } catch (const BadRequest& e) {
      const std::string what = entries[i].empty() ? "an empty entry" : "'" + std::string(entries[i]) + "'";
      throw std::invalid_argument(what + place(i, entries.size()) + " is not an endpoint: " + e.what());
    }
    endpoints.emplace_back(entries[i]);
  }
  return endpoints;
}

std::vector<std::string> rotated(const std::vector<std::string>& endpoints, std::size_t first) {
  std::vector<std::string> out;
  out.reserve(endpoints.size());
  for (std::size_t i = 0; i < endpoints.size(); ++i) out.push_back(endpoints[(first + i) % endpoints.size()]);
  return out;
}

std::string joined(const std::vector<std::string>& endpoints) {
  std::string out;
  for (const auto& e : endpoints) out += (out.empty() ? "" : ", ") + e;
  return out;
}

}  // namespace zshare
