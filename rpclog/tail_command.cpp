// tail_command.cpp: a record is known by its (broker id, seq), the key the logger deduplicates by; --follow
// remembers the keys it printed (the newest 65,536) and prints the others.
#include "rpclog/tail_command.hpp"

#include "rpclog/log_record.hpp"
#include "rpclog/rpclog_client.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <set>
#include <thread>

namespace zshare::rpclog {

namespace {

std::string json_line(const LogRecord& r) {
  nlohmann::json j{{"ts", r.timestamp}, {"ts_local", r.ts_local}, {"user", r.user}, {"op", r.operation},
                   {"args", r.args},    {"broker", r.broker_id},  {"seq", r.seq}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void tail_command(const TailOptions& options, std::ostream& out, const std::atomic<bool>& stop) {
  RpcLogClient client(options.server, std::chrono::seconds(3));
  std::set<std::pair<std::string, std::uint64_t>> seen;
  std::deque<std::pair<std::string, std::uint64_t>> order;
  for (;;) {
    for (const auto& r : client.query(options.user, options.operation, options.last)) {
      auto key = std::make_pair(r.broker_id, r.seq);
      if (!seen.insert(key).second) continue;
      order.push_back(std::move(key));
      if (order.size() > 65536) {
        seen.erase(order.front());
        order.pop_front();
      }
      out << (options.json ? json_line(r) : format_line(r));
    }
    out.flush();
    if (!options.follow) return;
    const auto until = std::chrono::steady_clock::now() + options.poll;
    while (!stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stop) return;
  }
}

}  // namespace zshare::rpclog
