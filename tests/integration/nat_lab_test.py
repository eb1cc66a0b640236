#!/usr/bin/env python3
# nat_lab_test.py: the self-test of tests/pylib/nat_lab.py, the network-namespace NAT lab (real kernel NAT with
# nftables). Behind a home router, outbound TCP works and arrives masqueraded as the router's WAN address;
# unsolicited inbound is dropped (connect times out), public hosts have no route to 10.x (ENETUNREACH), one home
# cannot reach another's LAN (its own router answers net-unreachable); a forwarded port lets inbound through;
# a capture sees the payload; two labs run side by side; teardown leaves no namespace and no process behind,
# after a normal exit, an exception, SIGTERM, and SIGKILL (the guardian). Exits 77 (ctest SKIP) without root,
# network namespaces or nftables.
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from nat_lab import NatLab, existing_namespaces
from zshare_testlib import Checks, wait_for

SKIP = 77
PORT = 5000          # every namespace has its own ports: the same one everywhere
FORWARDED = 6000     # home2's router forwards this WAN port to h2:PORT
DROP_TIMEOUT_S = 1.0  # a connect that gets no answer at all within this is "dropped" (on veths an answer takes < 1 ms)
DEADLINE_S = 10

# A TCP server: prints {"listening": port}, then per connection {"peer": ip, "data": text} and echoes "ECHO:" + data.
SERVER = r"""
import json, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print(json.dumps({"listening": int(sys.argv[1])}), flush=True)
while True:
    c, a = s.accept()
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    print(json.dumps({"peer": a[0], "data": data.decode().strip()}), flush=True)
    c.sendall(b"ECHO:" + data)
    c.close()
"""

# A TCP client: connects within a timeout, sends a line, reads the echo; prints {"ok": true, "reply", "local"} or
# {"ok": false, "error": "timeout" | errno name}.
CLIENT = r"""
import errno, json, socket, sys
ip, port, timeout, payload = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.settimeout(timeout)
try:
    s.connect((ip, port))
    s.settimeout(10)
    s.sendall(payload.encode() + b"\n")
    reply = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    print(json.dumps({"ok": True, "reply": reply.decode().strip(), "local": s.getsockname()[0]}))
except socket.timeout:
    print(json.dumps({"ok": False, "error": "timeout"}))
except OSError as e:
    print(json.dumps({"ok": False, "error": errno.errorcode.get(e.errno, str(e))}))
"""

# A child process that builds a lab, starts a process in it, prints {"namespaces", "pid"} and waits to be killed.
LAB_CHILD = r"""
import json, signal, subprocess, sys
from nat_lab import NatLab
lab = NatLab(homes=1).start()
p = lab.popen("h1", ["sleep", "600"])
print(json.dumps({"namespaces": lab.namespaces, "pid": p.pid}), flush=True)
while True:
    signal.pause()  # until the test's signal ends this process
"""


class Server:
    """SERVER in a lab host, its output lines read by a thread."""

    def __init__(self, lab, host, port=PORT):
        self.host = host
        self.proc = lab.popen(host, [sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next(DEADLINE_S)
        if first != {"listening": port}:
            raise AssertionError("server in %s did not start: %r %s" % (host, first, self.proc.stderr.read()))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, deadline_s):
        try:
            msg = self.lines.get(timeout=deadline_s)
        except queue.Empty:
            return None
        self.seen.append(msg)
        return msg

    def drain(self):
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen


def connect(lab, host, ip, port, payload, timeout_s=DEADLINE_S):
    """Starts CLIENT in `host`; returns a function that waits for and returns its result map."""
    proc = lab.popen(host, [sys.executable, "-c", CLIENT, ip, str(port), str(timeout_s), payload],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result():
        out, err = proc.communicate(timeout=timeout_s + DEADLINE_S)
        if proc.returncode != 0 or not out.strip():
            raise AssertionError("client in %s failed (exit %s): %s" % (host, proc.returncode, err))
        return json.loads(out)
    return result


def ipv4_addrs(frame):
    """(source, destination) IPv4 addresses of an Ethernet frame carrying IPv4, else None."""
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        return tuple(".".join(str(b) for b in frame[at:at + 4]) for at in (26, 30))
    return None


def lab_gone(names):
    left = existing_namespaces() & set(names)
    return not left


def pid_gone(pid):
    """True when `pid` does not exist or is a zombie (dead, waiting for a reaper that may never come here)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def main():
    ok, why = NatLab.available(capture=True)
    if not ok:
        print("SKIP: %s" % why, flush=True)
        return SKIP
    checks = Checks()
    started = time.monotonic()

    def check(cond, what):
        checks.ok(cond, what)
        print("ok - %s" % what, flush=True)

    def body():
        tmp = tempfile.mkdtemp(prefix="zshare-natlab-")
        try:
            run_checks(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run_checks(tmp):
        procs = []
        t0 = time.monotonic()
        with NatLab(homes=2) as lab:
            setup_s = time.monotonic() - t0
            names = lab.namespaces
            print("# lab %s set up in %.2fs: %s" % (lab.prefix, setup_s, " ".join(names)), flush=True)
            check(set(names) <= existing_namespaces(), "every lab namespace exists while the lab runs")
            check(all(len(n) <= 15 for n in names), "namespace names fit 15 characters: %r" % names)
            check(lab.wan("home1") == "198.51.100.101" and lab.wan("home2") == "198.51.100.102"
                  and lab.addr("h1") == "10.1.0.2" and lab.addr("core") == "198.51.100.10",
                  "the documented addresses")
            root_fwd = open("/proc/sys/net/ipv4/ip_forward").read().strip()
            r1_fwd = lab.run("r1", ["cat", "/proc/sys/net/ipv4/ip_forward"], capture_output=True, text=True).stdout
            check(r1_fwd.strip() == "1", "the router forwards inside its own namespace")

            core, h1, h2 = Server(lab, "core"), Server(lab, "h1"), Server(lab, "h2")
            procs += [core.proc, h1.proc, h2.proc]
            pcap = os.path.join(tmp, "core.pcap")
            cap = lab.capture("core", "eth0", pcap)

            r = connect(lab, "h1", lab.addr("core"), PORT, "payload-from-h1-7f3a")()
            check(r["ok"] and r["reply"] == "ECHO:payload-from-h1-7f3a" and r["local"] == "10.1.0.2",
                  "h1 connects to core and gets the echo: %r" % r)
            seen = core.next(DEADLINE_S)
            check(seen == {"peer": lab.wan("home1"), "data": "payload-from-h1-7f3a"},
                  "core sees h1's connection from r1's WAN address (masquerade): %r" % seen)

            r = connect(lab, "pubhost", lab.addr("core"), PORT, "from-pubhost")()
            seen = core.next(DEADLINE_S)
            check(r["ok"] and seen == {"peer": lab.addr("pubhost"), "data": "from-pubhost"},
                  "pubhost reaches core from its own address: %r %r" % (r, seen))

            # what must not work, at once: each either fails fast with the expected error or times out
            t1 = time.monotonic()
            waits = {
                "core -> h1's 10.1.0.2": connect(lab, "core", lab.addr("h1"), PORT, "x", DROP_TIMEOUT_S),
                "core -> r1's WAN:h1's port": connect(lab, "core", lab.wan("home1"), PORT, "x", DROP_TIMEOUT_S),
                "h1 -> h2's 10.2.0.2": connect(lab, "h1", lab.addr("h2"), PORT, "x", DROP_TIMEOUT_S),
                "h1 -> r2's WAN:h2's port": connect(lab, "h1", lab.wan("home2"), PORT, "x", DROP_TIMEOUT_S),
                "pubhost -> r2's WAN:h2's port": connect(lab, "pubhost", lab.wan("home2"), PORT, "x", DROP_TIMEOUT_S),
            }
            got = {k: w() for k, w in waits.items()}
            print("# the refused connections took %.2fs" % (time.monotonic() - t1), flush=True)
            check(got["core -> h1's 10.1.0.2"] == {"ok": False, "error": "ENETUNREACH"},
                  "core has no route to a home LAN: ENETUNREACH (%r)" % got["core -> h1's 10.1.0.2"])
            check(got["h1 -> h2's 10.2.0.2"] == {"ok": False, "error": "ENETUNREACH"},
                  "h1 cannot reach h2 directly: r1 answers net-unreachable (%r)" % got["h1 -> h2's 10.2.0.2"])
            for k in ("core -> r1's WAN:h1's port", "h1 -> r2's WAN:h2's port", "pubhost -> r2's WAN:h2's port"):
                check(got[k] == {"ok": False, "error": "timeout"},
                      "%s: dropped by the router, no RST nor ICMP, the connect times out (%r)" % (k, got[k]))
            check(h1.drain() == [{"listening": PORT}] and h2.drain() == [{"listening": PORT}],
                  "no unsolicited connection reached h1 or h2")

            lab.forward_port("home2", FORWARDED, PORT)
            r = connect(lab, "core", lab.wan("home2"), FORWARDED, "via-forward")()
            seen = h2.next(DEADLINE_S)
            check(r["ok"] and seen == {"peer": lab.addr("core"), "data": "via-forward"},
                  "a forwarded port on r2 lets core in, from core's own address: %r %r" % (r, seen))

            cap.stop()
            frames = cap.packets()
            request = [f for f in frames if b"payload-from-h1-7f3a" in f and b"ECHO:" not in f]
            echo = [f for f in frames if b"ECHO:payload-from-h1-7f3a" in f]
            check(len(request) == 1 and ipv4_addrs(request[0]) == (lab.wan("home1"), lab.addr("core"))
                  and len(echo) == 1 and ipv4_addrs(echo[0]) == (lab.addr("core"), lab.wan("home1")),
                  "the capture on core's eth0 holds the payload from r1's WAN address and its echo back (%d frames)"
                  % len(frames))
            check(cap.packets_captured == len(frames), "tcpdump's count (%s) matches the file's frames (%d)"
                  % (cap.packets_captured, len(frames)))

            # a second lab side by side: own names, same addresses, isolated; an exception tears it down
            class Boom(Exception):
                pass
            names2 = []
            sleeper = []
            try:
                with NatLab(homes=1) as lab2:
                    names2 += lab2.namespaces
                    check(not set(names2) & set(names), "a second lab has namespaces of its own: %r" % names2)
                    core_seen = len(core.drain())
                    core2 = Server(lab2, "core")
                    r = connect(lab2, "h1", lab2.addr("core"), PORT, "lab2")()
                    check(r["ok"] and core2.next(DEADLINE_S) == {"peer": lab2.wan("home1"), "data": "lab2"},
                          "the second lab works on the same addresses")
                    check(len(core.drain()) == core_seen, "and the first lab's core saw none of it")
                    sleeper.append(lab2.popen("h1", ["sh", "-c", "sleep 600 & sleep 600; wait"]))
                    raise Boom()
            except Boom:
                pass
            check(lab_gone(names2), "a with-block that raised leaves none of its namespaces")
            check(sleeper[0].poll() is not None, "and its processes are killed")

            r = connect(lab, "h1", lab.addr("core"), PORT, "still-there")()
            check(r["ok"] and core.next(DEADLINE_S) == {"peer": lab.wan("home1"), "data": "still-there"},
                  "the first lab still works after the second one's teardown")
        check(lab_gone(names), "after the with-block no lab namespace remains")
        check(all(p.poll() is not None for p in procs), "and the processes started in it are dead")
        check(open("/proc/sys/net/ipv4/ip_forward").read().strip() == root_fwd,
              "the root namespace's ip_forward is untouched (%s)" % root_fwd)

        for sig, how in ((signal.SIGTERM, "the signal handler"), (signal.SIGKILL, "the guardian")):
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.abspath(
                sys.modules["nat_lab"].__file__)), env.get("PYTHONPATH")]))
            child = subprocess.Popen([sys.executable, "-c", LAB_CHILD], stdout=subprocess.PIPE, text=True, env=env)
            try:
                info = json.loads(child.stdout.readline() or "null")
                check(info and set(info["namespaces"]) <= existing_namespaces(), "a child process built a lab")
                child.send_signal(sig)
                code = child.wait(timeout=DEADLINE_S)
                check(code == -sig, "the child died of %s (%s)" % (signal.Signals(sig).name, code))
                if sig == signal.SIGTERM:  # the handler tears down before the process dies: gone at once
                    check(lab_gone(info["namespaces"]), "SIGTERM: no namespace left when the process is gone")
                wait_for(lambda: lab_gone(info["namespaces"]), DEADLINE_S, "the lab's namespaces to go")
                wait_for(lambda: pid_gone(info["pid"]), DEADLINE_S, "the process in the lab to die")
                check(True, "%s: %s tears the lab down and kills its processes" % (signal.Signals(sig).name, how))
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()

    return checks.run(body, expected=(AssertionError, TimeoutError), timed_from=started)


if __name__ == "__main__":
    sys.exit(main())
