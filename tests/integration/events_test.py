#!/usr/bin/python3
# events_test.py: zshare-events across broker restarts, real processes: a connected watcher prints broker.started
# (every user offline); one that missed it (stopped meanwhile) sees the gap and, with --snapshot, prints a fresh index.
import argparse
import json
import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from zshare_testlib import CheckFailed, Checks, Broker, wait_for  # noqa: E402

CHECKS = Checks()


class Watcher:
    """A zshare-events process; its stdout lines are collected by a thread."""

    def __init__(self, binary, broker, *extra):
        self.proc = subprocess.Popen([binary, "--events", broker.events, "--broker", broker.control,
                                      "--broker-key", broker.public_key_file] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def output(self):
        with self.lock:
            return list(self.lines)

    def wait_line(self, predicate, what, after=0, deadline_s=10):
        """The first line (from index `after` on) for which predicate holds; its index."""
        def found():
            for i, line in enumerate(self.output()[after:], after):
                if predicate(line):
                    return i + 1  # 1-based, so index 0 is truthy
            if self.proc.poll() is not None:
                raise CheckFailed("zshare-events exited with %s: %s" % (self.proc.returncode, self.proc.stderr.read()))
            return None
        return wait_for(found, deadline_s, what) - 1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read()


def ok(client, op, **fields):
    r = client.call(op, **fields)
    CHECKS.ok(r.get("status") == "OK", "%s %r answered %r" % (op, fields, r))
    return r


def run(broker_bin, events_bin):
    broker = Broker(broker_bin).start()
    human = jsonl = None
    try:
        c = broker.client()
        ok(c, "REGISTER", user="alice")
        ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7000")
        human = Watcher(events_bin, broker)
        jsonl = Watcher(events_bin, broker, "--snapshot", "--json")
        jsonl.wait_line(lambda ln: json.loads(ln)["topic"] == "snapshot.end", "the --snapshot watcher's snapshot")

        # Both watchers hear an event, so both are subscribed.
        n = 0
        while True:
            n += 1
            ok(c, "REGISTER", user="probe-%d" % n)
            try:
                human.wait_line(lambda ln, n=n: "probe-%d" % n in ln, "the human watcher to hear probe-%d" % n,
                                deadline_s=1)
                jsonl.wait_line(lambda ln, n=n: '"probe-%d"' % n in ln, "the json watcher to hear probe-%d" % n,
                                deadline_s=1)
                break
            except TimeoutError:
                CHECKS.ok(n < 10, "the watchers hear no event")

        # (1) A restart while the human watcher is connected: it prints broker.started, saying what it means.
        #     The json watcher is stopped (SIGSTOP) meanwhile, so it misses broker.started and the next event.
        jsonl.proc.send_signal(signal.SIGSTOP)
        mark = len(human.output())
        CHECKS.eq(broker.terminate(), 0, "the broker stops on SIGTERM")
        broker.start()
        at = human.wait_line(lambda ln: " broker.started " in ln, "the human watcher to print broker.started", mark)
        line = human.output()[at]
        CHECKS.ok("every session ended: all users offline" in line and "users=%d" % (1 + n) in line,
                  "broker.started says every user is offline: %r" % line)
        c = broker.client(keys=c.keys)  # the key that owns alice, who CONNECTs again below
        ok(c, "REGISTER", user="bob")  # an event the stopped watcher misses too
        human.wait_line(lambda ln: "user.registered bob" in ln, "the human watcher to print bob", at)

        # (2) The stopped watcher comes back: its next event shows a gap, and --snapshot answers it with a new
        #     snapshot, in which alice is offline; no gap is reported, as nothing is missing from what it prints.
        mark = len(jsonl.output())
        jsonl.proc.send_signal(signal.SIGCONT)
        k = 0
        while True:
            k += 1
            ok(c, "REGISTER", user="late-%d" % k)
            try:
                jsonl.wait_line(lambda ln, k=k: '"late-%d"' % k in ln, "the json watcher to hear late-%d" % k, mark,
                                deadline_s=1)
                break
            except TimeoutError:
                CHECKS.ok(k < 10, "the json watcher never came back")
        got = [json.loads(ln) for ln in jsonl.output()[mark:]]
        users = {x["user"]: x for x in got if x["topic"] == "snapshot.user"}
        CHECKS.ok("alice" in users and users["alice"]["online"] is False and "bob" in users,
                  "after the gap the json watcher printed a fresh snapshot, alice offline: %r" % got)
        ok(c, "CONNECT", user="alice", endpoint="tcp://127.0.0.1:7001")
        at = jsonl.wait_line(lambda ln: '"peer.connected"' in ln, "the json watcher to see alice again", mark)
        CHECKS.eq(json.loads(jsonl.output()[at])["user"], "alice", "peer.connected alice")
        err = jsonl.stop()
        CHECKS.ok("gap" not in err, "the --snapshot watcher recovered the gap with a snapshot: %r" % err)
        err = human.stop()
        CHECKS.ok("gap" not in err, "the human watcher missed nothing: %r" % err)
        c.close()
    except BaseException:
        print("broker stderr (tail):\n%s" % broker.stderr()[-2000:])
        raise
    finally:
        for w in (human, jsonl):
            if w is not None:
                w.stop()
        broker.cleanup()


def main():
    ap = argparse.ArgumentParser(description="zshare-events across broker restarts")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--events-bin", required=True)
    args = ap.parse_args()
    def body():
        run(args.broker_bin, args.events_bin)
    return CHECKS.run(body, expected=(TimeoutError,))


if __name__ == "__main__":
    sys.exit(main())
