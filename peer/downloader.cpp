// downloader.cpp: the scheduler is one loop over all sources: top up each source's window, poll, verify and
// write what came back, drop sources that go silent or send bad data and hand their chunks to the others.
// A chunk is written only after its hash matched its leaf, and the leaves only after they matched the root.
// The caller owns the PartFile: it decides what to do with it when the run ends (commit, keep or discard).
#include "peer/downloader.hpp"

#include "common/byte_bucket.hpp"
#include "common/codec.hpp"
#include "common/content_hash.hpp"
#include "common/protocol.hpp"
#include "common/transfer_protocol.hpp"

#include <zmq_addon.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace zshare::peer {

namespace {

using Clock = std::chrono::steady_clock;

// One source: its DEALER, its requests in flight (request id -> chunk index) and its record.
struct Connection {
  Connection(zmq::context_t& ctx, const Source& s, const curve::LinkSecurity& security)
      : socket(ctx, zmq::socket_type::dealer) {
    report.user = s.user;
    report.endpoint = s.endpoint;
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, transfer::kSocketMaxMessageBytes);
    socket.set(zmq::sockopt::rcvhwm, 1000);
    if (!security.plaintext && !curve::is_z85_key(s.key)) {
      report.dropped_because = "the broker lists no CurveZMQ key for this source";
      return;  // never dial a source we could not authenticate
    }
    security.dial(socket, s.key);  // CurveZMQ refuses a seeder that does not hold exactly this key
    if (!security.plaintext) watch_handshakes(ctx);
    socket.connect(s.endpoint);
  }
  bool alive() const { return report.dropped_because.empty(); }
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Stops the monitor before the socket closes: libzmq leaks a monitored socket's event pipe otherwise.
  void close() {
    if (monitor) {
      if (socket) zmq_socket_monitor(socket.handle(), nullptr, 0);
      monitor->close();
      monitor.reset();
    }
    if (socket) socket.close();
  }

  // Why a source went silent, in words: a seeder that refused our CurveZMQ handshake (it does not hold the key
  // the broker lists: an impostor on that endpoint, or the user's key changed) is told from one that is gone.
  std::string silence(std::string what) {
    if (!monitor) return what;
    bool succeeded = false, failed = false;
    for (;;) {
      std::vector<zmq::message_t> event;
      if (!zmq::recv_multipart(*monitor, std::back_inserter(event), zmq::recv_flags::dontwait)) break;
      if (event.empty() || event[0].size() < 2) continue;
      std::uint16_t id = 0;
      std::memcpy(&id, event[0].data(), sizeof id);
      if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) succeeded = true;
      if (id & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) {
        failed = true;
      }
    }
    if (failed && !succeeded) {
      return what + ": it failed the CurveZMQ handshake, so the process at " + report.endpoint +
             " does not hold the key the broker lists for " + report.user;
    }
    return what;
  }

  zmq::socket_t socket;
  std::unique_ptr<zmq::socket_t> monitor;  // the socket's handshake events (CurveZMQ only)
  std::unordered_map<std::uint64_t, std::uint32_t> in_flight;
  Clock::time_point last_progress = Clock::now();
  SourceReport report;

 private:
  void watch_handshakes(zmq::context_t& ctx) {
    static std::atomic<std::uint64_t> next{0};
    const std::string address = "inproc://zshare-download-monitor-" + std::to_string(next++);
    constexpr int kEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(socket.handle(), address.c_str(), kEvents) != 0) return;  // a diagnosis only
    monitor = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
    monitor->set(zmq::sockopt::linger, 0);
    monitor->connect(address);
  }
};

std::string request(std::string_view op, std::uint64_t id, const Hash& cid, std::string_view extra_key,
                    std::uint64_t extra) {
  MapWriter w;
  w.put("v", transfer::kVersion).put("op", op).put("id", id).put("cid", to_hex(cid)).put(extra_key, extra);
  return w.finish();
}

// Waits up to `timeout` for one reply on `s`; nullopt on silence.
std::optional<std::vector<zmq::message_t>> receive(zmq::socket_t& s, std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(s, std::back_inserter(frames), zmq::recv_flags::dontwait)) return std::nullopt;
  return frames;
}

// "; alice stopped answering; bob answered FILE CHANGED (...)": what became of each source, for the user.
std::string why_dropped(const std::vector<std::unique_ptr<Connection>>& conns) {
  std::string why;
  for (const auto& c : conns) {
    if (!c->report.dropped_because.empty()) why += "; " + c->report.user + " " + c->report.dropped_because;
  }
  return why;
}

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  return n == 0 || (b[0] == 0 && std::memcmp(b, b + 1, n - 1) == 0);
}

}  // namespace

DownloadReport Downloader::run(const DownloadPlan& plan, PartFile& part, const ProgressFn& progress,
                               const OrderedSink& sink) {
  const auto started = Clock::now();
  DownloadReport report;
  report.size = plan.size;
  const std::uint64_t chunk_size = plan.chunk_size;
  // The plan comes from the broker's index: refuse what no honest publisher can produce before dividing by
  // it, allocating leaves for it or sizing a file for it.
  if (plan.size > 0 && (chunk_size < protocol::kMinChunkSize || chunk_size > protocol::kMaxChunkSize)) {
    report.error = "the index gives an impossible chunk size (" + std::to_string(chunk_size) + ") for this file";
    return report;
  }
  const std::uint64_t n = plan.size == 0 ? 0 : (plan.size + chunk_size - 1) / chunk_size;
  report.chunks = n;
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    report.error = "the index gives a file of more than 2^32 chunks";
    return report;
  }

  auto stopped = [&] { return options_.stop && options_.stop->load(); };
  std::vector<std::unique_ptr<Connection>> conns;
  for (const auto& s : plan.sources) conns.push_back(std::make_unique<Connection>(ctx_, s, options_.security));
  std::uint64_t done_bytes = 0;  // verified bytes in the file, resumed ones included
  auto finish = [&](bool ok, std::string error) {
    report.bytes_done = done_bytes;
    for (const auto& c : conns) report.sources.push_back(c->report);
    report.ok = ok;
    report.interrupted = !ok && stopped();
    if (report.interrupted) error = "interrupted";
    report.error = std::move(error);
    report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return report;
  };
  if (n == 0) return finish(true, "");

  // 1. The chunk hashes: every source is asked at once, and the first whose leaves hash up to the indexed
  //    root wins, so one dead source listed first costs nothing. Slow sources stay in for the chunks.
  std::uint64_t next_id = 1;
  std::vector<Hash> leaves;
  auto read_page = [&](const zmq::message_t& frame, std::uint64_t id, std::vector<Hash>& got) -> std::string {
    try {
      Message m = Message::decode(frame.data(), frame.size());
      MapView r = m.root();
      if (r.str("status", 64) != protocol::status::kOk) return "answered " + std::string(r.str("status", 64));
      if (r.uint("id") != id || r.uint("first") != got.size() || r.uint("chunks") != n) {
        return "sent a manifest that does not fit the index";
      }
      const auto bin = r.bin("leaves", transfer::kMaxLeavesPerManifest * 32);
      if (bin.size() % 32 != 0 || bin.empty()) return "sent malformed leaves";
      for (std::size_t i = 0; i + 32 <= bin.size(); i += 32) {
        Hash h{};
        std::memcpy(h.data(), bin.data() + i, 32);
        got.push_back(h);
      }
      return "";
    } catch (const BadRequest& e) {
      return std::string("sent an unreadable manifest: ") + e.what();
    }
  };
  // The pages after the first, from the source that sent the first.
  auto rest_of_manifest = [&](Connection& c, std::vector<Hash>& got) -> std::string {
    while (got.size() < n) {
      const auto id = next_id++;
      c.socket.send(zmq::buffer(request("MANIFEST", id, plan.cid, "first", got.size())), zmq::send_flags::none);
      auto frames = receive(c.socket, options_.source_timeout);
      if (!frames) return c.silence("did not answer MANIFEST");
      if (auto why = read_page(frames->front(), id, got); !why.empty()) return why;
    }
    return got.size() == n && merkle_root(got) == plan.root ? "" : "sent leaves that do not match the indexed root";
  };
  std::vector<std::uint64_t> asked(conns.size());
  for (std::size_t k = 0; k < conns.size(); ++k) {
    if (!conns[k]->alive()) continue;
    asked[k] = next_id++;
    conns[k]->socket.send(zmq::buffer(request("MANIFEST", asked[k], plan.cid, "first", 0)), zmq::send_flags::dontwait);
  }
  const auto manifest_deadline = Clock::now() + options_.source_timeout;
  while (leaves.empty()) {
    std::vector<zmq::pollitem_t> items;
    std::vector<std::size_t> waiting;
    for (std::size_t k = 0; k < conns.size(); ++k) {
      if (!conns[k]->alive() || asked[k] == 0) continue;
      items.push_back({conns[k]->socket.handle(), 0, ZMQ_POLLIN, 0});
      waiting.push_back(k);
    }
    const auto now = Clock::now();
    if (items.empty() || now >= manifest_deadline || stopped()) break;
    const auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(manifest_deadline - now) +
                                   std::chrono::milliseconds(1), std::chrono::milliseconds(100));
    zmq::poll(items.data(), items.size(), wait);
    for (std::size_t i = 0; i < items.size() && leaves.empty(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      auto& c = *conns[waiting[i]];
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(c.socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
      std::vector<Hash> got;
      std::string why = read_page(frames.front(), asked[waiting[i]], got);
      asked[waiting[i]] = 0;
      if (why.empty()) why = rest_of_manifest(c, got);
      if (!why.empty()) {
        c.report.dropped_because = why;
        continue;
      }
      leaves = std::move(got);
    }
  }
  if (leaves.empty()) {
    if (stopped()) return finish(false, "");
    report.sources_failed = true;
    for (std::size_t k = 0; k < conns.size(); ++k) {
      if (conns[k]->alive() && asked[k] != 0) {
        conns[k]->report.dropped_because = conns[k]->silence("did not answer MANIFEST");
      }
    }
    return finish(false, "no source gave a manifest matching the index" + why_dropped(conns));
  }

  // 2. What an earlier, interrupted run left in the .part and is still good.
  std::vector<std::uint8_t> done(n, 0);
  std::uint64_t done_count = 0;
  auto chunk_bytes = [&](std::uint64_t i) { return std::min(chunk_size, plan.size - i * chunk_size); };
  if (part.existed()) {
    std::vector<char> buf(chunk_size);
    for (std::uint64_t i = 0; i < n && !stopped(); ++i) {
      const auto len = chunk_bytes(i);
      if (part.read(buf.data(), len, i * chunk_size) && sha256(buf.data(), len) == leaves[i]) {
        done[i] = 1;
        ++done_count;
        done_bytes += len;
      }
    }
    report.chunks_resumed = done_count;
    report.bytes_resumed = done_bytes;
  }
  const bool fresh_part = !part.existed();  // a fresh sparse .part already reads zeros: zero chunks need no write

  // The whole file's SHA-256 must be the content id: hash the verified prefix as it grows, from the chunk in
  // hand or, for chunks that arrived out of order, from the .part (the page cache has them).
  Sha256Stream whole;
  std::uint64_t prefix = 0;
  std::vector<char> reread(chunk_size);
  auto advance_prefix = [&](std::uint64_t in_hand_index, const void* in_hand) {
    while (prefix < n && done[prefix]) {
      const auto len = chunk_bytes(prefix);
      const void* bytes = in_hand;
      if (prefix != in_hand_index) {
        if (!part.read(reread.data(), len, prefix * chunk_size)) {
          throw DestinationError("cannot read back what was written to " + (part.named() ? part.path() : "the temporary file"));
        }
        bytes = reread.data();
      }
      whole.update(bytes, len);
      if (sink) sink(bytes, len);
      ++prefix;
    }
  };
  advance_prefix(n, nullptr);

  // 3. Credit-based transfer from every live source at once.
  std::vector<std::int32_t> avoid(n, -1);   // a source that sent this chunk bad, when there is a choice
  std::vector<std::uint8_t> in_flight(n, 0);
  std::deque<std::uint32_t> retry;
  std::uint64_t next_fresh = 0;
  auto live_count = [&] {
    return static_cast<std::size_t>(std::count_if(conns.begin(), conns.end(), [](auto& c) { return c->alive(); }));
  };
  auto drop = [&](Connection& c, std::string why) {
    c.report.dropped_because = std::move(why);
    for (const auto& [id, index] : c.in_flight) {
      in_flight[index] = 0;
      retry.push_front(index);
    }
    c.in_flight.clear();
    c.close();
  };
  auto pick = [&](std::int32_t who) -> std::optional<std::uint32_t> {
    retry.erase(std::remove_if(retry.begin(), retry.end(), [&](auto i) { return done[i] || in_flight[i]; }),
                retry.end());
    const bool choice = live_count() > 1;
    for (auto it = retry.begin(); it != retry.end(); ++it) {
      if (choice && avoid[*it] == who) continue;
      const auto index = *it;
      retry.erase(it);
      return index;
    }
    while (next_fresh < n && (done[next_fresh] || in_flight[next_fresh])) ++next_fresh;
    if (next_fresh < n) return static_cast<std::uint32_t>(next_fresh++);
    return std::nullopt;
  };

  // The download cap: a chunk is asked for only once its bytes are in the bucket (which holds a tenth of a second,
  // or one chunk when that is more), so the mean rate never exceeds the cap.
  const double cap = static_cast<double>(options_.rate_limit);
  ByteBucket bucket(cap, std::max(cap / 10, static_cast<double>(chunk_size)));
  auto may_ask = [&](std::uint64_t bytes) {
    if (options_.rate_limit == 0) return true;
    bucket.refill();
    return bucket.try_take(static_cast<double>(bytes));
  };
  auto report_progress = [&] {
    report.bytes_done = done_bytes;
    if (progress) progress(Progress{"", done_bytes, plan.size, done_bytes - report.bytes_resumed, live_count()});
  };

  auto last_progress_call = Clock::now();
  while (done_count < n) {
    if (stopped()) return finish(false, "");
    if (live_count() == 0) {
      report.sources_failed = true;
      return finish(false, "no source left: " + std::to_string(done_count) + " of " + std::to_string(n) +
                               " chunks verified" + why_dropped(conns));
    }
    // Top up the windows one request per source per round, so the chunks spread over every source even when
    // the file has fewer chunks than one window.
    for (bool granted = true; granted;) {
      granted = false;
      for (std::size_t k = 0; k < conns.size(); ++k) {
        auto& c = *conns[k];
        if (!c.alive() || c.in_flight.size() >= options_.window) continue;
        if (!may_ask(chunk_size)) break;
        auto index = pick(static_cast<std::int32_t>(k));
        if (!index) break;
        const auto id = next_id++;
        if (!c.socket.send(zmq::buffer(request("CHUNK", id, plan.cid, "index", *index)), zmq::send_flags::dontwait)) {
          retry.push_front(*index);
          continue;
        }
        if (c.in_flight.empty()) c.last_progress = Clock::now();
        c.in_flight.emplace(id, *index);
        in_flight[*index] = 1;
        granted = true;
      }
    }
    std::vector<zmq::pollitem_t> items;
    std::vector<std::size_t> polled;  // indices into conns, parallel to items
    for (std::size_t k = 0; k < conns.size(); ++k) {
      if (!conns[k]->alive()) continue;
      items.push_back({conns[k]->socket.handle(), 0, ZMQ_POLLIN, 0});
      polled.push_back(k);
    }
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    const auto now = Clock::now();
    for (std::size_t p = 0; p < polled.size(); ++p) {
      auto& c = *conns[polled[p]];
      for (int burst = 0; burst < 64 && (items[p].revents & ZMQ_POLLIN) && c.alive(); ++burst) {
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(c.socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
        std::optional<Message> reply;  // its `data` points into frames[0]
        std::uint64_t id = 0;
        std::string status, sentence;
        try {
          if (frames.size() != 1) throw BadRequest("a reply in several frames");
          DecodeLimits in_place;
          in_place.bins_in_place = true;
          in_place.bin = chunk_size;
          reply = Message::decode(frames[0].data(), frames[0].size(), in_place);
          id = reply->root().uint("id");
          status = std::string(reply->root().str("status", 64));
          if (auto e = reply->root().opt_str("error", 1024)) sentence = std::string(*e);
        } catch (const BadRequest&) {
          drop(c, "sent an unreadable reply");
          break;
        }
        auto it = c.in_flight.find(id);
        if (it == c.in_flight.end()) continue;  // a reply we no longer wait for
        const std::uint32_t index = it->second;
        c.in_flight.erase(it);
        in_flight[index] = 0;
        if (status != protocol::status::kOk) {
          retry.push_front(index);
          drop(c, "answered " + status + (sentence.empty() ? "" : " (" + sentence + ")"));
          break;
        }
        c.last_progress = now;
        const auto len = chunk_bytes(index);
        const auto* field = reply->root().find("data");
        const std::string_view data = field && field->type == msgpack::type::BIN
                                          ? std::string_view(field->via.bin.ptr, field->via.bin.size)
                                          : std::string_view();
        const bool good = field && data.size() == len && sha256(data.data(), len) == leaves[index];
        report.bytes_received += data.size();
        if (!good) {
          ++report.bad_chunks;
          avoid[index] = static_cast<std::int32_t>(polled[p]);
          retry.push_front(index);
          if (++c.report.bad_chunks > options_.max_bad_chunks_per_source) {
            drop(c, "sent " + std::to_string(c.report.bad_chunks) + " chunks that failed verification");
          }
          continue;
        }
        if (done[index]) continue;
        if (!(fresh_part && all_zero(data.data(), len))) part.write(data.data(), len, index * chunk_size);
        done[index] = 1;
        ++done_count;
        done_bytes += len;
        ++c.report.chunks;
        advance_prefix(index, data.data());
      }
      if (c.alive() && !c.in_flight.empty() && now - c.last_progress > options_.source_timeout) {
        drop(c, c.silence("stopped answering"));
      }
    }
    if (now - last_progress_call > std::chrono::milliseconds(200)) {
      report_progress();
      last_progress_call = now;
    }
  }
  report_progress();
  if (whole.finish() != plan.cid) {
    return finish(false, "every chunk matched the published tree, but the whole file's SHA-256 is not the content id: "
                         "the publisher's index entry is inconsistent");
  }
  return finish(true, "");
}

}  // namespace zshare::peer
