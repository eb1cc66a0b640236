// seeder.cpp: one thread, a plain loop: poll, take a request, answer it. The ROUTER fair-queues requests
// across downloaders, so a slow one never stalls the others; a full reply queue drops the reply (the
// downloader asks again) instead of blocking. Files are opened per request with O_NOFOLLOW and checked
// against their published FileIdentity (size, mtime, ctime, inode), so a file swapped for a symlink or changed on
// disk is never served, and the refusal names which happened. The upload log costs one map update per chunk served.
#include "peer/seeder.hpp"

#include "common/codec.hpp"
#include "common/content_hash.hpp"
#include "common/protocol.hpp"
#include "common/transfer_protocol.hpp"
#include "common/validate.hpp"
#include "peer/file_identity.hpp"
#include "zshare/protocol_ops.hpp"

#include <zmq_addon.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace zshare::peer {

namespace st = protocol::status;

namespace {

MapWriter header(std::string_view op, std::uint64_t id, std::string_view status) {
  MapWriter w;
  w.put("v", transfer::kVersion).put("op", op).put("id", id).put("status", status);
  return w;
}

zmq::message_t failure(std::string_view op, std::uint64_t id, std::string_view status, const std::string& sentence) {
  return zmq::message_t(header(op, id, status).put("error", sentence).finish());
}

constexpr int kShortRead = -1;  // read_at: the file ended before the chunk did

// Reads exactly `size` bytes at `offset`: 0, an errno, or kShortRead.
int read_at(int fd, void* buf, std::size_t size, std::uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return kShortRead;
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

// Why a published file cannot be served as it was hashed.
struct Refusal {
  std::string_view status;
  std::string sentence;
};

Refusal removed(const SharedContent& c) { return {st::kFileNotExist, c.name + " was removed from the share"}; }

Refusal changed(const SharedContent& c) {
  return {transfer::status::kFileChanged,
          c.name + " changed on disk since it was published; it will be re-published with its new content id"};
}

Refusal not_regular(const SharedContent& c) {
  return {transfer::status::kFileChanged,
          c.name + " is no longer a regular file in the share (a link, folder or device took its place); "
                   "it is not served"};
}

Refusal unreadable(const SharedContent& c, const char* what, int err) {
  return {st::kInternalError, "cannot " + std::string(what) + " " + c.name + ": " + std::strerror(err)};
}

// A descriptor closed when it goes out of scope.
struct OpenFile {
  int fd = -1;
  OpenFile() = default;
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens the published file and checks it is still what was hashed: there, a regular file, the same FileIdentity
// (size, mtime, ctime, inode: a file replaced by one of the same size and mtime has another inode or ctime). A chmod
// or chown moves ctime too: such a file is refused until the rescan its IN_ATTRIB causes has hashed it again and
// put it back in the catalog under the same content id. Never follows a symlink; O_NONBLOCK so a FIFO put in the
// file's place cannot stall the seeder (regular files ignore it). Nothing when `file` may be served.
std::optional<Refusal> open_as_published(const SharedContent& c, OpenFile& file) {
  file.fd = ::open(c.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (file.fd < 0) {
    const int err = errno;
    if (err == ENOENT) return removed(c);
    if (err == ELOOP) return not_regular(c);  // O_NOFOLLOW met a symlink
    return unreadable(c, "open", err);
  }
  struct stat sb {};
  if (::fstat(file.fd, &sb) != 0) return unreadable(c, "stat", errno);
  if (!S_ISREG(sb.st_mode)) return not_regular(c);
  if (identity_of(sb) != c.identity || static_cast<std::uint64_t>(sb.st_size) != c.hashes.size) return changed(c);
  return std::nullopt;
}

// Who sent `request`: its CurveZMQ public key when a ZAP handler named it (User-Id), and its address.
std::string downloader_of(const zmq::message_t& request) {
  const char* key = zmq_msg_gets(request.handle(), "User-Id");
  const char* address = zmq_msg_gets(request.handle(), "Peer-Address");
  std::string who = key && *key ? std::string(key) : std::string("an unnamed peer");
  if (address && *address) who += std::string(" at ") + address;
  return who;
}

// Downloaders ask for chunks in order, several at once: have the kernel read the next ones while this one is sent.
void read_ahead(int fd, std::uint64_t offset, std::size_t chunk) {
  ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(chunk) * 4, POSIX_FADV_WILLNEED);
}

constexpr std::chrono::milliseconds kUploadSweep{250};  // how often idle uploads are looked for

}  // namespace

Seeder::Seeder(zmq::context_t& ctx, const std::string& bind_address, const ContentCatalog& catalog,
               SeederOptions options)
    : catalog_(catalog),
      options_(options),
      router_(ctx, zmq::socket_type::router),
      // at most a tenth of a second's worth ahead of the cap
      upload_cap_(static_cast<double>(options.rate_limit), static_cast<double>(options.rate_limit) / 10) {
  router_.set(zmq::sockopt::linger, 0);
  router_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(transfer::kMaxRequestBytes * 4));
  router_.set(zmq::sockopt::router_mandatory, true);
  router_.set(zmq::sockopt::sndhwm, transfer::kSeederSendHwm);
  options_.security.serve(router_);
  // A port this process just closed (DISCONNECT then CONNECT) is released by libzmq's I/O thread a moment
  // later: retry EADDRINUSE briefly instead of failing the CONNECT.
  for (int attempt = 0;; ++attempt) {
    try {
      router_.bind(bind_address);
      break;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || attempt >= 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  bound_ = router_.get(zmq::sockopt::last_endpoint);
  thread_ = std::thread([this] { run(); });  // the socket is used only by this thread from here on
}

Seeder::~Seeder() {
  stop_ = true;
  thread_.join();
  flush_uploads(true);  // the thread is gone: its upload table is ours now
}

SeederStats Seeder::stats() const {
  return SeederStats{chunks_served_.load(), bytes_served_.load(), refused_.load(), dropped_.load()};
}

void Seeder::run() {
  while (!stop_) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(100));
      if (dial_pending_.load()) connect_dialled();
      close_idle_dialled(false);
      flush_uploads(false);
      if (!(items[0].revents & ZMQ_POLLIN)) {
        send_budget_.sweep();  // idle: forget downloaders with nothing queued
        continue;
      }
      for (int i = 0; i < 64 && !stop_; ++i) {  // a burst, then re-check stop
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
        serve(frames);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) return;  // the context is going away
      std::cerr << "zshare-peer: seeder stopped: " << e.what() << std::endl;
      return;  // never let an exception escape the thread (std::terminate)
    } catch (const std::exception& e) {
      std::cerr << "zshare-peer: seeder stopped: " << e.what() << std::endl;
      return;
    }
  }
}

void Seeder::dial(std::vector<DialOut> outs) {
  {
    std::lock_guard<std::mutex> lock(dial_mutex_);
    for (auto& o : outs) to_dial_.push_back(std::move(o));
  }
  dial_pending_.store(true);
}

// The same ROUTER that listens also connects out, still as the CurveZMQ server: the downloader checks our key as
// on any link. The connection gets a routing id of ours, so its requests tell us it is in use.
void Seeder::connect_dialled() {
  std::vector<DialOut> outs;
  {
    std::lock_guard<std::mutex> lock(dial_mutex_);
    outs.swap(to_dial_);
    dial_pending_.store(false);
  }
  for (const auto& o : outs) {
    const std::string id = dial_routing_id();
    try {
      router_.set(zmq::sockopt::connect_routing_id, id);
      set_socks_proxy(router_, o.proxy);
      router_.connect(o.endpoint);
      dialled_[id] = Dialled{o.endpoint, std::chrono::steady_clock::now()};
    } catch (const zmq::error_t& e) {
      std::cerr << "zshare-peer: cannot dial out to a downloader behind NAT (" << o.endpoint << "): " << e.what()
                << std::endl;
    }
  }
  set_socks_proxy(router_, "");
}

// Unguessable: a client of our ROUTER may claim any routing id, and libzmq 4.3 aborts the process when a connection
// we make out takes an id a connected peer already holds (router.cpp: !has_out_pipe).
std::string Seeder::dial_routing_id() {
  unsigned char raw[16];
  std::random_device entropy;
  for (auto& b : raw) b = static_cast<unsigned char>(entropy());
  static const char* kHex = "0123456789abcdef";
  std::string id = "dial-";
  for (unsigned char b : raw) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

void Seeder::close_idle_dialled(bool all) {
  if (dialled_.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  for (auto it = dialled_.begin(); it != dialled_.end();) {
    if (all || now - it->second.last > kDialIdle) {
      try {
        router_.disconnect(it->second.endpoint);  // libzmq would otherwise reconnect to it for ever
      } catch (const zmq::error_t&) {
        // already gone
      }
      it = dialled_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Seeder::reply(std::vector<zmq::message_t>& envelope, zmq::message_t body) {
  try {
    for (auto& frame : envelope) {
      if (!router_.send(frame, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        ++dropped_;
        return false;
      }
    }
    router_.send(body, zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t& e) {
    if (e.num() != EHOSTUNREACH) throw;
    ++dropped_;  // the downloader left
    return false;
  }
}

void Seeder::throttle(std::size_t bytes) {
  if (options_.rate_limit == 0) return;
  upload_cap_.refill();
  // The cap the user asked for, slept in slices so a stop is never kept waiting.
  auto owed = upload_cap_.take(static_cast<double>(bytes));
  while (owed.count() > 0 && !stop_) {
    const auto slice = std::min(owed, std::chrono::duration<double>(0.1));
    std::this_thread::sleep_for(slice);
    owed -= slice;
  }
}

void Seeder::serve(std::vector<zmq::message_t>& frames) {
  // Envelope: the identity (and an empty delimiter when the client sent one); then exactly one body frame.
  std::vector<zmq::message_t> envelope;
  std::size_t body_at = frames.size() > 2 && frames[1].size() == 0 ? 2 : 1;
  for (std::size_t i = 0; i < body_at && i < frames.size(); ++i) envelope.push_back(std::move(frames[i]));
  if (!dialled_.empty() && !envelope.empty()) {  // a downloader on a connection we dialled: still in use
    auto it = dialled_.find(envelope[0].to_string());
    if (it != dialled_.end()) it->second.last = std::chrono::steady_clock::now();
  }
  std::string op = "?";
  std::uint64_t id = 0;
  try {
    if (frames.size() != body_at + 1) throw BadRequest("expected exactly one request frame");
    const auto& body = frames[body_at];
    DecodeLimits limits;
    limits.array = 16;
    limits.map = 16;
    limits.str = transfer::kMaxRequestBytes;
    limits.bin = transfer::kMaxRequestBytes;
    limits.depth = 3;
    Message msg = Message::decode(body.data(), body.size(), limits);
    MapView req = msg.root();
    if (auto raw_op = req.opt_str("op", 16)) op = std::string(*raw_op);
    if (auto raw_id = req.find("id"); raw_id && raw_id->type == msgpack::type::POSITIVE_INTEGER) id = raw_id->via.u64;
    if (const auto v = req.uint("v"); v != transfer::kVersion) {
      throw BadRequest("unsupported transfer protocol version " + std::to_string(v) + " (this peer speaks " +
                       std::to_string(transfer::kVersion) + ")");
    }
    req.uint("id");
    if (req.has("path") || req.has("name")) {
      throw BadRequest("content is named by content id only; paths and names are refused");
    }
    if (op != transfer::op::kManifest && op != transfer::op::kChunk) throw BadRequest("unknown op '" + op + "'");
    const Hash cid = parse_hash(req.str("cid", 64), "cid");
    auto content = catalog_.find(cid);
    if (!content) {
      ++refused_;
      reply(envelope, failure(op, id, st::kFileNotExist, "this peer does not publish that content"));
      return;
    }
    const auto& h = content->hashes;
    // Any chunk size from ours up: our layer folds up to it (transfer.md).
    const std::uint64_t chunk_size = req.opt_uint("chunk_size").value_or(h.chunk_size);
    if (!valid_chunk_size(chunk_size) || chunk_size < h.chunk_size) {
      throw BadRequest("this peer hashed that content in chunks of " + std::to_string(h.chunk_size) +
                       " bytes; ask for a power of two from that up to 16777216");
    }
    const std::uint64_t chunks = chunk_count(h.size, static_cast<std::uint32_t>(chunk_size));
    OpenFile file;
    auto refused_as_changed = [&] {  // the file is no longer what was hashed: say why, serve nothing
      auto refusal = open_as_published(*content, file);
      if (!refusal) return false;
      ++refused_;
      reply(envelope, failure(op, id, refusal->status, refusal->sentence));
      return true;
    };
    if (op == transfer::op::kManifest) {
      const std::uint64_t first = req.opt_uint("first").value_or(0);
      if (first > chunks) throw BadRequest("field 'first' is past the last chunk");
      if (refused_as_changed()) return;  // the layer comes from memory, but a gone file is said at once
      const std::uint64_t count = std::min<std::uint64_t>(chunks - first, transfer::kMaxLeavesPerManifest);
      const std::vector<Hash>& layer = layer_at(h, static_cast<std::uint32_t>(chunk_size));
      MapWriter w = header(op, id, st::kOk);
      w.put("size", h.size).put("chunk_size", chunk_size).put("chunks", chunks);
      w.put("first", first).put_bin("layer", count ? layer[first].data() : nullptr, count * 32);
      reply(envelope, zmq::message_t(w.finish()));
      return;
    }
    const std::uint64_t index = req.uint("index");
    if (index >= chunks) throw BadRequest("field 'index' is past the last chunk");
    const std::uint64_t offset = index * chunk_size;
    const std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, h.size - offset));
    if (refused_as_changed()) return;
    // One frame: the map, with the chunk read straight into its last field. A reply in two frames could sit half
    // delivered in the downloader's pipe when it drops this source, and libzmq 4.3 never frees such a half.
    const std::string head = header(op, id, st::kOk)
                                 .put("index", index)
                                 .put("size", std::uint64_t{size})
                                 .put_bin_header("data", size)
                                 .finish();
    const std::string downloader = envelope.empty() ? std::string() : envelope.front().to_string();
    auto budgeted = send_budget_.allocate(downloader, head.size() + size);
    if (!budgeted) {  // it has its budget of replies queued and unread: this one is dropped, it asks again
      ++dropped_;
      return;
    }
    zmq::message_t chunk_reply = std::move(*budgeted);
    std::memcpy(chunk_reply.data(), head.data(), head.size());
    char* const data = static_cast<char*>(chunk_reply.data()) + head.size();
    read_ahead(file.fd, offset + size, size);
    if (const int err = read_at(file.fd, data, size, offset)) {
      ++refused_;
      const Refusal refusal = err == kShortRead ? changed(*content) : unreadable(*content, "read", err);
      reply(envelope, failure(op, id, refusal.status, refusal.sentence));
      return;
    }
    const auto served = chunks_served_.fetch_add(1) + 1;
    if (options_.corrupt_every && size > 0 && served % options_.corrupt_every == 0) {
      data[size / 2] ^= 0x5a;  // the test-only fault: a flipped byte
    }
    if (reply(envelope, std::move(chunk_reply))) {
      bytes_served_ += size;
      if (options_.log) count_upload(body, downloader, *content, size);
      throttle(size);  // after a delivered send: requests of a downloader that left do not spend the budget
    }
  } catch (const BadRequest& e) {
    ++refused_;
    if (!envelope.empty()) reply(envelope, failure(op, id, st::kBadRequest, e.what()));
  }
}

const std::vector<Hash>& Seeder::layer_at(const ContentHashes& h, std::uint32_t chunk_size) {
  if (chunk_size == h.chunk_size) return h.layer;
  std::string key(reinterpret_cast<const char*>(h.cid.data()), h.cid.size());
  key += std::to_string(chunk_size);
  if (auto it = folded_.find(key); it != folded_.end()) return it->second;
  if (folded_.size() >= kFoldedLayers) folded_.clear();
  const unsigned ours = layer_height(h.size, h.chunk_size);
  const unsigned theirs = layer_height(h.size, chunk_size);
  return folded_[key] = coarser_layer(h.layer, ours, std::uint32_t{1} << (theirs - ours));
}

void Seeder::count_upload(const zmq::message_t& request, const std::string& routing_id, const SharedContent& content,
                          std::size_t bytes) {
  const Hash& cid = content.hashes.cid;
  const std::string key = routing_id + std::string(reinterpret_cast<const char*>(cid.data()), cid.size());
  auto [it, fresh] = uploads_.try_emplace(key);
  Upload& upload = it->second;
  if (fresh) {
    upload.name = content.name;
    upload.cid_hex = log_cid(cid);
    upload.who = downloader_of(request);
  }
  upload.bytes += bytes;
  ++upload.chunks;
  upload.last = std::chrono::steady_clock::now();
}

void Seeder::flush_uploads(bool all) {
  const auto now = std::chrono::steady_clock::now();
  if (uploads_.empty() || (!all && now - swept_ < kUploadSweep)) return;
  swept_ = now;
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    const Upload& u = it->second;
    if (!all && now - u.last < options_.upload_idle) {
      ++it;
      continue;
    }
    options_.log("uploaded " + u.name + " (cid " + u.cid_hex + ") to " + u.who + ": " + std::to_string(u.bytes) +
                 " bytes in " + std::to_string(u.chunks) + " chunks");
    it = uploads_.erase(it);
  }
}

std::string advertised_endpoint(const std::string& bound, const std::optional<std::string>& host) {
  const std::string scheme = "tcp://";
  const auto colon = bound.rfind(':');
  if (bound.rfind(scheme, 0) != 0 || colon == std::string::npos || colon < scheme.size()) {
    throw std::invalid_argument("not a tcp://HOST:PORT endpoint: " + bound);
  }
  if (!host || host->empty()) return bound;
  if (host->rfind(scheme, 0) == 0) return *host;  // a whole endpoint: a forwarded port (NAT) or a relay
  std::string h = *host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  return scheme + h + bound.substr(colon);
}

}  // namespace zshare::peer
