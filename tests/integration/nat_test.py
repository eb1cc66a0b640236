#!/usr/bin/env python3
# nat_test.py: seeders behind real kernel NAT (tests/pylib/nat_lab.py). The broker and zshare-relay run on the lab's
# public host `core`; seeders sit behind home routers that masquerade and drop unsolicited inbound connections.
#   - the broker's probe marks a NATed seeder unreachable, a port-forwarded one reachable;
#   - NATed seeder -> public downloader: the seeder dials out to the downloader (reverse), file verified;
#   - NATed seeder -> NATed downloader: both dial the relay, file verified; a capture of the relay's traffic holds
#     none of the file's bytes, its name or the user's name;
#   - one download mixing a direct (forwarded), a reversed and a relayed source;
#   - the relay killed mid-transfer and started again: the download resumes and completes, nothing corrupt.
# Needs root, iproute2, nftables and tcpdump; SKIPs (77) saying why when the machine cannot build the lab.
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from merkle_tree import cid_hex, cid_of_file
from nat_lab import NatLab, read_pcap
from zshare_testlib import allocated_bytes, wait_for

BROKER_PORT = 5555
EVENTS_PORT = 5556
RELAY_PORT = 7000
FORWARDED_PORT = 4000
GET_DEADLINE_S = 90
MARKER = b"zshare-nat-lab-secret-payload-marker:"  # in every block of the files: a capture must never show it


class Net:
    """The lab, the binaries and the processes of one run."""

    def __init__(self, lab, args, root):
        self.lab = lab
        self.args = args
        self.root = root
        self.core = lab.addr("core")
        self.broker_endpoint = "tcp://%s:%d" % (self.core, BROKER_PORT)
        self.relay_endpoint = "tcp://%s:%d" % (self.core, RELAY_PORT)
        self.secret = os.path.join(root, "relay.secret")
        self.key = os.path.join(root, "broker.key")
        self.relay = None
        self.broker = None

    def path(self, *parts):
        """A file's path under the run's folder (its folder made)."""
        p = os.path.join(self.root, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def folder(self, *parts):
        p = os.path.join(self.root, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def start_core(self):
        subprocess.run([self.args.relay_bin, "secret", self.secret], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([self.args.broker_bin, "keygen", "--key", self.key], check=True, stdout=subprocess.DEVNULL)
        self.start_relay()
        self.broker = self.lab.popen("core", [
            self.args.broker_bin, "--bind", self.broker_endpoint, "--events", "tcp://%s:%d" % (self.core, EVENTS_PORT),
            "--db", self.path("broker", "broker.db"), "--rpclog", "none", "--key", self.key,
            "--relay", self.relay_endpoint, "--relay-secret-file", self.secret],
            stdout=subprocess.DEVNULL, stderr=open(self.path("broker", "stderr"), "wb"))

    def start_relay(self):
        self.relay = self.lab.popen("core", [
            self.args.relay_bin, "--bind", self.relay_endpoint, "--secret-file", self.secret, "--idle-timeout", "20"],
            stdout=subprocess.DEVNULL, stderr=open(self.path("relay", "stderr"), "ab"))
        wait_for(lambda: self.lab.run("core", ["ss", "-Hltn", "sport = :%d" % RELAY_PORT],
                                      capture_output=True, text=True).stdout.strip() or self.relay.poll() is not None,
                 10, "the relay to listen")
        if self.relay.poll() is not None:
            raise AssertionError("the relay exited with %s: %s" % (self.relay.returncode, self.read("relay", "stderr")))

    def read(self, *parts):
        with open(os.path.join(self.root, *parts), errors="replace") as f:
            return f.read()

    def peer_args(self, who):
        return [self.args.peer_bin, "--broker", self.broker_endpoint, "--broker-key", self.key[:-4] + ".pub",
                "--key-dir", self.folder("keys", who), "--heartbeat", "0.5", "--timeout", "5"]

    def serve(self, host, user, files, listen, advertise=None, rate_limit=None):
        """`zshare-peer serve` of `files` ({name: bytes}) as `user` on `host`; returns (process, stderr path)."""
        share = self.folder("shares", user)
        for name, data in files.items():
            with open(os.path.join(share, name), "wb") as f:
                f.write(data)
        argv = self.peer_args(user) + ["--json", "serve", "--user", user, "--share", share,
                                       "--hash-cache", self.path("cache", user + ".db"), "--listen", listen]
        if advertise:
            argv += ["--advertise", advertise]
        if rate_limit:
            argv += ["--rate-limit", rate_limit]
        err = self.path("serve", user + ".stderr")
        proc = self.lab.popen(host, argv, stdout=subprocess.PIPE, stderr=open(err, "wb"), text=True)
        line = proc.stdout.readline()  # the SERVE line, once the share is published
        if not line or json.loads(line).get("status") != "OK":
            raise AssertionError("serve %s: %r; stderr: %s" % (user, line, self.read("serve", user + ".stderr")))
        return proc, err

    def get(self, host, who, target, out, extra=(), wait=True):
        argv = self.peer_args(who) + ["--json", "get", target, "-o", out, "--source-timeout", "3",
                                      "--retry-wait", "1"] + list(extra)
        proc = self.lab.popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not wait:
            return proc
        return finish_get(proc)

    def users(self):
        """LIST_USERS as a dict user -> entry, asked from the public host with the one-shot command."""
        r = self.lab.run("pubhost", self.peer_args("lister") + ["--json", "list-users"], capture_output=True,
                         text=True)
        if r.returncode != 0:
            raise AssertionError("list-users: %s %s" % (r.stdout, r.stderr))
        return {u["user"]: u for u in json.loads(r.stdout)["users"]}


def finish_get(proc):
    try:
        out, err = proc.communicate(timeout=GET_DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("get did not finish within %ds: %s %s" % (GET_DEADLINE_S, out, err))
    if proc.returncode != 0:
        raise AssertionError("get exited %d: %s\n%s" % (proc.returncode, out, err))
    return json.loads(out.splitlines()[-1]), err


def content(size, salt):
    """`size` bytes in which every 16 KiB block carries MARKER (so a capture can be searched for it) and differs."""
    block = 16 * 1024
    out = bytearray()
    n = 0
    while len(out) < size:
        head = MARKER + (b"%s:%08d:" % (salt, n))
        out += head + bytes((i * 7 + n) % 251 for i in range(block - len(head)))
        n += 1
    return bytes(out[:size])


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def test_reachability(net):
    users = wait_for(lambda: (lambda u: u if all("reachable" in u.get(x, {}) for x in ("natted", "forwarded"))
                              else None)(net.users()), 15, "the broker to probe both seeders")
    check(users["natted"]["reachable"] is False, "a seeder behind NAT is marked unreachable: %r" % users["natted"])
    check(users["forwarded"]["reachable"] is True, "a port-forwarded seeder is reachable: %r" % users["forwarded"])


def test_reverse(net, cid, data):
    out = net.path("out", "reverse.bin")
    t0 = time.monotonic()
    result, err = net.get("pubhost", "public-downloader", "natted:film.bin", out)
    check(result["status"] == "OK", "reverse get: %r %s" % (result, err))
    check(cid_of_file(out) == cid, "the reversed download holds exactly the published bytes")
    check([x["user"] for x in result["sources"]] == ["natted"], "natted alone holds film.bin: %r" % result["sources"])
    log = net.read("serve", "natted.stderr")
    check("dialling out to its callback tcp://%s:" % net.lab.addr("pubhost") in log,
          "the NATed seeder dialled out to the public downloader: %s" % log)
    print("#   reverse: %d bytes in %.2fs" % (len(data), time.monotonic() - t0))


def test_relay_and_capture(net, cid, data):
    out = net.path("out", "relayed.bin")
    capture = net.lab.capture("core", "eth0", net.path("relay.pcap"), bpf_filter="tcp port %d" % RELAY_PORT)
    try:
        result, err = net.get("h2", "home-downloader", "natted:film.bin", out)
    finally:
        capture.stop()
    check(result["status"] == "OK", "relayed get: %r %s" % (result, err))
    check(cid_of_file(out) == cid, "the relayed download holds exactly the published bytes")
    check([x["user"] for x in result["sources"]] == ["natted"], "natted alone holds film.bin: %r" % result["sources"])
    log = net.read("serve", "natted.stderr")
    check("dialling out through the relay " + net.relay_endpoint in log, "the seeder went through the relay: %s" % log)
    payload = b"".join(capture.packets())
    # The kernel may drop a few frames of a fast transfer before tcpdump reads them; most must be there.
    check(len(payload) >= len(data) // 2,
          "the capture saw the relayed transfer (%d bytes captured of a %d-byte file)" % (len(payload), len(data)))
    for secret in (MARKER, b"film.bin", b"natted", data[100:164]):
        check(secret not in payload, "the relay's traffic shows %r: it must carry only ciphertext" % secret[:40])


def test_mixed_sources(net, cid):
    out = net.path("out", "mixed.bin")
    result, err = net.get("pubhost", "mixer", cid, out)
    check(result["status"] == "OK", "three-path get: %r %s" % (result, err))
    check(cid_of_file(out) == cid, "the three-path download holds exactly the published bytes")
    used = {s["user"]: s["chunks"] for s in result["sources"]}
    check(set(used) == {"natted", "forwarded", "strict"} and all(n > 0 for n in used.values()),
          "every path delivered chunks (direct: forwarded, reverse: natted, relay: strict): %r" % used)
    check("dialling out through the relay" in net.read("serve", "strict.stderr"),
          "the seeder whose firewall lets it reach only the broker's host went through the relay")


def test_relay_killed(net, cid):
    out = net.path("out", "resumed.bin")
    proc = net.get("h2", "patient-downloader", "slow:slow.bin", out, extra=["--max-tries", "8"], wait=False)
    part = out + ".part"
    wait_for(lambda: proc.poll() is not None or (os.path.exists(part) and allocated_bytes(part) >= 1024 * 1024), 60,
             "the relayed download to hold its first MiB")
    check(proc.poll() is None, "the rate-limited download is still running when the relay is killed")
    net.relay.kill()
    net.relay.wait(timeout=10)
    before = len(net.read("relay", "stderr"))
    net.start_relay()  # the same port and secret: the two sides' libzmq reconnect with the same token
    result, err = finish_get(proc)
    check(result["status"] == "OK", "the download went on after the relay came back: %r %s" % (result, err))
    check(cid_of_file(out) == cid, "the resumed download holds exactly the published bytes")
    check("paired" in net.read("relay", "stderr")[before:], "the restarted relay carried the rest of the transfer")
    check(result["bytes_received"] <= 8 * 1024 * 1024 + 1024 * 1024,
          "the transfer resumed where it stopped (no more than one chunk fetched twice): %r" % result)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker-bin", required=True)
    parser.add_argument("--peer-bin", required=True)
    parser.add_argument("--relay-bin", required=True)
    args = parser.parse_args()
    ok, why = NatLab.available(capture=True)
    if not ok:
        print("SKIP: %s" % why)
        return 77
    root = tempfile.mkdtemp(prefix="zshare-nat-")
    failures = 0
    try:
        with NatLab(homes=3) as lab:
            net = Net(lab, args, root)
            net.start_core()
            # home3's router forwards a port to its seeder; home2's lets it reach only the core host (egress filter).
            lab.forward_port("home3", FORWARDED_PORT)
            lab.nft("r2", "add", "rule", "ip", "filter", "forward", "iifname", "lan", "ip", "daddr", "!=",
                    net.core, "ct", "state", "new", "drop")
            film = content(6 * 1024 * 1024 + 12345, b"film")  # natted's alone
            shared = content(12 * 1024 * 1024, b"shared")      # held by three seeders
            slow = content(8 * 1024 * 1024, b"slow")
            net.serve("h1", "natted", {"film.bin": film, "shared.bin": shared}, "tcp://%s:*" % lab.addr("h1"))
            net.serve("h1", "slow", {"slow.bin": slow}, "tcp://%s:*" % lab.addr("h1"), rate_limit="1M")
            net.serve("h3", "forwarded", {"copy.bin": shared}, "tcp://%s:%d" % (lab.addr("h3"), FORWARDED_PORT),
                      advertise="tcp://%s:%d" % (lab.wan("home3"), FORWARDED_PORT))
            net.serve("h2", "strict", {"same.bin": shared}, "tcp://%s:*" % lab.addr("h2"))
            tests = [
                ("the broker probes: NATed unreachable, forwarded reachable", lambda: test_reachability(net)),
                ("NATed seeder -> public downloader: reverse connection", lambda: test_reverse(net, cid_hex(film), film)),
                ("NATed seeder -> NATed downloader: relay, ciphertext only", lambda: test_relay_and_capture(net, cid_hex(film), film)),
                ("one download over direct, reversed and relayed sources", lambda: test_mixed_sources(net, cid_hex(shared))),
                ("the relay killed mid-transfer: the download resumes", lambda: test_relay_killed(net, cid_hex(slow))),
            ]
            for name, test in tests:
                t0 = time.monotonic()
                try:
                    test()
                    print("ok - %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
                except Exception as e:  # report every test, then fail
                    failures += 1
                    print("FAIL - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            if failures:
                for part in (("broker", "stderr"), ("relay", "stderr")):
                    print("--- %s:\n%s" % ("/".join(part), net.read(*part)[-3000:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
