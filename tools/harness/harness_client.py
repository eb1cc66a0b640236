# harness_client.py: the driver's broker client, written from schemas/ alone: one msgpack map per REQ message,
# Lazy Pirate retries with the same request id and stamp, and the broker incarnation each call overlapped.
import datetime
import itertools
import threading
import time
import uuid

import msgpack
import zmq

PROTOCOL_VERSION = 3  # schemas/protocol.md: every request's `v`


class Unanswered(Exception):
    """No reply before the deadline, although the request was resent (Lazy Pirate)."""

    def __init__(self, message, ts=None, req_id=None):
        super().__init__(message)
        self.ts = ts
        self.req_id = req_id


class Stopped(Exception):
    """The run is being stopped (Ctrl-C, SIGTERM, a fatal error elsewhere)."""


class Stamps:
    """ISO 8601 UTC stamps with milliseconds, strictly increasing across the harness: each request's `ts` is
    unique, so its log line can be told apart from any other (the serve processes stamp their own)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last_ms = 0

    def next(self):
        now_ms = int(time.time() * 1000)
        with self._lock:
            self._last_ms = max(self._last_ms + 1, now_ms)
            ms = self._last_ms
        t = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


class BrokerEpochs:
    """What the fault injector tells the clients: `incarnation` counts broker lives (sessions do not survive a
    restart; it moves when the kill starts, so whatever the new process answers is in the new incarnation),
    `fault_seq` moves at every kill and every restart, `down` is true between the two. `started_seqs`: the seq of
    each start's broker.started event (every start takes one, the first included)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.fault_seq = 0
        self.incarnation = 1
        self.down = False
        self.started_seqs = []   # broker.started's seq, one per start of the broker (its first event)

    def kill_started(self):
        with self._lock:
            self.fault_seq += 1
            self.incarnation += 1
            self.down = True

    def broker_started(self, started_seq):
        with self._lock:
            self.started_seqs.append(started_seq)

    def restarted(self):
        with self._lock:
            self.fault_seq += 1
            self.down = False

    def starts(self):
        with self._lock:
            return list(self.started_seqs)

    def gap_spans_restart(self, before, after):
        """True when events before+1 .. after-1 were missed across a broker start: its broker.started has a seq S
        with before < S <= after (events up to S-1 were the old process's to publish, and it died; broker.started
        itself is dropped by a PUB when another event or subscriber came first)."""
        with self._lock:
            return any(before < s <= after for s in self.started_seqs)

    def snapshot(self):
        with self._lock:
            return self.fault_seq, self.incarnation, self.down


class CallResult:
    def __init__(self, op, fields, req_id, ts, reply, sent, acked, latency_s, attempts, ack_wall):
        self.op = op
        self.fields = fields
        self.req_id = req_id
        self.ts = ts
        self.reply = reply
        self.sent_fault_seq, self.incarnation, self.sent_down = sent
        self.acked_fault_seq, self.acked_incarnation, _ = acked
        self.latency_s = latency_s
        self.attempts = attempts
        self.ack_wall = ack_wall

    @property
    def status(self):
        return self.reply.get("status")

    @property
    def overlapped(self):
        """True when a broker kill or restart happened while this request was outstanding: which incarnation
        executed it (and so whether sessions were reset before it) is then unknown."""
        return self.sent_down or self.sent_fault_seq != self.acked_fault_seq


class Keys:
    """The network's CurveZMQ keys as the harness sees them: the broker's public key (Z85 str) and the one
    keypair (Z85 bytes) the harness and every seeder it starts act with, so the harness may drive any of its
    users (a user belongs to the key that registered it)."""

    def __init__(self, broker_public, own):
        self.broker_public = broker_public
        self.own = own

    def dial(self, sock, own=None):
        """Makes a fresh socket a CurveZMQ client of the broker."""
        sock.curve_serverkey = self.broker_public.encode()
        sock.curve_publickey, sock.curve_secretkey = own or self.own


class BrokerClient:
    """A REQ socket to the broker; call() resends the same request on a fresh socket after each timeout."""

    def __init__(self, endpoint, stamps, epochs, stop, timeout_s=1.0, deadline_s=60.0, name="client", keys=None):
        self.endpoint = endpoint
        self.keys = keys
        self.stamps = stamps
        self.epochs = epochs
        self.stop = stop
        self.timeout_ms = int(timeout_s * 1000)
        self.deadline_s = deadline_s
        self.ctx = zmq.Context.instance()
        self.prefix = "%s-%s" % (name, uuid.uuid4().hex[:16])
        self.counter = itertools.count(1)
        self.sock = None
        self.retries = 0
        self._open()

    def _open(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, 16 << 20)
        if self.keys:
            self.keys.dial(self.sock)
        self.sock.connect(self.endpoint)

    def close(self):
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def call(self, op, deadline_s=None, **fields):
        """Sends {v, op, id, ts, ts_local, **fields} until a reply with the same id arrives (a RATE LIMITED one is
        waited out and sent again, within the deadline). Raises Unanswered."""
        req_id = "%s:%d" % (self.prefix, next(self.counter))
        ts = self.stamps.next()
        msg = {"v": PROTOCOL_VERSION, "op": op, "id": req_id, "ts": ts, "ts_local": True}
        msg.update(fields)
        frame = msgpack.packb(msg, use_bin_type=True)
        sent = self.epochs.snapshot()
        start = time.monotonic()
        end = start + (deadline_s if deadline_s is not None else self.deadline_s)
        attempts = 0
        while True:
            if self.stop.is_set():
                raise Stopped()
            attempts += 1
            self.sock.send(frame)
            reply = None
            waited_until = min(time.monotonic() + self.timeout_ms / 1000.0, end)
            while time.monotonic() < waited_until and not self.stop.is_set():
                left_ms = max(1, int((waited_until - time.monotonic()) * 1000))
                if self.sock.poll(min(left_ms, 200)) & zmq.POLLIN:
                    reply = msgpack.unpackb(self.sock.recv(), raw=False)
                    break
            if reply is not None:
                if reply.get("id") != req_id:
                    raise RuntimeError("%s %s: the reply carries id %r" % (op, req_id, reply.get("id")))
                if reply.get("status") == "RATE LIMITED" and time.monotonic() < end:
                    # As a peer does: wait what the broker asks, then the same request, same id (nothing was
                    # applied). Every harness client shares the operator key, so they share one bucket.
                    wait_s = min(int(reply.get("retry_after_ms", 0)) / 1000.0, end - time.monotonic())
                    if self.stop.wait(max(wait_s, 0.0)):
                        raise Stopped()
                    continue
                now = time.monotonic()
                return CallResult(op, fields, req_id, ts, reply, sent, self.epochs.snapshot(), now - start,
                                  attempts, time.time())
            self._open()  # Lazy Pirate: a REQ socket that lost its reply is unusable; close, reopen, resend
            self.retries += 1
            if time.monotonic() >= end:
                raise Unanswered("%s %s (%s) unanswered after %d attempts in %.1fs"
                                 % (op, req_id, fields.get("user", ""), attempts, time.monotonic() - start),
                                 ts, req_id)

    def pages(self, op, key, limit, deadline_s=None, **fields):
        """Every page of a paged op (SEARCH, SNAPSHOT): returns (list of the replies, all items under `key`)."""
        replies, items, cursor = [], [], 0
        for _ in range(100000):
            r = self.call(op, deadline_s=deadline_s, cursor=cursor, limit=limit, **fields)
            replies.append(r)
            if r.status != "OK":
                return replies, items
            items.extend(r.reply.get(key, []))
            nxt = r.reply.get("next")
            if nxt is None:
                return replies, items
            if nxt <= cursor:
                raise RuntimeError("%s: cursor went from %d to %d" % (op, cursor, nxt))
            cursor = nxt
        raise RuntimeError("%s: more than 100000 pages" % op)
