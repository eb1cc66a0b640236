#!/usr/bin/env python3
# relay_test.py: a real zshare-relay on 127.0.0.1 pairing libzmq sockets that dial it through their SOCKS5 client
# (pyzmq, zmq.SOCKS_PROXY), with tokens minted here from the spec alone (an independent HMAC), and raw SOCKS5
# clients for what libzmq would not send: a CURVE ROUTER (the seeder) and DEALER (the downloader) exchange messages
# and MiBs both ways; bad, expired and malformed tokens are refused and pair nothing; a second connection for a
# live token's side is refused; the per-IP cap refuses a flood and the relay still serves a pair; idle circuits and
# unpaired connections are closed after their timeouts; after a kill -9 and a restart on the same port the libzmq
# sockets reconnect with the same token; --rate-limit paces a transfer; the secret file's rules. Every wait is a
# condition with a deadline.
import argparse
import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import zmq

from zshare_testlib import Checks, DaemonProcess, wait_for

CHECKS = Checks()
RELAYS = []  # every relay started, stopped and removed at the end whatever happened
SUCCEEDED = bytes([5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
NOT_ALLOWED = bytes([5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
ADDRESS_TYPE_NOT_SUPPORTED = bytes([5, 8, 0, 1, 0, 0, 0, 0, 0, 0])
MIB = 1 << 20


def section(name):
    print("-- %s" % name, flush=True)


# ---- tokens, from the spec ----

def new_secret():
    return os.urandom(32)


def side_mac(secret, side, expiry, nonce):
    """The first 32 hex digits of HMAC-SHA256(secret, "zshare-relay-v2|<side>|<expiry>|<nonce>"), side s or d."""
    return hmac.new(secret, ("zshare-relay-v2|%s|%d|%s" % (side, expiry, nonce)).encode(),
                    hashlib.sha256).hexdigest()[:32]


def mint(secret, ttl_s=600, now_s=None, nonce=None):
    """(expiry, nonce): a pair; each side's host carries its own mac (host())."""
    expiry = int(time.time() if now_s is None else now_s) + ttl_s
    return expiry, nonce or os.urandom(16).hex(), secret


def host(side, token, mac=None):
    expiry, nonce, secret = token
    return "%s.%d.%s.%s" % (side, expiry, nonce, mac or side_mac(secret, side, expiry, nonce))


# ---- the relay process ----

class Relay(DaemonProcess):
    """A zshare-relay on 127.0.0.1 with its own secret file; stdout and stderr kept in its folder."""

    def __init__(self, binary, secret, extra_args=()):
        self.binary = binary
        self.workdir = tempfile.mkdtemp(prefix="zshare-relay-")
        self.secret_path = os.path.join(self.workdir, "relay.secret")
        with open(os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secret.hex() + "\n")
        self.extra_args = list(extra_args)
        self.port = 0
        self.proc = None
        self.out_path = os.path.join(self.workdir, "relay.out")
        self.err_path = os.path.join(self.workdir, "relay.err")
        RELAYS.append(self)

    def start(self, deadline_s=10):
        """Starts it (on the port of the previous start, if any) and waits for its "listening on" line."""
        with open(self.out_path, "wb") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", "tcp://127.0.0.1:%d" % self.port, "--secret-file", self.secret_path]
                + self.extra_args, stdout=out, stderr=err)

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError("zshare-relay exited with %s: %s" % (self.proc.returncode, self.stderr()))
            lines = open(self.out_path).read().splitlines()
            return lines[0] if lines and lines[0].startswith("zshare-relay listening on tcp://127.0.0.1:") else None
        line = wait_for(listening, deadline_s, "zshare-relay to print its endpoint")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    @property
    def proxy(self):
        return ("127.0.0.1:%d" % self.port).encode()

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:  # cleaned up already
            return ""


    def log_lines(self, word, nonce):
        """The log lines of this kind ("paired", "circuit end", "refused") naming the token's nonce prefix."""
        return [l for l in self.stderr().splitlines() if word in l and "nonce=%s" % nonce[:8] in l]

    def stop_and_stats(self):
        """SIGTERM; returns the stats of its last line ("stopped cleanly: accepted=3 paired=1 ...") as a dict."""
        CHECKS.eq(self.terminate(), 0, "zshare-relay exits 0 on SIGTERM")
        last = self.stderr().strip().splitlines()[-1]
        CHECKS.ok("stopped cleanly: " in last, "the relay's last line has its stats: %r" % last)
        return dict(item.split("=", 1) for item in last.split("stopped cleanly: ", 1)[1].split())


# ---- libzmq clients ----

class ZmqPair:
    """A seeder ROUTER (CURVE server) and a downloader DEALER (CURVE client), both dialing OUT through the relay."""

    def __init__(self, relay, token, seeder_host=None, downloader_host=None):
        self.ctx = zmq.Context.instance()
        server_public, server_secret = zmq.curve_keypair()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.curve_server = True
        self.router.curve_publickey, self.router.curve_secretkey = server_public, server_secret
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.curve_serverkey = server_public
        self.dealer.curve_publickey, self.dealer.curve_secretkey = zmq.curve_keypair()
        self.dealer.routing_id = b"downloader"  # the same identity at the seeder across reconnections
        for sock, h in ((self.router, seeder_host or host("s", token)), (self.dealer, downloader_host or host("d", token))):
            sock.linger = 0
            sock.setsockopt(zmq.SOCKS_PROXY, relay.proxy)
            sock.connect("tcp://%s:9" % h)
        self.identity = None

    def say_hello(self, deadline_s=10):
        """The downloader's first message reaches the seeder (which learns its identity) and a reply comes back."""
        self.dealer.send(b"hello")
        frames = recv_within(self.router, deadline_s, "the seeder to receive the downloader's hello")
        CHECKS.eq(frames[1], b"hello", "the seeder receives the downloader's message through the relay")
        self.identity = frames[0]
        self.router.send_multipart([self.identity, b"welcome"])
        CHECKS.eq(recv_within(self.dealer, deadline_s, "the downloader to receive the reply"), [b"welcome"],
                  "the downloader receives the seeder's reply through the relay")

    def close(self):
        self.router.close(0)
        self.dealer.close(0)


@contextlib.contextmanager
def relay_pair(args, extra_args=()):
    """A relay of its own, a token, and a ZmqPair through it that has said hello; the pair is closed afterwards."""
    secret = new_secret()
    relay = Relay(args.relay_bin, secret, extra_args).start()
    token = mint(secret)
    pair = ZmqPair(relay, token)
    try:
        pair.say_hello()
        yield relay, token, pair
    finally:
        pair.close()


def finish(relay):
    """Stops the relay (SIGTERM, exit 0) and removes its folder; returns its stats."""
    stats = relay.stop_and_stats()
    relay.cleanup()
    return stats


def recv_within(sock, deadline_s, what):
    if not sock.poll(int(deadline_s * 1000)):
        raise TimeoutError("timed out after %.1fs waiting for %s" % (deadline_s, what))
    return sock.recv_multipart()


def send_blob(send, blob, piece):
    for at in range(0, len(blob), piece):
        send(blob[at:at + piece])


def receive_blob(sock, size, deadline_s, what, strip_identity=False):
    got = []
    total = 0
    end = time.monotonic() + deadline_s
    while total < size:
        frames = recv_within(sock, max(0.1, end - time.monotonic()), what)
        part = frames[1] if strip_identity else frames[0]
        got.append(part)
        total += len(part)
    return b"".join(got)


# ---- raw SOCKS5 clients ----

def socks_connect(relay, timeout_s=5):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=timeout_s)
    s.settimeout(timeout_s)
    return s


def socks_request(relay, name):
    """A greeting and a CONNECT request for `name` as libzmq sends them; the request's answer is left unread."""
    s = socks_connect(relay)
    s.sendall(bytes([5, 1, 0]))
    CHECKS.eq(recv_exactly(s, 2), bytes([5, 0]), "the relay accepts the no-authentication greeting")
    s.sendall(bytes([5, 1, 0, 3, len(name)]) + name.encode() + bytes([0, 9]))
    return s


def recv_exactly(s, size):
    data = b""
    while len(data) < size:
        part = s.recv(size - len(data))
        if not part:
            break
        data += part
    return data


def socks_answer(s, within_s=5):
    """The 10-byte answer to a request, or "no answer" when none comes within `within_s` (a check then says so)."""
    s.settimeout(within_s)
    try:
        return recv_exactly(s, 10)
    except socket.timeout:
        return "no answer within %gs" % within_s


def closed_by_peer(s):
    """True when the next read finds the end of the stream (or a reset): the relay closed the connection."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:  # still open when the socket's timeout passed
        return False


def readable_now(s, within_s=0.1):
    import select
    return bool(select.select([s], [], [], within_s)[0])


# ---- scenarios ----

def scenario_pair_and_exchange(args):
    section("a pair through the relay: messages and MiBs both ways, end to end CURVE")
    with relay_pair(args) as (relay, token, pair):
        up = os.urandom(4 * MIB)
        down = os.urandom(4 * MIB)
        send_blob(pair.dealer.send, up, 256 * 1024)
        CHECKS.ok(receive_blob(pair.router, len(up), 30, "4 MiB at the seeder", strip_identity=True) == up,
                  "4 MiB from the downloader arrive whole at the seeder")
        send_blob(lambda b: pair.router.send_multipart([pair.identity, b]), down, 256 * 1024)
        CHECKS.ok(receive_blob(pair.dealer, len(down), 30, "4 MiB at the downloader") == down,
                  "4 MiB from the seeder arrive whole at the downloader")
        CHECKS.eq(len(relay.log_lines("paired", token[1])), 1, "the relay logged one pairing of this token")
    wait_for(lambda: relay.log_lines("circuit end", token[1]), 10, "the circuit's end line once both sockets closed")
    end = relay.log_lines("circuit end", token[1])[0]
    CHECKS.ok("s=127.0.0.1 d=127.0.0.1" in end and "reason=" in end, "the end line names both IPs and a reason: %r"
              % end)
    s_to_d = int(end.split("s_to_d=")[1].split()[0])
    CHECKS.ok(s_to_d > len(down), "the end line counts the bytes forwarded (%d > %d)" % (s_to_d, len(down)))
    CHECKS.eq(finish(relay)["paired"], "1", "the relay paired exactly once")


def scenario_refused_tokens(args):
    section("bad mac, expired and malformed tokens are refused (05 02, closed) and pair nothing")
    secret = new_secret()
    relay = Relay(args.relay_bin, secret).start()
    token = mint(secret)
    waiting = socks_request(relay, host("d", token))  # a genuine downloader waits for its seeder
    forged = mint(new_secret(), nonce=token[1])  # same nonce and expiry, another secret's mac
    CHECKS.eq(forged[:2], token[:2], "the forged token differs from the genuine one only in its mac")
    expired = mint(secret, ttl_s=-10)
    cases = [("a wrong mac", host("s", forged)),
             ("another token's mac", "s.%d.%s.%s" % (token[0] + 1, token[1], side_mac(secret, "s", *token[:2]))),
             ("the waiting downloader's own mac as the seeder's", host("s", token, side_mac(secret, "d", *token[:2]))),
             ("an expired token", host("s", expired)),
             ("a malformed host", "example.com"),
             ("upper-case hex", host("s", token).upper()),
             ("a side other than s or d", "x" + host("s", token)[1:])]
    for what, name in cases:
        s = socks_request(relay, name)
        CHECKS.eq(socks_answer(s), NOT_ALLOWED, "%s is refused with 05 02" % what)
        CHECKS.ok(closed_by_peer(s), "%s: the relay closes the connection" % what)
        s.close()
        # Single-threaded relay: had it paired, the waiting side's answer would already be in its socket.
        CHECKS.ok(not readable_now(waiting), "%s pairs nothing: the waiting downloader still has no answer" % what)
    s = socks_connect(relay)
    s.sendall(bytes([5, 1, 0]))
    recv_exactly(s, 2)
    s.sendall(bytes([5, 1, 0, 1, 127, 0, 0, 1, 0, 80]))  # CONNECT to an IPv4 address: a relay never dials out
    CHECKS.eq(socks_answer(s), ADDRESS_TYPE_NOT_SUPPORTED, "a CONNECT to an address is refused (05 08)")
    s.close()
    s = socks_connect(relay)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    CHECKS.ok(closed_by_peer(s), "a client that does not speak SOCKS5 is closed")
    s.close()
    seeder = socks_request(relay, host("s", token))
    CHECKS.eq(socks_answer(seeder), SUCCEEDED, "the genuine seeder then pairs with the waiting downloader")
    CHECKS.eq(socks_answer(waiting), SUCCEEDED, "and the downloader gets its success answer")
    seeder.sendall(b"ping")
    CHECKS.eq(recv_exactly(waiting, 4), b"ping", "raw bytes pass the circuit")
    for line, reason in ((relay.log_lines("refused", token[1]), "bad-mac"),
                         (relay.log_lines("refused", expired[1]), "expired")):
        CHECKS.ok(any("reason=" + reason in l for l in line), "a refusal line says %s: %s" % (reason, line))
    seeder.close()
    waiting.close()
    stats = finish(relay)
    CHECKS.eq(stats["paired"], "1", "only the genuine pair was paired")
    CHECKS.eq(stats.get("refused.bad-mac"), "3",
              "three refusals for a bad mac (another secret, another expiry, the other side's mac)")
    CHECKS.eq(stats.get("refused.expired"), "1", "one refusal for an expired token")
    CHECKS.eq(stats.get("refused.malformed-token"), "3", "three refusals for a malformed host")


def scenario_side_taken(args):
    section("a third connection with a live token's side is refused; the live pair goes on")
    with relay_pair(args) as (relay, token, pair):
        for side in ("s", "d"):
            s = socks_request(relay, host(side, token))
            CHECKS.eq(socks_answer(s), NOT_ALLOWED, "another `%s` for the live token is refused (05 02)" % side)
            CHECKS.ok(closed_by_peer(s), "and closed")
            s.close()
        pair.dealer.send(b"still here")
        CHECKS.eq(recv_within(pair.router, 10, "the pair's next message")[1], b"still here",
                  "the live pair is not disturbed by the refused ones")
        CHECKS.eq(len(relay.log_lines("paired", token[1])), 1, "the token was paired once")
    CHECKS.eq(finish(relay).get("refused.side-taken"), "2", "both refusals counted as side-taken")


def scenario_per_ip_cap(args):
    section("--max-circuits-per-ip: a flood from one IP is refused; a pair is served once it is gone")
    secret = new_secret()
    cap = 4
    relay = Relay(args.relay_bin, secret, ["--max-circuits-per-ip", str(cap)]).start()
    flood = [socks_request(relay, host("s", mint(secret))) for _ in range(cap)]  # each pending, its own token
    for i in range(2):
        s = socks_connect(relay)
        try:
            s.sendall(bytes([5, 1, 0]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        CHECKS.ok(closed_by_peer(s), "connection %d over the cap of %d is closed without an answer" % (cap + i + 1, cap))
        s.close()
    CHECKS.ok(relay.stderr().count("reason=per-ip-cap") == 2, "the relay logged two per-ip-cap refusals")
    for s in flood:
        s.close()
    token = mint(secret)
    pair = ZmqPair(relay, token)  # libzmq retries until the relay has seen the flood leave
    try:
        pair.say_hello(deadline_s=15)
    finally:
        pair.close()
    stats = finish(relay)
    # libzmq's first tries may come before the relay has seen the flood leave: those are refused too.
    CHECKS.ok(int(stats.get("refused.per-ip-cap", 0)) >= 2, "the stats count the per-IP cap's refusals: %s" % stats)


def scenario_idle_timeout(args):
    section("--idle-timeout: a silent circuit is closed; libzmq pairs the same token again")
    with relay_pair(args, ["--idle-timeout", "1"]) as (relay, token, pair):
        last_byte = time.monotonic()
        wait_for(lambda: any("reason=idle" in l for l in relay.log_lines("circuit end", token[1])), 15,
                 "the relay to close the silent circuit")
        CHECKS.ok(time.monotonic() - last_byte >= 0.9, "not before the idle timeout")
        pair.dealer.send(b"again")  # libzmq reconnects; the relay pairs the token anew
        CHECKS.eq(recv_within(pair.router, 15, "a message after the idle close")[1], b"again",
                  "after the idle close the same token pairs again and messages flow")
    CHECKS.ok(int(finish(relay)["paired"]) >= 2, "the token was paired again after the idle close")


def scenario_pair_timeout(args):
    section("--pair-timeout: a connection whose other side never comes is closed")
    secret = new_secret()
    relay = Relay(args.relay_bin, secret, ["--pair-timeout", "1"]).start()
    started = time.monotonic()
    s = socks_request(relay, host("s", mint(secret)))
    s.settimeout(15)
    CHECKS.ok(closed_by_peer(s), "the unpaired connection is closed without an answer")
    CHECKS.ok(time.monotonic() - started >= 0.9, "not before the pair timeout (%.2fs)" % (time.monotonic() - started))
    s.close()
    CHECKS.eq(finish(relay).get("unpaired.pair-timeout"), "1", "counted as a pair timeout")


def scenario_restart(args):
    section("kill -9 and restart on the same port: the libzmq sockets reconnect with the same token")
    with relay_pair(args) as (relay, token, pair):
        relay.kill9()
        relay.start()
        pair.dealer.send(b"after restart")
        CHECKS.eq(recv_within(pair.router, 20, "a message after the restart")[1], b"after restart",
                  "the downloader's message reaches the seeder through the restarted relay")
        pair.router.send_multipart([pair.identity, b"welcome back"])
        CHECKS.eq(recv_within(pair.dealer, 10, "the seeder's answer after the restart"), [b"welcome back"],
                  "and the seeder's answer comes back")
    CHECKS.eq(finish(relay)["paired"], "1", "the restarted relay paired the token once")


def scenario_rate_limit(args):
    section("--rate-limit 512K: 2 MiB take at least 3 s")
    with relay_pair(args, ["--rate-limit", "512K"]) as (relay, token, pair):
        blob = os.urandom(2 * MIB)
        started = time.monotonic()
        send_blob(lambda b: pair.router.send_multipart([pair.identity, b]), blob, 64 * 1024)
        CHECKS.ok(receive_blob(pair.dealer, len(blob), 60, "2 MiB through the paced circuit") == blob,
                  "2 MiB arrive whole under the rate limit")
        took = time.monotonic() - started
        print("# 2 MiB at --rate-limit 512K took %.2fs" % took, flush=True)
        CHECKS.ok(took >= 3.0, "2 MiB at 512 KiB/s take at least 3 s (%.2fs)" % took)
    finish(relay)


def scenario_secret_file(args):
    section("the secret file: `secret FILE` writes 0600 once; a loose or missing file stops the relay")
    folder = tempfile.mkdtemp(prefix="zshare-relay-secret-")
    try:
        path = os.path.join(folder, "relay.secret")
        r = subprocess.run([args.relay_bin, "secret", path], capture_output=True, text=True, timeout=10)
        CHECKS.eq(r.returncode, 0, "`zshare-relay secret FILE` exits 0")
        CHECKS.eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "the secret file is 0600")
        text = open(path).read()
        CHECKS.ok(len(text) == 65 and text.endswith("\n") and all(c in "0123456789abcdef" for c in text[:64]),
                  "it holds 64 hex digits and a newline")
        r = subprocess.run([args.relay_bin, "secret", path], capture_output=True, text=True, timeout=10)
        CHECKS.ok(r.returncode != 0 and "never overwritten" in r.stderr, "a second `secret` refuses to overwrite: %r"
                  % r.stderr)
        CHECKS.eq(open(path).read(), text, "and the file is unchanged")
        os.chmod(path, 0o640)
        r = subprocess.run([args.relay_bin, "--bind", "tcp://127.0.0.1:0", "--secret-file", path],
                           capture_output=True, text=True, timeout=10)
        CHECKS.ok(r.returncode == 2 and path in r.stderr and "chmod 600" in r.stderr,
                  "a group-readable secret file is refused, naming the file and the fix: %r" % r.stderr)
        r = subprocess.run([args.relay_bin, "--bind", "tcp://127.0.0.1:0"], capture_output=True, text=True, timeout=10)
        CHECKS.ok(r.returncode == 2 and "--secret-file" in r.stderr, "no --secret-file: exit 2: %r" % r.stderr)
        r = subprocess.run([args.relay_bin, "--version"], capture_output=True, text=True, timeout=10)
        CHECKS.ok(r.returncode == 0 and r.stdout.startswith("zshare-relay "), "--version: %r" % r.stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SCENARIOS = {
    "pair": scenario_pair_and_exchange,
    "refused": scenario_refused_tokens,
    "side_taken": scenario_side_taken,
    "per_ip_cap": scenario_per_ip_cap,
    "idle": scenario_idle_timeout,
    "pair_timeout": scenario_pair_timeout,
    "restart": scenario_restart,
    "rate_limit": scenario_rate_limit,
    "secret_file": scenario_secret_file,
}


def main():
    ap = argparse.ArgumentParser(description="zshare-relay end to end with libzmq's SOCKS5 client and raw clients")
    ap.add_argument("--relay-bin", required=True)
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only these scenarios")
    args = ap.parse_args()
    started = time.monotonic()

    def body():
        try:
            for name, scenario in SCENARIOS.items():
                if not args.only or name in args.only:
                    scenario(args)
        except Exception:
            for relay in RELAYS:
                print("# %s stderr:\n%s" % (relay.workdir, relay.stderr()[-3000:]), flush=True)
            raise
        finally:
            for relay in RELAYS:
                relay.cleanup()
    return CHECKS.run(body, expected=(TimeoutError, RuntimeError), timed_from=started)


if __name__ == "__main__":
    sys.exit(main())
