// get_command.cpp: sources are the online holders of the content id whose index entry agrees on size, chunk
// size and root (the largest such group, so one inconsistent publisher cannot steer the download).
#include "peer/get_command.hpp"

#include "common/protocol.hpp"
#include "common/validate.hpp"
#include "peer/broker_commands.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <tuple>

namespace zshare::peer {

namespace {

namespace status = protocol::status;
using nlohmann::json;

struct Entry {
  std::string user, endpoint, key, cid, root;
  std::uint64_t size = 0, chunk_size = 0;
  bool online = false;
};

Entry entry_of(const json& f) {
  Entry e;
  e.user = f.value("user", "");
  e.endpoint = f.value("endpoint", "");
  e.key = f.value("key", "");
  e.cid = f.value("cid", "");
  e.root = f.value("root", "");
  e.size = f.value("size", std::uint64_t{0});
  e.chunk_size = f.value("chunk_size", std::uint64_t{0});
  e.online = f.value("online", false);
  return e;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
  return buf;
}

}  // namespace

ProgressFn terminal_progress(std::ostream& err) {
  auto start = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  return [&err, start](std::uint64_t done, std::uint64_t total, std::size_t sources) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - *start).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const double pct = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    char line[160];
    std::snprintf(line, sizeof line, "\r  %s / %s  %3.0f%%  %s/s  ETA %.0fs  %zu source%s   ",
                  human_bytes(static_cast<double>(done)).c_str(), human_bytes(static_cast<double>(total)).c_str(),
                  pct, human_bytes(rate).c_str(), eta, sources, sources == 1 ? "" : "s");
    err << line << (done == total ? "\n" : "") << std::flush;
  };
}

CommandResult get_command(zmq::context_t& ctx, BrokerClient& broker, const std::string& command,
                          const GetRequest& request, const ProgressFn& progress) {
  auto fail = [&](Outcome outcome, std::string_view st, std::string sentence) {
    return CommandResult::local(command, outcome, st, std::move(sentence));
  };
  std::string cid = request.target;
  Hash parsed{};
  if (!try_parse_hash(request.target, parsed)) {
    const auto colon = request.target.find(':');
    if (colon == std::string::npos) {
      return fail(Outcome::kUsage, status::kBadRequest, "what to get is a content id (64 hex digits) or user:name");
    }
    const std::string user = request.target.substr(0, colon), name = request.target.substr(colon + 1);
    if (auto bad = invalid_user(command, user)) return *bad;
    if (auto bad = invalid_file_name(command, name)) return *bad;
    CommandResult found = ask_broker(command, broker, [&] { return broker.lookup(user, name); });
    if (!found.ok()) return found;
    cid = entry_of(found.fields.value("file", json::object())).cid;
  }

  // Every holder of the content, online or not, page by page. Right after a broker restart the index still
  // knows every holder but their sessions are not back yet (a seeder reconnects at its next heartbeat): while
  // holders exist and none is online, ask again every 200 ms, for request.source_wait at most.
  SearchQuery query;
  query.cid = cid;
  query.page_size = 1000;
  query.include_offline = true;
  const auto poll = std::chrono::milliseconds(200);
  const auto give_up = std::chrono::steady_clock::now() + request.source_wait;
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::string>, std::vector<Entry>> groups;
  std::size_t offline = 0;
  for (;;) {
    CommandResult holders = search_command(broker, query);
    if (!holders.ok()) {
      holders.command = command;
      return holders;
    }
    groups.clear();
    offline = 0;
    for (const auto& f : holders.fields.value("results", json::array())) {
      Entry e = entry_of(f);
      if (request.only_user && e.user != *request.only_user) continue;
      if (!e.online || e.endpoint.empty()) {
        ++offline;
        continue;
      }
      groups[{e.size, e.chunk_size, e.root}].push_back(std::move(e));
    }
    if (!groups.empty() || offline == 0 || std::chrono::steady_clock::now() + poll > give_up) break;
    std::this_thread::sleep_for(poll);
  }
  if (groups.empty()) {
    if (request.only_user && offline) {
      return fail(Outcome::kRefused, status::kUserNotConnected,
                  *request.only_user + " is not connected, so nobody can send " + request.target.substr(
                      request.target.find(':') + 1));
    }
    return fail(Outcome::kRefused, status::kUserNotConnected,
                offline ? "every peer holding that content is offline (" + std::to_string(offline) + ")"
                        : "nobody publishes that content");
  }
  const auto& best = std::max_element(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
                       return a.second.size() < b.second.size();
                     })->second;

  DownloadPlan plan;
  plan.cid = parse_hash(cid, "cid");
  plan.root = parse_hash(best.front().root, "root");
  plan.size = best.front().size;
  plan.chunk_size = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(best.front().chunk_size, std::numeric_limits<std::uint32_t>::max()));  // checked later
  plan.dest = request.dest;
  std::set<std::string> endpoints;  // one connection per (endpoint, key): a key names who must answer there
  for (const auto& e : best) {
    if (endpoints.insert(e.endpoint + " " + e.key).second) plan.sources.push_back(Source{e.user, e.endpoint, e.key});
  }

  Downloader downloader(ctx, request.download);
  DownloadReport report;
  try {
    report = downloader.run(plan, progress);
  } catch (const std::exception& e) {
    return fail(Outcome::kUsage, "DOWNLOAD FAILED", e.what());
  }
  CommandResult result = report.ok ? CommandResult::local(command, Outcome::kOk, status::kOk, "")
                                   : fail(Outcome::kRefused, "DOWNLOAD FAILED", report.error);
  json sources = json::array();
  for (const auto& s : report.sources) {
    sources.push_back({{"user", s.user}, {"endpoint", s.endpoint}, {"chunks", s.chunks},
                       {"bad_chunks", s.bad_chunks}, {"dropped", s.dropped_because}});
  }
  result.fields["dest"] = request.dest;
  result.fields["cid"] = cid;
  result.fields["size"] = report.size;
  result.fields["chunks"] = report.chunks;
  result.fields["chunks_resumed"] = report.chunks_resumed;
  result.fields["bad_chunks"] = report.bad_chunks;
  result.fields["bytes_received"] = report.bytes_received;
  result.fields["seconds"] = report.seconds;
  result.fields["sources"] = sources;
  return result;
}

}  // namespace zshare::peer
