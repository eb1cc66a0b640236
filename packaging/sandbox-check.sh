#!/bin/sh
# sandbox-check.sh [BUILD]: runs the five units of examples/systemd/, sandbox and all, under a real systemd and
# checks the programs still do their work: the broker answers and writes /var/lib/zshare/broker.db, a peer
# (zshare-peer-serve@alice) publishes its share folder and serves a download, the logger writes
# /var/log/zshare/operations.log, the time service answers, the relay (its secret a credential) pairs two
# connections of a token and forwards bytes both ways, and each unit stops cleanly.
# systemd-analyze only reads the units; this runs them. Not part of `make test`: it needs root, and it boots
# /lib/systemd/systemd as PID 1 of a new PID, mount and UTS namespace (unshare), where /etc (an overlay),
# /run, /tmp, /var/lib, /var/log, /srv and /usr/local/bin are private, so nothing of this machine changes; the
# network is this machine's, on 127.0.0.1 ports 25555-25558, 26000 and 28080. The programs come from BUILD
# (default build/). Exits 0 when every check passed.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
[ "$(id -u)" = 0 ] || { echo "sandbox-check: needs root (it mounts in private namespaces)" >&2; exit 2; }
for tool in unshare nsenter /lib/systemd/systemd python3; do
  command -v "$tool" >/dev/null || { echo "sandbox-check: $tool is missing" >&2; exit 2; }
done

W=$(mktemp -d /tmp/zshare-sandbox.XXXXXX)
SD=""
cleanup() {
  if [ -n "$SD" ]; then kill -9 "$SD" 2>/dev/null || true; fi  # the namespace's PID 1: all in it go too
  sleep 1
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

mkdir -p "$W/bin" "$W/units" "$W/zshare" "$W/share"
for p in broker peer rpclog timesvc relay; do cp "$BUILD/$p/zshare-$p" "$W/bin/"; done
cp "$SRC"/examples/systemd/*.service "$W/units/"
# Only what these units need: no sysinit.target (the host's units stay out), output into /run/zlog/.
for u in zshare-broker zshare-rpclog zshare-timesvc zshare-relay zshare-peer-serve@; do
  mkdir -p "$W/units/$u.service.d"
  printf '[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=append:/run/zlog/%%n.log\nStandardError=inherit\n' \
    > "$W/units/$u.service.d/sandbox-check.conf"
done
printf '[Unit]\nDefaultDependencies=no\nWants=zshare-rpclog.service zshare-timesvc.service zshare-broker.service zshare-relay.service zshare-peer-serve@alice.service\n' \
  > "$W/units/zshare-sandbox-check.target"
cat > "$W/zshare/broker.toml" <<'EOF'
bind = "tcp://127.0.0.1:25555"
events = "tcp://127.0.0.1:25556"
db = "/var/lib/zshare/broker.db"
rpclog = "127.0.0.1:25557"
key = "/etc/zshare/broker.key"
EOF
printf 'bind = "127.0.0.1"\nport = 25557\nlog = "/var/log/zshare/operations.log"\n' > "$W/zshare/rpclog.toml"
printf 'bind = "127.0.0.1"\nport = 28080\nthreads = 2\n' > "$W/zshare/timesvc.toml"
printf 'bind = "tcp://127.0.0.1:25558"\n' > "$W/zshare/relay.toml"
cat > "$W/zshare/peer-alice.toml" <<'EOF'
broker = "tcp://127.0.0.1:25555"
broker-key = "/etc/zshare/broker.pub"
timesvc = "http://127.0.0.1:28080"

[serve]
user = "alice"
share = "/srv/zshare/alice"
listen = "tcp://127.0.0.1:26000"
advertise = "127.0.0.1"
EOF
"$W/bin/zshare-broker" keygen --key "$W/zshare/broker.key" >/dev/null
"$W/bin/zshare-relay" secret "$W/zshare/relay.secret" >/dev/null   # root's, 0600, like broker.key
head -c 300000 /dev/urandom > "$W/share/song.flac"
echo hello > "$W/share/notes.txt"

cat > "$W/boot.sh" <<EOF
#!/bin/sh
set -e
mount -t tmpfs tmpfs /run && mkdir -p /run/zlog
mount -t cgroup2 none /sys/fs/cgroup
mkdir -p $W/etc-up $W/etc-work
mount -t overlay overlay -o lowerdir=/etc,upperdir=$W/etc-up,workdir=$W/etc-work /etc
rm -rf /etc/systemd/system && cp -a $W/units /etc/systemd/system
mkdir -p /etc/zshare && cp -p $W/zshare/* /etc/zshare/
getent passwd zshare >/dev/null || echo 'zshare:x:64990:64990:zshare:/var/lib/zshare:/usr/sbin/nologin' >> /etc/passwd
getent group zshare >/dev/null || echo 'zshare:x:64990:' >> /etc/group
for d in /var/lib /var/log /srv /usr/local/bin; do mount -t tmpfs tmpfs \$d; done
mkdir -p /srv/zshare/alice && cp $W/share/* /srv/zshare/alice/
cp $W/bin/* /usr/local/bin/
mount -t tmpfs tmpfs /tmp
mount --make-rshared /
exec env -i container=zshare-sandbox-check PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd \
  --unit=zshare-sandbox-check.target --log-target=null --show-status=no
EOF
chmod +x "$W/boot.sh"
unshare --pid --fork --mount-proc --mount --uts --propagation private "$W/boot.sh" >"$W/boot.log" 2>&1 &
UNSHARE=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
  SD=$(pgrep -P "$UNSHARE" || true)
  [ -n "$SD" ] && break
  sleep 0.5
done
[ -n "$SD" ] || { echo "sandbox-check: systemd did not start: $(cat "$W/boot.log")" >&2; exit 1; }

inside() { nsenter -t "$SD" -m -p -u "$@"; }
FAILED=0
ok() { echo "ok: $1"; }
fail() { echo "FAIL: $1" >&2; FAILED=1; }
sleep 6
for u in zshare-rpclog zshare-timesvc zshare-broker zshare-relay zshare-peer-serve@alice; do
  if [ "$(inside systemctl is-active "$u" || true)" = active ]; then ok "$u is running in its sandbox"
  else fail "$u is not running: $(inside sh -c "tail -n 5 /run/zlog/$u.service.log")"; fi
done
peer() {
  inside env ZSHARE_HOME=/run/bob ZSHARE_BROKER=tcp://127.0.0.1:25555 ZSHARE_BROKER_KEY=/etc/zshare/broker.pub \
    ZSHARE_TIMESVC=http://127.0.0.1:28080 /usr/local/bin/zshare-peer "$@"
}
if peer list-content alice | grep -q '^song.flac'; then ok "the broker indexed alice's files (published by the unit)"
else fail "alice's files are not in the index"; fi
if peer get --no-progress alice:song.flac /run/song.flac >/dev/null 2>&1 && inside cmp -s /run/song.flac /srv/zshare/alice/song.flac
then ok "a download from zshare-peer-serve@alice is identical"; else fail "the download from alice failed"; fi
inside test -s /var/lib/zshare/broker.db && ok "the broker writes /var/lib/zshare/broker.db" \
  || fail "no /var/lib/zshare/broker.db"
inside test -s /var/lib/zshare/peer-alice/peer.key && ok "the peer's key is in /var/lib/zshare/peer-alice" \
  || fail "no /var/lib/zshare/peer-alice/peer.key"
inside grep -q ' alice PUBLISH ' /var/log/zshare/operations.log && ok "the logger writes /var/log/zshare/operations.log" \
  || fail "no PUBLISH line in /var/log/zshare/operations.log"
inside python3 -c 'import urllib.request; assert b"definitions" in urllib.request.urlopen("http://127.0.0.1:28080/?wsdl", timeout=5).read()' \
  && ok "the time service answers" || fail "the time service does not answer"
# The relay: a token minted with /etc/zshare/relay.secret (as the broker mints them, schemas/transfer.md), its two
# sides over SOCKS5 as libzmq dials them, then 1 MiB each way through splice(2) and its pipes.
relay_pair='
import hashlib, hmac, os, socket, time
secret = bytes.fromhex(open("/etc/zshare/relay.secret").read().strip())
expiry, nonce = int(time.time()) + 600, os.urandom(16).hex()
mac = hmac.new(secret, ("zshare-relay-v1|%d|%s" % (expiry, nonce)).encode(), hashlib.sha256).hexdigest()[:32]
def exactly(s, n):
    data = b""
    while len(data) < n:
        part = s.recv(n - len(data))
        assert part, "the relay closed the connection"
        data += part
    return data
def side(letter):
    s = socket.create_connection(("127.0.0.1", 25558), timeout=10)
    s.sendall(bytes([5, 1, 0]))
    assert exactly(s, 2) == bytes([5, 0])
    name = ("%s.%d.%s.%s" % (letter, expiry, nonce, mac)).encode()
    s.sendall(bytes([5, 1, 0, 3, len(name)]) + name + bytes([0, 9]))
    return s
d = side("d")
s = side("s")
assert exactly(s, 10)[:2] == bytes([5, 0]) and exactly(d, 10)[:2] == bytes([5, 0]), "not paired"
up, down = os.urandom(1 << 20), os.urandom(1 << 20)
d.sendall(up)
assert exactly(s, len(up)) == up
s.sendall(down)
assert exactly(d, len(down)) == down
'
inside python3 -c "$relay_pair" && ok "the relay pairs a token's two sides and forwards 1 MiB each way" \
  || fail "the relay does not pair or forward: $(inside sh -c 'tail -n 5 /run/zlog/zshare-relay.service.log')"
inside sh -c 'grep -q "paired" /run/zlog/zshare-relay.service.log' && ok "the relay logs the pairing" \
  || fail "no pairing line in the relay's log"
# One at a time, in shutdown's order (After=): the peer says DISCONNECT while the broker still answers. (One
# `systemctl stop` naming them all queues one job per unit and may stop the broker first.)
for u in zshare-peer-serve@alice zshare-relay zshare-broker zshare-timesvc zshare-rpclog; do
  inside systemctl stop "$u"
  result=$(inside systemctl show -p Result --value "$u")
  if [ "$result" = success ]; then ok "$u stops cleanly"
  else fail "$u stopped with $result: $(inside systemctl status "$u" --no-pager | grep -E 'Process|Main PID')"; fi
done
[ "$FAILED" = 0 ] && echo "sandbox-check: every check passed" || echo "sandbox-check: some checks failed" >&2
exit "$FAILED"
