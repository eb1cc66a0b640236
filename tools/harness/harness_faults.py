# harness_faults.py: fault injection (--kill-broker-every, --kill-seeder-every, --kill-logger-every): kill -9 and
# restart on the same state, on a schedule from one thread; the scenario's kill-* steps use the same methods.
# With several brokers a kill takes one of them (in turn) and measures how soon every seeder that was online is
# served by a live broker again (its session keeper moves on): the time to continue.
import random
import threading
import time

from harness_client import Stopped, Unanswered


class Faults:
    def __init__(self, cluster, record, subscribers, settings):
        self.cluster = cluster
        self.record = record
        self.subscribers = subscribers
        self.settings = settings
        self.rng = random.Random("faults/%s" % settings["seed"])
        self.lock = threading.Lock()       # one fault action at a time
        self.down_seeders = {}             # name -> (restart at (monotonic) or None, fault window)
        self.logger_window = None
        self._thread = None
        self._quit = threading.Event()
        self.last_kill = {}  # kind -> when it was last killed (monotonic), by hand or by the schedule
        self.client = cluster.client("faults", timeout_s=1.0, deadline_s=60.0)
        self.broker_turn = 0  # several brokers: the schedule kills them in turn, b1 first

    # ---- the actions ----
    def kill_broker(self, name=None, down_s=None):
        """kill -9 a broker (with several: `name`, else the next in turn) and restart it after `down_s` (the setting
        broker-down when None) on the same database and ports."""
        down_s = self.settings["broker-down"] if down_s is None else down_s
        if len(self.cluster.brokers) > 1:
            return self._kill_one_of_many(name, down_s)
        with self.lock:
            self.last_kill["broker"] = time.monotonic()
            self._exited_by_itself(self.cluster.brokers[0])
            window = self.cluster.kill_broker(down_s)
            self.record.note("fault: broker killed and restarted (incarnation %d)"
                             % self.cluster.epochs.snapshot()[1].inc(self.cluster.brokers[0].name))
            # No resync is forced: the subscriber learns of the restart from broker.started, or from the gap its
            # seq leaves when another subscriber or event came first (harness_events.py)
            if self.settings["restore-sessions"]:
                self.cluster.restore_sessions(self.client, who="faults")
            took = self.cluster.await_seeders(self.client, self.settings["reconnect-deadline"],
                                              "after broker restart %d" % self.record.faults_of("broker"))
            if took is not None:
                self.record.reconnect_times.append(took)
            self.record.fault_end(window)

    def _kill_one_of_many(self, name, down_s):
        """Several brokers: kill -9 one, and while it is down (then restarted after `down_s`) measure the time to
        continue: from the kill until every seeder that was online is served by a live broker again."""
        with self.lock:
            self.last_kill["broker"] = time.monotonic()
            names = [b.name for b in self.cluster.brokers]
            if name is None:
                name = names[self.broker_turn % len(names)]
                self.broker_turn += 1
            self._exited_by_itself(self.cluster.broker_named(name))
            online = self._online_seeders()
            window = self.cluster.kill9_broker(name)
            killed = time.monotonic()
            probes = {b: self.cluster.broker_client(b, "continue-%s" % b, timeout_s=0.5, deadline_s=0.5) for b in names}
            times, pending, restarted = {}, set(online), False
            give_up = killed + max(self.settings["reconnect-deadline"], self.settings["continue-deadline"])
            try:
                while True:
                    if not restarted and time.monotonic() >= killed + down_s:
                        self.cluster.restart_broker(name)
                        restarted = True
                    for s in self._served_again(pending, probes):
                        times[s] = time.monotonic() - killed
                        pending.discard(s)
                    if restarted and (not pending or time.monotonic() > give_up):
                        break
                    if self.cluster.stop.wait(0.1 if pending else max(0.0, min(0.1, killed + down_s -
                                                                                time.monotonic()))):
                        raise Stopped()
            finally:
                for c in probes.values():
                    c.close()
            worst = max(times.values()) if times else 0.0
            self.record.continue_times.append((name, worst, len(online)))
            self.record.note("fault: broker %s killed (down %.1fs); the %d seeders online then were served by a live "
                             "broker again within %.2fs" % (name, down_s, len(online), worst))
            if pending:
                self.record.violation("continue", "seeders %s were not served by a live broker again %.0fs after "
                                      "broker %s was killed" % (", ".join(sorted(pending)), give_up - killed, name))
            slow = {s: t for s, t in times.items() if t > self.settings["continue-deadline"]}
            if slow:
                self.record.violation("continue", "after broker %s was killed, seeders took longer than %.1fs to be "
                                      "served by a live broker again: %s" % (name, self.settings["continue-deadline"],
                                      ", ".join("%s %.2fs" % kv for kv in sorted(slow.items()))))
            if self.settings["restore-sessions"]:
                self.cluster.restore_sessions(self.client, who="faults")
            took = self.cluster.await_seeders(self.client, self.settings["reconnect-deadline"],
                                              "after broker %s's restart (fault %d)"
                                              % (name, self.record.faults_of("broker")))
            if took is not None:
                self.record.reconnect_times.append(took)
            self.record.fault_end(window)

    def _exited_by_itself(self, broker):
        """A broker about to be killed must be running: one that died by itself is a violation (the kill's restart
        would hide it)."""
        if not broker.running():
            self.record.violation("broker", "the broker%s exited by itself (code %s) before the fault injector killed "
                                  "it: %s" % ("" if len(self.cluster.brokers) == 1 else " " + broker.name,
                                              broker.daemon.proc.returncode, broker.daemon.stderr_tail(800)))

    def _online_seeders(self):
        """The running seeders a broker lists online at their endpoint now."""
        try:
            r = self.client.call("LIST_USERS")
        except Unanswered as e:
            self.record.violation("unanswered", "LIST_USERS before a broker kill: %s" % e)
            return []
        self.record.operation(r)
        listed = {u.get("user"): u.get("endpoint") for u in r.reply.get("users", [])}
        return [n for n, s in sorted(self.cluster.seeders.items())
                if s.daemon.running() and n not in self.down_seeders and listed.get(n) == s.endpoint]

    def _served_again(self, pending, probes):
        """Those of `pending` (seeder names) a live broker serves: it holds the session (it answers the seeder's
        HEARTBEAT OK, where another broker would answer USER NOT CONNECTED) and lists the seeder at its endpoint.
        The probe is the seeder's own request, sent with its key: it touches the session's liveness as the
        seeder's next heartbeat would, nothing else."""
        done = []
        if not pending:
            return done
        for b, client in probes.items():
            if self.cluster.epochs.is_down(b):
                continue
            held = []
            try:
                for s in sorted(pending):
                    if client.call("HEARTBEAT", user=s).status == "OK":
                        held.append(s)
                if not held:
                    continue
                listed = {u.get("user"): u.get("endpoint") for u in client.call("LIST_USERS").reply.get("users", [])}
            except Unanswered:
                continue  # a live broker slow for half a second: asked again next round
            done += [s for s in held if listed.get(s) == self.cluster.seeders[s].endpoint and s not in done]
        return done

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
        for b in self.cluster.brokers:
            if not b.running():
                self.record.violation("broker", "the broker%s exited by itself: %s"
                                      % ("" if len(self.cluster.brokers) == 1 else " " + b.name,
                                         b.daemon.stderr_tail(800)))
                self.cluster.epochs.kill_started(b.name)
                self.cluster.start_broker(b.name)
                self.cluster.epochs.restarted(b.name)
        if self.settings["restore-sessions"]:
            self.cluster.restore_sessions(self.client, who="faults")
        self.cluster.await_seeders(self.client, self.settings["reconnect-deadline"], "at the end")

    def close(self):
        self.client.close()
