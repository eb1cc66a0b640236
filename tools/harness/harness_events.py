# harness_events.py: the event subscriber, ZeroMQ guide's Clone pattern: a SUB from the start keeps a replica of
# the index from the events, checks that seq increases by one; broker.started marks every user offline (with
# "scope": "broker", only that broker's sessions ended, and their peer.disconnected said so already), and a gap
# (broker.started missed, or the old process's last events) makes it resync from SNAPSHOT. With several brokers
# there is one subscriber per broker's PUB: every one carries every event, with one global seq.
import threading
import time

import msgpack
import zmq

from harness_client import Stopped, Unanswered

# A broker's last events before its kill -9 may reach the others' subscribers (tailed from the table) a moment before
# the harness notes the kill: a gap around a restart may hold events published this much before the kill.
GAP_SLACK_S = 1.0
# ... and after its restart, a subscriber's SUB needs a moment to reconnect (ZeroMQ retries every 100 ms, then the
# CurveZMQ handshake and the subscription).
RECONNECT_SLACK_S = 2.0


class Replica:
    """users: name -> (online, endpoint); files: (user, name) -> (size, cid, description)."""

    def __init__(self):
        self.users = {}
        self.files = {}

    @classmethod
    def from_snapshot(cls, users, files):
        r = cls()
        for u in users:
            r.users[u["user"]] = (bool(u.get("online")), u.get("endpoint", "") if u.get("online") else "")
        for f in files:
            r.files[(f["user"], f["name"])] = (f.get("size"), f.get("cid"), f.get("description", ""))
        return r

    def apply(self, topic, ev):
        user = ev.get("user")
        if topic == "user.registered":
            self.users[user] = (False, "")
        elif topic == "user.unregistered":
            self.users.pop(user, None)
            for key in [k for k in self.files if k[0] == user]:
                del self.files[key]
        elif topic == "peer.connected":
            self.users[user] = (True, ev.get("endpoint", ""))
        elif topic == "peer.disconnected":
            if user in self.users:
                self.users[user] = (False, "")
        elif topic == "file.published":
            self.files[(user, ev.get("name"))] = (ev.get("size"), ev.get("cid"), ev.get("description", ""))
        elif topic == "file.deleted":
            self.files.pop((user, ev.get("name")), None)
        elif topic == "broker.started" and ev.get("scope") != "broker":
            # every session ended with the previous broker process (a broker among several, "scope": "broker", ended
            # only its own sessions, each with its peer.disconnected before this event)
            for name in self.users:
                self.users[name] = (False, "")


class Subscriber(threading.Thread):
    def __init__(self, cluster, record, broker=None):
        """Subscribes to `broker`'s PUB (a harness_cluster.Broker; the first broker when None)."""
        self.broker = broker or cluster.brokers[0]
        self.label = "subscriber" if len(cluster.brokers) == 1 else "subscriber on %s" % self.broker.name
        super().__init__(name=self.label, daemon=True)
        self.cluster = cluster
        self.record = record
        ctx = zmq.Context.instance()
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        cluster.keys.dial(self.sock, zmq.curve_keypair())  # a subscriber acts as nobody: a key of its own
        self.sock.connect(self.broker.events)
        self.lock = threading.Lock()
        self.replica = Replica()
        self.applied_seq = 0       # the replica reflects every event up to this seq
        self.last_seq = 0          # the last seq received
        self.received = 0
        self.missed = 0            # events never received (gaps), all excused by a broker restart
        self.gap_list = []         # (last seq received, seq received next) where events were missed
        self.resyncs = 0
        self.topics = {}           # seq -> (topic, user), for the zshare-events cross-check
        self.bodies = {}           # seq -> the event's map, for the cross-check between subscribers
        self.arrived = {}          # seq -> when it arrived (time.monotonic())
        self._fault_seq_at_last = cluster.epochs.snapshot()[0]
        self._resync_wanted = False
        self._quit = threading.Event()
        self.error = None

    def request_resync(self):
        """Asks for a fresh snapshot (the Clone pattern's answer to state it cannot trust): catch_up's last resort
        when a restart left a gap that no later event reveals."""
        with self.lock:
            self._resync_wanted = True

    def close(self):
        self._quit.set()
        self.join(timeout=10)
        self.sock.close(linger=0)

    def run(self):
        # its SNAPSHOTs go to its own broker first (any broker answers the same index at the same seq)
        first = self.cluster.brokers.index(self.broker)
        client = self.cluster.client(self.label.replace(" ", "-"), timeout_s=1.0, deadline_s=30.0, first=first)
        try:
            while not self._quit.is_set() and not self.cluster.stop.is_set():
                with self.lock:
                    wanted, self._resync_wanted = self._resync_wanted, False
                if wanted:
                    self._resync(client)
                if not self.sock.poll(100) & zmq.POLLIN:
                    continue
                frames = self.sock.recv_multipart()
                self._on_event(frames, client)
        except (Stopped, Unanswered) as e:
            if not self.cluster.stop.is_set() and not self._quit.is_set():
                self.error = str(e)
                self.record.violation("events", "the %s stopped: %s" % (self.label, e))
        except Exception as e:  # noqa: BLE001 - reported as a violation
            self.error = repr(e)
            self.record.violation("events", "the %s failed: %r" % (self.label, e))
        finally:
            client.close()

    def _on_event(self, frames, client):
        if len(frames) != 2:
            self.record.violation("events", "an event of %d frames (two expected)" % len(frames))
            return
        topic = frames[0].decode(errors="replace")
        ev = msgpack.unpackb(frames[1], raw=False)
        seq = ev.get("seq")
        if not isinstance(seq, int):
            self.record.violation("events", "event %s without an integer seq: %r" % (topic, ev))
            return
        fault_seq = self.cluster.epochs.snapshot()[0]
        with self.lock:
            self.received += 1
            if seq <= self.last_seq:
                self.record.violation("events", "%s: seq went from %d to %d (%s): not strictly increasing"
                                      % (self.label, self.last_seq, seq, topic))
                return
            self.topics[seq] = (topic, ev.get("user"))
            self.bodies[seq] = (topic, ev)
            self.arrived[seq] = time.monotonic()
            if seq > self.last_seq + 1:
                # judged at the end (judge_gaps), when every restart's starting seq is known
                self.gap_list.append((self.last_seq, seq))
                self.missed += seq - self.last_seq - 1
            self._fault_seq_at_last = fault_seq
            self.last_seq = seq
        with self.lock:
            behind = seq > self.applied_seq + 1
        if behind:  # the replica lacks events: take a snapshot (Clone pattern), then go on from its seq
            self._resync(client)
        with self.lock:
            if seq > self.applied_seq:
                self.replica.apply(topic, ev)
                self.applied_seq = seq

    def _resync(self, client):
        replies, files = client.pages("SNAPSHOT", "files", 200)
        if replies[-1].status != "OK":
            raise RuntimeError("SNAPSHOT answered %s" % replies[-1].status)
        first = replies[0].reply
        replica = Replica.from_snapshot(first.get("users", []), files)
        with self.lock:
            self.replica = replica
            self.applied_seq = first.get("seq", 0)
            self.resyncs += 1

    def judge_gaps(self, published_at=None):
        """Every gap must span a broker restart (its missed events were the killed process's); others are
        violations. On PostgreSQL (one broker or several), a gap is this subscriber's broker's only and must lie
        around one of its starts (explain_gap): a restarted broker publishes from where it loaded, so the events
        others committed while it was down, its previous process's last ones and its own "broker restarted" ends
        may all come before or after its broker.started. `published_at`: seq -> when the first subscriber
        received it. Returns the number of gaps."""
        with self.lock:
            gaps = list(self.gap_list)
        epochs = self.cluster.epochs
        for before, after in gaps:
            if self.cluster.store == "sqlite":
                if epochs.gap_spans_restart(before, after):
                    self.record.note("subscriber: events %d..%d missed across a broker restart"
                                     % (before + 1, after - 1))
                else:
                    self.record.violation("events", "gap: seq %d follows %d (%d events missed) and no broker "
                                          "restart explains it" % (after, before, after - before - 1))
                continue
            why = self.explain_gap(before, after, published_at or {})
            if why:
                self.record.note("%s: events %d..%d missed: %s" % (self.label, before + 1, after - 1, why))
            else:
                self.record.violation("events", "%s: gap: seq %d follows %d (%d events missed) and no start of %s "
                                      "around them explains it" % (self.label, after, before, after - before - 1,
                                                                   self.broker.name))
        return len(gaps)

    def explain_gap(self, before, after, published_at):
        """Why this subscriber (on a PostgreSQL broker) may have missed before+1 .. after-1, or None: they all came
        before its broker first started (they are not its to publish), or the gap spans one of its broker's kills
        (it received `before` no later than the kill, plus GAP_SLACK_S, and `after` since) and every missed event
        that another subscriber received was published while its broker was down: from the kill (less GAP_SLACK_S:
        the dying process's last events) to the restart (plus RECONNECT_SLACK_S: the SUB reconnects); or, before
        its first event, only the brokers' broker.started (its subscription was not live yet). A start's
        broker.started nobody received is allowed (a just-started PUB may drop it); any other event nobody received
        cannot be placed in time, except by a lone subscriber (one broker), which has no one else to ask."""
        name = self.broker.name
        starts = self.cluster.epochs.starts(name)
        missed = range(before + 1, after)
        if starts and after - 1 <= starts[0]:
            return "from before %s first started (seq %d)" % (name, starts[0])
        alone = len(self.cluster.brokers) == 1
        all_starts = set(self.cluster.epochs.starts())
        if before == 0 and all(s in all_starts for s in missed):
            # the brokers' first broker.started, before this SUB's subscription was live (another subscriber, the
            # zshare-events tool, released the one its broker held)
            return "the brokers' first starts, before this subscription was live"
        if not alone and any(s not in published_at and s not in all_starts for s in missed):
            return None  # the coverage check says more
        times = [published_at[s] for s in missed if s in published_at]
        with self.lock:
            got_before = self.arrived.get(before, float("-inf"))
            got_after = self.arrived.get(after, float("inf"))
        for _, killed, restarted in self.cluster.epochs.kills(name):
            until = restarted if restarted is not None else time.monotonic()
            if got_before <= killed + GAP_SLACK_S and got_after >= killed and \
                    all(killed - GAP_SLACK_S <= t <= until + RECONNECT_SLACK_S for t in times):
                return "%s was down (killed, then restarted %.1fs later)" % (name, until - killed)
        return None

    def catch_up(self, seq, deadline_s):
        """Waits until the replica reflects `seq`; after a restart with nothing left to reveal a gap, resyncs."""
        end = time.monotonic() + deadline_s
        resynced = False
        while time.monotonic() < end:
            with self.lock:
                if self.applied_seq >= seq:
                    return True
                restarted = self.cluster.epochs.snapshot()[0] != self._fault_seq_at_last
            if restarted and not resynced and time.monotonic() > end - deadline_s / 2:
                self.request_resync()
                resynced = True
            time.sleep(0.05)
        return False
