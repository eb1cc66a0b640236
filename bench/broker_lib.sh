# shellcheck shell=bash
# broker_lib.sh: the broker benchmarks' shared steps (sourced after bench_lib.sh, never run): start a broker under
# /usr/bin/time -v and stop it, wait until it answers STATS, CONNECT every user, and one load-generator run with the
# servers' CPU time per request. Used by run_broker_bench.sh and run_store_bench.sh.
# Reads the caller's TMP, RESULTS, STARTED, BROKER, LOAD, TIME, PY, BROKER_PUB (the Curve brokers' public key file),
# BROKER_ARGS, USERS, CLIENTS, RUN_SECONDS, WARMUP, LIST_FRACTION, POOL, POP_CLIENTS, POP_WINDOW; load_run also MIX
# (read or write; default read) and DB_DATA (a PostgreSQL cluster's data folder: its CPU is measured too; default none).

# dial SECURITY: sets DIAL to the load generator's options to reach a broker of that security (curve: the broker's
# public key; plain, echo: none).
dial() { DIAL=(); if [[ $1 == curve ]]; then DIAL=(--broker-key "$BROKER_PUB"); fi; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
kv() { grep -o "\b$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2; }  # kv LINE KEY

# start_broker NAME DB SECURITY: runs the broker (SECURITY curve: --key, plain: --plaintext) under /usr/bin/time -v;
# sets BROKER_EP, BROKER_TPID, BROKER_PID, BROKER_SEC, T0_NS.
start_broker() {
  local name=$1 db=$2 p q sec_args
  BROKER_SEC=$3
  [[ $BROKER_SEC == curve ]] && sec_args="--key $TMP/broker.key" || sec_args=--plaintext
  read -r p q < <(free_ports 2)
  BROKER_EP=tcp://127.0.0.1:$p
  T0_NS=$(date +%s%N)
  # A few DEALER identities send thousands of requests a second each, over the broker's default per-client
  # limit (2000/s, bursts of 4000): the bench measures the index, so the limit is off (BROKER_ARGS may set it).
  # shellcheck disable=SC2086
  "$TIME" -v -o "$TMP/$name.time" "$BROKER" --bind "$BROKER_EP" --events "tcp://127.0.0.1:$q" --db "$db" \
    $sec_args --rate-limit 0 $BROKER_ARGS >"$TMP/$name.log" 2>&1 &
  BROKER_TPID=$!
  STARTED+=("$BROKER_TPID")
  BROKER_PID=
  for _ in $(seq 1 500); do
    BROKER_PID=$(pgrep -P "$BROKER_TPID" || true)
    [[ -n $BROKER_PID ]] && break
    kill -0 "$BROKER_TPID" 2>/dev/null || break
    sleep 0.01
  done
  [[ -n $BROKER_PID ]] || { echo "broker $name did not start:" >&2; cat "$TMP/$name.log" >&2; exit 1; }
}

# wait_ready NAME TIMEOUT: STATS until the last started broker answers; appends "RESULT stats ... tag=NAME"; echoes it.
wait_ready() {
  local line
  dial "$BROKER_SEC"
  if ! line=$("$LOAD" stats --connect "$BROKER_EP" "${DIAL[@]}" --timeout "$2" --since-ns "$T0_NS"); then
    echo "broker $1 did not answer STATS within $2 s; its log:" >&2
    tail -20 "$TMP/$1.log" >&2
    exit 1
  fi
  echo "$line tag=$1" >>"$RESULTS"
  echo "$line"
}

# stop_broker NAME [TPID PID]: SIGTERM to the broker (not to time, which would not forward it), reap, record peak
# RSS. Without TPID and PID: the last broker started.
stop_broker() {
  local name=$1 tpid=${2:-$BROKER_TPID} pid=${3:-$BROKER_PID} rc=0 kb
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 1200); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$tpid" 2>/dev/null; then
    log "broker $name still running 120 s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$tpid" || rc=$?
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/$name.time")
  [[ $rc == 0 ]] || log "broker $name exited with status $rc: $(tail -3 "$TMP/$name.log" | tr '\n' ' ')"
  echo "RESULT rss tag=$name kb=${kb:-0} exit=$rc" >>"$RESULTS"
  log "broker $name stopped (exit $rc), peak RSS ${kb:-?} kB"
}

# cpu_ticks PID...: user + system CPU time of processes so far (their threads included), in clock ticks.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local p sum=0 t
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}
# cluster_ticks DATA: CPU time of a PostgreSQL cluster so far, in clock ticks: the postmaster and every process it
# runs now (backends, WAL writer, checkpointer...), plus what its children that have exited used (the postmaster's
# cutime + cstime: autovacuum workers come and go), so a difference over a run is the whole server's work.
cluster_ticks() {
  local pm kids
  pm=$(head -1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  kids=$(pgrep -P "$pm" | tr '\n' ' ' || true)
  # shellcheck disable=SC2086
  echo $(( $(cpu_ticks "$pm" $kids) + $(awk '{print $16 + $17}' "/proc/$pm/stat" 2>/dev/null || echo 0) ))
}
# busy_ticks: CPU time all processes on the machine have used so far (user+nice+system+irq+softirq+steal).
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
NCPU=$(nproc)
us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}'; }  # TICKS N

# load_run TAG TARGET ENDPOINTS RATE PIDS [SECONDS]: one load-generator run against TARGET (curve: Curve brokers,
# plain: --plaintext brokers, echo-curve / echo-plain: the echo over that security) at ENDPOINTS (one, or a
# comma-separated list: the generator's clients are dealt round robin); appends its RESULT line with the servers'
# (PIDS: one or several, space-separated) CPU time per request, which noise from other processes on the machine
# barely moves; with DB_DATA set, also the PostgreSQL cluster's (db_cpu_us_per_req) and the sum of both
# (total_cpu_us_per_req). MIX=write runs the write mix (PUBLISH then DELETE) instead of the read pool.
# A server that exited during the run has no CPU figure: the line says died=PID instead, and a warning is logged.
# Open-loop runs also leave a per-request latency log in TMP (KEEP_TMP=1 keeps it) to find stalls.
RUN_NO=0
load_run() {
  local tag=$1 target=$2 ep=$3 rate=$4 pids=$5 secs=${6:-$RUN_SECONDS} out line cpu extra=() t0 t1 b0 b1 w0 w1 sent
  local gen_ticks other kind=broker d0=0 d1=0 mix=${MIX:-read} data=${DB_DATA:-} p died=
  RUN_NO=$((RUN_NO + 1))
  case $target in
    echo-*) kind='echo'; dial "${target#echo-}" ;;
    *) dial "$target" ;;
  esac
  extra=("${DIAL[@]}")
  # shellcheck disable=SC2086
  t0=$(cpu_ticks $pids)
  [[ -z $data ]] || d0=$(cluster_ticks "$data")
  b0=$(busy_ticks)
  w0=$(date +%s%N)
  [[ $rate == 0 ]] || extra+=(--latency-log "$TMP/latency-$RUN_NO-$tag.txt")
  out=$("$TIME" -f "GEN cpu_pct=%P user=%U sys=%S" "$LOAD" load --connect "$ep" --target "$kind" --mix "$mix" \
    --clients "$CLIENTS" --seconds "$secs" --warmup "$WARMUP" --rate "$rate" --users "$USERS" \
    --list-fraction "$LIST_FRACTION" --pool "$POOL" "${extra[@]}" 2>&1) || true
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  [[ -z $data ]] || d1=$(cluster_ticks "$data")
  b1=$(busy_ticks)
  w1=$(date +%s%N)
  for p in $pids; do kill -0 "$p" 2>/dev/null || died+=${died:+,}$p; done
  line=$(grep '^RESULT load' <<<"$out" || true)
  if [[ -z $line ]]; then echo "load run $tag failed:" >&2; echo "$out" >&2; exit 1; fi
  grep '^load:' <<<"$out" >&2 || true
  cpu=$(grep -o 'cpu_pct=[0-9]*' <<<"$out" | head -1)
  sent=$(kv "$line" sent)
  line="$line ${cpu:-cpu_pct=0}"
  if [[ -n $died ]]; then
    line="$line died=$died"
    t1=$t0  # a dead process's CPU can no longer be read: the run's figures are not valid
    log "WARNING: $tag: server process $died exited during the run: no CPU figure for it"
  else
    line="$line server_cpu_us_per_req=$(us_per $((t1 - t0)) "$sent")"
    [[ -z $data ]] || line="$line db_cpu_us_per_req=$(us_per $((d1 - d0)) "$sent") total_cpu_us_per_req=$(us_per $((t1 - t0 + d1 - d0)) "$sent")"
  fi
  # Other processes' share of the machine during the run: all busy time minus the servers', the database's and the
  # generator's.
  gen_ticks=$("$PY" -c 'import sys; print(int((float(sys.argv[1]) + float(sys.argv[2])) * int(sys.argv[3])))' \
    "$(grep -o 'user=[0-9.]*' <<<"$out" | cut -d= -f2)" "$(grep -o 'sys=[0-9.]*' <<<"$out" | cut -d= -f2)" "$CLK_TCK")
  other=$(( (b1 - b0 - (t1 - t0) - (d1 - d0) - gen_ticks) * 100 * 1000000000 / CLK_TCK / (w1 - w0) / NCPU ))
  line="$line other_cpu_pct=$(( other < 0 ? 0 : other ))"
  echo "$line tag=$tag" >>"$RESULTS"
  log "$tag: $(kv "$line" rps) req/s ok=$(kv "$line" ok) errors=$(kv "$line" errors) p50=$(kv "$line" p50_us)us p99=$(kv "$line" p99_us)us generator=${cpu#cpu_pct=}% server=$(kv "$line" server_cpu_us_per_req)us/req${data:+ db=$(kv "$line" db_cpu_us_per_req)us/req} others=$(kv "$line" other_cpu_pct)%"
}

# connect_users NAME: CONNECTs every user to the last started broker (REGISTER first: seeded users already exist),
# so their files are search results; appends the connect phase's RESULT line.
connect_users() {
  local out
  log "$1: connecting $USERS users"
  dial "$BROKER_SEC"
  out=$("$LOAD" populate --connect "$BROKER_EP" "${DIAL[@]}" --users "$USERS" --files 0 --clients "$POP_CLIENTS" \
    --window "$POP_WINDOW") || { echo "connecting users to $1 failed:" >&2; echo "$out" >&2; exit 1; }
  grep '^RESULT phase=connect' <<<"$out" | sed "s/\$/ tag=$1/" >>"$RESULTS"
}

