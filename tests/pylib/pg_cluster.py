#!/usr/bin/python3
# pg_cluster.py: a throw-away PostgreSQL cluster for the tests: initdb and pg_ctl (Debian's, found by
# find_bindir()) run as the `postgres` user when the tests run as root (initdb refuses root), in a fresh folder
# under /tmp, listening on a free loopback port and a Unix socket in that folder, fsync on, trust authentication
# for the superuser `zshare` only. stop() removes everything. A cluster whose owning process died (a test killed
# by a timeout) is stopped and removed by the next start (reap_orphans), so leaks never pile up.
# Server settings: the tests' (TEST_SETTINGS: small shared buffers, few connections, so many clusters fit at once) or,
# for a benchmark, PostgreSQL's own defaults (settings={}); fsync and synchronous_commit are on either way.
# Used from Python (PgCluster), from the C++ tests and from bench/run_store_bench.sh through the command line:
#   pg_cluster.py start [--owner-pid PID] [--server-defaults]
#                                         prints "URI_BASE DIR" (URI_BASE: postgresql://zshare@127.0.0.1:PORT)
#   pg_cluster.py createdb DIR NAME | restart DIR | stop DIR
#   pg_cluster.py sql DIR DB STATEMENT    runs one statement with psql, prints its rows (unaligned, tuples only)
#   pg_cluster.py bindir                  prints the binaries' folder, or exits 1 when there are none
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zshare_testlib import free_port  # noqa: E402

PREFIX = "zshare-pg-"
SUPERUSER = "zshare"
# The tests' server settings (many clusters and brokers at once on a small machine); a benchmark passes {} instead.
TEST_SETTINGS = {"shared_buffers": "16MB", "max_connections": "40"}


def find_bindir():
    """The folder holding initdb and pg_ctl: $ZSHARE_PG_BINDIR, else pg_config --bindir, else the newest
    /usr/lib/postgresql/N/bin; None when there is none."""
    def has_tools(d):
        return d and all(os.access(os.path.join(d, t), os.X_OK) for t in ("initdb", "pg_ctl", "postgres"))
    candidates = [os.environ.get("ZSHARE_PG_BINDIR")]
    try:
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                         timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0, reverse=True)
    candidates += versions
    for d in candidates:
        if has_tools(d):
            return d
    return None


def _as_server_user():
    """subprocess keywords that run a command as `postgres` when we are root (initdb and postgres refuse root)."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(bindir):
    """Stops and removes the clusters under the temp folder whose owning process is gone."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        try:
            with open(os.path.join(d, "cluster.json")) as f:
                owner = json.load(f)["owner_pid"]
        except (OSError, ValueError, KeyError):
            continue  # being created right now, or not ours
        if not _alive(owner):
            _stop(bindir, d)


def _stop(bindir, folder):
    data = os.path.join(folder, "data")
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, **_as_server_user())
    shutil.rmtree(folder, ignore_errors=True)


class PgCluster:
    """A running throw-away cluster: uri(db) for the broker's --db, createdb(), restart(), stop()."""

    def __init__(self, bindir=None, owner_pid=None, settings=None):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl): tools/install-deps.sh installs postgresql")
        self.owner_pid = owner_pid or os.getpid()
        self.settings = dict(TEST_SETTINGS if settings is None else settings)  # beyond PostgreSQL's defaults
        self.folder = None
        self.port = None

    @property
    def data(self):
        return os.path.join(self.folder, "data")

    def uri_base(self):
        return "postgresql://%s@127.0.0.1:%d" % (SUPERUSER, self.port)

    def uri(self, db):
        return "%s/%s" % (self.uri_base(), db)

    def _tool(self, name, *args, timeout=120):
        return subprocess.run([os.path.join(self.bindir, name)] + list(args), capture_output=True, text=True,
                              timeout=timeout, **_as_server_user())

    def _check(self, what, r):
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s%s" % (what, r.returncode, r.stdout, r.stderr, self.log_tail()))

    def log_tail(self):
        try:
            with open(os.path.join(self.folder, "server.log"), errors="replace") as f:
                return "\nserver.log:\n" + f.read()[-2000:]
        except OSError:
            return ""

    def start(self):
        reap_orphans(self.bindir)
        self.folder = tempfile.mkdtemp(prefix=PREFIX)
        self._write_meta(free_port())
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        # --no-sync only skips syncing initdb's own files; the server below runs with fsync on.
        self._check("initdb", self._tool("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                                         "--no-locale", "--no-sync"))
        for attempt in range(3):  # a free port may be taken by another test before the server binds it
            try:
                self._pg_ctl("start")
                return self
            except RuntimeError:
                if attempt == 2:
                    raise
                self._write_meta(free_port())

    def _write_meta(self, port):
        self.port = port
        with open(os.path.join(self.folder, "cluster.json"), "w") as f:
            json.dump({"owner_pid": self.owner_pid, "port": self.port, "settings": self.settings}, f)

    def _pg_ctl(self, action, *extra):
        options = "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on -c synchronous_commit=on" % (
            self.port, self.folder)
        options += "".join(" -c %s=%s" % (k, v) for k, v in sorted(self.settings.items()))
        self._check("pg_ctl %s" % action, self._tool("pg_ctl", "-D", self.data, "-l",
                                                     os.path.join(self.folder, "server.log"), "-o", options, "-w",
                                                     "-t", "60", *extra, action))

    def restart(self, mode="fast"):
        """pg_ctl restart -m MODE: every connection is cut, the server is back when this returns."""
        self._pg_ctl("restart", "-m", mode)

    def stop_server(self, mode="fast"):
        self._check("pg_ctl stop", self._tool("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"))

    def start_server(self):
        self._pg_ctl("start")

    def createdb(self, name):
        self._check("createdb %s" % name, self._tool("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                                     SUPERUSER, name))
        return self.uri(name)

    def sql(self, db, statement):
        """Runs one statement with psql; returns its unaligned, tuples-only output."""
        r = self._tool("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                       "-U", SUPERUSER, "-d", db, "-c", statement)
        self._check("psql %r" % statement, r)
        return r.stdout.strip()

    def stop(self):
        if self.folder:
            _stop(self.bindir, self.folder)
            self.folder = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


SKIP_EXIT_CODE = 77  # CTest's SKIP_RETURN_CODE for the process tests that need PostgreSQL


class BrokerDatabases:
    """The databases of a process test's brokers, by its --store option: "sqlite" gives None (each Broker makes its
    own file) and "postgresql" a fresh database per broker, in one throw-away cluster for the whole test. Without
    PostgreSQL binaries a postgresql run exits SKIP_EXIT_CODE at once, saying why."""

    STORES = ("sqlite", "postgresql")

    def __init__(self, store):
        self.store = store
        self.cluster = None
        self.count = 0
        if store == "postgresql":
            if find_bindir() is None:
                print("SKIP: no PostgreSQL binaries (initdb, pg_ctl); tools/install-deps.sh installs postgresql",
                      flush=True)
                sys.exit(SKIP_EXIT_CODE)
            self.cluster = PgCluster().start()

    def new(self):
        """A --db for a new broker: a fresh PostgreSQL database's URI, or None for the broker's own SQLite file."""
        if self.cluster is None:
            return None
        self.count += 1
        return self.cluster.createdb("zshare%d" % self.count)

    def serves(self, broker):
        """Whether `broker` (started) says it runs on its database: the start line names a PostgreSQL database as
        postgresql://user@host:port/name, a SQLite file by its path."""
        return ("db %s " % broker.db) in broker.stderr()

    def close(self):
        if self.cluster is not None:
            self.cluster.stop()


def run_on_postgresql(checks, body, prefix):
    """A process test's run on one throw-away PostgreSQL cluster: body(root, databases) in a temporary folder under
    `checks` (TimeoutError and AssertionError are check failures), the cluster removed after. Exits SKIP_EXIT_CODE
    at once, saying so, when PostgreSQL is not installed."""
    databases = BrokerDatabases("postgresql")
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as root:
            return checks.run(lambda: body(root, databases), expected=(TimeoutError, AssertionError),
                              timed_from=started)
    finally:
        databases.close()


def _attach(folder):
    """A PgCluster for a folder another process started."""
    with open(os.path.join(folder, "cluster.json")) as f:
        meta = json.load(f)
    c = PgCluster(owner_pid=meta["owner_pid"], settings=meta.get("settings"))
    c.folder = folder
    c.port = meta["port"]
    return c


def main(argv):
    if argv[:1] == ["bindir"]:
        d = find_bindir()
        if d:
            print(d)
        return 0 if d else 1
    if argv[:1] == ["start"]:
        owner, settings, rest = os.getppid(), None, argv[1:]
        while rest:
            if rest[0] == "--owner-pid" and len(rest) > 1:
                owner, rest = int(rest[1]), rest[2:]
            elif rest[0] == "--server-defaults":
                settings, rest = {}, rest[1:]
            else:
                print("pg_cluster.py start: unknown argument %r" % rest[0], file=sys.stderr)
                return 2
        c = PgCluster(owner_pid=owner, settings=settings).start()
        print("%s %s" % (c.uri_base(), c.folder))
        return 0
    if len(argv) == 4 and argv[0] == "sql":
        print(_attach(argv[1]).sql(argv[2], argv[3]))
        return 0
    if len(argv) >= 2 and argv[0] in ("createdb", "restart", "stop"):
        c = _attach(argv[1])
        if argv[0] == "createdb":
            print(c.createdb(argv[2]))
        elif argv[0] == "restart":
            c.restart()
        else:
            c.stop()
        return 0
    print("usage: pg_cluster.py start [--owner-pid PID] [--server-defaults] | createdb DIR NAME | restart DIR | "
          "stop DIR | sql DIR DB STATEMENT | bindir", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
