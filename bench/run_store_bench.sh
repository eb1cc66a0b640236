#!/usr/bin/env bash
# run_store_bench.sh: the broker on PostgreSQL against the broker on SQLite (issue 16; GUIDE.md section 4: one broker on
# SQLite is the PostgreSQL broker's baseline, measured in the same run, by the same generator).
# One throw-away PostgreSQL cluster (tests/pylib/pg_cluster.py start --server-defaults: PostgreSQL's own settings,
# fsync and synchronous_commit on; the settings are printed) and one SQLite file get the same synthetic catalogue
# (zshare-bench-load seed, through the broker's own Store; the time of each is reported; the PostgreSQL database is
# then copied, CREATE DATABASE ... TEMPLATE, so each PostgreSQL configuration has its own), then three configurations
# are up at once and measured in turn:
#   sqlite  one broker on the SQLite file (the baseline)
#   pg1     broker A alone on PostgreSQL database 1
#   pg2     brokers B and C on database 2, both serving: the generator's clients are dealt between them (client i to
#           broker i % 2), one generator as in the other runs, and the CPU of both brokers is summed
# (pg1 has a database of its own because brokers sharing one follow each other's writes: a second broker there would
# work during pg1's runs, uncounted).
# with two mixes: read (SEARCH and LIST_CONTENT from the pool, as run_broker_bench.sh: served from the broker's
# memory on either store) and write (each client PUBLISHes a fresh file of a random connected user, then DELETEs it:
# a transaction per batch, and on PostgreSQL a round trip per statement). For each mix: peak req/s (closed loop,
# REPS reps, the order of the configurations rotated every rep so drift on the host hits all alike), then p99 at half
# each configuration's median peak (open loop, rotated too). CPU per request: the brokers' (every thread: transport,
# store client, log shipper) and, on PostgreSQL, the cluster's (postmaster and all its processes, exited autovacuum
# workers included), reported apart and summed, since the database's work is part of a request's cost.
# The operations log is on, as in production (RPCLOG=on): one zshare-rpclog receives every broker's records, so a
# mutation also costs its outbox row (in its transaction), the shipper's read of it and its deletion once logged; the
# logger's own CPU is not counted (run_logger_bench.sh measures it). With no logger listening the outbox would only
# grow, and the shipper would re-read it after every batch (its backoff is cut short by each batch's notify).
# On this 2-core machine pg2 cannot show scaling (two brokers, postgres and the generator share two cores): it shows
# the CPU per request with two live brokers, each following the other's writes (brokers built before 0d7264b did not:
# each served from its own memory, and their write mix only shows two writers on disjoint files). A broker that exits
# during a run is reported, and its configuration's later runs are skipped.
# Every wait is bounded; servers bind 127.0.0.1 only; the cluster and TMP are removed on exit.
#
# Usage: bench/run_store_bench.sh [BUILD_DIR]        (or ZSHARE_BUILD=DIR; default ./build; builds nothing)
# Knobs (environment): USERS=100000 FILES=1000000 CLIENTS=16 RUN_SECONDS=5 WARMUP=1 REPS=3 POOL=50000
#   LIST_FRACTION=0.2 POP_CLIENTS=4 POP_WINDOW=128 MIXES="read write" CONFIGS="sqlite pg1 pg2" (CONFIGS_READ and
#   CONFIGS_WRITE, default CONFIGS, choose per mix) HALF=1 (0: no half-peak runs) CURVE=1 (0: --plaintext brokers) RPCLOG=on (none: --rpclog none) BROKER_ARGS="" KEEP_TMP=0
#   TMPDIR=/tmp
# Quick run: FILES=100000 USERS=10000 REPS=1 RUN_SECONDS=2 bench/run_store_bench.sh build-bench
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${ZSHARE_BUILD:-./build}}
USERS=${USERS:-100000}
FILES=${FILES:-1000000}
POOL=${POOL:-50000}
CLIENTS=${CLIENTS:-16}
RUN_SECONDS=${RUN_SECONDS:-5}
WARMUP=${WARMUP:-1}
REPS=${REPS:-3}
LIST_FRACTION=${LIST_FRACTION:-0.2}
POP_CLIENTS=${POP_CLIENTS:-4}
POP_WINDOW=${POP_WINDOW:-128}
MIXES=${MIXES:-read write}
CONFIGS=${CONFIGS:-sqlite pg1 pg2}
CONFIGS_READ=${CONFIGS_READ:-$CONFIGS}
CONFIGS_WRITE=${CONFIGS_WRITE:-$CONFIGS}
HALF=${HALF:-1}
CURVE=${CURVE:-1}
RPCLOG=${RPCLOG:-on}
BROKER_ARGS=${BROKER_ARGS:-}
KEEP_TMP=${KEEP_TMP:-0}
TIME=/usr/bin/time
PY=/usr/bin/python3
PG_CLUSTER=$ROOT/tests/pylib/pg_cluster.py

LOAD=$BUILD/bench/zshare-bench-load
BROKER=$BUILD/broker/zshare-broker
RPCLOGD=$BUILD/rpclog/zshare-rpclog
exes=("$LOAD" "$BROKER")
[[ $RPCLOG == none ]] || exes+=("$RPCLOGD")
for exe in "${exes[@]}"; do
  [[ -x $exe ]] || { echo "missing $exe: build it first (cmake --build $BUILD --target $(basename "$exe"))" >&2; exit 2; }
done
[[ -x $TIME ]] || { echo "need /usr/bin/time: apt-get install time" >&2; exit 2; }
"$PY" "$PG_CLUSTER" bindir >/dev/null || { echo "no PostgreSQL binaries: tools/install-deps.sh installs postgresql" >&2; exit 2; }
for c in $CONFIGS_READ $CONFIGS_WRITE; do
  [[ $c =~ ^(sqlite|pg1|pg2)$ ]] || { echo "CONFIGS: sqlite, pg1, pg2; got '$c'" >&2; exit 2; }
done
for m in $MIXES; do [[ $m =~ ^(read|write)$ ]] || { echo "MIXES: read, write; got '$m'" >&2; exit 2; }; done
[[ $RPCLOG =~ ^(on|none)$ ]] || { echo "RPCLOG: on or none; got '$RPCLOG'" >&2; exit 2; }
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zshare-store-bench.XXXXXX")
RESULTS=$TMP/results.txt
: >"$RESULTS"
STARTED=()  # pids we started: /usr/bin/time wrappers (each broker is their child), the logger
PG_DIR=     # the cluster's folder, once started

. "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"  # cleanup, free_ports
. "$(dirname "${BASH_SOURCE[0]}")/broker_lib.sh"  # start_broker, wait_ready, stop_broker, load_run, connect_users
pg_stop() { if [[ -n $PG_DIR ]]; then "$PY" "$PG_CLUSTER" stop "$PG_DIR" || true; PG_DIR=; fi; }
trap 'cleanup; pg_stop' EXIT  # brokers first (they hold connections), then the cluster
trap 'exit 130' INT TERM

"$BROKER" keygen --key "$TMP/broker.key" >/dev/null || { echo "zshare-broker keygen failed" >&2; exit 1; }
BROKER_PUB=$TMP/broker.pub
SEC=curve
[[ $CURVE == 1 ]] || SEC=plain
if [[ $RPCLOG == none ]]; then
  BROKER_ARGS="--rpclog none $BROKER_ARGS"
else
  # The logger binds a free port itself and says which ("... on 127.0.0.1:PORT").
  "$RPCLOGD" --bind 127.0.0.1 --port 0 --log "$TMP/operations.log" >/dev/null 2>"$TMP/rpclog.err" &
  RPCLOG_PID=$!
  STARTED+=("$RPCLOG_PID")
  port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/rpclog.err" | head -1)
    [[ -n $port ]] || ! kill -0 "$RPCLOG_PID" 2>/dev/null && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "zshare-rpclog did not start: $(cat "$TMP/rpclog.err")" >&2; exit 1; }
  BROKER_ARGS="--rpclog 127.0.0.1:$port $BROKER_ARGS"
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
echo "RESULT setup security=$SEC rpclog=$RPCLOG build=${build_type:-unknown} load1_start=$(load1)" >>"$RESULTS"
log "files=$FILES users=$USERS clients=$CLIENTS run=${RUN_SECONDS}s x$REPS mixes '$MIXES' configs read '$CONFIGS_READ'" \
    "write '$CONFIGS_WRITE'," \
    "brokers $SEC, build ${build_type:-?}, tmp $TMP; machine: $(uptime)"
[[ $build_type == Release ]] || log "WARNING: $BUILD is a '${build_type:-?}' build, not Release: figures are not comparable"

# 1. The cluster: PostgreSQL's own settings (fsync on); owned by this shell, so a leftover is reaped by the next start.
out=$("$PY" "$PG_CLUSTER" start --owner-pid $$ --server-defaults) || { echo "the PostgreSQL cluster did not start" >&2; exit 1; }
read -r _ PG_DIR <<<"$out"
PG_URI=$("$PY" "$PG_CLUSTER" createdb "$PG_DIR" zsbench) || { echo "createdb failed" >&2; exit 1; }
PG_URI2=${PG_URI%/zsbench}/zsbench2
pg_sql() { "$PY" "$PG_CLUSTER" sql "$PG_DIR" zsbench "$1"; }
settings=$(pg_sql "SELECT string_agg(name || '=' || replace(current_setting(name), ' ', '_'), ' ' ORDER BY name)
  FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level',
  'shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'max_connections')")
echo "RESULT pg $settings" >>"$RESULTS"
log "PostgreSQL cluster $PG_DIR, database $PG_URI: $settings (PostgreSQL's defaults but for loopback and the port)"

# 2. The same catalogue into both stores, through the broker's Store; then PostgreSQL is vacuumed, analyzed and
# checkpointed so that no autovacuum of the bulk load or checkpoint of its WAL lands in a measured run, and copied
# for pg2.
log "seeding $USERS users, $FILES files into SQLite"
"$LOAD" seed --db "$TMP/sqlite.db" --users "$USERS" --files "$FILES" | sed 's/$/ tag=sqlite/' | tee -a "$RESULTS" >&2
log "seeding $USERS users, $FILES files into PostgreSQL"
"$LOAD" seed --db "$PG_URI" --users "$USERS" --files "$FILES" | sed 's/$/ tag=pg/' | tee -a "$RESULTS" >&2
t0=$(date +%s%N)
pg_sql "VACUUM ANALYZE" >/dev/null
pg_sql "CHECKPOINT" >/dev/null
echo "RESULT vacuum tag=pg seconds=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')" >>"$RESULTS"
t0=$(date +%s%N)
"$PY" "$PG_CLUSTER" sql "$PG_DIR" postgres "CREATE DATABASE zsbench2 TEMPLATE zsbench" >/dev/null  # (from another db)
pg_sql "CHECKPOINT" >/dev/null
echo "RESULT copy tag=pg seconds=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')" >>"$RESULTS"
db_sizes() {  # appends the stores' sizes on disk
  {
    echo "RESULT dbsize tag=sqlite when=$1 bytes=$(du -cb "$TMP"/sqlite.db* | tail -1 | cut -f1)"
    echo "RESULT dbsize tag=pg1 when=$1 bytes=$(pg_sql "SELECT pg_database_size('zsbench')")"
    echo "RESULT dbsize tag=pg2 when=$1 bytes=$(pg_sql "SELECT pg_database_size('zsbench2')")"
  } >>"$RESULTS"
}
db_sizes seeded

# 3. The brokers, each started on its seeded store (the first start is timed) and every user CONNECTed to each;
# EP, PID and TPID (its /usr/bin/time) by broker name.
declare -A EP=() PID=() TPID=()
up() {  # up NAME DB
  local line
  start_broker "$1" "$2" "$SEC"
  line=$(wait_ready "$1" 900)
  log "$1 answered STATS after $(kv "$line" since_ms) ms with files=$(kv "$line" files) users=$(kv "$line" users)"
  [[ $(kv "$line" files) == "$FILES" ]] || log "WARNING: $1 has files=$(kv "$line" files), expected $FILES"
  connect_users "$1"
  EP[$1]=$BROKER_EP PID[$1]=$BROKER_PID TPID[$1]=$BROKER_TPID
}
up sqlite "$TMP/sqlite.db"
up pga "$PG_URI"
up pgb "$PG_URI2"
up pgc "$PG_URI2"

# One run of a configuration: TAG CONFIG RATE. MIX is the caller's. A configuration whose broker has exited is
# skipped, saying why (the run in which it exited is marked died by load_run).
config_run() {
  local b brokers=(pgb pgc)
  [[ $2 == sqlite ]] && brokers=(sqlite)
  [[ $2 == pg1 ]] && brokers=(pga)
  for b in "${brokers[@]}"; do
    if ! kill -0 "${PID[$b]}" 2>/dev/null; then
      log "$1-$2 skipped: broker $b has exited: $(tail -1 "$TMP/$b.log")"
      echo "RESULT skipped tag=$1-$2 broker=$b" >>"$RESULTS"
      return 0
    fi
  done
  case $2 in
    sqlite) DB_DATA='' load_run "$1-sqlite" "$SEC" "${EP[sqlite]}" "$3" "${PID[sqlite]}" ;;
    pg1) DB_DATA=$PG_DIR/data load_run "$1-pg1" "$SEC" "${EP[pga]}" "$3" "${PID[pga]}" ;;
    pg2) DB_DATA=$PG_DIR/data load_run "$1-pg2" "$SEC" "${EP[pgb]},${EP[pgc]}" "$3" "${PID[pgb]} ${PID[pgc]}" ;;
  esac
}
# 4. Per mix: peak (closed loop), then p99 at half each configuration's median peak (open loop); order rotated.
for MIX in $MIXES; do
  if [[ $MIX == read ]]; then read -r -a CONFIG_LIST <<<"$CONFIGS_READ"; else read -r -a CONFIG_LIST <<<"$CONFIGS_WRITE"; fi
  NCONF=${#CONFIG_LIST[@]}
  log "mix $MIX: peak, $REPS reps of ${CONFIG_LIST[*]}, order rotated"
  for i in $(seq 1 "$REPS"); do
    for k in $(seq 0 $((NCONF - 1))); do config_run "peak-$MIX" "${CONFIG_LIST[(i - 1 + k) % NCONF]}" 0; done
  done
  [[ $HALF == 1 ]] || continue
  declare -A HALF_RATE=()
  for c in "${CONFIG_LIST[@]}"; do
    HALF_RATE[$c]=$("$PY" -c 'import sys,statistics
r=[float(l.split("rps=")[1].split()[0]) for l in open(sys.argv[1])
   if l.startswith("RESULT load") and l.rstrip().endswith("tag=" + sys.argv[2]) and " died=" not in l]
print(int(statistics.median(r)/2) if r else 0)' "$RESULTS" "peak-$MIX-$c")
    echo "RESULT half mix=$MIX config=$c rate=${HALF_RATE[$c]}" >>"$RESULTS"
  done
  log "mix $MIX: half of each peak: $(for c in "${CONFIG_LIST[@]}"; do printf '%s %s req/s; ' "$c" "${HALF_RATE[$c]}"; done)"
  for i in $(seq 1 "$REPS"); do
    for k in $(seq 0 $((NCONF - 1))); do
      c=${CONFIG_LIST[(i - 1 + k) % NCONF]}
      if (( HALF_RATE[$c] > 0 )); then config_run "half-$MIX" "$c" "${HALF_RATE[$c]}"; fi
    done
  done
done

# 5. Peak RSS of each broker, the stores' sizes after the runs, the machine's load at the end; the cluster goes.
for b in sqlite pga pgb pgc; do stop_broker "$b" "${TPID[$b]}" "${PID[$b]}"; done
db_sizes end
echo "RESULT end load1_end=$(load1) log_lines=$( { wc -l <"$TMP/operations.log"; } 2>/dev/null || echo 0)" >>"$RESULTS"
log "machine at the end: $(uptime)"
pg_stop

# 6. The table.
"$PY" - "$RESULTS" "$FILES" "$USERS" "$CLIENTS" "$RUN_SECONDS" "$REPS" "$CONFIGS_READ" "$CONFIGS_WRITE" "$MIXES" <<'EOF'
import sys, statistics
path, files, users, clients, secs, reps, configs_read, configs_write, mixes = sys.argv[1:]
files, users, mixes = int(files), int(users), mixes.split()
configs = {"read": configs_read.split(), "write": configs_write.split()}
rows = []
for line in open(path):
    if not line.startswith("RESULT "):
        continue
    parts = line.split()
    d = {"kind": parts[1]}
    d.update(kv.split("=", 1) for kv in parts[2:] if "=" in kv)
    rows.append(d)

def sel(kind, **kw):
    return [r for r in rows if r["kind"] == kind and all(r.get(k) == v for k, v in kw.items())]

def vals(rs, key):
    return [float(r[key]) for r in rs if key in r]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def rng(xs, fmt="{:.0f}"):
    return (fmt + ".." + fmt).format(min(xs), max(xs)) if xs else "-"

setup = (sel("setup") or [{}])[0]
pg = (sel("pg") or [{}])[0]
sec = "CurveZMQ" if setup.get("security") == "curve" else "plaintext"
print(f"\nzshare store benchmark: {files:,} files, {users:,} users, {clients} clients, {secs} s x {reps} per "
      f"configuration, medians [min..max]; brokers over {sec}; build {setup.get('build', '?')}")
print("PostgreSQL: " + " ".join(f"{k}={v}" for k, v in pg.items() if k != "kind"))
print(f"operations log: {setup.get('rpclog', '?')}" + (" (a zshare-rpclog receives every broker's records: "
      f"{(sel('end') or [{}])[0].get('log_lines', '?')} lines at the end)" if setup.get('rpclog') == 'on' else ""))
print(f"machine load average (1 min): {setup.get('load1_start', '?')} at the start, "
      f"{(sel('end') or [{}])[0].get('load1_end', '?')} at the end")

out = []
def row(*cells):
    out.append(tuple(str(c) for c in cells))

for tag, what in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
    s = sel("seed", tag=tag)
    if s:
        note = f"seed {what}: {float(s[0]['seconds']):.1f} s ({files / float(s[0]['seconds']):,.0f} files/s)"
        if tag == "pg" and sel("vacuum"):
            note += f", then VACUUM ANALYZE + CHECKPOINT {float(sel('vacuum')[0]['seconds']):.1f} s"
        if tag == "pg" and sel("copy"):
            note += f", a copy for pg2 (CREATE DATABASE ... TEMPLATE) {float(sel('copy')[0]['seconds']):.1f} s"
        print(note)
for tag, name in (("sqlite", "SQLite broker"), ("pga", "PostgreSQL broker A (pg1)"), ("pgb", "PostgreSQL broker B (pg2)"),
                  ("pgc", "PostgreSQL broker C (pg2)")):
    st = sel("stats", tag=tag)
    con = [r for r in rows if r["kind"] == "phase=connect" and r.get("tag") == tag]
    rss = sel("rss", tag=tag)
    if st:
        print(f"{name}: first start {float(st[0]['since_ms']) / 1000:.1f} s"
              + (f", CONNECT of {users:,} users {float(con[0]['seconds']):.1f} s ({float(con[0]['rate']):,.0f}/s, errors {con[0]['errors']})" if con else "")
              + (f", peak RSS {float(rss[0]['kb']) / 1024:.0f} MiB" if rss else ""))
for when in ("seeded", "end"):
    sz = {r["tag"]: float(r["bytes"]) for r in sel("dbsize", when=when)}
    if sz:
        print(f"on disk ({when}): " + ", ".join(f"{t} {b / 2**20:,.0f} MiB" for t, b in sorted(sz.items())))

names = {"sqlite": "SQLite, 1 broker", "pg1": "PostgreSQL, 1 broker", "pg2": "PostgreSQL, 2 brokers"}
header = ("mix", "configuration", "peak req/s", "broker CPU us/req", "postgres us/req", "broker+postgres us/req",
          "x SQLite", "p99 at half peak", "generator", "others", "errors")
verdicts, capacity = [], []
for mix in mixes:
    base = base_broker = None
    for c in configs[mix]:
        pk_all = sel("load", tag=f"peak-{mix}-{c}")
        hf_all = sel("load", tag=f"half-{mix}-{c}")
        # Runs in which a broker exited have no CPU figure and do not count; the row says how many were lost.
        pk = [r for r in pk_all if "died" not in r]
        hf = [r for r in hf_all if "died" not in r]
        lost = len(pk_all) - len(pk) + len(hf_all) - len(hf) + len(
            [r for r in sel("skipped") if r["tag"] in (f"peak-{mix}-{c}", f"half-{mix}-{c}")])
        if not pk:
            if lost:
                row(mix, names[c], "-", "-", "-", "-", "-", "-", "-", "-", f"a broker exited: {lost} runs lost")
            continue
        rps = vals(pk, "rps")
        bro = vals(pk, "server_cpu_us_per_req")
        db = vals(pk, "db_cpu_us_per_req")
        tot = vals(pk, "total_cpu_us_per_req") or bro
        if c == "sqlite":
            base, base_broker = med(tot), med(bro)
        ratio = med(tot) / base if base else float("nan")
        if c == "pg1" and base:
            verdicts.append((mix, ratio, med(bro) / base_broker))
            capacity.append((mix, med(bro), med(db)))
        p99 = vals(hf, "p99_us")
        half = sel("half", mix=mix, config=c)
        lag = med(vals(hf, "max_send_lag_us")) / 1000 if hf else 0
        errs = sum(vals(pk + hf, "errors")) + sum(vals(pk + hf, "unanswered"))
        row(mix, names[c], f"{med(rps):,.0f} [{rng(rps)}]", f"{med(bro):.1f} [{rng(bro, '{:.1f}')}]",
            f"{med(db):.1f} [{rng(db, '{:.1f}')}]" if db else "-", f"{med(tot):.1f} [{rng(tot, '{:.1f}')}]",
            f"{ratio:.2f}" if c != "sqlite" else "1",
            (f"{med(p99) / 1000:.2f} ms [{rng([p / 1000 for p in p99], '{:.2f}')}] at {half[0]['rate']}/s"
             + (" (generator late, not valid)" if lag > 10 else "")) if p99 else "-",
            f"{med(vals(pk, 'cpu_pct')):.0f}%", f"{med(vals(pk + hf, 'other_cpu_pct')):.0f}%",
            f"{errs:.0f}" + (f"; a broker exited: {lost} runs lost" if lost else ""))

widths = [max(len(r[i]) for r in out + [header]) for i in range(len(header))]
print()
print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
print("-" * (sum(widths) + 2 * len(widths)))
for r in out:
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
print("\nbroker CPU: every thread of the broker process(es); postgres: the cluster's processes; per request sent "
      "(warm-up included), over the generator's whole run. generator: its CPU, % of one core; others: the rest of "
      "the machine, % of both cores.")
for mix, ratio, broker_only in verdicts:
    print(f"target: PostgreSQL broker's server CPU per request (broker+postgres) within 2x of SQLite's, {mix} mix: "
          f"{ratio:.2f}x {'PASS' if ratio <= 2 else 'FAIL'} (broker only: {broker_only:.2f}x)")
for mix, bro, db in capacity:
    print(f"per core, {mix} mix: a PostgreSQL broker's CPU answers {1e6 / bro:,.0f} req/s"
          + (f", PostgreSQL's {1e6 / db:,.0f} req/s: N brokers on their own hosts serve about "
             f"min(N x {1e6 / bro:,.0f}, PostgreSQL cores x {1e6 / db:,.0f}) req/s" if db > 0.5 else
             ": PostgreSQL does next to nothing, so N brokers serve about N times one broker's rate"))
    if mix == "write":
        print("  but writes also pass one database-wide lock, one holder at a time, and every broker applies every "
              "write: however many brokers, the cluster commits about what one lock holder can (the 1- and 2-broker "
              "write peaks above), less across a network, where each round trip under the lock adds its latency")
EOF
