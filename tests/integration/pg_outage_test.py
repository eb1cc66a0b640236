#!/usr/bin/python3
# pg_outage_test.py: a zshare-broker on PostgreSQL (a throw-away cluster) lives through its database going away.
# protocol.md and catalogue.json promise: while the store is out of reach every request is answered STORE
# UNAVAILABLE (with retry_after_ms and the request's id), nothing so answered was done, the broker never exits, and
# it comes back by itself, sessions ended (a broker.started event says so), every OK'd change kept.
#   (a) PostgreSQL stopped: a mutation and a read are answered STORE UNAVAILABLE under their ids, the broker stays
#       up; PostgreSQL started again: the broker serves again without help, its state is exactly what was OK'd, the
#       refused mutation resent (same id) is served as new, and subscribers get broker.started with the next seq;
#   (b) PostgreSQL restarted (pg_ctl restart -m fast) while four clients send mutations: every client gets an
#       answer to every request (an error meanwhile, never silence past the deadline), the broker is still running,
#       and afterwards every OK'd REGISTER and PUBLISH is there, nothing else.
# Clients resend a STORE UNAVAILABLE request with the same id after retry_after_ms (Lazy Pirate); a mutation that
# committed although its batch was answered STORE UNAVAILABLE is then answered with its stored reply, never twice.
# Every wait has a deadline. The first failed check stops the run; a pass ends "N passed, 0 failed".
import argparse
import hashlib
import os
import sys
import threading
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import merkle_tree  # noqa: E402
from pg_cluster import BrokerDatabases  # noqa: E402
from zshare_testlib import PROTOCOL_VERSION, Broker, Checks, wait_for  # noqa: E402

CHECKS = Checks()
UNAVAILABLE = "STORE UNAVAILABLE"
RECOVERY_DEADLINE_S = 30


def section(name):
    print("-- %s" % name, flush=True)


def ts():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def file_fields(name):
    data = hashlib.sha256(name.encode()).digest() * 8
    return {"name": name, "description": "outage test file", "size": len(data), "cid": merkle_tree.cid_hex(data),
            "chunk_size": 16384}


def request(client, op, **fields):
    """One request's bytes and id, to send (and resend) as they are."""
    req_id = client.next_id()
    msg = {"v": PROTOCOL_VERSION, "op": op, "id": req_id, "ts": ts()}
    msg.update(fields)
    return msgpack.packb(msg, use_bin_type=True), req_id


def ok(client, op, **fields):
    r = client.call(op, **fields)
    CHECKS.ok(r.get("status") == "OK", "%s %r answered %r" % (op, fields, r))
    return r


def check_unavailable(reply, req_id, what):
    CHECKS.ok(reply is not None, "%s: no answer while PostgreSQL is down (the broker must answer errors)" % what)
    CHECKS.eq(reply.get("status"), UNAVAILABLE, "%s: status while PostgreSQL is down" % what)
    CHECKS.eq(reply.get("id"), req_id, "%s: the STORE UNAVAILABLE reply echoes the request's id" % what)
    CHECKS.ok(type(reply.get("retry_after_ms")) is int and reply["retry_after_ms"] > 0 and reply.get("error"),
              "%s: STORE UNAVAILABLE carries retry_after_ms and a sentence: %r" % (what, reply))


def serving(client):
    """True once the broker answers STATS with OK (it reconnected and reloaded by itself)."""
    try:
        return client.call("STATS").get("status") == "OK"
    except TimeoutError:
        return False


def state_of(client, users):
    """{user: sorted file names} for `users`, and STATS."""
    out = {}
    for u in users:
        r = client.call("LIST_CONTENT", user=u)
        out[u] = sorted(f["name"] for f in r["files"]) if r.get("status") == "OK" else r.get("status")
    return out, ok(client, "STATS")


# ---------------------------------------------------------------------------------------------------------------
# (a) PostgreSQL stopped, then started
# ---------------------------------------------------------------------------------------------------------------

def scenario_stop_and_start(binary, databases):
    section("(a) PostgreSQL stopped: STORE UNAVAILABLE; started: the broker serves again by itself")
    broker = Broker(binary, db=databases.new()).start()
    try:
        sub = broker.subscriber("broker.")  # broker.started only: this start's is held for the first subscriber
        wait_for(lambda: sub.poll(50) & zmq.POLLIN, 10, "this start's broker.started")
        sub.recv_multipart()
        c = broker.client()
        ok(c, "REGISTER", user="alice")
        ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7000")
        for name in ("one.dat", "two.dat"):
            ok(c, "PUBLISH", user="alice", **file_fields(name))
        seq_before = ok(c, "STATS")["seq"]

        databases.cluster.stop_server("fast")
        body, req_id = request(c, "REGISTER", user="bob")
        check_unavailable(c.send_raw([body]), req_id, "REGISTER bob")
        stats_body, stats_id = request(c, "STATS")
        check_unavailable(c.send_raw([stats_body]), stats_id, "STATS (memory was dropped with the failed batch)")
        CHECKS.ok(broker.running(), "the broker is still running with PostgreSQL down")

        databases.cluster.start_server()
        wait_for(lambda: serving(c), RECOVERY_DEADLINE_S, "the broker to serve again after PostgreSQL came back")
        CHECKS.ok(broker.running(), "the broker recovered without a restart")
        files, stats = state_of(c, ["alice", "bob"])
        CHECKS.eq(files, {"alice": ["one.dat", "two.dat"], "bob": "USER DOES NOT EXIST"},
                  "after the outage: every OK'd change, and not the refused REGISTER")
        CHECKS.eq(stats["connected"], 0, "sessions ended with the outage")
        # Several brokers may share the database: alice's session, this broker's, ends with its own event first.
        CHECKS.eq(stats["seq"], seq_before + 2, "seq after the outage: the last OK'd event's + 2 (alice's "
                  "peer.disconnected, broker.started)")
        CHECKS.ok(sub.poll(5000) & zmq.POLLIN, "subscribers hear broker.started after the outage")
        topic, ev = sub.recv_multipart()
        ev = msgpack.unpackb(ev, raw=False)
        CHECKS.eq((topic, ev["seq"], ev["users"], ev["files"], ev.get("scope")),
                  (b"broker.started", seq_before + 2, 1, 2, "broker"),
                  "broker.started after the outage: topic, seq, users, files, scope")
        r = c.send_raw([body])  # the refused REGISTER, same bytes and id: served as new
        CHECKS.eq((r or {}).get("status"), "OK", "the refused REGISTER resent with its id after the outage")
        r = c.call("PUBLISH", user="alice", **file_fields("three.dat"))
        CHECKS.eq(r.get("status"), "USER NOT CONNECTED", "a PUBLISH after the outage needs a new session")
        ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7000")
        ok(c, "PUBLISH", user="alice", **file_fields("three.dat"))
        sub.close(linger=0)
        c.close()
        CHECKS.eq(broker.terminate(), 0, "zshare-broker exits 0 on SIGTERM after the outage")
    except BaseException:
        print("broker stderr (tail):\n%s" % broker.stderr()[-3000:])
        raise
    finally:
        broker.cleanup()


# ---------------------------------------------------------------------------------------------------------------
# (b) PostgreSQL restarted under load
# ---------------------------------------------------------------------------------------------------------------

class Writer(threading.Thread):
    """A client that registers w<i>-<k>, connects it and publishes one file, k = 1, 2, ... until stopped. A STORE
    UNAVAILABLE request is resent with its id after retry_after_ms; a session lost with the outage (USER NOT
    CONNECTED) is opened again, as a peer does. Keeps what was OK'd."""

    REQUEST_DEADLINE_S = 20  # one request's answer (its resends included) must come within this

    def __init__(self, broker, index, stop):
        super().__init__(daemon=True)
        self.broker = broker
        self.index = index
        self.stop = stop
        self.registered = []
        self.published = []
        self.unavailable = 0
        self.error = None

    def call(self, client, op, **fields):
        body, req_id = request(client, op, **fields)
        deadline = time.monotonic() + self.REQUEST_DEADLINE_S
        while time.monotonic() < deadline:
            r = client.send_raw([body])  # a timeout resets the socket: Lazy Pirate resends on a new one
            if r is None:
                continue
            if r.get("id") != req_id:
                raise RuntimeError("%s answered under id %r, sent %r" % (op, r.get("id"), req_id))
            if r.get("status") != UNAVAILABLE:
                return r
            self.unavailable += 1
            time.sleep(r["retry_after_ms"] / 1000.0)  # the broker's own retry_after_ms, as Lazy Pirate waits
        raise RuntimeError("%s %r: no answer but STORE UNAVAILABLE within %ds" % (op, fields, self.REQUEST_DEADLINE_S))

    def expect(self, r, status, what):
        if r.get("status") != status:
            raise RuntimeError("%s answered %r" % (what, r))

    def run(self):
        client = self.broker.client(timeout_ms=2000)
        try:
            k = 0
            while not self.stop.is_set():
                k += 1
                user = "w%d-%d" % (self.index, k)
                self.expect(self.call(client, "REGISTER", user=user), "OK", "REGISTER %s" % user)
                self.registered.append(user)
                f = file_fields("%s.dat" % user)
                for _ in range(5):  # each outage may end the session once more
                    self.expect(self.call(client, "CONNECT", user=user, endpoint="tcp://127.0.0.1:9"), "OK",
                                "CONNECT %s" % user)
                    r = self.call(client, "PUBLISH", user=user, **f)
                    if r.get("status") != "USER NOT CONNECTED":
                        break
                self.expect(r, "OK", "PUBLISH %s" % f["name"])
                self.published.append(user)
        except Exception as e:  # noqa: BLE001
            self.error = "writer %d: %s" % (self.index, e)
        finally:
            client.close()


def scenario_restart_under_load(binary, databases):
    section("(b) pg_ctl restart -m fast while four clients send mutations")
    broker = Broker(binary, db=databases.new()).start()
    try:
        stop = threading.Event()
        writers = [Writer(broker, i, stop) for i in range(4)]
        for w in writers:
            w.start()

        def acked(n):
            def enough():
                for w in writers:
                    CHECKS.ok(w.error is None, "a writer failed: %s" % w.error)
                return sum(len(w.published) for w in writers) >= n
            return enough

        wait_for(acked(20), 60, "20 OK'd PUBLISHes before the restart")
        before = sum(len(w.published) for w in writers)
        databases.cluster.restart("fast")
        CHECKS.ok(broker.running(), "the broker is still running after PostgreSQL's restart")
        wait_for(acked(before + 20), 60, "20 more OK'd PUBLISHes after the restart (the broker recovered by itself)")
        stop.set()
        for w in writers:
            w.join(timeout=Writer.REQUEST_DEADLINE_S * 4)
            CHECKS.ok(not w.is_alive(), "writer %d finished" % w.index)
            CHECKS.ok(w.error is None, "writer %d: %s" % (w.index, w.error))
        CHECKS.ok(broker.running(), "the broker is still running at the end")

        users = [u for w in writers for u in w.registered]
        published = {u for w in writers for u in w.published}
        print("   %d REGISTERs and %d PUBLISHes OK'd; %d STORE UNAVAILABLE answers resent"
              % (len(users), len(published), sum(w.unavailable for w in writers)), flush=True)
        c = broker.client()
        files, stats = state_of(c, users)
        CHECKS.eq(stats["users"], len(users), "STATS users: exactly the OK'd REGISTERs")
        CHECKS.eq(stats["files"], len(published), "STATS files: exactly the OK'd PUBLISHes")
        for u in users:
            CHECKS.eq(files[u], ["%s.dat" % u] if u in published else [], "%s's files after the restart" % u)
        c.close()
        CHECKS.eq(broker.terminate(), 0, "zshare-broker exits 0 on SIGTERM after the restart")
        # What was OK'd is in PostgreSQL itself, not only in the broker's memory: a new broker process loads it.
        broker.start()
        c = broker.client()
        CHECKS.eq(state_of(c, users)[0], files, "a restarted broker loads the same state from PostgreSQL")
        c.close()
    except BaseException:
        print("broker stderr (tail):\n%s" % broker.stderr()[-3000:])
        raise
    finally:
        broker.cleanup()


def main():
    ap = argparse.ArgumentParser(description="a zshare-broker on PostgreSQL through PostgreSQL's outages")
    ap.add_argument("--broker-bin", required=True)
    args = ap.parse_args()
    databases = BrokerDatabases("postgresql")
    started = time.monotonic()
    try:
        return CHECKS.run(lambda: (scenario_stop_and_start(args.broker_bin, databases),
                                   scenario_restart_under_load(args.broker_bin, databases)), timed_from=started)
    finally:
        databases.close()


if __name__ == "__main__":
    sys.exit(main())
