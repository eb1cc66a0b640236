// session_keeper.cpp: its own REQ socket and TimeClient (one per thread); one attempt per heartbeat, since
// the heartbeat itself repeats. Outages are reported once, recoveries once.
#include "peer/session_keeper.hpp"

#include "peer/rendezvous.hpp"

#include "common/protocol.hpp"
#include "common/time_client.hpp"
#include "peer/broker_client.hpp"
#include "peer/publish_sync.hpp"

#include <algorithm>

namespace zshare::peer {

namespace status = protocol::status;

SessionKeeper::SessionKeeper(zmq::context_t& ctx, SessionKeeperOptions options, const ContentCatalog& catalog,
                             std::ostream& report)
    : ctx_(ctx),
      options_(std::move(options)),
      catalog_(catalog),
      report_(report),
      pace_ms_((options_.asked.count() > 0 ? options_.asked : options_.interval).count()) {
  if (Seeder* seeder = options_.seeder) {
    dial_out_ = std::make_unique<DialOutWorker>([seeder](std::vector<DialOut> outs) { seeder->dial(std::move(outs)); },
                                                report_);
  }
  thread_ = std::thread([this] { run(); });
}

SessionKeeper::~SessionKeeper() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

// Each order's way out is chosen off this thread (DialOutWorker), so heartbeats keep their pace.
void SessionKeeper::dial_out(const BrokerReply& beat) {
  if (!dial_out_) return;
  std::vector<DialOrder> orders = dial_orders(beat.fields);
  if (!orders.empty()) dial_out_->push(std::move(orders));
}

std::chrono::milliseconds asked_interval(const nlohmann::json& reply, std::chrono::milliseconds otherwise) {
  const auto it = reply.find("heartbeat_ms");
  if (it == reply.end() || !it->is_number_integer()) return otherwise;
  const std::uint64_t ms = it->is_number_unsigned() ? it->get<std::uint64_t>()
                                                    : static_cast<std::uint64_t>(std::max<std::int64_t>(0, *it));
  return std::chrono::milliseconds(std::clamp(ms, protocol::kMinHeartbeatMs, protocol::kMaxHeartbeatMs));
}

void SessionKeeper::follow(const BrokerReply& reply) {
  pace_ms_.store(asked_interval(reply.fields, pace()).count());
}

bool SessionKeeper::wait(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return stop_; });
}

// The session is gone: the broker restarted (sessions come back offline), expired us, or is another broker of the
// list. CONNECT again (over --plaintext USER ALREADY CONNECTED means someone connected the user meanwhile: we carry
// on, as before) and publish our files there again.
bool SessionKeeper::reconnect(BrokerClient& broker, const BrokerReply& beat) {
  if (beat.status == status::kUserDoesNotExist) broker.register_user(options_.user);
  BrokerReply again =
      broker.connect(options_.user, options_.endpoint, static_cast<std::uint64_t>(options_.interval.count()));
  if (!again.ok() && again.status != status::kUserAlreadyConnected) {
    report_ << "zshare-peer: reconnecting " << options_.user << " failed: " << again.status << " " << again.error
            << std::endl;
    return false;
  }
  follow(again);
  const SyncReport sync = sync_published(broker, options_.user, catalog_, false);
  ++reconnects_;
  report_ << "zshare-peer: reconnected " << options_.user << " to the broker at " << broker.endpoint()
          << "; republished " << sync.sent() << " files" << std::endl;
  for (const auto& f : sync.failures) report_ << "zshare-peer: re-sync: " << f << std::endl;
  return true;
}

void SessionKeeper::run() {
  const auto timeout = std::max(options_.interval, std::chrono::milliseconds(1000));
  BrokerClient broker(ctx_, options_.brokers, timeout, options_.security, 1);
  std::ostream silent(nullptr);  // the process's own TimeClient already warns about the time service, once
  TimeClient clock(options_.timesvc, silent);
  broker.set_clock(&clock);
  bool outage = false;
  std::chrono::milliseconds backoff = options_.interval;
  while (wait(outage ? backoff : pace())) {
    const std::string asked = broker.endpoint();
    try {
      BrokerReply beat = broker.heartbeat(options_.user);
      if (broker.endpoint() != asked) {
        report_ << "zshare-peer: the broker at " << asked << " stopped answering; moved to " << broker.endpoint()
                << std::endl;
      }
      if (beat.ok()) {
        follow(beat);
        dial_out(beat);
        if (outage) report_ << "zshare-peer: the broker answers again; session of " << options_.user << " intact" << std::endl;
        outage = false;
        backoff = options_.interval;
        continue;
      }
      if (beat.status != status::kUserNotConnected && beat.status != status::kUserDoesNotExist) continue;
      outage = !reconnect(broker, beat);
      backoff = outage ? std::min(backoff * 2, std::chrono::milliseconds(8000)) : options_.interval;
    } catch (const std::exception& e) {  // BrokerUnreachable, BadReply
      if (!outage) report_ << "zshare-peer: broker unreachable (" << e.what() << "); retrying" << std::endl;
      outage = true;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }
}

}  // namespace zshare::peer
