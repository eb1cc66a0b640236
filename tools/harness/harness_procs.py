# harness_procs.py: child processes the harness owns: spawned from one long-lived thread with a parent-death
# signal (so nothing outlives the harness, even a kill -9 of it), logged to files, killed by pid only.
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import threading
import time

SETPRIV = shutil.which("setpriv")


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_rng = random.Random()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, chosen below the kernel's ephemeral range: the
    daemons keep their ports across restarts, and an outgoing connection could take an ephemeral one meanwhile."""
    lo, _ = ephemeral_range()
    if lo > 12000:
        for _ in range(200):
            port = _rng.randint(10000, lo - 1)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    ports = set()
    for _ in range(100 * max(n, 1)):
        ports.add(free_port())
        if len(ports) == n:
            return sorted(ports)
    raise RuntimeError("could not find %d free ports" % n)


def wait_until(predicate, deadline_s, what, step_s=0.02, stop=None):
    """Polls predicate until true (returns its value); raises TimeoutError after deadline_s."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        if stop is not None and stop.is_set():
            raise InterruptedError("stopped while waiting for %s" % what)
        if time.monotonic() > end:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (deadline_s, what))
        time.sleep(step_s)


def with_deathsig(argv):
    """argv prefixed so the child gets SIGKILL when the thread that spawned it dies (util-linux setpriv)."""
    return ([SETPRIV, "--pdeathsig", "KILL", "--"] + list(argv)) if SETPRIV else list(argv)


def popen(argv, stdout_path=None, stderr_path=None, stdout=None):
    """Popen with stdout/stderr appended to files (or stdout=PIPE); stdin closed."""
    opened = []
    if stdout_path:
        out = open(stdout_path, "ab")
        opened.append(out)
    else:
        out = stdout if stdout is not None else subprocess.DEVNULL
    if stderr_path:
        err = open(stderr_path, "ab")
        opened.append(err)
    else:
        err = subprocess.DEVNULL
    try:
        return subprocess.Popen(with_deathsig(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    finally:
        for f in opened:
            f.close()


class Spawner:
    """Spawns daemons from a dedicated thread that lives as long as the harness run, so the parent-death signal
    fires when the harness dies and not when the (fault injector, worker) thread that asked for the start ends."""

    def __init__(self):
        self._requests = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="spawner", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._requests.get()
            if item is None:
                return
            args, kwargs, box, done = item
            try:
                box.append(popen(*args, **kwargs))
            except BaseException as e:  # handed to the caller
                box.append(e)
            done.set()
        # the thread ends only at close(), after every child was killed

    def spawn(self, *args, **kwargs):
        box, done = [], threading.Event()
        self._requests.put((args, kwargs, box, done))
        if not done.wait(30):
            raise RuntimeError("the spawner thread did not answer")
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def close(self):
        self._requests.put(None)
        self._thread.join(timeout=5)


class Daemon:
    """One named daemon (broker, logger, time service, a seeder): start/kill -9/terminate, logs in files."""

    def __init__(self, registry, name, argv, logdir):
        self.registry = registry
        self.name = name
        self.argv = list(argv)
        self.stdout_path = os.path.join(logdir, name + ".stdout")
        self.stderr_path = os.path.join(logdir, name + ".stderr")
        self.proc = None
        self.starts = 0
        self._stdout_at = 0
        self._stderr_at = 0

    def start(self):
        self._stdout_at = _size(self.stdout_path)
        self._stderr_at = _size(self.stderr_path)
        self.proc = self.registry.spawner.spawn(self.argv, self.stdout_path, self.stderr_path)
        self.registry.track(self.proc)
        self.starts += 1
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self, deadline_s=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def stdout_since_start(self):
        return _read_from(self.stdout_path, self._stdout_at)

    def stderr_since_start(self):
        return _read_from(self.stderr_path, self._stderr_at)

    def stderr_tail(self, n=2000):
        text = _read_from(self.stderr_path, 0)
        return text[-n:]


class Registry:
    """Every child process of the run, so cleanup can kill them all by pid (and nothing else)."""

    def __init__(self):
        self.spawner = Spawner()
        self._procs = []
        self._lock = threading.Lock()

    def track(self, proc):
        with self._lock:
            self._procs = [p for p in self._procs if p.poll() is None]
            self._procs.append(proc)

    def kill_all(self):
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        self.kill_all()
        self.spawner.close()


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
