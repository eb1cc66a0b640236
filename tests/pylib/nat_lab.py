# nat_lab.py: a NAT lab of Linux network namespaces for process tests, with the kernel's own NAT (nftables).
#
#   public network 198.51.100.0/24 (TEST-NET-2): a bridge `br0` in namespace `pub`, and on it
#     core     198.51.100.10        the broker/relay host
#     pubhost  198.51.100.20        a downloader with a public address
#     rK       198.51.100.(100+K)   home K's router, interface `wan`
#   home K (home1, home2, ...): router rK, LAN 10.K.0.0/24 on its interface `lan` (10.K.0.1), and
#     hK       10.K.0.2             the host behind it (interface `eth0`, default route via 10.K.0.1)
#
# A router forwards, masquerades LAN->WAN and drops whatever new comes in on its WAN, to itself (input) or to
# its LAN (forward): outbound connections work, unsolicited inbound ones time out (no RST, no ICMP), as behind
# a typical home router. Public hosts have no route to 10.x; routers have no default route, so a home host
# reaching another home's 10.x address gets ICMP net-unreachable from its own router. Nothing leaves the lab:
# every interface lives in a lab namespace, and the root namespace's routes and firewall are not touched.
#
#   with NatLab(homes=2) as lab:
#       srv = lab.popen("core", ["python3", "server.py"], stdout=subprocess.PIPE)
#       lab.run("h1", ["python3", "client.py", lab.addr("core")])
#
# Teardown (leaving the with-block, also by an exception; atexit; SIGTERM/SIGHUP when no handler of the test's
# own is installed; and a guardian process that outlives a SIGKILLed test) kills every process in the lab's
# namespaces and deletes them, which takes their interfaces and nftables rules along.
# Needs root, iproute2 and nftables (tcpdump for capture()); NatLab.available() says whether they are there.
import atexit
import itertools
import os
import signal
import struct
import subprocess
import sys
import threading
import time

PUBLIC_PREFIX = "198.51.100."
PUBLIC_NET = PUBLIC_PREFIX + "0/24"
CORE_ADDR = PUBLIC_PREFIX + "10"
PUBHOST_ADDR = PUBLIC_PREFIX + "20"
MAX_HOMES = 99
CMD_TIMEOUT_S = 20

# The router's rules; a rule forward_port() adds goes into nat/prerouting.
ROUTER_RULESET = """
table ip nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" masquerade
    }
}
table ip filter {
    chain input {
        type filter hook input priority filter; policy accept;
        ct state established,related accept
        iifname "wan" icmp type echo-request accept
        iifname "wan" drop
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        ct state established,related accept
        ct status dnat accept
        iifname "wan" drop
    }
}
"""


class NatLabError(RuntimeError):
    """Building or using the lab failed; the message names the failing command and its stderr."""


def _b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


_COUNTER = itertools.count(1)
_ACTIVE = []            # labs started and not yet torn down, for atexit and the signal handlers
_HANDLERS_INSTALLED = False
_AVAILABLE = None       # NatLab.available()'s cached answer (without the capture check)


def _which(tool):
    """`tool`'s path: on PATH, or in the sbin folders a non-login PATH may lack; None when absent."""
    import shutil
    return shutil.which(tool) or shutil.which(tool, path="/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin")


def _bin(tool):
    """`tool`'s path for an argv (its bare name when absent, so that running it fails saying so)."""
    return _which(tool) or tool


def _sysctl_script(settings):
    """A sh script setting {"net/ipv4/ip_forward": 1, ...} in /proc/sys (of the namespace it runs in; no procps
    needed). A disable_ipv6 key that is absent (a kernel without IPv6) is skipped; any other must exist."""
    lines = ["set -e"]
    for key, value in settings.items():
        path = "/proc/sys/" + key
        if "disable_ipv6" in key:
            lines.append("if [ -e %s ]; then echo %s > %s; fi" % (path, value, path))
        else:
            lines.append("echo %s > %s" % (value, path))
    return "; ".join(lines)


def _fmt(argv):
    return " ".join(argv)


def _check(argv, input=None, timeout=CMD_TIMEOUT_S):
    """Runs argv; returns its stdout (text) or raises NatLabError with the command, its stdin and stderr."""
    try:
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise NatLabError("`%s` failed: %s" % (_fmt(argv), e)) from None
    except subprocess.TimeoutExpired:
        raise NatLabError("`%s` did not finish within %ss" % (_fmt(argv), timeout)) from None
    if r.returncode != 0:
        raise NatLabError(_failure(argv, input, r.returncode, r.stderr))
    return r.stdout


def _failure(argv, input, code, stderr):
    msg = "`%s` failed (exit %s): %s" % (_fmt(argv), code, (stderr or "").strip() or "(no stderr)")
    if input:
        msg += "\n--- its stdin:\n" + input.rstrip()
    return msg


def _check_all(jobs, timeout=CMD_TIMEOUT_S):
    """Runs [(argv, stdin text or None)] concurrently; raises NatLabError for the first that failed."""
    procs = []
    try:
        for argv, input in jobs:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append((argv, input, p))
        failures = []
        for argv, input, p in procs:
            try:
                _, err = p.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                failures.append("`%s` did not finish within %ss" % (_fmt(argv), timeout))
                continue
            if p.returncode != 0:
                failures.append(_failure(argv, input, p.returncode, err))
        if failures:
            raise NatLabError("\n".join(failures))
    except FileNotFoundError as e:
        raise NatLabError("cannot run %s: %s" % (_fmt(jobs[len(procs)][0]), e)) from None
    finally:
        for _, _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def existing_namespaces():
    """The names `ip netns list` shows (every namespace on the machine, not only labs')."""
    try:
        out = subprocess.run([_bin("ip"), "netns", "list"], capture_output=True, text=True, timeout=CMD_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _kill_namespace_processes(names):
    """SIGKILLs every process whose network namespace is one of the named ones (what `ip netns pids` finds)."""
    wanted = set()
    for name in names:
        try:
            st = os.stat("/run/netns/" + name)
            wanted.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    if not wanted:
        return
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat("/proc/%s/ns/net" % entry)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in wanted:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def destroy_namespaces(names):
    """Kills the processes in the named namespaces and deletes those namespaces (missing ones are skipped).
    Deleting a namespace removes its interfaces (veth peers go with them) and its nftables rules."""
    present = [n for n in names if n in existing_namespaces()]
    if not present:
        return
    _kill_namespace_processes(present)
    subprocess.run([_bin("ip"), "-force", "-batch", "-"], input="".join("netns del %s\n" % n for n in present),
                   capture_output=True, text=True, timeout=CMD_TIMEOUT_S)


def _teardown_all():
    for lab in list(_ACTIVE):
        try:
            lab.close()
        except Exception as e:  # noqa: BLE001 - the others still get torn down
            print("# nat_lab: teardown of %s: %s" % (lab.prefix, e), file=sys.stderr, flush=True)


def _on_signal(signum, frame):
    _teardown_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_teardown_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:  # a test's own handler stays; the guardian covers it
            signal.signal(sig, _on_signal)


def _guard_main(read_fd, names):
    """The guardian: detached from the test (own session, reparented), it waits until the test process closes
    the pipe. Without a "done" first (the test died without tearing down: SIGKILL, a crash), it tears down."""
    if os.fork():
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    got = b""
    while True:
        try:
            chunk = os.read(read_fd, 64)
        except InterruptedError:
            continue
        if not chunk:
            break
        got += chunk
    if b"done" not in got:
        destroy_namespaces(names)
    os._exit(0)


class Capture:
    """A tcpdump writing a pcap file inside a lab namespace; see NatLab.capture()."""

    def __init__(self, proc, path, what):
        self.proc = proc
        self.path = path
        self.what = what
        self.lines = []
        self.packets_captured = None
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wait_line(self, pred, start, deadline):
        """The first line from index `start` on that pred accepts, or None at the deadline / tcpdump's exit."""
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if pred(line):
                        return line
                start = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cond.wait(min(left, 0.1))

    def _wait_listening(self, deadline_s):
        if self._wait_line(lambda l: "listening on" in l, 0, time.monotonic() + deadline_s) is None:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(timeout=2)
            raise NatLabError("tcpdump %s did not start listening: %s" % (self.what, "\n".join(self.lines)))

    @staticmethod
    def _stats(line):
        # "tcpdump: 3 packets captured, 3 packets received by filter, 0 packets dropped by kernel"
        import re
        m = re.search(r"(\d+) packets? captured, (\d+) packets? received by filter", line)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def running(self):
        return self.proc.poll() is None

    def stop(self, deadline_s=5):
        """Stops tcpdump once it has written every packet the kernel gave it (asked with SIGUSR1 until its
        `captured` count reaches `received by filter`), then SIGINT; waits for its exit. Returns the path."""
        if self.proc.poll() is None:
            end = time.monotonic() + deadline_s
            while time.monotonic() < end and self.proc.poll() is None:
                with self._cond:
                    start = len(self.lines)
                self.proc.send_signal(signal.SIGUSR1)
                line = self._wait_line(lambda l: self._stats(l) is not None, start, min(end, time.monotonic() + 1))
                stats = self._stats(line) if line else None
                if stats and stats[0] >= stats[1]:
                    break  # else ask again: each round waits for tcpdump's next stats line
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=max(1.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        for line in self.lines:
            if line.endswith("packets captured") or line.endswith("packet captured"):
                self.packets_captured = int(line.split()[0])
        return self.path

    def read(self):
        """The pcap file's bytes (stop() first for a complete file)."""
        with open(self.path, "rb") as f:
            return f.read()

    def packets(self):
        """The captured frames, as bytes (link layer included), in order."""
        return [data for _, data in read_pcap(self.path)]


def read_pcap(path):
    """[(timestamp seconds, frame bytes)] of a classic pcap file (what tcpdump -w writes)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("%s is not a pcap file (magic %r)" % (path, magic))
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            break  # a record still being written
        out.append((sec + frac / (1e9 if nano else 1e6), data[off:off + incl]))
        off += incl
    return out


class NatLab:
    """The lab; use it as a context manager (or start() / close()). Host names: "pub" (the bridge's namespace),
    "core", "pubhost", and per home K "rK" (router) and "hK" (host); homes are named "homeK"."""

    def __init__(self, homes=2, setup_timeout_s=CMD_TIMEOUT_S):
        if not 1 <= homes <= MAX_HOMES:
            raise ValueError("homes must be 1..%d, not %r" % (MAX_HOMES, homes))
        self.homes = ["home%d" % k for k in range(1, homes + 1)]
        self.prefix = "z%s%s" % (_b36(os.getpid()), _b36(next(_COUNTER)))
        self.setup_timeout_s = setup_timeout_s
        self._hosts = {"pub": {"addr": None}, "core": {"addr": CORE_ADDR}, "pubhost": {"addr": PUBHOST_ADDR}}
        for k in range(1, homes + 1):
            self._hosts["r%d" % k] = {"addr": PUBLIC_PREFIX + str(100 + k), "lan": "10.%d.0.1" % k, "home": k}
            self._hosts["h%d" % k] = {"addr": "10.%d.0.2" % k, "gateway": "10.%d.0.1" % k, "home": k}
        self._procs = []      # (Popen, own process group)
        self._captures = []
        self._guard_w = None
        self._started = False
        self._closed = False
        self._owner_pid = os.getpid()

    # ---- names and addresses ----

    @property
    def hosts(self):
        return list(self._hosts)

    @property
    def namespaces(self):
        return [self.ns(h) for h in self._hosts]

    def _host(self, host):
        if host not in self._hosts:
            raise KeyError("no host %r in this lab (hosts: %s)" % (host, ", ".join(self._hosts)))
        return self._hosts[host]

    def ns(self, host):
        """The namespace name of `host` (for `ip netns exec`, `ip -n`)."""
        self._host(host)
        return "%s-%s" % (self.prefix, host)

    def addr(self, host):
        """`host`'s IPv4 address: core/pubhost their public one, hK 10.K.0.2, rK its WAN address."""
        addr = self._host(host)["addr"]
        if addr is None:
            raise KeyError("%r has no address (it only holds the bridge)" % host)
        return addr

    def _home_index(self, home):
        if isinstance(home, int):
            k = home
        elif home.startswith("home") and home[4:].isdigit():
            k = int(home[4:])
        elif home[:1] in ("r", "h") and home[1:].isdigit():
            k = int(home[1:])
        else:
            k = 0
        if not 1 <= k <= len(self.homes):
            raise KeyError("no home %r in this lab (homes: %s)" % (home, ", ".join(self.homes)))
        return k

    def router(self, home):
        """The router's host name of `home` ("home1", 1, "r1" or "h1" -> "r1")."""
        return "r%d" % self._home_index(home)

    def host(self, home):
        """The host name behind `home`'s router ("home1" -> "h1")."""
        return "h%d" % self._home_index(home)

    def wan(self, home):
        """The WAN (public) address of `home`'s router: what its hosts' connections come from outside."""
        return self.addr(self.router(home))

    def lan(self, home):
        """The LAN address of `home`'s router (its hosts' gateway)."""
        return self._hosts[self.router(home)]["lan"]

    # ---- lifecycle ----

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        if self._started:
            raise NatLabError("lab %s already started" % self.prefix)
        self._started = True
        _install_handlers()
        _ACTIVE.append(self)
        try:
            self._start_guardian()
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _start_guardian(self):
        r, w = os.pipe()
        try:
            starter = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--guard", str(r)] + self.namespaces,
                                       pass_fds=(r,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            _, err = starter.communicate(timeout=CMD_TIMEOUT_S)
            if starter.returncode != 0:
                raise NatLabError("the lab's guardian did not start (exit %s): %s"
                                  % (starter.returncode, err.decode(errors="replace").strip()))
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._guard_w = w

    def _build(self):
        t = self.setup_timeout_s
        routers = [h for h in self._hosts if h.startswith("r")]
        names = self.namespaces
        stale = [n for n in names if n in existing_namespaces()]  # a dead process's lab with our pid
        if stale:
            destroy_namespaces(stale)
        _check([_bin("ip"), "-batch", "-"], "".join("netns add %s\n" % n for n in names), timeout=t)

        # /proc/sys settings before the interfaces exist: no IPv6 (no link-local chatter in captures), routers forward
        jobs = []
        for h in self._hosts:
            settings = {"net/ipv6/conf/all/disable_ipv6": 1, "net/ipv6/conf/default/disable_ipv6": 1}
            if h in routers:
                settings["net/ipv4/ip_forward"] = 1
            jobs.append(([_bin("ip"), "netns", "exec", self.ns(h), "sh", "-c", _sysctl_script(settings)], None))
        for r in routers:
            jobs.append(([_bin("ip"), "netns", "exec", self.ns(r), _bin("nft"), "-f", "-"], ROUTER_RULESET))
        _check_all(jobs, timeout=t)

        # every link, made from `pub`: veth ends are created right in their namespaces
        pub = ["link set lo up", "link add br0 type bridge stp_state 0", "link set br0 up"]
        for h in ["core", "pubhost"] + routers:
            peer = "wan" if h in routers else "eth0"
            pub += ["link add %s type veth peer name %s netns %s" % (h, peer, self.ns(h)),
                    "link set %s master br0" % h, "link set %s up" % h]
        for r in routers:
            pub.append("link add lan netns %s type veth peer name eth0 netns %s"
                       % (self.ns(r), self.ns(self.host(r))))
        _check([_bin("ip"), "-n", self.ns("pub"), "-batch", "-"], "\n".join(pub) + "\n", timeout=t)

        jobs = []
        for h, info in self._hosts.items():
            if h == "pub":
                continue
            if h in routers:
                cmds = ["link set lo up", "addr add %s/24 dev wan" % info["addr"], "addr add %s/24 dev lan" % info["lan"],
                        "link set wan up", "link set lan up"]
            else:
                cmds = ["link set lo up", "addr add %s/24 dev eth0" % info["addr"], "link set eth0 up"]
                if "gateway" in info:
                    cmds.append("route add default via %s" % info["gateway"])
            jobs.append(([_bin("ip"), "-n", self.ns(h), "-batch", "-"], "\n".join(cmds) + "\n"))
        _check_all(jobs, timeout=t)
        self._wait_bridge_forwarding(["core", "pubhost"] + routers, deadline_s=t)

    def _wait_bridge_forwarding(self, ports, deadline_s):
        """Until every bridge port is up and forwarding (both veth ends up; no STP, so at once in practice)."""
        import json
        from zshare_testlib import wait_for  # here, not at the top: the guardian process needs none of it
        states = {}

        def forwarding():
            out = _check([_bin("bridge"), "-n", self.ns("pub"), "-j", "link", "show"])
            states.update({p.get("ifname"): p.get("state") for p in json.loads(out or "[]")})
            return all(states.get(p) == "forwarding" for p in ports)
        try:
            wait_for(forwarding, deadline_s, "the bridge ports to forward")
        except TimeoutError:
            raise NatLabError("bridge ports not forwarding after %ss: %r" % (deadline_s, states))

    def close(self):
        """Tears the lab down: stops captures, kills the processes started in it (and any other process in its
        namespaces), deletes its namespaces. Idempotent."""
        if self._closed or not self._started:
            return
        if os.getpid() != self._owner_pid:  # a forked child inherited the lab: its owner tears it down
            return
        for cap in list(self._captures):
            try:
                cap.stop(deadline_s=2)
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
        for proc, own_group in list(self._procs):
            if proc.poll() is None:
                try:
                    if own_group:
                        os.killpg(proc.pid, signal.SIGKILL)
                    else:
                        proc.kill()
                except OSError:
                    pass
        destroy_namespaces(self.namespaces)
        for proc, _ in list(self._procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._guard_w is not None:
            try:
                os.write(self._guard_w, b"done")
                os.close(self._guard_w)
            except OSError:
                pass
            self._guard_w = None
        self._closed = True
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    # ---- running things inside ----

    def _live(self):
        if not self._started or self._closed:
            raise NatLabError("lab %s is not running" % self.prefix)

    def exec_argv(self, host, argv):
        """`ip netns exec NS argv...`: argv run inside `host`'s namespace (ip execs it: same pid)."""
        return [_bin("ip"), "netns", "exec", self.ns(host)] + [str(a) for a in argv]

    def popen(self, host, argv, **popen_kwargs):
        """subprocess.Popen of argv inside `host`'s namespace. It runs in a session of its own (unless
        start_new_session is given) and is killed, with its process group, when the lab is torn down."""
        self._live()
        popen_kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.exec_argv(host, argv), **popen_kwargs)
        self._procs.append((proc, bool(popen_kwargs["start_new_session"])))
        return proc

    def run(self, host, argv, timeout=30, **run_kwargs):
        """subprocess.run of argv inside `host`'s namespace, with a timeout (TimeoutExpired when it passes)."""
        self._live()
        return subprocess.run(self.exec_argv(host, argv), timeout=timeout, **run_kwargs)

    def capture(self, host, iface, path, bpf_filter=None, deadline_s=5):
        """Starts tcpdump on `iface` of `host` (e.g. ("core", "eth0"), ("r1", "wan"), ("pub", "br0")) writing a
        pcap to `path`; returns once it is capturing. The Capture's stop() returns when every packet is in the
        file; read()/packets() read it."""
        self._live()
        if not _which("tcpdump"):
            raise NatLabError("tcpdump is not installed (tools/install-deps.sh installs it)")
        # A 32 MiB buffer: a transfer over the lab's veths outruns tcpdump's default 2 MiB, and the kernel drops.
        argv = [_bin("tcpdump"), "-i", iface, "-w", path, "-U", "-n", "--immediate-mode", "-Z", "root", "-B", "32768"]
        if bpf_filter:
            argv.append(bpf_filter)
        proc = self.popen(host, argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cap = Capture(proc, path, "on %s:%s" % (host, iface))
        cap._wait_listening(deadline_s)
        self._captures.append(cap)
        return cap

    def nft(self, router, *args):
        """Runs `nft ARGS...` in a namespace (usually a router's); returns its stdout."""
        self._live()
        return _check(self.exec_argv(router, [_bin("nft")] + list(args)))

    def forward_port(self, home, port, to_port=None, proto="tcp"):
        """Port forwarding on `home`'s router: new connections to its WAN address on `port` go to its host's
        `to_port` (default: the same); they arrive from their real public source address."""
        r = self.router(home)
        dest = "%s:%d" % (self.addr(self.host(home)), to_port or port)
        self.nft(r, "add", "rule", "ip", "nat", "prerouting", "iifname", "wan", proto, "dport", str(port),
                 "dnat", "to", dest)

    @staticmethod
    def available(capture=False):
        """(True, "") when this machine can run a lab, else (False, why): root, iproute2, nftables (with the NAT
        and conntrack expressions in the kernel), veth and bridge; with capture=True, tcpdump too."""
        global _AVAILABLE
        if _AVAILABLE is None:
            _AVAILABLE = NatLab._probe()
        ok, why = _AVAILABLE
        if ok and capture and not _which("tcpdump"):
            return False, "tcpdump is not installed (tools/install-deps.sh installs it)"
        return ok, why

    @staticmethod
    def _probe():
        if os.geteuid() != 0:
            return False, "the NAT lab needs root (network namespaces, nftables)"
        for tool, pkg in (("ip", "iproute2"), ("bridge", "iproute2"), ("nft", "nftables")):
            if not _which(tool):
                return False, "%s is not installed (tools/install-deps.sh installs %s)" % (tool, pkg)
        name = "z%sp%s" % (_b36(os.getpid()), _b36(next(_COUNTER)))
        try:
            _check([_bin("ip"), "netns", "add", name])
        except NatLabError as e:
            return False, "cannot create a network namespace: %s" % e
        try:
            _check([_bin("ip"), "-n", name, "-batch", "-"],
                   "link add probe0 type veth peer name probe1\nlink add br0 type bridge\nlink set probe0 master br0\n")
            _check([_bin("ip"), "netns", "exec", name, _bin("nft"), "-f", "-"], ROUTER_RULESET)
            _check([_bin("ip"), "netns", "exec", name, "sh", "-c", _sysctl_script({"net/ipv4/ip_forward": 1})])
        except NatLabError as e:
            return False, "network namespaces work but the lab's setup does not: %s" % e
        finally:
            destroy_namespaces([name])
        return True, ""


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "--guard":
    _guard_main(int(sys.argv[2]), sys.argv[3:])
