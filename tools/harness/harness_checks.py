# harness_checks.py: the end-of-run verdict: SNAPSHOT equals what everyone believes is published; the operations
# log holds each acknowledged mutation once and nothing unexplained; subscribers saw every event, replica == index.
# Accounting of seq: every event is a log line except each start's broker.started (no user's operation). With
# several brokers: one subscriber per broker, and they must agree seq by seq.
import collections
import json
import re
import time

from harness_events import GAP_SLACK_S, Replica
from harness_model import ON, UNKNOWN
from harness_record import DOUBLED, LOST

# zshare-events with several brokers (--probe-after 0.5): how long it may take to follow another broker after the one
# it follows was killed: the silence, then its tries at the dead one (3 s), then the next one's answer.
TOOL_FAILOVER_S = 5.0
# The args of the DISCONNECT a broker logs for a session it ended itself, with several brokers on one database (or one
# broker on PostgreSQL): a restarted broker ends its previous process's sessions ("broker restarted"), and another
# ends those of a broker whose lease lapsed ("broker NAME stopped"). Each is a peer.disconnected with that reason.
BROKER_SESSION_END = re.compile(r"^broker (restarted|\S+ stopped)$")
LOG_LINE = re.compile(r"^(?P<ts>\S+?)(?P<local>\*?) (?P<user>\S+) (?P<op>\S+)(?: (?P<args>.*))?\t#(?P<bid>[^:\t]+):(?P<seq>\d+)$")


def snapshot(client):
    """Every SNAPSHOT page: (seq of the first page, users, files)."""
    replies, files = client.pages("SNAPSHOT", "files", 100)
    if replies[-1].status != "OK":
        raise RuntimeError("SNAPSHOT answered %s" % replies[-1].status)
    return replies[0].reply.get("seq", 0), replies[0].reply.get("users", []), files


def read_log(path):
    """Complete lines of the operations log, parsed: dicts with ts, local, user, op, args, bid, seq."""
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return [], []
    lines = data.split("\n")[:-1]
    parsed, bad = [], []
    for line in lines:
        m = LOG_LINE.match(line)
        if not m:
            bad.append(line)
            continue
        d = m.groupdict()
        d["args"] = d["args"] or ""
        d["seq"] = int(d["seq"])
        d["local"] = bool(d["local"])
        parsed.append(d)
    return parsed, bad


class Checker:
    def __init__(self, cluster, model, record, subscribers, events_tool, settings):
        self.cluster = cluster
        self.model = model
        self.record = record
        self.subscribers = list(subscribers)   # one per broker, in the brokers' order
        self.events_tool = events_tool
        self.settings = settings
        self.summary = {}
        self.seen = {}          # seq -> (topic, event map): what the subscribers received, merged
        self.published_at = {}  # seq -> when the first subscriber received it (time.monotonic())

    def run(self):
        client = self.cluster.client("checker", 1.0, 30.0)
        try:
            # The driver is idle now, but a seeder's session keeper may still act (a reconnect after a late
            # heartbeat): take the log and the snapshot at one seq, retrying while the seq moves.
            for attempt in range(5):
                stats = client.call("STATS").reply
                seq = stats.get("seq", 0)
                log = self.wait_log(seq)
                snap_seq, users, files = snapshot(client)
                if snap_seq == seq:
                    break
                self.record.note("the seq moved from %d to %d during the final checks; again" % (seq, snap_seq))
                time.sleep(1)
            else:
                self.record.violation("index", "the broker's seq kept moving while every client was idle (%d, %d)"
                                      % (seq, snap_seq))
            self.summary["event_seq"] = seq
            self.summary["broker_retries_answered"] = stats.get("retries_answered", 0)
            self.check_index(users, files)
            self.catch_up(seq)
            self.merge_events()
            self.check_log(log, seq, users, files)
            self.check_events(seq, users, files)
        finally:
            client.close()

    # ---- the operations log ----
    def logged_events(self, seq):
        """How many of the events 1..seq are operations-log records: all but the broker.started of each start."""
        return seq - len([s for s in self.cluster.epochs.starts() if s <= seq])

    def wait_log(self, seq):
        """Waits (deadline) until the outbox is empty and the log holds a record per logged event up to `seq`."""
        end = time.monotonic() + self.settings["drain-deadline"]
        want = self.logged_events(seq)
        while True:
            log, bad = read_log(self.cluster.oplog)
            left = self.cluster.outbox_rows()
            if (left == 0 or left is None) and len(log) >= want:
                time.sleep(0.3)  # a record in flight would show now
                log2, bad = read_log(self.cluster.oplog)
                if len(log2) == len(log):
                    break
                continue
            if time.monotonic() > end:
                self.record.violation(LOST, "after %.0fs the outbox still holds %s records and the log %d of %d"
                                      % (self.settings["drain-deadline"], left, len(log), want))
                break
            time.sleep(0.1)
        log, self.bad_lines = read_log(self.cluster.oplog)
        self.summary["log_lines"] = len(log)
        return log

    def check_log(self, log, seq, snap_users, snap_files):
        for line in self.bad_lines:
            self.record.violation("log", "a log line that does not parse: %r" % line)
        by_key = collections.Counter()
        per_bid = collections.defaultdict(list)
        for d in log:
            per_bid[d["bid"]].append(d["seq"])
            if d["local"]:
                by_key[(d["ts"], d["user"], d["op"], d["args"])] += 1
        # (broker id, seq) is the logger's idempotency key: every record once, 1..n without holes
        if len(per_bid) > 1:
            self.record.violation("log", "records from %d broker ids (one database was used): %s"
                                  % (len(per_bid), sorted(per_bid)))
        for bid, seqs in per_bid.items():
            dup = [s for s, c in collections.Counter(seqs).items() if c > 1]
            if dup:
                self.record.violation(DOUBLED, "the log stores %d records twice (%s:%s...)" % (len(dup), bid, dup[:5]))
            if seqs != sorted(seqs):
                self.record.violation("log", "records of %s are out of order" % bid)
            missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs)) if seqs else []
            if missing:
                self.record.violation(LOST, "outbox records %s:%s... never reached the log (%d)"
                                      % (bid, missing[:5], len(missing)))
        starts = [s for s in self.cluster.epochs.starts() if s <= seq]
        if len(set(starts)) != len(starts):
            self.record.violation("events", "two broker starts announced the same broker.started seq: %s" % starts)
        if len(log) != seq - len(starts):
            kind = LOST if len(log) < seq - len(starts) else DOUBLED
            self.record.violation(kind, "the log holds %d records but the broker made %d changes (event seq %d "
                                  "less %d broker starts)" % (len(log), seq - len(starts), seq, len(starts)))
        self.summary["broker_starts"] = len(starts)
        # every acknowledged mutation exactly once
        lost = doubled = 0
        matched = collections.Counter()
        for a in self.record.acked:
            n = by_key.get(a["key"], 0)
            matched[a["key"]] += 1
            if n == 0:
                lost += 1
                self.record.violation(LOST, "acknowledged %s is not in the log (request %s, by %s)"
                                      % (" ".join(map(str, a["key"])), a["req_id"], a["who"]))
            elif n > 1:
                doubled += 1
                self.record.violation(DOUBLED, "acknowledged %s is in the log %d times (request %s)"
                                      % (" ".join(map(str, a["key"])), n, a["req_id"]))
        for a in self.record.failed_mutations:
            if by_key.get(a["key"], 0):
                self.record.violation("log", "%s was refused (%s) but is in the log" % (" ".join(map(str, a["key"])),
                                                                                       a["status"]))
                matched[a["key"]] += 1
        unacked_prefix = {(u["key"][0], u["key"][1], u["key"][2]) for u in self.record.unacked}
        serve_users = {u.name for u in self.model.all_users() if u.owner == "serve"}
        extra = serve_lines = unacked_found = 0
        broker_ends = collections.Counter()  # (user, reason) of the sessions the brokers ended themselves
        for d in log:
            key = (d["ts"], d["user"], d["op"], d["args"])
            if d["op"] == "DISCONNECT" and BROKER_SESSION_END.match(d["args"]):
                broker_ends[(d["user"], d["args"])] += 1  # matched with the events below
            if d["local"] and key in matched:
                continue
            if (d["ts"], d["user"], d["op"]) in unacked_prefix:
                unacked_found += 1
                continue
            if d["user"] in serve_users:
                serve_lines += 1  # made by a serve process itself (register/connect/publish at start)
                continue
            if d["op"] == "DISCONNECT" and BROKER_SESSION_END.match(d["args"]):
                continue  # a session a broker ended (its restart, or another's lapsed lease): checked below
            extra += 1
            self.record.violation(DOUBLED if d["local"] else "log",
                                  "a log line no acknowledged operation explains: %s %s %s %s"
                                  % (d["ts"], d["user"], d["op"], d["args"]))
        self.check_broker_session_ends(broker_ends)
        self.summary.update(log_acked=len(self.record.acked), log_serve_lines=serve_lines, log_extra=extra,
                            log_unacked_found=unacked_found, log_broker_session_ends=sum(broker_ends.values()))
        self.replay(log, snap_users, snap_files)

    def check_broker_session_ends(self, logged):
        """Each session a broker ended itself is one log line and one peer.disconnected with that reason: the same
        (user, reason) pairs, as often, in the log and in the events the subscribers received (several subscribers
        together see every event; one subscriber may have missed some across its broker's restarts)."""
        events = collections.Counter()
        for topic, ev in self.seen.values():
            reason = ev.get("reason", "")
            if topic == "peer.disconnected" and BROKER_SESSION_END.match(str(reason)):
                events[(ev.get("user"), reason)] += 1
        if logged == events:
            return
        if len(self.subscribers) == 1 and self.cluster.epochs.kills():
            # one subscriber misses its broker's last events and the restart's first ones: only what it saw counts
            missing = {k: n for k, n in events.items() if logged.get(k, 0) < n}
        else:
            missing = {k: n for k, n in (events - logged).items()}
        unexplained = {k: n for k, n in (logged - events).items()} if len(self.subscribers) > 1 else {}
        if missing:
            self.record.violation(LOST, "sessions the brokers ended (peer.disconnected) with no log line: %s"
                                  % sorted(missing.items())[:5])
        if unexplained:
            self.record.violation("log", "log lines of sessions the brokers ended that no peer.disconnected shows: %s"
                                  % sorted(unexplained.items())[:5])

    def replay(self, log, snap_users, snap_files):
        """Replays the log in order: every line must be valid in its place, and the end state must be the index."""
        users, files = set(), {}
        problems = []
        for d in sorted(log, key=lambda d: d["seq"]):
            u, op, args = d["user"], d["op"], d["args"]
            if op == "REGISTER":
                if u in users:
                    problems.append("REGISTER of registered %s (#%d)" % (u, d["seq"]))
                users.add(u)
            elif op == "UNREGISTER":
                mine = [k for k in files if k[0] == u]
                if u not in users:
                    problems.append("UNREGISTER of unknown %s (#%d)" % (u, d["seq"]))
                if args != "files_removed=%d" % len(mine):
                    problems.append("UNREGISTER %s says %s, the log published %d (#%d)" % (u, args, len(mine), d["seq"]))
                users.discard(u)
                for k in mine:
                    del files[k]
            elif op in ("CONNECT", "DISCONNECT"):
                if u not in users:
                    problems.append("%s of unknown %s (#%d)" % (op, u, d["seq"]))
            elif op == "PUBLISH":
                parts = args.rsplit(" ", 2)
                if len(parts) != 3:
                    problems.append("PUBLISH args %r (#%d)" % (args, d["seq"]))
                    continue
                name, size, cid = parts
                if (u, name) in files:
                    problems.append("PUBLISH of published %s:%s (#%d)" % (u, name, d["seq"]))
                files[(u, name)] = (int(size), cid)
            elif op == "DELETE":
                if (u, args) not in files:
                    problems.append("DELETE of unpublished %s:%s (#%d)" % (u, args, d["seq"]))
                files.pop((u, args), None)
            else:
                problems.append("unknown operation %s (#%d)" % (op, d["seq"]))
        want_users = {u["user"] for u in snap_users}
        want_files = {(f["user"], f["name"]): (f["size"], f["cid"]) for f in snap_files}
        if users != want_users:
            problems.append("replayed users differ from the index: only in the log %s, only in the index %s"
                            % (sorted(users - want_users)[:5], sorted(want_users - users)[:5]))
        if files != want_files:
            problems.append("replayed files differ from the index: only in the log %s, only in the index %s"
                            % (sorted(set(files) - set(want_files))[:5], sorted(set(want_files) - set(files))[:5]))
        for p in problems[:20]:
            self.record.violation("log", "replay: " + p)

    # ---- the index ----
    def check_index(self, snap_users, snap_files):
        inc = self.cluster.epochs.snapshot()[1]
        got_users = {u["user"]: (bool(u.get("online")), u.get("endpoint", "")) for u in snap_users}
        got_files = collections.defaultdict(dict)
        for f in snap_files:
            got_files[f["user"]][f["name"]] = (f.get("name"), f.get("size"), f.get("cid"), f.get("chunk_size"),
                                               f.get("description"))
            if f["user"] in got_users and (bool(f.get("online")), f.get("endpoint", "")) != got_users[f["user"]] \
                    and got_users[f["user"]][0]:
                self.record.violation("index", "SNAPSHOT file %s:%s shows its owner as %r, the user list as %r"
                                      % (f["user"], f["name"], (f.get("online"), f.get("endpoint")),
                                         got_users[f["user"]]))
        known = set()
        mismatches = 0
        for st in self.model.all_users():
            known.add(st.name)
            if st.tainted:
                continue
            if not st.registered:
                if st.name in got_users or got_files.get(st.name):
                    mismatches += 1
                    self.record.violation("index", "%s is in the index, the harness unregistered it" % st.name)
                continue
            if st.name not in got_users:
                mismatches += 1
                self.record.violation("index", "%s is missing from the index" % st.name)
                continue
            if st.owner == "serve":
                s = self.cluster.seeders[st.name]
                want_online = (True, s.endpoint)
            else:
                session = st.effective_session(inc)
                want_online = None if session == UNKNOWN else ((True, st.endpoint) if session == ON else (False, ""))
            online, endpoint = got_users[st.name]
            if want_online is not None and (online, endpoint if online else "") != want_online:
                mismatches += 1
                self.record.violation("index", "%s is %s in the index, the harness expects %s"
                                      % (st.name, (online, endpoint), want_online))
            want = {m.name: m.as_tuple() for m in st.files.values()}
            have = got_files.get(st.name, {})
            if want != have:
                mismatches += 1
                self.record.violation("index", "%s: the index holds %s, %s believes it published %s"
                                      % (st.name, sorted(have)[:8], "its seeder" if st.owner == "serve" else
                                         "the harness", sorted(want)[:8]))
                for name in sorted(set(want) & set(have)):
                    if want[name] != have[name]:
                        self.record.violation("index", "%s:%s is %r in the index, expected %r"
                                              % (st.name, name, have[name], want[name]))
        for name in sorted(set(got_users) - known):
            mismatches += 1
            self.record.violation("index", "the index holds user %s that nobody registered" % name)
        self.summary.update(index_users=len(got_users), index_files=len(snap_files), index_mismatches=mismatches)

    # ---- events ----
    def catch_up(self, seq):
        """Every subscriber's replica reflects the broker's seq (a resync when a restart left nothing to reveal its
        gap), within half the drain deadline in all."""
        end = time.monotonic() + self.settings["drain-deadline"] / 2
        for sub in self.subscribers:
            if not sub.catch_up(seq, max(end - time.monotonic(), 1.0)):
                self.record.violation("events", "the %s reflects seq %d, the broker is at %d"
                                      % (sub.label, sub.applied_seq, seq))

    def merge_events(self):
        """What the subscribers received, seq by seq. Several subscribers (one per broker) must have received the
        same event at each seq they both hold: every broker's PUB carries every event, with one global seq."""
        by_seq = collections.defaultdict(list)
        for sub in self.subscribers:
            with sub.lock:
                bodies, arrived = dict(sub.bodies), dict(sub.arrived)
            for s, body in bodies.items():
                by_seq[s].append((sub, body))
                if s not in self.published_at or arrived[s] < self.published_at[s]:
                    self.published_at[s] = arrived[s]
        differ = 0
        for s in sorted(by_seq):
            (first_sub, first), *others = by_seq[s]
            self.seen[s] = first
            for sub, body in others:
                if body != first:
                    differ += 1
                    if differ <= 10:
                        self.record.violation("events", "seq %d: the %s received %s %r, the %s %s %r"
                                              % (s, first_sub.label, first[0], first[1], sub.label, body[0], body[1]))
        if differ > 10:
            self.record.violation("events", "%d more seqs where subscribers received different events" % (differ - 10))
        self.summary["events_differing"] = differ

    def check_events(self, seq, snap_users, snap_files):
        starts = set(self.cluster.epochs.starts())
        for s, (topic, _) in sorted(self.seen.items()):
            if (topic == "broker.started") != (s in starts):
                self.record.violation("events", "seq %d is %s, and %s a broker start's broker.started seq"
                                      % (s, topic, "is" if s in starts else "is not"))
        self.summary["broker_started_seen"] = len([s for s in starts if s in self.seen])
        if len(self.subscribers) > 1:
            # with a broker always alive, some subscriber received every event (a start's broker.started excepted:
            # a just-started PUB may drop it, and a later broker does not publish what came before it)
            unseen = [s for s in range(1, seq + 1) if s not in self.seen and s not in starts]
            if unseen:
                self.record.violation("events", "%d events no subscriber received, although a broker was always up: "
                                      "seq %s" % (len(unseen), unseen[:10]))
        want = Replica.from_snapshot(snap_users, snap_files)
        received = missed = resyncs = gaps = 0
        for sub in self.subscribers:
            with sub.lock:
                replica = sub.replica
                if replica.users != want.users:
                    diff = sorted(k for k in set(replica.users) | set(want.users)
                                  if replica.users.get(k) != want.users.get(k))
                    self.record.violation("events", "the %s's replica: users differ from SNAPSHOT: %s"
                                          % (sub.label, diff[:8]))
                if replica.files != want.files:
                    diff = sorted(k for k in set(replica.files) | set(want.files)
                                  if replica.files.get(k) != want.files.get(k))
                    self.record.violation("events", "the %s's replica: files differ from SNAPSHOT: %s"
                                          % (sub.label, diff[:8]))
                received += sub.received
                missed += sub.missed
                resyncs += sub.resyncs
            gaps += sub.judge_gaps(self.published_at)
        self.summary.update(events_received=received, events_missed=missed, event_resyncs=resyncs, event_gaps=gaps,
                            event_subscribers=len(self.subscribers))
        if self.events_tool is not None:
            self.check_events_tool(seq)

    def check_events_tool(self, seq):
        """zshare-events --json ran from the start: its seqs strictly increase; each one it printed names the same
        event the Python subscribers saw; with no broker restart it printed all of them, with no gap. Its first line
        may skip the first broker.started (held for one subscriber: the Python one may have come first), which it
        cannot report as a gap; any later jump it must report. With several brokers it follows one at a time: when
        that one dies it moves to the next (after --probe-after of silence and its tries at the dead one), so it may
        also miss what was published from a broker's kill until it followed another (tool_gap_in_kill)."""
        tool = self.events_tool
        end = time.monotonic() + 10
        lines = []
        while time.monotonic() < end:
            lines = [ln for ln in tool.stdout_since_start().split("\n")[:-1] if ln.strip()]
            last = json.loads(lines[-1]).get("seq", 0) if lines else 0
            if last >= seq:
                break
            time.sleep(0.1)
        tool.terminate()
        restarts = self.record.faults_of("broker")
        prev = 0
        seen = gaps = unreported = 0
        for ln in lines:
            try:
                e = json.loads(ln)
            except ValueError:
                self.record.violation("events", "zshare-events printed a line that is not JSON: %r" % ln[:200])
                continue
            s = e.get("seq")
            if not isinstance(s, int) or s <= prev:
                self.record.violation("events", "zshare-events: seq %r after %d" % (s, prev))
                continue
            if s != prev + 1:
                gaps += 1
                unreported += 1 if seen == 0 else 0  # before its first event it knows no seq to miss
                if not self.cluster.epochs.gap_spans_restart(prev, s) and not self.tool_gap_in_kill(prev, s):
                    self.record.violation("events", "zshare-events: gap from %d to %d that no broker restart explains"
                                          % (prev, s))
            prev = s
            seen += 1
            mine = self.seen.get(s)
            if mine is not None and (mine[0], mine[1].get("user")) != (e.get("topic"), e.get("user")):
                self.record.violation("events", "seq %d: zshare-events saw %r, the subscriber %r"
                                      % (s, (e.get("topic"), e.get("user")), (mine[0], mine[1].get("user"))))
        reported = tool.stderr_since_start().count("gap:")
        if reported != gaps - unreported:
            self.record.violation("events", "zshare-events reported %d gaps on stderr, its output shows %d after its "
                                  "first event" % (reported, gaps - unreported))
        if prev < seq and not restarts:
            self.record.violation("events", "zshare-events stopped at seq %d of %d" % (prev, seq))
        self.summary.update(events_tool_seen=seen, events_tool_gaps=gaps)

    def tool_gap_in_kill(self, before, after):
        """On PostgreSQL: zshare-events missed before+1 .. after-1 while it moved from a killed broker to the next (or,
        with one broker, waited for its restart, which may publish others' and its own session ends before its
        broker.started):
        every one of them (as the subscribers received them) came within a kill's window, from the kill (less
        GAP_SLACK_S) until the broker was back or the tool had time to move (TOOL_FAILOVER_S), plus GAP_SLACK_S."""
        if self.cluster.store == "sqlite":
            return False
        starts = set(self.cluster.epochs.starts())
        missed = range(before + 1, after)
        if any(s not in self.published_at and s not in starts for s in missed):
            return False
        times = [self.published_at[s] for s in missed if s in self.published_at]
        for _, killed, restarted in self.cluster.epochs.kills():
            until = max(restarted if restarted is not None else time.monotonic(), killed + TOOL_FAILOVER_S)
            if all(killed - GAP_SLACK_S <= t <= until + GAP_SLACK_S for t in times):
                return True
        return False
