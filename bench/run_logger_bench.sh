#!/usr/bin/env bash
# run_logger_bench.sh: what the operations logger costs the broker (GUIDE.md section 4: the logger off is the
# baseline, measured in the same run). A mutation-heavy load (zshare-bench-load populate: REGISTER, CONNECT, then
# PUBLISH from CLIENTS pipelined DEALER clients) against a fresh broker with `--rpclog none` (off) and a fresh
# broker shipping to a fresh zshare-rpclog (on), alternated REPS times (order flipped every rep so drift on the
# shared host hits both). After every "on" run the log must hold exactly one line per acknowledged mutation (waited
# for, with a deadline, by the log file's line count). Then zshare-bench-timesvc: requests/s and p99 of the time
# service with 8 concurrent keep-alive clients (in-process service against a raw-TCP baseline, and the real
# zshare-timesvc daemon). Prints one table. Loopback only, fresh temp dirs, every wait bounded, cleanup on exit.
#
# Usage: bench/run_logger_bench.sh            (ZSHARE_BUILD=DIR, default build-release; configured and the needed
#                                              targets built there, Release, -j2, when missing)
# Knobs (environment): REPS=5 USERS=2000 FILES=60000 CLIENTS=8 WINDOW=16 DRAIN_DEADLINE=120 TS_CLIENTS=8
#   TS_RUNS=3 TS_REQUESTS=20000 KEEP_TMP=0 TMPDIR=/tmp
# Target: on/off >= 0.9 (median files/s of PUBLISH).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${ZSHARE_BUILD:-build-release}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
REPS=${REPS:-5}
USERS=${USERS:-2000}
FILES=${FILES:-60000}
CLIENTS=${CLIENTS:-8}
WINDOW=${WINDOW:-16}
DRAIN_DEADLINE=${DRAIN_DEADLINE:-120}
TS_CLIENTS=${TS_CLIENTS:-8}
TS_RUNS=${TS_RUNS:-3}
TS_REQUESTS=${TS_REQUESTS:-20000}
KEEP_TMP=${KEEP_TMP:-0}
PY=/usr/bin/python3

LOAD=$BUILD/bench/zshare-bench-load
BROKER=$BUILD/broker/zshare-broker
RPCLOG=$BUILD/rpclog/zshare-rpclog
TSBENCH=$BUILD/timesvc/zshare-bench-timesvc
TIMESVC=$BUILD/timesvc/zshare-timesvc

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---- build what is missing (Release) ----
missing=()
for exe in "$LOAD" "$BROKER" "$RPCLOG" "$TSBENCH" "$TIMESVC"; do [[ -x $exe ]] || missing+=("$(basename "$exe")"); done
if (( ${#missing[@]} )); then
  log "building ${missing[*]} in $BUILD (Release)"
  # (Re)configure first: a build dir configured before a target existed has no rule for it yet.
  if [[ -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" >&2 || die "configure $BUILD"
  else
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2 || die "configure $BUILD"
  fi
  cmake --build "$BUILD" -j2 --target "${missing[@]}" >&2 || die "build ${missing[*]}"
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[[ $build_type == Release ]] || log "WARNING: $BUILD is a '${build_type:-?}' build, not Release: figures are not comparable"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zshare-logger-bench.XXXXXX")
RESULTS=$TMP/results.txt
: >"$RESULTS"
STARTED=()  # pids of the daemons we started (broker, rpclog, timesvc)

cleanup() {
  local p
  for p in "${STARTED[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for p in "${STARTED[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    wait "$p" 2>/dev/null || true
  done
  if [[ $KEEP_TMP == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { grep -o "\b$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2; }  # kv LINE KEY
# wait_line FILE SED_EXPR PID NAME: waits (15 s at most) until sed -n SED_EXPR prints something from FILE, which
# PID (a daemon we started) writes; echoes it.
wait_line() {
  local file=$1 expr=$2 pid=$3 name=$4 got deadline=$((SECONDS + 15))
  while :; do
    got=$(sed -n "$expr" "$file" 2>/dev/null | head -1)
    [[ -n $got ]] && { echo "$got"; return 0; }
    kill -0 "$pid" 2>/dev/null || die "$name exited: $(cat "$file")"
    (( SECONDS < deadline )) || die "$name did not say where it listens within 15 s: $(cat "$file")"
    sleep 0.05
  done
}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # user+system of one process
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }  # the whole machine
lines_of() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
STOP_RC=0
stop_pid() {  # stop_pid PID NAME: SIGTERM, wait up to 60 s, then SIGKILL; sets STOP_RC (no subshell: it must reap)
  local p=$1 rc=0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then log "$2 still running 60 s after SIGTERM: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
  wait "$p" 2>/dev/null || rc=$?
  STOP_RC=$rc
  local keep=() x
  for x in "${STARTED[@]}"; do [[ $x == "$p" ]] || keep+=("$x"); done
  STARTED=("${keep[@]}")  # reaped: never signal that pid again (it may belong to someone else by now)
}

# one_run MODE REP: a fresh broker (and logger when MODE=on), populate, verify the log, stop; appends a RESULT line.
one_run() {
  local mode=$1 rep=$2 dir=$TMP/$1-$2 r ep rpclog_arg=none rpclog_pid='' broker_pid out line acked b0 b1 w0 w1
  local bt0 bt1 lt0=0 lt1=0 drain_ms=-1 lines=0 verdict=n/a rc_b rc_l=0 deadline other
  mkdir -p "$dir"
  # Every daemon binds port 0 (any free port) and says which it got: no race with other users of the host.
  if [[ $mode == on ]]; then
    "$RPCLOG" --bind 127.0.0.1 --port 0 --log "$dir/operations.log" >/dev/null 2>"$dir/rpclog.err" &
    rpclog_pid=$!
    STARTED+=("$rpclog_pid")
    r=$(wait_line "$dir/rpclog.err" 's/.* on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$rpclog_pid" zshare-rpclog)
    rpclog_arg=127.0.0.1:$r
  fi
  # --rate-limit 0: each pipelined DEALER client publishes far above the default per-client limit (2000/s)
  "$BROKER" --bind "tcp://127.0.0.1:*" --events "tcp://127.0.0.1:*" --db "$dir/broker.db" --rpclog "$rpclog_arg" \
    --rate-limit 0 >/dev/null 2>"$dir/broker.err" &
  broker_pid=$!
  STARTED+=("$broker_pid")
  ep=$(wait_line "$dir/broker.err" 's/.*control \(tcp:[^,]*\),.*/\1/p' "$broker_pid" zshare-broker)
  "$LOAD" stats --connect "$ep" --timeout 30 >/dev/null || die "broker ($mode) did not answer STATS: $(tail -5 "$dir/broker.err")"

  bt0=$(cpu_ticks "$broker_pid"); [[ -n $rpclog_pid ]] && lt0=$(cpu_ticks "$rpclog_pid")
  b0=$(busy_ticks); w0=$(date +%s%N)
  out=$(/usr/bin/time -f "GEN user=%U sys=%S" "$LOAD" populate --connect "$ep" --users "$USERS" \
    --files "$FILES" --clients "$CLIENTS" --window "$WINDOW" --phase-timeout 600 2>&1) || { echo "$out" >&2; die "populate ($mode rep $rep)"; }
  w1=$(date +%s%N); b1=$(busy_ticks)
  bt1=$(cpu_ticks "$broker_pid"); [[ -n $rpclog_pid ]] && lt1=$(cpu_ticks "$rpclog_pid")
  line=$(grep '^RESULT populate' <<<"$out") || { echo "$out" >&2; die "no RESULT from populate"; }
  # Mutations acknowledged: the OK answers of the three phases (USERNAME IN USE & co. change nothing, log nothing).
  acked=0
  while read -r l; do acked=$((acked + $(kv "$l" ok))); done < <(grep '^RESULT phase=' <<<"$out")
  local gen
  gen=$("$PY" -c 'import sys; print(int((float(sys.argv[1]) + float(sys.argv[2])) * int(sys.argv[3])))' \
    "$(grep -o 'user=[0-9.]*' <<<"$out" | cut -d= -f2)" "$(grep -o 'sys=[0-9.]*' <<<"$out" | cut -d= -f2)" "$CLK_TCK")
  other=$(( (b1 - b0 - (bt1 - bt0) - (lt1 - lt0) - gen) * 100 * 1000000000 / CLK_TCK / (w1 - w0) / NCPU ))

  if [[ $mode == on ]]; then
    # The outbox drains asynchronously: wait (bounded) until the log has one line per acknowledged mutation.
    local start_ns
    start_ns=$(date +%s%N)
    deadline=$((SECONDS + DRAIN_DEADLINE))
    while :; do
      lines=$(lines_of "$dir/operations.log")
      (( lines >= acked )) && break
      (( SECONDS < deadline )) || break
      sleep 0.05
    done
    drain_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
    # A record sent twice would show up as a line too many: look again after a short settle (bounded, 0.5 s).
    sleep 0.5
    lines=$(lines_of "$dir/operations.log")
    if (( lines == acked )); then verdict=exact; else verdict=MISMATCH; fi
    [[ $verdict == exact ]] || log "log of $mode rep $rep holds $lines lines for $acked acknowledged mutations"
  fi
  stop_pid "$broker_pid" broker; rc_b=$STOP_RC
  if [[ -n $rpclog_pid ]]; then stop_pid "$rpclog_pid" rpclog; rc_l=$STOP_RC; fi
  echo "RESULT run mode=$mode rep=$rep files_per_s=$(kv "$line" files_per_s) seconds=$(kv "$line" seconds)" \
       "publish_seconds=$(kv "$line" publish_seconds) acked=$acked errors=$(kv "$line" errors)" \
       "unanswered=$(kv "$line" unanswered) log_lines=$lines verdict=$verdict drain_ms=$drain_ms" \
       "broker_cpu_us_per_mut=$(( acked > 0 ? (bt1 - bt0) * 1000000 / CLK_TCK / acked : 0 ))" \
       "rpclog_cpu_us_per_mut=$(( acked > 0 ? (lt1 - lt0) * 1000000 / CLK_TCK / acked : 0 ))" \
       "other_cpu_pct=$(( other < 0 ? 0 : other )) exit_broker=$rc_b exit_rpclog=$rc_l" >>"$RESULTS"
  log "$mode rep $rep: $(kv "$line" files_per_s) files/s, $acked mutations in $(kv "$line" seconds) s," \
      "log $verdict${lines:+ ($lines lines)}, drain ${drain_ms} ms, others $(( other < 0 ? 0 : other ))%"
}

log "logger bench: $USERS users, $FILES files, $CLIENTS clients x window $WINDOW, $REPS reps per mode; tmp $TMP"
for rep in $(seq 1 "$REPS"); do
  if (( rep % 2 )); then order=(off on); else order=(on off); fi
  for mode in "${order[@]}"; do one_run "$mode" "$rep"; done
done

# ---- the time service: 8 concurrent keep-alive clients ----
log "time service: $TS_CLIENTS clients x $TS_REQUESTS requests, $TS_RUNS runs (in-process service + raw TCP baseline)"
"$TSBENCH" --clients "$TS_CLIENTS" --requests "$TS_REQUESTS" --seconds 20 --runs "$TS_RUNS" >"$TMP/ts-inproc.txt" 2>&1 \
  || log "zshare-bench-timesvc (in-process) failed: $(tail -3 "$TMP/ts-inproc.txt")"
cat "$TMP/ts-inproc.txt" >&2
"$TIMESVC" --bind 127.0.0.1 --port 0 >"$TMP/timesvc.out" 2>&1 &
TS_PID=$!
STARTED+=("$TS_PID")
TS_URL=$(wait_line "$TMP/timesvc.out" 's/.*listening on \(http:[^ ]*\).*/\1/p' "$TS_PID" zshare-timesvc)
log "time service: the zshare-timesvc daemon (default options) at $TS_URL"
"$TSBENCH" --url "$TS_URL" --clients "$TS_CLIENTS" --requests "$TS_REQUESTS" --seconds 20 --runs "$TS_RUNS" \
  --no-baseline >"$TMP/ts-daemon.txt" 2>&1 || log "zshare-bench-timesvc (daemon) failed: $(tail -3 "$TMP/ts-daemon.txt")"
cat "$TMP/ts-daemon.txt" >&2
stop_pid "$TS_PID" timesvc
[[ $STOP_RC == 0 ]] || log "zshare-timesvc exited with status $STOP_RC"

# ---- the table ----
"$PY" - "$RESULTS" "$TMP/ts-inproc.txt" "$TMP/ts-daemon.txt" "$USERS" "$FILES" "$CLIENTS" "$WINDOW" "$REPS" "$TS_CLIENTS" <<'EOF'
import re, statistics, sys
path, ts_inproc, ts_daemon, users, files, clients, window, reps, ts_clients = sys.argv[1:]
runs = []
for line in open(path):
    if line.startswith("RESULT run "):
        runs.append(dict(kv.split("=", 1) for kv in line.split()[2:]))

def vals(mode, key):
    return [float(r[key]) for r in runs if r["mode"] == mode]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def spread(xs):
    if not xs:
        return "-"
    m = med(xs)
    return f"{min(xs):.0f}..{max(xs):.0f} ({(max(xs) - min(xs)) / m * 100 if m else 0:.0f}%)"

rows = []
def row(metric, value, note="", target=""):
    rows.append((metric, value, note, target))

off, on = vals("off", "files_per_s"), vals("on", "files_per_s")
row("PUBLISH, logger off (--rpclog none)", f"{med(off):.0f} files/s", f"spread {spread(off)}; runs {' '.join(f'{x:.0f}' for x in off)}")
row("PUBLISH, logger on (zshare-rpclog)", f"{med(on):.0f} files/s", f"spread {spread(on)}; runs {' '.join(f'{x:.0f}' for x in on)}")
ratio = med(on) / med(off) if off and med(off) else float("nan")
pairs = {}
for r in runs:
    pairs.setdefault(r["rep"], {})[r["mode"]] = float(r["files_per_s"])
per_rep = [p["on"] / p["off"] for p in pairs.values() if "on" in p and "off" in p and p["off"]]
row("ratio on/off (median files/s)", f"{ratio:.2f}",
    f"per rep (paired, same rep) {' '.join(f'{x:.2f}' for x in per_rep)}, median {med(per_rep):.2f}" if per_rep else "",
    ("PASS" if ratio >= 0.9 else "FAIL") + " >= 0.9")
muts = lambda m: [float(r["acked"]) / float(r["seconds"]) for r in runs if r["mode"] == m and float(r["seconds"]) > 0]
row("all mutations (REGISTER+CONNECT+PUBLISH) off / on", f"{med(muts('off')):.0f} / {med(muts('on')):.0f} /s",
    f"ratio {med(muts('on')) / med(muts('off')):.2f}" if muts("off") else "")
cb_off, cb_on = vals("off", "broker_cpu_us_per_mut"), vals("on", "broker_cpu_us_per_mut")
cl_on = vals("on", "rpclog_cpu_us_per_mut")
row("broker CPU per mutation off / on", f"{med(cb_off):.0f} / {med(cb_on):.0f} us",
    f"+ zshare-rpclog {med(cl_on):.0f} us on; CPU-based ratio off/(on+logger) "
    f"{med(cb_off) / (med(cb_on) + med(cl_on)):.2f} (noise-resistant)" if cb_on and med(cb_on) + med(cl_on) else "")
on_runs = [r for r in runs if r["mode"] == "on"]
exact = sum(1 for r in on_runs if r["verdict"] == "exact")
row("log lines == acknowledged mutations", f"{exact}/{len(on_runs)} runs",
    "; ".join(f"rep {r['rep']}: {r['log_lines']}/{r['acked']}" for r in on_runs), "PASS" if exact == len(on_runs) else "FAIL")
drain = [float(r["drain_ms"]) for r in on_runs]
row("outbox drained after populate ended", f"{med(drain) / 1000:.2f} s", f"{min(drain) / 1000:.2f}..{max(drain) / 1000:.2f} s" if drain else "")
errs = sum(float(r["errors"]) + float(r["unanswered"]) for r in runs)
bad_exit = [f"{r['mode']}{r['rep']}" for r in runs if r["exit_broker"] != "0" or r["exit_rpclog"] != "0"]
row("errors + unanswered / unclean exits", f"{errs:.0f} / {len(bad_exit)}", " ".join(bad_exit))
oc = [float(r["other_cpu_pct"]) for r in runs]
row("other processes' CPU during runs", f"{med(oc):.0f}% of the machine", f"max {max(oc):.0f}% (shared-host noise)" if oc else "")

def ts_rows(file, label):
    try:
        text = open(file).read()
    except OSError:
        text = ""
    m = re.search(r"timesvc\s+req/s median (\d+) (\[[^\]]*\])?, p50 median ([\d.]+) us, p99 median ([\d.]+) us ?(\[[^\]]*\])?", text)
    if not m:
        row(label, "FAILED", (text.strip().splitlines() or ["no output"])[-1])
        return
    row(label, f"{m.group(1)} req/s, p99 {float(m.group(4)) / 1000:.2f} ms",
        f"req/s spread {m.group(2) or '-'}, p50 {float(m.group(3)) / 1000:.3f} ms, p99 spread {m.group(5) or '-'} us")
    b = re.search(r"baseline\s+req/s median (\d+) (\[[^\]]*\])?, p99 median ([\d.]+) us", text)
    if b:
        row("  raw TCP ping-pong baseline, same clients", f"{b.group(1)} req/s, p99 {float(b.group(3)) / 1000:.2f} ms", f"spread {b.group(2) or '-'}")
    r = re.search(r"ratio timesvc/baseline req/s: median ([\d.]+) (\[[^\]]*\])?", text)
    if r:
        row("  ratio timesvc/baseline", f"{float(r.group(1)):.2f}", f"spread {r.group(2) or '-'}")
    f = re.search(r"FAILED requests: (\d+)", text)
    if f:
        row("  FAILED time requests", f.group(1))

ts_rows(ts_inproc, f"time service, {ts_clients} clients (in-process)")
ts_rows(ts_daemon, f"time service, {ts_clients} clients (zshare-timesvc)")

w = [max(len(r[i]) for r in rows) for i in range(3)]
print(f"\nzshare logger benchmark: populate {int(users):,} users + {int(files):,} files, {clients} clients x window {window},"
      f" {reps} reps per mode alternated; median and min..max")
print(f"{'metric':<{w[0]}}  {'value':<{w[1]}}  {'spread / note':<{w[2]}}  target")
print("-" * (sum(w) + 14))
for m, v, n, t in rows:
    print(f"{m:<{w[0]}}  {v:<{w[1]}}  {n:<{w[2]}}  {t}")
EOF
