# bench_lib.sh: shell helpers the benchmark scripts share (sourced, never run): the cleanup of the processes a
# script started and of its temporary folder, and free loopback ports. Uses the caller's STARTED (pids: each one's
# children are stopped first, as a /usr/bin/time wrapper would not forward the signal), TMP, KEEP_TMP and PY.

cleanup() {
  local p c
  for p in "${STARTED[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -TERM "$c" 2>/dev/null || true; done
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ $KEEP_TMP == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}

free_ports() {  # free_ports N: N distinct free loopback ports
  "$PY" -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
