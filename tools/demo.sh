#!/usr/bin/env bash
# make demo: a broker on loopback and a scripted session of two peers (register, connect, publish, list,
# search), printing what happens. Everything runs in a temporary folder removed at the end or on Ctrl-C.
set -euo pipefail

BUILD=${1:-build}
BROKER="$BUILD/broker/zshare-broker"
PEER="$BUILD/peer/zshare-peer"
WORK=$(mktemp -d /tmp/zshare-demo-XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Waits until FILE has COUNT lines matching PATTERN, for at most 10 s.
wait_for_lines() {
  local file=$1 pattern=$2 count=$3 deadline=$((SECONDS + 10))
  until [ "$(grep -c -- "$pattern" "$file" 2>/dev/null)" -ge "$count" ]; do
    if [ $SECONDS -ge $deadline ]; then echo "demo: timed out waiting for '$pattern'" >&2; exit 1; fi
    sleep 0.05
  done
}

CONTROL="tcp://127.0.0.1:$(free_port)"
EVENTS="tcp://127.0.0.1:$(free_port)"
export ZSHARE_BROKER="$CONTROL"

say "Broker on $CONTROL (events on $EVENTS), index in $WORK/broker.db"
"$BROKER" --bind "$CONTROL" --events "$EVENTS" --db "$WORK/broker.db" 2>"$WORK/broker.log" &
PIDS+=($!)
"$PEER" --timeout 5 list-users >/dev/null  # returns once the broker answers (Lazy Pirate retries meanwhile)
cat "$WORK/broker.log"

mkdir -p "$WORK/alice"
printf 'Recorded live at the river stage, 2026.\n' >"$WORK/alice/blue-river-live.flac"
head -c 300000 /dev/urandom >"$WORK/alice/sunset-timelapse.mp4"

say "alice opens a shell: register, connect, publish two files"
mkfifo "$WORK/alice.in"
"$PEER" shell <"$WORK/alice.in" >"$WORK/alice.out" 2>&1 &
PIDS+=($!)
exec 3>"$WORK/alice.in"
for cmd in "REGISTER alice" "CONNECT alice" \
           "PUBLISH $WORK/alice/blue-river-live.flac Blue River, live concert recording" \
           "PUBLISH $WORK/alice/sunset-timelapse.mp4 Sunset over the river, timelapse video"; do
  printf '%s\n' "$cmd" >&3
done
wait_for_lines "$WORK/alice.out" "^PUBLISH " 2
sed 's/^/  alice| /' "$WORK/alice.out"

say "bob, piped into a shell: register, connect, list users, list alice's content, search"
printf 'REGISTER bob\nCONNECT bob\nLIST_USERS\nLIST_CONTENT alice\nSEARCH river\nSEARCH timelapse video\nSEARCH nothing-like-this\nREGISTER alice\nQUIT\n' \
  | "$PEER" shell 2>&1 | sed 's/^/  bob  | /'

say "alice quits (disconnects first); the index keeps her files, offline"
printf 'QUIT\n' >&3
exec 3>&-
"$PEER" search river | sed 's/^/  search| /'
say "Done. The demo grows with the transfer, time service and logger issues."
