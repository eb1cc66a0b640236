#!/usr/bin/env python3
# liveness_test.py: the Paranoid Pirate heartbeat end to end with real processes: a silent seeder is marked
# offline by the broker, and seeders recover by themselves after a broker restart (re-CONNECT, re-sync); a
# `get` started while every source is still offline after a restart waits for them (bounded) and succeeds; a
# seeder killed and restarted takes its session back at once (its key proves it is the same user).
# Over CurveZMQ, as by default: each seeder has its own keypair, and recovers as the key that owns its user.
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import msgpack

import merkle_tree
from zshare_testlib import Broker, ServeProcess, wait_for

PASSED = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    PASSED.append(what)


def search_online(client, word):
    """{user: online} for the files matching `word`, offline owners' included."""
    return {user: online for user, (online, _) in search_state(client, word).items()}


def search_state(client, word):
    """{user: (online, key)} for the files matching `word`, offline owners' included."""
    r = client.call("SEARCH", q=word, include_offline=True)
    check(r["status"] == "OK", "SEARCH answers OK: %r" % r)
    return {x["user"]: (x["online"], x["key"]) for x in r["results"]}


def default_search_users(client, word):
    """The owners SEARCH shows without include_offline: the online ones only."""
    r = client.call("SEARCH", q=word)
    check(r["status"] == "OK", "SEARCH answers OK: %r" % r)
    return sorted(x["user"] for x in r["results"])


def make_share(root, user, name, data):
    share = os.path.join(root, user)
    os.makedirs(share, exist_ok=True)
    with open(os.path.join(share, name), "wb") as f:
        f.write(data)
    return share


def test_silent_seeder_goes_offline(args, root):
    """kill -9 of a seeder: within 3 heartbeat intervals (plus slack) the broker publishes peer.disconnected
    with reason 'heartbeat timeout' and its files show offline; a seeder that is alive stays online."""
    os.makedirs(os.path.join(root, "b1"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "b1")).start()
    sub = broker.subscriber(b"peer.disconnected")
    seeders = []
    try:
        client = broker.client()
        for user in ("quiet", "lively"):
            s = ServeProcess(args.peer_bin, broker, user,
                             make_share(root, user, "liveness-%s.bin" % user, os.urandom(5000)),
                             os.path.join(root, user + ".hashes.db"), extra_args=["--heartbeat", "0.2"])
            s.start()
            seeders.append(s)
        check(search_online(client, "liveness") == {"quiet": True, "lively": True}, "both seeders online")
        check(default_search_users(client, "liveness") == ["lively", "quiet"], "SEARCH shows both online sources")
        killed_at = time.monotonic()
        seeders[0].kill9()

        def disconnected():
            if not sub.poll(100):
                return None
            topic, body = sub.recv_multipart()
            event = msgpack.unpackb(body, raw=False)
            return event if event.get("user") == "quiet" else None
        event = wait_for(disconnected, 10, "peer.disconnected for the killed seeder")
        elapsed = time.monotonic() - killed_at
        check(event["reason"] == "heartbeat timeout", "the event says why: %r" % event)
        check(elapsed >= 0.4, "not expired before it missed its heartbeats (%.2fs)" % elapsed)
        check(search_online(client, "liveness") == {"quiet": False, "lively": True},
              "the killed seeder's files are offline, the live one's are not")
        check(default_search_users(client, "liveness") == ["lively"],
              "SEARCH (online sources by default) no longer shows the expired seeder's files")
        check(seeders[1].running(), "the live seeder kept running")
        client.close()
    finally:
        sub.close(linger=0)
        for s in seeders:
            s.stop()
        broker.cleanup()


def test_seeders_recover_after_broker_restart(args, root):
    """kill -9 of the broker and a restart: seeders notice, CONNECT again and re-sync by themselves; a search
    returns what it did before within 5 s of the broker's return."""
    os.makedirs(os.path.join(root, "b2"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "b2")).start()
    seeders = []
    try:
        keys = {}
        for user in ("alpha", "beta", "gamma"):
            key_dir = os.path.join(root, user + "-keys")  # a keypair of its own: the key that owns its user
            s = ServeProcess(args.peer_bin, broker, user,
                             make_share(root, user, "recover-%s.dat" % user, os.urandom(3000)),
                             os.path.join(root, user + ".hashes.db"), extra_args=["--heartbeat", "0.5"], key_dir=key_dir)
            s.start()
            seeders.append(s)
            keys[user] = broker.peer_public_key(key_dir)
        check(len(set(keys.values())) == 3, "each seeder made a keypair of its own: %r" % keys)
        client = broker.client()
        before = search_state(client, "recover")
        check(before == {u: (True, keys[u]) for u in keys}, "all online before, each with its own key: %r" % before)
        client.close()

        broker.kill9()
        broker.start()
        back_at = time.monotonic()
        client = broker.client()
        wait_for(lambda: search_state(client, "recover") == before, 5, "the search to return what it did before")
        check(time.monotonic() - back_at <= 5, "recovered within 5 s of the broker's return")
        check(all(s.running() for s in seeders), "every seeder kept running through the outage")
        client.close()
    finally:
        for s in seeders:
            s.stop()
        broker.cleanup()


def test_get_waits_for_sources_after_restart(args, root):
    """After a broker restart every session is gone until the seeders' next heartbeat. A `get` started then finds
    the content's holders all offline: it asks again (--wait-sources) instead of failing, and succeeds once the
    seeder is back. The seeder is held with SIGSTOP so the get is certainly in its wait before it returns."""
    os.makedirs(os.path.join(root, "b3"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "b3")).start()
    data = os.urandom(200000)
    cid = merkle_tree.cid_hex(data)
    seeder = ServeProcess(args.peer_bin, broker, "waited",
                          make_share(root, "waited", "waited-for.bin", data),
                          os.path.join(root, "waited.hashes.db"), extra_args=["--heartbeat", "0.2"])
    seeder.start()
    get = None
    try:
        client = broker.client()
        check(default_search_users(client, "waited") == ["waited"], "the seeder is an online source")
        client.close()
        seeder.signal(signal.SIGSTOP)
        broker.kill9()
        broker.start()
        client = broker.client()
        check(default_search_users(client, "waited") == [], "after the restart the seeder's session is gone")
        # Without a wait, a get fails at once: nobody online holds the content.
        dest = os.path.join(root, "waited-copy.bin")
        quick = subprocess.run([args.peer_bin] + broker.peer_args() + ["get", cid, dest, "--wait-sources", "0"],
                               capture_output=True, text=True, timeout=30)
        check(quick.returncode == 1 and "GET FAIL, USER NOT CONNECTED" in quick.stdout,
              "get --wait-sources 0 with every holder offline fails: %r %r" % (quick.stdout, quick.stderr))
        base = client.call("STATS")["requests"]
        polls = [0]

        def get_searched_twice():
            polls[0] += 1
            if get.poll() is not None:
                raise AssertionError("get ended before its sources came back: %r" % (get.communicate(),))
            # Every request but our STATS polls is the get's: two SEARCHes mean it found nobody and asked again.
            return client.call("STATS")["requests"] - base - polls[0] >= 2
        get = subprocess.Popen([args.peer_bin] + broker.peer_args() + ["get", cid, dest, "--wait-sources", "20"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(get_searched_twice, 10, "the get to search twice while its only source is offline")
        seeder.signal(signal.SIGCONT)  # its next heartbeat finds the session gone: it CONNECTs and re-syncs
        out, err = get.communicate(timeout=30)
        check(get.returncode == 0 and out.startswith("GET OK"), "get succeeded once the source was back: %r %r; "
              "seeder: %s" % (out, err, seeder.stderr()[-1500:]))
        with open(dest, "rb") as f:
            check(f.read() == data, "the file is the seeder's, byte for byte")
        client.close()
    finally:
        if get is not None and get.poll() is None:
            get.kill()
            get.wait(timeout=10)
        if seeder.running():
            seeder.signal(signal.SIGCONT)
        seeder.stop()
        broker.cleanup()


def test_restarted_seeder_takes_its_session_back(args, root):
    """kill -9 of a seeder that promised slow heartbeats (its session would stay open for 3 x 20 s): restarted, the
    same user with the same key serves again at once. Its CONNECT replaces the leftover session (peer.disconnected
    'replaced by a new session', then peer.connected at its new endpoint), and a download from it works, long before
    the old session would have timed out."""
    os.makedirs(os.path.join(root, "b4"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "b4")).start()
    sub = broker.subscriber(b"peer.")
    data = os.urandom(40000)
    key_dir = os.path.join(root, "phoenix-keys")  # the key that owns phoenix, kept across the crash

    def serve():
        return ServeProcess(args.peer_bin, broker, "phoenix", make_share(root, "phoenix", "phoenix.bin", data),
                            os.path.join(root, "phoenix.hashes.db"), extra_args=["--heartbeat", "20"], key_dir=key_dir)
    first, again = serve(), None
    try:
        first.start()
        first.kill9()
        killed_at = time.monotonic()
        again = serve()
        again.start()
        elapsed = time.monotonic() - killed_at
        check(elapsed < 20, "the restarted seeder served %.1f s after the kill, not a heartbeat timeout later" % elapsed)
        check(again.endpoint != first.endpoint, "test bug: the restart listens elsewhere (%s)" % again.endpoint)

        seen = []

        def replaced_then_connected():
            while sub.poll(100):
                topic, body = sub.recv_multipart()
                event = msgpack.unpackb(body, raw=False)
                if event.get("user") == "phoenix":
                    seen.append((topic.decode(), event.get("reason", event.get("endpoint"))))
            return seen[-2:] == [("peer.disconnected", "replaced by a new session"), ("peer.connected", again.endpoint)]
        wait_for(replaced_then_connected, 10, "peer.disconnected (replaced) then peer.connected for the restart")
        check(("peer.disconnected", "heartbeat timeout") not in seen, "the old session did not time out: %r" % seen)
        check("took over the session an earlier run left behind" in again.stderr(), "the restart says it took over")
        client = broker.client()
        state = search_state(client, "phoenix")
        check(state == {"phoenix": (True, broker.peer_public_key(key_dir))}, "online again, same key: %r" % state)
        client.close()

        dest = os.path.join(root, "phoenix-copy.bin")
        got = subprocess.run([args.peer_bin] + broker.peer_args() + ["get", "phoenix:phoenix.bin", dest],
                             capture_output=True, text=True, timeout=30)
        check(got.returncode == 0, "a download from the restarted seeder: %r %r" % (got.stdout, got.stderr))
        with open(dest, "rb") as f:
            check(f.read() == data, "the downloaded file is the seeder's, byte for byte")
        check(again.running(), "the restarted seeder keeps serving")
    finally:
        sub.close(linger=0)
        first.kill9()
        if again is not None:
            again.stop()
        broker.cleanup()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker-bin", required=True)
    parser.add_argument("--peer-bin", required=True)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="zshare-liveness-") as root:
        for test in (test_silent_seeder_goes_offline, test_seeders_recover_after_broker_restart,
                     test_get_waits_for_sources_after_restart, test_restarted_seeder_takes_its_session_back):
            try:
                test(args, root)
                print("ok - %s" % test.__name__)
            except Exception as e:  # report every case, then fail
                failures += 1
                print("FAIL - %s: %s: %s" % (test.__name__, type(e).__name__, e))
    print("%d passed, %d failed" % (len(PASSED), failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
