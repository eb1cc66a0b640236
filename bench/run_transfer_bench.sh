#!/usr/bin/env bash
# run_transfer_bench.sh: the peer-to-peer transfer benchmark (GUIDE.md section 4, "How we measure"; issue 12's
# "Benchmark" section). Not a test. One random file of SIZE_MIB on loopback, every row into the same tmpfs folder,
# measured side by side in one run:
#   - nginx (sendfile) -> curl over HTTP, and over HTTPS with TLS 1.3 only (a self-signed P-256 certificate made
#     with openssl in WORK; curl -k --tlsv1.3);
#   - the raw ZeroMQ stream of the same bytes (bench/zmq_stream.cpp, zshare-bench-zmq-stream): 1 MiB messages,
#     PUSH -> PULL between two processes, no disk at the receiver, no hashing; plaintext and CURVE: the
#     transport's own limit;
#   - zshare `get` by content id, --plaintext and CurveZMQ, from 1 seeder and from SEEDERS seeders. Each of the
#     four (link, seeders) pairs has a broker of its own (Curve brokers share one keypair made in WORK; one key
#     folder per peer), so every seeder set is online for the whole run and its `get` uses exactly that set;
#   - iperf3 (IPERF=1), for orientation only.
# The rows alternate: each of the REPS repetitions runs every row once, the order rotated by one per repetition,
# so drift of this shared machine hits every row alike, and the ratios are also given per repetition (pairs).
# The table: MB/s (10^6 bytes/s) median [min-max] and ±half-spread, and CPU seconds per GiB (2^30 bytes) of BOTH
# ends (server, client, total; medians over the repetitions); then the ratios of issue 12's targets; then the
# peak RSS of one `get` of a separate RSS_MIB file (Curve, 1 seeder) beside window x chunk size + 64 MiB; then
# the same table as markdown, to paste into a note.
#
# How CPU is measured (clock ticks, 10 ms at CLK_TCK=100: use SIZE_MIB >= 512 for CPU figures you quote):
#   - server side (nginx master + worker; the seeder(s) of the row; iperf3 -s): utime + stime from
#     /proc/<pid>/stat of each server process and its direct children (/proc/<pid>/task/*/children), read just
#     before and just after the client runs; /proc/<pid>/stat sums every thread, live or ended. The brokers are
#     not counted (a few requests per `get`).
#   - client side (curl, `zshare-peer get`, iperf3 -c): /usr/bin/time -f '%e %U %S %M' around `timeout ... CMD`,
#     i.e. the wait4() rusage of the command and every thread of it (timeout's own few ms included).
#   - the raw ZeroMQ stream: the program's own getrusage(RUSAGE_SELF) in each of its two processes, at the end of
#     each (sender: after its context is closed, so its I/O thread is in it). Its seconds run from the receiver's
#     connect (the CURVE handshake included) to the last byte; every other row is the wall time of the client
#     command, process start included.
#   - peak RSS: /usr/bin/time's %M (ru_maxrss: the peak resident set of the `get` process, anonymous, file and
#     shared pages alike); beside it, the peak RssAnon and RssFile+RssShmem sampled from /proc/<pid>/status every
#     0.1 s, to tell buffers from mapped file pages.
#
# Usage: bench/run_transfer_bench.sh            (ZSHARE_BUILD=DIR, default build-release, a Release build)
# Full run (quiet machine):   ZSHARE_BUILD=build-bench bench/run_transfer_bench.sh
# Quick check:                SIZE_MIB=64 REPS=1 RSS_MIB=256 ZSHARE_BUILD=build-bench bench/run_transfer_bench.sh
# Knobs (environment): SIZE_MIB=1024 REPS=5 SEEDERS=4 CHUNK=1048576 (the seeders' --chunk-size) WINDOW= (get's
#   --window; empty: get's default) MSG_SIZE=1048576 (stream messages) STREAM_WINDOW= (stream HWM, in messages;
#   empty: get's window) RSS_MIB=4096 (0: no RSS run) IPERF=1 DISK=0 (1: also nginx -> curl, curl + fsync and a
#   Curve `get` into DISK_DIR) VARIANTS=0 (1: window x chunk-size grid, Curve, 1 seeder, tmpfs) WINDOWS="8 16 32"
#   CHUNKS="262144 1048576 4194304" BUILD_FIRST=1 (configure/build zshare-broker, zshare-peer and
#   zshare-bench-zmq-stream) JOBS=2 (build parallelism) DISK_DIR=/var/tmp SHM_DIR=/dev/shm KEEP_TMP=0
#   INSTALL=1 (apt-get nginx-light, curl, iperf3, openssl when missing) STEP_TIMEOUT=300 (seconds any one step)
# Loopback only; every server binds 127.0.0.1; cleans up via trap.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${ZSHARE_BUILD:-build-release}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
SIZE_MIB=${SIZE_MIB:-1024}
REPS=${REPS:-5}
SEEDERS=${SEEDERS:-4}
CHUNK=${CHUNK:-1048576}
WINDOW=${WINDOW:-}
MSG_SIZE=${MSG_SIZE:-1048576}
STREAM_WINDOW=${STREAM_WINDOW:-}
RSS_MIB=${RSS_MIB:-4096}
IPERF=${IPERF:-1}
DISK=${DISK:-0}
VARIANTS=${VARIANTS:-0}
WINDOWS=${WINDOWS:-"8 16 32"}
CHUNKS=${CHUNKS:-"262144 1048576 4194304"}
BUILD_FIRST=${BUILD_FIRST:-1}
JOBS=${JOBS:-2}
DISK_DIR=${DISK_DIR:-/var/tmp}
SHM_DIR=${SHM_DIR:-/dev/shm}
KEEP_TMP=${KEEP_TMP:-0}
INSTALL=${INSTALL:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}  # seconds any one command may take
PY=/usr/bin/python3
TIME_BIN=/usr/bin/time

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# ---- build -------------------------------------------------------------------------------------------------
if [[ $BUILD_FIRST == 1 ]]; then
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    log "configuring a Release build in $BUILD"
    timeout 600 cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  log "building zshare-broker, zshare-peer and zshare-bench-zmq-stream in $BUILD (-j$JOBS)"
  timeout 3600 cmake --build "$BUILD" --target zshare-broker zshare-peer zshare-bench-zmq-stream -j"$JOBS" >/dev/null
fi
BROKER_BIN=$BUILD/broker/zshare-broker
PEER_BIN=$BUILD/peer/zshare-peer
STREAM_BIN=$BUILD/bench/zshare-bench-zmq-stream
for exe in "$BROKER_BIN" "$PEER_BIN" "$STREAM_BIN"; do [[ -x $exe ]] || die "missing $exe (BUILD_FIRST=1 builds it)"; done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[[ $BUILD_TYPE == Release ]] || log "warning: $BUILD is a '${BUILD_TYPE:-default}' build, not Release"

# ---- tools -------------------------------------------------------------------------------------------------
need_tool() {  # need_tool COMMAND PACKAGE...: apt-get the first package that installs, once
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return 0
  [[ $INSTALL == 1 ]] || die "$cmd is missing (INSTALL=1 installs it with apt-get)"
  local pkg
  for pkg in "$@"; do
    log "installing $pkg for $cmd"
    if DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1 ||
       { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update >/dev/null 2>&1 &&
         DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1; }; then
      command -v "$cmd" >/dev/null && return 0
    fi
  done
  die "could not install $cmd"
}
PATH=$PATH:/usr/sbin
need_tool nginx nginx-light nginx
need_tool curl curl
need_tool openssl openssl
[[ $IPERF == 1 ]] && need_tool iperf3 iperf3
[[ -x $TIME_BIN ]] || { need_tool time time; TIME_BIN=$(command -v time); }
NGINX_BIN=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK)

# get's default --window, from its --help (CLI11: "--window UINT:UINT in [1 - 64]=32", the last number on the
# line); WINDOW overrides it.
GET_WINDOW=${WINDOW:-$("$PEER_BIN" get --help 2>/dev/null | grep -E '^ *--window' | head -1 | grep -oE '[0-9]+' | tail -1 || true)}
if [[ -z $GET_WINDOW ]]; then
  GET_WINDOW=32
  log "warning: could not read get's default --window from its --help; assuming 32 (set WINDOW= to be sure)"
fi
WINDOW_ARGS=()
[[ -n $WINDOW ]] && WINDOW_ARGS=(--window "$WINDOW")
STREAM_WINDOW=${STREAM_WINDOW:-$GET_WINDOW}

# ---- scratch space -----------------------------------------------------------------------------------------
free_mib() { df -Pm "$1" | awk 'NR==2 {print $4}'; }
SHM_NEED=$(( (2 * SIZE_MIB > 2 * RSS_MIB ? 2 * SIZE_MIB : 2 * RSS_MIB) + 512 ))
(( $(free_mib "$SHM_DIR") >= SHM_NEED )) || die "$SHM_DIR has $(free_mib "$SHM_DIR") MiB free; need $SHM_NEED"
if [[ $DISK == 1 ]]; then
  (( $(free_mib "$DISK_DIR") >= SIZE_MIB + 256 )) || die "$DISK_DIR has $(free_mib "$DISK_DIR") MiB free; need $((SIZE_MIB + 256))"
fi
SHM=$(mktemp -d "$SHM_DIR/transfer-bench.XXXXXX")
DISK_TMP=""
[[ $DISK == 1 ]] && DISK_TMP=$(mktemp -d "$DISK_DIR/transfer-bench.XXXXXX")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/transfer-bench.XXXXXX")
RESULTS=$WORK/results.txt  # one line per measurement: LABEL REP SECONDS BYTES SERVER_CPU CLIENT_CPU MAXRSS_KIB
: >"$RESULTS"
DEST=$SHM/dest  # the one destination folder of every row
mkdir -p "$DEST"

declare -A SERVE_PID=()  # user -> pid of its `zshare-peer serve`
declare -A BROKER_PID=() # group -> pid of its broker
NGINX_PID="" IPERF_PID=""

stop_pid() {  # stop_pid PID: SIGTERM, up to 15 s, then SIGKILL; only a process we started
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local k
  for k in "${!SERVE_PID[@]}"; do stop_pid "${SERVE_PID[$k]}"; done
  stop_pid "$NGINX_PID"; stop_pid "$IPERF_PID"
  for k in "${!BROKER_PID[@]}"; do stop_pid "${BROKER_PID[$k]}"; done
  rm -rf "$SHM"
  [[ -n $DISK_TMP ]] && rm -rf "$DISK_TMP"
  if [[ $KEEP_TMP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(("127.0.0.1",int(sys.argv[1]))))' "$1"; }
two_ports() { "$PY" -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])'; }
wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds or the deadline passes
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || die "timed out waiting for $what"
    sleep 0.05
  done
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.6f", b - a}'; }
flush_disk() { [[ -n $DISK_TMP ]] && { sync -f "$DISK_TMP" 2>/dev/null || sync; }; return 0; }

# server_cpu PID...: CPU seconds (utime + stime) so far of these processes and their direct children.
server_cpu() {
  local pid kid files=()
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    files+=("/proc/$pid/stat")
    for kid in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
      [[ -r /proc/$kid/stat ]] && files+=("/proc/$kid/stat")
    done
  done
  (( ${#files[@]} )) || { echo 0; return; }
  # Fields after "pid (comm) ": state is $1, so utime (field 14) is $12 and stime (15) is $13.
  cat "${files[@]}" 2>/dev/null | awk -v hz="$CLK_TCK" '{sub(/^.*\) /, ""); t += $12 + $13} END {printf "%.2f", t / hz}'
}

# timed LABEL REP BYTES "SERVER_PIDS" CMD...: runs CMD under /usr/bin/time and timeout, reads the servers' CPU
# before and after, and records the row. Sets TIMED_SECS (wall time of CMD, process start included).
timed() {
  local label=$1 rep=$2 nbytes=$3 pids=$4; shift 4
  local c0 c1 t0 t1 code=0 tl
  # shellcheck disable=SC2086
  c0=$(server_cpu $pids)
  t0=$(now)
  "$TIME_BIN" -f '%e %U %S %M' -o "$WORK/time.out" timeout "$STEP_TIMEOUT" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" ||
    code=$?
  t1=$(now)
  # shellcheck disable=SC2086
  c1=$(server_cpu $pids)
  [[ $code == 0 ]] || die "$label exited $code: $(tail -c 2000 "$WORK/cmd.out" "$WORK/cmd.err" "$WORK/time.out")"
  tl=$(tail -n 1 "$WORK/time.out")
  TIMED_SECS=$(elapsed "$t0" "$t1")
  echo "$label $rep $TIMED_SECS $nbytes $(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}') \
$(awk '{printf "%.2f %d", $2 + $3, $4}' <<<"$tl")" >>"$RESULTS"
}

# ---- the file ----------------------------------------------------------------------------------------------
BYTES=$((SIZE_MIB * 1024 * 1024))
mkdir -p "$SHM/src"
log "writing a ${SIZE_MIB} MiB random file to $SHM/src (tmpfs: every reader serves it from memory)"
head -c "$BYTES" /dev/urandom >"$SHM/src/big.bin"
FILE=$SHM/src/big.bin

# ---- iperf3 ------------------------------------------------------------------------------------------------
if [[ $IPERF == 1 ]]; then
  IPERF_PORT=$(free_port)
  iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >"$WORK/iperf3-server.log" 2>&1 &
  IPERF_PID=$!
  wait_until 10 "iperf3 to listen" port_open "$IPERF_PORT"
fi
run_iperf3() {  # run_iperf3 REP: iperf3's own receiver-side seconds, CPU measured as for every row
  timed iperf3 "$1" "$BYTES" "$IPERF_PID" iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -n "${SIZE_MIB}M" -J
  local secs
  secs=$("$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]["sum_received"]; print(e["seconds"])' "$WORK/cmd.out")
  sed -i "\$s/^iperf3 $1 [^ ]* /iperf3 $1 $secs /" "$RESULTS"
  log "iperf3 run $1: $secs s"
}

# ---- nginx (sendfile) -> curl, HTTP and HTTPS (TLS 1.3) ----------------------------------------------------
mkdir -p "$WORK/nginx" "$WORK/tls"
timeout 60 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"
read -r HTTP_PORT HTTPS_PORT < <(two_ports)
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $WORK/nginx/client_body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  types { application/octet-stream bin; }
  server {
    listen 127.0.0.1:$HTTP_PORT;
    root $SHM/src;
    location / { }
  }
  server {
    listen 127.0.0.1:$HTTPS_PORT ssl;
    ssl_certificate $WORK/tls/cert.pem;
    ssl_certificate_key $WORK/tls/key.pem;
    ssl_protocols TLSv1.3;
    root $SHM/src;
    location / { }
  }
}
EOF
"$NGINX_BIN" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
wait_until 10 "nginx to listen" port_open "$HTTPS_PORT"
timeout 30 curl -sS --fail -k --tlsv1.3 -o /dev/null "https://127.0.0.1:$HTTPS_PORT/big.bin" -r 0-0 ||
  die "nginx does not answer over TLS 1.3: $(cat "$WORK/nginx/error.log")"

run_curl() {  # run_curl REP http|https
  local rep=$1 scheme=$2 dest=$DEST/curl.bin tls=() port=$HTTP_PORT
  [[ $scheme == https ]] && { tls=(-k --tlsv1.3); port=$HTTPS_PORT; }
  rm -f "$dest"
  timed "$scheme" "$rep" "$BYTES" "$NGINX_PID" curl -sS --fail "${tls[@]}" -o "$dest" "$scheme://127.0.0.1:$port/big.bin"
  [[ $(stat -c %s "$dest") == "$BYTES" ]] || die "curl $scheme wrote the wrong size"
  rm -f "$dest"
  log "nginx -> curl $scheme run $rep: $TIMED_SECS s"
}
run_curl_disk() {  # run_curl_disk REP: HTTP into DISK_DIR, and the same followed by an fsync (as zshare does)
  local rep=$1 dest=$DISK_TMP/curl.bin t0 t1
  rm -f "$dest"; flush_disk
  timed http-disk "$rep" "$BYTES" "$NGINX_PID" curl -sS --fail -o "$dest" "http://127.0.0.1:$HTTP_PORT/big.bin"
  t0=$(now); sync "$dest"; t1=$(now)
  tail -n 1 "$RESULTS" | awk -v s="$(elapsed "$t0" "$t1")" '{$1 = "httpsync-disk"; $3 += s; print}' >>"$RESULTS"
  [[ $(stat -c %s "$dest") == "$BYTES" ]] || die "curl wrote the wrong size to disk"
  rm -f "$dest"
  log "nginx -> curl to disk run $rep: $TIMED_SECS s (+ $(elapsed "$t0" "$t1") s fsync)"
}

# ---- the raw ZeroMQ stream ---------------------------------------------------------------------------------
run_stream() {  # run_stream REP plain|curve: the program times itself and reports both processes' CPU
  local rep=$1 mode=$2 curve=() line
  [[ $mode == curve ]] && curve=(--curve)
  timeout "$STEP_TIMEOUT" "$STREAM_BIN" --file "$FILE" --msg-size "$MSG_SIZE" --window "$STREAM_WINDOW" \
    --timeout "$STEP_TIMEOUT" "${curve[@]}" >"$WORK/stream.out" 2>"$WORK/stream.err" ||
    die "zmq stream $mode failed: $(cat "$WORK/stream.out" "$WORK/stream.err")"
  line=$(grep '^RESULT ' "$WORK/stream.out") || die "zmq stream $mode printed no RESULT line"
  "$PY" - "$line" "$rep" "$mode" >>"$RESULTS" <<'EOF'
import sys
kv = dict(f.split("=", 1) for f in sys.argv[1].split()[1:])
print("zmq-%s %s %s %s %s %s 0" % (sys.argv[3], sys.argv[2], kv["seconds"], kv["bytes"], kv["cpu_send"], kv["cpu_recv"]))
EOF
  log "zmq stream $mode run $rep: ${line#RESULT }"
}

# ---- zshare ------------------------------------------------------------------------------------------------
# Groups: curve-1, plain-1, curve-N, plain-N (N = SEEDERS): a broker each, with its seeder set online all along.
"$BROKER_BIN" keygen --key "$WORK/broker.key" >/dev/null || die "zshare-broker keygen failed"
declare -A GROUP_LINK=() GROUP_BROKER=() GROUP_USERS=()
GROUPS_ALL=(curve-1 plain-1)
(( SEEDERS > 1 )) && GROUPS_ALL+=("curve-$SEEDERS" "plain-$SEEDERS")

start_broker() {  # start_broker GROUP
  local g=$1 link=${1%%-*} cport eport extra=()
  read -r cport eport < <(two_ports)
  GROUP_LINK[$g]=$link
  GROUP_BROKER[$g]=tcp://127.0.0.1:$cport
  if [[ $link == curve ]]; then extra=(--key "$WORK/broker.key"); else extra=(--plaintext); fi
  "$BROKER_BIN" --bind "${GROUP_BROKER[$g]}" --events "tcp://127.0.0.1:$eport" --db "$WORK/broker-$g.db" \
    --rpclog none "${extra[@]}" >/dev/null 2>"$WORK/broker-$g.stderr" &
  BROKER_PID[$g]=$!
}
# link_args GROUP USER: sets LINK_ARGS, zshare-peer's options for GROUP's broker (curve: its .pub and USER's own
# keypair in WORK/keys/USER; plain: --plaintext).
link_args() {
  if [[ ${GROUP_LINK[$1]} == curve ]]; then
    LINK_ARGS=(--broker "${GROUP_BROKER[$1]}" --broker-key "$WORK/broker.pub" --key-dir "$WORK/keys/$2")
  else
    LINK_ARGS=(--broker "${GROUP_BROKER[$1]}" --plaintext)
  fi
}
peer() { link_args "$1" "$2"; shift 2; "$PEER_BIN" "${LINK_ARGS[@]}" "$@"; }  # peer GROUP USER ARGS...

# A share is a folder holding a hard link to the file. Every link is made before any seeder starts: a new link
# moves the file's ctime, and a running seeder then refuses it (FILE CHANGED) until it has hashed it again.
link_share() {  # link_share USER [FILE]
  mkdir -p "$SHM/share-$1"
  ln -f "${2:-$FILE}" "$SHM/share-$1/$(basename "${2:-$FILE}")"
}
launch_seeder() {  # launch_seeder GROUP USER CHUNK_SIZE: serve USER's share (link_share first)
  local g=$1 user=$2 chunk=$3
  link_args "$g" "$user"
  "$PEER_BIN" "${LINK_ARGS[@]}" --json serve --user "$user" --share "$SHM/share-$user" \
    --hash-cache "$WORK/hashes-$user.db" --chunk-size "$chunk" >"$WORK/serve-$user.out" 2>"$WORK/serve-$user.err" &
  SERVE_PID[$user]=$!
}
await_seeder() {  # await_seeder USER: until it has hashed and published
  wait_until "$STEP_TIMEOUT" "serve $1 to hash and publish" grep -q '"command":"SERVE"' "$WORK/serve-$1.out"
  grep -q '"status":"OK"' "$WORK/serve-$1.out" || die "serve $1: $(cat "$WORK/serve-$1.out" "$WORK/serve-$1.err")"
}
stop_seeder() { stop_pid "${SERVE_PID[$1]}"; unset "SERVE_PID[$1]"; }
group_pids() { local u; for u in ${GROUP_USERS[$1]}; do printf '%s ' "${SERVE_PID[$u]}"; done; }

for g in "${GROUPS_ALL[@]}"; do start_broker "$g"; done
for g in "${GROUPS_ALL[@]}"; do wait_until 10 "broker $g to answer" peer "$g" client --timeout 0.5 list-users; done
log "zshare: seeders hashing and publishing (${GROUPS_ALL[*]})"
for g in "${GROUPS_ALL[@]}"; do
  GROUP_USERS[$g]=""
  for ((k = 1; k <= ${g#*-}; k++)); do link_share "$g-s$k"; GROUP_USERS[$g]+="$g-s$k "; done
done
if [[ $VARIANTS == 1 ]]; then for chunk in $CHUNKS; do link_share "chunk$chunk"; done; fi
for g in "${GROUPS_ALL[@]}"; do for u in ${GROUP_USERS[$g]}; do launch_seeder "$g" "$u" "$CHUNK"; done; done
for g in "${GROUPS_ALL[@]}"; do for u in ${GROUP_USERS[$g]}; do await_seeder "$u"; done; done
cid_of() { peer "$1" client --json list-content "$2" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["cid"])'; }
CID=$(cid_of curve-1 curve-1-s1)

get_sources() {  # who served how many chunks, from get's --json output (best effort: the format may change)
  "$PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1])); print(", ".join("%s %d chunks" % (s["user"], s["chunks"]) for s in d["sources"]))
except Exception as e:
    print("sources: ?")' "$WORK/cmd.out" 2>/dev/null || true
}
run_get() {  # run_get LABEL REP GROUP DEST_DIR CID [get options...]: one timed download (never a resume)
  local label=$1 rep=$2 g=$3 dir=$4 cid=$5; shift 5
  local dest=$dir/zshare.bin
  (( $# )) || set -- "${WINDOW_ARGS[@]}"  # options given (the variants' --window) replace WINDOW's
  rm -f "$dest" "$dest.part"; flush_disk
  link_args "$g" client
  timed "$label" "$rep" "$BYTES" "$(group_pids "$g")" "$PEER_BIN" "${LINK_ARGS[@]}" --json get "$cid" "$dest" "$@"
  [[ $(stat -c %s "$dest") == "$BYTES" ]] || die "get $label wrote the wrong size"
  log "$label run $rep: $TIMED_SECS s ($(get_sources))"
}

# Correctness once per group, outside the timings (and a warm-up): the downloaded bytes are the file's.
for g in "${GROUPS_ALL[@]}"; do
  run_get check "0" "$g" "$DEST" "$CID"
  cmp -s "$FILE" "$DEST/zshare.bin" || die "the file downloaded from group $g differs from the source"
done
rm -f "$DEST/zshare.bin"
sed -i '/^check /d' "$RESULTS"

# ---- the alternating repetitions ---------------------------------------------------------------------------
ROWS=(http https zmq-plain zmq-curve)
for g in "${GROUPS_ALL[@]}"; do ROWS+=("get-$g"); done
[[ $IPERF == 1 ]] && ROWS+=(iperf3)
[[ $DISK == 1 ]] && ROWS+=(http-disk get-curve-1-disk)
run_row() {  # run_row ROW REP
  case $1 in
    http | https) run_curl "$2" "$1" ;;
    zmq-plain | zmq-curve) run_stream "$2" "${1#zmq-}" ;;
    iperf3) run_iperf3 "$2" ;;
    http-disk) run_curl_disk "$2" ;;
    get-curve-1-disk) run_get "$1" "$2" curve-1 "$DISK_TMP" "$CID"; rm -f "$DISK_TMP/zshare.bin" ;;
    get-*) run_get "$1" "$2" "${1#get-}" "$DEST" "$CID"; rm -f "$DEST/zshare.bin" ;;
    *) die "unknown row $1" ;;
  esac
}
log "rows, rotated each repetition: ${ROWS[*]}"
for ((r = 1; r <= REPS; r++)); do
  for ((i = 0; i < ${#ROWS[@]}; i++)); do
    run_row "${ROWS[(i + r - 1) % ${#ROWS[@]}]}" "$r"
  done
done

# ---- window x chunk-size variants (VARIANTS=1): Curve, 1 seeder, tmpfs -------------------------------------
if [[ $VARIANTS == 1 ]]; then
  # Only the seeder of this chunk size is online in group curve-1, so `get` uses exactly it.
  for chunk in $CHUNKS; do
    if [[ $chunk == "$CHUNK" ]]; then
      [[ -n ${SERVE_PID[curve-1-s1]:-} ]] || { launch_seeder curve-1 curve-1-s1 "$CHUNK"; await_seeder curve-1-s1; }
      GROUP_USERS[curve-1]="curve-1-s1"
    else
      [[ -n ${SERVE_PID[curve-1-s1]:-} ]] && stop_seeder curve-1-s1
      launch_seeder curve-1 "chunk$chunk" "$chunk"; await_seeder "chunk$chunk"
      GROUP_USERS[curve-1]="chunk$chunk"
    fi
    vcid=$(cid_of curve-1 "${GROUP_USERS[curve-1]}")
    for ((r = 1; r <= REPS; r++)); do
      for w in $WINDOWS; do
        run_get "var-c$chunk-w$w" "$r" curve-1 "$DEST" "$vcid" --window "$w"
      done
    done
    [[ $chunk == "$CHUNK" ]] || stop_seeder "chunk$chunk"
  done
  rm -f "$DEST/zshare.bin"
fi

# ---- peak RSS of one `get` of an RSS_MIB file (Curve, 1 seeder) --------------------------------------------
RSS_LINE=""
if (( RSS_MIB > 0 )); then
  for u in "${!SERVE_PID[@]}"; do stop_seeder "$u"; done
  rm -rf "${SHM:?}"/share-* "$FILE" "${DEST:?}"/*  # frees tmpfs: the shares' links, then the file
  RSS_BYTES=$((RSS_MIB * 1024 * 1024))
  log "writing a ${RSS_MIB} MiB random file for the RSS run"
  head -c "$RSS_BYTES" /dev/urandom >"$SHM/src/rss.bin"
  link_share rss-s1 "$SHM/src/rss.bin"
  launch_seeder curve-1 rss-s1 "$CHUNK"; await_seeder rss-s1
  GROUP_USERS[curve-1]="rss-s1"
  RSS_CID=$(cid_of curve-1 rss-s1)
  link_args curve-1 client
  "$TIME_BIN" -f '%e %U %S %M' -o "$WORK/time-rss.out" timeout "$STEP_TIMEOUT" \
    "$PEER_BIN" "${LINK_ARGS[@]}" --json get "$RSS_CID" "$DEST/rss.bin" "${WINDOW_ARGS[@]}" \
    >"$WORK/rss-get.out" 2>"$WORK/rss-get.err" &
  rss_time_pid=$!
  # Sample the get's RssAnon and RssFile + RssShmem (kB) every 0.1 s: it is time's grandchild (time -> timeout).
  anon_max=0 file_max=0 get_pid=""
  while kill -0 "$rss_time_pid" 2>/dev/null; do
    if [[ -z $get_pid ]]; then
      for t in $(cat /proc/"$rss_time_pid"/task/*/children 2>/dev/null); do
        get_pid=$(cat /proc/"$t"/task/*/children 2>/dev/null | awk '{print $1; exit}')
      done
    fi
    if [[ -n $get_pid && -r /proc/$get_pid/status ]]; then
      read -r a f < <(awk '/^RssAnon:/ {a = $2} /^RssFile:|^RssShmem:/ {f += $2} END {print a + 0, f + 0}' \
        /proc/"$get_pid"/status 2>/dev/null || echo "0 0")
      (( a > anon_max )) && anon_max=$a
      (( f > file_max )) && file_max=$f
    fi
    sleep 0.1
  done
  code=0; wait "$rss_time_pid" || code=$?
  [[ $code == 0 ]] || die "the RSS get exited $code: $(tail -c 2000 "$WORK/rss-get.out" "$WORK/rss-get.err")"
  [[ $(stat -c %s "$DEST/rss.bin") == "$RSS_BYTES" ]] || die "the RSS get wrote the wrong size"
  read -r rss_secs rss_user rss_sys rss_kib < <(tail -n 1 "$WORK/time-rss.out")
  RSS_LINE="$RSS_MIB $CHUNK $GET_WINDOW $rss_secs $rss_user $rss_sys $rss_kib $anon_max $file_max"
  log "RSS get: $rss_secs s, max RSS $((rss_kib / 1024)) MiB (sampled RssAnon peak $((anon_max / 1024)) MiB)"
  rm -f "$DEST/rss.bin"
  stop_seeder rss-s1
fi

# ---- the table ---------------------------------------------------------------------------------------------
"$PY" - "$RESULTS" "$SIZE_MIB" "$REPS" "$SEEDERS" "$SHM_DIR" "$DISK_DIR" "$CHUNK" "$GET_WINDOW" "$MSG_SIZE" \
  "$STREAM_WINDOW" "$RSS_LINE" <<'EOF'
import collections, statistics, sys
path, size_mib, reps, seeders, shm, disk, chunk, window, msg_size, stream_window, rss_line = sys.argv[1:]
seeders, chunk, window = int(seeders), int(chunk), int(window)
GIB = float(1 << 30)
rows = collections.defaultdict(dict)  # label -> rep -> (MB/s, server CPU s/GiB, client CPU s/GiB)
for line in open(path):
    label, rep, secs, nbytes, scpu, ccpu, _rss = line.split()
    n = int(nbytes)
    rows[label][int(rep)] = (n / float(secs) / 1e6, float(scpu) * GIB / n, float(ccpu) * GIB / n)

def human(c):
    return "%d KiB" % (c // 1024) if c < 1 << 20 else "%d MiB" % (c >> 20)

def speed(label):
    v = [x[0] for x in rows[label].values()]
    return (statistics.median(v), min(v), max(v)) if v else None

def cpu(label, which):  # which: 1 server, 2 client, 3 total; median over the reps
    v = [(x[1] + x[2]) if which == 3 else x[which] for x in rows[label].values()]
    return statistics.median(v) if v else None

N = seeders
NAMES = [
    ("http", "nginx sendfile -> curl, HTTP"),
    ("https", "nginx -> curl, HTTPS (TLS 1.3)"),
    ("zmq-plain", "raw ZeroMQ stream, plaintext"),
    ("zmq-curve", "raw ZeroMQ stream, CURVE"),
    ("get-plain-1", "zshare get --plaintext, 1 seeder"),
    ("get-curve-1", "zshare get CurveZMQ, 1 seeder"),
    ("get-plain-%d" % N, "zshare get --plaintext, %d seeders" % N),
    ("get-curve-%d" % N, "zshare get CurveZMQ, %d seeders" % N),
    ("iperf3", "iperf3 loopback (no file; reference)"),
    ("http-disk", "nginx -> curl, HTTP, into %s" % disk),
    ("httpsync-disk", "  the same + fsync (as zshare does)"),
    ("get-curve-1-disk", "zshare get CurveZMQ, 1 seeder, into %s" % disk),
]
NAMES = [(l, n) for l, n in NAMES if rows.get(l)]

def fmt_cpu(x):
    return "-" if x is None else "%.2f" % x

table = []  # (name, MB/s, [min-max], ±%, server, client, total)
for label, name in NAMES:
    m, lo, hi = speed(label)
    table.append((name, "%.0f" % m, "%.0f-%.0f" % (lo, hi), "%.0f%%" % (100 * (hi - lo) / 2 / m),
                  fmt_cpu(cpu(label, 1)), fmt_cpu(cpu(label, 2)), fmt_cpu(cpu(label, 3))))

def ratio_speed(a, b):  # ratio of medians, and the per-repetition pairs (same repetition, alternated)
    if not rows.get(a) or not rows.get(b):
        return None
    pairs = [rows[a][r][0] / rows[b][r][0] for r in rows[a] if r in rows[b]]
    return speed(a)[0] / speed(b)[0], min(pairs), max(pairs)

def ratio_cpu(a, b):
    if not rows.get(a) or not rows.get(b):
        return None
    pairs = [(rows[a][r][1] + rows[a][r][2]) / (rows[b][r][1] + rows[b][r][2]) for r in rows[a] if r in rows[b]
             if rows[b][r][1] + rows[b][r][2] > 0]
    if not pairs or not cpu(b, 3):
        return None
    return cpu(a, 3) / cpu(b, 3), min(pairs), max(pairs)

RATIOS = [
    ("plaintext get / nginx+curl HTTP (MB/s)", ratio_speed("get-plain-1", "http"), ">= 1.0"),
    ("  %d seeders" % N, ratio_speed("get-plain-%d" % N, "http"), ""),
    ("Curve get / raw CURVE stream (MB/s)", ratio_speed("get-curve-1", "zmq-curve"), ">= 0.9"),
    ("  %d seeders" % N, ratio_speed("get-curve-%d" % N, "zmq-curve"), ""),
    ("Curve get / nginx+curl HTTPS (MB/s)", ratio_speed("get-curve-1", "https"), ""),
    ("CPU/GiB plaintext get (seeder+getter) / HTTP's", ratio_cpu("get-plain-1", "http"), "<= 1.3"),
    ("  %d seeders" % N, ratio_cpu("get-plain-%d" % N, "http"), ""),
    ("CPU/GiB Curve get (seeder+getter) / HTTPS's", ratio_cpu("get-curve-1", "https"), ""),
    ("CPU/GiB Curve get / raw CURVE stream's", ratio_cpu("get-curve-1", "zmq-curve"), ""),
    ("Curve get / plaintext get (MB/s)", ratio_speed("get-curve-1", "get-plain-1"), ""),
    ("%d seeders / 1 seeder, Curve (MB/s)" % N, ratio_speed("get-curve-%d" % N, "get-curve-1"), ""),
    ("plaintext get / iperf3 (MB/s)", ratio_speed("get-plain-1", "iperf3"), ""),
    ("Curve get / nginx+curl+fsync, disk (MB/s)", ratio_speed("get-curve-1-disk", "httpsync-disk"), ""),
]
RATIOS = [(n, r, t) for n, r, t in RATIOS if r is not None]

rss = None
if rss_line:
    r_mib, r_chunk, r_win, r_secs, r_user, r_sys, r_kib, r_anon, r_file = rss_line.split()
    budget = int(r_win) * int(r_chunk) / 2**20 + 64
    rss = ("peak RSS of get, %s MiB file, Curve, 1 seeder" % r_mib, int(r_kib) / 1024.0, budget,
           "window %s x chunk %s + 64 MiB" % (r_win, human(int(r_chunk))), int(r_anon) / 1024.0,
           int(r_file) / 1024.0, int(r_mib) * 2**20 / float(r_secs) / 1e6,
           (float(r_user)) * GIB / (int(r_mib) * 2**20))

head = ("row", "MB/s", "min-max", "±", "CPU s/GiB server", "client", "total")
title = ("zshare transfer bench: %s MiB file, loopback, into %s; %s alternating repetitions; "
         "MB/s = 10^6 B/s, median [min-max] ±half-spread; CPU = seconds per GiB, medians; chunk %s, window %d, "
         "stream messages %s with HWM %s" % (size_mib, shm, reps, human(chunk), window, human(int(msg_size)),
                                              stream_window))
print()
print(title)
w = [max(len(str(r[i])) for r in [head] + table) for i in range(len(head))]
for r in [head] + table:
    print("  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r)))
print()
print("ratios (of medians; [min-max] over the per-repetition pairs)        target")
for n, (m, lo, hi), t in RATIOS:
    print("  %-48s %5.2f [%.2f-%.2f]   %s" % (n, m, lo, hi, t))
if rss:
    name, peak, budget, what, anon, filep, mbs, _ = rss
    print()
    print("%s: %.0f MiB (max RSS, /usr/bin/time); budget %s = %.0f MiB; ratio %.2f (target <= 1.0)"
          % (name, peak, what, budget, peak / budget))
    print("  sampled peaks: RssAnon %.0f MiB, RssFile+RssShmem %.0f MiB; that get ran at %.0f MB/s" % (anon, filep, mbs))

variants = sorted({l for l in rows if l.startswith("var-")})
if variants:
    chunks = sorted({int(l.split("-")[1][1:]) for l in variants})
    windows = sorted({int(l.split("-")[2][1:]) for l in variants})
    print()
    print("variants, Curve, 1 seeder -> get to tmpfs, median MB/s [min-max]")
    print("%-12s" % "chunk \\ win" + "".join("%-20s" % ("window %d" % x) for x in windows))
    for c in chunks:
        line = "%-12s" % human(c)
        for x in windows:
            s = speed("var-c%d-w%d" % (c, x)) if rows.get("var-c%d-w%d" % (c, x)) else None
            line += "%-20s" % ("%5.0f [%4.0f-%4.0f]" % s if s else "-")
        print(line)
    best = max(variants, key=lambda l: speed(l)[0])
    _, c, x = best.split("-")
    print("best: chunk %s, window %s: %.0f MB/s" % (human(int(c[1:])), x[1:], speed(best)[0]))

# The same as markdown, to paste into a note.
print()
print("<!-- markdown -->")
print(title.replace("zshare transfer bench:", "**zshare transfer bench**:"))
print()
print("| row | MB/s | [min-max] | ± | CPU s/GiB server | client | total |")
print("|---|---|---|---|---|---|---|")
for r in table:
    print("| " + " | ".join(r) + " |")
print()
print("| ratio | median | per-repetition pairs | target |")
print("|---|---|---|---|")
for n, (m, lo, hi), t in RATIOS:
    print("| %s | **%.2f** | %.2f-%.2f | %s |" % (n.strip() if not n.startswith("  ") else "… " + n.strip(), m, lo, hi,
                                              t.replace(">=", "≥").replace("<=", "≤")))
if rss:
    name, peak, budget, what, anon, filep, mbs, _ = rss
    print("| %s: %.0f MiB / (%s = %.0f MiB) | **%.2f** | RssAnon %.0f MiB, file %.0f MiB | ≤ 1.0 |"
          % (name, peak, what, budget, peak / budget, anon, filep))
EOF
