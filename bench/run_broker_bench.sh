#!/usr/bin/env bash
# run_broker_bench.sh: the broker benchmark end to end (GUIDE.md section 4): load the index, peak rate against the
# broker and a ROUTER echo in the same run, latency at half peak, peak RSS per indexed file, restart time, and the
# CurveZMQ cost (a Curve broker and a --plaintext one on copies of the same database, interleaved). Builds nothing.
# The brokers run over CurveZMQ (a keypair made in TMP; the load generator dials with --broker-key, a fresh client
# keypair per connection).
# The index is loaded by seeding the database directly (LOAD_PATH=seed: the bulk path, then the broker starts on it
# as after a restart) or through PUBLISH (LOAD_PATH=publish); either way every user is then CONNECTed, since SEARCH
# answers with online owners' files (the eDonkey model: a server indexes its connected clients' files).
# The echo is fair: the load draws from a pool of POOL requests, `calibrate` asks the broker each once, and the echo
# answers each request with the broker's reply to it (the same bytes), over the same security as the broker.
#
# Usage: bench/run_broker_bench.sh [BUILD_DIR]        (or ZSHARE_BUILD=DIR; default ./build)
# Knobs (environment): USERS=1000000 FILES=10000000 LOAD_PATH=seed CLIENTS=16 RUN_SECONDS=5 WARMUP=1 REPS=3
#   RESTARTS=3 POOL=50000 LIST_FRACTION=0.2 POP_CLIENTS=4 POP_WINDOW=128 BROKER_ARGS="" KEEP_TMP=0 TMPDIR=/tmp
#   CURVE=1 (0: sections 1-6 run a --plaintext broker) CURVE_COST=1 (0: skip the CurveZMQ cost section)
# Quick run: FILES=100000 USERS=10000 bench/run_broker_bench.sh build-bench
set -euo pipefail

BUILD=${1:-${ZSHARE_BUILD:-./build}}
USERS=${USERS:-1000000}
FILES=${FILES:-10000000}
LOAD_PATH=${LOAD_PATH:-seed}
POOL=${POOL:-50000}
CLIENTS=${CLIENTS:-16}
RUN_SECONDS=${RUN_SECONDS:-5}
WARMUP=${WARMUP:-1}
REPS=${REPS:-3}
RESTARTS=${RESTARTS:-3}
LIST_FRACTION=${LIST_FRACTION:-0.2}
POP_CLIENTS=${POP_CLIENTS:-4}
POP_WINDOW=${POP_WINDOW:-128}
BROKER_ARGS=${BROKER_ARGS:-}
KEEP_TMP=${KEEP_TMP:-0}
CURVE=${CURVE:-1}
CURVE_COST=${CURVE_COST:-1}
TIME=/usr/bin/time
PY=/usr/bin/python3

LOAD=$BUILD/bench/zshare-bench-load
BROKER=$BUILD/broker/zshare-broker
for exe in "$LOAD" "$BROKER"; do
  [[ -x $exe ]] || { echo "missing $exe: build it first (cmake --build $BUILD --target $(basename "$exe"))" >&2; exit 2; }
done
if [[ ! -x $TIME ]]; then
  echo "installing GNU time (/usr/bin/time)" >&2
  apt-get install -y time >/dev/null || { echo "need /usr/bin/time: apt-get install time" >&2; exit 2; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zshare-bench.XXXXXX")
RESULTS=$TMP/results.txt
: >"$RESULTS"
STARTED=()  # pids we started: /usr/bin/time wrappers (the broker is their child) and the echo server

. "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"  # cleanup, free_ports
. "$(dirname "${BASH_SOURCE[0]}")/broker_lib.sh"  # start_broker, wait_ready, stop_broker, load_run, connect_users
trap cleanup EXIT
trap 'exit 130' INT TERM

# The brokers' CurveZMQ keypair (broker.key, 0600) and its public half (broker.pub), for every Curve broker here.
"$BROKER" keygen --key "$TMP/broker.key" >/dev/null || { echo "zshare-broker keygen failed" >&2; exit 1; }
BROKER_PUB=$TMP/broker.pub
MAIN=curve  # the security of the brokers in sections 1-6: curve or plain
[[ $CURVE == 1 ]] || MAIN=plain

# calibrate: the canned replies of the echo, each pool request asked once of the last started broker.
calibrate() {
  dial "$BROKER_SEC"
  "$LOAD" calibrate --connect "$BROKER_EP" "${DIAL[@]}" --users "$USERS" --list-fraction "$LIST_FRACTION" \
    --pool "$POOL" --out "$TMP/canned.bin" | tee -a "$RESULTS" >&2 || { echo "calibrate failed" >&2; exit 1; }
}

# start_echo NAME SECURITY: the echo with the canned replies, over SECURITY (curve: the brokers' keypair); sets
# ECHO_EP and ECHO_PID.
start_echo() {
  local key=()
  [[ $2 == curve ]] && key=(--key "$TMP/broker.key")
  read -r ECHO_PORT < <(free_ports 1)
  ECHO_EP=tcp://127.0.0.1:$ECHO_PORT
  "$LOAD" echo --bind "$ECHO_EP" --replies "$TMP/canned.bin" "${key[@]}" --max-seconds 7200 >"$TMP/$1.log" 2>&1 &
  ECHO_PID=$!
  STARTED+=("$ECHO_PID")
  for _ in $(seq 1 300); do grep -q 'bound to' "$TMP/$1.log" 2>/dev/null && break; sleep 0.05; done
  grep -q 'bound to' "$TMP/$1.log" || { echo "echo $1 did not start:" >&2; cat "$TMP/$1.log" >&2; exit 1; }
}

log "files=$FILES users=$USERS load=$LOAD_PATH clients=$CLIENTS run=${RUN_SECONDS}s x$REPS pool=$POOL, brokers $MAIN, tmp $TMP"
echo "RESULT setup security=$MAIN" >>"$RESULTS"

# 1. An empty broker, measured the way the full one is: start, STATS, a short load, SIGTERM, peak RSS.
start_broker empty "$TMP/empty.db" "$MAIN"
wait_ready empty 60 >/dev/null
load_run empty-load "$MAIN" "$BROKER_EP" 0 "$BROKER_PID" 2
stop_broker empty

# 2. The full broker: load the index (seed the database, then start on it; or PUBLISH every file), check the
# count, connect every user. (Over Curve every user belongs to the populate run's one key; seeded users to none.)
if [[ $LOAD_PATH == seed ]]; then
  log "seeding $USERS users, $FILES files into the database"
  "$LOAD" seed --db "$TMP/bench.db" --users "$USERS" --files "$FILES" | tee -a "$RESULTS" >&2 \
    || { echo "seed failed" >&2; exit 1; }
  start_broker full "$TMP/bench.db" "$MAIN"
  line=$(wait_ready full-start 600)
  log "the seeded broker answered STATS after $(kv "$line" since_ms) ms"
  connect_users full
else
  start_broker full "$TMP/bench.db" "$MAIN"
  wait_ready full 60 >/dev/null
  log "populating $USERS users, $FILES files"
  dial "$MAIN"
  "$LOAD" populate --connect "$BROKER_EP" "${DIAL[@]}" --users "$USERS" --files "$FILES" --clients "$POP_CLIENTS" \
    --window "$POP_WINDOW" | tee -a "$RESULTS" >&2 || { echo "populate failed" >&2; tail -5 "$TMP/full.log" >&2; exit 1; }
fi
line=$(wait_ready after-populate 60)
[[ $(kv "$line" files) == "$FILES" ]] || log "WARNING: STATS after loading says files=$(kv "$line" files), expected $FILES"
[[ $(kv "$line" connected) == "$USERS" ]] || log "WARNING: STATS says connected=$(kv "$line" connected), expected $USERS"

# 3. Peak rate (closed loop), broker and echo interleaved in the same run; the echo answers with the broker's own
# replies (calibrate), over the same security.
calibrate
start_echo echo "$MAIN"
for i in $(seq 1 "$REPS"); do
  load_run peak-broker "$MAIN" "$BROKER_EP" 0 "$BROKER_PID"
  load_run peak-echo "echo-$MAIN" "$ECHO_EP" 0 "$ECHO_PID"
done

# 4. Latency at half the broker's median peak rate (open loop), and the echo at the same rate.
HALF=$("$PY" -c 'import sys,statistics
r=[float(l.split("rps=")[1].split()[0]) for l in open(sys.argv[1]) if l.startswith("RESULT load") and "tag=peak-broker" in l]
print(int(statistics.median(r)/2))' "$RESULTS")
echo "RESULT half rate=$HALF" >>"$RESULTS"
log "half of the broker's peak: $HALF req/s"
if (( HALF > 0 )); then
  for i in $(seq 1 "$REPS"); do
    load_run half-broker "$MAIN" "$BROKER_EP" "$HALF" "$BROKER_PID"
    load_run half-echo "echo-$MAIN" "$ECHO_EP" "$HALF" "$ECHO_PID"
  done
fi
kill -TERM "$ECHO_PID" 2>/dev/null || true
wait "$ECHO_PID" 2>/dev/null || true

# 5. Peak RSS of the full broker, database size.
stop_broker full
DB_BYTES=$(du -cb "$TMP"/bench.db* | tail -1 | cut -f1)
echo "RESULT db bytes=$DB_BYTES" >>"$RESULTS"

# 6. Restart on the same database: time from launch until STATS is answered; its RSS after a short load.
for i in $(seq 1 "$RESTARTS"); do
  start_broker "restart$i" "$TMP/bench.db" "$MAIN"
  line=$(wait_ready "restart$i" 600)
  log "restart $i answered STATS after $(kv "$line" since_ms) ms with files=$(kv "$line" files)"
  [[ $(kv "$line" files) == "$FILES" ]] || log "WARNING: files=$(kv "$line" files) after restart, expected $FILES"
  if (( i == 1 )); then load_run restart-load "$MAIN" "$BROKER_EP" 0 "$BROKER_PID" 2; fi
  stop_broker "restart$i"
done

# 7. CurveZMQ cost: a Curve broker and a --plaintext broker, each on its own copy of the populated database (so
# both start from the same state and neither sees the other's writes), both up at once, and the echo again (the
# like-for-like baseline of the plaintext broker); peak closed-loop rate and server CPU per request, the order
# rotating every rep so drift on the host hits all three alike.
if [[ $CURVE_COST == 1 ]]; then
  for f in "$TMP"/bench.db*; do
    cp "$f" "${f/bench.db/cost-curve.db}"
    cp "$f" "${f/bench.db/cost-plain.db}"
  done
  start_broker cost-curve "$TMP/cost-curve.db" curve
  wait_ready cost-curve 600 >/dev/null
  connect_users cost-curve
  CC_EP=$BROKER_EP CC_PID=$BROKER_PID CC_TPID=$BROKER_TPID
  start_broker cost-plain "$TMP/cost-plain.db" plain
  wait_ready cost-plain 600 >/dev/null
  connect_users cost-plain
  CP_EP=$BROKER_EP CP_PID=$BROKER_PID CP_TPID=$BROKER_TPID
  start_echo cost-echo plain
  log "CurveZMQ cost: Curve broker $CC_EP, plaintext broker $CP_EP (copies of the same database), echo $ECHO_EP"
  cost_run() {
    case $1 in
      curve) load_run cost-curve curve "$CC_EP" 0 "$CC_PID" ;;
      plain) load_run cost-plain plain "$CP_EP" 0 "$CP_PID" ;;
      echo) load_run cost-echo echo-plain "$ECHO_EP" 0 "$ECHO_PID" ;;
    esac
  }
  ORDER=(curve plain echo)
  for i in $(seq 1 "$REPS"); do
    for k in 0 1 2; do cost_run "${ORDER[(i - 1 + k) % 3]}"; done
  done
  kill -TERM "$ECHO_PID" 2>/dev/null || true
  wait "$ECHO_PID" 2>/dev/null || true
  stop_broker cost-curve "$CC_TPID" "$CC_PID"
  stop_broker cost-plain "$CP_TPID" "$CP_PID"
fi

# 8. The table.
"$PY" - "$RESULTS" "$FILES" "$USERS" "$CLIENTS" "$RUN_SECONDS" "$REPS" "$LIST_FRACTION" <<'EOF'
import sys, statistics
path, files, users, clients, secs, reps, listf = sys.argv[1:]
files = int(files)
rows = []
for line in open(path):
    if not line.startswith("RESULT "):
        continue
    parts = line.split()
    d = {"kind": parts[1]}
    d.update(kv.split("=", 1) for kv in parts[2:] if "=" in kv)
    rows.append(d)

def sel(kind, tag=None, **kw):
    return [r for r in rows if r["kind"] == kind and (tag is None or r.get("tag") == tag)
            and all(r.get(k) == v for k, v in kw.items())]

def vals(rs, key):
    return [float(r[key]) for r in rs if key in r]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def spread(xs):
    if not xs:
        return "-"
    m = med(xs)
    rel = (max(xs) - min(xs)) / m * 100 if m else 0
    return f"{min(xs):.0f}..{max(xs):.0f} ({rel:.0f}%)"

out = []
def row(metric, value, note="", target=""):
    out.append((metric, value, note, target))

setup = sel("setup")
sec = setup[0]["security"] if setup else "curve"
bname = "Curve broker" if sec == "curve" else "plaintext broker"
pop, seed = sel("populate"), sel("seed")
if pop:
    p = pop[0]
    row(f"load {files:,} files / {int(users):,} users", f"{float(p['seconds']):.1f} s",
        f"publish {float(p['files_per_s']):.0f} files/s, errors {p['errors']}")
if seed:
    first = sel("stats", "full-start")
    row(f"load {files:,} files / {int(users):,} users", f"{float(seed[0]['seconds']):.1f} s",
        "bulk: written straight into the database" + (f", then the broker's first start {float(first[0]['since_ms'])/1000:.1f} s" if first else ""))
con = [r for r in rows if r["kind"] == "phase=connect" and r.get("tag") == "full"]
if con:
    row(f"connect {int(users):,} users (CONNECT)", f"{float(con[0]['seconds']):.1f} s", f"{float(con[0]['rate']):.0f}/s, errors {con[0]['errors']}")
cal = sel("calibrate")
if cal:
    row("echo's canned replies", f"{cal[0]['pool']} requests", f"avg {cal[0]['avg_reply_bytes']} B: the broker's own replies to the pool, asked once")
pb, pe = sel("load", "peak-broker"), sel("load", "peak-echo")
rb, re_ = vals(pb, "rps"), vals(pe, "rps")
def lagnote(rs):
    lag = med(vals(rs, "max_send_lag_us")) / 1000
    return f", generator late by {lag:.1f} ms at worst" + (" (STARVED: not valid)" if lag > 10 else "")
row(f"peak {bname} (closed loop)", f"{med(rb):.0f} req/s", f"spread {spread(rb)}, p50/p99 {med(vals(pb,'p50_us'))/1000:.2f}/{med(vals(pb,'p99_us'))/1000:.2f} ms")
row(f"peak echo (closed loop, {'Curve' if sec == 'curve' else 'plaintext'})", f"{med(re_):.0f} req/s", f"spread {spread(re_)}, p50/p99 {med(vals(pe,'p50_us'))/1000:.2f}/{med(vals(pe,'p99_us'))/1000:.2f} ms; answers with the broker's replies")
ratio = med(rb) / med(re_) if re_ and med(re_) else float("nan")
pair = [b / e for b, e in zip(rb, re_) if e]
row(f"ratio {bname}/echo", f"{ratio:.2f}",
    (f"per-rep {min(pair):.2f}..{max(pair):.2f}" if pair else "") + "; same reply bytes, same security",
    ("PASS" if ratio >= 0.7 else "FAIL") + " >= 0.7")
hb, he = sel("load", "half-broker"), sel("load", "half-echo")
half = sel("half")
if hb:
    p99 = vals(hb, "p99_us")
    row(f"{bname} at half peak ({half[0]['rate']} req/s)", f"p50 {med(vals(hb,'p50_us'))/1000:.2f} ms, p99 {med(p99)/1000:.2f} ms",
        f"p99 spread {min(p99)/1000:.2f}..{max(p99)/1000:.2f} ms, got {med(vals(hb,'rps')):.0f} req/s, unanswered {sum(vals(hb,'unanswered')):.0f}" + lagnote(hb),
        ("PASS" if med(p99) <= 2000 else "FAIL") + " p99 <= 2 ms")
if he:
    row("echo at the same rate", f"p50 {med(vals(he,'p50_us'))/1000:.2f} ms, p99 {med(vals(he,'p99_us'))/1000:.2f} ms",
        f"got {med(vals(he,'rps')):.0f} req/s" + lagnote(he))
empty = sel("rss", "empty")
full = sel("rss", "full")
restarts = [r for r in sel("rss") if r["tag"].startswith("restart")]
ekb = float(empty[0]["kb"]) if empty else 0
if full:
    fkb = float(full[0]["kb"])
    bpf = (fkb - ekb) * 1024 / files if files else float("nan")
    row("peak RSS full / empty broker", f"{fkb/1024:.0f} / {ekb/1024:.1f} MiB", "whole run: populate + loads")
    row("RSS bytes per indexed file", f"{bpf:.0f} B", "(peak full - peak empty) / files; every user connected",
        ("PASS" if bpf <= 300 else "FAIL") + " <= 300 B")
if restarts:
    rkb = med([float(r["kb"]) for r in restarts])
    row("  after restart (index only)", f"{(rkb - ekb) * 1024 / files:.0f} B", f"peak RSS {rkb/1024:.0f} MiB, median of {len(restarts)}")
rs = [r for r in sel("stats") if r.get("tag", "").startswith("restart")]
if rs:
    t = vals(rs, "since_ms")
    row(f"restart with {files:,} files", f"{med(t)/1000:.2f} s", f"launch -> STATS answered, {min(t)/1000:.2f}..{max(t)/1000:.2f} s over {len(t)}",
        ("PASS" if med(t) <= 30000 else "FAIL") + " <= 30 s")
db = sel("db")
if db:
    row("database on disk", f"{float(db[0]['bytes'])/2**20:.0f} MiB", f"{float(db[0]['bytes'])/files:.0f} B per file")
loads = pb + pe + hb + he + sel("load", "cost-curve") + sel("load", "cost-plain") + sel("load", "cost-echo")
if pb:
    row("mix / replies", f"SEARCH avg {med(vals(pb,'search_avg_results')):.1f} results", f"LIST_CONTENT avg {med(vals(pb,'list_avg_files')):.1f} files, list fraction {listf}")
    row("generator CPU (broker / echo runs)", f"{med(vals(pb,'cpu_pct')):.0f}% / {med(vals(pe,'cpu_pct')):.0f}%", "of one core, closed loop")
    cb, ce = med(vals(pb, "server_cpu_us_per_req")), med(vals(pe, "server_cpu_us_per_req"))
    row("server CPU per request broker / echo", f"{cb:.0f} / {ce:.0f} us",
        f"echo/broker = {ce / cb:.2f} (noise-resistant); both threads of each, transport included" if cb else "",
        ("PASS" if cb <= 12 else "FAIL") + " broker <= 12 us")
cc, cp = sel("load", "cost-curve"), sel("load", "cost-plain")
if cc and cp:
    rc, rp = vals(cc, "rps"), vals(cp, "rps")
    row("CurveZMQ cost: peak Curve broker", f"{med(rc):.0f} req/s",
        f"spread {spread(rc)}, p50/p99 {med(vals(cc,'p50_us'))/1000:.2f}/{med(vals(cc,'p99_us'))/1000:.2f} ms")
    row("  peak plaintext broker", f"{med(rp):.0f} req/s",
        f"spread {spread(rp)}, p50/p99 {med(vals(cp,'p50_us'))/1000:.2f}/{med(vals(cp,'p99_us'))/1000:.2f} ms; same db (copies), order rotated each rep")
    cpair = [c / p for c, p in zip(rc, rp) if p]
    row("  ratio Curve/plaintext req/s", f"{med(rc) / med(rp):.2f}" if med(rp) else "-",
        f"per-rep {min(cpair):.2f}..{max(cpair):.2f}" if cpair else "")
    uc, up = vals(cc, "server_cpu_us_per_req"), vals(cp, "server_cpu_us_per_req")
    upair = [c / p for c, p in zip(uc, up) if p]
    row("  server CPU per request Curve / plaintext", f"{med(uc):.0f} / {med(up):.0f} us",
        (f"ratio {med(uc) / med(up):.2f}, per-rep {min(upair):.2f}..{max(upair):.2f}" if med(up) and upair else "")
        + " (noise-resistant)")
    row("  generator CPU Curve / plaintext runs", f"{med(vals(cc,'cpu_pct')):.0f}% / {med(vals(cp,'cpu_pct')):.0f}%",
        "of one core; the generator encrypts too")
    kc, kp = sel("rss", "cost-curve"), sel("rss", "cost-plain")
    if kc and kp:
        row("  peak RSS Curve / plaintext broker", f"{float(kc[0]['kb'])/1024:.0f} / {float(kp[0]['kb'])/1024:.0f} MiB", "restarted on the copies, then loaded")
    ce_ = sel("load", "cost-echo")
    rce = vals(ce_, "rps")
    if rce and med(rce):
        epair = [p / e for p, e in zip(rp, rce) if e]
        row("  peak echo (plaintext), same reps", f"{med(rce):.0f} req/s", f"spread {spread(rce)}")
        row("ratio plaintext broker/echo", f"{med(rp) / med(rce):.2f}",
            f"like for like; per-rep {min(epair):.2f}..{max(epair):.2f}" if epair else "like for like",
            ("PASS" if med(rp) / med(rce) >= 0.7 else "FAIL") + " >= 0.7")
oc = vals(loads, "other_cpu_pct")
if oc:
    row("other processes' CPU during runs", f"{med(oc):.0f}% of the machine", f"max {max(oc):.0f}% (noise from the shared host)")
errs = sum(vals(loads, "errors")) + sum(vals(loads, "unanswered"))
row("errors + unanswered in load runs", f"{errs:.0f}")

w0 = max(len(r[0]) for r in out); w1 = max(len(r[1]) for r in out); w2 = max(len(r[2]) for r in out)
print(f"\nzshare broker benchmark: {files:,} files, {int(users):,} users, {clients} clients, {secs} s x {reps}, median and min..max;"
      f" brokers over {'CurveZMQ' if sec == 'curve' else 'plaintext'}, the echo over the same")
print(f"{'metric':<{w0}}  {'value':<{w1}}  {'spread / note':<{w2}}  target")
print("-" * (w0 + w1 + w2 + 20))
for m, v, n, t in out:
    print(f"{m:<{w0}}  {v:<{w1}}  {n:<{w2}}  {t}")
EOF
