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


class Client:
    """A REQ client speaking the catalogue's framing: one msgpack map per message."""

    def __init__(self, endpoint, timeout_ms=3000):
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
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
        self.sock.connect(self.endpoint)

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
        msg = {"v": 1, "op": op, "id": req_id or self.next_id(), "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        msg.update(fields)
        reply = self.send_raw([msgpack.packb(msg, use_bin_type=True)])
        if reply is None:
            raise TimeoutError("no reply to %s from %s" % (op, self.endpoint))
        return reply

    def close(self):
        self.sock.close(linger=0)


class Broker:
    """A real zshare-broker process on free loopback ports with its own SQLite file."""

    def __init__(self, binary, workdir=None, db=None, extra_args=(), rpclog="none"):
        self.binary = binary
        self.workdir = workdir or tempfile.mkdtemp(prefix="zshare-test-")
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

    def start(self, deadline_s=10):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", self.control, "--events", self.events, "--db", self.db] + self.extra_args,
                stdout=subprocess.DEVNULL, stderr=err)
        probe = Client(self.control, timeout_ms=200)
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
