# harness_cluster.py: the network under test on 127.0.0.1: time service, operations logger, the brokers (one on
# SQLite, or N on one throw-away PostgreSQL database; fixed ports and database across restarts) and one
# `zshare-peer serve` per seeder; start, kill -9, restart, tear down.
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import zmq

from harness_client import PROTOCOL_VERSION, BrokerClient, BrokerEpochs, Keys, Stamps, Unanswered
from harness_procs import Daemon, Registry, free_ports, wait_until

POSTGRES = "postgres"
STORES = ("sqlite", POSTGRES)
PG_DATABASE = "zshare"


class ProcessFailure(Exception):
    """A daemon would not start or answer: the run cannot go on."""


class Binaries:
    def __init__(self, broker, peer, rpclog, timesvc, events=None):
        self.broker = broker
        self.peer = peer
        self.rpclog = rpclog
        self.timesvc = timesvc
        self.events = events


def pg_cluster_module():
    """tests/pylib/pg_cluster.py, the one place that knows how to run a throw-away PostgreSQL (initdb, pg_ctl as
    the `postgres` user, a loopback port): beside this script when installed, else in the source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (here, os.path.join(here, "..", "..", "tests", "pylib")):
        if os.path.isfile(os.path.join(folder, "pg_cluster.py")):
            if folder not in sys.path:
                sys.path.append(folder)
            import pg_cluster  # noqa: E402 - found at run time
            return pg_cluster
    raise ProcessFailure("--store postgres needs pg_cluster.py (tests/pylib/ of the source tree)")


def broker_takes_name(broker_bin):
    """Whether this zshare-broker has --name (several brokers on one database tell themselves apart by it)."""
    try:
        out = subprocess.run([broker_bin, "--help"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return re.search(r"^\s*--name\b", out, re.M) is not None


class Broker:
    """One zshare-broker: its name (b1, b2, ...), fixed control and event ports, the shared database and key."""

    def __init__(self, cluster, name, daemon_name, extra_args):
        control, events = free_ports(2)
        self.name = name
        self.control = "tcp://127.0.0.1:%d" % control
        self.events = "tcp://127.0.0.1:%d" % events
        self.daemon = Daemon(cluster.registry, daemon_name,
                             [cluster.bins.broker, "--bind", self.control, "--events", self.events, "--db", cluster.db,
                              "--rpclog", "127.0.0.1:%d" % cluster.rpclog_port, "--key", cluster.broker_key_file]
                             + list(extra_args), cluster.logdir)

    def running(self):
        return self.daemon.running()


class Cluster:
    def __init__(self, bins, record, keep=False, workdir=None, brokers=1, store="sqlite", tries=2):
        if store not in STORES:
            raise ProcessFailure("unknown store %r (%s)" % (store, " or ".join(STORES)))
        if brokers < 1 or (brokers > 1 and store != POSTGRES):
            raise ProcessFailure("%d brokers need --store postgres (one database they share)" % brokers)
        self.bins = bins
        self.record = record
        self.keep = keep
        self.store = store
        self.tries = tries   # several brokers: a client's tries at one broker before the next
        self.workdir = workdir or tempfile.mkdtemp(prefix="zshare-harness-")
        self.logdir = os.path.join(self.workdir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.registry = Registry()
        self.stop = threading.Event()
        self.stamps = Stamps()
        names = ["b%d" % (i + 1) for i in range(brokers)]
        self.epochs = BrokerEpochs(names)
        self.rpclog_port = free_ports(1)[0]
        self.pg = None   # the throw-away PostgreSQL cluster (pg_cluster.PgCluster), once start_store() ran
        self.db = os.path.join(self.workdir, "broker.db") if store != POSTGRES else None
        self.oplog = os.path.join(self.workdir, "operations.log")
        self.timesvc_url = None
        self.seeders = {}
        self.keys = self._make_keys()
        self.brokers = []   # Broker, in list order: b1, b2, ...
        self._brokers_named = False
        self._client_count = 0
        self.logger = Daemon(self.registry, "rpclog",
                             [bins.rpclog, "--bind", "127.0.0.1", "--port", str(self.rpclog_port), "--log", self.oplog],
                             self.logdir)
        self.timesvc = Daemon(self.registry, "timesvc", [bins.timesvc, "--bind", "127.0.0.1", "--port", "0",
                                                          "--threads", "2"], self.logdir)
        self.broker_lock = threading.Lock()   # one broker restart at a time
        self.logger_lock = threading.Lock()
        self._lock = threading.Lock()

    # ---- the store and the brokers on it ----
    def start_store(self):
        """SQLite: nothing to start (the broker makes its file). PostgreSQL: a throw-away cluster and its database
        (removed at teardown), then the brokers' processes are defined on it."""
        if self.store == POSTGRES:
            pg_cluster = pg_cluster_module()
            try:
                self.pg = pg_cluster.PgCluster()  # assigned before start(): teardown removes a half-made one too
                self.pg.start()
                self.db = self.pg.createdb(PG_DATABASE)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:  # no binaries, initdb or pg_ctl failed
                raise ProcessFailure("PostgreSQL could not be started: %s" % e)
        self._define_brokers()

    def _define_brokers(self):
        names = self.epochs.names
        # --name tells the brokers of one database apart; a broker without the option is run as before
        self._brokers_named = self.store == POSTGRES and broker_takes_name(self.bins.broker)
        for name in names:
            extra = ["--name", name] if self._brokers_named else []
            daemon_name = "broker" if len(names) == 1 else "broker-" + name
            self.brokers.append(Broker(self, name, daemon_name, extra))

    def broker_named(self, name):
        for b in self.brokers:
            if b.name == name:
                return b
        raise KeyError("no broker %r (the brokers are %s)" % (name, ", ".join(x.name for x in self.brokers)))

    @property
    def control(self):
        """Every broker's control endpoint, as a peer's --broker list takes them."""
        return ",".join(b.control for b in self.brokers)

    @property
    def events(self):
        return ",".join(b.events for b in self.brokers)

    def describe_db(self):
        return self.pg.uri(PG_DATABASE) if self.pg is not None else self.db

    def outbox_rows(self):
        """Rows left in the brokers' outbox (None when the database cannot be read)."""
        if self.pg is not None:
            try:
                return int(self.pg.sql(PG_DATABASE, "SELECT count(*) FROM outbox"))
            except (RuntimeError, ValueError, OSError, subprocess.SubprocessError):
                return None
        try:
            con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=5)
            try:
                return con.execute("SELECT count(*) FROM outbox").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            return None

    def _make_keys(self):
        """CurveZMQ everywhere: the brokers' one keypair from `zshare-broker keygen` (every broker of the network
        runs with it), and the peers' keypair written as peer.key in the shared key folder (the format
        zshare-peer reads; it would make one itself)."""
        self.broker_key_file = os.path.join(self.workdir, "broker.key")
        self.broker_pub_file = os.path.join(self.workdir, "broker.pub")
        self.key_dir = os.path.join(self.workdir, "keys")
        if not os.path.exists(self.broker_key_file):
            subprocess.run([self.bins.broker, "keygen", "--key", self.broker_key_file], check=True,
                           stdout=subprocess.DEVNULL)
        with open(self.broker_pub_file) as f:
            broker_public = re.search(r'public-key = "([^"]+)"', f.read()).group(1)
        peer_key = os.path.join(self.key_dir, "peer.key")
        if os.path.exists(peer_key):
            with open(peer_key) as f:
                text = f.read()
            own = tuple(re.search(r'%s = "([^"]+)"' % k, text).group(1).encode() for k in ("public-key", "secret-key"))
        else:
            os.makedirs(self.key_dir, mode=0o700, exist_ok=True)
            own = zmq.curve_keypair()
            fd = os.open(peer_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write('public-key = "%s"\nsecret-key = "%s"\n' % (own[0].decode(), own[1].decode()))
        return Keys(broker_public, own)

    def _rotated(self, first):
        n = len(self.brokers)
        return [self.brokers[(first + i) % n] for i in range(n)]

    def _next_rotation(self):
        with self._lock:
            self._client_count += 1
            return self._client_count - 1

    def peer_args(self, first=None):
        """zshare-peer's global options: the brokers (one, or the list starting at broker `first`, round robin when
        not given, so that sessions spread over them), their key, and the harness's key folder."""
        if first is None:
            first = self._next_rotation() if len(self.brokers) > 1 else 0
        brokers = ",".join(b.control for b in self._rotated(first))
        return ["--broker", brokers, "--broker-key", self.broker_pub_file, "--key-dir", self.key_dir]

    def client(self, name, timeout_s=1.0, deadline_s=60.0, first=None, tries=None):
        """A driver client: with several brokers, the multi-server Lazy Pirate over the list starting at `first`
        (round robin when not given)."""
        if len(self.brokers) == 1:
            endpoint = self.brokers[0].control
        else:
            if first is None:
                first = self._next_rotation()
            endpoint = [(b.name, b.control) for b in self._rotated(first)]
        return BrokerClient(endpoint, self.stamps, self.epochs, self.stop, timeout_s, deadline_s, name,
                            keys=self.keys, tries=tries or self.tries)

    def broker_client(self, name, client_name, timeout_s=1.0, deadline_s=2.0):
        """A client of one broker only (no failover): to ask that broker itself."""
        b = self.broker_named(name)
        return BrokerClient([(b.name, b.control)], self.stamps, self.epochs, self.stop, timeout_s, deadline_s,
                            client_name, keys=self.keys)

    # ---- the daemons ----
    def start_timesvc(self):
        self.timesvc.start()

        def url():
            if not self.timesvc.running():
                raise ProcessFailure("zshare-timesvc exited: %s" % self.timesvc.stderr_tail())
            m = re.search(r"listening on (http://\S+)", self.timesvc.stdout_since_start())
            return m.group(1) if m else None
        self.timesvc_url = wait_until(url, 15, "zshare-timesvc to listen")

    def start_logger(self):
        with self.logger_lock:
            self.logger.start()
            serving = "on 127.0.0.1:%d" % self.rpclog_port

            def up():
                if not self.logger.running():
                    raise ProcessFailure("zshare-rpclog exited: %s" % self.logger.stderr_since_start())
                return serving in self.logger.stderr_since_start()
            wait_until(up, 15, "zshare-rpclog to listen on port %d" % self.rpclog_port)

    def start_brokers(self):
        """Starts every broker, one after the other (each answers before the next starts)."""
        for b in self.brokers:
            self.start_broker(b.name)

    def start_broker(self, name=None, deadline_s=20):
        """Starts a broker (the first when not named) and waits until it answers; records and returns the seq of its
        broker.started."""
        b = self.brokers[0] if name is None else self.broker_named(name)
        b.daemon.start()
        probe = zmq.Context.instance().socket(zmq.REQ)
        probe.setsockopt(zmq.LINGER, 0)
        self.keys.dial(probe)
        probe.connect(b.control)
        try:
            end = time.monotonic() + deadline_s
            n = 0
            while True:
                if not b.daemon.running():
                    raise ProcessFailure("zshare-broker %s exited with %s: %s"
                                         % (b.name, b.daemon.proc.returncode, b.daemon.stderr_since_start()[-2000:]))
                n += 1
                probe.send(msgpack.packb({"v": PROTOCOL_VERSION, "op": "STATS", "id": "harness-probe-%d" % n,
                                          "ts": self.stamps.next()}, use_bin_type=True))
                if probe.poll(200) & zmq.POLLIN:
                    stats = msgpack.unpackb(probe.recv(), raw=False)
                    m = re.search(r"broker\.started is seq (\d+)\)", b.daemon.stderr_since_start())
                    started = int(m.group(1)) if m else stats.get("seq", 0)
                    self.epochs.broker_started(started, b.name)
                    return started
                probe.close(linger=0)
                probe = zmq.Context.instance().socket(zmq.REQ)
                probe.setsockopt(zmq.LINGER, 0)
                self.keys.dial(probe)
                probe.connect(b.control)
                if time.monotonic() > end or self.stop.is_set():
                    raise ProcessFailure("zshare-broker %s did not answer STATS within %ds" % (b.name, deadline_s))
        finally:
            probe.close(linger=0)

    def kill_broker(self, down_s=0.2, name=None):
        """kill -9 and restart a broker (the first when not named) on the same database and ports; clients see a new
        incarnation of it (its sessions end)."""
        b = self.brokers[0] if name is None else self.broker_named(name)
        with self.broker_lock:
            window = self.record.fault_begin("broker", b.name)
            self.epochs.kill_started(b.name)
            b.daemon.kill9()
            time.sleep(down_s)
            self.start_broker(b.name)
            self.epochs.restarted(b.name)
            return window  # the caller ends it once the sessions are restored

    def kill9_broker(self, name):
        """kill -9 a broker and leave it down (restart_broker brings it back); returns its fault window."""
        b = self.broker_named(name)
        with self.broker_lock:
            window = self.record.fault_begin("broker", b.name)
            self.epochs.kill_started(b.name)
            b.daemon.kill9()
            return window

    def restart_broker(self, name):
        with self.broker_lock:
            self.start_broker(name)
            self.epochs.restarted(name)

    def kill_logger(self, down_s=1.0):
        window = self.record.fault_begin("logger")
        self.logger.kill9()
        time.sleep(down_s)
        self.start_logger()
        self.record.fault_end(window)

    # ---- seeders ----
    def add_seeder(self, spec, chunk_size, source_timeout=None):
        s = Seeder(self, spec, chunk_size)
        self.seeders[spec.name] = s
        return s

    def restore_sessions(self, client, who="restorer"):
        """After a broker restart every session is gone and `serve` does not notice (no heartbeat yet): the
        harness CONNECTs each running seeder's user with its endpoint again, as its reconnect would."""
        for s in list(self.seeders.values()):
            with s.lock:
                if not s.daemon.running():
                    continue
                if s.session_incarnation == self.epochs.snapshot()[1]:
                    continue
                for _ in range(5):
                    try:
                        r = client.call("CONNECT", user=s.name, endpoint=s.endpoint)
                    except Unanswered as e:
                        self.record.violation("unanswered", "restoring %s's session: %s" % (s.name, e))
                        break
                    self.record.operation(r)
                    if r.status == "OK":
                        self.record.acknowledged(r, s.name, "CONNECT", s.endpoint, who)
                        self.record.replaced_session(r, s.name, who)  # its session keeper was quicker
                    elif r.status != "USER ALREADY CONNECTED":
                        self.record.violation("unexpected-status", "CONNECT %s (restoring its session) answered %s"
                                              % (s.name, r.status))
                        break
                    if not r.overlapped:
                        s.session_incarnation = r.incarnation
                        break
                    # a restart while we asked: ask again in the new incarnation

    def start_seeders(self, parallel=2):
        """Starts every seeder, `parallel` at a time (each hashes its share first); the first failure is raised."""
        gate = threading.Semaphore(parallel)
        failures = []

        def start(s):
            with gate:
                try:
                    s.start()
                except Exception as e:  # noqa: BLE001 - raised below, in the caller's thread
                    failures.append(e)
        threads = [threading.Thread(target=start, args=(s,), daemon=True) for s in self.seeders.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        if failures:
            raise failures[0]

    def offline_seeders(self, client):
        """Running seeders that LIST_USERS does not show connected at their endpoint."""
        r = client.call("LIST_USERS")
        self.record.operation(r)
        listed = {u.get("user"): u.get("endpoint") for u in r.reply.get("users", [])}
        return [s.name for s in self.seeders.values() if s.daemon.running() and listed.get(s.name) != s.endpoint]

    def await_seeders(self, client, deadline_s, why):
        """Waits until every running seeder is connected again (serve's own session keeper reconnects it after a
        broker restart); the ones still offline at the deadline are a violation."""
        end = time.monotonic() + deadline_s
        start = time.monotonic()
        while True:
            missing = self.offline_seeders(client)
            if not missing:
                return time.monotonic() - start
            if time.monotonic() > end or self.stop.is_set():
                self.record.violation("seeder", "%s: seeders %s are not connected %.0fs later"
                                      % (why, ", ".join(missing), deadline_s))
                return None
            time.sleep(0.1)

    def teardown(self):
        self.stop.set()
        self.registry.close()
        if self.pg is not None:
            if self.keep and self.pg.folder:
                self._dump_database()
            self.pg.stop()   # the server stopped, its folder removed
            self.pg = None
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _dump_database(self):
        """--keep: the PostgreSQL database as SQL in the kept folder (the cluster itself is removed)."""
        try:
            r = subprocess.run([os.path.join(self.pg.bindir, "pg_dump"), "-h", "127.0.0.1", "-p", str(self.pg.port),
                                "-U", "zshare", PG_DATABASE], capture_output=True, text=True, timeout=60)
            with open(os.path.join(self.workdir, "broker.sql"), "w") as f:
                f.write(r.stdout if r.returncode == 0 else "-- pg_dump failed: %s\n" % r.stderr)
        except (OSError, subprocess.SubprocessError) as e:
            print("harness: could not dump the database: %s" % e, file=sys.stderr)


class Seeder:
    """One `zshare-peer serve` process on a fixed transfer port (so a restart advertises the same endpoint)."""

    def __init__(self, cluster, spec, chunk_size):
        self.cluster = cluster
        self.name = spec.name
        self.spec = spec
        self.dir = os.path.join(cluster.workdir, "peers", spec.name)
        self.share = os.path.join(self.dir, "share")
        os.makedirs(self.share, exist_ok=True)
        self.chunk_size = chunk_size
        self.daemon = None
        # with several brokers, each seeder's list starts at another one, so sessions spread over them
        self.first_broker = cluster._next_rotation() if len(cluster.brokers) > 1 else 0
        self._listen_on(free_ports(1)[0])
        self.lock = threading.RLock()
        self.session_incarnation = None   # the brokers' incarnations (Incarnations) our session is known to be on in
        self.serving = []                 # each start's SERVE line (a dict)
        self.down_window = None

    def _listen_on(self, port):
        cluster, spec = self.cluster, self.spec
        self.port = port
        self.endpoint = "tcp://127.0.0.1:%d" % port
        argv = [cluster.bins.peer] + cluster.peer_args(self.first_broker) + ["--json", "--timeout", "2"]
        if cluster.timesvc_url:
            argv += ["--timesvc", cluster.timesvc_url]
        argv += ["serve", "--user", spec.name, "--share", self.share, "--hash-cache",
                 os.path.join(self.dir, "hashes.db"), "--listen", self.endpoint, "--chunk-size", str(self.chunk_size)]
        if spec.rate_limit:
            argv += ["--rate-limit", str(spec.rate_limit)]
        if spec.corrupt_every:
            argv += ["--fault-corrupt-every", str(spec.corrupt_every)]
        if self.daemon is None:
            self.daemon = Daemon(cluster.registry, "serve-" + spec.name, argv, cluster.logdir)
        else:
            self.daemon.argv = argv

    def start(self, attempts=5, deadline_s=60):
        """Starts serve and waits for its SERVE line; retries (the broker may be restarting). Returns the line."""
        with self.lock:
            last = ""
            for attempt in range(attempts):
                before = self.cluster.epochs.snapshot()
                self.daemon.start()

                def serve_line():
                    lines = self.daemon.stdout_since_start().split("\n")
                    for ln in lines[:-1]:  # complete lines only
                        if '"SERVE"' in ln:
                            return ln
                    if not self.daemon.running():
                        return "EXIT " + " | ".join(lines)
                    return None
                line = wait_until(serve_line, deadline_s, "serve %s to print its SERVE line" % self.name,
                                  stop=self.cluster.stop)
                try:
                    info = json.loads(line) if not line.startswith("EXIT") else {}
                except ValueError:
                    info = {"raw": line}
                after = self.cluster.epochs.snapshot()
                restarted = before[0] != after[0] or before[2]
                if info.get("status") == "OK" and "endpoint" in info:
                    if info["endpoint"] != self.endpoint:
                        self.cluster.record.violation("seeder", "serve %s advertises %s, not %s"
                                                      % (self.name, info["endpoint"], self.endpoint))
                    if info.get("failed", 0) and restarted:
                        # the broker restarted between its CONNECT and its PUBLISHes: sessions reset, so
                        # its publishes were refused; a restart of serve publishes them again
                        last = "serve %s: %d publishes refused during a broker restart" % (self.name, info["failed"])
                        self.daemon.kill9()
                        continue
                    if info.get("failed", 0):
                        self.cluster.record.violation("seeder", "serve %s could not publish %d files: %s"
                                                      % (self.name, info["failed"], self.daemon.stdout_since_start()))
                    self.serving.append(info)
                    self.session_incarnation = None if restarted else before[1]
                    return info
                last = "%s / stderr: %s" % (line, self.daemon.stderr_since_start()[-800:])
                self.daemon.kill9()
                if "Address already in use" in line:  # someone took our port while we were down: move
                    old = self.endpoint
                    self._listen_on(free_ports(1)[0])
                    self.cluster.record.note("serve %s: %s was taken; moving to %s" % (self.name, old, self.endpoint))
                    continue
                time.sleep(0.5 * (attempt + 1))
            raise ProcessFailure("serve %s did not start after %d attempts: %s" % (self.name, attempts, last))

    def kill9(self):
        with self.lock:
            self.daemon.kill9()
            self.session_incarnation = None
