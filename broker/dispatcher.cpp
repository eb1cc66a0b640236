// dispatcher.cpp: every field is validated before any state is looked at, so a BAD REQUEST never
// half-applies; each mutation updates index and store together and stores its reply under the request id.
#include "broker/dispatcher.hpp"

#include "common/keywords.hpp"
#include "common/protocol.hpp"
#include "common/relay_token.hpp"
#include "common/timestamp.hpp"
#include "common/validate.hpp"
#include "zshare/protocol_ops.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>

namespace zshare::broker {

namespace p = zshare::protocol;
namespace st = zshare::protocol::status;
namespace op = zshare::protocol::op;

namespace {

// What a replacing CONNECT writes as the old session's end: the peer.disconnected reason and the log's args.
constexpr std::string_view kReplacedReason = "replaced by a new session";

}  // namespace

bool is_mutation(std::string_view name) {
  for (std::string_view m : op::kMutations) {
    if (m == name) return true;
  }
  return false;
}

MapWriter reply_header(std::string_view id, std::string_view status) {
  MapWriter w;
  w.put("v", p::kVersion);
  if (id.empty()) w.put_nil("id"); else w.put("id", id);
  w.put("status", status);
  return w;
}

std::string failure_reply(std::string_view id, std::string_view status, std::string_view sentence) {
  MapWriter w = reply_header(id, status);
  w.put("error", sentence);
  return w.finish();
}

Dispatcher::Dispatcher(FileIndex& index, Store& store, ReplyCache& replies, BrokerStats& stats, std::uint64_t seq,
                       DispatcherOptions options)
    : index_(index),
      store_(store),
      replies_(replies),
      stats_(stats),
      seq_(seq),
      options_(std::move(options)),
      liveness_(options_.heartbeat_misses, options_.heartbeat_rate),
      cluster_(store.cluster()) {
  if (cluster_) {
    for (UserId user : index_.connected_users()) remote_.insert(user);  // loaded: other brokers' sessions
  }
}

std::int64_t Dispatcher::now_ms() const {
  if (options_.clock_ms) return options_.clock_ms();
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void Dispatcher::log_at(std::string_view ts, bool ts_local, std::string_view op, std::string_view user,
                        std::string_view args) {
  if (options_.log_operations) store_.append_log(ts, ts_local, user, op, args);
}

const Dispatcher::Op* Dispatcher::find_op(std::string_view name) {
  static const std::array<Op, 14> ops = {{
      {op::kRegister, &Dispatcher::on_register},
      {op::kUnregister, &Dispatcher::on_unregister},
      {op::kConnect, &Dispatcher::on_connect},
      {op::kDisconnect, &Dispatcher::on_disconnect},
      {op::kPublish, &Dispatcher::on_publish},
      {op::kDelete, &Dispatcher::on_delete},
      {op::kListUsers, &Dispatcher::on_list_users},
      {op::kListContent, &Dispatcher::on_list_content},
      {op::kSearch, &Dispatcher::on_search},
      {op::kLookup, &Dispatcher::on_lookup},
      {op::kStats, &Dispatcher::on_stats},
      {op::kSnapshot, &Dispatcher::on_snapshot},
      {op::kHeartbeat, &Dispatcher::on_heartbeat},
      {op::kDial, &Dispatcher::on_dial},
  }};
  static_assert(std::tuple_size<decltype(ops)>::value == op::kAll.size(),
                "schemas/catalogue.json names an op this table has no handler for");
  for (const auto& op : ops) {
    if (op.name == name) return &op;
  }
  return nullptr;
}

std::string Dispatcher::bad_request(std::string_view sentence) {
  ++stats_.requests;
  ++stats_.bad_requests;
  return failure_reply({}, st::kBadRequest, sentence);
}

std::string Dispatcher::handle(std::string_view body, std::vector<Event>& events, std::string_view client_key,
                               std::string_view peer_address) {
  ++stats_.requests;
  std::string id;  // owned: the decoded message (and its zone) is gone by the time a BadRequest is caught
  try {
    if (body.size() > p::kMaxMessageBytes) {
      throw BadRequest("message of " + std::to_string(body.size()) + " bytes exceeds the " +
                       std::to_string(p::kMaxMessageBytes) + "-byte limit");
    }
    DecodeLimits limits;
    limits.array = 64;  // requests carry no arrays worth the name
    limits.str = p::kMaxMessageBytes;
    limits.bin = p::kMaxMessageBytes;
    limits.depth = 4;
    Message msg = Message::decode(body.data(), body.size(), limits);
    MapView root = msg.root();
    if (const auto* raw_id = root.find("id"); raw_id && raw_id->type == msgpack::type::STR &&
                                              raw_id->via.str.size >= 1 && raw_id->via.str.size <= p::kMaxIdBytes &&
                                              is_valid_utf8({raw_id->via.str.ptr, raw_id->via.str.size})) {
      id.assign(raw_id->via.str.ptr, raw_id->via.str.size);  // echoed: only ever valid UTF-8
    }
    const auto v = root.uint("v");
    if (v != p::kVersion) {
      throw BadRequest("unsupported protocol version " + std::to_string(v) + " (this broker speaks " +
                       std::to_string(p::kVersion) + ")");
    }
    const auto op_name = root.str("op", p::kMaxOpBytes);
    const auto req_id = root.str("id", p::kMaxIdBytes);
    if (req_id.empty()) throw BadRequest("field 'id' must not be empty");
    if (!is_valid_utf8(req_id)) throw BadRequest("field 'id' must be UTF-8");
    const auto ts = root.str("ts", p::kMaxTimestampBytes);
    check_timestamp(ts);
    const bool ts_local = root.opt_bool("ts_local").value_or(false);
    const Op* op = find_op(op_name);
    if (!op) {
      // Echoed only when it is printable: not UTF-8 would break the reply, a NUL would cut the sentence short.
      const bool printable = is_valid_utf8(op_name) && std::none_of(op_name.begin(), op_name.end(), [](char c) {
                               return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                             });
      throw BadRequest(printable ? "unknown op '" + std::string(op_name) + "'"
                                 : std::string("unknown op (not printable UTF-8)"));
    }

    // Retried ids are answered from the cache per sender: another key reusing an id gets its own answer.
    // A Z85 key is 40 characters without spaces, so "key id" cannot collide with another key's ids.
    const bool mutation = is_mutation(op->name);
    std::string cache_key;
    if (mutation) {
      cache_key = client_key.empty() ? id : std::string(client_key) + " " + id;
      if (auto cached = replies_.find(cache_key)) {
        ++stats_.retries_answered;
        return std::string(*cached);
      }
      // (Several brokers: the batch holds the write lock, and the cache has every broker's replies: Broker
      // catches up with them first.)
    }
    std::string reply = (this->*(op->handler))(Request{root, id, ts, ts_local, client_key, peer_address}, events);
    if (mutation) {
      store_.put_reply(cache_key, reply);
      replies_.put(cache_key, reply);
      ++stats_.mutations;
    }
    return reply;
  } catch (const BadRequest& e) {
    ++stats_.bad_requests;
    return failure_reply(id, st::kBadRequest, e.what());
  }
}

UserId Dispatcher::existing_user(std::string_view name, bool connected, std::string& failure, const Request& r,
                                 Access access) {
  auto user = index_.find_user(name);
  if (!user) {
    failure = failure_reply(r.id, st::kUserDoesNotExist, "user '" + std::string(name) + "' is not registered");
    return 0;
  }
  // Checked before the session state, so another key learns nothing about the user but that it exists.
  // Under --plaintext (no client key) and for users registered before keys existed, nobody is bound.
  const std::string& owner = index_.user(*user).key;
  if (access == Access::kOwner && !r.client_key.empty() && !owner.empty() && owner != r.client_key) {
    failure = failure_reply(r.id, st::kDenied,
                            "user '" + std::string(name) + "' belongs to another key; only the key that registered it "
                            "may change it");
    return 0;
  }
  if (connected && !index_.user(*user).connected) {
    failure = failure_reply(r.id, st::kUserNotConnected, "user '" + std::string(name) + "' is not connected");
    return 0;
  }
  return *user;
}

MapWriter Dispatcher::event_at(std::string_view ts, std::string_view user) {
  MapWriter w;
  w.put("seq", seq_ + 1);
  w.put("ts", ts);
  w.put("user", user);
  return w;
}

void Dispatcher::emit(std::vector<Event>& events, std::string_view topic, MapWriter& body) {
  ++seq_;
  events.push_back(Event{std::string(topic), body.finish(), seq_});
  if (cluster_) cluster_->append_event(seq_, events.back().topic, events.back().body);
}

void Dispatcher::add_event(const Event& e) {
  ++seq_;
  if (cluster_) cluster_->append_event(seq_, e.topic, e.body);
}

void Dispatcher::file_map(FileId id, bool with_owner, MapWriter& w) const {
  const auto& f = index_.file(id);
  const HexHash cid = hex_of(f.cid);
  w.put("name", f.name);
  w.put("description", f.description);
  w.put("size", f.size);
  w.put("cid", std::string_view(cid.data(), cid.size()));
  w.put("chunk_size", f.chunk_size);
  if (with_owner) {
    const auto& u = index_.user(f.user);
    w.put("user", u.name);
    w.put("endpoint", u.endpoint);
    w.put("key", u.key);
    w.put("online", u.connected);
    put_reachable(w, u.reachable);
  }
}

MapWriter& Dispatcher::put_files(MapWriter& reply, std::string_view key, const std::vector<FileId>& files,
                                 bool with_owner) const {
  index_.prefetch(files, with_owner);
  return reply.put_maps(key, files.size(), [&](std::size_t i, MapWriter& m) { file_map(files[i], with_owner, m); });
}

std::string Dispatcher::on_register(const Request& r, std::vector<Event>& events) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  if (index_.find_user(name)) {
    return failure_reply(r.id, st::kUsernameInUse, "user name '" + std::string(name) + "' is already registered");
  }
  index_.add_user(std::string(name), std::string(r.client_key));
  store_.insert_user(name, r.client_key, r.ts);
  log(r, op::kRegister, name, r.client_key.empty() ? std::string() : "key=" + std::string(r.client_key));
  auto ev = event(r, name);
  ev.put("key", r.client_key);
  emit(events, "user.registered", ev);
  return reply_header(r.id, st::kOk).put("key", r.client_key).finish();
}

std::string Dispatcher::on_unregister(const Request& r, std::vector<Event>& events) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  std::string failure;
  const UserId user = existing_user(name, false, failure, r, Access::kOwner);
  if (!failure.empty()) return failure;
  const std::uint64_t removed = index_.remove_user(user);  // ends its session too: user.unregistered says so
  end_session(user);  // and its row in a shared database goes with the user's
  store_.delete_user(name);
  log(r, op::kUnregister, name, "files_removed=" + std::to_string(removed));
  auto ev = event(r, name);
  ev.put("files_removed", removed);
  emit(events, "user.unregistered", ev);
  return reply_header(r.id, st::kOk).put("files_removed", removed).finish();
}

std::string Dispatcher::on_connect(const Request& r, std::vector<Event>& events) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  const auto endpoint = r.fields.str("endpoint", p::kMaxEndpointBytes);
  check_endpoint(endpoint);
  const auto heartbeat_ms = r.fields.opt_uint("heartbeat_ms");
  if (heartbeat_ms && (*heartbeat_ms < p::kMinHeartbeatMs || *heartbeat_ms > p::kMaxHeartbeatMs)) {
    throw BadRequest("field 'heartbeat_ms' must be from " + std::to_string(p::kMinHeartbeatMs) + " to " +
                     std::to_string(p::kMaxHeartbeatMs) + " (one hour)");
  }
  std::string failure;
  const UserId user = existing_user(name, false, failure, r, Access::kOwner);
  if (!failure.empty()) return failure;
  const bool replacing = index_.user(user).connected;
  if (replacing) {
    // Under CurveZMQ the key that owns the user proves the sender is that user: a peer restarted after a crash
    // takes its session back at once instead of waiting for the old one to time out. Without a key to prove it
    // (--plaintext, or a user registered without one) the session in place stays.
    if (r.client_key.empty() || index_.user(user).key != r.client_key) {
      return failure_reply(r.id, st::kUserAlreadyConnected, "user '" + std::string(name) + "' is already connected");
    }
    close_session(user, r.ts, r.ts_local, kReplacedReason, kReplacedReason, events);
  }
  index_.connect(user, std::string(endpoint));
  if (cluster_) cluster_->put_session(name, endpoint);
  const std::uint64_t asked_ms = heartbeat_ms ? liveness_.track(user, *heartbeat_ms, now_ms()) : 0;
  if (options_.probe) options_.probe(name, endpoint);
  log(r, op::kConnect, name, endpoint);
  auto ev = event(r, name);
  ev.put("endpoint", endpoint).put("key", index_.user(user).key);
  emit(events, "peer.connected", ev);
  MapWriter reply = reply_header(r.id, st::kOk);
  reply.put("replaced", replacing);
  if (asked_ms) reply.put("heartbeat_ms", asked_ms);  // the interval this broker wants: at least the promise
  return reply.finish();
}

std::string Dispatcher::on_disconnect(const Request& r, std::vector<Event>& events) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  std::string failure;
  const UserId user = existing_user(name, true, failure, r, Access::kOwner);
  if (!failure.empty()) return failure;
  close_session(user, r.ts, r.ts_local, "requested", "", events);
  return reply_header(r.id, st::kOk).finish();
}

// Every end of a session: the index, its liveness and waiting dials, one log record and one peer.disconnected.
void Dispatcher::close_session(UserId user, std::string_view ts, bool ts_local, std::string_view reason,
                               std::string_view log_args, std::vector<Event>& events) {
  const std::string name = index_.user(user).name;
  index_.disconnect(user);
  end_session(user);
  if (cluster_) cluster_->delete_session(name);
  log_at(ts, ts_local, op::kDisconnect, name, log_args);
  auto ev = event_at(ts, name);
  ev.put("reason", reason);
  emit(events, "peer.disconnected", ev);
}

std::string Dispatcher::on_publish(const Request& r, std::vector<Event>& events) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  FileRecord f;
  f.name = std::string(r.fields.str("name", p::kMaxFileNameBytes));
  check_file_name(f.name);
  f.description = std::string(r.fields.opt_str("description", p::kMaxDescriptionBytes).value_or(""));
  check_description(f.description);
  f.size = r.fields.uint("size");
  if (f.size > p::kMaxFileSize) throw BadRequest("field 'size' is larger than 2^63-1");
  f.cid = parse_hash(r.fields.str("cid", 64), "cid");
  if ((f.size == 0) != (f.cid == Hash{})) {
    throw BadRequest("an empty file's cid is 64 zeros, and only an empty file's (protocol.md)");
  }
  const auto chunk_size = r.fields.uint("chunk_size");
  check_chunk_size(chunk_size);
  f.chunk_size = static_cast<std::uint32_t>(chunk_size);

  std::string failure;
  f.user = existing_user(name, true, failure, r, Access::kOwner);
  if (!failure.empty()) return failure;
  if (index_.find_file(f.user, f.name)) {
    return failure_reply(r.id, st::kContentAlreadyPublished,
                         "user '" + std::string(name) + "' already publishes '" + f.name + "'");
  }
  if (index_.user(f.user).files.size() >= options_.max_files_per_user) {
    return failure_reply(r.id, st::kLimitExceeded,
                         "user '" + std::string(name) + "' already publishes " +
                             std::to_string(index_.user(f.user).files.size()) + " files, this broker's limit per user");
  }
  store_.insert_file(name, f, r.ts);
  log(r, op::kPublish, name, f.name + " " + std::to_string(f.size) + " " + to_hex(f.cid));
  auto ev = event(r, name);
  ev.put("name", f.name).put("description", f.description).put("size", f.size).put("cid", to_hex(f.cid));
  ev.put("chunk_size", f.chunk_size);
  index_.add_file(std::move(f));
  emit(events, "file.published", ev);
  return reply_header(r.id, st::kOk).finish();
}

std::string Dispatcher::on_delete(const Request& r, std::vector<Event>& events) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  const auto file_name = r.fields.str("name", p::kMaxFileNameBytes);
  check_file_name(file_name);
  std::string failure;
  const UserId user = existing_user(name, true, failure, r, Access::kOwner);
  if (!failure.empty()) return failure;
  const auto file = index_.find_file(user, file_name);
  if (!file) {
    return failure_reply(r.id, st::kContentNotPublished,
                         "user '" + std::string(name) + "' does not publish '" + std::string(file_name) + "'");
  }
  auto ev = event(r, name);
  ev.put("name", file_name).put("cid", to_hex(index_.file(*file).cid));
  store_.delete_file(name, file_name);
  log(r, op::kDelete, name, file_name);
  index_.remove_file(*file);
  emit(events, "file.deleted", ev);
  return reply_header(r.id, st::kOk).finish();
}

std::string Dispatcher::on_list_users(const Request& r, std::vector<Event>&) {
  std::vector<MapWriter> users;
  for (UserId id : index_.connected_users()) {
    MapWriter u;
    const auto& user = index_.user(id);
    u.put("user", user.name).put("endpoint", user.endpoint).put("key", user.key);
    put_reachable(u, user.reachable);
    users.push_back(std::move(u));
  }
  return reply_header(r.id, st::kOk).put("users", users).finish();
}

std::string Dispatcher::on_list_content(const Request& r, std::vector<Event>&) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  std::string failure;
  const UserId user = existing_user(name, false, failure, r);
  if (!failure.empty()) return failure;
  MapWriter reply = reply_header(r.id, st::kOk);
  return put_files(reply, "files", index_.files_of(user), false).finish();
}

std::string Dispatcher::on_search(const Request& r, std::vector<Event>&) {
  const auto q = r.fields.opt_str("q", p::kMaxQueryBytes);
  const auto cid_hex = r.fields.opt_str("cid", 64);
  if (!q && !cid_hex) throw BadRequest("SEARCH needs 'q' (keywords) or 'cid' (a content id)");
  std::vector<std::string> words;
  if (q) {
    if (!is_valid_utf8(*q)) throw BadRequest("field 'q' must be UTF-8");
    words = keywords(*q);
    if (words.empty()) throw BadRequest("field 'q' has no keywords (letters or digits); leave it out to search by cid");
    if (words.size() > 16) throw BadRequest("field 'q' has more than 16 keywords");
  }
  std::optional<Hash> cid;
  if (cid_hex) cid = parse_hash(*cid_hex, "cid");
  const auto limit = r.fields.opt_uint("limit").value_or(p::kDefaultSearchLimit);
  if (limit < 1 || limit > p::kMaxSearchLimit) throw BadRequest("field 'limit' must be from 1 to 1000");
  const auto cursor = r.fields.opt_uint("cursor").value_or(0);
  const bool include_offline = r.fields.opt_bool("include_offline").value_or(false);  // default: online sources

  const SearchPage page = index_.search(words, cid, cursor, static_cast<std::size_t>(limit), !include_offline);
  MapWriter reply = reply_header(r.id, st::kOk);
  put_files(reply, "results", page.files, true);
  if (page.next) reply.put("next", *page.next); else reply.put_nil("next");
  return reply.finish();
}

std::string Dispatcher::on_lookup(const Request& r, std::vector<Event>&) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  const auto file_name = r.fields.str("name", p::kMaxFileNameBytes);
  check_file_name(file_name);
  std::string failure;
  const UserId user = existing_user(name, false, failure, r);
  if (!failure.empty()) return failure;
  const auto file = index_.find_file(user, file_name);
  if (!file) {
    return failure_reply(r.id, st::kFileNotExist,
                         "user '" + std::string(name) + "' has no file '" + std::string(file_name) + "'");
  }
  MapWriter found;
  file_map(*file, true, found);
  return reply_header(r.id, st::kOk).put("file", found).finish();
}

std::string Dispatcher::on_snapshot(const Request& r, std::vector<Event>&) {
  // The Clone pattern's state request: the index page by page, each page stamped with the seq it reflects.
  // A subscriber replays the events after the first page's seq over the pages; events are idempotent.
  const auto cursor = r.fields.opt_uint("cursor").value_or(0);
  const auto limit = r.fields.opt_uint("limit").value_or(p::kMaxSearchLimit);
  if (limit < 1 || limit > p::kMaxSearchLimit) throw BadRequest("field 'limit' must be from 1 to 1000");
  MapWriter reply = reply_header(r.id, st::kOk);
  reply.put("seq", seq_);
  std::vector<MapWriter> users;
  if (cursor == 0) {
    for (UserId id : index_.live_users()) {
      const auto& u = index_.user(id);
      MapWriter w;
      w.put("user", u.name).put("online", u.connected).put("endpoint", u.endpoint).put("key", u.key);
      put_reachable(w, u.reachable);
      users.push_back(std::move(w));
    }
  }
  reply.put("users", users);
  const SearchPage page = index_.live_files(cursor, static_cast<std::size_t>(limit));
  put_files(reply, "files", page.files, true);
  if (page.next) reply.put("next", *page.next); else reply.put_nil("next");
  return reply.finish();
}

std::string Dispatcher::on_heartbeat(const Request& r, std::vector<Event>&) {
  // Paranoid Pirate: a connected peer says it is alive; USER NOT CONNECTED tells it to CONNECT again
  // (after a broker restart, or after it was expired for silence).
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  std::string failure;
  const UserId user = existing_user(name, true, failure, r, Access::kOwner);
  if (!failure.empty()) return failure;
  if (held_elsewhere(user)) {
    return failure_reply(r.id, st::kUserNotConnected,
                         "user '" + std::string(name) + "' is connected through another broker; CONNECT here to "
                         "move the session");
  }
  const std::uint64_t asked_ms = liveness_.touch(user, now_ms());  // 0: it promised no heartbeats
  MapWriter reply = reply_header(r.id, st::kOk);
  if (asked_ms) reply.put("heartbeat_ms", asked_ms);  // the floor moves with the sessions: ask again each time
  std::vector<Dial> dials = dials_.take(user, now_ms());
  if (!dials.empty()) {  // downloaders waiting for this seeder to dial out (transfer.md, "Paths")
    std::vector<MapWriter> list;
    for (const Dial& d : dials) {
      MapWriter w;
      if (!d.callback.empty()) w.put("callback", d.callback);
      if (!d.relay.empty()) w.put("relay", d.relay).put("host", d.relay_host);
      list.push_back(std::move(w));
    }
    reply.put("dials", list);
  }
  return reply.finish();
}

// A downloader that cannot dial `user` asks it to dial out: to the downloader's callback (it listens there), else
// through the relay, whose token this reply carries for the downloader's side and the seeder's next heartbeat
// reply for its own. The seeder picks: the callback when it can open a connection to it, else the relay.
std::string Dispatcher::on_dial(const Request& r, std::vector<Event>&) {
  const auto name = r.fields.str("user", p::kMaxUserBytes);
  check_user(name);
  const std::string callback = callback_of(r);
  std::string failure;
  const UserId user = existing_user(name, true, failure, r);
  if (!failure.empty()) return failure;
  // A dial order rides on the seeder's next heartbeat reply: a session that promised none never gets it. One the
  // broker could dial is dialled directly; nothing to order there. A session another broker holds: that broker
  // checks and queues the order (Cluster::send_dial).
  const bool elsewhere = held_elsewhere(user);
  if (!elsewhere && !liveness_.tracked(user)) {
    return failure_reply(r.id, st::kNoRoute,
                         "'" + std::string(name) + "' sends no heartbeats, so it cannot be asked to dial out");
  }
  if (!elsewhere && index_.user(user).reachable == Reachability::kReachable) {
    return failure_reply(r.id, st::kNoRoute, "'" + std::string(name) + "' is reachable at " +
                                                 index_.user(user).endpoint + ": dial it there");
  }
  if (callback.empty() && options_.relay.empty()) {
    return failure_reply(r.id, st::kNoRoute,
                         "'" + std::string(name) + "' cannot be dialled, the request gave no callback, and this broker "
                         "has no relay (zshare-broker --relay)");
  }
  Dial dial;
  dial.callback = callback;
  MapWriter reply = reply_header(r.id, st::kOk);
  if (!callback.empty()) reply.put("callback", callback);
  if (!options_.relay.empty()) {
    const std::uint64_t now_s =
        options_.clock_s ? options_.clock_s() : static_cast<std::uint64_t>(std::time(nullptr));
    const auto pair = relay_token::mint(options_.relay_secret, now_s, options_.relay_token_ttl_s);
    dial.relay = options_.relay;
    dial.relay_host = relay_token::host_for(pair.seeder, relay_token::Side::kSeeder);
    reply.put("relay", options_.relay).put("host", relay_token::host_for(pair.downloader, relay_token::Side::kDownloader));
  }
  if (elsewhere) cluster_->send_dial(name, dial);
  else dials_.push(user, std::move(dial), now_ms());
  return reply.finish();
}

void Dispatcher::queue_dial(std::string_view name, Dial dial) {
  const auto user = index_.find_user(name);
  if (!user || !index_.user(*user).connected || held_elsewhere(*user) || !liveness_.tracked(*user)) return;
  dials_.push(*user, std::move(dial), now_ms());
}

// DIAL's callback: a port on the address the request came from (what a STUN server would say), never an address
// the requester names: nobody can make a seeder open connections to a third host (into the seeder's own network,
// say) through the broker.
std::string Dispatcher::callback_of(const Request& r) const {
  if (r.fields.has("callback")) {
    throw BadRequest("DIAL takes 'callback_port' only: a seeder is asked to dial the address the request came from");
  }
  const auto port = r.fields.opt_uint("callback_port");
  if (!port) return "";
  if (*port < 1 || *port > 65535) throw BadRequest("field 'callback_port' must be from 1 to 65535");
  std::string host(r.peer_address);
  if (host.rfind("::ffff:", 0) == 0 && host.find('.') != std::string::npos) host = host.substr(7);  // IPv4-mapped
  if (host.empty()) throw BadRequest("this connection has no IP address to call back; ask for the relay only");
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "tcp://" + host + ":" + std::to_string(*port);
}

void Dispatcher::end_session(UserId user) {
  liveness_.forget(user);
  dials_.forget(user);
  remote_.erase(user);
}

void Dispatcher::record_reachability(std::string_view name, std::string_view endpoint, bool reachable) {
  const auto user = index_.find_user(name);
  if (!user || !index_.user(*user).connected || index_.user(*user).endpoint != endpoint) return;  // a later session
  const Reachability r = reachable ? Reachability::kReachable : Reachability::kUnreachable;
  index_.set_reachable(*user, r);
}

void put_reachable(MapWriter& w, Reachability r) {
  if (r != Reachability::kUnknown) w.put("reachable", r == Reachability::kReachable);
}

std::size_t Dispatcher::expire_silent_sessions(std::vector<Event>& events) {
  const auto late = liveness_.expired(now_ms());
  if (late.empty()) return 0;
  const std::string ts = now_iso8601_utc();
  for (UserId user : late) {
    end_session(user);
    if (index_.user(user).connected) close_session(user, ts, true, "heartbeat timeout", "heartbeat timeout", events);
  }
  return late.size();
}

std::string Dispatcher::on_stats(const Request& r, std::vector<Event>&) {
  MapWriter w = reply_header(r.id, st::kOk);
  w.put("users", static_cast<std::uint64_t>(index_.user_count()));
  w.put("connected", static_cast<std::uint64_t>(index_.connected_count()));
  w.put("files", static_cast<std::uint64_t>(index_.file_count()));
  w.put("seq", seq_);
  w.put("requests", stats_.requests);
  w.put("bad_requests", stats_.bad_requests);
  w.put("retries_answered", stats_.retries_answered);
  w.put("dropped", stats_.dropped);
  w.put("rate_limited", stats_.rate_limited);
  return w.finish();
}

}  // namespace zshare::broker
