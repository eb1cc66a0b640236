// download_session.cpp: the steps of DownloadSession::run. The transfer loop: top up each source's window, poll
// the sockets and the pipeline's eventfd, hand chunk replies to the pipeline, take what it verified, drop sources
// that go silent or send bad data (their chunks go to the others). A chunk counts against its source's window
// until the pipeline is done with it, so memory stays within sources x window x chunk size.
#include "peer/download_session.hpp"

#include "common/codec.hpp"
#include "common/content_hash.hpp"
#include "common/protocol.hpp"
#include "common/transfer_protocol.hpp"
#include "peer/manifest_fetch.hpp"
#include "zshare/protocol_ops.hpp"

#include <zmq_addon.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>

namespace zshare::peer {

using Outcome = ChunkScheduler::Outcome;

DownloadReport Downloader::run(const DownloadPlan& plan, PartFile& part, const ProgressFn& progress,
                               const OrderedSink& sink) {
  return DownloadSession(ctx_, options_, plan, part, progress, sink).run();
}

DownloadSession::DownloadSession(zmq::context_t& ctx, const DownloadOptions& options, const DownloadPlan& plan,
                                 PartFile& part, const ProgressFn& progress, const OrderedSink& sink)
    : ctx_(ctx),
      options_(options),
      plan_(plan),
      part_(part),
      progress_(progress),
      sink_(sink),
      // a chunk is asked for only once its bytes are in the bucket, which holds a tenth of a second or one chunk
      bucket_(static_cast<double>(options.rate_limit),
              std::max(static_cast<double>(options.rate_limit) / 10, static_cast<double>(plan.chunk_size))) {}

DownloadReport DownloadSession::run() {
  report_.size = plan_.size;
  if (auto impossible = check_plan()) return finish(false, *impossible);
  chunks_ = chunk_count(plan_.size, plan_.chunk_size);
  report_.chunks = chunks_;
  if (chunks_ == 0) return finish(true, "");
  height_ = layer_height(plan_.size, plan_.chunk_size);
  // The window counts requests; large chunks (any one holder's index entry can ask for 16 MiB) get fewer of
  // them, so a source never has more than window x 1 MiB (32 MiB by default) in flight.
  window_ = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
      std::uint64_t{options_.window} * transfer::kWindowUnitBytes / plan_.chunk_size, 1, options_.window));
  for (const auto& s : plan_.sources) {
    links_.push_back(std::make_unique<SourceLink>(ctx_, s, options_, plan_.chunk_size, window_));
  }
  await_dialled_sources();
  if (!fetch_manifest()) return finish(false, report_.error);
  scheduler_ = std::make_unique<ChunkScheduler>(chunks_, links_.size());
  const bool fresh_part = !part_.existed();  // a fresh sparse .part already reads zeros
  resume();
  pipeline_ = std::make_unique<ChunkPipeline>(layer_, height_, plan_.chunk_size, part_, fresh_part,
                                              options_.hash_threads);
  stream_in_order();
  if (!transfer()) return finish(false, report_.error);
  report_progress();
  return finish(true, "");
}

// Sources asked to dial out to us (behind NAT) are waited for together, until each connection is up or
// options_.rendezvous_timeout has passed; one that has not come by then is dropped, saying so.
void DownloadSession::await_dialled_sources() {
  const auto until = Clock::now() + options_.rendezvous_timeout;
  for (;;) {
    std::vector<zmq::pollitem_t> items;
    for (auto& l : links_) {
      if (l->waiting() && !l->ready()) items.push_back({l->socket.handle(), 0, ZMQ_POLLOUT, 0});
    }
    if (items.empty() || stopped()) return;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) break;
    zmq::poll(items.data(), items.size(), std::min(left, std::chrono::milliseconds(100)));
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%g", std::chrono::duration<double>(options_.rendezvous_timeout).count());
  for (auto& l : links_) {
    if (l->waiting()) {
      l->drop("is behind NAT or a firewall and did not dial out to us within " + std::string(seconds) +
              " s (it may be unable to reach us, and there is no relay, or the relay refused)");
    }
  }
}

// The plan comes from the broker's index: refuse what no honest publisher can produce before dividing by it,
// allocating a layer for it or sizing a file for it.
std::optional<std::string> DownloadSession::check_plan() {
  if (plan_.size > 0 && !valid_chunk_size(plan_.chunk_size)) {
    return "the index gives an impossible chunk size (" + std::to_string(plan_.chunk_size) + ") for this file";
  }
  if (plan_.size > 0 && chunk_count(plan_.size, plan_.chunk_size) > std::numeric_limits<std::uint32_t>::max()) {
    return "the index gives a file of more than 2^32 chunks";
  }
  if ((plan_.size == 0) != (plan_.cid == Hash{})) {
    return "the index gives a size that does not fit the content id (only the empty file's id is all zeros)";
  }
  return std::nullopt;
}

bool DownloadSession::fetch_manifest() {
  LayerRequest want{plan_.cid, plan_.chunk_size, chunks_, height_, options_.source_timeout};
  layer_ = fetch_chunk_layer(links_, want, next_id_, [this] { return stopped(); });
  if (!layer_.empty() || stopped()) return !layer_.empty();
  report_.sources_failed = true;
  // Said plainly when nobody answered at all: that is a network matter (NAT, a firewall), not a corrupt file.
  const bool none_answered = std::all_of(links_.begin(), links_.end(), [](const auto& l) { return !l->answered(); });
  report_.error = (none_answered ? "no source answered" : "no source gave a chunk layer matching the content id") +
                  why_dropped(links_);
  return false;
}

void DownloadSession::resume() {
  if (!part_.existed()) return;
  ChunkHasher hasher;
  std::vector<char> buf(plan_.chunk_size);
  for (std::uint64_t i = 0; i < chunks_ && !stopped(); ++i) {
    const auto len = chunk_bytes(i);
    if (part_.read(buf.data(), len, i * plan_.chunk_size) && hasher.node(buf.data(), len, height_) == layer_[i]) {
      scheduler_->mark_done(static_cast<std::uint32_t>(i));
      done_bytes_ += len;
    }
  }
  report_.chunks_resumed = scheduler_->done_count();
  report_.bytes_resumed = done_bytes_;
}

bool DownloadSession::transfer() {
  auto last_progress_call = Clock::now();
  while (!scheduler_->complete()) {
    if (stopped()) return false;
    if (live_count() == 0) {
      report_.sources_failed = true;
      report_.error = "no source left: " + std::to_string(scheduler_->done_count()) + " of " +
                      std::to_string(chunks_) + " chunks verified" + why_dropped(links_);
      return false;
    }
    top_up();
    std::vector<zmq::pollitem_t> items{{nullptr, pipeline_->wake_fd(), ZMQ_POLLIN, 0}};
    std::vector<std::size_t> polled;  // indices into links_, parallel to items[1..]
    for (std::size_t k = 0; k < links_.size(); ++k) {
      if (!links_[k]->alive()) continue;
      items.push_back({links_[k]->socket.handle(), 0, ZMQ_POLLIN, 0});
      polled.push_back(k);
    }
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    const auto now = Clock::now();
    for (std::size_t p = 0; p < polled.size(); ++p) {
      if (items[p + 1].revents & ZMQ_POLLIN) receive(polled[p], now);
      auto& link = *links_[polled[p]];
      if (link.alive() && !link.in_flight.empty() && now - link.last_progress > options_.source_timeout) {
        drop(polled[p], link.silence("stopped answering"));
      } else if (link.alive() && link.in_flight.empty() && link.blocked_since &&
                 now - *link.blocked_since > options_.source_timeout) {
        drop(polled[p], "could not be asked for anything: the connection it dialled to us closed");
      }
    }
    take_checked();
    if (now - last_progress_call > std::chrono::milliseconds(200)) {
      report_progress();
      last_progress_call = now;
    }
  }
  return true;
}

// One request per source per round, so the chunks spread over every source even when the file has fewer chunks
// than one window.
void DownloadSession::top_up() {
  for (bool granted = true; granted;) {
    granted = false;
    for (std::size_t k = 0; k < links_.size(); ++k) {
      auto& link = *links_[k];
      if (!link.alive() || scheduler_->outstanding(k) >= window_) continue;
      if (!may_ask()) return;
      auto index = scheduler_->assign(k, live_count() > 1);
      if (!index) continue;  // nothing for this one (what is left avoids it): perhaps for the next
      const auto id = next_id_++;
      if (!link.send(transfer_request(transfer::op::kChunk, id, plan_.cid, plan_.chunk_size, "index", *index))) {
        scheduler_->release(k, *index, Outcome::kLost);
        continue;
      }
      if (link.in_flight.empty()) link.last_progress = Clock::now();
      link.in_flight.emplace(id, *index);
      granted = true;
    }
  }
}

void DownloadSession::receive(std::size_t source, Clock::time_point now) {
  auto& link = *links_[source];
  for (int burst = 0; burst < 64 && link.alive(); ++burst) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(link.socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
    if (frames.size() != 1) {
      drop(source, "sent a reply in several frames");
      break;
    }
    on_chunk_reply(source, std::move(frames[0]), now);
  }
}

void DownloadSession::on_chunk_reply(std::size_t source, zmq::message_t frame, Clock::time_point now) {
  auto& link = *links_[source];
  std::uint64_t id = 0;
  std::string status, sentence;
  const char* data = nullptr;
  std::size_t size = 0;
  bool has_data = false;
  try {
    DecodeLimits in_place;
    in_place.bins_in_place = true;  // `data` stays in the frame: the pipeline hashes and writes it from there
    // A chunk, or a MANIFEST page another source answered after the first (a reply no longer waited for).
    in_place.bin = std::max<std::size_t>(plan_.chunk_size, transfer::kMaxLeavesPerManifest * 32);
    const Message reply = Message::decode(frame.data(), frame.size(), in_place);
    id = reply.root().uint("id");
    status = std::string(reply.root().str("status", 64));
    if (auto e = reply.root().opt_str("error", 1024)) sentence = std::string(*e);
    if (const auto* field = reply.root().find("data"); field && field->type == msgpack::type::BIN) {
      has_data = true;
      data = field->via.bin.ptr;
      size = field->via.bin.size;
    }
  } catch (const BadRequest&) {
    drop(source, "sent an unreadable reply");
    return;
  }
  auto it = link.in_flight.find(id);
  if (it == link.in_flight.end()) return;  // a reply we no longer wait for
  const std::uint32_t index = it->second;
  link.in_flight.erase(it);
  if (status != protocol::status::kOk) {
    scheduler_->release(source, index, Outcome::kLost);
    drop(source, "answered " + status + (sentence.empty() ? "" : " (" + sentence + ")"));
    return;
  }
  link.last_progress = now;
  report_.bytes_received += size;
  if (scheduler_->done(index)) {  // another source's copy was verified meanwhile
    scheduler_->release(source, index, Outcome::kUnused);
    return;
  }
  if (!has_data || size != chunk_bytes(index)) {
    checked(ChunkChecked{source, index, false});  // a bad chunk like any other
    return;
  }
  const auto offset = static_cast<std::size_t>(data - static_cast<const char*>(frame.data()));
  pipeline_->submit(ChunkJob{source, index, std::move(frame), offset, size});
}

void DownloadSession::take_checked() {
  for (const ChunkChecked& c : pipeline_->collect()) checked(c);
  stream_in_order();
}

void DownloadSession::checked(const ChunkChecked& c) {
  auto& link = *links_[c.source];
  if (c.good) {
    if (!scheduler_->done(c.index)) {
      done_bytes_ += chunk_bytes(c.index);
      ++link.report.chunks;
    }
    scheduler_->release(c.source, c.index, Outcome::kVerified);
    return;
  }
  ++report_.bad_chunks;
  scheduler_->release(c.source, c.index, Outcome::kBad);
  if (++link.report.bad_chunks > options_.max_bad_chunks_per_source && link.alive()) {
    drop(c.source, "sent " + std::to_string(link.report.bad_chunks) + " chunks that failed verification");
  }
}

// Failover: the source's requests in flight go back to the queue, for the others. Chunks of it the pipeline
// still holds come out of it as usual (a good one is still good).
void DownloadSession::drop(std::size_t source, std::string why) {
  auto& link = *links_[source];
  for (const auto& [id, index] : link.in_flight) scheduler_->release(source, index, Outcome::kLost);
  link.in_flight.clear();
  link.drop(std::move(why));
}

// Standard output needs the bytes in file order: the verified prefix is read back from the .part (the page cache
// has it) as it grows.
void DownloadSession::stream_in_order() {
  if (!sink_) return;
  std::vector<char> buf;
  while (streamed_ < chunks_ && scheduler_->done(static_cast<std::uint32_t>(streamed_))) {
    const auto len = chunk_bytes(streamed_);
    buf.resize(len);
    if (!part_.read(buf.data(), len, streamed_ * plan_.chunk_size)) {
      throw DestinationError("cannot read back what was written to " +
                             (part_.named() ? part_.path() : std::string("the temporary file")));
    }
    sink_(buf.data(), len);
    ++streamed_;
  }
}

bool DownloadSession::may_ask() {
  if (options_.rate_limit == 0) return true;
  bucket_.refill();
  return bucket_.try_take(static_cast<double>(plan_.chunk_size));
}

void DownloadSession::report_progress() {
  report_.bytes_done = done_bytes_;
  if (progress_) progress_(Progress{"", done_bytes_, plan_.size, done_bytes_ - report_.bytes_resumed, live_count()});
}

std::size_t DownloadSession::live_count() const {
  return static_cast<std::size_t>(std::count_if(links_.begin(), links_.end(), [](auto& l) { return l->alive(); }));
}

std::uint64_t DownloadSession::chunk_bytes(std::uint64_t index) const {
  return std::min<std::uint64_t>(plan_.chunk_size, plan_.size - index * plan_.chunk_size);
}

DownloadReport DownloadSession::finish(bool ok, std::string error) {
  report_.bytes_done = done_bytes_;
  for (const auto& l : links_) report_.sources.push_back(l->report);
  report_.ok = ok;
  report_.interrupted = !ok && stopped();
  report_.error = report_.interrupted ? "interrupted" : std::move(error);
  report_.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  return report_;
}

}  // namespace zshare::peer
