// manifest_fetch.cpp: MANIFEST pages (transfer.md): the first page from every source at once, the rest from the
// one that answered first. A page is checked against what the index says (id, first, chunk count) as it comes;
// the whole layer against the content id at the end.
#include "peer/manifest_fetch.hpp"

#include "common/codec.hpp"
#include "common/content_hash.hpp"
#include "common/protocol.hpp"
#include "common/transfer_protocol.hpp"
#include "zshare/protocol_ops.hpp"

#include <zmq_addon.hpp>

#include <algorithm>
#include <cstring>
#include <optional>

namespace zshare::peer {

namespace {

// Appends a page's nodes to `got`; the reason it is refused otherwise.
std::string read_page(const zmq::message_t& frame, std::uint64_t id, const LayerRequest& want, std::vector<Hash>& got) {
  try {
    Message m = Message::decode(frame.data(), frame.size());
    MapView r = m.root();
    if (r.str("status", 64) != protocol::status::kOk) {
      std::string why = "answered " + std::string(r.str("status", 64));
      if (auto e = r.opt_str("error", 1024)) why += " (" + std::string(*e) + ")";
      return why;
    }
    if (r.uint("id") != id || r.uint("first") != got.size() || r.uint("chunks") != want.chunks ||
        r.uint("chunk_size") != want.chunk_size) {
      return "sent a manifest that does not fit the index";
    }
    // Every page is full but the last: a source cannot drip the layer a node at a time.
    const auto bin = r.bin("layer", transfer::kMaxLeavesPerManifest * 32);
    if (bin.size() != 32 * std::min<std::uint64_t>(want.chunks - got.size(), transfer::kMaxLeavesPerManifest)) {
      return "sent a malformed chunk layer";
    }
    for (std::size_t i = 0; i + 32 <= bin.size(); i += 32) {
      Hash h{};
      std::memcpy(h.data(), bin.data() + i, 32);
      got.push_back(h);
    }
    return "";
  } catch (const BadRequest& e) {
    return std::string("sent an unreadable manifest: ") + e.what();
  }
}

// Waits for `link`'s next reply up to `timeout`, in slices, so a raised stop flag is seen within 100 ms.
std::optional<std::vector<zmq::message_t>> next_reply(SourceLink& link, std::chrono::milliseconds timeout,
                                                      const std::function<bool()>& stopped) {
  const auto deadline = SourceLink::Clock::now() + timeout;
  while (!stopped()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SourceLink::Clock::now());
    if (left.count() <= 0) break;
    if (auto frames = link.receive(std::min(left, std::chrono::milliseconds(100)))) return frames;
  }
  return std::nullopt;
}

// The pages after the first, from the source that sent the first; then the whole layer against the content id.
std::string rest_of_layer(SourceLink& link, const LayerRequest& want, std::uint64_t& next_id, std::vector<Hash>& got,
                          const std::function<bool()>& stopped) {
  while (got.size() < want.chunks) {
    const auto id = next_id++;
    link.send(transfer_request(transfer::op::kManifest, id, want.cid, want.chunk_size, "first", got.size()));
    auto frames = next_reply(link, want.timeout, stopped);
    if (!frames) return stopped() ? "interrupted" : link.silence("did not answer MANIFEST");
    if (auto why = read_page(frames->front(), id, want, got); !why.empty()) return why;
  }
  return layer_root(got, want.height) == want.cid ? "" : "sent a chunk layer that does not match the content id";
}

}  // namespace

std::vector<Hash> fetch_chunk_layer(std::vector<std::unique_ptr<SourceLink>>& links, const LayerRequest& want,
                                    std::uint64_t& next_id, const std::function<bool()>& stopped) {
  std::vector<std::uint64_t> asked(links.size(), 0);
  for (std::size_t k = 0; k < links.size(); ++k) {
    if (!links[k]->alive()) continue;
    asked[k] = next_id++;
    links[k]->send(transfer_request(transfer::op::kManifest, asked[k], want.cid, want.chunk_size, "first", 0));
  }
  // The deadline is for the first pages; one source's slow later pages do not spend it for the others: once it
  // has passed, what every other source has answered meanwhile is still read (one look without waiting).
  const auto deadline = SourceLink::Clock::now() + want.timeout;
  std::vector<Hash> layer;
  while (layer.empty()) {
    std::vector<zmq::pollitem_t> items;
    std::vector<std::size_t> waiting;
    for (std::size_t k = 0; k < links.size(); ++k) {
      if (!links[k]->alive() || asked[k] == 0) continue;
      items.push_back({links[k]->socket.handle(), 0, ZMQ_POLLIN, 0});
      waiting.push_back(k);
    }
    const auto now = SourceLink::Clock::now();
    if (items.empty() || stopped()) break;
    const bool last_look = now >= deadline;
    const auto wait = last_look ? std::chrono::milliseconds(0)
                                : std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                                               std::chrono::milliseconds(1), std::chrono::milliseconds(100));
    if (zmq::poll(items.data(), items.size(), wait) == 0 && last_look) break;
    for (std::size_t i = 0; i < items.size() && layer.empty(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      auto& link = *links[waiting[i]];
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(link.socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
      std::vector<Hash> got;
      std::string why = read_page(frames.front(), asked[waiting[i]], want, got);
      asked[waiting[i]] = 0;
      if (why.empty()) why = rest_of_layer(link, want, next_id, got, stopped);
      if (!why.empty()) {
        link.drop(why);
        continue;
      }
      layer = std::move(got);
    }
  }
  if (layer.empty() && !stopped()) {
    for (std::size_t k = 0; k < links.size(); ++k) {
      if (links[k]->alive() && asked[k] != 0) links[k]->drop(links[k]->silence("did not answer MANIFEST"));
    }
  }
  return layer;
}

}  // namespace zshare::peer
