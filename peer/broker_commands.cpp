// broker_commands.cpp: argument checks reuse common/validate.hpp's sentences; a broker refusal is shown as is.
// SEARCH stops when `next` is nil, when enough results arrived, or when the broker repeats a cursor.
#include "peer/broker_commands.hpp"

#include "common/codec.hpp"
#include "common/endpoint_list.hpp"
#include "common/port_probe.hpp"
#include "common/protocol.hpp"
#include "common/validate.hpp"

#include <algorithm>
#include <cstdio>

namespace zshare::peer {

namespace {

namespace status = protocol::status;

std::string seconds_text(std::chrono::milliseconds ms) {
  char buf[32];
  if (ms.count() % 1000 == 0) std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ms.count() / 1000));
  else std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::optional<CommandResult> usage_unless(const std::string& command, const std::function<void()>& check,
                                          const std::string& what) {
  try {
    check();
    return std::nullopt;
  } catch (const BadRequest& e) {
    return CommandResult::local(command, Outcome::kUsage, status::kBadRequest, what + ": " + e.what());
  }
}

// Why a broker may be silent, told apart by whether its port (any of the list's) accepts TCP connections at all.
std::string likely_cause(const BrokerClient& broker) {
  const auto& endpoints = broker.endpoints();
  const bool open = std::any_of(endpoints.begin(), endpoints.end(), [](const std::string& endpoint) {
    return tcp_port_open(endpoint, std::chrono::milliseconds(500)).value_or(false);
  });
  if (open) {
    return broker.security().plaintext
               ? "its port is open, so it most likely runs CurveZMQ while this peer runs --plaintext (both ends "
                 "must, or neither)"
               : "its port is open, so the CurveZMQ handshake most likely failed: --broker-key must be that "
                 "broker's public key (its .pub file), or the broker runs --plaintext and this peer does not";
  }
  return "nothing accepts connections there: is it running, and are --broker (or ZSHARE_BROKER) and --timeout "
         "right?";
}

}  // namespace

CommandResult ask_broker(const std::string& command, BrokerClient& broker, const std::function<BrokerReply()>& call) {
  try {
    return CommandResult::from_reply(command, call());
  } catch (const BrokerUnreachable&) {
    const std::string silent = broker.endpoints().size() == 1
                                   ? "the broker at " + broker.endpoint() + " did not answer within " +
                                         seconds_text(broker.timeout())
                                   : "none of the brokers " + joined(broker.endpoints()) + " answered within " +
                                         seconds_text(broker.timeout()) + " each";
    return CommandResult::local(command, Outcome::kUnreachable, status::kBrokerUnreachable,
                                silent + "; " + likely_cause(broker));
  } catch (const BadReply& e) {
    return CommandResult::local(command, Outcome::kUnreachable, status::kInternalError, e.what());
  } catch (const zmq::error_t& e) {  // e.g. --broker is not an endpoint ZeroMQ can connect to
    return CommandResult::local(command, Outcome::kUnreachable, status::kBrokerUnreachable,
                                "cannot connect to the broker at '" + broker.endpoint() + "': " + e.what() +
                                    " (expected tcp://HOST:PORT)");
  }
}

std::optional<CommandResult> invalid_user(const std::string& command, const std::string& user) {
  return usage_unless(command, [&] { check_user(user); }, "invalid user name '" + user + "'");
}

std::optional<CommandResult> invalid_file_name(const std::string& command, const std::string& name) {
  return usage_unless(command, [&] { check_file_name(name); }, "invalid file name '" + name + "'");
}

CommandResult register_command(BrokerClient& broker, const std::string& user) {
  if (auto bad = invalid_user("REGISTER", user)) return *bad;
  return ask_broker("REGISTER", broker, [&] { return broker.register_user(user); });
}

CommandResult unregister_command(BrokerClient& broker, const std::string& user) {
  if (auto bad = invalid_user("UNREGISTER", user)) return *bad;
  return ask_broker("UNREGISTER", broker, [&] { return broker.unregister_user(user); });
}

CommandResult list_users_command(BrokerClient& broker) {
  return ask_broker("LIST_USERS", broker, [&] { return broker.list_users(); });
}

CommandResult list_content_command(BrokerClient& broker, const std::string& user) {
  if (auto bad = invalid_user("LIST_CONTENT", user)) return *bad;
  return ask_broker("LIST_CONTENT", broker, [&] { return broker.list_content(user); });
}

CommandResult search_command(BrokerClient& broker, const SearchQuery& query) {
  const std::string command = "SEARCH";
  auto usage = [&](std::string sentence) {
    return CommandResult::local(command, Outcome::kUsage, status::kBadRequest, std::move(sentence));
  };
  if (!query.words && !query.cid) return usage("give keywords, a content id (--cid), or both");
  if (query.words && query.words->size() > protocol::kMaxQueryBytes) {
    return usage("the keywords are longer than " + std::to_string(protocol::kMaxQueryBytes) + " bytes");
  }
  Hash ignored{};
  if (query.cid && !try_parse_hash(*query.cid, ignored)) return usage("a content id is 64 lowercase hex digits");
  if (query.page_size < 1 || query.page_size > protocol::kMaxSearchLimit) {
    return usage("the page size must be from 1 to " + std::to_string(protocol::kMaxSearchLimit));
  }
  if (query.max_results && *query.max_results == 0) return usage("the result limit must be at least 1");

  nlohmann::json all_results = nlohmann::json::array();
  SearchRequest request{query.words, query.cid, std::nullopt, std::nullopt, query.include_offline};
  for (;;) {
    std::uint64_t want = query.page_size;
    if (query.max_results) want = std::min<std::uint64_t>(want, *query.max_results - all_results.size());
    request.limit = want;
    CommandResult page = ask_broker(command, broker, [&] { return broker.search(request); });
    if (!page.ok()) return page;
    auto results = page.fields.find("results");
    if (results != page.fields.end() && results->is_array()) {
      for (auto& r : *results) all_results.push_back(std::move(r));
    }
    const auto next = page.fields.find("next");
    const bool last_page = next == page.fields.end() || !next->is_number_unsigned();
    const bool enough = query.max_results && all_results.size() >= *query.max_results;
    if (last_page || enough) {
      page.fields["results"] = std::move(all_results);
      if (last_page) page.fields["next"] = nullptr;
      return page;
    }
    const auto cursor = next->get<std::uint64_t>();
    if (request.cursor && *request.cursor == cursor) {
      return CommandResult::local(command, Outcome::kUnreachable, status::kInternalError,
                                  "the broker answered cursor " + std::to_string(cursor) + " with the same next page");
    }
    request.cursor = cursor;
  }
}

}  // namespace zshare::peer
