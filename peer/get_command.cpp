// get_command.cpp: the steps of one GET, in order: what (content id and published name), where (destination
// checks, free space), from whom (the online holders of the content id whose index entries agree on its size: the
// largest such group, so one inconsistent publisher cannot steer the download; chunk sizes may differ), then the
// tries.
#include "peer/get_command.hpp"

#include "common/byte_size.hpp"
#include "common/protocol.hpp"
#include "common/validate.hpp"
#include "peer/broker_commands.hpp"
#include "peer/destination.hpp"
#include "peer/rendezvous.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>
#include <variant>

namespace zshare::peer {

namespace {

namespace status = protocol::status;
using nlohmann::json;

constexpr std::string_view kDownloadFailed = "DOWNLOAD FAILED";
constexpr std::string_view kDestinationRefused = "DESTINATION REFUSED";
constexpr std::string_view kNoSpace = "NO SPACE";
constexpr std::string_view kInterrupted = "INTERRUPTED";

struct Entry {
  std::string user, name, endpoint, key, cid;
  std::uint64_t size = 0, chunk_size = 0;
  bool online = false;
  bool reachable = true;  // the broker's probe found nothing accepting connections at `endpoint` when false
};

Entry entry_of(const json& f) {
  Entry e;
  e.user = f.value("user", "");
  e.name = f.value("name", "");
  e.endpoint = f.value("endpoint", "");
  e.key = f.value("key", "");
  e.cid = f.value("cid", "");
  e.size = f.value("size", std::uint64_t{0});
  e.chunk_size = f.value("chunk_size", std::uint64_t{0});
  e.online = f.value("online", false);
  e.reachable = f.value("reachable", true);  // absent: not probed (yet), dialled as always
  return e;
}

// What the target names: a content id, and the name it was published under (the file name to save it as).
struct Target {
  std::string cid;
  std::string name;  // empty until a holder is known, for a content id
  std::string user;  // for user:name: whose file it is (looked up again when its content changes)
};

// The sources that can serve the content now, all agreeing on one tree.
struct Holders {
  std::vector<Entry> sources;
  std::size_t offline = 0;
};

bool stopped(const GetRequest& request) { return request.download.stop && request.download.stop->load(); }

// Sleeps `d` in slices, returning early when the stop flag rises.
void pause(const GetRequest& request, std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stopped(request) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(50)));
  }
}

// Every holder of the content, online or not, page by page. Right after a broker restart the index still knows
// every holder but their sessions are not back yet (a seeder reconnects at its next heartbeat): while holders
// exist and none is online, ask again every 200 ms, for request.source_wait at most.
std::variant<Holders, CommandResult> find_holders(BrokerClient& broker, const std::string& command,
                                                  const GetRequest& request, const std::string& cid) {
  SearchQuery query;
  query.cid = cid;
  query.page_size = 1000;
  query.include_offline = true;
  const auto poll = std::chrono::milliseconds(200);
  const auto give_up = std::chrono::steady_clock::now() + request.source_wait;
  std::map<std::uint64_t, std::vector<Entry>> groups;  // by size: honest holders of one cid agree on it
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
      if (!valid_chunk_size(e.chunk_size)) continue;  // no honest publisher sends it: not a source
      groups[e.size].push_back(std::move(e));
    }
    if (!groups.empty() || offline == 0 || std::chrono::steady_clock::now() + poll > give_up || stopped(request)) break;
    std::this_thread::sleep_for(poll);
  }
  if (groups.empty()) return Holders{{}, offline};
  auto best = std::max_element(groups.begin(), groups.end(),
                               [](const auto& a, const auto& b) { return a.second.size() < b.second.size(); });
  return Holders{std::move(best->second), offline};
}

CommandResult no_holder(const std::string& command, const GetRequest& request, std::size_t offline) {
  if (request.only_user && offline) {
    return CommandResult::local(command, Outcome::kRefused, status::kUserNotConnected,
                                *request.only_user + " is not connected, so nobody can send " +
                                    request.target.substr(request.target.find(':') + 1));
  }
  return CommandResult::local(command, Outcome::kRefused, status::kUserNotConnected,
                              offline ? "every peer holding that content is offline (" + std::to_string(offline) +
                                                    (offline == 1 ? " holder)" : " holders)")
                                      : "nobody publishes that content");
}

DownloadPlan plan_of(const std::string& cid, const Holders& holders) {
  const Entry& first = holders.sources.front();
  DownloadPlan plan;
  plan.cid = parse_hash(cid, "cid");
  plan.size = first.size;
  // The largest chunk size among the holders: each can fold its own chunk layer up to it (transfer.md), so
  // holders that hashed with different chunk sizes serve one download together.
  std::uint64_t chunk_size = 0;
  for (const auto& e : holders.sources) chunk_size = std::max(chunk_size, e.chunk_size);
  plan.chunk_size = static_cast<std::uint32_t>(chunk_size);  // find_holders kept valid chunk sizes only
  std::set<std::string> endpoints;  // one connection per (endpoint, key): a key names who must answer there
  for (const auto& e : holders.sources) {
    if (endpoints.insert(e.endpoint + " " + e.key).second) {
      plan.sources.push_back(Source{e.user, e.endpoint, e.key, e.reachable});
    }
  }
  return plan;
}

// Writes every byte to standard output (fd 1), skipping the first `skip` (already written by an earlier try).
OrderedSink stdout_sink(std::uint64_t& emitted) {
  auto seen = std::make_shared<std::uint64_t>(0);
  return [&emitted, seen](const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    std::uint64_t from = *seen;
    *seen += size;
    if (*seen <= emitted) return;
    const std::size_t skip = emitted > from ? static_cast<std::size_t>(emitted - from) : 0;
    p += skip;
    size -= skip;
    while (size > 0) {
      ssize_t w = ::write(STDOUT_FILENO, p, size);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw DestinationError(std::string("cannot write to standard output: ") + std::strerror(errno));
      p += w;
      size -= static_cast<std::size_t>(w);
      emitted += static_cast<std::uint64_t>(w);
    }
  };
}

json sources_json(const DownloadReport& report) {
  json sources = json::array();
  for (const auto& s : report.sources) {
    sources.push_back({{"user", s.user}, {"endpoint", s.endpoint}, {"chunks", s.chunks},
                       {"bad_chunks", s.bad_chunks}, {"dropped", s.dropped_because}});
  }
  return sources;
}

// A source behind NAT: the broker passes our request to dial out on with its next heartbeat (DIAL), and names
// the relay and our side of its token when it has one.
RendezvousFn ask_to_dial_out(BrokerClient& broker) {
  return [&broker](const Source& source, std::uint16_t callback_port) {
    RendezvousAnswer answer;
    try {
      BrokerReply r = broker.dial(source.user, callback_port);
      if (!r.ok()) {
        answer.error = "is behind NAT or a firewall, and the broker could not ask it to dial out: " + r.status +
                       (r.error.empty() ? "" : " (" + r.error + ")");
        return answer;
      }
      const std::string relay = r.fields.value("relay", "");
      const std::string host = r.fields.value("host", "");
      if (!relay.empty() && !host.empty()) {
        answer.relay_proxy = socks_proxy_of(relay);
        answer.relay_endpoint = relay_endpoint_for(host);
      }
    } catch (const std::exception& e) {
      answer.error = std::string("is behind NAT or a firewall, and the broker did not answer our request to have it "
                                 "dial out: ") + e.what();
    }
    return answer;
  };
}

// For user:name: when the file's content id changed in the index (the seeder's file was rewritten and
// republished), follow it to its new version. True when it did.
bool follow_new_version(BrokerClient& broker, Target& target, const std::function<void(const std::string&)>& note,
                        const std::string& command) {
  CommandResult found = ask_broker(command, broker, [&] { return broker.lookup(target.user, target.name); });
  if (!found.ok()) return false;
  const std::string cid = entry_of(found.fields.value("file", json::object())).cid;
  if (cid.empty() || cid == target.cid) return false;
  note(command + ": " + target.user + ":" + target.name + " changed at its source; fetching its new version (" +
       cid.substr(0, 16) + "...)");
  target.cid = cid;
  return true;
}

}  // namespace

CommandResult get_command(zmq::context_t& ctx, BrokerClient& broker, const std::string& command,
                          const GetRequest& request, const GetObserver& observer) {
  auto fail = [&](Outcome outcome, std::string_view st, std::string sentence) {
    return CommandResult::local(command, outcome, st, std::move(sentence));
  };
  auto note = [&](const std::string& sentence) {
    if (observer.note) observer.note(sentence);
  };

  // 1. What: the content id (upper-case hex is read too), and the name it is published under.
  std::string what = request.target;
  if (what.size() == 64 && std::all_of(what.begin(), what.end(), [](unsigned char c) { return std::isxdigit(c); })) {
    std::transform(what.begin(), what.end(), what.begin(), [](unsigned char c) { return std::tolower(c); });
  }
  Target target{what, "", ""};
  Hash parsed{};
  if (!try_parse_hash(what, parsed)) {
    const auto colon = request.target.find(':');
    if (colon == std::string::npos) {
      return fail(Outcome::kUsage, status::kBadRequest, "what to get is a content id (64 hex digits) or user:name");
    }
    const std::string user = request.target.substr(0, colon), name = request.target.substr(colon + 1);
    if (auto bad = invalid_user(command, user)) return *bad;
    if (auto bad = invalid_file_name(command, name)) return *bad;
    CommandResult found = ask_broker(command, broker, [&] { return broker.lookup(user, name); });
    if (!found.ok()) return found;
    target = Target{entry_of(found.fields.value("file", json::object())).cid, name, user};
  }

  // 2. From whom: the first set of sources (a content id's name comes from its holders).
  auto holders = find_holders(broker, command, request, target.cid);
  if (auto* refused = std::get_if<CommandResult>(&holders)) return *refused;
  Holders current = std::get<Holders>(std::move(holders));
  if (current.sources.empty()) return no_holder(command, request, current.offline);
  if (target.name.empty()) target.name = current.sources.front().name;
  DownloadPlan plan = plan_of(target.cid, current);

  // 3. Where: checked before a single byte moves, and the .part opened (and locked) there.
  Destination dest;
  ExistingFile existing = ExistingFile::kAbsent;
  std::optional<PartFile> part;
  bool part_existed = false;  // a .part from an earlier run: kept whatever happens, it may hold good chunks
  try {
    dest = resolve_destination(request.dest, target.name);
    existing = check_existing(dest, plan.cid, plan.size, request.force);
    if (existing != ExistingFile::kSameContent) {
      check_free_space(dest, plan.size);
      part.emplace(dest.to_stdout ? PartFile::anonymous(plan.size)
                                  : PartFile::beside(dest.path, plan.size, what, request.force));
      part_existed = part->existed();
    }
  } catch (const DestinationError& e) {
    const bool space = std::string_view(e.what()).rfind("not enough free space", 0) == 0;
    return fail(Outcome::kRefused, space ? kNoSpace : kDestinationRefused, e.what());
  }
  CommandResult result = CommandResult::local(command, Outcome::kOk, status::kOk, "");
  result.fields["dest"] = dest.to_stdout ? "-" : dest.path;
  result.fields["name"] = target.name;
  result.fields["cid"] = target.cid;
  result.fields["size"] = plan.size;
  result.fields["already"] = existing == ExistingFile::kSameContent;
  if (existing == ExistingFile::kSameContent) {
    for (const char* k : {"chunks", "chunks_resumed", "bad_chunks", "bytes_received", "tries"}) result.fields[k] = 0;
    result.fields["seconds"] = 0.0;
    result.fields["sources"] = json::array();
    return result;
  }

  // 4. The tries: each resumes from what the ones before it verified.
  std::uint64_t emitted = 0;   // bytes already on standard output
  std::uint64_t verified = 0;  // the most any try had verified in the file
  DownloadReport report;
  std::uint64_t received = 0, bad = 0;
  double seconds = 0;
  unsigned tries = 0;
  std::string write_error;  // the destination failed mid-way (a full disk, an I/O error)
  try {
    DownloadOptions download = request.download;
    if (!download.rendezvous) download.rendezvous = ask_to_dial_out(broker);
    for (;;) {
      ++tries;
      Downloader downloader(ctx, download);
      auto progress = [&](const Progress& p) {
        if (observer.progress) observer.progress(Progress{target.name, p.done, p.total, p.fetched, p.sources});
      };
      report = downloader.run(plan, *part, progress, dest.to_stdout ? stdout_sink(emitted) : OrderedSink{});
      received += report.bytes_received;
      bad += report.bad_chunks;
      seconds += report.seconds;
      verified = std::max(verified, report.bytes_done);
      if (report.ok || report.interrupted || !report.sources_failed || tries >= request.max_tries) break;
      part->mark_resumable();
      note(command + ": " + target.name + ": " + report.error + "; trying again in " +
           std::to_string(request.retry_wait.count()) + " ms (try " +
           std::to_string(tries + 1) + " of " + std::to_string(request.max_tries) + ")");
      pause(request, request.retry_wait);
      if (stopped(request)) break;
      if (!target.user.empty() && follow_new_version(broker, target, note, command)) {  // it changed at its source
        result.fields["cid"] = target.cid;
      }
      auto again = find_holders(broker, command, request, target.cid);
      if (auto* refused = std::get_if<CommandResult>(&again)) {  // the broker failed us: this try failed too
        report.error = "the broker did not give the sources again (" + refused->status + ")";
        if (tries >= request.max_tries) break;
        continue;
      }
      Holders now = std::get<Holders>(std::move(again));
      if (!now.sources.empty()) {
        DownloadPlan next = plan_of(target.cid, now);
        if (next.cid != plan.cid) {  // a new version: the .part takes its size; chunks that still match are kept
          part->resize(next.size);
          plan = next;
          result.fields["size"] = plan.size;
        } else if (next.size == plan.size) {  // the same file: its sources now, at their largest chunk size
          plan = next;
        }
      }
    }
  } catch (const DestinationError& e) {
    write_error = e.what();
  }

  result.fields["chunks"] = report.chunks;
  result.fields["chunks_resumed"] = report.chunks_resumed;
  result.fields["bad_chunks"] = bad;
  result.fields["bytes_received"] = received;
  result.fields["seconds"] = seconds;
  result.fields["tries"] = tries;
  result.fields["sources"] = sources_json(report);
  if (report.ok && write_error.empty()) {
    try {
      part->commit(dest.path, existing == ExistingFile::kReplace);
      return result;
    } catch (const DestinationError& e) {  // a file appeared at the destination meanwhile: the .part stays
      CommandResult failed = fail(Outcome::kRefused, kDownloadFailed, e.what());
      failed.fields["part"] = part->path();
      return failed;
    }
  }

  // Failed or interrupted: keep the .part whenever it may hold something to resume.
  const bool keep = part->named() && (part_existed || verified > 0 || allocated_bytes(part->path()) > 0);
  if (!keep && part->named()) part->discard();
  std::string kept;
  if (keep) {
    result.fields["part"] = part->path();
    kept = format_bytes(double(verified)) + " kept in " + part->path() + "; " +
           (write_error.empty() ? "run the same command to resume" : "make room and run the same command to resume");
  }
  const bool interrupted = write_error.empty() && (report.interrupted || stopped(request));
  std::string sentence = interrupted ? "interrupted" : target.name + ": " + (write_error.empty() ? report.error : write_error);
  if (!kept.empty()) sentence += (interrupted ? ": " : "; ") + kept;
  else if (!interrupted && dest.to_stdout) sentence += "; nothing can be resumed from standard output";
  CommandResult failed = fail(interrupted ? Outcome::kInterrupted : Outcome::kRefused,
                              interrupted ? kInterrupted : kDownloadFailed, sentence);
  for (auto& [k, v] : result.fields.items()) {
    if (k != "status" && k != "error") failed.fields[k] = v;
  }
  return failed;
}

std::string get_summary_line(const CommandResult& r) {
  const auto& f = r.fields;
  const std::string dest = f.value("dest", "");
  const std::string where = dest == "-" ? "standard output" : dest;
  if (f.value("already", false)) {
    return where + " already holds this content (" + f.value("cid", "").substr(0, 16) + "...): nothing to transfer";
  }
  const double size = static_cast<double>(f.value("size", std::uint64_t{0}));
  const double secs = f.value("seconds", 0.0);
  const auto sources = f.value("sources", json::array());
  std::size_t used = 0;
  for (const auto& s : sources) used += s.value("chunks", std::uint64_t{0}) > 0 ? 1 : 0;
  const auto received = static_cast<double>(f.value("bytes_received", std::uint64_t{0}));
  const auto resumed = f.value("chunks_resumed", std::uint64_t{0});
  const std::string what = resumed ? format_bytes(received) + " fetched of " + format_bytes(size) : format_bytes(size);
  std::string line = "saved " + where + ": " + what + " in " + format_duration(secs) + " (" +
                     format_bytes(secs > 0 ? received / secs : 0) + "/s) from " + std::to_string(used) + " source" +
                     (used == 1 ? "" : "s");
  if (resumed) line += "; the rest (" + std::to_string(resumed) + " chunks) was resumed from the .part";
  return line;
}

}  // namespace zshare::peer
