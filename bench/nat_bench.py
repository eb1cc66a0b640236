#!/usr/bin/env python3
# nat_bench.py: issue 13's figures, measured in the NAT lab (tests/pylib/nat_lab.py), every row side by side in
# one run, alternating, REPS times:
#   - a public downloader: a port-forwarded seeder (direct) vs a NATed one (reverse connection), SIZE_MIB each;
#   - a NATed downloader: the same seeder through a plain TCP forwarder on the broker's host (socat, the
#     baseline: what the relay does, without pairing) vs a NATed seeder through zshare-relay; the forwarder's CPU
#     seconds per GiB beside each;
#   - setup: `get` of a 16 KiB file, direct vs reverse (wall time: first byte and last are one chunk apart).
# Run by bench/run_nat_bench.sh (root, iproute2, nftables, socat).
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pylib"))
from nat_lab import NatLab  # noqa: E402
from zshare_testlib import wait_for  # noqa: E402

BROKER_PORT, EVENTS_PORT, RELAY_PORT, SOCAT_PORT, FORWARDED_PORT = 5555, 5556, 7000, 7100, 4000


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, lab, args, root):
        self.lab, self.args, self.root = lab, args, root
        self.core = lab.addr("core")
        self.broker_ep = "tcp://%s:%d" % (self.core, BROKER_PORT)
        self.key = os.path.join(root, "broker.key")
        self.secret = os.path.join(root, "relay.secret")

    def dir(self, *parts):
        p = os.path.join(self.root, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def peer(self, who):
        return [self.args.peer_bin, "--broker", self.broker_ep, "--broker-key", self.key[:-4] + ".pub",
                "--key-dir", self.dir("keys", who), "--heartbeat", "0.5"]

    def start(self):
        subprocess.run([self.args.relay_bin, "secret", self.secret], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([self.args.broker_bin, "keygen", "--key", self.key], check=True, stdout=subprocess.DEVNULL)
        self.relay = self.lab.popen("core", [self.args.relay_bin, "--bind", "tcp://%s:%d" % (self.core, RELAY_PORT),
                                             "--secret-file", self.secret], stdout=subprocess.DEVNULL)
        self.broker = self.lab.popen("core", [self.args.broker_bin, "--bind", self.broker_ep,
                                             "--events", "tcp://%s:%d" % (self.core, EVENTS_PORT), "--db",
                                os.path.join(self.dir("broker"), "b.db"), "--rpclog", "none", "--key", self.key,
                                "--rate-limit", "0", "--relay", "tcp://%s:%d" % (self.core, RELAY_PORT),
                                "--relay-secret-file", self.secret], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(self.root, "broker.stderr"), "wb"))
        def answers():
            r = self.lab.run("pubhost", self.peer("q") + ["list-users"], capture_output=True, text=True)
            self.last_error = r.stdout + r.stderr
            return r.returncode == 0
        try:
            wait_for(answers, 30, "the broker to answer")
        except TimeoutError:
            with open(os.path.join(self.root, "broker.stderr")) as f:
                raise RuntimeError("the broker does not answer: %s\nits stderr: %s" % (self.last_error, f.read()))
        self.lab.forward_port("home3", FORWARDED_PORT)
        self.lab.forward_port("home3", FORWARDED_PORT + 1)
        # The baseline forwarder: socat on the broker's host, as the relay runs there, to the seeder's forwarded port.
        self.socat = self.lab.popen("core", ["socat", "TCP-LISTEN:%d,bind=%s,reuseaddr,fork" % (SOCAT_PORT, self.core),
                                             "TCP:%s:%d" % (self.lab.wan("home3"), FORWARDED_PORT + 1)],
                                    stdout=subprocess.DEVNULL)
        size = self.args.size_mib * 1024 * 1024
        block = os.urandom(1024 * 1024)
        for user, host, listen, advertise in (
                ("direct", "h3", "tcp://%s:%d" % (self.lab.addr("h3"), FORWARDED_PORT),
                 "tcp://%s:%d" % (self.lab.wan("home3"), FORWARDED_PORT)),
                ("viasocat", "h3", "tcp://%s:%d" % (self.lab.addr("h3"), FORWARDED_PORT + 1),
                 "tcp://%s:%d" % (self.core, SOCAT_PORT)),
                ("natted", "h1", "tcp://%s:*" % self.lab.addr("h1"), None)):
            share = self.dir("share", user)
            with open(os.path.join(share, "big.bin"), "wb") as f:
                for i in range(size // len(block)):
                    f.write(user.encode() + block[len(user):])  # one content per seeder: one source per get
            with open(os.path.join(share, "small.bin"), "wb") as f:
                f.write(user.encode() * (16 * 1024 // len(user)))
            argv = self.peer(user) + ["--json", "serve", "--user", user, "--share", share, "--hash-cache",
                                      os.path.join(self.dir("cache"), user + ".db"), "--listen", listen]
            if advertise:
                argv += ["--advertise", advertise]
            proc = self.lab.popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = proc.stdout.readline()
            if json.loads(line or "{}").get("status") != "OK":
                raise RuntimeError("serve %s: %r" % (user, line))
        wait_for(lambda: self.reachable("natted") is False and self.reachable("direct") is True, 20, "the probes")

    def reachable(self, user):
        r = self.lab.run("pubhost", self.peer("q") + ["--json", "list-users"], capture_output=True, text=True)
        for u in json.loads(r.stdout).get("users", []):
            if u["user"] == user:
                return u.get("reachable")
        return None

    def get(self, host, target, forwarder=None):
        out = os.path.join(self.dir("out"), "x")
        if os.path.exists(out):
            os.unlink(out)
        cpu0 = cpu_seconds(forwarder.pid) if forwarder else 0.0
        t0 = time.monotonic()
        r = self.lab.run(host, self.peer("dl-" + host) + ["--json", "get", target, "-o", out], capture_output=True,
                         text=True, timeout=600)
        wall = time.monotonic() - t0
        cpu = (cpu_seconds(forwarder.pid) - cpu0) if forwarder else 0.0
        if r.returncode != 0:
            raise RuntimeError("get %s on %s: %s %s" % (target, host, r.stdout, r.stderr))
        os.unlink(out)
        return wall, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker-bin", required=True)
    parser.add_argument("--peer-bin", required=True)
    parser.add_argument("--relay-bin", required=True)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="zshare-natbench-")
    rows = {k: [] for k in ("direct", "reverse", "socat", "relay", "setup-direct", "setup-reverse", "setup-socat",
                            "setup-relay")}
    cpu = {"socat": [], "relay": []}
    try:
        with NatLab(homes=3) as lab:
            b = Bench(lab, args, root)
            b.start()
            for _ in range(args.reps):
                rows["direct"].append(b.get("pubhost", "direct:big.bin")[0])
                rows["reverse"].append(b.get("pubhost", "natted:big.bin")[0])
                wall, c = b.get("h2", "viasocat:big.bin", forwarder=None)
                rows["socat"].append(wall)
                cpu["socat"].append(socat_children_cpu(b.socat.pid))
                wall, c = b.get("h2", "natted:big.bin", forwarder=b.relay)
                rows["relay"].append(wall)
                cpu["relay"].append(c)
                rows["setup-direct"].append(b.get("pubhost", "direct:small.bin")[0])
                rows["setup-reverse"].append(b.get("pubhost", "natted:small.bin")[0])
                rows["setup-socat"].append(b.get("h2", "viasocat:small.bin")[0])
                socat_children_cpu(b.socat.pid)  # not counted: the big transfers' CPU only
                rows["setup-relay"].append(b.get("h2", "natted:small.bin")[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    mib = args.size_mib
    med = {k: statistics.median(v) for k, v in rows.items()}
    print("NAT lab, %d MiB per transfer, %d alternating repetitions (medians; wall time of `get`, setup included)"
          % (mib, args.reps))
    for k in ("direct", "reverse", "socat", "relay"):
        print("  %-8s %6.2f s  %7.1f MiB/s   (runs: %s)" % (k, med[k], mib / med[k], ", ".join("%.2f" % x for x in rows[k])))
    print("  reverse / direct throughput: %.3f (wall time, setup included)" % (med["direct"] / med["reverse"]))
    print("  relay / socat throughput:    %.3f (wall time, setup included)" % (med["socat"] / med["relay"]))
    # The transfer alone: the wall time less the same path's setup (a 16 KiB get); relay's setup is reverse's
    # plus the seeder's probe of the callback that fails (1.5 s), measured as the relayed small get below.
    if "setup-relay" in med:
        xfer = {k: med[k] - med[s] for k, s in (("direct", "setup-direct"), ("reverse", "setup-reverse"),
                                                ("socat", "setup-socat"), ("relay", "setup-relay"))}
        print("  transfer alone (wall less setup): direct %.2f s, reverse %.2f s, socat %.2f s, relay %.2f s" % (
            xfer["direct"], xfer["reverse"], xfer["socat"], xfer["relay"]))
        print("  reverse / direct, transfer alone: %.3f;  relay / socat, transfer alone: %.3f" % (
            xfer["direct"] / xfer["reverse"], xfer["socat"] / xfer["relay"]))
    socat_cpu = statistics.median(cpu["socat"]) / (mib / 1024)
    relay_cpu = statistics.median(cpu["relay"]) / (mib / 1024)
    print("  forwarder CPU per GiB: relay %.3f s, socat %.3f s" % (relay_cpu, socat_cpu))
    print("  setup (`get` of 16 KiB): direct %.3f s, reverse %.3f s, socat %.3f s, relay %.3f s" % (
        med["setup-direct"], med["setup-reverse"], med["setup-socat"], med["setup-relay"]))
    return 0


_socat_seen = [0.0]


def socat_children_cpu(pid):
    """CPU seconds socat's forked children used since the last call: the parent's cutime+cstime, which count a
    child once it has exited and been reaped (it exits when its connection closes; waited for here)."""
    children = "/proc/%d/task/%d/children" % (pid, pid)
    wait_for(lambda: not open(children).read().strip(), 10, "socat's connection child to exit")
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    used = total - _socat_seen[0]
    _socat_seen[0] = total
    return used


if __name__ == "__main__":
    sys.exit(main())
