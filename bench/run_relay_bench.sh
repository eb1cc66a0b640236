#!/usr/bin/env bash
# run_relay_bench.sh: zshare-relay's forwarding against socat's (GUIDE.md section 4, "How we measure"). Not a test.
# SIZE_MIB of raw bytes on loopback, the same sender and receiver (bench/relay_bench_client.py: 1 MiB writes, then a
# half close; the receiver times from its first byte to the end of the stream) in every row:
#   - relay: both ends dial zshare-relay (SOCKS5 handshake with a token minted from its secret), which pairs them and
#     splices (socket -> pipe -> socket, no copy in user space; no --rate-limit);
#   - socat: `socat TCP-LISTEN:P TCP:127.0.0.1:R` between the same two ends (socat 1.7 copies with read/write; its
#     default 8 KiB blocks, and -b SOCAT_BLOCK, the fairer baseline).
# Each of the REPS repetitions runs every row once, the order rotated by one per repetition. The table: MB/s (10^6
# bytes/s) median [min-max], and the forwarder's CPU seconds per GiB (2^30 bytes): utime + stime of the relay from
# /proc/<pid>/stat before and after the transfer, of socat from /usr/bin/time (it exits after its one connection).
# Clock ticks are 10 ms: use SIZE_MIB >= 512 for CPU figures you quote. Then the ratio relay / socat -b throughput,
# per repetition and the median.
#
# Usage: bench/run_relay_bench.sh   (ZSHARE_BUILD=DIR, default build-release)
# Knobs (environment): SIZE_MIB=256 REPS=5 SOCAT_BLOCK=131072 BUILD_FIRST=1 (configure/build zshare-relay) JOBS=2
#   STEP_TIMEOUT=120 (seconds any one transfer) KEEP_TMP=0
# Loopback only; cleans up via trap. Needs socat (tools/install-deps.sh installs it) and /usr/bin/python3.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${ZSHARE_BUILD:-build-release}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
SIZE_MIB=${SIZE_MIB:-256}
REPS=${REPS:-5}
SOCAT_BLOCK=${SOCAT_BLOCK:-131072}
BUILD_FIRST=${BUILD_FIRST:-1}
JOBS=${JOBS:-2}
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
KEEP_TMP=${KEEP_TMP:-0}
PY=/usr/bin/python3
CLIENT=$REPO/bench/relay_bench_client.py

command -v socat >/dev/null || { echo "run_relay_bench.sh: socat is missing: sudo apt-get install socat (or tools/install-deps.sh)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "run_relay_bench.sh: /usr/bin/time is missing: sudo apt-get install time" >&2; exit 2; }

if [[ $BUILD_FIRST == 1 ]]; then
  [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" --target zshare-relay -j "$JOBS" >/dev/null
fi
RELAY_BIN=$BUILD/relay/zshare-relay
[[ -x $RELAY_BIN ]] || { echo "run_relay_bench.sh: no $RELAY_BIN (BUILD_FIRST=1 builds it)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/zshare-relay-bench-XXXXXX)
RELAY_PID=
cleanup() {
  [[ -n $RELAY_PID ]] && kill "$RELAY_PID" 2>/dev/null && wait "$RELAY_PID" 2>/dev/null
  [[ $KEEP_TMP == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; its name may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

start_relay() {
  "$RELAY_BIN" secret "$WORK/relay.secret" >/dev/null
  "$RELAY_BIN" --bind tcp://127.0.0.1:0 --secret-file "$WORK/relay.secret" >"$WORK/relay.out" 2>"$WORK/relay.err" &
  RELAY_PID=$!
  for _ in $(seq 100); do
    [[ -s $WORK/relay.out ]] && break
    sleep 0.05
  done
  RELAY_PORT=$(sed -n '1s/.*:\([0-9]*\)$/\1/p' "$WORK/relay.out")
  [[ -n $RELAY_PORT ]] || { echo "zshare-relay did not start: $(cat "$WORK/relay.err")" >&2; exit 1; }
}

# Each row appends "row rep bytes seconds cpu_seconds" to $WORK/results.
row_relay() {
  local rep=$1 hosts seeder_host downloader_host before after
  hosts=$($PY "$CLIENT" token --secret-file "$WORK/relay.secret")
  seeder_host=${hosts%% *}
  downloader_host=${hosts#* }
  before=$(cpu_ticks "$RELAY_PID")
  timeout "$STEP_TIMEOUT" $PY "$CLIENT" receive --connect "127.0.0.1:$RELAY_PORT" --socks-host "$downloader_host" \
    >"$WORK/recv.out" &
  local receiver=$!
  timeout "$STEP_TIMEOUT" $PY "$CLIENT" send --connect "127.0.0.1:$RELAY_PORT" --socks-host "$seeder_host" --mib "$SIZE_MIB"
  wait "$receiver"
  after=$(cpu_ticks "$RELAY_PID")
  echo "relay $rep $(cat "$WORK/recv.out") $(awk -v t=$((after - before)) 'BEGIN{print t/100}')" >>"$WORK/results"
}

row_socat() {
  local rep=$1 name=$2 block=$3 listen_port receiver_port
  timeout "$STEP_TIMEOUT" $PY "$CLIENT" receive --listen >"$WORK/recv.out" &
  local receiver=$!
  for _ in $(seq 100); do
    receiver_port=$(head -n1 "$WORK/recv.out")
    [[ -n $receiver_port ]] && break
    sleep 0.02
  done
  listen_port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local -a block_args=()
  [[ -n $block ]] && block_args=(-b "$block")
  timeout "$STEP_TIMEOUT" /usr/bin/time -f '%U %S' -o "$WORK/socat.time" \
    socat "${block_args[@]}" "TCP-LISTEN:$listen_port,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$receiver_port" &
  local forwarder=$!
  timeout "$STEP_TIMEOUT" $PY "$CLIENT" send --connect "127.0.0.1:$listen_port" --mib "$SIZE_MIB"
  wait "$receiver"
  wait "$forwarder"
  echo "$name $rep $(tail -n1 "$WORK/recv.out") $(awk '{print $1 + $2}' "$WORK/socat.time")" >>"$WORK/results"
}

run_row() {
  case $1 in
    relay) row_relay "$2" ;;
    socat-8K) row_socat "$2" socat-8K "" ;;
    socat-b) row_socat "$2" "socat-b$SOCAT_BLOCK" "$SOCAT_BLOCK" ;;
  esac
}

start_relay
ROWS=(relay socat-8K socat-b)
echo "# $SIZE_MIB MiB per transfer, $REPS repetitions, rows rotated; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((rep = 0; rep < REPS; rep++)); do
  for ((i = 0; i < ${#ROWS[@]}; i++)); do
    run_row "${ROWS[(i + rep) % ${#ROWS[@]}]}" "$rep"
  done
done
kill "$RELAY_PID"
wait "$RELAY_PID" || true
RELAY_PID=
echo "# relay: $(tail -n1 "$WORK/relay.err")"

$PY - "$WORK/results" "socat-b$SOCAT_BLOCK" <<'EOF'
import statistics
import sys
from collections import defaultdict

rows = defaultdict(dict)
for line in open(sys.argv[1]):
    name, rep, size, seconds, cpu = line.split()
    rows[name][int(rep)] = (int(size), float(seconds), float(cpu))
baseline = sys.argv[2]
print("%-16s %28s %22s" % ("row", "MB/s median [min-max]", "CPU s/GiB median"))
for name in ["relay", "socat-8K", baseline]:
    runs = rows[name].values()
    rates = sorted(size / seconds / 1e6 for size, seconds, _ in runs)
    cpu = statistics.median(cpu / (size / 2**30) for size, _, cpu in runs)
    print("%-16s %10.0f [%6.0f-%6.0f] %22.3f" % (name, statistics.median(rates), rates[0], rates[-1], cpu))
ratios = [(rows["relay"][r][0] / rows["relay"][r][1]) / (rows[baseline][r][0] / rows[baseline][r][1])
          for r in sorted(rows["relay"]) if r in rows[baseline]]
print("relay / %s throughput: median %.2f, per repetition %s"
      % (baseline, statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
EOF
