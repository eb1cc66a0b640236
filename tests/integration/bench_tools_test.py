# bench_tools_test.py: the broker benchmark's own tools on real processes, so that the figures they print can be
# trusted: `seed` writes a database a broker loads whole (and never overwrites one), `calibrate` saves the broker's
# replies to the request pool, the echo answers a pool request with exactly that saved reply over the broker's
# security (and nothing to a message that is not the generator's), and short loads of both get only OKs; the write
# mix (PUBLISH then DELETE of fresh files, over a list of endpoints) gets only OKs and leaves the index as it was.
import argparse
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

import msgpack
import zmq

from zshare_testlib import Broker, Checks, curve_client, free_port, wait_for

USERS = 40
FILES = 3000
POOL = 200


def result(out, kind):
    """The key=value fields of the first 'RESULT <kind> ...' line of `out` (kind may hold '=': phase=connect)."""
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "RESULT" and parts[1] == kind:
            return dict(p.split("=", 1) for p in parts[2:] if "=" in p)
    raise AssertionError("no RESULT %s line in:\n%s" % (kind, out))


def read_canned(path):
    """The replies of a canned-replies file (bench/request_pool.hpp), checked as the echo checks them."""
    with open(path, "rb") as f:
        data = f.read()
    magic = b"ZSHARE-CANNED 1\n"
    assert data.startswith(magic), "not a canned-replies file"
    at = len(magic)
    (n,) = struct.unpack_from("<I", data, at)
    at += 4
    replies = []
    for _ in range(n):
        (size,) = struct.unpack_from("<I", data, at)
        at += 4
        replies.append(data[at:at + size])
        at += size
    assert at == len(data), "bytes after the last reply"
    return replies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--load-bin", required=True)
    args = ap.parse_args()
    checks = Checks()
    work = tempfile.mkdtemp(prefix="zshare-bench-tools-")
    broker = None
    echo = None

    def load(*argv, expect=0):
        p = subprocess.run([args.load_bin] + list(argv), capture_output=True, text=True, timeout=60)
        checks.eq(p.returncode, expect, "zshare-bench-load %s exit status (stderr: %s)" % (argv[0], p.stderr[-500:]))
        return p

    def body():
        nonlocal broker, echo
        db = os.path.join(work, "seeded.db")
        seeded = result(load("seed", "--db", db, "--users", str(USERS), "--files", str(FILES)).stdout, "seed")
        checks.eq(int(seeded["files"]), FILES, "seed reports every file written")
        again = load("seed", "--db", db, "--users", "1", "--files", "1", expect=2)
        checks.ok("exists" in again.stderr, "a second seed on the same path is refused, saying why: %r" % again.stderr)

        # Without a rate limit, as in the benchmark: a load's few clients send far more than a peer would.
        broker = Broker(args.broker_bin, workdir=os.path.join(work, "broker"), db=db,
                        extra_args=["--rate-limit", "0"]).start(deadline_s=30)
        key = ["--broker-key", broker.public_key_file]
        stats = result(load("stats", "--connect", broker.control, *key, "--timeout", "10").stdout, "stats")
        checks.eq((int(stats["users"]), int(stats["files"])), (USERS, FILES), "the broker loads the seeded users, files")

        connected = result(load("populate", "--connect", broker.control, *key, "--users", str(USERS),
                                "--files", "0").stdout, "phase=connect")
        checks.eq(int(connected["ok"]), USERS, "every seeded user CONNECTs")

        canned_path = os.path.join(work, "canned.bin")
        cal = result(load("calibrate", "--connect", broker.control, *key, "--users", str(USERS), "--pool", str(POOL),
                          "--out", canned_path).stdout, "calibrate")
        checks.eq(int(cal["pool"]), POOL, "calibrate asks every pool request")
        canned = read_canned(canned_path)
        checks.eq(len(canned), POOL, "the canned-replies file holds one reply per pool request")
        found = 0
        for reply in canned:
            m = msgpack.unpackb(reply, raw=False)
            checks.eq(m["status"], "OK", "a canned reply is one of the broker's OK replies")
            found += len(m.get("results", m.get("files", [])))
        checks.ok(found > 0, "the canned replies carry results (every user online): %d in all" % found)

        echo_ep = "tcp://127.0.0.1:%d" % free_port()
        echo_err = os.path.join(work, "echo.stderr")
        with open(echo_err, "w") as err:
            echo = subprocess.Popen([args.load_bin, "echo", "--bind", echo_ep, "--replies", canned_path,
                                     "--key", broker.key_file, "--max-seconds", "120"],
                                    stdout=subprocess.PIPE, stderr=err, text=True)
        wait_for(lambda: "bound to" in open(echo_err).read() or echo.poll() is not None, 10, "the echo to bind")
        checks.ok(echo.poll() is None, "the echo runs: %s" % open(echo_err).read())

        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        curve_client(sock, broker.public_key)
        sock.connect(echo_ep)
        sock.send_multipart([b"", b"not a request"])  # not the generator's framing: no answer
        tag = struct.pack("<IQ", 17, 42)
        sock.send_multipart([b"", tag, b"any request body"])
        frames = sock.recv_multipart()
        checks.eq(frames, [b"", tag, canned[17]], "the echo answers entry 17 with the tag and the broker's saved reply")
        sock.close()

        for target, endpoint in (("echo", echo_ep), ("broker", broker.control)):
            out = load("load", "--connect", endpoint, *key, "--target", target, "--users", str(USERS),
                       "--pool", str(POOL), "--clients", "4", "--seconds", "2", "--warmup", "2").stdout
            # (the warm-up holds the CurveZMQ handshakes, which a machine busy with sanitizer builds can make slow)
            run = result(out, "load")
            checks.ok(int(run["ok"]) > 0 and int(run["errors"]) == 0 and int(run["unmatched"]) == 0,
                      "a load of the %s gets only OKs, each matched: %s" % (target, out.strip()))

        # The write mix (PUBLISH a fresh file, then DELETE it, per client) over a list of two endpoints (here the
        # same broker twice): only OKs, every PUBLISH but the last few (one per client, cut by the window's end)
        # deleted again, and the echo refuses it (no canned replies for mutations).
        clients = 4
        out = load("load", "--connect", "%s,%s" % (broker.control, broker.control), *key, "--mix", "write",
                   "--users", str(USERS), "--clients", str(clients), "--seconds", "2", "--warmup", "2").stdout
        run = result(out, "load")
        checks.ok(int(run["ok"]) > 0 and int(run["errors"]) == 0 and int(run["unmatched"]) == 0
                  and run["mix"] == "write" and run["endpoints"] == "2",
                  "a write-mix load over two endpoints gets only OKs, each matched: %s" % out.strip())
        checks.ok(0 <= int(run["publish"]) - int(run["delete"]) <= clients,
                  "the write mix deletes what it publishes: %s" % out.strip())
        stats = result(load("stats", "--connect", broker.control, *key, "--timeout", "10").stdout, "stats")
        checks.ok(FILES <= int(stats["files"]) <= FILES + clients,
                  "after the write mix the index holds the seeded files and at most one left per client: %s"
                  % stats["files"])
        refused = load("load", "--connect", echo_ep, "--target", "echo", "--mix", "write", "--seconds", "1",
                       expect=2)
        checks.ok("no echo" in refused.stderr, "the echo has no write mix, saying so: %r" % refused.stderr)

        echo.send_signal(signal.SIGTERM)
        out, _ = echo.communicate(timeout=10)
        echoed = result(out, "echo")
        checks.eq(int(echoed["refused"]), 1, "the echo refused exactly the message that was not the generator's")

    try:
        return checks.run(body)
    finally:
        if echo and echo.poll() is None:
            echo.kill()
            echo.wait(timeout=10)
        if broker:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
