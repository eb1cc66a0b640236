#!/usr/bin/python3
# durability.py: what survives a crash (kill -9) or a SIGTERM of a real zshare-broker, restarted on the same
# SQLite file. protocol.md promises: an OK to a mutation is sent only after its commit; users and files
# survive restarts, sessions do not; event seq keeps increasing across restarts; a retried request id is
# answered with the stored reply even after a restart. Each start takes one seq for its broker.started event.
#   (a) OKs survive kill -9: users and files exactly there, sessions offline, seq continues above the last seen,
#       the first seq of the new process being broker.started, which a subscriber joining afterwards still gets;
#   (b) a retried id after kill -9 + restart gets the stored reply and does not apply twice;
#   (c) kill -9 during concurrent mutations from several threads: every acknowledged mutation is there,
#       nothing unacknowledged beyond the requests in flight, and resending those in flight is consistent;
#   (d) SIGTERM (idle and mid-stream) exits 0 and the database reopens with everything;
#   (e) a version 1 database (files with a `root` column) opened by this broker keeps every user and file, loses the
#       column, answers file entries without `root`, and takes new files.
# Everything runs over CurveZMQ with the broker's keypair kept across restarts; a retry is sent by the same
# client (its keypair), as Lazy Pirate does. Who owns a user (the key that registered it) survives a crash, and
# the stored replies stay per sender key: another key reusing a request id after the restart is not answered
# with the stored reply.
# After every crash the database copy must pass SQLite's integrity_check. Every wait has a deadline.
# With --store postgresql, (a) to (d) run on a broker whose database is PostgreSQL (a throw-away cluster, which the
# broker's crashes do not touch): the same promises hold; (e) and integrity_check are SQLite's own.
# The first failed check stops the run with a message and a non-zero exit; a pass ends "N passed, 0 failed".
import argparse
import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import merkle_tree  # noqa: E402
from zshare_testlib import PROTOCOL_VERSION, CheckFailed, Checks, Broker, wait_for  # noqa: E402
from pg_cluster import BrokerDatabases  # noqa: E402


CHECKS = Checks()
EVENT_TIMEOUT_S = 5.0
DATABASES = None  # BrokerDatabases, by --store (main)


class StoreBroker(Broker):
    """A Broker on a fresh database of the store under test, which checks at each start that it runs on it."""

    def __init__(self, binary):
        super().__init__(binary, db=DATABASES.new())

    def start(self, deadline_s=10):
        super().start(deadline_s)
        CHECKS.ok(DATABASES.serves(self), "the broker runs on the %s database given: %r"
                  % (DATABASES.store, self.stderr()[-500:]))
        return self


def section(name):
    print("-- %s" % name, flush=True)


def ts():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def file_fields(name, description, seed):
    data = hashlib.sha256(seed.encode()).digest() * 40
    return {"name": name, "description": description, "size": len(data), "cid": merkle_tree.cid_hex(data),
            "chunk_size": 16384}


def ok(client, op, **fields):
    r = client.call(op, **fields)
    CHECKS.ok(r.get("status") == "OK", "%s %r answered %r" % (op, fields, r))
    return r


class Model:
    def __init__(self):
        self.users = set()
        self.files = {}  # (user, name) -> fields
        self.owner = {}  # user -> the public key that registered it

    def add_user(self, user, client):
        self.users.add(user)
        self.owner[user] = client.public_key

    def publish(self, user, f):
        self.files[(user, f["name"])] = dict(f)


class EventWatch:
    """A SUB socket; sync() beats the slow joiner by registering users until one event arrives."""

    def __init__(self, broker):
        self.sock = broker.subscriber()
        self.last_seq = None

    def recv(self, timeout_s):
        if not (self.sock.poll(int(timeout_s * 1000)) & zmq.POLLIN):
            return None
        topic, body = self.sock.recv_multipart()
        ev = msgpack.unpackb(body, raw=False)
        seq = ev.get("seq")
        CHECKS.ok(type(seq) is int, "event %s without an integer seq: %r" % (topic, ev))
        if self.last_seq is not None:
            CHECKS.ok(seq > self.last_seq, "event seq must strictly increase: %d after %d (%r)"
                      % (seq, self.last_seq, ev))
        self.last_seq = seq
        return topic.decode(), ev

    def started(self, seq, users, files, ended=()):
        """The broker holds broker.started until the first subscription: a subscriber that joins a freshly
        (re)started broker before anything else happens gets it first, with the seq and counts given. On PostgreSQL
        (several brokers may share the database) the sessions the broker held before end first, each with its own
        peer.disconnected: `ended`, in user order."""
        for user in ended:
            got = self.recv(EVENT_TIMEOUT_S)
            CHECKS.ok(got is not None and got[0] == "peer.disconnected" and
                      (got[1]["user"], got[1]["reason"]) == (user, "broker restarted"),
                      "the restart first ends %s's session: %r" % (user, got))
        got = self.recv(EVENT_TIMEOUT_S)
        CHECKS.ok(got is not None and got[0] == "broker.started", "the first event is broker.started: %r" % (got,))
        CHECKS.eq((got[1]["seq"], got[1]["users"], got[1]["files"]), (seq, users, files),
                  "broker.started seq, users and files")
        return got[1]

    def sync(self, client, model, prefix):
        """Registers prefix-1, prefix-2... until an event arrives, then takes the events still in flight.
        Returns (number of REGISTERs sent, the first event seen, its position among them, 1-based)."""
        deadline = time.monotonic() + 10
        names = []
        got = None
        while got is None:
            CHECKS.ok(time.monotonic() < deadline, "no event within 10s on the events socket")
            name = "%s-%d" % (prefix, len(names) + 1)
            ok(client, "REGISTER", user=name)
            model.add_user(name, client)
            names.append(name)
            got = self.recv(0.2)
        first = got
        pos = names.index(got[1]["user"]) + 1
        for name in names[pos:]:
            self.expect("user.registered", name)
        return len(names), first, pos

    def expect(self, topic, user):
        got = self.recv(EVENT_TIMEOUT_S)
        CHECKS.ok(got is not None, "no %s event for %s within %.0fs" % (topic, user, EVENT_TIMEOUT_S))
        CHECKS.ok(got[0] == topic and got[1].get("user") == user, "expected %s for %s, got %r" % (topic, user, got))
        return got[1]

    def close(self):
        self.sock.close(linger=0)


def integrity_check(broker):
    """SQLite's integrity_check on a copy of the database (the broker is not running); PostgreSQL's database is
    not the broker's to check (the broker's crash is not the server's)."""
    if DATABASES.store != "sqlite":
        return
    tmp = tempfile.mkdtemp(prefix="zshare-dbcopy-")
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(broker.db + suffix):
                shutil.copy(broker.db + suffix, os.path.join(tmp, "copy.db" + suffix))
        con = sqlite3.connect(os.path.join(tmp, "copy.db"))
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
        CHECKS.eq(rows, [("ok",)], "PRAGMA integrity_check of the database after the stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def search_all(client, **q):
    out, cursor = [], None
    for _ in range(10000):
        fields = dict(q, limit=37)
        if cursor is not None:
            fields["cursor"] = cursor
        r = ok(client, "SEARCH", **fields)
        out.extend(r["results"])
        if r.get("next") is None:
            return out
        cursor = r["next"]
    raise CheckFailed("SEARCH paging did not end")


def check_state(client, model, what):
    """The broker holds exactly model's users and files, and every session is offline."""
    s = ok(client, "STATS")
    CHECKS.eq(s["users"], len(model.users), "%s: STATS users" % what)
    CHECKS.eq(s["files"], len(model.files), "%s: STATS files" % what)
    CHECKS.eq(s["connected"], 0, "%s: STATS connected (sessions do not survive a restart)" % what)
    CHECKS.eq(ok(client, "LIST_USERS")["users"], [], "%s: LIST_USERS is empty after a restart" % what)
    for user in sorted(model.users):
        r = ok(client, "LIST_CONTENT", user=user)
        got = {f["name"]: f for f in r["files"]}
        want = {n: f for (u, n), f in model.files.items() if u == user}
        CHECKS.eq(sorted(got), sorted(want), "%s: LIST_CONTENT %s names" % (what, user))
        for n, f in want.items():
            for k, v in f.items():
                CHECKS.eq(got[n].get(k), v, "%s: LIST_CONTENT %s %s field %s" % (what, user, n, k))
            CHECKS.ok("root" not in got[n], "%s: LIST_CONTENT %s %s has no root (v3): %r" % (what, user, n, got[n]))
    CHECKS.eq(search_all(client, q="durable"), [], "%s: SEARCH (online sources only) finds nothing, every owner "
              "being offline" % what)
    results = search_all(client, q="durable", include_offline=True)
    keys = [(x["user"], x["name"]) for x in results]
    CHECKS.eq(len(keys), len(set(keys)), "%s: SEARCH gives each file once" % what)
    CHECKS.eq(set(keys), set(model.files), "%s: SEARCH 'durable' include_offline finds exactly the files" % what)
    for x in results:
        CHECKS.ok(x["online"] is False and x["endpoint"] == "",
                  "%s: after a restart SEARCH shows %s/%s offline with no endpoint: %r" % (what, x["user"], x["name"], x))
        CHECKS.eq(x["key"], model.owner[x["user"]], "%s: SEARCH names the key that registered %s" % (what, x["user"]))
    return s


# ---------------------------------------------------------------------------------------------------------
# (a) every OK survives kill -9
# ---------------------------------------------------------------------------------------------------------

def scenario_ok_survives_kill9(binary):
    section("(a) OKs survive kill -9")
    broker = StoreBroker(binary).start()
    try:
        c = broker.client()
        o = broker.client()  # another client with its own keypair: it owns bob
        model = Model()
        ev = EventWatch(broker)
        ev.started(1, 0, 0)  # a fresh database: seq 1
        ev.sync(c, model, "sync")
        owner = {"alice": c, "bob": o, "carol": c, "dave": c}
        for u in ("alice", "bob", "carol", "dave"):
            r = ok(owner[u], "REGISTER", user=u)
            CHECKS.eq(r["key"], owner[u].public_key, "REGISTER %s binds the sender's key" % u)
            model.add_user(u, owner[u])
            ev.expect("user.registered", u)
        for i, u in enumerate(("alice", "bob", "carol", "dave")):
            ok(owner[u], "CONNECT", user=u, endpoint="tcp://127.0.0.1:%d" % (7000 + i))
            ev.expect("peer.connected", u)
        for u, n in (("alice", 3), ("bob", 2), ("carol", 1), ("dave", 2)):
            for k in range(n):
                f = file_fields("%s-file-%d.dat" % (u, k), "durable test file %d of %s" % (k, u), "%s%d" % (u, k))
                ok(owner[u], "PUBLISH", user=u, **f)
                model.publish(u, f)
                ev.expect("file.published", u)
        ok(c, "DELETE", user="alice", name="alice-file-1.dat")
        del model.files[("alice", "alice-file-1.dat")]
        ev.expect("file.deleted", "alice")
        ok(c, "DISCONNECT", user="carol")
        ev.expect("peer.disconnected", "carol")
        r = ok(c, "UNREGISTER", user="dave")
        CHECKS.eq(r["files_removed"], 2, "UNREGISTER dave files_removed")
        model.users.discard("dave")
        for k in [k for k in model.files if k[0] == "dave"]:
            del model.files[k]
        # UNREGISTER publishes user.unregistered (and may publish peer.disconnected first): take both.
        got = ev.recv(EVENT_TIMEOUT_S)
        if got and got[0] == "peer.disconnected":
            got = ev.recv(EVENT_TIMEOUT_S)
        CHECKS.ok(got is not None and got[0] == "user.unregistered", "no user.unregistered event: %r" % (got,))
        last_seq = ev.last_seq
        s = ok(c, "STATS")
        CHECKS.eq(s["seq"], last_seq, "STATS seq before the kill is the last event's seq")
        ev.close()
        c.close()
        o.close()

        broker.kill9()
        integrity_check(broker)
        broker.start()
        c = broker.client(keys=c.keys)  # the same clients come back with their keypairs
        o = broker.client(keys=o.keys)
        s = check_state(c, model, "after kill -9")
        # On PostgreSQL the sessions open at the kill end with events of their own first (alice and bob: carol
        # disconnected, dave unregistered).
        ended = ("alice", "bob") if DATABASES.store == "postgresql" else ()
        started_seq = last_seq + len(ended) + 1
        CHECKS.eq(s["seq"], started_seq, "after kill -9 STATS seq is the last seq seen before the kill + 1: the "
                  "restart's broker.started (on PostgreSQL after one peer.disconnected per open session)")
        CHECKS.eq(c.call("LIST_CONTENT", user="dave").get("status"), "USER DOES NOT EXIST",
                  "after kill -9 the unregistered user stays gone")
        CHECKS.eq(c.call("LOOKUP", user="alice", name="alice-file-1.dat").get("status"), "FILE NOT EXIST",
                  "after kill -9 the deleted file stays gone")
        # Events continue strictly above the last seq seen before the kill, one by one: broker.started, which a
        # subscriber joining now still receives (nothing was published since the start), then the REGISTERs.
        ev = EventWatch(broker)
        ev.started(started_seq, len(model.users), len(model.files), ended)
        _, first, pos = ev.sync(c, model, "after")
        CHECKS.eq(first[1]["seq"], started_seq + pos, "the first event after the restart continues the sequence "
                  "(last seq before the kill %d, broker.started, then %d REGISTERs)" % (last_seq, pos))
        CHECKS.ok(first[1]["seq"] > last_seq, "seq after the restart is above the last seq before the kill")
        # Sessions are offline: CONNECT starts a new one (none was left open to replace), for the owner's key only.
        r = ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7100")
        CHECKS.eq(r.get("replaced"), False, "after kill -9 alice had no session left to replace")
        ev.expect("peer.connected", "alice")
        CHECKS.eq(c.call("CONNECT", user="bob", endpoint="tcp://127.0.0.1:7101").get("status"), "DENIED",
                  "after kill -9 bob still belongs to the key that registered him")
        CHECKS.eq(o.call("CONNECT", user="alice", endpoint="tcp://127.0.0.1:7102").get("status"), "DENIED",
                  "after kill -9 alice still belongs to the key that registered her")
        ok(o, "CONNECT", user="bob", endpoint="tcp://127.0.0.1:7101")
        ev.expect("peer.connected", "bob")
        CHECKS.eq(ok(c, "STATS")["seq"], ev.last_seq, "STATS seq after the restart follows the events")
        ev.close()
        c.close()
        o.close()
    finally:
        broker.cleanup()


# ---------------------------------------------------------------------------------------------------------
# (b) a retried id after kill -9 gets the stored reply
# ---------------------------------------------------------------------------------------------------------

def raw_request(client, op, **fields):
    msg = {"v": PROTOCOL_VERSION, "op": op, "id": client.next_id(), "ts": ts()}
    msg.update(fields)
    return msgpack.packb(msg, use_bin_type=True)


def scenario_retry_after_restart(binary):
    section("(b) a retried id after kill -9 + restart")
    broker = StoreBroker(binary).start()
    try:
        c = broker.client()
        ok(c, "REGISTER", user="alice")
        ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7000")
        keep = file_fields("keep.dat", "durable kept", "keep")
        ok(c, "PUBLISH", user="alice", **keep)
        reg = raw_request(c, "REGISTER", user="bob")
        pub = raw_request(c, "PUBLISH", user="alice", **file_fields("retried.dat", "durable retried", "r"))
        dele = raw_request(c, "DELETE", user="alice", name="keep.dat")
        replies = {}
        for name, body in (("REGISTER", reg), ("PUBLISH", pub), ("DELETE", dele)):
            r = c.send_raw([body])
            CHECKS.ok(r is not None and r.get("status") == "OK", "%s before the kill answered %r" % (name, r))
            replies[name] = r
        before = ok(c, "STATS")
        c.close()

        broker.kill9()
        integrity_check(broker)
        broker.start()
        model = Model()
        model.add_user("alice", c)
        model.add_user("bob", c)
        model.publish("alice", file_fields("retried.dat", "durable retried", "r"))
        keys = c.keys
        c = broker.client()  # reads only: any key
        after = check_state(c, model, "after kill -9 (b)")
        # The stored replies are per sender key: another key sending the very same bytes (same ids) after the
        # restart is answered afresh (bob is taken; alice is not its user), never with the stored OK.
        for name, body, fresh in (("REGISTER", reg, "USERNAME IN USE"), ("PUBLISH", pub, "DENIED"),
                                  ("DELETE", dele, "DENIED")):
            stranger = broker.client()
            r = stranger.send_raw([body])
            stranger.close()
            CHECKS.eq(r and r.get("status"), fresh, "the %s's id resent by another key is answered afresh: %r"
                      % (name, r))
        s = check_state(c, model, "after another key reused the ids")
        restart_events = 2 if DATABASES.store == "postgresql" else 1  # PostgreSQL: alice's session ends first
        CHECKS.eq(s["seq"], before["seq"] + restart_events,
                  "another key's reused ids changed nothing (seq: + broker.started)")
        CHECKS.eq(s["retries_answered"], after["retries_answered"], "another key's reused ids are no retries")
        for name, body in (("PUBLISH", pub), ("REGISTER", reg), ("DELETE", dele)):
            retry = broker.client(keys=keys)  # a NEW socket of the same client, as Lazy Pirate does
            r = retry.send_raw([body])
            retry.close()
            CHECKS.eq(r, replies[name], "a %s retried after the restart gets the stored reply" % name)
        s = check_state(c, model, "after the retries")
        CHECKS.eq(s["seq"], before["seq"] + restart_events, "the retries published no event (seq: only the restart's "
                  "broker.started)")
        CHECKS.eq(s["retries_answered"] - after["retries_answered"], 3, "STATS retries_answered counts 3 retries")
        # The stored OK is not a fresh execution: a new PUBLISH now is refused, alice being offline.
        c.close()
        c = broker.client(keys=keys)
        r = c.call("PUBLISH", user="alice", **file_fields("fresh.dat", "durable fresh", "f"))
        CHECKS.eq(r.get("status"), "USER NOT CONNECTED", "a fresh PUBLISH after the restart (session gone)")
        c.close()
    finally:
        broker.cleanup()


# ---------------------------------------------------------------------------------------------------------
# (c) kill -9 in the middle of concurrent mutations; (d) SIGTERM mid-stream
# ---------------------------------------------------------------------------------------------------------

class Writer(threading.Thread):
    """One client: REGISTER, CONNECT, PUBLISH for user w<i>-<k>, k = 1, 2, ... until stopped or unanswered."""

    def __init__(self, broker, index, stop):
        super().__init__(daemon=True)
        self.broker = broker
        self.keys = zmq.curve_keypair()  # this client's keypair: its users are its own, its resends too
        self.index = index
        self.stop = stop
        self.acked = []        # (op, user, fields) acknowledged with OK
        self.in_flight = None  # (op, user, fields, body) sent and not answered
        self.error = None

    def run(self):
        client = self.broker.client(timeout_ms=2000, keys=self.keys)
        try:
            k = 0
            while not self.stop.is_set():
                k += 1
                user = "w%d-%d" % (self.index, k)
                f = file_fields("%s.dat" % user, "durable stream file", user)
                for op, fields in (("REGISTER", {"user": user}),
                                   ("CONNECT", {"user": user, "endpoint": "tcp://127.0.0.1:9"}),
                                   ("PUBLISH", dict(f, user=user))):
                    body = raw_request(client, op, **fields)
                    self.in_flight = (op, user, fields, body)
                    r = client.send_raw([body])
                    if r is None:
                        return  # the broker died: this request stays in flight
                    if r.get("status") != "OK":
                        self.error = "%s %r answered %r" % (op, fields, r)
                        return
                    self.acked.append((op, user, fields))
                    self.in_flight = None
        except Exception as e:  # noqa: BLE001
            self.error = "writer %d: %r" % (self.index, e)
        finally:
            client.close()


def run_stream_and_stop(broker, stop_how, n_threads=4, min_acked_registers=40):
    """Starts the writers, stops the broker with stop_how() mid-stream; returns (writers, its result, STATS
    before the stream)."""
    probe = broker.client()
    base = ok(probe, "STATS")
    probe.close()
    stop = threading.Event()
    writers = [Writer(broker, i, stop) for i in range(n_threads)]
    for w in writers:
        w.start()

    def enough():
        for w in writers:
            CHECKS.ok(w.error is None, "a writer failed before the stop: %s" % w.error)
        return sum(1 for w in writers for a in w.acked if a[0] == "REGISTER") >= min_acked_registers

    wait_for(enough, 30, "%d acknowledged REGISTERs" % min_acked_registers)
    rc = stop_how()  # kill -9 or SIGTERM while the writers are still sending
    stop.set()
    for w in writers:
        w.join(timeout=15)
        CHECKS.ok(not w.is_alive(), "writer %d did not finish within 15s after the stop" % w.index)
        CHECKS.ok(w.error is None, "writer %d: %s" % (w.index, w.error))
    return writers, rc, base


def check_stream_survived(broker, writers, base, what):
    c = broker.client()
    try:
        acked_users = {a[1] for w in writers for a in w.acked if a[0] == "REGISTER"}
        acked_files = {a[1] for w in writers for a in w.acked if a[0] == "PUBLISH"}
        in_flight = [w.in_flight for w in writers if w.in_flight is not None]
        in_flight_keys = [w.keys for w in writers if w.in_flight is not None]
        n_acked = sum(len(w.acked) for w in writers)
        print("   %d mutations acknowledged (%d REGISTER, %d PUBLISH), %d in flight at the stop"
              % (n_acked, len(acked_users), len(acked_files), len(in_flight)), flush=True)
        s = ok(c, "STATS")
        CHECKS.eq(s["connected"], 0, "%s: no session survives" % what)
        s = dict(s, users=s["users"] - base["users"], files=s["files"] - base["files"], seq=s["seq"] - base["seq"])
        CHECKS.ok(len(acked_users) <= s["users"] <= len(acked_users) + len(in_flight),
                  "%s: STATS users %d must be between the %d acknowledged REGISTERs and that plus the %d in flight"
                  % (what, s["users"], len(acked_users), len(in_flight)))
        CHECKS.ok(len(acked_files) <= s["files"] <= len(acked_files) + len(in_flight),
                  "%s: STATS files %d must be between the %d acknowledged PUBLISHes and that plus the %d in flight"
                  % (what, s["files"], len(acked_files), len(in_flight)))
        # One seq per mutation, and one for the restart's broker.started; on PostgreSQL one more per session open
        # at the stop (the restart ends each with its own event): every acknowledged CONNECT's, and an in-flight
        # CONNECT that committed brings its session's end too.
        sessions = sum(1 for w in writers for a in w.acked if a[0] == "CONNECT") if DATABASES.store == "postgresql" else 0
        per_in_flight = 2 if DATABASES.store == "postgresql" else 1
        low = n_acked + 1 + sessions
        CHECKS.ok(low <= s["seq"] <= low + per_in_flight * len(in_flight),
                  "%s: STATS seq %d must count the %d acknowledged mutations, %d sessions ended and broker.started "
                  "(+ at most %d in flight)" % (what, s["seq"], n_acked, sessions, len(in_flight)))
        for user in sorted(acked_users):
            r = c.call("LIST_CONTENT", user=user)
            CHECKS.eq(r.get("status"), "OK", "%s: acknowledged REGISTER of %s is present" % (what, user))
            names = [f["name"] for f in r["files"]]
            if user in acked_files:
                CHECKS.eq(names, ["%s.dat" % user], "%s: acknowledged PUBLISH of %s.dat is present" % (what, user))
        # Lazy Pirate after the crash: resend each request in flight with its id; the answer must agree
        # with the state (stored OK when it was committed, a fresh answer when it was not).
        for (op, user, fields, body), keys in zip(in_flight, in_flight_keys):
            before = ok(c, "STATS")
            retry = broker.client(keys=keys)  # the writer's own keypair: Lazy Pirate resends as the same client
            r = retry.send_raw([body])
            retry.close()
            CHECKS.ok(r is not None, "%s: no answer to the resent in-flight %s" % (what, op))
            after = ok(c, "STATS")
            if op in ("REGISTER", "CONNECT"):
                CHECKS.eq(r.get("status"), "OK", "%s: resent in-flight %s %s (stored or fresh OK)" % (what, op, user))
            elif op == "PUBLISH":
                CHECKS.ok(r.get("status") in ("OK", "USER NOT CONNECTED"),
                          "%s: resent in-flight PUBLISH of %s answered %r" % (what, user, r))
                lc = ok(c, "LIST_CONTENT", user=user)
                if r["status"] == "OK":
                    CHECKS.eq([f["name"] for f in lc["files"]], [fields["name"]],
                              "%s: an OK to the resent PUBLISH means the file is there" % what)
                    CHECKS.eq(after["files"], before["files"], "%s: the stored OK did not add a file again" % what)
                else:
                    CHECKS.eq(lc["files"], [], "%s: USER NOT CONNECTED means the PUBLISH was never committed" % what)
            if op == "REGISTER":
                CHECKS.eq(ok(c, "LIST_CONTENT", user=user)["files"], [], "%s: %s registered once" % (what, user))
    finally:
        c.close()


def scenario_kill9_mid_stream(binary):
    section("(c) kill -9 during concurrent mutations")
    broker = StoreBroker(binary).start()
    try:
        writers, _, base = run_stream_and_stop(broker, broker.kill9)
        integrity_check(broker)
        broker.start()
        check_stream_survived(broker, writers, base, "after kill -9 mid-stream")
    finally:
        broker.cleanup()


def scenario_sigterm(binary):
    section("(d) SIGTERM exits 0 and the database reopens with everything")
    broker = StoreBroker(binary).start()
    try:
        c = broker.client()
        model = Model()
        for u in ("alice", "bob"):
            ok(c, "REGISTER", user=u)
            model.add_user(u, c)
            ok(c, "CONNECT", user=u, endpoint="tcp://127.0.0.1:7000")
        for k in range(5):
            f = file_fields("sig-%d.dat" % k, "durable sigterm %d" % k, "sig%d" % k)
            ok(c, "PUBLISH", user="alice" if k % 2 else "bob", **f)
            model.publish("alice" if k % 2 else "bob", f)
        pub = raw_request(c, "PUBLISH", user="alice", **file_fields("sig-r.dat", "durable retried", "sigr"))
        first = c.send_raw([pub])
        CHECKS.ok(first is not None and first.get("status") == "OK", "PUBLISH before SIGTERM: %r" % first)
        model.publish("alice", file_fields("sig-r.dat", "durable retried", "sigr"))
        seq = ok(c, "STATS")["seq"]
        c.close()
        rc = broker.terminate()
        CHECKS.eq(rc, 0, "zshare-broker's exit code after SIGTERM")
        integrity_check(broker)
        broker.start()
        c = broker.client(keys=c.keys)
        s = check_state(c, model, "after SIGTERM")
        ended = 2 if DATABASES.store == "postgresql" else 0  # alice's and bob's sessions end with events of their own
        CHECKS.eq(s["seq"], seq + ended + 1, "after SIGTERM STATS seq is the last seq before it + 1 (broker.started; "
                  "on PostgreSQL after one peer.disconnected per open session)")
        retry = broker.client(keys=c.keys)
        CHECKS.eq(retry.send_raw([pub]), first, "a PUBLISH retried after SIGTERM + restart gets the stored reply")
        retry.close()
        c.close()

        section("(d) SIGTERM during concurrent mutations")
        writers, rc, base = run_stream_and_stop(broker, broker.terminate)
        CHECKS.eq(rc, 0, "zshare-broker's exit code after SIGTERM mid-stream")
        integrity_check(broker)
        broker.start()
        check_stream_survived(broker, writers, base, "after SIGTERM mid-stream")
        c = broker.client()
        for user in sorted(model.users):  # the earlier state is still there too
            names = sorted(f["name"] for f in ok(c, "LIST_CONTENT", user=user)["files"])
            CHECKS.eq(names, sorted(n for (u, n) in model.files if u == user), "after two restarts %s's files" % user)
        c.close()
    finally:
        broker.cleanup()


# ---------------------------------------------------------------------------------------------------------
# (e) a version 1 database is upgraded in place
# ---------------------------------------------------------------------------------------------------------

# broker/store.cpp's schema as protocol version 1 left it: files carry `root` beside the whole-file cid.
V1_SCHEMA = """
CREATE TABLE users (name TEXT PRIMARY KEY, registered_ts TEXT NOT NULL, key TEXT NOT NULL DEFAULT '');
CREATE TABLE files (id INTEGER PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
  size INTEGER NOT NULL, cid BLOB NOT NULL, chunk_size INTEGER NOT NULL, root BLOB NOT NULL,
  published_ts TEXT NOT NULL, UNIQUE (user, name));
CREATE TABLE replies (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, reply BLOB NOT NULL);
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, ts_local INTEGER NOT NULL,
  user TEXT NOT NULL, operation TEXT NOT NULL, args TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def files_columns(db):
    con = sqlite3.connect(db)
    try:
        return [row[1] for row in con.execute("PRAGMA table_info(files)")]
    finally:
        con.close()


def scenario_v1_database_upgraded(binary):
    section("(e) a version 1 database keeps its rows and loses root")
    workdir = tempfile.mkdtemp(prefix="zshare-test-")
    db = os.path.join(workdir, "broker.db")
    model = Model()
    con = sqlite3.connect(db)
    try:
        con.executescript(V1_SCHEMA)
        for user in ("alice", "bob"):
            con.execute("INSERT INTO users (name, registered_ts, key) VALUES (?, 'ts', '')", (user,))
            model.users.add(user)
            model.owner[user] = ""  # registered without a key: bound to nobody
        for k, user in enumerate(("alice", "alice", "bob")):
            f = file_fields("v1-%d.dat" % k, "durable v1 file %d" % k, "v1-%d" % k)
            f["cid"] = hashlib.sha256(("whole file %d" % k).encode()).hexdigest()  # a v1 id: kept as it is
            con.execute("INSERT INTO files (user, name, description, size, cid, chunk_size, root, published_ts) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, 'ts')",
                        (user, f["name"], f["description"], f["size"], bytes.fromhex(f["cid"]), f["chunk_size"],
                         hashlib.sha256(b"root %d" % k).digest()))
            model.publish(user, f)
        con.execute("INSERT INTO meta (key, value) VALUES ('seq', 40)")
        con.commit()
    finally:
        con.close()
    CHECKS.ok("root" in files_columns(db), "test bug: the v1 database has a root column")
    broker = Broker(binary, workdir=workdir, db=db).start()
    try:
        ev = EventWatch(broker)
        ev.started(41, 2, 3)  # the v1 seq continues
        ev.close()
        c = broker.client()
        check_state(c, model, "after the upgrade")
        CHECKS.ok("root" not in files_columns(db), "the broker dropped the files table's root column: %r"
                  % files_columns(db))
        ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7000")
        f = file_fields("v3.dat", "durable v3 file", "v3")
        ok(c, "PUBLISH", user="alice", **f)
        model.publish("alice", f)
        c.close()
        CHECKS.eq(broker.terminate(), 0, "zshare-broker's exit code after SIGTERM")
        integrity_check(broker)
        broker.start()
        c = broker.client()
        check_state(c, model, "after the upgrade and a restart")
        c.close()
    finally:
        broker.cleanup()


def main():
    ap = argparse.ArgumentParser(description="crash and shutdown durability of a real zshare-broker")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--store", choices=BrokerDatabases.STORES, default="sqlite",
                    help="the broker's database: a SQLite file, or PostgreSQL (a throw-away cluster)")
    args = ap.parse_args()
    global DATABASES
    DATABASES = BrokerDatabases(args.store)

    def body():
        scenarios = [scenario_ok_survives_kill9, scenario_retry_after_restart, scenario_kill9_mid_stream,
                     scenario_sigterm]
        if args.store == "sqlite":
            scenarios.append(scenario_v1_database_upgraded)
        for scenario in scenarios:
            scenario(args.broker_bin)
    try:
        return CHECKS.run(body)
    finally:
        DATABASES.close()


if __name__ == "__main__":
    sys.exit(main())
