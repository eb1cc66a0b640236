#!/usr/bin/python3
# cluster_test.py: two LIVE brokers, A and B, on one throw-away PostgreSQL database, one keypair, one logger; real
# processes. What the issue asks of several brokers serving one network:
#   (1) a user registered through A is found through B;
#   (2) one event stream: subscribers on A and on B see the same events, same seq, same order, whichever broker
#       made each change;
#   (3) the same names registered through A and B at once, by different keys: each name exactly once OK;
#   (4) a Lazy Pirate retry that moves from A to B gets A's stored reply, applied once;
#   (5) a HEARTBEAT to B for a session A holds is USER NOT CONNECTED; a DIAL through B reaches the seeder's heartbeat
#       reply at A; CONNECT through B takes the session over;
#   (5b) PostgreSQL restarted while both brokers write: every request answered (OK or STORE UNAVAILABLE), both
#       recover by themselves, every OK kept, and both PUBs carry every seq through it, the same events;
#   (6) A killed (-9): B serves on, and ends the sessions A held once A's lease lapses (peer.disconnected
#       "broker a stopped"), within the lease and a second or two;
#   (7) the logger holds every operation of both brokers once: keys (broker id, seq) 1..n, n = seq less the starts.
# Every wait is on a condition with a deadline. Skips (exit 77, saying so) only when no PostgreSQL is installed.
import argparse
import os
import sys
import threading
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_cluster import run_on_postgresql  # noqa: E402
from rpclog_test import parse_line  # noqa: E402
from zshare_testlib import PROTOCOL_VERSION, Broker, Checks, Client, RpcLog, wait_for  # noqa: E402

CHECKS = Checks()
LEASE_S = 2           # the brokers' --lease: A's sessions end this long after it stops renewing
FOLLOW_DEADLINE_S = 5  # another broker's change reaches this broker's memory (NOTIFY; a 1 s poll at worst)


def section(name):
    print("-- %s" % name, flush=True)


def ok(client, op, **fields):
    r = client.call(op, **fields)
    CHECKS.eq(r.get("status"), "OK", "%s %r through %s: %r" % (op, fields, client.endpoint, r))
    return r


def raw_request(client, op, **fields):
    msg = {"v": PROTOCOL_VERSION, "op": op, "id": client.next_id(),
           "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
    msg.update(fields)
    return msgpack.packb(msg, use_bin_type=True)


def file_fields(name):
    return {"name": name, "description": "cluster test file", "size": 1000, "cid": "ab" * 32, "chunk_size": 65536}


class Stream:
    """Every event of one broker's PUB, in arrival order, read on a thread."""

    def __init__(self, broker):
        self.sock = broker.subscriber()
        self.events = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            if self.sock.poll(100) & zmq.POLLIN:
                topic, body = self.sock.recv_multipart()
                with self.lock:
                    self.events.append((topic.decode(), msgpack.unpackb(body, raw=False)))

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def last_seq(self):
        events = self.snapshot()
        return events[-1][1]["seq"] if events else 0

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close(linger=0)


def subscribed(stream, via, tag):
    """Registers tag-1, tag-2, ... through `via` until `stream` shows one: it is then subscribed."""
    n = 0

    def heard():
        nonlocal n
        n += 1
        ok(via, "REGISTER", user="%s-%d" % (tag, n))
        return any(t == "user.registered" and b["user"].startswith(tag + "-") for t, b in stream.snapshot())
    wait_for(heard, 10, "the subscriber to hear %s" % tag)


def users_of(client):
    return {u["user"]: u["endpoint"] for u in ok(client, "LIST_USERS")["users"]}


def run(args, root, databases):
    db = databases.new()
    workdir = os.path.join(root, "brokers")  # one keypair for both: one network
    os.makedirs(os.path.join(root, "rpclog"))
    logger = RpcLog(args.rpclog_bin, workdir=os.path.join(root, "rpclog")).start()
    common = ["--lease", str(LEASE_S), "--probe-timeout", "0", "--rate-limit", "0"]
    a = Broker(args.broker_bin, workdir=workdir, db=db, rpclog=logger.address, extra_args=common + ["--name", "a"])
    b = Broker(args.broker_bin, workdir=workdir, db=db, rpclog=logger.address, extra_args=common + ["--name", "b"])
    a.stderr_path = os.path.join(root, "a.stderr")
    b.stderr_path = os.path.join(root, "b.stderr")
    streams = []
    try:
        a.start()
        b.start()
        alice, bob = a.client(), b.client()  # two keys: alice's users are hers, bob's his
        ea, eb = Stream(a), Stream(b)
        streams += [ea, eb]
        subscribed(ea, alice, "sub-a")
        subscribed(eb, alice, "sub-b")

        section("(1) a user registered through A is found through B")
        ok(alice, "REGISTER", user="carol")
        wait_for(lambda: bob.call("LIST_CONTENT", user="carol").get("status") == "OK", FOLLOW_DEADLINE_S,
                 "B to know carol")
        r = bob.call("REGISTER", user="carol")
        CHECKS.eq(r.get("status"), "USERNAME IN USE", "REGISTER carol through B after A registered her")

        section("(2) one event stream: A's and B's changes, the same seq on both brokers' PUB")
        ok(alice, "CONNECT", user="carol", endpoint="tcp://127.0.0.1:7001")
        ok(bob, "REGISTER", user="dave")
        ok(bob, "CONNECT", user="dave", endpoint="tcp://127.0.0.1:7002")
        for k in range(3):
            ok(alice, "PUBLISH", user="carol", **file_fields("carol-%d.dat" % k))
            ok(bob, "PUBLISH", user="dave", **file_fields("dave-%d.dat" % k))
        # carol's files through B: published through A, carol's session held by A, her key's change sent to B
        ok(Client(b.control, server_key=b.public_key, keys=alice.keys), "DELETE", user="carol",
           name="carol-0.dat")
        ok(bob, "DELETE", user="dave", name="dave-0.dat")
        final = ok(bob, "STATS")["seq"]
        wait_for(lambda: ea.last_seq() >= final and eb.last_seq() >= final, FOLLOW_DEADLINE_S,
                 "both subscribers to reach seq %d" % final)
        sa, sb = ea.snapshot(), eb.snapshot()
        # Each subscriber joined at its own moment: compare from the later first seq both saw.
        start = max(sa[0][1]["seq"], sb[0][1]["seq"])
        ta = [(t, e) for t, e in sa if e["seq"] >= start]
        tb = [(t, e) for t, e in sb if e["seq"] >= start]
        CHECKS.eq(ta, tb, "A's and B's subscribers see the same events, same bodies, same order")
        seqs = [e["seq"] for _, e in ta]
        CHECKS.eq(seqs, list(range(start, start + len(seqs))), "one seq, rising by one, on both PUBs")
        topics = [t for t, _ in ta]
        CHECKS.eq(topics.count("file.published"), 6, "both brokers' PUBLISHes are in the one stream")
        r = alice.call("SEARCH", q="cluster test file", limit=100)
        CHECKS.eq(sorted(x["name"] for x in r["results"]), ["carol-1.dat", "carol-2.dat", "dave-1.dat", "dave-2.dat"],
                  "SEARCH through A finds the files published through both brokers, online")

        section("(3) the same names registered through A and B at once, 4 clients each: each name once")
        names = ["race-%d" % i for i in range(60)]
        results = []  # (name, status), from every client
        lock = threading.Lock()

        def register_all(client, order):
            for n in order:
                status = client.call("REGISTER", user=n).get("status")
                with lock:
                    results.append((n, status))
        racers = [(a if i % 2 == 0 else b).client(timeout_ms=10000) for i in range(8)]
        threads = [threading.Thread(target=register_all, args=(k, names if i % 4 < 2 else names[::-1]))
                   for i, k in enumerate(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        CHECKS.ok(a.running() and b.running(), "both brokers still run after the race")
        for n in names:
            got = sorted(st for m, st in results if m == n)
            CHECKS.eq(got, ["OK"] + ["USERNAME IN USE"] * 7, "REGISTER %s by 8 clients through A and B: one OK" % n)
        print("   %d names, each registered once by 8 racing clients (4 at A, 4 at B)" % len(names), flush=True)

        section("(4) a retry that moves from A to B gets A's stored reply, applied once")
        body = raw_request(alice, "PUBLISH", user="carol", **file_fields("moved.dat"))
        first = alice.send_raw([body])
        CHECKS.eq((first or {}).get("status"), "OK", "PUBLISH moved.dat through A")
        seq = ok(alice, "STATS")["seq"]
        wait_for(lambda: ok(bob, "STATS")["seq"] == seq, FOLLOW_DEADLINE_S, "B to follow A to seq %d" % seq)
        via_b = Client(b.control, server_key=b.public_key, keys=alice.keys)  # the same client, at B
        again = via_b.send_raw([body])
        CHECKS.eq(again, first, "the same request id resent to B gets A's reply")
        CHECKS.eq(ok(bob, "STATS")["seq"], seq, "the retry through B applied nothing (no new event)")
        names_b = [f["name"] for f in ok(bob, "LIST_CONTENT", user="carol")["files"]]
        CHECKS.eq(names_b.count("moved.dat"), 1, "moved.dat is published once")

        section("(5) HEARTBEAT and DIAL through B for a session A holds; CONNECT through B takes it over")
        ok(alice, "CONNECT", user="sub-a-1", endpoint="tcp://127.0.0.1:7003", heartbeat_ms=60000)
        wait_for(lambda: users_of(bob).get("sub-a-1") == "tcp://127.0.0.1:7003", FOLLOW_DEADLINE_S,
                 "B to list sub-a-1's session")
        r = via_b.call("HEARTBEAT", user="sub-a-1")
        CHECKS.eq(r.get("status"), "USER NOT CONNECTED", "HEARTBEAT through B for the session A holds: %r" % r)
        # A downloader at B asks sub-a-1 (a seeder behind NAT, its session held by A) to dial out: the order goes
        # to A, and rides on the seeder's next heartbeat reply there.
        r = ok(bob, "DIAL", user="sub-a-1", callback_port=7777)
        CHECKS.eq(r.get("callback"), "tcp://127.0.0.1:7777", "DIAL through B answers the callback")
        dials = []

        def dial_reached_a():
            dials.extend(ok(alice, "HEARTBEAT", user="sub-a-1").get("dials", []))
            return dials
        wait_for(dial_reached_a, FOLLOW_DEADLINE_S, "the dial order sent through B to reach the seeder at A")
        CHECKS.eq(dials, [{"callback": "tcp://127.0.0.1:7777"}], "the seeder's heartbeat at A carries B's dial order")
        r = ok(via_b, "CONNECT", user="sub-a-1", endpoint="tcp://127.0.0.1:7004", heartbeat_ms=60000)
        CHECKS.eq(r.get("replaced"), True, "CONNECT through B replaced the session A held")
        ok(via_b, "HEARTBEAT", user="sub-a-1")
        wait_for(lambda: users_of(alice).get("sub-a-1") == "tcp://127.0.0.1:7004", FOLLOW_DEADLINE_S,
                 "A to list the session at its new endpoint")
        r = alice.call("HEARTBEAT", user="sub-a-1")
        CHECKS.eq(r.get("status"), "USER NOT CONNECTED", "and now A sends the peer to B's session: %r" % r)

        section("(5b) PostgreSQL restarted under load: both brokers answer meanwhile, recover, keep one stream")
        stop = threading.Event()
        outcomes = []  # (broker, user, status or None when unanswered)

        def write_until_stopped(broker, tag):
            k = broker.client(timeout_ms=10000)
            n = 0
            try:
                while not stop.is_set() and n < 2000:
                    n += 1
                    user = "%s-%d" % (tag, n)
                    try:
                        r = k.call("REGISTER", user=user)
                        status = r.get("status")
                    except TimeoutError:
                        r, status = {}, None
                    with lock:
                        outcomes.append((tag, user, status))
                    if status == "STORE UNAVAILABLE":
                        stop.wait(r.get("retry_after_ms", 1000) / 1000.0)  # as the reply asks, as peers do
            finally:
                k.close()
        writers = [threading.Thread(target=write_until_stopped, args=(br, tag)) for br, tag in ((a, "pga"), (b, "pgb"))]
        for t in writers:
            t.start()
        wait_for(lambda: sum(1 for o in outcomes if o[2] == "OK") >= 20, 20, "writes through both brokers")
        databases.cluster.restart("fast")

        def serving(br):
            k = br.client(timeout_ms=3000)
            try:
                return k.call("STATS").get("status") == "OK"
            finally:
                k.close()
        wait_for(lambda: any(o[2] == "OK" for o in outcomes[-4:]) and serving(a) and serving(b),
                 30, "both brokers to serve again after PostgreSQL's restart")
        stop.set()
        for t in writers:
            t.join(timeout=60)
        CHECKS.ok(a.running() and b.running(), "both brokers run through PostgreSQL's restart")
        statuses = {o[2] for o in outcomes}
        CHECKS.ok(statuses <= {"OK", "STORE UNAVAILABLE"}, "every write answered OK or STORE UNAVAILABLE: %s" % statuses)
        refused = sum(1 for o in outcomes if o[2] == "STORE UNAVAILABLE")
        acked = [o[1] for o in outcomes if o[2] == "OK"]
        print("   %d writes OK, %d STORE UNAVAILABLE during the restart" % (len(acked), refused), flush=True)
        last = ok(alice, "STATS")["seq"]
        wait_for(lambda: ok(bob, "STATS")["seq"] == last, FOLLOW_DEADLINE_S, "B to follow A after the restart")
        for user in acked:
            CHECKS.eq(bob.call("LIST_CONTENT", user=user).get("status"), "OK", "%s, acknowledged, survives" % user)
        wait_for(lambda: ea.last_seq() >= last and eb.last_seq() >= last, FOLLOW_DEADLINE_S,
                 "both subscribers to reach seq %d" % last)
        sa = [(t, e) for t, e in ea.snapshot() if e["seq"] >= start]
        sb = [(t, e) for t, e in eb.snapshot() if e["seq"] >= start]
        CHECKS.eq([e["seq"] for _, e in sa], list(range(start, start + len(sa))),
                  "A's subscriber saw every seq through the restart (events committed while A reloaded included)")
        CHECKS.eq(sa, sb, "A's and B's subscribers saw the same events through the restart")
        CHECKS.eq(sum(1 for t, e in sa if t == "broker.started" and e.get("scope") == "broker"), 2,
                  "each broker's recovery is one broker.started (scope broker)")
        # The sessions each broker held ended with the reload: connect again for what follows.
        ok(alice, "CONNECT", user="carol", endpoint="tcp://127.0.0.1:7001")
        ok(bob, "CONNECT", user="dave", endpoint="tcp://127.0.0.1:7002")
        final = last

        section("(6) A killed: B ends A's sessions when A's lease lapses")
        held_by_a = "carol"  # connected through A in (2); dave's session is B's
        CHECKS.eq(set(users_of(bob)) >= {"carol", "dave"}, True, "carol and dave are online before the kill")
        a.kill9()
        killed = time.monotonic()
        wait_for(lambda: held_by_a not in users_of(bob), LEASE_S + 5, "B to end carol's session after A's lease")
        elapsed = time.monotonic() - killed
        print("   carol went offline %.1fs after A's kill (lease %ds)" % (elapsed, LEASE_S), flush=True)
        CHECKS.ok("dave" in users_of(bob), "dave's session, held by B, goes on")
        wait_for(lambda: any(t == "peer.disconnected" and e["user"] == held_by_a for t, e in eb.snapshot()
                             if e["seq"] > final), FOLLOW_DEADLINE_S, "B's PUB to say carol's session ended")
        ended = [e for t, e in eb.snapshot() if t == "peer.disconnected" and e["user"] == held_by_a][-1]
        CHECKS.eq(ended["reason"], "broker a stopped", "the reason names the broker that stopped")
        ok(bob, "REGISTER", user="after-a")  # B writes on alone

        section("(7) the logger holds every operation of both brokers once")
        last = ok(bob, "STATS")["seq"]
        starts = 4  # a's and b's broker.started at their start and after PostgreSQL's restart: no log record

        def logged():
            return len(logger.complete_lines()) >= last - starts
        wait_for(logged, 20, "the logger to hold %d records" % (last - starts))
        records = [parse_line(ln) for ln in logger.complete_lines()]
        CHECKS.ok(all(r is not None for r in records), "every log line is a record")
        keys = [(r.broker, r.seq) for r in records]
        CHECKS.eq(len(set(r.broker for r in records)), 1, "one broker id: the database's, whichever broker wrote")
        CHECKS.eq(sorted(r.seq for r in records), list(range(1, last - starts + 1)),
                  "outbox seqs 1..n, each once (n = seq %d less %d starts)" % (last, starts))
        CHECKS.eq(len(keys), len(set(keys)), "no record twice")
        ops = [(r.user, r.op) for r in records]
        ended = sum(1 for t, e in eb.snapshot() if t == "peer.disconnected" and e["user"] == "carol")
        CHECKS.eq(ops.count(("carol", "DISCONNECT")), ended,
                  "each end of carol's sessions (PostgreSQL's restart, A's kill: %d events) is logged once" % ended)
        CHECKS.eq(sum(1 for u, o in ops if o == "REGISTER" and u.startswith("race-")), len(names),
                  "each raced name's REGISTER is logged once")
        for k in [alice, bob, via_b] + racers:
            k.close()
    except BaseException:
        for name, br in (("A", a), ("B", b)):
            if os.path.exists(br.stderr_path):
                print("%s stderr (tail):\n%s" % (name, br.stderr()[-3000:]))
        raise
    finally:
        for s in streams:
            s.close()
        a.stop()
        b.stop()
        logger.stop()


def main():
    ap = argparse.ArgumentParser(description="two live brokers on one PostgreSQL database serve one network")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--rpclog-bin", required=True)
    args = ap.parse_args()
    return run_on_postgresql(CHECKS, lambda root, databases: run(args, root, databases), "zshare-cluster-")


if __name__ == "__main__":
    sys.exit(main())
