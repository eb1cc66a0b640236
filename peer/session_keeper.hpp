// session_keeper.hpp: keeps a connected peer's session alive (the guide's Paranoid Pirate heartbeat) and
// brings it back by itself: when the broker answers that the session is gone (it restarted, or expired us)
// or answers again after an outage, CONNECT again with backoff and re-sync the published files. The heartbeat
// replies also carry downloaders' requests to dial out to them (we are behind NAT): the seeder does that.
// The pace is the broker's: each CONNECT and HEARTBEAT reply's `heartbeat_ms` (a broker with many sessions asks
// for a slower one than promised); a reply without it (older brokers) leaves the pace as it was.
// Given several brokers, a heartbeat the broker in use leaves unanswered goes to the next (Lazy Pirate's failover),
// and the session is established again at whichever answers: CONNECT and re-sync there, as after a restart.
#pragma once

#include "common/curve_keys.hpp"
#include "peer/content_catalog.hpp"
#include "peer/dial_out_worker.hpp"
#include "peer/seeder.hpp"

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace zshare::peer {

class BrokerClient;
struct BrokerReply;

struct SessionKeeperOptions {
  std::vector<std::string> brokers;              // control endpoints, the one in use first (failover_order())
  std::string timesvc;                           // time service URL for the re-sync's stamps ("" : local)
  std::string user;
  std::string endpoint;                          // the transfer endpoint to advertise again
  std::chrono::milliseconds interval{1000};      // heartbeat interval promised at CONNECT
  curve::LinkSecurity security;                  // the same keys as the peer's own BrokerClient
  Seeder* seeder = nullptr;                      // dials out for the dial orders heartbeat replies carry
  std::chrono::milliseconds asked{0};            // the first CONNECT reply's ask (asked_interval); 0: `interval`
};

// The interval a reply's fields ask for (`heartbeat_ms`, kept within the protocol's 100 ms to one hour), or
// `otherwise` when they ask for none.
std::chrono::milliseconds asked_interval(const nlohmann::json& reply, std::chrono::milliseconds otherwise);

class SessionKeeper {
 public:
  SessionKeeper(zmq::context_t& ctx, SessionKeeperOptions options, const ContentCatalog& catalog,
                std::ostream& report);
  ~SessionKeeper();  // stops the thread (at most one interval's wait)
  SessionKeeper(const SessionKeeper&) = delete;
  SessionKeeper& operator=(const SessionKeeper&) = delete;

  std::uint64_t reconnects() const { return reconnects_.load(); }
  std::chrono::milliseconds pace() const { return std::chrono::milliseconds(pace_ms_.load()); }  // the wait now

 private:
  void run();
  void dial_out(const BrokerReply& beat);
  void follow(const BrokerReply& reply);  // the pace `reply` asks for, if it asks
  // CONNECT again (after a REGISTER when the broker does not know the user) and re-sync; false when refused.
  bool reconnect(BrokerClient& broker, const BrokerReply& beat);
  bool wait(std::chrono::milliseconds d);  // false when stopping

  zmq::context_t& ctx_;
  SessionKeeperOptions options_;
  const ContentCatalog& catalog_;
  std::ostream& report_;
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::int64_t> pace_ms_;  // the latest interval the broker asked for (else the promised one)
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::unique_ptr<DialOutWorker> dial_out_;  // before thread_: the heartbeat thread uses it until joined
  std::thread thread_;
};

}  // namespace zshare::peer
