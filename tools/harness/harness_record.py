# harness_record.py: what a run observed, shared by every thread: acknowledged mutations (what the operations
# log must hold), latencies, transfers, fault windows and violations. Thread-safe; nothing here talks to a process.
import sys
import threading
import time

# Violation kinds that the summary counts in their own columns.
LOST, DOUBLED, CORRUPT = "lost", "doubled", "corrupt"
# The args of the DISCONNECT a replacing CONNECT logs for the session it ended (broker/dispatcher.cpp).
REPLACED_REASON = "replaced by a new session"


class FaultWindow:
    def __init__(self, kind, target):
        self.kind = kind
        self.target = target
        self.start = time.monotonic()
        self.end = None


class Record:
    def __init__(self, verbose=False):
        self._lock = threading.Lock()
        self.verbose = verbose
        self.violations = []        # (kind, message)
        self.acked = []             # dicts: key (ts, user, OP, args), req_id, latency, ack_wall, who
        self.unacked = []           # the same for mutations never answered (allowed in the log at most once)
        self.failed_mutations = []  # mutations answered with a non-OK status: must not be in the log
        self.latencies = []         # seconds, every broker operation the driver made
        self.ops_by_name = {}
        self.transfers = []         # dicts: ok, bytes, seconds, sources, target, clean_failure, resumed
        self.faults = []            # FaultWindow
        self.notes = []
        self.retried_requests = 0
        self.reconnect_times = []   # seconds the seeders took to be connected again after each broker restart
        self.continue_times = []    # several brokers: (broker killed, seconds until every seeder online then was
                                    # served by a live broker again), one per kill

    # ---- violations and notes ----
    def violation(self, kind, message):
        with self._lock:
            self.violations.append((kind, message))
        print("harness: VIOLATION [%s] %s" % (kind, message), file=sys.stderr, flush=True)

    def note(self, message):
        with self._lock:
            self.notes.append(message)
        if self.verbose:
            print("harness: %s" % message, file=sys.stderr, flush=True)

    def count(self, kind):
        with self._lock:
            return sum(1 for k, _ in self.violations if k == kind)

    # ---- operations ----
    def operation(self, result):
        with self._lock:
            self.latencies.append(result.latency_s)
            self.ops_by_name[result.op] = self.ops_by_name.get(result.op, 0) + 1
            self.retried_requests += result.attempts - 1

    def acknowledged(self, result, user, op, args, who):
        entry = {"key": (result.ts, user, op, args), "req_id": result.req_id, "latency": result.latency_s,
                 "ack_wall": result.ack_wall, "who": who}
        with self._lock:
            self.acked.append(entry)

    def replaced_session(self, result, user, who):
        """A CONNECT that replaced an open session (reply `replaced`) also logged that session's end, stamped as the
        CONNECT was: DISCONNECT "replaced by a new session" (protocol.md "Sessions")."""
        if result.reply.get("replaced"):
            self.acknowledged(result, user, "DISCONNECT", REPLACED_REASON, who)

    def refused(self, result, user, op, args, who):
        with self._lock:
            self.failed_mutations.append({"key": (result.ts, user, op, args), "status": result.status, "who": who})

    def unanswered(self, ts, user, op, args, who):
        with self._lock:
            self.unacked.append({"key": (ts, user, op, args), "who": who})

    # ---- transfers ----
    def transfer(self, entry):
        with self._lock:
            self.transfers.append(entry)

    # ---- faults ----
    def fault_begin(self, kind, target=""):
        w = FaultWindow(kind, target)
        with self._lock:
            self.faults.append(w)
        return w

    def fault_end(self, window):
        window.end = time.monotonic()

    def fault_during(self, t0, t1, kinds):
        """True when a fault of one of `kinds` was active at some time in [t0, t1]."""
        with self._lock:
            for w in self.faults:
                if w.kind in kinds and w.start <= t1 and (w.end is None or w.end >= t0):
                    return True
        return False

    def faults_of(self, kind):
        with self._lock:
            return sum(1 for w in self.faults if w.kind == kind)
