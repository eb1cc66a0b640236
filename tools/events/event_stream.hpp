// event_stream.hpp: a subscriber to the broker's events (SUB), with the Clone pattern's catch-up: subscribe,
// take the SNAPSHOT pages, replay the updates above the snapshot's seq, and report gaps in seq (with a snapshot,
// a gap takes a new one). broker.started means every session ended: all users are offline until they connect.
// Used by zshare-events; the harness and tests can drive it in-process.
#pragma once

#include "common/curve_keys.hpp"

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
  std::string events = "tcp://127.0.0.1:5556";
  std::string broker = "tcp://127.0.0.1:5555";  // for --snapshot
  std::vector<std::string> topics;              // prefixes; empty: everything
  bool snapshot = false;
  std::chrono::milliseconds broker_timeout{3000};
  curve::LinkSecurity security;  // the broker's public key; a subscriber's own keypair can be a fresh one
};

class EventStream {
 public:
  EventStream(zmq::context_t& ctx, EventStreamOptions options);

  // The next event, waiting at most `timeout`; nullopt when none came. Snapshot items come first.
  // Throws std::runtime_error when the snapshot cannot be taken.
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout);

  // Called with (expected, got) when seq jumps; only when subscribed to every topic (filters skip seqs).
  std::function<void(std::uint64_t expected, std::uint64_t got)> on_gap;

 private:
  std::optional<StreamEvent> receive(std::chrono::milliseconds timeout);
  void take_snapshot();
  bool filtered() const { return !options_.topics.empty(); }

  zmq::context_t& ctx_;
  EventStreamOptions options_;
  zmq::socket_t sub_;
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
