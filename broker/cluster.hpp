// cluster.hpp: what several brokers serving one database coordinate through, as the database holds it (PgStore
// implements it; a SQLite file is one broker's alone and has no Cluster). The invariants it keeps:
//  - One writer at a time: every write transaction takes one database-wide lock first (lock_writes, or the batch's
//    first write) and holds it to its commit. So commit order is seq order, and a broker that catches up with
//    events_after() under the lock decides on the state every other broker committed.
//  - One event stream: every event is a row of `events` with its global seq, written in the transaction of its
//    change; each broker applies the others' rows to its memory and publishes every row, its own included, in seq
//    order. A tail never skips a late commit: seqs are taken under the lock, and a transaction holding the lock
//    became visible before the next one could take it.
//  - Sessions are rows held by a named broker under a lease that broker renews; the sessions of a broker whose
//    lease lapsed are ended by whichever broker takes the lock next.
#pragma once

#include "broker/dial_queue.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zshare::broker {

// An event as the events table keeps it: its global seq, the broker that made it, its topic and msgpack body.
struct StoredEvent {
  std::uint64_t seq = 0;
  std::string broker;
  std::string topic;
  std::string body;
};

// A session whose broker is gone: its user, and the name of the broker that held it.
struct LapsedSession {
  std::string user;
  std::string broker;
};

class Cluster {
 public:
  virtual ~Cluster() = default;

  // This broker's name among the brokers of the database (--name): sessions and the lease are kept under it.
  virtual void set_name(std::string name) = 0;
  virtual const std::string& name() const = 0;

  // Opens the current batch's transaction now, under the database-wide write lock (held until commit or rollback).
  // A database out of reach fails the batch at commit(), as any write does.
  virtual void lock_writes() = 0;
  // The current batch must not commit (it was decided on memory that could not catch up): commit() throws
  // StoreUnavailable saying `why`, and nothing of the batch is acknowledged.
  virtual void fail_batch(std::string why) = 0;
  // Up to `limit` events with seq > `after`, oldest first, as committed (in or out of the lock). Inside a batch a
  // database out of reach fails the batch (nothing is read); outside, it is thrown.
  virtual void events_after(std::uint64_t after, std::size_t limit,
                            const std::function<void(const StoredEvent&)>& each) = 0;
  // In the batch's transaction: the event the change of this batch publishes.
  virtual void append_event(std::uint64_t seq, std::string_view topic, std::string_view body) = 0;
  // Deletes the events up to `seq` (kept: enough for a broker that fell behind to catch up; older: it reloads).
  virtual void prune_events(std::uint64_t seq) = 0;
  // Under the lock: a mutation's stored reply, which another broker may have applied (a Lazy Pirate retry that
  // moved to this broker).
  virtual std::optional<std::string> find_reply(std::string_view request_id) = 0;

  // In the batch's transaction: `user`'s session is now held by this broker at `endpoint` / has ended.
  virtual void put_session(std::string_view user, std::string_view endpoint) = 0;
  virtual void delete_session(std::string_view user) = 0;
  // Extends this broker's lease to now + `lease` (a statement of its own, outside any batch).
  virtual void renew_lease(std::chrono::milliseconds lease) = 0;
  // Under the lock: the sessions held by brokers whose lease lapsed (or that hold no lease), and with `own` this
  // broker's too (a restart: its previous process's sessions); those brokers' leases are forgotten.
  virtual std::vector<LapsedSession> lapsed_sessions(bool own) = 0;

  // A dial order (DIAL) for `user`, whose session another broker holds: handed to every broker at once (NOTIFY),
  // and the one holding the session queues it for the seeder's next heartbeat reply. Not durable, as dial orders
  // are not: one lost is asked again.
  virtual void send_dial(std::string_view user, const Dial& dial) = 0;

  // The socket that turns readable when another broker commits events or sends a dial (LISTEN/NOTIFY), or -1 while
  // disconnected.
  virtual int notify_socket() const = 0;
  // Reads what arrived (on that socket, or while other statements ran): the dial orders other brokers sent go to
  // `dials`; true when events may be waiting (or the connection needs attention).
  virtual bool take_notifications(std::vector<std::pair<std::string, Dial>>& dials) = 0;
};

}  // namespace zshare::broker
