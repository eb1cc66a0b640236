#!/usr/bin/env bash
# run_session_bench.sh: many sessions (README "Many sessions"). For each N of STEPS: a fresh CurveZMQ broker (temp
# database, --rate-limit 0) under /usr/bin/time -v; its RSS before and after N sessions connect
# (zshare-bench-sessions: a DEALER and a fresh keypair each); its CPU time over a heartbeat window of fixed length
# once every session beats at the interval the broker asks for; its peak RSS. Prints a table, then the paper
# extrapolation to 1M sessions at the broker's --heartbeat-rate. Builds nothing; binds 127.0.0.1 only.
#
# Usage: bench/run_session_bench.sh [BUILD_DIR]        (or ZSHARE_BUILD=DIR; default ./build)
# Knobs (environment): SESSIONS=20000 STEPS="$SESSIONS" (e.g. "1000 5000 20000") WINDOW_SECONDS=30 PROMISE_MS=1000
#   HEARTBEAT_RATE="" (the broker's --heartbeat-rate; empty: its default) BROKER_ARGS="" KEEP_TMP=0 TMPDIR=/tmp
# A session costs the broker one descriptor and the generator two (spread over shard processes): the script raises
# `ulimit -n` to the hard limit and, when that still cannot hold N, measures the most it can and says so.
set -euo pipefail

BUILD=${1:-${ZSHARE_BUILD:-./build}}
SESSIONS=${SESSIONS:-20000}
STEPS=${STEPS:-$SESSIONS}
WINDOW_SECONDS=${WINDOW_SECONDS:-30}
PROMISE_MS=${PROMISE_MS:-1000}
HEARTBEAT_RATE=${HEARTBEAT_RATE:-}
BROKER_ARGS=${BROKER_ARGS:-}
KEEP_TMP=${KEEP_TMP:-0}
TIME=/usr/bin/time
PY=/usr/bin/python3

GEN=$BUILD/bench/zshare-bench-sessions
BROKER=$BUILD/broker/zshare-broker
for exe in "$GEN" "$BROKER"; do
  [[ -x $exe ]] || { echo "missing $exe: build it first (cmake --build $BUILD --target $(basename "$exe"))" >&2; exit 2; }
done
[[ -x $TIME ]] || { echo "need /usr/bin/time: apt-get install time" >&2; exit 2; }
for n in $STEPS; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "STEPS must be positive whole numbers of sessions, got '$n'" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zshare-sessions.XXXXXX")
RESULTS=$TMP/results.txt
: >"$RESULTS"
STARTED=()  # /usr/bin/time wrappers we started (the broker is their child)

. "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"  # cleanup, free_ports
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
kv() { grep -o "\b$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2; }  # kv LINE KEY
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# The default of a broker option, as its --help prints it ("--heartbeat-rate FLOAT:FLOAT in [1 - 1e+07]=2000").
option_default() { "$BROKER" --help | sed -n "s/^ *$1 [^=]*=\([0-9.]*\).*/\1/p"; }

# Descriptors: the most this shell may give its children.
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
RATE=${HEARTBEAT_RATE:-$(option_default --heartbeat-rate)}
MISSES=$(option_default --heartbeat-misses)
[[ -n $RATE && -n $MISSES ]] || { echo "could not read --heartbeat-rate/--heartbeat-misses defaults from --help" >&2; exit 1; }
"$BROKER" keygen --key "$TMP/broker.key" >/dev/null || { echo "zshare-broker keygen failed" >&2; exit 1; }

# start_broker NAME: a Curve broker on a fresh database under /usr/bin/time -v, serving once this returns; sets
# BROKER_EP, BROKER_TPID, BROKER_PID.
start_broker() {
  local name=$1 p q
  read -r p q < <(free_ports 2)
  BROKER_EP=tcp://127.0.0.1:$p
  # shellcheck disable=SC2086
  "$TIME" -v -o "$TMP/$name.time" "$BROKER" --bind "$BROKER_EP" --events "tcp://127.0.0.1:$q" --db "$TMP/$name.db" \
    --key "$TMP/broker.key" --rpclog none --probe-timeout 0 --rate-limit 0 --heartbeat-rate "$RATE" $BROKER_ARGS \
    >"$TMP/$name.log" 2>&1 &
  BROKER_TPID=$!
  STARTED+=("$BROKER_TPID")
  BROKER_PID=
  for _ in $(seq 1 1000); do  # its start line says the sockets are bound and the database open
    [[ -z $BROKER_PID ]] && BROKER_PID=$(pgrep -P "$BROKER_TPID" || true)
    [[ -n $BROKER_PID ]] && grep -q '^zshare-broker: control ' "$TMP/$name.log" && return 0
    kill -0 "$BROKER_TPID" 2>/dev/null || break
    sleep 0.01
  done
  echo "broker $name did not start:" >&2
  cat "$TMP/$name.log" >&2
  exit 1
}

# stop_broker NAME: SIGTERM to the broker (time would not forward it), reap; sets PEAK_KB, its peak RSS.
stop_broker() {
  local name=$1 rc=0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$BROKER_TPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$BROKER_TPID" 2>/dev/null && { log "broker $name still running 60 s after SIGTERM: SIGKILL"; kill -KILL "$BROKER_PID" || true; }
  wait "$BROKER_TPID" || rc=$?
  [[ $rc == 0 ]] || log "broker $name exited with status $rc: $(tail -3 "$TMP/$name.log" | tr '\n' ' ')"
  PEAK_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/$name.time")
}

# step N: one broker, N sessions; appends "RESULT sessions ... rss_start_kb= peak_kb= step=N" to RESULTS.
step() {
  local want=$1 n name="n$1" rss0 cap out line
  start_broker "$name"
  rss0=$(rss_kb "$BROKER_PID")
  cap=$(( FD_LIMIT - $(ls "/proc/$BROKER_PID/fd" | wc -l) - 64 ))  # the broker's own descriptors, and some slack
  n=$(( want < cap ? want : cap ))
  (( n == want )) || log "N=$want needs more descriptors than the broker may open (ulimit -Hn $FD_LIMIT): measuring N=$n"
  log "N=$n: broker $BROKER_EP (pid $BROKER_PID, RSS $rss0 kB), connecting, then a ${WINDOW_SECONDS} s heartbeat window"
  out=$("$GEN" --connect "$BROKER_EP" --broker-key "$TMP/broker.pub" --sessions "$n" --promise-ms "$PROMISE_MS" \
    --seconds "$WINDOW_SECONDS" --broker-pid "$BROKER_PID" 2> >(tee "$TMP/$name.gen.log" >&2)) || true
  line=$(grep '^RESULT sessions' <<<"$out" || true)
  stop_broker "$name"
  [[ -n $line ]] || { echo "zshare-bench-sessions gave no RESULT for N=$n; broker log:" >&2; tail -5 "$TMP/$name.log" >&2; exit 1; }
  echo "$line rss_start_kb=$rss0 peak_kb=${PEAK_KB:-0} step=$want" | tee -a "$RESULTS" >&2
}

log "steps: $STEPS; --heartbeat-rate $RATE, --heartbeat-misses $MISSES; sessions promise ${PROMISE_MS} ms; fds $FD_LIMIT"
for n in $STEPS; do step "$n"; done

# The table, then the extrapolation from the largest step.
"$PY" - "$RESULTS" "$RATE" "$MISSES" <<'EOF'
import sys, math
path, rate, misses = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = []
for line in open(path):
    kv = dict(w.split("=", 1) for w in line.split()[2:] if "=" in w)
    rows.append({k: float(v) for k, v in kv.items()})
head = ("sessions", "connect s", "RSS start MiB", "RSS connected MiB", "KiB/session", "peak MiB", "asked ms",
        "heartbeats/s", "CPU us/heartbeat", "core share", "errors")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    per = (r["rss_connected_kb"] - r["rss_start_kb"]) / max(r["connected"], 1)
    asked = "%d" % r["asked_min_ms"] if r["asked_min_ms"] == r["asked_max_ms"] else "%d-%d" % (r["asked_min_ms"], r["asked_max_ms"])
    errors = r["connect_errors"] + r["hb_errors"] + r["hb_expired"]
    print("| %d | %.1f | %.1f | %.1f | %.2f | %.1f | %s | %.0f | %.1f | %.2f %% | %d |" % (
        r["connected"], r["connect_seconds"], r["rss_start_kb"] / 1024, r["rss_connected_kb"] / 1024, per,
        r["peak_kb"] / 1024, asked, r["hb_per_s"], r["broker_cpu_us_per_hb"], 100 * r["broker_core_share"], errors))
big = max(rows, key=lambda r: r["connected"])
per_kb = (big["rss_connected_kb"] - big["rss_start_kb"]) / max(big["connected"], 1)
n = 1_000_000
interval_s = min(math.ceil(n * 1000 / rate), 3600 * 1000) / 1000
print()
print("Extrapolation on paper to %d sessions from the %d-session step, --heartbeat-rate %g, --heartbeat-misses %d:"
      % (n, big["connected"], rate, misses))
print("  asked interval       %.0f s (ceil(sessions / rate))" % interval_s)
print("  heartbeats/s         %.0f" % (n / interval_s))
print("  heartbeat CPU        %.1f %% of one core (%.1f us each, as measured)" %
      (100 * n / interval_s * big["broker_cpu_us_per_hb"] / 1e6, big["broker_cpu_us_per_hb"]))
print("  RSS                  %.0f MiB (%.1f MiB at start + %.2f KiB per session)" %
      ((big["rss_start_kb"] + n * per_kb) / 1024, big["rss_start_kb"] / 1024, per_kb))
print("  liveness detection   %.0f s (misses x interval: a silent peer goes offline that long after its last beat)" %
      (misses * interval_s))
EOF
