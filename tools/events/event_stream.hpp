// event_stream.hpp: a subscriber to the broker's events (SUB), with the Clone pattern's catch-up: subscribe,
// take the SNAPSHOT pages, replay the updates above the snapshot's seq, and report gaps in seq (with a snapshot,
// a gap takes a new one). broker.started means every session ended: all users are offline until they connect.
// Used by zshare-events; the harness and tests can drive it in-process.
// Failover: given several brokers (events[i] is the PUB of the broker whose control endpoint is brokers[i]), a
// silence longer than `probe_after` makes it ask the broker in use for STATS over the Lazy Pirate client, which
// fails over down the list as the peer's does; when another broker answered, the SUB moves to that broker's PUB.
// A PUB says nothing while nothing happens, so silence alone proves nothing: the control endpoint tells.
#pragma once

#include "common/curve_keys.hpp"
#include "common/lazy_pirate.hpp"

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace zshare::tools {

struct StreamEvent {
  std::string topic;        // "file.published", ... or "snapshot.user" / "snapshot.file" / "snapshot.end"
  std::uint64_t seq = 0;
  nlohmann::json fields;    // the event's map (seq and topic included)
};

struct EventStreamOptions {
  std::vector<std::string> events{"tcp://127.0.0.1:5556"};   // PUB endpoints, one per broker
  std::vector<std::string> brokers{"tcp://127.0.0.1:5555"};  // control endpoints: --snapshot, and failover's probe
  std::vector<std::string> topics;                            // prefixes; empty: everything
  bool snapshot = false;
  std::chrono::milliseconds broker_timeout{3000};  // per broker, shared by the Lazy Pirate's tries
  std::chrono::milliseconds probe_after{2000};     // silence before the broker in use is asked (several events only)
  curve::LinkSecurity security;  // the brokers' public key (one network, one keypair); our own can be a fresh one
};

// Throws std::invalid_argument unless `options` can fail over: several events endpoints need as many brokers, in
// the same order (each PUB is told from its broker's control endpoint).
void check_failover_lists(const EventStreamOptions& options);

class EventStream {
 public:
  EventStream(zmq::context_t& ctx, EventStreamOptions options);

  // The next event, waiting at most `timeout`; nullopt when none came. Snapshot items come first.
  // Throws std::runtime_error when the snapshot cannot be taken.
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout);

  // Called with (expected, got) when seq jumps; only when subscribed to every topic (filters skip seqs).
  std::function<void(std::uint64_t expected, std::uint64_t got)> on_gap;
  // Called with (from, to) PUB endpoints when the subscription moved to another broker.
  std::function<void(const std::string& from, const std::string& to)> on_failover;

  const std::string& events_endpoint() const { return options_.events[at_]; }  // the PUB subscribed to

 private:
  std::optional<StreamEvent> receive(std::chrono::milliseconds timeout);
  void take_snapshot();
  // After `probe_after` of silence: STATS to the broker in use (failing over down the list); follows the one that
  // answered. A probe that nobody answered is tried again after the next silence.
  void probe_when_silent();
  void subscribe_at(std::size_t index);
  bool filtered() const { return !options_.topics.empty(); }
  bool fails_over() const { return options_.events.size() > 1; }

  zmq::context_t& ctx_;
  EventStreamOptions options_;
  zmq::socket_t sub_;
  LazyPirateClient control_;  // SNAPSHOT and failover's STATS, over the brokers' control endpoints
  std::size_t at_ = 0;        // the broker whose PUB sub_ is connected to
  std::chrono::steady_clock::time_point heard_;  // the last event, or the last answer to a probe
  std::deque<StreamEvent> ready_;
  std::optional<std::uint64_t> last_seq_;
  bool snapshot_pending_;
  int resnapshots_in_a_row_ = 0;  // for the gap at hand; an event in order resets it
};

// A one-line human rendering: "#12 file.published alice name=song.mp3 size=123 ...",
// "#7 file.published alice name=\"summer holiday.txt\" size=3 ...": a value holding a space, quote, `=` or
// control character is JSON-quoted, so the line splits into fields on spaces (--json for a program to read).
std::string human_line(const StreamEvent& e);

}  // namespace zshare::tools
