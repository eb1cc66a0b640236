#!/usr/bin/env bash
# run_transfer_bench.sh: the peer-to-peer transfer benchmark (GUIDE.md section 4, "How we measure"). Not a test.
# One 1 GiB file on loopback, in one run: iperf3; nginx (sendfile) -> curl; zshare one seeder -> one `get`,
# to tmpfs (/dev/shm) and to disk; zshare four seeders -> one `get`; then window x chunk-size variants on tmpfs.
# zshare runs over CurveZMQ (broker keypair made in WORK, one key folder per peer); the one-seeder tmpfs runs
# alternate with the same download from a --plaintext broker and seeder, which gives the CurveZMQ cost.
# Every measurement is repeated REPS times; the table gives the median MB/s (10^6 bytes/s), the min-max spread,
# and the ratios zshare / nginx+curl (same destination), zshare / iperf3, and zshare Curve / plaintext.
# Loopback only; cleans up via trap.
#
# Usage: bench/run_transfer_bench.sh            (ZSHARE_BUILD=DIR, default build-release, a Release build)
# Knobs (environment): SIZE_MIB=1024 REPS=3 WINDOWS="8 16 32" CHUNKS="262144 1048576 4194304" VARIANTS=1
#   SEEDERS=4 BUILD_FIRST=1 (configure/build zshare-broker and zshare-peer, -j2) DISK_DIR=/var/tmp SHM_DIR=/dev/shm
#   KEEP_TMP=0 INSTALL=1 (apt-get nginx-light, curl, iperf3 when missing)
# Quick check: SIZE_MIB=64 REPS=1 WINDOWS=16 CHUNKS=262144 bench/run_transfer_bench.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${ZSHARE_BUILD:-build-release}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
SIZE_MIB=${SIZE_MIB:-1024}
REPS=${REPS:-3}
WINDOWS=${WINDOWS:-"8 16 32"}
CHUNKS=${CHUNKS:-"262144 1048576 4194304"}
VARIANTS=${VARIANTS:-1}
SEEDERS=${SEEDERS:-4}
BUILD_FIRST=${BUILD_FIRST:-1}
DISK_DIR=${DISK_DIR:-/var/tmp}
SHM_DIR=${SHM_DIR:-/dev/shm}
KEEP_TMP=${KEEP_TMP:-0}
INSTALL=${INSTALL:-1}
PY=/usr/bin/python3
STEP_TIMEOUT=300  # seconds any one command may take

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# ---- build -------------------------------------------------------------------------------------------------
if [[ $BUILD_FIRST == 1 ]]; then
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    log "configuring a Release build in $BUILD"
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  log "building zshare-broker and zshare-peer in $BUILD (-j2)"
  cmake --build "$BUILD" --target zshare-broker zshare-peer -j2 >/dev/null
fi
BROKER_BIN=$BUILD/broker/zshare-broker
PEER_BIN=$BUILD/peer/zshare-peer
for exe in "$BROKER_BIN" "$PEER_BIN"; do [[ -x $exe ]] || die "missing $exe (BUILD_FIRST=1 builds it)"; done
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
    if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1 ||
       { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null 2>&1 &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1; }; then
      command -v "$cmd" >/dev/null && return 0
    fi
  done
  die "could not install $cmd"
}
need_tool nginx nginx-light nginx
need_tool curl curl
need_tool iperf3 iperf3
PATH=$PATH:/usr/sbin
NGINX_BIN=$(command -v nginx)

# ---- scratch space -----------------------------------------------------------------------------------------
free_mib() { df -Pm "$1" | awk 'NR==2 {print $4}'; }
(( $(free_mib "$SHM_DIR") >= 3 * SIZE_MIB + 256 )) || die "$SHM_DIR has $(free_mib "$SHM_DIR") MiB free; need $((3 * SIZE_MIB + 256))"
(( $(free_mib "$DISK_DIR") >= 2 * SIZE_MIB + 256 )) || die "$DISK_DIR has $(free_mib "$DISK_DIR") MiB free; need $((2 * SIZE_MIB + 256))"
SHM=$(mktemp -d "$SHM_DIR/transfer-bench.XXXXXX")
DISK=$(mktemp -d "$DISK_DIR/transfer-bench.XXXXXX")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/transfer-bench.XXXXXX")
RESULTS=$WORK/results.txt
: >"$RESULTS"

declare -A SERVE_PID=()
BROKER_PID="" PLAIN_BROKER_PID="" NGINX_PID="" IPERF_PID=""

stop_pid() {  # stop_pid PID: SIGTERM, up to 15 s, then SIGKILL; only a process we started
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local u
  for u in "${!SERVE_PID[@]}"; do stop_pid "${SERVE_PID[$u]}"; done
  stop_pid "$NGINX_PID"; stop_pid "$IPERF_PID"; stop_pid "$BROKER_PID"; stop_pid "$PLAIN_BROKER_PID"
  rm -rf "$SHM" "$DISK"
  if [[ $KEEP_TMP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(("127.0.0.1",int(sys.argv[1]))))' "$1"; }
wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds or the deadline passes
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || die "timed out waiting for $what"
    sleep 0.05
  done
}
now() { date +%s.%N; }
record() { echo "$1 $2 $3" >>"$RESULTS"; }  # record LABEL SECONDS BYTES
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.6f", b - a}'; }
flush_disk() { sync -f "$DISK" 2>/dev/null || sync; }

# ---- the file ----------------------------------------------------------------------------------------------
BYTES=$((SIZE_MIB * 1024 * 1024))
mkdir -p "$SHM/src"
log "writing a ${SIZE_MIB} MiB random file to $SHM/src (tmpfs: every reader serves it from memory)"
head -c "$BYTES" /dev/urandom >"$SHM/src/big.bin"
FILE=$SHM/src/big.bin

# ---- iperf3 ------------------------------------------------------------------------------------------------
IPERF_PORT=$(free_port)
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >"$WORK/iperf3-server.log" 2>&1 &
IPERF_PID=$!
wait_until 10 "iperf3 to listen" port_open "$IPERF_PORT"
for ((r = 1; r <= REPS; r++)); do
  timeout "$STEP_TIMEOUT" iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -n "${SIZE_MIB}M" -J >"$WORK/iperf3.json"
  secs=$("$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]["sum_received"]; print(e["seconds"], e["bytes"])' "$WORK/iperf3.json")
  record iperf3 $secs
  log "iperf3 run $r: $secs"
done
stop_pid "$IPERF_PID"; IPERF_PID=""

# ---- nginx (sendfile) -> curl ------------------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
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
    listen 127.0.0.1:$NGINX_PORT;
    root $SHM/src;
    location / { }
  }
}
EOF
"$NGINX_BIN" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
wait_until 10 "nginx to listen" port_open "$NGINX_PORT"
for where in tmpfs disk; do
  [[ $where == tmpfs ]] && dir=$SHM || dir=$DISK
  for ((r = 1; r <= REPS; r++)); do
    rm -f "$dir/curl.bin"; flush_disk
    t0=$(now)
    timeout "$STEP_TIMEOUT" curl -sS --fail -o "$dir/curl.bin" "http://127.0.0.1:$NGINX_PORT/big.bin"
    t1=$(now)
    sync "$dir/curl.bin"  # fsync, as zshare does before its rename
    t2=$(now)
    got=$(stat -c %s "$dir/curl.bin")
    [[ $got == "$BYTES" ]] || die "curl wrote $got bytes, expected $BYTES"
    record "curl-$where" "$(elapsed "$t0" "$t1")" "$BYTES"
    record "curlsync-$where" "$(elapsed "$t0" "$t2")" "$BYTES"
    log "nginx->curl to $where run $r: $(elapsed "$t0" "$t1") s ($(elapsed "$t0" "$t2") s with fsync)"
  done
  rm -f "$dir/curl.bin"
done
stop_pid "$NGINX_PID"; NGINX_PID=""

# ---- zshare ------------------------------------------------------------------------------------------------
two_ports() { "$PY" -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])'; }
"$BROKER_BIN" keygen --key "$WORK/broker.key" >/dev/null || die "zshare-broker keygen failed"
read -r CONTROL_PORT EVENTS_PORT < <(two_ports)
BROKER=tcp://127.0.0.1:$CONTROL_PORT
"$BROKER_BIN" --bind "$BROKER" --events "tcp://127.0.0.1:$EVENTS_PORT" --db "$WORK/broker.db" --rpclog none \
  --key "$WORK/broker.key" >/dev/null 2>"$WORK/broker.stderr" &
BROKER_PID=$!
PLAIN_BROKER=""  # the --plaintext broker, while it runs

# link_args LINK USER: sets LINK_ARGS, zshare-peer's options to use the Curve broker (LINK curve: its .pub, and
# USER's own keypair in WORK/keys/USER) or the plaintext broker (LINK plain: both ends --plaintext).
link_args() {
  if [[ $1 == curve ]]; then
    LINK_ARGS=(--broker "$BROKER" --broker-key "$WORK/broker.pub" --key-dir "$WORK/keys/$2")
  else
    LINK_ARGS=(--broker "$PLAIN_BROKER" --plaintext)
  fi
}
peer() { link_args "$1" "$2"; shift 2; "$PEER_BIN" "${LINK_ARGS[@]}" "$@"; }  # peer LINK USER ARGS...: in the foreground
wait_until 10 "the broker to answer" peer curve client --timeout 0.5 list-users

start_seeder() {  # start_seeder USER CHUNK_SIZE [LINK]: a share (hard link to the file) served by `zshare-peer serve`
  local user=$1 chunk=$2 link=${3:-curve}
  mkdir -p "$SHM/share-$user"
  ln -f "$FILE" "$SHM/share-$user/big.bin"
  link_args "$link" "$user"
  "$PEER_BIN" "${LINK_ARGS[@]}" --json serve --user "$user" --share "$SHM/share-$user" \
    --hash-cache "$WORK/hashes-$user.db" --chunk-size "$chunk" >"$WORK/serve-$user.out" 2>"$WORK/serve-$user.err" &
  SERVE_PID[$user]=$!
  wait_until 120 "serve $user to hash and publish" grep -q '"command":"SERVE"' "$WORK/serve-$user.out"
  grep -q '"status":"OK"' "$WORK/serve-$user.out" || die "serve $user: $(cat "$WORK/serve-$user.out" "$WORK/serve-$user.err")"
}
stop_seeder() { stop_pid "${SERVE_PID[$1]}"; unset "SERVE_PID[$1]"; }

zshare_get() {  # zshare_get LABEL LINK DEST_DIR [get options...]: one timed download by content id (LINK: curve, plain)
  local label=$1 link=$2 dir=$3; shift 3
  local dest=$dir/zshare.bin
  rm -f "$dest" "$dest.part"; flush_disk  # never a resume
  local t0 t1 code=0
  link_args "$link" client
  t0=$(now)
  timeout "$STEP_TIMEOUT" "$PEER_BIN" "${LINK_ARGS[@]}" --json get "$CID" "$dest" "$@" >"$WORK/get.json" 2>"$WORK/get.err" ||
    code=$?
  t1=$(now)
  [[ $code == 0 ]] || die "get $label exited $code: $(cat "$WORK/get.json" "$WORK/get.err")"
  [[ $(stat -c %s "$dest") == "$BYTES" ]] || die "get $label wrote the wrong size"
  record "$label" "$(elapsed "$t0" "$t1")" "$BYTES"
  log "$label: $(elapsed "$t0" "$t1") s ($("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join("%s %d chunks" % (s["user"], s["chunks"]) for s in d["sources"]))' "$WORK/get.json"))"
}

DEFAULT_CHUNK=262144
log "zshare: hashing and publishing (seeder 1)"
start_seeder seed1 "$DEFAULT_CHUNK"
CID=$(peer curve client --json list-content seed1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["cid"])')

# The same download without CurveZMQ: a --plaintext broker of its own and one --plaintext seeder, same file and
# chunk size (so the same content id), up only for the one-seeder tmpfs runs.
read -r PLAIN_CONTROL_PORT PLAIN_EVENTS_PORT < <(two_ports)
PLAIN_BROKER=tcp://127.0.0.1:$PLAIN_CONTROL_PORT
"$BROKER_BIN" --bind "$PLAIN_BROKER" --events "tcp://127.0.0.1:$PLAIN_EVENTS_PORT" --db "$WORK/broker-plain.db" \
  --rpclog none --plaintext >/dev/null 2>"$WORK/broker-plain.stderr" &
PLAIN_BROKER_PID=$!
wait_until 10 "the plaintext broker to answer" peer plain client --timeout 0.5 list-users
log "zshare plaintext: hashing and publishing (seeder plain1)"
start_seeder plain1 "$DEFAULT_CHUNK" plain

# Correctness once per link, outside the timings: the downloaded bytes are the file's.
for link in curve plain; do
  zshare_get "check-$link" "$link" "$SHM"
  cmp -s "$FILE" "$SHM/zshare.bin" || die "the file downloaded over $link differs from the source"
done
sed -i '/^check-/d' "$RESULTS"

# tmpfs: Curve and plaintext alternate, each going first in every other run, so host drift hits both alike.
for ((r = 1; r <= REPS; r++)); do
  if (( r % 2 == 1 )); then
    zshare_get zshare1-tmpfs curve "$SHM"; zshare_get plain1-tmpfs plain "$SHM"
  else
    zshare_get plain1-tmpfs plain "$SHM"; zshare_get zshare1-tmpfs curve "$SHM"
  fi
done
rm -f "$SHM/zshare.bin"
stop_seeder plain1
stop_pid "$PLAIN_BROKER_PID"; PLAIN_BROKER_PID=""

for ((r = 1; r <= REPS; r++)); do zshare_get zshare1-disk curve "$DISK"; done
rm -f "$DISK/zshare.bin"

if (( SEEDERS > 1 )); then
  for ((k = 2; k <= SEEDERS; k++)); do start_seeder "seed$k" "$DEFAULT_CHUNK"; done
  for ((r = 1; r <= REPS; r++)); do zshare_get "zshare$SEEDERS-tmpfs" curve "$SHM"; done
  for ((k = 2; k <= SEEDERS; k++)); do stop_seeder "seed$k"; done
fi

if [[ $VARIANTS == 1 ]]; then
  for chunk in $CHUNKS; do
    # Only the seeder of this chunk size is online, so `get` by content id uses exactly it.
    if [[ $chunk == "$DEFAULT_CHUNK" ]]; then
      [[ -n ${SERVE_PID[seed1]:-} ]] || start_seeder seed1 "$DEFAULT_CHUNK"
      user=seed1
    else
      [[ -n ${SERVE_PID[seed1]:-} ]] && stop_seeder seed1
      user=chunk$chunk
      start_seeder "$user" "$chunk"
    fi
    for w in $WINDOWS; do
      for ((r = 1; r <= REPS; r++)); do zshare_get "var-c$chunk-w$w" curve "$SHM" --window "$w"; done
    done
    [[ $user == seed1 ]] || stop_seeder "$user"
  done
  rm -f "$SHM/zshare.bin"
fi

# ---- the table ---------------------------------------------------------------------------------------------
"$PY" - "$RESULTS" "$SIZE_MIB" "$REPS" "$SEEDERS" "$SHM_DIR" "$DISK_DIR" <<'EOF'
import collections, statistics, sys
path, size_mib, reps, seeders, shm, disk = sys.argv[1:]
runs = collections.defaultdict(list)
for line in open(path):
    label, secs, nbytes = line.split()
    runs[label].append(int(nbytes) / float(secs) / 1e6)

def stat(label):
    v = runs.get(label)
    if not v:
        return None
    m = statistics.median(v)
    return m, min(v), max(v)

def cell(label):
    s = stat(label)
    if not s:
        return "-"
    m, lo, hi = s
    return "%5.0f [%4.0f-%4.0f] ±%2.0f%%" % (m, lo, hi, 100 * (hi - lo) / 2 / m)

def ratio(a, b):
    sa, sb = stat(a), stat(b)
    return "%.2f" % (sa[0] / sb[0]) if sa and sb else "-"

print()
print("zshare transfer bench: %s MiB file, loopback, %s runs each; MB/s = 10^6 B/s, median [min-max] ±half-spread"
      % (size_mib, reps))
print("zshare over CurveZMQ unless the row says plaintext")
print("%-34s %-24s %-24s" % ("measurement", "tmpfs (%s)" % shm, "disk (%s)" % disk))
print("%-34s %-24s %-24s" % ("iperf3 loopback (no file)", cell("iperf3"), ""))
print("%-34s %-24s %-24s" % ("nginx sendfile -> curl", cell("curl-tmpfs"), cell("curl-disk")))
print("%-34s %-24s %-24s" % ("nginx sendfile -> curl + fsync", cell("curlsync-tmpfs"), cell("curlsync-disk")))
print("%-34s %-24s %-24s" % ("zshare 1 seeder -> get", cell("zshare1-tmpfs"), cell("zshare1-disk")))
print("%-34s %-24s %-24s" % ("zshare plaintext 1 seeder -> get", cell("plain1-tmpfs"), ""))
if int(seeders) > 1:
    print("%-34s %-24s %-24s" % ("zshare %s seeders -> get" % seeders, cell("zshare%s-tmpfs" % seeders), ""))
print("%-34s %-24s %-24s" % ("ratio zshare / nginx+curl", ratio("zshare1-tmpfs", "curl-tmpfs"), ratio("zshare1-disk", "curl-disk")))
print("%-34s %-24s %-24s" % ("ratio zshare / nginx+curl+fsync", ratio("zshare1-tmpfs", "curlsync-tmpfs"),
                             ratio("zshare1-disk", "curlsync-disk")))
print("%-34s %-24s %-24s" % ("ratio zshare / iperf3", ratio("zshare1-tmpfs", "iperf3"), ratio("zshare1-disk", "iperf3")))
print("%-34s %-24s %-24s" % ("ratio zshare-curve / zshare-plain", ratio("zshare1-tmpfs", "plain1-tmpfs"), ""))
if runs.get("zshare1-tmpfs") and runs.get("plain1-tmpfs"):
    pairs = [c / p for c, p in zip(runs["zshare1-tmpfs"], runs["plain1-tmpfs"])]
    print("%-34s %-24s" % ("  per-run pairs (alternating)", "%.2f-%.2f" % (min(pairs), max(pairs))))
    print("%-34s %-24s" % ("ratio zshare-plain / nginx+curl", ratio("plain1-tmpfs", "curl-tmpfs")))
if int(seeders) > 1:
    print("%-34s %-24s" % ("ratio %s seeders / 1 seeder" % seeders, ratio("zshare%s-tmpfs" % seeders, "zshare1-tmpfs")))

variants = sorted({l for l in runs if l.startswith("var-")})
if variants:
    chunks = sorted({int(l.split("-")[1][1:]) for l in variants})
    windows = sorted({int(l.split("-")[2][1:]) for l in variants})
    print()
    print("variants, 1 seeder -> get to tmpfs, median MB/s [min-max]")
    print("%-12s" % "chunk \\ win" + "".join("%-20s" % ("window %d" % w) for w in windows))
    def human(c):
        return "%d KiB" % (c // 1024) if c < 1 << 20 else "%d MiB" % (c >> 20)
    for c in chunks:
        row = "%-12s" % human(c)
        for w in windows:
            s = stat("var-c%d-w%d" % (c, w))
            row += "%-20s" % ("%5.0f [%4.0f-%4.0f]" % s if s else "-")
        print(row)
    best = max(variants, key=lambda l: stat(l)[0])
    _, c, w = best.split("-")
    print("best: chunk %s, window %s: %.0f MB/s (%.2f x iperf3)" % (human(int(c[1:])), w[1:], stat(best)[0],
          stat(best)[0] / stat("iperf3")[0] if stat("iperf3") else float("nan")))
EOF
