# zshare_testlib.py: what the process tests share: free loopback ports, starting and stopping a real
# zshare-broker, and a msgpack-over-REQ client built from schemas/catalogue.json's conventions alone.
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import msgpack
import zmq


PROTOCOL_VERSION = 3  # schemas/protocol.md: every request's `v`; the transfer protocol shares the number


class CheckFailed(Exception):
    """A check of a process test failed; its message says what was expected and what came."""


class Checks:
    """Counts passed checks; the first failing one raises CheckFailed."""

    def __init__(self):
        self.passed = 0

    def ok(self, cond, what):
        if not cond:
            raise CheckFailed(what)
        self.passed += 1

    def eq(self, got, want, what):
        self.ok(got == want, "%s: expected %r, got %r" % (what, want, got))

    def run(self, body, expected=(), timed_from=None):
        """Runs a process test's body and prints its verdict; returns the exit code. `expected` adds exception
        types reported as a failed check (CheckFailed always is); `timed_from` (monotonic) adds the duration."""
        import traceback
        try:
            body()
        except (CheckFailed,) + tuple(expected) as e:
            print("FAIL: %s" % e, flush=True)
            print("%d passed, 1 failed" % self.passed)
            return 1
        except Exception:  # noqa: BLE001 - anything else is a failure too, with its traceback
            traceback.print_exc()
            print("FAIL: unexpected exception")
            print("%d passed, 1 failed" % self.passed)
            return 1
        took = "" if timed_from is None else " (%.1fs)" % (time.monotonic() - timed_from)
        print("%d passed, 0 failed%s" % (self.passed, took))
        return 0


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, deadline_s, what):
    """Polls predicate until it returns a true value or the deadline passes (then raises)."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (deadline_s, what))
        time.sleep(0.02)


def curve_client(sock, server_key, keys=None):
    """Makes `sock` a CurveZMQ client that trusts exactly `server_key` (Z85 str), with `keys` (public, secret)
    as Z85 bytes, or a fresh keypair. Returns the keypair used."""
    keys = keys or zmq.curve_keypair()
    sock.curve_serverkey = server_key.encode() if isinstance(server_key, str) else server_key
    sock.curve_publickey, sock.curve_secretkey = keys
    return keys


class Client:
    """A REQ client speaking the catalogue's framing: one msgpack map per message. With `server_key` (the
    broker's public key) it speaks CurveZMQ as `keys` (a fresh keypair unless given): keys name the user's owner."""

    def __init__(self, endpoint, timeout_ms=3000, server_key=None, keys=None):
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.server_key = server_key
        self.keys = (keys or zmq.curve_keypair()) if server_key else None
        self.ctx = zmq.Context.instance()
        self.prefix = uuid.uuid4().hex
        self.counter = itertools.count(1)
        self.sock = None
        self._open()

    def _open(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        if self.server_key:
            curve_client(self.sock, self.server_key, self.keys)
        self.sock.connect(self.endpoint)

    @property
    def public_key(self):
        """This client's public key as the broker names it (Z85 str), or "" without CurveZMQ."""
        return self.keys[0].decode() if self.keys else ""

    def next_id(self):
        return "%s:%d" % (self.prefix, next(self.counter))

    def send_raw(self, frames):
        """Sends raw frames and returns the decoded reply map (or None on timeout; the socket is reset)."""
        self.sock.send_multipart(frames)
        if self.sock.poll(self.timeout_ms) & zmq.POLLIN:
            return msgpack.unpackb(self.sock.recv(), raw=False)
        self._open()
        return None

    def call(self, op, req_id=None, **fields):
        msg = {"v": PROTOCOL_VERSION, "op": op, "id": req_id or self.next_id(), "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        msg.update(fields)
        reply = self.send_raw([msgpack.packb(msg, use_bin_type=True)])
        if reply is None:
            raise TimeoutError("no reply to %s from %s" % (op, self.endpoint))
        return reply

    def close(self):
        self.sock.close(linger=0)


Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def is_z85_key(text):
    """True when `text` is a CurveZMQ key in Z85: a str of exactly 40 characters of the Z85 alphabet."""
    return type(text) is str and len(text) == 40 and all(c in Z85_ALPHABET for c in text)


def read_public_key(path):
    """The Z85 public key of a zshare key file (public-key = "...")."""
    with open(path) as f:
        for line in f:
            if line.strip().startswith("public-key"):
                return line.split('"')[1]
    raise ValueError("no public-key line in %s" % path)


class DaemonProcess:
    """What the daemon helpers share: self.proc (a Popen) and self.workdir; signals and cleanup."""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, deadline_s=10):
        """SIGTERM and wait; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=deadline_s)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Broker(DaemonProcess):
    """A real zshare-broker process on free loopback ports with its own SQLite file and, unless `plaintext`,
    its own CurveZMQ keypair (made with `zshare-broker keygen` in the workdir, kept across restarts)."""

    def __init__(self, binary, workdir=None, db=None, extra_args=(), rpclog="none", plaintext=False):
        self.binary = binary
        self.workdir = workdir or tempfile.mkdtemp(prefix="zshare-test-")
        os.makedirs(self.workdir, exist_ok=True)  # the keypair is made here at once
        self.db = db or os.path.join(self.workdir, "broker.db")
        control_port = free_port()
        events_port = free_port()
        while events_port == control_port:  # the kernel may hand out the port it just freed
            events_port = free_port()
        self.control = "tcp://127.0.0.1:%d" % control_port
        self.events = "tcp://127.0.0.1:%d" % events_port
        self.extra_args = ["--rpclog", rpclog] + list(extra_args)  # "none": no operations log unless asked
        self.proc = None
        self.stderr_path = os.path.join(self.workdir, "broker.stderr")
        self.plaintext = plaintext
        self.key_file = os.path.join(self.workdir, "broker.key")
        self.public_key_file = os.path.join(self.workdir, "broker.pub")
        self.public_key = None
        if plaintext:
            self.extra_args.append("--plaintext")
        else:
            if not os.path.exists(self.key_file):
                subprocess.run([binary, "keygen", "--key", self.key_file], check=True, stdout=subprocess.DEVNULL)
            self.public_key = read_public_key(self.public_key_file)
            self.extra_args += ["--key", self.key_file]

    def client(self, timeout_ms=3000, keys=None):
        """A Client of this broker (over CurveZMQ unless the broker is plaintext), as `keys` or a fresh key."""
        return Client(self.control, timeout_ms=timeout_ms, server_key=self.public_key, keys=keys)

    def secure(self, sock, keys=None):
        """Makes a raw pyzmq socket a client of this broker (CurveZMQ as `keys` or a fresh keypair; nothing when
        the broker is plaintext). Returns the keypair used, or None."""
        if self.plaintext:
            return None
        return curve_client(sock, self.public_key, keys)

    def subscriber(self, *topics, keys=None):
        """A SUB socket on this broker's events (CurveZMQ unless plaintext), subscribed to `topics` (all if none)."""
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        for t in topics or (b"",):
            sock.setsockopt(zmq.SUBSCRIBE, t if isinstance(t, bytes) else t.encode())
        self.secure(sock, keys)
        sock.connect(self.events)
        return sock

    def dealer(self, keys=None):
        """A DEALER on this broker's control endpoint (CurveZMQ unless plaintext); the caller frames requests."""
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        self.secure(sock, keys)
        sock.connect(self.control)
        return sock

    def peer_key_dir(self, key_dir=None):
        """The key folder peer_args(key_dir) gives zshare-peer."""
        return key_dir or os.path.join(self.workdir, "peer-keys")

    def peer_public_key(self, key_dir=None):
        """The public key zshare-peer made in its key folder on its first run ("" for a plaintext broker)."""
        if self.plaintext:
            return ""
        return read_public_key(os.path.join(self.peer_key_dir(key_dir), "peer.key"))

    def peer_args(self, key_dir=None):
        """zshare-peer's global options for this broker. Every peer of a test shares one keypair in the
        workdir unless given its own `key_dir` (a user belongs to the key that registered it)."""
        if self.plaintext:
            return ["--broker", self.control, "--plaintext"]
        return ["--broker", self.control, "--broker-key", self.public_key_file, "--key-dir", self.peer_key_dir(key_dir)]

    def start(self, deadline_s=10):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", self.control, "--events", self.events, "--db", self.db] + self.extra_args,
                stdout=subprocess.DEVNULL, stderr=err)
        probe = self.client(timeout_ms=200)
        try:
            def answered():
                if self.proc.poll() is not None:
                    raise RuntimeError("broker exited with %s: %s" % (self.proc.returncode, self.stderr()))
                try:
                    return probe.call("STATS")
                except TimeoutError:
                    return None
            wait_for(answered, deadline_s, "the broker to answer STATS")
        finally:
            probe.close()
        return self

    def stderr(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()


class RpcLog(DaemonProcess):
    """A real zshare-rpclog process on a fixed loopback port (kept across restarts) with its own log file."""

    def __init__(self, binary, workdir=None, port=None, log=None, extra_args=()):
        self.binary = binary
        self.extra_args = list(extra_args)
        self.workdir = workdir or tempfile.mkdtemp(prefix="zshare-rpclog-")
        self.port = port or free_port()
        self.address = "127.0.0.1:%d" % self.port  # what the broker's --rpclog takes
        self.log = log or os.path.join(self.workdir, "operations.log")
        self.stderr_path = os.path.join(self.workdir, "rpclog.stderr")
        self.proc = None
        self._stderr_at = 0  # where this start's stderr begins in the (appended) stderr file

    def start(self, deadline_s=10):
        """Starts the logger and waits until it says it serves (the line is printed after listen())."""
        self._stderr_at = os.path.getsize(self.stderr_path) if os.path.exists(self.stderr_path) else 0
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--log", self.log] + self.extra_args,
                stdout=subprocess.DEVNULL, stderr=err)
        serving = "on 127.0.0.1:%d" % self.port

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("zshare-rpclog exited with %s: %s" % (self.proc.returncode, self.stderr_since_start()))
            return serving in self.stderr_since_start()
        wait_for(up, deadline_s, "zshare-rpclog to listen on port %d" % self.port)
        return self

    def stderr(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def stderr_since_start(self):
        with open(self.stderr_path, "rb") as f:
            f.seek(self._stderr_at)
            return f.read().decode(errors="replace")

    def complete_lines(self):
        """The log file's complete lines (a line still being written, without its newline, is left out)."""
        try:
            with open(self.log, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return data.decode(errors="replace").split("\n")[:-1]

    def tail(self, *args, timeout_s=20):
        """Runs `zshare-rpclog tail --server <this logger> ARGS`; returns the CompletedProcess (text)."""
        return subprocess.run([self.binary, "tail", "--server", self.address] + list(args),
                              capture_output=True, text=True, timeout=timeout_s)


# ---- transfer helpers (zshare-peer serve / get, the peer-to-peer protocol of schemas/transfer.md) ----

def allocated_bytes(path):
    """Bytes the file system allocated to `path` (st_blocks * 512); 0 when it does not exist.
    A pre-sized sparse .part grows in allocation as chunks are written into it."""
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


class ServeProcess(DaemonProcess):
    """A real `zshare-peer serve` process: registers, connects, publishes its share and serves it.
    start() waits for the SERVE line (--json is always given) and returns it as a dict."""

    def __init__(self, peer_bin, broker, user, share, hash_cache, extra_args=(), stderr_path=None, key_dir=None):
        self.argv = [peer_bin] + broker.peer_args(key_dir) + ["--json", "serve", "--user", user, "--share", share,
                                                              "--hash-cache", hash_cache] + [str(a) for a in extra_args]
        self.user = user
        self.stderr_path = stderr_path or os.path.join(os.path.dirname(os.path.abspath(hash_cache)),
                                                       "serve-%s.stderr" % user)
        self.proc = None
        self.lines = []
        self._lock = None
        self._reader = None
        self.serving = None

    def start(self, deadline_s=60):
        import json
        import threading
        self.lines = []
        self._lock = threading.Lock()
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=err, text=True)

        def read(proc=self.proc, lines=self.lines, lock=self._lock):
            for line in proc.stdout:
                with lock:
                    lines.append(line.rstrip("\n"))
        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

        def serving():
            with self._lock:
                if self.lines:
                    return self.lines[0]
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                with self._lock:
                    if self.lines:
                        return self.lines[0]
                raise RuntimeError("serve %s exited with %s before serving: %s"
                                   % (self.user, self.proc.returncode, self.stderr()))
            return None
        first = wait_for(serving, deadline_s, "serve %s to print its SERVE line" % self.user)
        self.serving = json.loads(first)
        if self.serving.get("status") != "OK":
            raise RuntimeError("serve %s answered %r; stderr: %s" % (self.user, first, self.stderr()))
        return self.serving

    @property
    def endpoint(self):
        return self.serving["endpoint"]

    def output(self):
        with self._lock:
            return list(self.lines)

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, deadline_s=15):
        """SIGTERM, wait for the exit; returns (exit code, stdout lines)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=deadline_s)
        self._reader.join(timeout=deadline_s)
        return code, self.output()

    def stop(self):
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)


class CaseEnv:
    """What one case of a peer process test needs: the binaries, the broker, a temp folder of its own, and the
    processes it started (ServeProcess or Popen objects in self.processes), stopped by cleanup()."""

    def __init__(self, peer_bin, broker, root):
        self.peer_bin = peer_bin
        self.broker = broker
        self.root = root
        self.processes = []

    def folder(self, *parts):
        path = os.path.join(self.root, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def key_dir(self, user):
        """The key folder of `user`'s peer (made by zshare-peer on its first run, kept across restarts)."""
        return os.path.join(self.root, "keys", user)

    def cleanup(self):
        for p in self.processes:
            try:
                if isinstance(p, ServeProcess):
                    p.stop()
                elif p.poll() is None:
                    p.kill()
                    p.communicate(timeout=10)
            except Exception as e:  # cleanup goes on for the others
                print("# cleanup: %s" % e, flush=True)
        self.processes = []


def run_cases(cases, make_env, broker, only=None, stderr_tail=None):
    """Runs (name, test) cases one by one: env = make_env(test), then test(env); prints `ok - NAME (Ns)`, or
    `FAIL - NAME: ...` with the case's serve processes' stderr (its last `stderr_tail` characters when given), then
    cleans the env and its folder up. Stops early when the broker died. Returns (passed, failed)."""
    passed = failed = 0
    for name, test in cases:
        if only and only not in name:
            continue
        env = make_env(test)
        t0 = time.monotonic()
        try:
            test(env)
            passed += 1
            print("ok - %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        except Exception as e:  # report every case, then fail
            failed += 1
            print("FAIL - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            for p in env.processes:
                text = p.stderr().rstrip() if isinstance(p, ServeProcess) else ""
                if text:
                    print("# serve %s stderr:\n%s" % (p.user, text[-stderr_tail:] if stderr_tail else text), flush=True)
        finally:
            env.cleanup()
            shutil.rmtree(env.root, ignore_errors=True)
        if broker.proc.poll() is not None:
            failed += 1
            print("FAIL - the broker died (exit %s):\n%s" % (broker.proc.returncode, broker.stderr()), flush=True)
            break
    return passed, failed


def process_test_main(description, cases, make_env, temp_prefix, add_arguments=None, stderr_tail=None):
    """The main() of a peer process test: parses --broker-bin, --peer-bin, --only (and whatever
    add_arguments(parser) adds), starts a broker, runs the cases with run_cases, each with
    make_env(args, broker, its own folder), prints `# Ns in all` and `N passed, N failed`; returns the exit code."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--broker-bin", required=True)
    parser.add_argument("--peer-bin", required=True)
    parser.add_argument("--only", help="run only the cases whose name contains this")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix=temp_prefix)
    broker = Broker(args.broker_bin)
    started = time.monotonic()
    try:
        broker.start()
        passed, failed = run_cases(cases, lambda test: make_env(args, broker, os.path.join(root, test.__name__)),
                                   broker, only=args.only, stderr_tail=stderr_tail)
    finally:
        broker.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    print("# %.1fs in all" % (time.monotonic() - started), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


TRANSFER_VERSION = 3  # schemas/transfer.md


class TransferClient:
    """A DEALER speaking schemas/transfer.md to one seeder: one msgpack map per request, no delimiter frame."""

    def __init__(self, endpoint, timeout_ms=5000, server_key=None):
        """`server_key`: the seeder's CurveZMQ public key, as the broker lists it (key of its user)."""
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.keys = curve_client(self.sock, server_key) if server_key else None  # (public, secret), Z85 bytes
        self.sock.connect(endpoint)
        self.timeout_ms = timeout_ms
        self.ids = itertools.count(1)

    def request(self, op, **fields):
        """Sends {v, op, id, **fields}; returns (reply map, its `data` bytes or None). Raises TimeoutError on
        silence, and AssertionError when the reply is not exactly one frame (the protocol's one-frame rule)."""
        msg = {"v": TRANSFER_VERSION, "op": op, "id": next(self.ids)}
        msg.update(fields)
        return self.send_map(msg)

    def send_map(self, msg):
        self.sock.send(msgpack.packb(msg, use_bin_type=True))
        if not self.sock.poll(self.timeout_ms) & zmq.POLLIN:
            raise TimeoutError("no reply to %r" % (msg,))
        frames = self.sock.recv_multipart()
        if len(frames) != 1:
            raise AssertionError("a transfer reply must be one frame, got %d: %r" % (len(frames), msg))
        reply = msgpack.unpackb(frames[0], raw=False)
        return reply, reply.get("data")

    def close(self):
        self.sock.close(linger=0)


# ---- time service and operations-log helpers (stamps_test.py) ----

ISO8601_MS_RE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"  # the one stamp format: UTC, milliseconds, 'Z'

# `<timestamp>[*] <user> <OPERATION> <args>\t#<broker id>:<seq>` (rpclog/log_record.hpp); args may be absent.
_LOG_LINE_RE = None


def parse_log_line(line):
    """One operations-log line (without its newline) as a dict: ts, local (the '*' mark), user, op, args,
    broker_id, seq. None when the line is not in the logger's format."""
    import re
    global _LOG_LINE_RE
    if _LOG_LINE_RE is None:
        _LOG_LINE_RE = re.compile(r"(?P<ts>[^ \t*]+)(?P<star>\*?) (?P<user>[^ \t]+) (?P<op>[^ \t]+)"
                                  r"(?: (?P<args>[^\t]*))?\t#(?P<broker_id>.+):(?P<seq>\d+)")
    m = _LOG_LINE_RE.fullmatch(line)
    if not m:
        return None
    return {"ts": m.group("ts"), "local": m.group("star") == "*", "user": m.group("user"), "op": m.group("op"),
            "args": m.group("args") or "", "broker_id": m.group("broker_id"), "seq": int(m.group("seq"))}


def iso8601_ms_to_epoch_ms(text):
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' -> integer milliseconds since the epoch (exact); ValueError otherwise."""
    import calendar
    import re
    if not re.fullmatch(ISO8601_MS_RE, text):
        raise ValueError("not ISO 8601 UTC with milliseconds: %r" % text)
    secs = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * 1000 + int(text[20:23])


class TimeSvc(DaemonProcess):
    """A real zshare-timesvc process on a loopback port kept across restarts (so clients find it again)."""

    def __init__(self, binary, workdir=None, port=None, threads=2):
        self.binary = binary
        self.workdir = workdir or tempfile.mkdtemp(prefix="zshare-timesvc-")
        self.port = port or free_port()
        self.threads = threads
        self.url = "http://127.0.0.1:%d" % self.port  # what a peer's --timesvc takes
        self.out_path = os.path.join(self.workdir, "timesvc.out")
        self.proc = None
        self._out_at = 0

    def start(self, deadline_s=10):
        """Starts the service and waits for its "listening on" line (printed once it accepts connections)."""
        self._out_at = os.path.getsize(self.out_path) if os.path.exists(self.out_path) else 0
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--threads", str(self.threads)],
                stdout=out, stderr=subprocess.STDOUT)
        listening = "listening on %s" % self.url

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("zshare-timesvc exited with %s: %s" % (self.proc.returncode, self.output_since_start()))
            return listening in self.output_since_start()
        wait_for(up, deadline_s, "zshare-timesvc to listen on port %d" % self.port)
        return self

    def output_since_start(self):
        with open(self.out_path, "rb") as f:
            f.seek(self._out_at)
            return f.read().decode(errors="replace")
