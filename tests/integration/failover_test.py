#!/usr/bin/python3
# failover_test.py: peers fail over to a standby broker, real processes. Brokers A and B share one throw-away
# PostgreSQL database and one keypair; B starts only once A is dead (kill -9), loading what A committed. Given
# `--broker A,B`, a `zshare-peer serve` gets its session back on B by itself (its session keeper moves on after A's
# silence, CONNECTs and re-syncs there) and its next change reaches B too; nothing A acknowledged is missing; a
# one-shot `search` with A dead answers through B; `zshare-events --events EA,EB --broker A,B` follows B's events.
# Every wait is on a condition with a deadline. Skips (exit 77, saying so) only when no PostgreSQL is installed.
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from events_test import Watcher  # noqa: E402
from pg_cluster import run_on_postgresql  # noqa: E402
from zshare_testlib import Broker, Checks, ServeProcess, wait_for  # noqa: E402

CHECKS = Checks()
RECOVERY_DEADLINE_S = 30  # from B's start to the peer's session and files shown by B


def section(name):
    print("-- %s" % name, flush=True)


class BrokerList:
    """Brokers A and B as a client is given them: comma-separated lists, one key. Stands in for a Broker where the
    helpers ask for `peer_args`, `control`, `events` and `public_key_file`."""

    def __init__(self, *brokers):
        self.brokers = brokers
        self.control = ",".join(b.control for b in brokers)
        self.events = ",".join(b.events for b in brokers)
        self.public_key_file = brokers[0].public_key_file  # one network, one keypair

    def peer_args(self, key_dir=None):
        return ["--broker", self.control, "--broker-key", self.public_key_file,
                "--key-dir", self.brokers[0].peer_key_dir(key_dir)]


def write_file(share, name, text):
    with open(os.path.join(share, name), "w") as f:
        f.write(text)


def online_files(client, user):
    """The names SEARCH shows of `user`'s files with their owner online (the default: what a download can use)."""
    r = client.call("SEARCH", q="ferry")
    CHECKS.eq(r.get("status"), "OK", "SEARCH ferry")
    return sorted(x["name"] for x in r["results"] if x["user"] == user)


def listed_endpoint(client, user):
    r = client.call("LIST_USERS")
    CHECKS.eq(r.get("status"), "OK", "LIST_USERS")
    return {u["user"]: u["endpoint"] for u in r["users"]}.get(user)


def heard(watcher, client, tag, deadline_s):
    """Registers tag-1, tag-2, ... through `client`, one a second, until the watcher prints one: then it is
    subscribed to that broker's events. Raises when none was printed within the deadline."""
    end = time.monotonic() + deadline_s
    n = 0
    while time.monotonic() < end:
        n += 1
        user = "%s-%d" % (tag, n)
        CHECKS.eq(client.call("REGISTER", user=user).get("status"), "OK", "REGISTER %s" % user)
        try:
            return watcher.wait_line(lambda ln, user=user: ln.split()[1:3] == ["user.registered", user],
                                     "zshare-events to print %s" % user, deadline_s=1)
        except TimeoutError:
            pass
    raise AssertionError("zshare-events printed none of %d %s registrations in %ds" % (n, tag, deadline_s))


def run(args, root, databases):
    db = databases.new()
    brokers_dir = os.path.join(root, "brokers")
    a = Broker(args.broker_bin, workdir=brokers_dir, db=db).start()
    b = Broker(args.broker_bin, workdir=brokers_dir, db=db)  # the same keypair; started once A is dead
    both = BrokerList(a, b)
    share = os.path.join(root, "share")
    os.makedirs(share)
    for name in ("ferry-one.txt", "ferry-two.txt", "ferry-three.txt"):
        write_file(share, name, "ferry cargo %s\n" % name)
    serve = ServeProcess(args.peer_bin, both, "ferry", share, os.path.join(root, "hashes.db"),
                         extra_args=["--heartbeat", "0.5"], key_dir=os.path.join(root, "ferry-keys"))
    watcher = None
    try:
        section("a serve given --broker A,B works with A")
        serve.start()
        via_a = a.client()
        write_file(share, "ferry-four.txt", "a change A acknowledges\n")
        acked = ["ferry-four.txt", "ferry-one.txt", "ferry-three.txt", "ferry-two.txt"]
        wait_for(lambda: online_files(via_a, "ferry") == acked, 10, "A to show ferry's four files online")
        CHECKS.eq(listed_endpoint(via_a, "ferry"), serve.endpoint, "A lists ferry at its transfer endpoint")
        watcher = Watcher(args.events_bin, both, "--probe-after", "0.5")
        heard(watcher, via_a, "on-a", 10)
        via_a.close()

        section("A killed, B started on the same database: the peer's session comes back on B")
        a.kill9()
        b.start()
        started = time.monotonic()
        via_b = b.client()
        wait_for(lambda: listed_endpoint(via_b, "ferry") == serve.endpoint, RECOVERY_DEADLINE_S,
                 "B to list ferry online at its endpoint")
        wait_for(lambda: online_files(via_b, "ferry") == acked, RECOVERY_DEADLINE_S,
                 "B to show every file A acknowledged, online")
        print("   the session was back on B %.1fs after B started" % (time.monotonic() - started), flush=True)
        # The serve logs its reconnection after the re-sync pass that follows its CONNECT, so B may show the session
        # before the line is written: wait for it.
        reconnected = "reconnected ferry to the broker at %s" % b.control
        wait_for(lambda: reconnected in serve.stderr(), RECOVERY_DEADLINE_S, "serve to log its reconnection at B")
        log = serve.stderr()
        CHECKS.ok("stopped answering; moved to %s" % b.control in log, "serve says it moved to B: %s" % log)
        CHECKS.ok(reconnected in log, "serve reconnected at B: %s" % log)
        r = via_b.call("LIST_CONTENT", user="ferry")
        CHECKS.eq(sorted(f["name"] for f in r.get("files", [])), acked, "B's LIST_CONTENT ferry: nothing missing")

        section("the serve's next change reaches B (its own client fails over too)")
        write_file(share, "ferry-five.txt", "a change after the failover\n")
        wait_for(lambda: online_files(via_b, "ferry") == sorted(acked + ["ferry-five.txt"]), RECOVERY_DEADLINE_S,
                 "B to show the file added after the failover")

        section("a one-shot search given A,B with A dead answers through B")
        started = time.monotonic()
        result = subprocess.run([args.peer_bin] + both.peer_args(os.path.join(root, "oneshot-keys")) +
                                ["--timeout", "1", "search", "ferry"], capture_output=True, text=True, timeout=60)
        CHECKS.eq(result.returncode, 0, "search through A,B exits 0 (stderr %r)" % result.stderr)
        lines = result.stdout.splitlines()
        CHECKS.eq(lines[:1], ["SEARCH OK"], "search's first line")
        CHECKS.eq(sorted(ln.split("\t")[1] for ln in lines[1:]), sorted(acked + ["ferry-five.txt"]),
                  "search through B finds ferry's files")
        CHECKS.ok(time.monotonic() - started >= 0.9, "the one-shot spent its tries at A first (--timeout 1)")

        section("zshare-events follows B's events")
        heard(watcher, via_b, "on-b", RECOVERY_DEADLINE_S)
        via_b.close()
        err = watcher.stop()
        CHECKS.ok("following %s" % b.events in err, "zshare-events says it follows B's events: %r" % err)

        section("serve stops cleanly through B")
        code, _ = serve.terminate()
        CHECKS.eq(code, 0, "serve exits 0 on SIGTERM after the failover")
    except BaseException:
        for name, text in (("serve", serve.stderr()), ("brokers", b.stderr())):
            print("%s stderr (tail):\n%s" % (name, text[-3000:]))
        raise
    finally:
        serve.stop()
        if watcher is not None:
            watcher.stop()
        a.stop()
        b.cleanup()


def main():
    ap = argparse.ArgumentParser(description="peers and zshare-events fail over to a standby broker on PostgreSQL")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--peer-bin", required=True)
    ap.add_argument("--events-bin", required=True)
    args = ap.parse_args()
    return run_on_postgresql(CHECKS, lambda root, databases: run(args, root, databases), "zshare-failover-")


if __name__ == "__main__":
    sys.exit(main())
