#!/usr/bin/python3
# security_test.py: CurveZMQ between real processes: a raw TCP relay captures every byte of the control, event
# and transfer links and finds no file name or file byte in clear (and does find them with --plaintext, so the
# capture is known to see clear text); wrong keys, other users' keys and loose key files are all refused.
import argparse
import hashlib
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading

import zmq
import zmq.utils.z85

from zshare_testlib import Broker, Checks, CheckFailed, ServeProcess, free_port, wait_for

CHECKS = Checks()
MARKER = b"ZSHARE-CLEARTEXT-MARKER-7f3a"
FILE_NAME = "secret-river-notes-7f3a.txt"


class Relay:
    """A raw TCP relay 127.0.0.1:port -> 127.0.0.1:target that keeps every byte it forwards, both ways: what a
    tap on the wire would see."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.captured = bytearray()
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self.lock:
                if len(self.captured) < (256 << 20):  # bounded: far above what these cases move
                    self.captured += data
            try:
                dst.sendall(data)
            except OSError:
                return

    def capture(self):
        with self.lock:
            return bytes(self.captured)

    def close(self):
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                s.close()


class BrokerVia:
    """The broker's peer options with the control endpoint replaced (by a relay's)."""

    def __init__(self, broker, control):
        self.broker = broker
        self.control = control

    def peer_args(self, key_dir=None):
        args = self.broker.peer_args(key_dir)
        args[args.index("--broker") + 1] = self.control
        return args


def port_of(endpoint):
    return int(endpoint.rsplit(":", 1)[1])


def run_peer(peer_bin, args, timeout=30, env=None):
    done = subprocess.run([peer_bin] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    return done.returncode, done.stdout, done.stderr


def make_share(root):
    """A share holding one file whose name and bytes are easy to find in a capture."""
    share = os.path.join(root, "share")
    os.makedirs(share, exist_ok=True)
    rnd = random.Random(7)
    body = bytearray()
    while len(body) < (1 << 20):
        body += MARKER + bytes(rnd.getrandbits(8) for _ in range(4000))
    path = os.path.join(share, FILE_NAME)
    with open(path, "wb") as f:
        f.write(body)
    return share, bytes(body)


def capture_run(args, root, plaintext):
    """Everything a network does once, each link through a relay: serve, events, search, get. Returns
    (capture, file bytes, downloaded bytes)."""
    os.makedirs(os.path.join(root, "broker"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "broker"), plaintext=plaintext)
    relays, serve, events = [], None, None
    try:
        broker.start()
        control = Relay(port_of(broker.control))
        event_relay = Relay(port_of(broker.events))
        listen_port = free_port()
        transfer = Relay(listen_port)
        relays = [control, event_relay, transfer]
        via = BrokerVia(broker, control.endpoint)
        share, body = make_share(root)

        events_argv = [args.events_bin, "--events", event_relay.endpoint, "--json", "--timeout", "60"]
        events_argv += ["--plaintext"] if plaintext else ["--broker-key", broker.public_key_file]
        events = subprocess.Popen(events_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = []
        threading.Thread(target=lambda: lines.extend(events.stdout), daemon=True).start()
        # A SUB joins asynchronously: register probe users until one's event arrives, so the PUBLISH below is
        # certain to travel the event link too.
        probe = broker.client()
        probes = iter(range(1000))

        def subscribed():
            probe.call("REGISTER", user="probe%d" % next(probes))
            return any("user.registered" in ln for ln in list(lines))
        wait_for(subscribed, 20, "zshare-events to receive an event through the relay")
        probe.close()

        serve = ServeProcess(args.peer_bin, via, "alice", share, os.path.join(root, "hashes.db"),
                             extra_args=["--listen", "tcp://127.0.0.1:%d" % listen_port,
                                         "--advertise", transfer.endpoint],
                             key_dir=os.path.join(root, "alice-keys"))
        serve.start()
        wait_for(lambda: any(FILE_NAME in ln for ln in list(lines)), 20,
                 "zshare-events to print file.published through the relay")

        carol = via.peer_args(os.path.join(root, "carol-keys"))
        code, out, err = run_peer(args.peer_bin, carol + ["search", "secret", "river"])
        CHECKS.ok(code == 0 and FILE_NAME in out, "search through the relay finds the file: %s %s" % (out, err))
        dest = os.path.join(root, "got.txt")
        code, out, err = run_peer(args.peer_bin, carol + ["get", "alice:" + FILE_NAME, dest])
        CHECKS.eq(code, 0, "get through the relays succeeds: %s %s" % (out, err))
        with open(dest, "rb") as f:
            got = f.read()
        capture = b"".join(r.capture() for r in relays)
        CHECKS.ok(len(transfer.capture()) >= len(body), "the transfer relay carried the file (%d bytes seen)"
                  % len(transfer.capture()))
        return capture, body, got
    finally:
        if events and events.poll() is None:
            events.kill()
            events.wait(timeout=10)
        if serve:
            serve.stop()
        for r in relays:
            r.close()
        broker.cleanup()


def in_clear(capture, body):
    """What of the secret content shows in the capture: the name, the marker, or any of 32 slices of the body."""
    found = []
    if FILE_NAME.encode() in capture:
        found.append("file name")
    if MARKER in capture:
        found.append("marker")
    rnd = random.Random(11)
    for _ in range(32):
        at = rnd.randrange(0, len(body) - 48)
        if body[at:at + 48] in capture:
            found.append("file bytes at %d" % at)
            break
    return found


def case_capture_shows_nothing_in_clear(args, root):
    capture, body, got = capture_run(args, os.path.join(root, "curve"), plaintext=False)
    CHECKS.eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(body).hexdigest(), "the download is the file")
    CHECKS.eq(in_clear(capture, body), [], "CurveZMQ: nothing of the file in a %d-byte capture" % len(capture))
    # The same run in plaintext: the capture would have shown it, so the clean result above means something.
    capture, body, got = capture_run(args, os.path.join(root, "plain"), plaintext=True)
    CHECKS.eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(body).hexdigest(), "plaintext download is the file")
    seen = in_clear(capture, body)
    CHECKS.ok("file name" in seen and "marker" in seen and any(s.startswith("file bytes") for s in seen),
              "--plaintext: the capture shows the name and the bytes (%s)" % seen)


def case_wrong_broker_key_gets_nothing(args, root, broker):
    other = os.path.join(root, "other.key")
    subprocess.run([args.broker_bin, "keygen", "--key", other], check=True, stdout=subprocess.DEVNULL)
    code, out, err = run_peer(args.peer_bin, ["--broker", broker.control, "--broker-key", root + "/other.pub",
                                              "--key-dir", os.path.join(root, "eve-keys"), "--timeout", "1",
                                              "register", "eve"])
    CHECKS.eq(code, 2, "a peer with the wrong broker key is not answered (exit 2): %s %s" % (out, err))
    CHECKS.ok("BROKER UNREACHABLE" in out + err, "it says the broker did not answer: %s %s" % (out, err))
    CHECKS.ok("port is open" in out + err and "--broker-key must be that broker's public key" in out + err,
              "and names the likely cause, a wrong --broker-key: %s %s" % (out, err))
    code, out, err = run_peer(args.peer_bin, ["--broker", broker.control, "--plaintext", "--timeout", "1",
                                              "list-users"])
    CHECKS.ok(code == 2 and "runs CurveZMQ while this peer runs --plaintext" in out + err,
              "a --plaintext peer against a CurveZMQ broker is told so: %s %s" % (out, err))
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        closed = "tcp://127.0.0.1:%d" % s.getsockname()[1]
    code, out, err = run_peer(args.peer_bin, ["--broker", closed, "--broker-key", root + "/other.pub",
                                              "--key-dir", os.path.join(root, "eve-keys"), "--timeout", "1",
                                              "list-users"])
    CHECKS.ok(code == 2 and "nothing accepts connections there" in out + err,
              "a port where nothing listens is told apart: %s %s" % (out, err))
    plain = zmq.Context.instance().socket(zmq.REQ)
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(broker.control)
    plain.send(b"\x80")
    CHECKS.eq(plain.poll(1000), 0, "a plaintext client gets no answer from a CurveZMQ broker")
    plain.close()
    code, out, err = run_peer(args.peer_bin, ["--broker", broker.control, "--timeout", "1",
                                              "--key-dir", os.path.join(root, "eve-keys"), "list-users"])
    CHECKS.eq(code, 2, "without any broker key zshare-peer refuses to start: %s" % err)
    CHECKS.ok("--broker-key" in err, "and says which option is missing: %s" % err)
    c = broker.client()
    CHECKS.eq(c.call("REGISTER", user="eve")["status"], "OK", "none of it reached the broker: the name is free")
    c.close()


def case_broker_key_forms(args, root, broker):
    """--broker-key takes the .pub file, the Z85 key or the same key in hex (Z85 holds `!` and `$`, which a shell
    mangles); the broker's secret key file is refused, so operators are never invited to hand it to peers."""
    keys = os.path.join(root, "forms-keys")
    code, out, err = run_peer(args.peer_bin, ["--broker", broker.control, "--broker-key", broker.key_file,
                                              "--key-dir", keys, "--timeout", "1", "list-users"])
    CHECKS.eq(code, 2, "the broker's secret key file as --broker-key is refused: %s %s" % (out, err))
    CHECKS.ok("holds a secret key" in err and "public half" in err, "and says to give the public half: %s" % err)
    z85 = broker.public_key
    raw = zmq.utils.z85.decode(z85.encode())
    for label, form in (("Z85", z85), ("hex", raw.hex()), ("hex, upper case", raw.hex().upper())):
        code, out, err = run_peer(args.peer_bin, ["--broker", broker.control, "--broker-key", form,
                                                  "--key-dir", keys, "--timeout", "3", "list-users"])
        CHECKS.eq(code, 0, "--broker-key as %s reaches the broker: %s %s" % (label, out, err))
    # A path of exactly 40 Z85 characters (as mkdtemp makes them) is still a file, not a key.
    short = "/tmp/zk%d" % os.getpid()  # Z85 characters only (mkdtemp's may hold '_', which is not one)
    os.makedirs(short, exist_ok=True)
    path = os.path.join(short, "b" * (40 - len(short) - 5) + ".pub")
    shutil.copy(broker.public_key_file, path)
    CHECKS.eq(len(path), 40, "test bug: the path is 40 characters long")
    code, out, err = run_peer(args.peer_bin, ["--broker", broker.control, "--broker-key", path,
                                              "--key-dir", keys, "--timeout", "3", "list-users"])
    CHECKS.eq(code, 0, "--broker-key as a 40-character path is read as the file: %s %s" % (out, err))
    shutil.rmtree(short, ignore_errors=True)


def case_other_key_is_denied(args, root, broker):
    share = os.path.join(root, "a-share")
    os.makedirs(share)
    with open(os.path.join(share, "a.txt"), "w") as f:
        f.write("alice's file\n")
    alice = ServeProcess(args.peer_bin, broker, "usera", share, os.path.join(root, "a.db"),
                         key_dir=os.path.join(root, "a-keys"))
    alice.start()
    try:
        b_keys = os.path.join(root, "b-keys")
        code, out, err = run_peer(args.peer_bin, broker.peer_args(b_keys) + ["unregister", "usera"])
        CHECKS.eq(code, 1, "user B's UNREGISTER of user A fails: %s %s" % (out, err))
        CHECKS.ok("DENIED" in out + err, "with DENIED: %s %s" % (out, err))
        with open(os.path.join(b_keys, "peer.key")) as f:  # B's own keypair, as zshare-peer made it
            text = f.read()
        b_pair = tuple(line.split('"')[1].encode() for line in text.splitlines()
                       if line.startswith(("public-key", "secret-key")))
        b = broker.client(keys=b_pair)
        CHECKS.eq(b.call("DELETE", user="usera", name="a.txt")["status"], "DENIED", "B's DELETE of A's file")
        CHECKS.eq(b.call("DISCONNECT", user="usera")["status"], "DENIED", "B's DISCONNECT of A")
        CHECKS.eq(b.call("CONNECT", user="usera", endpoint="tcp://127.0.0.1:9")["status"], "DENIED",
                  "B's CONNECT as A")
        b.close()
        code, out, err = run_peer(args.peer_bin, broker.peer_args(b_keys) + ["--json", "list-content", "usera"])
        CHECKS.ok(code == 0 and "a.txt" in out, "A's file is still published: %s" % out)
        code, out, err = run_peer(args.peer_bin, broker.peer_args(b_keys) + ["--json", "list-users"])
        CHECKS.ok('"usera"' in out, "A is still connected: %s" % out)
    finally:
        alice.stop()


def case_impostor_seeder_is_refused(args, root, broker):
    """A process on a seeder's endpoint without the seeder's secret key: the downloader refuses it."""
    share = os.path.join(root, "s-share")
    os.makedirs(share)
    with open(os.path.join(share, "album.bin"), "wb") as f:
        f.write(os.urandom(300 * 1024))
    port = free_port()
    # No heartbeat: the real seeder's session stays online after it dies, as in the window before expiry.
    seeder = ServeProcess(args.peer_bin, broker, "seeder", share, os.path.join(root, "s.db"),
                          extra_args=["--listen", "tcp://127.0.0.1:%d" % port, "--heartbeat", "0"],
                          key_dir=os.path.join(root, "seeder-keys"))
    seeder.start()
    seeder.kill9()
    # The impostor binds the dead seeder's endpoint and offers other bytes under the same name.
    fake = os.path.join(root, "i-share")
    os.makedirs(fake)
    with open(os.path.join(fake, "album.bin"), "wb") as f:
        f.write(os.urandom(300 * 1024))
    impostor = ServeProcess(args.peer_bin, broker, "impostor", fake, os.path.join(root, "i.db"),
                            extra_args=["--listen", "tcp://127.0.0.1:%d" % port],
                            key_dir=os.path.join(root, "impostor-keys"))
    impostor.start()
    try:
        dest = os.path.join(root, "album.bin")
        code, out, err = run_peer(args.peer_bin, broker.peer_args(os.path.join(root, "d-keys")) +
                                  ["--json", "get", "seeder:album.bin", dest, "--source-timeout", "1"])
        CHECKS.eq(code, 1, "the download from a seeder with the wrong key fails: %s %s" % (out, err))
        CHECKS.ok("DOWNLOAD FAILED" in out, "cleanly, as DOWNLOAD FAILED: %s" % out)
        CHECKS.ok("failed the CurveZMQ handshake" in out, "saying the seeder failed the handshake: %s" % out)
        CHECKS.ok(not os.path.exists(dest), "and no file is written")
        part = dest + ".part"
        CHECKS.ok(not os.path.exists(part) or os.path.getsize(part) == 0 or allocated_zero(part),
                  "and no byte from the impostor is kept")
        # Under its own name and listed key, the impostor's own file downloads fine from the same endpoint.
        code, out, err = run_peer(args.peer_bin, broker.peer_args(os.path.join(root, "d-keys")) +
                                  ["--json", "get", "impostor:album.bin", dest])
        CHECKS.eq(code, 0, "the same endpoint under its own listed key is fine: %s %s" % (out, err))
    finally:
        impostor.stop()


def allocated_zero(path):
    return os.stat(path).st_blocks == 0


def port_accepts(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def case_loose_key_files_are_refused(args, root, broker):
    keys = os.path.join(root, "loose-keys")
    code, out, err = run_peer(args.peer_bin, broker.peer_args(keys) + ["--timeout", "2", "list-users"])
    CHECKS.eq(code, 0, "a fresh peer makes its keypair and works: %s" % err)
    key = os.path.join(keys, "peer.key")
    CHECKS.eq(stat.S_IMODE(os.stat(key).st_mode), 0o600, "the peer's key file is made 0600")
    os.chmod(key, 0o644)
    code, out, err = run_peer(args.peer_bin, broker.peer_args(keys) + ["--timeout", "2", "list-users"])
    CHECKS.eq(code, 2, "a peer key readable by others is refused: %s" % err)
    CHECKS.ok("0644" in err and "chmod 600" in err, "with a message saying how to fix it: %s" % err)

    bkey = os.path.join(root, "loose-broker.key")
    subprocess.run([args.broker_bin, "keygen", "--key", bkey], check=True, stdout=subprocess.DEVNULL)
    CHECKS.eq(stat.S_IMODE(os.stat(bkey).st_mode), 0o600, "keygen makes the broker's key 0600")
    CHECKS.eq(stat.S_IMODE(os.stat(bkey[:-4] + ".pub").st_mode), 0o644, "and its public half 0644")
    done = subprocess.run([args.broker_bin, "keygen", "--key", bkey], capture_output=True, text=True)
    CHECKS.ok(done.returncode != 0 and "never overwritten" in done.stderr, "keygen never overwrites a key: %s"
              % done.stderr)
    os.chmod(bkey, 0o640)
    done = subprocess.run([args.broker_bin, "--key", bkey, "--db", os.path.join(root, "x.db"), "--rpclog", "none",
                           "--bind", "tcp://127.0.0.1:%d" % free_port(), "--events",
                           "tcp://127.0.0.1:%d" % free_port()], capture_output=True, text=True, timeout=20)
    CHECKS.eq(done.returncode, 2, "a broker key readable by its group is refused (a usage error): %s" % done.stderr)
    CHECKS.ok("0640" in done.stderr and "chmod 600" in done.stderr, "with the fix in the message: %s" % done.stderr)

    # A systemd credential: newer systemd gives the service read access by an ACL, so stat shows 0440 there. Under
    # $CREDENTIALS_DIRECTORY group bits are systemd's doing and accepted; others' bits never are.
    creds = os.path.join(root, "credentials")
    os.makedirs(creds)
    cred = os.path.join(creds, "broker.key")
    shutil.copy(bkey, cred)
    port = free_port()
    for mode, starts in ((0o440, True), (0o444, False)):
        os.chmod(cred, mode)
        proc = subprocess.Popen([args.broker_bin, "--key", cred, "--db", os.path.join(root, "c%o.db" % mode),
                                 "--rpclog", "none", "--bind", "tcp://127.0.0.1:%d" % port, "--events",
                                 "tcp://127.0.0.1:%d" % free_port()], stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, CREDENTIALS_DIRECTORY=creds))
        try:
            if starts:
                CHECKS.ok(wait_for(lambda: proc.poll() is not None or port_accepts(port), 10, "the broker to bind"),
                          "the broker starts")
                CHECKS.eq(proc.poll(), None, "a credential of mode 0440 under $CREDENTIALS_DIRECTORY is accepted")
            else:
                CHECKS.eq(proc.wait(timeout=20), 2, "a credential others may read is still refused")
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.communicate(timeout=20)


def case_plaintext_warns(args, root):
    os.makedirs(os.path.join(root, "plainbroker"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "plainbroker"), plaintext=True)
    try:
        broker.start()
        CHECKS.ok("WARNING: --plaintext" in broker.stderr(), "the broker warns at start: %s" % broker.stderr())
        code, out, err = run_peer(args.peer_bin, broker.peer_args() + ["list-users"])
        CHECKS.eq(code, 0, "a --plaintext peer talks to a --plaintext broker: %s" % err)
        CHECKS.ok("WARNING: --plaintext" in err, "and warns too: %s" % err)
    finally:
        broker.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--peer-bin", required=True)
    ap.add_argument("--events-bin", required=True)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="zshare-security-")
    os.makedirs(os.path.join(root, "broker"))
    broker = Broker(args.broker_bin, workdir=os.path.join(root, "broker"))
    cases = [
        ("capture shows no file name or byte in clear", lambda: case_capture_shows_nothing_in_clear(args, root)),
        ("a client without the broker's key gets nothing", lambda: case_wrong_broker_key_gets_nothing(
            args, root, broker)),
        ("--broker-key: .pub, Z85 or hex; never the secret key file", lambda: case_broker_key_forms(
            args, root, broker)),
        ("user B cannot change user A (DENIED)", lambda: case_other_key_is_denied(args, root, broker)),
        ("a seeder with the wrong key is refused", lambda: case_impostor_seeder_is_refused(args, root, broker)),
        ("key files with loose permissions are refused", lambda: case_loose_key_files_are_refused(
            args, root, broker)),
        ("--plaintext warns on both ends", lambda: case_plaintext_warns(args, root)),
    ]
    failed = 0
    try:
        broker.start()
        for name, run in cases:
            try:
                run()
                print("ok   %s" % name)
            except (CheckFailed, TimeoutError, subprocess.TimeoutExpired, RuntimeError) as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
    finally:
        broker.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    print("%d checks passed, %d case(s) failed" % (CHECKS.passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
