# harness_faults.py: fault injection (--kill-broker-every, --kill-seeder-every, --kill-logger-every): kill -9 and
# restart on the same state, on a schedule from one thread; the scenario's kill-* steps use the same methods.
import random
import threading
import time

from harness_client import Stopped


class Faults:
    def __init__(self, cluster, record, subscriber, settings):
        self.cluster = cluster
        self.record = record
        self.subscriber = subscriber
        self.settings = settings
        self.rng = random.Random("faults/%s" % settings["seed"])
        self.lock = threading.Lock()       # one fault action at a time
        self.down_seeders = {}             # name -> (restart at (monotonic) or None, fault window)
        self.logger_window = None
        self._thread = None
        self._quit = threading.Event()
        self.last_kill = {}  # kind -> when it was last killed (monotonic), by hand or by the schedule
        self.client = cluster.client("faults", timeout_s=1.0, deadline_s=60.0)

    # ---- the actions ----
    def kill_broker(self):
        with self.lock:
            self.last_kill["broker"] = time.monotonic()
            window = self.cluster.kill_broker(self.settings["broker-down"])
            self.record.note("fault: broker killed and restarted (incarnation %d)" % self.cluster.epochs.snapshot()[1])
            # No resync is forced: the subscriber learns of the restart from broker.started, or from the gap its
            # seq leaves when another subscriber or event came first (harness_events.py)
            if self.settings["restore-sessions"]:
                self.cluster.restore_sessions(self.client, who="faults")
            took = self.cluster.await_seeders(self.client, self.settings["reconnect-deadline"],
                                              "after broker restart %d" % self.record.faults_of("broker"))
            if took is not None:
                self.record.reconnect_times.append(took)
            self.record.fault_end(window)

    def kill_seeder(self, name=None, restart_after=None):
        """kill -9 a seeder (a random running one when name is None); restart it after `restart_after` seconds
        (None: only when restart_seeder() is called)."""
        with self.lock:
            if name is None:
                running = [n for n, s in sorted(self.cluster.seeders.items())
                           if s.daemon.running() and n not in self.down_seeders]
                if not running:
                    return None
                name = self.rng.choice(running)
            s = self.cluster.seeders[name]
            window = self.record.fault_begin("seeder", name)
            s.kill9()
            at = None if restart_after is None else time.monotonic() + restart_after
            self.down_seeders[name] = (at, window)
            self.record.note("fault: seeder %s killed" % name)
            return name

    def restart_seeder(self, name):
        with self.lock:
            at_window = self.down_seeders.pop(name, None)
        s = self.cluster.seeders[name]
        if not s.daemon.running():
            s.start()
        if at_window is not None:
            self.record.fault_end(at_window[1])
        self.record.note("fault: seeder %s restarted" % name)

    def kill_logger(self, restart=True):
        with self.lock:
            if restart:
                self.cluster.kill_logger(self.settings["logger-down"])
            else:
                self.logger_window = self.record.fault_begin("logger")
                self.cluster.logger.kill9()
            self.record.note("fault: logger killed" + (" and restarted" if restart else ""))

    def restart_logger(self):
        with self.lock:
            if not self.cluster.logger.running():
                self.cluster.start_logger()
            if self.logger_window is not None:
                self.record.fault_end(self.logger_window)
                self.logger_window = None

    # ---- the schedule ----
    def start_periodic(self):
        s = self.settings
        periods = {k: s["kill-%s-every" % k] for k in ("broker", "seeder", "logger") if s["kill-%s-every" % k] > 0}
        if not periods:
            return
        self._thread = threading.Thread(target=self._run, args=(periods,), name="faults", daemon=True)
        self._thread.start()

    def _seeder_down_s(self):
        d = self.settings["seeder-down"]
        return d if d > 0 else min(self.settings["kill-seeder-every"] / 2.0, 5.0)

    def _run(self, periods):
        start = time.monotonic()
        due = {k: start + p for k, p in periods.items()}
        try:
            while not self._quit.is_set() and not self.cluster.stop.is_set():
                now = time.monotonic()
                for name, (at, _) in list(self.down_seeders.items()):
                    if at is not None and now >= at:
                        self.restart_seeder(name)
                for kind in sorted(due, key=due.get):
                    # A kill by hand (a scenario step) counts as the period's: the next periodic one comes a whole
                    # period after it, never at once after the hand kill released the lock. Otherwise a scenario's
                    # steps right after its own kill-broker race a second restart that ends their new sessions.
                    due[kind] = max(due[kind], self.last_kill.get(kind, 0.0) + periods[kind])
                    if now < due[kind]:
                        continue
                    if kind == "broker":
                        self.kill_broker()
                    elif kind == "seeder":
                        self.kill_seeder(restart_after=self._seeder_down_s())
                    else:
                        self.kill_logger()
                    due[kind] = max(due[kind] + periods[kind], time.monotonic() + 0.1)
                self._quit.wait(0.05)
        except Stopped:
            pass
        except Exception as e:  # noqa: BLE001 - a failed restart ends the run's faults; reported
            self.record.violation("fault-injection", "fault injection failed: %r" % e)

    def stop(self):
        """Ends the schedule and brings every killed process back."""
        self._quit.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        for name in list(self.down_seeders):
            self.restart_seeder(name)
        for name, s in sorted(self.cluster.seeders.items()):
            if not s.daemon.running():  # killed by a step, or died on its own
                if s.daemon.starts and not any(name == w.target for w in self.record.faults if w.kind == "seeder"):
                    self.record.violation("seeder", "serve %s exited by itself (code %s): %s"
                                          % (name, s.daemon.proc.returncode, s.daemon.stderr_tail(500)))
                s.start()
        self.restart_logger()
        if not self.cluster.broker.running():
            self.record.violation("broker", "the broker exited by itself: %s" % self.cluster.broker.stderr_tail(800))
            self.cluster.epochs.kill_started()
            self.cluster.start_broker()
            self.cluster.epochs.restarted()
        if self.settings["restore-sessions"]:
            self.cluster.restore_sessions(self.client, who="faults")
        self.cluster.await_seeders(self.client, self.settings["reconnect-deadline"], "at the end")

    def close(self):
        self.client.close()
