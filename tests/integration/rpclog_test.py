#!/usr/bin/python3
# rpclog_test.py: the operations log end to end with real processes on loopback: zshare-broker ships its
# outbox to zshare-rpclog over ONC-RPC; every acknowledged mutation must reach the log exactly once, in the
# order of the operations, whatever crashes in between.
#   (a) the logger is down during 1,000 acknowledged mutations (REGISTER, CONNECT, PUBLISH, DELETE, DISCONNECT,
#       UNREGISTER), then started: all 1,000 lines are there exactly once, in order, nothing else (some
#       request ids are sent twice: the broker answers from its stored reply and logs nothing more);
#   (b) the broker is killed (kill -9) with undelivered records and restarted, then the logger starts: all
#       delivered exactly once; and the broker killed twice mid-delivery while a client keeps retrying
#       (Lazy Pirate, same request ids): still every operation exactly once;
#   (c) the logger killed with kill -9 mid-stream (twice) and restarted: nothing lost, nothing doubled; and
#       records it had stored but not acknowledged when it died (lines written by hand) are not stored twice;
#   (d) `zshare-rpclog tail --server --user --op -n` prints the expected lines (QUERY);
#   (e) a torn last line added by hand while the logger is stopped is cut at start-up and reported on stderr,
#       and delivery continues (also when the torn line is the broker's next record without its newline);
#   (f) rpcinfo: when rpcbind runs (started here as root if it is not running and the binary exists),
#       `rpcinfo -p` lists program 536894035 version 1 tcp at the logger's port; otherwise says why it skipped;
#   (g) a client that sends half a record and goes silent: another client's LOG is still acknowledged at once
#       (the logger used to wait 35 s for the rest), and the silent one is closed after --record-timeout-ms;
#   (h) a logger host that drops SYNs (a listener whose accept queue is full): `tail` fails within its
#       timeout, the broker reports the outage and still stops promptly on SIGTERM (connects have a deadline).
# The broker runs over CurveZMQ (its default); every operation is sent by one client keypair, so a resend is
# the same client's (the broker's reply cache is per sender key), and a REGISTER line's args name that key.
# Every wait has a deadline; the first failed check stops the run with a message and a non-zero exit.
import argparse
import datetime
import errno
import hashlib
import json
import os
import select
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import merkle_tree  # noqa: E402
from zshare_testlib import CheckFailed, Checks, Broker, RpcLog, free_port, wait_for  # noqa: E402

RPCLOG_PROGRAM = 536894035  # 0x20005A53, schemas/rpclog.x
DELIVERY_DEADLINE_S = 60.0
WRITER_DEADLINE_S = 90.0


CHECKS = Checks()
CLIENT_KEYS = zmq.curve_keypair()  # the one client of this test: it owns every user it registers
REGISTER_ARGS = "key=" + CLIENT_KEYS[0].decode()  # a REGISTER's log line names the key that now owns the user


def section(name):
    print("-- %s" % name, flush=True)


def until(predicate, deadline_s, what):
    """wait_for, but a timeout is a failed check."""
    try:
        return wait_for(predicate, deadline_s, what)
    except TimeoutError as e:
        raise CheckFailed(str(e))


# ---------------------------------------------------------------------------------------------------------
# Operations and the log line each must produce: `<ts>[*] <user> <OP> <args>\t#<broker id>:<seq>`
# ---------------------------------------------------------------------------------------------------------

class Op:
    """One mutation with a fixed request id and stamp, so a resend is the same request."""
    _counter = 0
    _base = datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc)

    def __init__(self, op, fields, args):
        Op._counter += 1
        k = Op._counter
        self.op = op
        self.fields = fields
        self.user = fields["user"]
        self.args = args
        stamp = Op._base + datetime.timedelta(milliseconds=7 * k)
        self.ts = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (stamp.microsecond // 1000)
        self.ts_local = k % 5 == 0  # some stamps from the peer's own clock: the line marks them with '*'
        self.req_id = "rpclog-test-%s-%d" % (uuid.uuid4().hex[:12], k)

    def expected(self):
        return (self.ts, self.ts_local, self.user, self.op, self.args)

    def __repr__(self):
        return "%s %s %r" % (self.op, self.user, self.args)


def file_fields(user, name):
    data = hashlib.sha256((user + "/" + name).encode()).digest() * 50
    return {"name": name, "description": "rpclog test file", "size": len(data), "cid": merkle_tree.cid_hex(data),
            "chunk_size": 16384}


def user_script(user, port):
    """Ten mutations of one user, every kind the log records; names with spaces test the args field."""
    endpoint = "tcp://127.0.0.1:%d" % port
    f = [file_fields(user, n) for n in ("a.dat", "b c.txt", "c.bin", "d  e.iso")]

    def publish(x):
        return Op("PUBLISH", dict(user=user, **x), "%s %d %s" % (x["name"], x["size"], x["cid"]))

    def delete(x):
        return Op("DELETE", {"user": user, "name": x["name"]}, x["name"])

    return [Op("REGISTER", {"user": user}, REGISTER_ARGS),
            Op("CONNECT", {"user": user, "endpoint": endpoint}, endpoint),
            publish(f[0]), publish(f[1]), publish(f[2]),
            delete(f[0]),
            publish(f[3]),
            delete(f[2]),
            Op("DISCONNECT", {"user": user}, ""),
            Op("UNREGISTER", {"user": user}, "files_removed=2")]


def mixed_plan(prefix, n):
    """n mutations (a multiple of 10): user after user, each running user_script."""
    assert n % 10 == 0
    ops = []
    for i in range(n // 10):
        ops.extend(user_script("%s-u%d" % (prefix, i), 7000 + i))
    return ops


def sessionless_plan(prefix, n):
    """n mutations (a multiple of 3) that stay valid across broker restarts (sessions do not survive one):
    REGISTER, CONNECT, UNREGISTER per user."""
    assert n % 3 == 0
    ops = []
    for i in range(n // 3):
        user = "%s-u%d" % (prefix, i)
        endpoint = "tcp://127.0.0.1:%d" % (9000 + i)
        ops += [Op("REGISTER", {"user": user}, REGISTER_ARGS),
                Op("CONNECT", {"user": user, "endpoint": endpoint}, endpoint),
                Op("UNREGISTER", {"user": user}, "files_removed=0")]
    return ops


def perform(client, op, deadline):
    """Sends op until the broker answers OK; a timeout resends the same request id (Lazy Pirate)."""
    while True:
        try:
            r = client.call(op.op, req_id=op.req_id, ts=op.ts, ts_local=op.ts_local, **op.fields)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise CheckFailed("no answer to %r before the deadline" % op)
            continue
        CHECKS.ok(r.get("status") == "OK", "%r answered %r" % (op, r))
        return


def perform_all(broker, ops):
    c = broker.client(keys=CLIENT_KEYS)
    try:
        deadline = time.monotonic() + WRITER_DEADLINE_S
        for op in ops:
            perform(c, op, deadline)
    finally:
        c.close()


class Writer(threading.Thread):
    """Performs ops in order on its own socket; `done` counts the acknowledged ones."""

    def __init__(self, broker, ops, timeout_ms=1000):
        super().__init__(daemon=True)
        self.broker = broker
        self.ops = ops
        self.timeout_ms = timeout_ms
        self.done = 0
        self.error = None

    def run(self):
        try:
            c = self.broker.client(timeout_ms=self.timeout_ms, keys=CLIENT_KEYS)
            try:
                deadline = time.monotonic() + WRITER_DEADLINE_S
                for op in self.ops:
                    perform(c, op, deadline)
                    self.done += 1
            finally:
                c.close()
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def reached(self, n):
        if self.error is not None:
            raise CheckFailed("the writer failed: %s" % self.error)
        return self.done >= n

    def finish(self):
        self.join(WRITER_DEADLINE_S + 10)
        CHECKS.ok(not self.is_alive(), "the writer did not finish")
        if self.error is not None:
            raise self.error if isinstance(self.error, CheckFailed) else CheckFailed("writer: %r" % self.error)
        CHECKS.eq(self.done, len(self.ops), "operations acknowledged by the writer")


class Rec:
    __slots__ = ("broker", "seq", "ts", "ts_local", "user", "op", "args")

    def fields(self):
        return (self.ts, self.ts_local, self.user, self.op, self.args)


def parse_line(line):
    """The log line format of rpclog/log_record.hpp, read independently; None when it is not a record."""
    tab = line.rfind("\t#")
    if tab < 0:
        return None
    broker, sep, seq = line[tab + 2:].rpartition(":")
    if not sep or not seq.isdigit():
        return None
    parts = line[:tab].split(" ", 3)
    if len(parts) < 3:
        return None
    r = Rec()
    r.broker, r.seq = broker, int(seq)
    r.ts_local = parts[0].endswith("*")
    r.ts = parts[0][:-1] if r.ts_local else parts[0]
    r.user, r.op = parts[1], parts[2]
    r.args = parts[3] if len(parts) == 4 else ""
    return r


def format_line(broker_id, seq, op):
    """The line the log must hold for op (without its newline)."""
    line = op.ts + ("*" if op.ts_local else "") + " " + op.user + " " + op.op
    if op.args:
        line += " " + op.args
    return line + "\t#%s:%d" % (broker_id, seq)


def check_log_exact(logger, broker_id, ops, what):
    """The log holds exactly ops, in order, each once, all from broker_id with strictly increasing seq."""
    lines = logger.complete_lines()
    with open(logger.log, "rb") as f:
        data = f.read()
    CHECKS.ok(data.endswith(b"\n"), "%s: the log ends with a complete line" % what)
    recs = []
    for i, line in enumerate(lines):
        r = parse_line(line)
        CHECKS.ok(r is not None, "%s: line %d of the log is not a record: %r" % (what, i + 1, line))
        recs.append(r)
    CHECKS.eq(sorted(set(r.broker for r in recs)), [broker_id], "%s: broker ids in the log" % what)
    keys = [(r.broker, r.seq) for r in recs]
    twice = sorted(k for k in set(keys) if keys.count(k) > 1) if len(set(keys)) != len(keys) else []
    CHECKS.ok(not twice, "%s: records stored twice: %r" % (what, twice[:10]))
    for i in range(1, len(recs)):
        if recs[i].seq <= recs[i - 1].seq:
            raise CheckFailed("%s: seq not strictly increasing at line %d: %d after %d"
                              % (what, i + 1, recs[i].seq, recs[i - 1].seq))
    got = [r.fields() for r in recs]
    want = [op.expected() for op in ops]
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise CheckFailed("%s: log line %d is %r, expected the operation %r, i.e. %r"
                              % (what, i + 1, lines[i], ops[i], w))
    if len(got) < len(want):
        raise CheckFailed("%s: the log lacks %d operations, the first missing: %r"
                          % (what, len(want) - len(got), ops[len(got)]))
    if len(got) > len(want):
        raise CheckFailed("%s: %d lines more than operations, the first extra: %r"
                          % (what, len(got) - len(want), lines[len(want)]))
    CHECKS.eq(len(got), len(want), "%s: records in the log" % what)
    # And byte for byte as the format says.
    mismatched = [i for i, (r, op) in enumerate(zip(recs, ops)) if format_line(broker_id, r.seq, op) != lines[i]]
    CHECKS.ok(not mismatched, "%s: line %d is not byte for byte the documented format: %r"
              % (what, (mismatched or [0])[0] + 1, lines[(mismatched or [0])[0]] if lines else None))
    return recs


def db_query(db, sql):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def broker_id(broker):
    """The broker's id as the logger keys it (the meta row, printed as 16 hex digits)."""
    rows = db_query(broker.db, "SELECT value FROM meta WHERE key = 'broker_id'")
    CHECKS.ok(len(rows) == 1, "the broker's database has a broker_id: %r" % rows)
    return "%016x" % rows[0][0]


def outbox_count(broker):
    return db_query(broker.db, "SELECT count(*) FROM outbox")[0][0]


def wait_delivered(logger, broker, n, what):
    """Until the broker's outbox is empty and the log holds at least n complete lines. With the outbox empty
    nothing is in flight (a record leaves it only after the logger acknowledged it), so no line comes later."""
    def delivered():
        return outbox_count(broker) == 0 and len(logger.complete_lines()) >= n
    try:
        wait_for(delivered, DELIVERY_DEADLINE_S, what)
    except TimeoutError as e:
        raise CheckFailed("%s (outbox holds %d, the log %d lines of %d)\n-- broker stderr:\n%s\n-- logger stderr:\n%s"
                          % (e, outbox_count(broker), len(logger.complete_lines()), n, broker.stderr()[-2000:],
                             logger.stderr()[-2000:]))


class Scenario:
    """A work folder with a logger (not started) and a broker shipping to it (not started)."""

    def __init__(self, args, name):
        self.dir = tempfile.mkdtemp(prefix="zshare-rpclog-%s-" % name)
        os.makedirs(os.path.join(self.dir, "logger"))
        os.makedirs(os.path.join(self.dir, "broker"))
        self.logger = RpcLog(args.rpclog_bin, workdir=os.path.join(self.dir, "logger"))
        self.broker = Broker(args.broker_bin, workdir=os.path.join(self.dir, "broker"), rpclog=self.logger.address)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            for who, p in (("broker", self.broker), ("logger", self.logger)):
                if os.path.exists(p.stderr_path):
                    print("-- %s stderr (last 3000 bytes):\n%s" % (who, p.stderr()[-3000:]), flush=True)
        self.broker.stop()
        self.logger.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


# ---------------------------------------------------------------------------------------------------------
# (a) the logger down during 1,000 operations, then (d) tail against that log
# ---------------------------------------------------------------------------------------------------------

def scenario_logger_down(args):
    section("(a) the logger down during 1,000 acknowledged mutations, then started")
    with Scenario(args, "down") as s:
        s.broker.start()
        ops = mixed_plan("a", 1000)
        perform_all(s.broker, ops)
        perform_all(s.broker, ops[::97])  # retried ids get the stored reply and no second record
        CHECKS.eq(outbox_count(s.broker), 1000, "records waiting in the outbox while the logger is down")
        CHECKS.ok(not os.path.exists(s.logger.log), "no log file while the logger never ran")
        until(lambda: "waits in the outbox" in s.broker.stderr(), 10, "the broker to report the logger down")
        bid = broker_id(s.broker)
        s.logger.start()
        wait_delivered(s.logger, s.broker, 1000, "the 1,000 records to reach the log")
        check_log_exact(s.logger, bid, ops, "(a) after the logger started")
        CHECKS.eq(len(s.logger.complete_lines()), 1000, "(a) lines in the log")

        scenario_tail(s, ops, bid)

        CHECKS.eq(s.broker.terminate(), 0, "zshare-broker's exit code after SIGTERM")
        CHECKS.eq(s.logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
        CHECKS.ok("stopped cleanly" in s.logger.stderr_since_start(), "zshare-rpclog says it stopped cleanly")
        check_log_exact(s.logger, bid, ops, "(a) after both stopped")


def scenario_tail(s, ops, bid):
    section("(d) zshare-rpclog tail prints what QUERY finds")
    lines = s.logger.complete_lines()
    recs = [parse_line(x) for x in lines]

    def expect(user, op, n):
        match = [lines[i] + "\n" for i, r in enumerate(recs)
                 if (not user or r.user == user) and (not op or r.op == op)]
        return "".join(match[-n:]) if n > 0 else ""

    cases = [
        (["--user", "a-u42", "--op", "PUBLISH", "-n", "3"], ("a-u42", "PUBLISH", 3)),
        (["--user", "a-u42", "--op", "DELETE", "-n", "100"], ("a-u42", "DELETE", 100)),
        (["--user", "a-u7", "-n", "4"], ("a-u7", "", 4)),
        (["--op", "CONNECT", "-n", "5"], ("", "CONNECT", 5)),
        (["--op", "UNREGISTER", "--last", "2"], ("", "UNREGISTER", 2)),
        (["-n", "1"], ("", "", 1)),
        ([], ("", "", 20)),  # the default is the newest 20
        (["--user", "a-u99", "--op", "PUBLISH", "-n", "10000"], ("a-u99", "PUBLISH", 10000)),
    ]
    for argv, (user, op, n) in cases:
        r = s.logger.tail(*argv)
        CHECKS.eq(r.returncode, 0, "tail %s exit code (stderr %r)" % (" ".join(argv), r.stderr))
        want = expect(user, op, n)
        CHECKS.ok(want != "", "the tail case %r expects something" % argv)
        CHECKS.eq(r.stdout, want, "tail %s output" % " ".join(argv))
    # The first case, spelled out from the operations themselves rather than from the file.
    pubs = [op for op in ops if op.user == "a-u42" and op.op == "PUBLISH"][-3:]
    got = s.logger.tail("--user", "a-u42", "--op", "PUBLISH", "-n", "3").stdout.splitlines()
    CHECKS.eq([parse_line(x).fields() for x in got], [op.expected() for op in pubs],
              "tail --user a-u42 --op PUBLISH -n 3, field by field")
    CHECKS.eq([parse_line(x).broker for x in got], [bid] * 3, "tail lines carry the broker id")
    # Nothing matches: empty output, success.
    r = s.logger.tail("--user", "nobody-at-all", "-n", "5")
    CHECKS.eq((r.returncode, r.stdout), (0, ""), "tail of a user with no records")
    r = s.logger.tail("--op", "LIST_USERS")
    CHECKS.ok(r.returncode == 2 and r.stdout == "" and "LIST_USERS not in" in r.stderr,
              "tail --op of an operation the broker never logs is a usage error: %r %r" % (r.returncode, r.stderr))
    # --json: the same records, one object each.
    text = s.logger.tail("--user", "a-u42", "--op", "PUBLISH", "-n", "3").stdout.splitlines()
    r = s.logger.tail("--user", "a-u42", "--op", "PUBLISH", "-n", "3", "--json")
    objects = [json.loads(x) for x in r.stdout.splitlines()]
    CHECKS.eq([(o["user"], o["op"], o["broker"], o["seq"]) for o in objects],
              [(parse_line(x).user, parse_line(x).op, parse_line(x).broker, parse_line(x).seq) for x in text],
              "tail --json prints the records tail prints, as objects")
    # --follow: a record made after it started is printed, and SIGTERM ends it with exit 0.
    follow = subprocess.Popen([s.logger.binary, "tail", "--server", s.logger.address, "--follow", "--user",
                               "followed-user", "-n", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        followed = Op("REGISTER", {"user": "followed-user"}, REGISTER_ARGS)
        perform_all(s.broker, [followed])
        ops.append(followed)  # the log holds it too: the caller's exact check counts it
        deadline = time.monotonic() + DELIVERY_DEADLINE_S
        line = ""
        while not line and time.monotonic() < deadline:
            ready, _, _ = select.select([follow.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                line = follow.stdout.readline()
        CHECKS.ok(" followed-user REGISTER" in line, "tail --follow prints the new record: %r" % line)
        follow.terminate()
        CHECKS.eq(follow.wait(timeout=10), 0, "tail --follow exits 0 on SIGTERM")
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    # A logger that is not there: an error, not a hang.
    down = subprocess.run([s.logger.binary, "tail", "--server", "127.0.0.1:%d" % free_port(), "-n", "1"],
                          capture_output=True, text=True, timeout=30)
    CHECKS.ok(down.returncode != 0 and down.stdout == "" and down.stderr.strip() != "",
              "tail against no logger fails with a message: rc %r, stdout %r, stderr %r"
              % (down.returncode, down.stdout, down.stderr))


# ---------------------------------------------------------------------------------------------------------
# (b) the broker killed with undelivered records
# ---------------------------------------------------------------------------------------------------------

def scenario_broker_killed(args):
    section("(b) the broker killed (kill -9) with undelivered records, restarted, then the logger started")
    with Scenario(args, "bkill") as s:
        s.broker.start()
        bid = broker_id(s.broker)
        before = mixed_plan("b", 300)
        perform_all(s.broker, before)
        CHECKS.eq(outbox_count(s.broker), 300, "undelivered records before the kill")
        s.broker.kill9()
        CHECKS.eq(outbox_count(s.broker), 300, "the outbox survives kill -9")
        s.broker.start()
        CHECKS.eq(broker_id(s.broker), bid, "the broker id survives the restart")
        after = mixed_plan("b2", 100)
        perform_all(s.broker, after)
        s.logger.start()
        wait_delivered(s.logger, s.broker, 400, "the records from before and after the kill to reach the log")
        check_log_exact(s.logger, bid, before + after, "(b) after the broker's kill -9 and restart")

    section("(b) the broker killed twice mid-delivery while a client retries (same request ids)")
    with Scenario(args, "bmid") as s:
        s.logger.start()
        s.broker.start()
        bid = broker_id(s.broker)
        ops = sessionless_plan("m", 600)
        w = Writer(s.broker, ops)
        w.start()
        for at in (150, 400):
            until(lambda: w.reached(at), WRITER_DEADLINE_S, "the writer to pass %d operations" % at)
            until(lambda: len(s.logger.complete_lines()) > 0, DELIVERY_DEADLINE_S, "the first delivery")
            s.broker.kill9()
            pending = outbox_count(s.broker)
            lines = s.logger.complete_lines()
            top = parse_line(lines[-1]).seq if lines else 0
            both = db_query(s.broker.db, "SELECT count(*) FROM outbox WHERE seq <= %d" % top)[0][0]
            print("   broker killed after %d acknowledged operations; %d records still in its outbox, %d of them"
                  " already in the log (sent again after the restart)" % (w.done, pending, both), flush=True)
            CHECKS.ok(w.done < len(ops), "the broker was killed while the writer still ran")
            s.broker.start()
            CHECKS.eq(broker_id(s.broker), bid, "the broker id survives the restart")
        w.finish()
        wait_delivered(s.logger, s.broker, len(ops), "every operation to reach the log after two broker crashes")
        check_log_exact(s.logger, bid, ops, "(b) after two kill -9 of the broker mid-delivery")


# ---------------------------------------------------------------------------------------------------------
# (c) the logger killed mid-stream
# ---------------------------------------------------------------------------------------------------------

def scenario_logger_killed(args):
    section("(c) the logger killed (kill -9) mid-stream twice and restarted: nothing lost, nothing doubled")
    with Scenario(args, "lkill") as s:
        s.logger.start()
        s.broker.start()
        bid = broker_id(s.broker)
        ops = mixed_plan("c", 800)
        w = Writer(s.broker, ops, timeout_ms=3000)
        w.start()
        for kill_at, restart_at in ((200, 300), (500, 600)):
            until(lambda: w.reached(kill_at), WRITER_DEADLINE_S, "the writer to pass %d operations" % kill_at)
            until(lambda: len(s.logger.complete_lines()) > 0, DELIVERY_DEADLINE_S, "the first delivery")
            s.logger.kill9()
            print("   logger killed with %d lines in the log, %d operations acknowledged"
                  % (len(s.logger.complete_lines()), w.done), flush=True)
            CHECKS.ok(w.done < len(ops), "the logger was killed while the writer still ran")
            until(lambda: w.reached(restart_at), WRITER_DEADLINE_S,
                  "the writer to pass %d operations with the logger down" % restart_at)
            CHECKS.ok(outbox_count(s.broker) > 0, "records wait in the outbox while the logger is down")
            s.logger.start()
        w.finish()
        wait_delivered(s.logger, s.broker, len(ops), "every operation to reach the log after two logger crashes")
        check_log_exact(s.logger, bid, ops, "(c) after two kill -9 of the logger mid-stream")
        CHECKS.ok(s.broker.proc.poll() is None, "the broker survived the logger's crashes")

    section("(c) records the logger stored but never acknowledged before it died are acknowledged, not doubled")
    with Scenario(args, "lunacked") as s:
        s.logger.start()
        s.broker.start()
        bid = broker_id(s.broker)
        ops = mixed_plan("s", 30)
        perform_all(s.broker, ops)
        wait_delivered(s.logger, s.broker, len(ops), "the first 30 records")
        s.logger.kill9()
        more = mixed_plan("s2", 40)
        perform_all(s.broker, more)
        waiting = db_query(s.broker.db, "SELECT seq, ts, ts_local, user, operation, args FROM outbox ORDER BY seq")
        CHECKS.eq([(ts, bool(local), user, op, a) for (_, ts, local, user, op, a) in waiting],
                  [op.expected() for op in more], "the outbox holds the 40 operations in order")
        # The state a crash between the logger's fdatasync and its reply leaves: the first 25 waiting records
        # are in the log (complete lines), the broker still has them and sends them again.
        with open(s.logger.log, "ab") as f:
            for (seq, *_), op in list(zip(waiting, more))[:25]:
                f.write((format_line(bid, seq, op) + "\n").encode())
        s.logger.start()
        CHECKS.ok("repaired" not in s.logger.stderr_since_start(), "complete lines are not a torn tail")
        ops += more
        wait_delivered(s.logger, s.broker, len(ops), "the 40 waiting records")
        check_log_exact(s.logger, bid, ops, "(c) after resending records the logger had stored")


# ---------------------------------------------------------------------------------------------------------
# (e) torn last line
# ---------------------------------------------------------------------------------------------------------

def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def scenario_torn_line(args):
    section("(e) a torn last line is cut at start-up, reported, and delivery continues")
    with Scenario(args, "torn") as s:
        s.logger.start()
        s.broker.start()
        bid = broker_id(s.broker)
        ops = mixed_plan("e", 50)
        perform_all(s.broker, ops)
        wait_delivered(s.logger, s.broker, len(ops), "the first 50 records")
        check_log_exact(s.logger, bid, ops, "(e) before any stop")

        # A clean stop and start: nothing to repair, nothing reported.
        CHECKS.eq(s.logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
        s.logger.start()
        CHECKS.ok("repaired" not in s.logger.stderr_since_start(),
                  "a clean log is not reported as repaired: %r" % s.logger.stderr_since_start())

        # A partial line, as a crash in the middle of a write leaves it.
        CHECKS.eq(s.logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
        clean = read_bytes(s.logger.log)
        torn = b"2024-06-01T00:00:09.999Z e-u0 PUBLISH half a li"
        with open(s.logger.log, "ab") as f:
            f.write(torn)
        more = mixed_plan("e2", 30)
        perform_all(s.broker, more)  # waits in the outbox
        s.logger.start()
        err = s.logger.stderr_since_start()
        CHECKS.ok("repaired" in err and s.logger.log in err and ("%d bytes" % len(torn)) in err,
                  "zshare-rpclog reports the repaired tail (%d bytes) of %s: %r" % (len(torn), s.logger.log, err))
        now = read_bytes(s.logger.log)
        CHECKS.ok(now.startswith(clean), "the repair keeps every complete line")
        CHECKS.ok(torn not in now, "the torn line is gone")
        ops += more
        wait_delivered(s.logger, s.broker, len(ops), "delivery after the repair")
        check_log_exact(s.logger, bid, ops, "(e) after a partial line was repaired")

        # The broker's next record written whole but for its newline: not stored, so delivered again, once.
        CHECKS.eq(s.logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
        more = mixed_plan("e3", 20)
        perform_all(s.broker, more)
        first_waiting = db_query(s.broker.db, "SELECT min(seq) FROM outbox")[0][0]
        CHECKS.ok(first_waiting is not None, "records wait in the outbox")
        torn = format_line(bid, first_waiting, more[0]).encode()
        with open(s.logger.log, "ab") as f:
            f.write(torn)
        s.logger.start()
        err = s.logger.stderr_since_start()
        CHECKS.ok("repaired" in err and ("%d bytes" % len(torn)) in err,
                  "zshare-rpclog reports the repaired tail of %d bytes: %r" % (len(torn), err))
        ops += more
        wait_delivered(s.logger, s.broker, len(ops), "delivery after the second repair")
        check_log_exact(s.logger, bid, ops, "(e) after a record without its newline was repaired")


# ---------------------------------------------------------------------------------------------------------
# (f) rpcinfo
# ---------------------------------------------------------------------------------------------------------

def rpcinfo_programs(rpcinfo):
    """(program, version, proto, port) rows of `rpcinfo -p`, or None when rpcbind does not answer."""
    try:
        r = subprocess.run([rpcinfo, "-p", "127.0.0.1"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    rows = set()
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0].isdigit() and f[1].isdigit() and f[3].isdigit():
            rows.add((int(f[0]), int(f[1]), f[2], int(f[3])))
    return rows


def scenario_rpcinfo(args):
    section("(f) rpcinfo lists the logger when rpcbind runs")
    rpcinfo = shutil.which("rpcinfo") or next((p for p in ("/usr/sbin/rpcinfo", "/sbin/rpcinfo")
                                               if os.path.exists(p)), None)
    if rpcinfo is None:
        print("   SKIPPED (passes): rpcinfo is not installed, so nothing can list the program", flush=True)
        return
    started = None
    # What an rpcbind started here leaves behind (warm-start files, its lock and socket) is removed after it.
    leftovers = ["/run/rpcbind.sock", "/run/rpcbind.lock", "/var/run/rpcbind.sock", "/var/run/rpcbind.lock"]
    leftovers = [p for p in leftovers if not os.path.lexists(p)]
    rpcbind_dir_before = set(os.listdir("/run/rpcbind")) if os.path.isdir("/run/rpcbind") else None
    work = tempfile.mkdtemp(prefix="zshare-rpclog-rpcinfo-")
    try:
        if rpcinfo_programs(rpcinfo) is None:
            # Without rpcbind the logger still serves by port and says so.
            logger = RpcLog(args.rpclog_bin, workdir=os.path.join(work, "no-rpcbind"))
            os.makedirs(logger.workdir)
            try:
                logger.start()
                CHECKS.ok("rpcbind not running" in logger.stderr_since_start(),
                          "without rpcbind the logger says it is reachable by port: %r" % logger.stderr_since_start())
                CHECKS.eq(logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
            finally:
                logger.stop()
            rpcbind = shutil.which("rpcbind") or next((p for p in ("/usr/sbin/rpcbind", "/sbin/rpcbind")
                                                       if os.path.exists(p)), None)
            if rpcbind is None:
                print("   SKIPPED (passes): rpcbind is not running and not installed", flush=True)
                return
            if os.geteuid() != 0:
                print("   SKIPPED (passes): rpcbind is not running and starting it needs root", flush=True)
                return
            err_path = os.path.join(work, "rpcbind.stderr")
            with open(err_path, "wb") as err:
                started = subprocess.Popen([rpcbind, "-f", "-w"], stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait_for(lambda: started.poll() is not None or rpcinfo_programs(rpcinfo) is not None, 10,
                         "rpcbind to answer")
            except TimeoutError:
                pass
            if started.poll() is not None or rpcinfo_programs(rpcinfo) is None:
                with open(err_path, "r", errors="replace") as f:
                    why = f.read().strip() or "no message"
                print("   SKIPPED (passes): rpcbind could not run here (exit %r): %s" % (started.poll(), why),
                      flush=True)
                return
            print("   started rpcbind (pid %d) for this check" % started.pid, flush=True)
        else:
            print("   rpcbind already runs here", flush=True)

        logger = RpcLog(args.rpclog_bin, workdir=os.path.join(work, "with-rpcbind"))
        os.makedirs(logger.workdir)
        try:
            logger.start()
            CHECKS.ok("registered with rpcbind" in logger.stderr_since_start(),
                      "the logger says it registered with rpcbind: %r" % logger.stderr_since_start())
            rows = rpcinfo_programs(rpcinfo)
            want = (RPCLOG_PROGRAM, 1, "tcp", logger.port)
            CHECKS.ok(rows is not None and want in rows,
                      "rpcinfo -p lists program %d version 1 tcp port %d: %r" % (RPCLOG_PROGRAM, logger.port, rows))
            # rpcinfo -t finds the port through rpcbind and calls the NULL procedure over TCP.
            r = subprocess.run([rpcinfo, "-t", "127.0.0.1", str(RPCLOG_PROGRAM), "1"],
                               capture_output=True, text=True, timeout=15)
            CHECKS.ok(r.returncode == 0 and "ready and waiting" in r.stdout,
                      "rpcinfo -t 127.0.0.1 %d 1 reaches the logger: %r %r" % (RPCLOG_PROGRAM, r.stdout, r.stderr))
            CHECKS.eq(logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
            rows = rpcinfo_programs(rpcinfo)
            CHECKS.ok(rows is not None and want not in rows,
                      "after a clean stop rpcbind no longer lists the logger: %r" % rows)
            print("   rpcinfo -p lists program %d version 1 tcp port %d" % (RPCLOG_PROGRAM, logger.port), flush=True)
        except BaseException:
            if os.path.exists(logger.stderr_path):
                print("-- logger stderr:\n%s" % logger.stderr()[-3000:], flush=True)
            raise
        finally:
            logger.cleanup()
    finally:
        if started is not None and started.poll() is None:
            started.terminate()
            try:
                started.wait(timeout=10)
            except subprocess.TimeoutExpired:
                started.kill()
                started.wait(timeout=10)
            created = [p for p in leftovers if os.path.lexists(p)]
            if rpcbind_dir_before is not None and os.path.isdir("/run/rpcbind"):
                created += [os.path.join("/run/rpcbind", n) for n in set(os.listdir("/run/rpcbind")) - rpcbind_dir_before]
            for path in created:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            print("   stopped the rpcbind started here", flush=True)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# (g) half a record, then silence
# ---------------------------------------------------------------------------------------------------------

def xdr_string(text):
    data = text.encode()
    return struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)


def log_call(xid, records):
    """One ONC-RPC record (RFC 5531 record mark included) calling RPCLOG_LOG with `records`, each a tuple
    (broker_id, seq, timestamp, ts_local, user, operation, args), encoded from schemas/rpclog.x by hand."""
    body = struct.pack(">IIIIII", xid, 0, 2, RPCLOG_PROGRAM, 1, 1)  # CALL, RPC version 2, program, v1, LOG
    body += struct.pack(">IIII", 0, 0, 0, 0)  # AUTH_NONE credentials and verifier
    body += struct.pack(">I", len(records))
    for broker, seq, ts, local, user, op, args in records:
        body += xdr_string(broker) + struct.pack(">Q", seq)
        body += xdr_string(ts) + struct.pack(">I", 1 if local else 0)
        body += xdr_string(user) + xdr_string(op) + xdr_string(args)
    return struct.pack(">I", 0x80000000 | len(body)) + body


def read_log_reply(sock):
    """(xid, status, acked_through) of one LOG reply read from sock (its timeout is the deadline)."""
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise CheckFailed("the logger closed the connection instead of answering LOG")
            data += chunk
        return data
    mark, = struct.unpack(">I", exactly(4))
    CHECKS.ok(mark & 0x80000000, "the LOG reply is one fragment")
    body = exactly(mark & 0x7FFFFFFF)
    xid, kind, reply_stat = struct.unpack(">III", body[:12])
    CHECKS.eq((kind, reply_stat), (1, 0), "a LOG reply, accepted")
    verf_len, = struct.unpack(">I", body[16:20])
    at = 20 + verf_len + (-verf_len % 4)
    accept_stat, status, acked = struct.unpack(">IiQ", body[at:at + 16])
    CHECKS.eq(accept_stat, 0, "the LOG call succeeded (accept_stat)")
    return xid, status, acked


def server_has_read(logger_port, client_port):
    """True when the logger's side of the connection from client_port has no unread bytes (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == logger_port and int(remote.split(":")[1], 16) == client_port:
                return int(queues.split(":")[1], 16) == 0
    return False


def scenario_half_record(args):
    section("(g) half a record and then silence stalls nobody; that connection is closed after its timeout")
    work = tempfile.mkdtemp(prefix="zshare-rpclog-half-")
    logger = RpcLog(args.rpclog_bin, workdir=work, extra_args=["--record-timeout-ms", "1000"])
    stalled = normal = None
    try:
        logger.start()
        rec = ("0123456789abcdef", 1, "2024-06-01T00:00:00.000Z", False, "half-u1", "REGISTER", "")
        whole = log_call(0x51, [rec, rec[:1] + (2,) + rec[2:]])
        stalled = socket.create_connection(("127.0.0.1", logger.port), timeout=10)
        stalled.sendall(whole[:len(whole) // 2])
        until(lambda: server_has_read(logger.port, stalled.getsockname()[1]), 10,
              "the logger to read the half record")

        normal = socket.create_connection(("127.0.0.1", logger.port), timeout=10)
        other = ("0123456789abcdef", 7, "2024-06-01T00:00:01.000Z", True, "half-u2", "REGISTER", "")
        started = time.monotonic()
        normal.sendall(log_call(0x77, [other]))
        try:
            xid, status, acked = read_log_reply(normal)  # the socket's 10 s timeout is the deadline
        except socket.timeout:
            raise CheckFailed("no LOG reply within 10 s while another connection holds half a record")
        print("   LOG acknowledged in %.3f s while another connection held half a record"
              % (time.monotonic() - started), flush=True)
        CHECKS.eq((xid, status, acked), (0x77, 0, 7), "the LOG reply (xid, status, acked_through)")
        CHECKS.eq([parse_line(x).fields() for x in logger.complete_lines()],
                  [("2024-06-01T00:00:01.000Z", True, "half-u2", "REGISTER", "")], "the log holds that record")

        # The silent connection is closed by the logger after --record-timeout-ms (1 s; libtirpc alone: 35 s).
        stalled.settimeout(15)
        started = time.monotonic()
        try:
            closed = stalled.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
        CHECKS.ok(closed, "the logger closes a connection whose record stays incomplete (waited 15 s)")
        print("   the silent connection was closed after %.1f s more" % (time.monotonic() - started), flush=True)
        until(lambda: "record stayed incomplete" in logger.stderr_since_start(), 10,
              "the logger to report the connection it closed")

        # And it goes on serving the connection that behaved.
        normal.sendall(log_call(0x78, [other[:1] + (8,) + other[2:]]))
        CHECKS.eq(read_log_reply(normal), (0x78, 0, 8), "a second LOG on the same connection")
        CHECKS.eq(logger.terminate(), 0, "zshare-rpclog's exit code after SIGTERM")
    finally:
        for sock in (stalled, normal):
            if sock is not None:
                sock.close()
        if os.path.exists(logger.stderr_path) and logger.proc is not None and logger.proc.returncode not in (0, None):
            print("-- logger stderr:\n%s" % logger.stderr()[-3000:], flush=True)
        logger.cleanup()


# ---------------------------------------------------------------------------------------------------------
# (h) a logger host that drops SYNs
# ---------------------------------------------------------------------------------------------------------

class Blackhole:
    """A loopback port where connect() neither succeeds nor fails: a listener with backlog 0 that never
    accepts, its accept queue filled, so Linux drops further SYNs (as a host that went away does)."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []

    def fill(self):
        """Connects until one connect hangs; True when the port is a black hole now."""
        for _ in range(16):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            self.fillers.append(s)
            rc = s.connect_ex(("127.0.0.1", self.port))
            if rc == 0:
                continue  # connected at once: the accept queue had room
            if rc != errno.EINPROGRESS:
                return False
            _, writable, _ = select.select([], [s], [], 1.0)
            if not writable:
                return True  # still connecting after a second: the SYN was dropped
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                return False  # refused: not what a silent host does
        return False

    def close(self):
        for s in self.fillers:
            s.close()
        self.listener.close()


def scenario_logger_blackholed(args):
    section("(h) a logger host that drops SYNs: every connect has a deadline")
    hole = Blackhole()
    work = tempfile.mkdtemp(prefix="zshare-rpclog-hole-")
    broker = Broker(args.broker_bin, workdir=work, rpclog="127.0.0.1:%d" % hole.port)
    try:
        if not hole.fill():
            print("   SKIPPED (passes): this kernel accepted or refused every connect to a full listener, so no"
                  " port here drops SYNs", flush=True)
            return
        started = time.monotonic()
        try:
            r = subprocess.run([args.rpclog_bin, "tail", "--server", "127.0.0.1:%d" % hole.port, "-n", "1"],
                               capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            raise CheckFailed("tail against a host that drops SYNs still runs after 30 s (its timeout is 3 s)")
        took = time.monotonic() - started
        CHECKS.ok(r.returncode == 2 and "timed out" in r.stderr,
                  "tail against a host that drops SYNs fails saying the connect timed out: rc %r, stderr %r"
                  % (r.returncode, r.stderr))
        CHECKS.ok(took < 15, "tail gives up within its 3 s timeout (took %.1f s)" % took)

        broker.start()
        perform_all(broker, mixed_plan("h", 10))
        until(lambda: "waits in the outbox" in broker.stderr() and "timed out" in broker.stderr(), 20,
              "the broker to report that connecting to the logger timed out")
        CHECKS.eq(outbox_count(broker), 10, "the records wait in the outbox")
        started = time.monotonic()
        CHECKS.eq(broker.terminate(deadline_s=20), 0, "the broker's exit code after SIGTERM")
        print("   the broker stopped %.1f s after SIGTERM with its shipper connecting to a black hole"
              % (time.monotonic() - started), flush=True)
    finally:
        broker.cleanup()
        hole.close()


SCENARIOS = {
    "logger_down": scenario_logger_down,
    "broker_killed": scenario_broker_killed,
    "logger_killed": scenario_logger_killed,
    "torn_line": scenario_torn_line,
    "rpcinfo": scenario_rpcinfo,
    "half_record": scenario_half_record,
    "logger_blackholed": scenario_logger_blackholed,
}


def main():
    ap = argparse.ArgumentParser(description="the operations log end to end: zshare-broker -> zshare-rpclog")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--rpclog-bin", required=True)
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only these scenarios")
    args = ap.parse_args()
    started = time.monotonic()
    def body():
        for name, scenario in SCENARIOS.items():
            if not args.only or name in args.only:
                scenario(args)
    return CHECKS.run(body, timed_from=started)


if __name__ == "__main__":
    sys.exit(main())
