#!/usr/bin/python3
# zshare_harness.py: zshare-harness: starts a whole zshare network on loopback (time service, logger, one broker on
# SQLite or N on a throw-away PostgreSQL, the seeders), runs a scenario (a file, or --random) with optional fault
# injection, checks it and prints a verdict.
"""zshare-harness: run a scenario against real zshare processes on 127.0.0.1 and check it.

  zshare-harness examples/scenarios/smoke.zs
  zshare-harness --random --peers 8 --files 24 --ops 300 --seconds 40 --seed 7
  zshare-harness --random --peers 8 --files 24 --ops 3000 --seconds 40 \\
                 --kill-broker-every 5 --kill-seeder-every 6 --kill-logger-every 7
  zshare-harness --random --brokers 2 --store postgres --kill-broker-every 8 --broker-down 4

Exit status: 0 when every check passed, 1 on any violation, 2 on a usage or start-up error, 130 when interrupted.
The scenario format is documented in tools/harness/SCENARIOS.md."""
import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness_checks import Checker  # noqa: E402
from harness_client import Stopped  # noqa: E402
from harness_cluster import Binaries, Cluster, ProcessFailure  # noqa: E402
from harness_events import Subscriber  # noqa: E402
from harness_faults import Faults  # noqa: E402
from harness_files import write_shares  # noqa: E402
from harness_model import UNKNOWN, FileMeta, Model  # noqa: E402
from harness_ops import Ops  # noqa: E402
from harness_procs import Daemon  # noqa: E402
from harness_record import Record  # noqa: E402
from harness_report import summarize, table  # noqa: E402
from harness_scenario import DEFAULT_SETTINGS, ScenarioError, parse_file, random_scenario  # noqa: E402
from harness_steps import StepRunner  # noqa: E402
from harness_workload import RandomWorkload  # noqa: E402

# program -> (file name, its folder in a CMake build tree)
PROGRAMS = {
    "broker": ("zshare-broker", "broker"),
    "peer": ("zshare-peer", "peer"),
    "rpclog": ("zshare-rpclog", "rpclog"),
    "timesvc": ("zshare-timesvc", "timesvc"),
    "events": ("zshare-events", os.path.join("tools", "events")),
}


def version():
    """The version text of --version, as the C++ programs print it: "0.1.0 (git 47249bc)", or "0.1.0"."""
    here = os.path.dirname(os.path.abspath(__file__))
    # An installed copy has VERSION beside it; the build tree's wrapper names its build's version.txt. Both are
    # written by common/version.cmake. A plain source checkout: the project() line of the top CMakeLists.txt.
    for path in (os.path.join(here, "VERSION"), os.environ.get("ZSHARE_HARNESS_VERSION_FILE")):
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
    try:
        with open(os.path.join(here, "..", "..", "CMakeLists.txt"), encoding="utf-8") as f:
            m = re.search(r"^project\(zshare VERSION ([0-9.]+)", f.read(), re.M)
        if m:
            return m.group(1)
    except OSError:
        pass
    return "unknown"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="zshare-harness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version="zshare-harness " + version())
    p.add_argument("scenario", nargs="?", help="a scenario file (tools/harness/SCENARIOS.md)")
    r = p.add_argument_group("random workload")
    r.add_argument("--random", action="store_true", help="generate the scenario: N seeders, M files, K operations")
    r.add_argument("--peers", type=int, default=8, help="seeders (zshare-peer serve processes) [8]")
    r.add_argument("--files", type=int, default=24, help="files spread over the seeders [24]")
    r.add_argument("--ops", type=int, default=300, help="operations (mutations, queries, downloads) [300]")
    r.add_argument("--seconds", type=float, default=40.0, help="at most this long for the operations [40]")
    s = p.add_argument_group("settings (override the scenario's `set` lines)")
    s.add_argument("--seed", help="the seed of every random choice [scenario's, else 1]")
    s.add_argument("--workers", type=int, help="random workload threads [4]")
    s.add_argument("--brokers", type=int, metavar="N", help="brokers serving the network; more than 1 needs --store "
                   "postgres [1]")
    s.add_argument("--store", choices=("sqlite", "postgres"),
                   help="the brokers' database: sqlite (a file) or postgres (a throw-away cluster) [sqlite]")
    s.add_argument("--kill-broker-every", type=float, metavar="S",
                   help="kill -9 and restart the broker (with several: one, in turn) every S s")
    s.add_argument("--broker-down", type=float, metavar="S", help="a killed broker restarts after S s [0.2]")
    s.add_argument("--continue-deadline", type=float, metavar="S",
                   help="several brokers: after a kill every seeder online then must be served by a live broker "
                        "within S s [5]")
    s.add_argument("--kill-seeder-every", type=float, metavar="S", help="kill -9 a random seeder every S s")
    s.add_argument("--kill-logger-every", type=float, metavar="S", help="kill -9 and restart zshare-rpclog every S s")
    s.add_argument("--seeder-down", type=float, metavar="S", help="a killed seeder restarts after S s [half its period]")
    s.add_argument("--chunk-size", type=int, help="seeders' --chunk-size [65536]")
    s.add_argument("--op-timeout", type=float, help="Lazy Pirate: resend a request unanswered after this [1]")
    s.add_argument("--op-deadline", type=float, help="an operation unanswered this long is a violation [60]")
    s.add_argument("--get-timeout", type=float, help="a get still running after this is a violation [60]")
    s.add_argument("--drain-deadline", type=float, help="end: wait this long for the log and the events [60]")
    s.add_argument("--reconnect-deadline", type=float,
                   help="after a broker restart the seeders must be connected again within this [15]")
    s.add_argument("--restore-sessions", action="store_const", const=1,
                   help="the harness CONNECTs the seeders after a broker restart (for peers without heartbeats)")
    b = p.add_argument_group("binaries")
    b.add_argument("--bin-dir", help="a CMake build tree or a folder holding the zshare-* programs")
    for key, (exe, _) in PROGRAMS.items():
        b.add_argument("--%s-bin" % key, help="path of %s" % exe)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print the summary as one JSON object (the table goes to stderr)")
    o.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database, shares)")
    o.add_argument("--verbose", "-v", action="store_true", help="print notes (faults, clean failures) as they happen")
    args = p.parse_args(argv)
    if bool(args.scenario) == bool(args.random):
        p.error("give a scenario file or --random (not both)")
    return args


def find_binaries(args):
    found = {}
    for key, (exe, sub) in PROGRAMS.items():
        path = getattr(args, "%s_bin" % key)
        if not path and args.bin_dir:
            for cand in (os.path.join(args.bin_dir, sub, exe), os.path.join(args.bin_dir, exe)):
                if os.access(cand, os.X_OK):
                    path = cand
                    break
        if not path and not args.bin_dir:  # the wrapper's defaults, then PATH (never mixed with --bin-dir)
            path = os.environ.get("ZSHARE_HARNESS_%s_BIN" % key.upper()) or shutil.which(exe)
        if path and not os.access(path, os.X_OK):
            raise ProcessFailure("%s is not an executable file: %s" % (exe, path))
        if not path and key != "events":
            raise ProcessFailure("cannot find %s: give --bin-dir or --%s-bin" % (exe, key))
        found[key] = path
    return Binaries(found["broker"], found["peer"], found["rpclog"], found["timesvc"], found["events"])


def overrides(args):
    """The settings given on the command line."""
    out = {}
    for key in DEFAULT_SETTINGS:
        value = getattr(args, key.replace("-", "_"), None)
        if value is not None:
            out[key] = int(value) if key == "seed" and str(value).lstrip("-").isdigit() else value
    return out


def load_scenario(args):
    given = overrides(args)
    if args.random:
        sc = random_scenario(args.peers, args.files, args.ops, args.seconds, given.get("seed", 1), given)
    else:
        sc = parse_file(args.scenario, given)
    sc.validate()
    return sc


def log(msg):
    print("harness: %s" % msg, file=sys.stderr, flush=True)


def run(args, sc, bins):
    record = Record(verbose=args.verbose)
    st = sc.settings
    cluster = Cluster(bins, record, keep=args.keep, brokers=int(st["brokers"]), store=st["store"],
                      tries=int(st["op-tries"]))
    subscribers, faults, events_tool = [], None, None
    log("%s: %d seeders, %d files (%d distinct contents), workdir %s"
        % (sc.name, len(sc.peers), len(sc.files), len({f.content for f in sc.files}), cluster.workdir))
    try:
        cluster.start_store()  # PostgreSQL: the throw-away cluster (teardown removes it, on a signal too)
        if cluster.pg is not None:
            log("PostgreSQL %s for %d broker%s" % (cluster.describe_db(), len(cluster.brokers),
                                                   "s" if len(cluster.brokers) > 1 else ""))
        contents = write_shares(os.path.join(cluster.workdir, "peers"), sc.peer_names(), sc.files, st["seed"],
                                st["chunk-size"])
        seed_files = {(f.peer, f.name): contents[f.content] for f in sc.files}

        # subscribed before the first event can exist: one per broker, each to that broker's PUB
        subscribers = [Subscriber(cluster, record, b) for b in cluster.brokers]
        for sub in subscribers:
            sub.start()
        if bins.events:
            # with several brokers it follows one and moves on when that one falls silent and does not answer
            failover = ["--probe-after", "0.5"] if len(cluster.brokers) > 1 else []
            events_tool = Daemon(cluster.registry, "zshare-events",
                                 [bins.events, "--events", cluster.events, "--broker", cluster.control,
                                  "--broker-key", cluster.broker_pub_file, "--json"] + failover,
                                 cluster.logdir).start()
        cluster.start_timesvc()
        cluster.start_logger()
        cluster.start_brokers()
        time.sleep(0.2)  # the SUBs connect (slow joiner); a missed first event would be reported as a gap

        model = Model()
        for spec in sc.peers.values():
            cluster.add_seeder(spec, st["chunk-size"])
        cluster.start_seeders(parallel=2)
        for name, s in cluster.seeders.items():
            metas = [FileMeta(f.name, contents[f.content].size, contents[f.content].cid, st["chunk-size"])
                     for f in sc.files if f.peer == name]
            model.add_seeder(name, s.endpoint, metas)
            info = s.serving[-1]
            if info.get("files") != len(metas):
                record.violation("seeder", "serve %s serves %s files, its share holds %d" % (name, info.get("files"),
                                                                                            len(metas)))
        log("network up: broker%s %s, events %s, logger :%d, timesvc %s, %d seeders"
            % ("s" if len(cluster.brokers) > 1 else "", cluster.control, cluster.events, cluster.rpclog_port,
               cluster.timesvc_url, len(cluster.seeders)))

        ops = Ops(cluster, model, record, st, contents, seed_files)
        faults = Faults(cluster, record, subscribers, st)
        workload = RandomWorkload(ops, cluster, model, record, st, seed_files)
        runner = StepRunner(ops, workload, faults, cluster, model, record, st)

        faults.start_periodic()
        t0 = time.monotonic()
        runner.run(sc.steps)
        op_seconds = time.monotonic() - t0
        log("operations done (%d steps, %d random) in %.1fs; settling"
            % (runner.steps_done, runner.random_ops, op_seconds))

        faults.stop()
        settle_sessions(cluster, model, ops)
        reruns = ops.retry_failed_downloads()
        if reruns:
            log("reran %d downloads that failed under faults" % reruns)
        checker = Checker(cluster, model, record, subscribers, events_tool, st)
        checker.run()
        if args.keep:  # what the harness saw, beside the processes' logs, for the one who investigates
            with open(os.path.join(cluster.workdir, "acknowledged.jsonl"), "w") as f:
                for a in record.acked:
                    f.write(json.dumps(dict(a, key=list(a["key"]))) + "\n")
            with open(os.path.join(cluster.workdir, "transfers.jsonl"), "w") as f:
                for t in record.transfers:
                    f.write(json.dumps(t) + "\n")
            keep_events(cluster, subscribers, t0)
        extra = {"seed": st["seed"], "peers": len(sc.peers), "files": len(sc.files), "workdir": cluster.workdir
                 if args.keep else None, "brokers": len(cluster.brokers), "store": cluster.store,
                 "continue_deadline_s": st["continue-deadline"],
                 "subscriber_error": next((s.error for s in subscribers if s.error), None)}
        return summarize(record, sc.name, runner.steps_done + runner.random_ops, op_seconds, checker.summary, extra)
    finally:
        cluster.stop.set()
        if faults is not None:
            faults.close()
        for sub in subscribers:
            sub.close()
        cluster.teardown()


def keep_events(cluster, subscribers, t0):
    """--keep: what each subscriber received (seq, topic, user, reason, seconds since the operations began) and the
    brokers' kills, for the one who investigates a gap or a disagreement."""
    for sub in subscribers:
        name = "events.jsonl" if len(subscribers) == 1 else "events-%s.jsonl" % sub.broker.name
        with sub.lock:
            rows = [(s, body, sub.arrived[s]) for s, body in sorted(sub.bodies.items())]
        with open(os.path.join(cluster.workdir, name), "w") as f:
            for s, (topic, ev), at in rows:
                f.write(json.dumps({"seq": s, "topic": topic, "user": ev.get("user"), "reason": ev.get("reason"),
                                    "broker": ev.get("broker"), "t": round(at - t0, 3)}) + "\n")
    with open(os.path.join(cluster.workdir, "broker-kills.jsonl"), "w") as f:
        for name, killed, restarted in cluster.epochs.kills():
            f.write(json.dumps({"broker": name, "killed": round(killed - t0, 3),
                                "restarted": None if restarted is None else round(restarted - t0, 3)}) + "\n")


def settle_sessions(cluster, model, ops):
    """Users whose session a broker restart left unknown: CONNECT resolves it (OK, replacing it when it is open)."""
    client = cluster.client("settle", 1.0, 60.0)
    try:
        inc = cluster.epochs.snapshot()[1]
        for st in model.all_users():
            if st.owner != "serve" and st.registered and not st.tainted and st.effective_session(inc) == UNKNOWN:
                ops.mutate(client, "CONNECT", st.name, st.owner, who="settle", endpoint=st.endpoint)
    finally:
        client.close()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def on_signal(signum, _frame):
        # the first signal unwinds the run (its finally kills every child and removes the temporary folder);
        # more signals while that happens are ignored so the cleanup itself is not cut short
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        bins = find_binaries(args)
        sc = load_scenario(args)
    except (ProcessFailure, ScenarioError, OSError, ValueError) as e:
        print("zshare-harness: %s" % e, file=sys.stderr)
        return 2
    try:
        summary = run(args, sc, bins)
    except KeyboardInterrupt:
        print("zshare-harness: interrupted; every process stopped, temporary files removed", file=sys.stderr)
        return 130
    except (ProcessFailure, TimeoutError, Stopped) as e:
        print("zshare-harness: the network could not be run: %s" % e, file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - a harness bug: say so, and fail
        traceback.print_exc()
        return 2
    text = table(summary)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(summary, sort_keys=True))
    else:
        for v in summary["violations"][:50]:
            print("violation: %s" % v)
        print(text)
    if summary["failures"] and not args.keep:
        print("zshare-harness: rerun with --keep to keep the logs, database and shares", file=sys.stderr)
    return 0 if summary["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
