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
# Replies that mean "nothing was done, send the same request again after retry_after_ms" (protocol.md, "Limits" and
# "Durability"): a PostgreSQL broker answers STORE UNAVAILABLE while its database is away.
RESEND_STATUSES = ("RATE LIMITED", "STORE UNAVAILABLE")


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


# What a session's holder can be, seen from the fault injector's view (Incarnations.state).
LIVE, LIMBO, GONE = "live", "limbo", "gone"


class Incarnations:
    """An immutable view of the brokers' lives: each broker's incarnation (it moves when its kill starts, so whatever
    the new process answers is in the new incarnation) and which brokers are down (killed, not yet restarted). A
    session is held by (broker, incarnation): LIVE while that broker lives on in it; LIMBO once that broker was
    killed and until it has restarted (its sessions end at its restart, or earlier when its lease lapses, or when
    their peer CONNECTs elsewhere: the harness cannot tell when); GONE after its restart (the restart ended them)."""

    __slots__ = ("_incs", "_down")

    def __init__(self, incs, down):
        self._incs = tuple(sorted(incs.items()))
        self._down = frozenset(down)

    def inc(self, name):
        return dict(self._incs)[name]

    def names(self):
        return [n for n, _ in self._incs]

    def is_down(self, name):
        return name in self._down

    def all_down(self):
        return len(self._down) == len(self._incs)

    def current(self):
        """The holders a session that exists now, held by a broker nobody knows, may have: every broker at its
        incarnation now, and a down broker's previous one (its sessions may not have ended yet)."""
        out = set(self._incs)
        out.update((n, i - 1) for n, i in self._incs if n in self._down)
        return frozenset(out)

    def state(self, holder):
        name, inc = holder
        now = dict(self._incs)[name]
        if now == inc:
            return LIVE
        if now == inc + 1 and name in self._down:
            return LIMBO
        return GONE

    def __eq__(self, other):
        return isinstance(other, Incarnations) and self._incs == other._incs and self._down == other._down

    def __hash__(self):
        return hash((self._incs, self._down))

    def __repr__(self):
        return "Incarnations(%s)" % ", ".join("%s%s=%d" % (n, "(down)" if n in self._down else "", i)
                                               for n, i in self._incs)


class BrokerEpochs:
    """What the fault injector tells the clients, per broker (`names`; one broker by default): its incarnation
    (Incarnations), `fault_seq` moves at every kill and every restart of any broker, `down` is true between the two.
    `started_seqs`: the seq of each start's broker.started event (every start of every broker takes one, the first
    included), with the broker that made it."""

    def __init__(self, names=("broker",)):
        self._lock = threading.Lock()
        self.names = list(names)
        self.fault_seq = 0
        self._incs = {n: 1 for n in self.names}
        self._down = set()
        self.started_seqs = []   # broker.started's seq, one per start of a broker (its first event)
        self._started_by = []    # (broker name, its broker.started seq), in start order
        self._kills = []         # [broker name, killed at, restarted at or None] (time.monotonic())

    def _name(self, name):
        return self.names[0] if name is None else name

    def kill_started(self, name=None):
        with self._lock:
            name = self._name(name)
            self.fault_seq += 1
            self._incs[name] += 1
            self._down.add(name)
            self._kills.append([name, time.monotonic(), None])

    def broker_started(self, started_seq, name=None):
        with self._lock:
            self.started_seqs.append(started_seq)
            self._started_by.append((self._name(name), started_seq))

    def restarted(self, name=None):
        with self._lock:
            name = self._name(name)
            self.fault_seq += 1
            self._down.discard(name)
            for k in reversed(self._kills):
                if k[0] == name and k[2] is None:
                    k[2] = time.monotonic()
                    break

    def kills(self, name=None):
        """(broker, killed at, restarted at or None) of every kill (of `name` only, when given), in order."""
        with self._lock:
            return [tuple(k) for k in self._kills if name is None or k[0] == name]

    def is_down(self, name):
        with self._lock:
            return name in self._down

    def starts(self, name=None):
        """The broker.started seqs of every start (of `name` only, when given)."""
        with self._lock:
            if name is None:
                return list(self.started_seqs)
            return [s for n, s in self._started_by if n == name]

    def gap_spans_restart(self, before, after, name=None):
        """True when events before+1 .. after-1 were missed across a broker start (of `name`, when given): its
        broker.started has a seq S with before < S <= after (events up to S-1 were the old process's to publish, and
        it died; broker.started itself is dropped by a PUB when another event or subscriber came first)."""
        return any(before < s <= after for s in self.starts(name))

    @property
    def incarnation(self):
        return self.snapshot()[1]

    def snapshot(self):
        """(fault_seq, Incarnations, every broker down): with one broker, `down` is that broker's."""
        with self._lock:
            view = Incarnations(self._incs, self._down)
            return self.fault_seq, view, view.all_down()


class CallResult:
    def __init__(self, op, fields, req_id, ts, reply, sent, acked, latency_s, attempts, ack_wall, brokers=(),
                 answered_by=None, touched_down=False):
        self.op = op
        self.fields = fields
        self.req_id = req_id
        self.ts = ts
        self.reply = reply
        self.sent_fault_seq, self.incarnation, _ = sent
        self.acked_fault_seq, self.acked_incarnation, _ = acked
        self.sent_down = touched_down
        self.latency_s = latency_s
        self.attempts = attempts
        self.ack_wall = ack_wall
        self.brokers = tuple(brokers)   # the brokers the request was sent to, in order (Lazy Pirate's failover)
        self.answered_by = answered_by  # the one that replied (a stored reply when another applied it)

    @property
    def status(self):
        return self.reply.get("status")

    @property
    def overlapped(self):
        """True when a broker kill or restart happened while this request was outstanding, or it was sent to a broker
        that was down (its old process may have answered): which incarnation executed it (and so whether sessions
        were reset before it) is then unknown."""
        return self.sent_down or self.sent_fault_seq != self.acked_fault_seq

    def holders(self):
        """Who may hold the session a CONNECT answered OK opened: each broker it was sent to, in the incarnation it
        had when the request went out or came back (and the one before, when it was down: its old process may have
        answered)."""
        out = set()
        for b in self.brokers:
            sent, acked = self.incarnation.inc(b), self.acked_incarnation.inc(b)
            out.update({(b, sent), (b, acked)})
            if self.incarnation.is_down(b):
                out.add((b, sent - 1))
        return frozenset(out)


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
    """A REQ socket to the broker; call() resends the same request on a fresh socket after each timeout. Given several
    brokers (a list of (name, endpoint), the first used first), it is the guide's multi-server Lazy Pirate: after
    `tries` unanswered attempts at one broker the same bytes (same id) go to the next, round robin, and the client
    stays with the broker that answered (brokers on one database share the stored replies). A STORE UNAVAILABLE
    reply moves it to the next broker at once, unless every broker of the list said so in a row (then it waits)."""

    def __init__(self, endpoint, stamps, epochs, stop, timeout_s=1.0, deadline_s=60.0, name="client", keys=None,
                 tries=2):
        if isinstance(endpoint, str):
            self.brokers = [(epochs.names[0], endpoint)]
        else:
            self.brokers = list(endpoint)
        self.current = 0
        self.tries = max(1, int(tries))
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
        self.failovers = 0
        self._open()

    @property
    def endpoint(self):
        """The control endpoint of the broker in use."""
        return self.brokers[self.current][1]

    @property
    def broker(self):
        """The name of the broker in use."""
        return self.brokers[self.current][0]

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

    def _next_broker(self):
        self.current = (self.current + 1) % len(self.brokers)
        self.failovers += 1

    def call(self, op, deadline_s=None, **fields):
        """Sends {v, op, id, ts, ts_local, **fields} until a reply with the same id arrives (a RATE LIMITED or STORE
        UNAVAILABLE one is waited out and sent again, within the deadline). Raises Unanswered."""
        req_id = "%s:%d" % (self.prefix, next(self.counter))
        ts = self.stamps.next()
        msg = {"v": PROTOCOL_VERSION, "op": op, "id": req_id, "ts": ts, "ts_local": True}
        msg.update(fields)
        frame = msgpack.packb(msg, use_bin_type=True)
        sent = self.epochs.snapshot()
        start = time.monotonic()
        end = start + (deadline_s if deadline_s is not None else self.deadline_s)
        attempts = 0
        unanswered_here = 0   # attempts at the broker in use that got no reply
        tried = []            # the brokers this request went to, in order
        touched_down = False  # one of them was down (killed, not restarted) when it was sent there
        store_unavailable = 0  # brokers in a row that answered STORE UNAVAILABLE
        while True:
            if self.stop.is_set():
                raise Stopped()
            attempts += 1
            if self.broker not in tried:
                tried.append(self.broker)
            touched_down = touched_down or self.epochs.is_down(self.broker)
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
                if reply.get("status") in RESEND_STATUSES and time.monotonic() < end:
                    if reply.get("status") == "STORE UNAVAILABLE" and len(self.brokers) > 1 and \
                            store_unavailable + 1 < len(self.brokers):
                        # As a peer does: a broker that lost its database leaves the request to the next broker at
                        # once (the others may still reach it); only when every broker said so is it waited out.
                        store_unavailable += 1
                        self._next_broker()
                        unanswered_here = 0
                        self._open()
                        continue
                    store_unavailable = 0
                    # As a peer does: wait what the broker asks, then the same request, same id (nothing was
                    # applied). Every harness client shares the operator key, so they share one bucket.
                    wait_s = min(int(reply.get("retry_after_ms", 100)) / 1000.0, end - time.monotonic())
                    if self.stop.wait(max(wait_s, 0.0)):
                        raise Stopped()
                    continue
                now = time.monotonic()
                return CallResult(op, fields, req_id, ts, reply, sent, self.epochs.snapshot(), now - start,
                                  attempts, time.time(), tried, self.broker, touched_down)
            unanswered_here += 1
            if len(self.brokers) > 1 and unanswered_here >= self.tries:
                # the multi-server variant: the same bytes to the next broker of the list
                self._next_broker()
                unanswered_here = 0
            self._open()  # Lazy Pirate: a REQ socket that lost its reply is unusable; close, reopen, resend
            self.retries += 1
            if time.monotonic() >= end:
                raise Unanswered("%s %s (%s) unanswered after %d attempts in %.1fs (brokers %s)"
                                 % (op, req_id, fields.get("user", ""), attempts, time.monotonic() - start,
                                    ", ".join(tried)), ts, req_id)

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
