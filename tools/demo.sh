#!/usr/bin/env bash
# make demo: a whole zshare network on loopback: broker, time service, operations logger and three peers.
# alice and bob serve files; carol searches and downloads from both at once, verified. The event stream and
# the operations log scroll by as it happens. Everything lives in a temp folder, removed at the end or on Ctrl-C.
set -euo pipefail

BUILD=${1:-build}
BIN_BROKER="$BUILD/broker/zshare-broker"
BIN_PEER="$BUILD/peer/zshare-peer"
BIN_TIME="$BUILD/timesvc/zshare-timesvc"
BIN_LOG="$BUILD/rpclog/zshare-rpclog"
BIN_EVENTS="$BUILD/tools/events/zshare-events"
WORK=$(mktemp -d /tmp/zshare-demo-XXXXXX)
PIDS=()

cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Colour only on a terminal, and never with NO_COLOR set (no-color.org).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; sleep 0.4; }
else
  say() { printf '\n== %s\n' "$*"; sleep 0.4; }
fi
indent() { sed -u "s/^/  $1 | /"; }

# Waits until FILE has a line matching PATTERN, for at most 20 s.
wait_for_line() {
  local file=$1 pattern=$2 deadline=$((SECONDS + 20))
  until grep -q -- "$pattern" "$file" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "demo: timed out waiting for '$pattern' in $file" >&2; exit 1; fi
    sleep 0.05
  done
}

CONTROL="tcp://127.0.0.1:$(free_port)"
EVENTS="tcp://127.0.0.1:$(free_port)"
TIME_PORT=$(free_port)
LOG_PORT=$(free_port)
export ZSHARE_BROKER="$CONTROL" ZSHARE_EVENTS="$EVENTS" ZSHARE_TIMESVC="http://127.0.0.1:$TIME_PORT"
# Every link is CurveZMQ: everyone learns the broker's public key; each person's keypair is made on first use
# in their own key folder (ZSHARE_KEY_DIR, as --key-dir), so a user belongs to the key that registered it.
export ZSHARE_BROKER_KEY="$WORK/broker.pub" ZSHARE_KEY_DIR="$WORK/keys/operator"
as() { local who=$1; shift; ZSHARE_KEY_DIR="$WORK/keys/$who" "$@"; }

say "Side services: SOAP time service on :$TIME_PORT, ONC-RPC operations logger on :$LOG_PORT"
# Background programs write through process substitution, so $! is the program itself and killing it
# ends its indenting filter too.
"$BIN_TIME" --bind 127.0.0.1 --port "$TIME_PORT" > >(indent "time  ") 2>&1 &
PIDS+=($!)
"$BIN_LOG" --bind 127.0.0.1 --port "$LOG_PORT" --log "$WORK/operations.log" > >(indent "rpclog") 2>&1 &
PIDS+=($!)
touch "$WORK/operations.log"

say "The broker: its CurveZMQ keypair (zshare-broker keygen), control $CONTROL, events $EVENTS, index in SQLite"
"$BIN_BROKER" keygen --key "$WORK/broker.key" | indent "keygen"
"$BIN_BROKER" --bind "$CONTROL" --events "$EVENTS" --db "$WORK/broker.db" --rpclog "127.0.0.1:$LOG_PORT" \
  --key "$WORK/broker.key" > >(indent "broker") 2>&1 &
PIDS+=($!)
"$BIN_PEER" --timeout 5 list-users >/dev/null  # returns once the broker answers (Lazy Pirate retries meanwhile)

say "Watching: every event the broker publishes, and every line the logger appends"
"$BIN_EVENTS" > >(indent "event ") 2>&1 &
PIDS+=($!)
tail -n +1 -f "$WORK/operations.log" > >(indent "log   ") &
PIDS+=($!)
sleep 0.3

mkdir -p "$WORK/alice" "$WORK/bob" "$WORK/carol"
head -c $((24 * 1024 * 1024)) /dev/urandom >"$WORK/alice/river-sessions-live.flac"
cp "$WORK/alice/river-sessions-live.flac" "$WORK/bob/river-sessions-live.flac"  # both seed the album
printf 'Notes from the river stage, 2026.\n' >"$WORK/alice/stage-notes.txt"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/bob/sunset-timelapse.mp4"

say "alice and bob start seeding their folders (zshare-peer serve)"
ZSHARE_KEY_DIR="$WORK/keys/alice" "$BIN_PEER" serve --user alice --share "$WORK/alice" --hash-cache "$WORK/alice.hashes" --rate-limit 20000000 \
  >"$WORK/alice.out" 2>&1 &
PIDS+=($!)
ZSHARE_KEY_DIR="$WORK/keys/bob" "$BIN_PEER" serve --user bob --share "$WORK/bob" --hash-cache "$WORK/bob.hashes" --rate-limit 20000000 \
  >"$WORK/bob.out" 2>&1 &
BOB=$!
PIDS+=($BOB)
wait_for_line "$WORK/alice.out" "^SERVE OK"
wait_for_line "$WORK/bob.out" "^SERVE OK"
sleep 0.5

say "carol, in the peer shell: register, connect, who is online, what is there"
printf 'REGISTER carol\nCONNECT carol\nLIST_USERS\nSEARCH river live\nLIST_CONTENT bob\nQUIT\n' \
  | as carol "$BIN_PEER" shell 2>&1 | indent "carol "
sleep 0.5

CID=$("$BIN_PEER" hash "$WORK/alice/river-sessions-live.flac" | cut -d' ' -f1)  # the Merkle root of protocol v3
say "carol downloads the album by content id from every peer that holds it, verified chunk by chunk"
as carol "$BIN_PEER" --json get "$CID" "$WORK/carol/album.flac" \
  | /usr/bin/python3 -c 'import json,sys
s=json.loads(sys.stdin.read())
print("%s: %d bytes in %.2f s, %d chunks, %d bad" % (s["status"], s["size"], s["seconds"], s["chunks"], s["bad_chunks"]))
for src in s["sources"]: print("  from %-6s %3d chunks  %s" % (src["user"], src["chunks"], src["endpoint"]))' \
  | indent "carol "
GOT=$("$BIN_PEER" hash "$WORK/carol/album.flac" | cut -d' ' -f1)
echo "  check | $GOT (downloaded)"
echo "  check | $CID (content id)"
[ "$GOT" = "$CID" ] || { echo "demo: the downloaded album is not the published one" >&2; exit 1; }

say "mallory, with a key of her own, tries to take alice's name off the network: DENIED, alice stays"
{ as mallory "$BIN_PEER" unregister alice 2>&1 || true; } | indent "mallory"
"$BIN_PEER" list-content alice | head -n 3 | indent "check "

say "bob stops seeding (SIGTERM): he disconnects, his files stay in the index, offline"
kill -TERM "$BOB"
wait_for_line "$WORK/bob.out" "^DISCONNECT OK"
"$BIN_PEER" search --all sunset | indent "search"
sleep 0.8

say "The operations log, through the logger's QUERY (zshare-rpclog tail): the last 5 PUBLISH records"
"$BIN_LOG" tail --server "127.0.0.1:$LOG_PORT" --op PUBLISH -n 5 | indent "tail  "
say "Done: everything stops and the temporary folder is removed."
