// event_stream.cpp: events are decoded with nlohmann::json::from_msgpack; the snapshot is read through the
// same Lazy Pirate REQ client the peer uses. With --snapshot a gap is answered the Clone pattern's way, with a
// new snapshot (at most 3 in a row for one gap): right after a snapshot it means the subscription was not live
// yet; later, typically a broker restart whose broker.started this subscriber missed (another one came first).
#include "tools/events/event_stream.hpp"

#include "common/codec.hpp"
#include "common/lazy_pirate.hpp"
#include "common/protocol.hpp"
#include "common/timestamp.hpp"
#include "zshare/protocol_ops.hpp"

#include <zmq_addon.hpp>

#include <stdexcept>
#include <string>

namespace zshare::tools {

namespace {

// A value as one word of the line: a string with no space, quote, backslash, `=` or control character as it
// is, any other string JSON-quoted ("summer holiday.txt", ""), so a line splits into its fields on spaces.
std::string text(const nlohmann::json& j) {
  const auto json = [&] { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  if (!j.is_string()) return json();
  const auto& s = j.get_ref<const std::string&>();
  bool plain = !s.empty();
  for (unsigned char c : s) plain = plain && c > ' ' && c != '"' && c != '\\' && c != '=' && c != 0x7f;
  return plain ? s : json();
}

}  // namespace

void check_failover_lists(const EventStreamOptions& options) {
  if (options.events.empty() || options.brokers.empty()) {
    throw std::invalid_argument("give at least one events endpoint and one broker");
  }
  if (options.events.size() > 1 && options.events.size() != options.brokers.size()) {
    throw std::invalid_argument("--events lists " + std::to_string(options.events.size()) + " brokers' PUB endpoints, "
                                "--broker " + std::to_string(options.brokers.size()) +
                                " control endpoints: to fail over, give both for every broker, in the same order");
  }
}

EventStream::EventStream(zmq::context_t& ctx, EventStreamOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      sub_(ctx, zmq::socket_type::sub),
      control_(ctx, options_.brokers, options_.broker_timeout, 3,
               [this](zmq::socket_t& socket) { options_.security.dial_broker(socket); }),
      heard_(std::chrono::steady_clock::now()),
      snapshot_pending_(options_.snapshot) {
  check_failover_lists(options_);
  sub_.set(zmq::sockopt::linger, 0);
  sub_.set(zmq::sockopt::rcvhwm, 100000);
  options_.security.dial_broker(sub_);
  if (options_.topics.empty()) {
    sub_.set(zmq::sockopt::subscribe, "");
  } else {
    for (const auto& t : options_.topics) sub_.set(zmq::sockopt::subscribe, t);
  }
  sub_.connect(events_endpoint());
}

// The subscriptions belong to the socket, so they carry over to the new connection.
void EventStream::subscribe_at(std::size_t index) {
  if (index == at_ || !fails_over()) return;
  const std::string from = events_endpoint();
  sub_.disconnect(from);
  at_ = index;
  sub_.connect(events_endpoint());
  if (on_failover) on_failover(from, events_endpoint());
}

void EventStream::probe_when_silent() {
  const auto now = std::chrono::steady_clock::now();
  if (!fails_over() || now - heard_ < options_.probe_after) return;
  MapWriter req;
  req.put("v", protocol::kVersion).put("op", protocol::op::kStats).put("ts", now_iso8601_utc());
  req.put("id", "events-probe-" + std::to_string(now_epoch_ms()));
  try {
    control_.request(req.finish());  // any answer says that broker is alive; which one answered is what counts
    subscribe_at(control_.current());
  } catch (const BrokerUnreachable&) {
    // None answered: ask again after the next silence.
  }
  heard_ = std::chrono::steady_clock::now();
}

std::optional<StreamEvent> EventStream::receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{sub_.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(sub_, std::back_inserter(frames), zmq::recv_flags::dontwait) || frames.size() != 2) {
    return std::nullopt;
  }
  StreamEvent e;
  e.topic = frames[0].to_string();
  try {
    const auto* p = static_cast<const std::uint8_t*>(frames[1].data());
    e.fields = nlohmann::json::from_msgpack(p, p + frames[1].size());
    e.seq = e.fields.value("seq", std::uint64_t{0});
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // not one of ours
  }
  e.fields["topic"] = e.topic;
  return e;
}

void EventStream::take_snapshot() {
  std::optional<std::uint64_t> cursor;
  std::uint64_t snapshot_seq = 0;
  std::uint64_t n = 0;
  std::deque<StreamEvent> items;
  for (int page = 0;; ++page) {
    MapWriter req;
    req.put("v", protocol::kVersion).put("op", protocol::op::kSnapshot).put("ts", now_iso8601_utc());
    req.put("id", "events-snapshot-" + std::to_string(now_epoch_ms()) + "-" + std::to_string(page));
    if (cursor) req.put("cursor", *cursor);
    const std::string reply = control_.request(req.finish());
    const auto* p = reinterpret_cast<const std::uint8_t*>(reply.data());
    nlohmann::json r = nlohmann::json::from_msgpack(p, p + reply.size());
    if (r.value("status", "") != "OK") throw std::runtime_error("SNAPSHOT refused: " + r.value("error", ""));
    if (page == 0) snapshot_seq = r.value("seq", std::uint64_t{0});
    for (auto& u : r["users"]) {
      u["topic"] = "snapshot.user";
      u["seq"] = snapshot_seq;
      items.push_back(StreamEvent{"snapshot.user", snapshot_seq, u});
    }
    for (auto& f : r["files"]) {
      f["topic"] = "snapshot.file";
      f["seq"] = snapshot_seq;
      items.push_back(StreamEvent{"snapshot.file", snapshot_seq, f});
      ++n;
    }
    if (r["next"].is_null()) break;
    cursor = r["next"].get<std::uint64_t>();
  }
  nlohmann::json end = {{"topic", "snapshot.end"}, {"seq", snapshot_seq}, {"files", n}};
  items.push_back(StreamEvent{"snapshot.end", snapshot_seq, end});
  // Updates that arrived meanwhile and are already in the snapshot are dropped; later ones follow it.
  std::deque<StreamEvent> later;
  for (auto& e : ready_) {
    if (e.seq > snapshot_seq) later.push_back(std::move(e));
  }
  ready_ = std::move(items);
  for (auto& e : later) ready_.push_back(std::move(e));
  last_seq_ = snapshot_seq;
  subscribe_at(control_.current());  // the snapshot came from another broker: its events are the ones that follow
}

std::optional<StreamEvent> EventStream::next(std::chrono::milliseconds timeout) {
  if (snapshot_pending_) {
    snapshot_pending_ = false;
    while (auto e = receive(std::chrono::milliseconds(0))) ready_.push_back(std::move(*e));
    take_snapshot();
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!ready_.empty()) {
      StreamEvent e = std::move(ready_.front());
      ready_.pop_front();
      if (e.topic.rfind("snapshot.", 0) == 0) return e;
      if (!filtered() && last_seq_ && e.seq != *last_seq_ + 1) {
        if (e.seq <= *last_seq_) continue;  // already in the snapshot
        if (options_.snapshot && resnapshots_in_a_row_ < 3) {
          // Events were missed: the state they carried comes with a new snapshot.
          ++resnapshots_in_a_row_;
          ready_.push_front(std::move(e));
          snapshot_pending_ = true;
          return next(timeout);
        }
        if (on_gap) on_gap(*last_seq_ + 1, e.seq);
      }
      resnapshots_in_a_row_ = 0;
      last_seq_ = e.seq;
      return e;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    auto e = receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    if (!e) {
      probe_when_silent();
      return std::nullopt;
    }
    heard_ = std::chrono::steady_clock::now();
    ready_.push_back(std::move(*e));
  }
}

std::string human_line(const StreamEvent& e) {
  std::string line = "#" + std::to_string(e.seq) + " " + e.topic;
  if (e.fields.contains("user")) line += " " + text(e.fields["user"]);
  for (const auto& [key, value] : e.fields.items()) {
    if (key == "seq" || key == "topic" || key == "user") continue;
    line += " " + key + "=" + text(value);
  }
  if (e.topic == "broker.started") line += " (every session ended: all users offline until they connect again)";
  return line;
}

}  // namespace zshare::tools
