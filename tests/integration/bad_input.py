#!/usr/bin/python3
# bad_input.py: one case per kind of bad input sent to a real zshare-broker over loopback.
# Each case must get BAD REQUEST with an `error` sentence (id echoed when readable, nil when not), or, for a
# message over the 1 MiB socket limit, no reply while the broker goes on serving everyone else. After EVERY
# case a fresh client must get normal answers, nothing may have been recorded (STATS users/connected/files
# unchanged, the base file still there) and STATS bad_requests must have grown by exactly one per BAD REQUEST.
# Everything runs over CurveZMQ, as the broker does by default; clients that fail the handshake (no CurveZMQ at
# all, or trusting another server key) must get no reply at all while the broker goes on serving everyone else.
# The first failed check stops the run with a message and a non-zero exit; a pass ends "N passed, 0 failed".
import argparse
import os
import sys
import time
import traceback

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from zshare_testlib import CheckFailed, Checks, Broker, curve_client  # noqa: E402


CHECKS = Checks()
ANY = object()      # the reply id is not checked (the spec does not say whether it can be read)
DROPPED = object()  # the case expects no reply at all
NO_HANDSHAKE = object()  # the sender never completes the CurveZMQ handshake: no reply, nothing recorded

HEX_A = "a" * 64
HEX_B = "b" * 64
BASE_FILE = {"name": "base.txt", "description": "the file every case checks is still there", "size": 100,
             "cid": "c" * 64, "chunk_size": 16384, "root": "d" * 64}


def ts():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


_n = [0]


def new_id():
    _n[0] += 1
    return "bad-input-%d" % _n[0]


def req(op, **fields):
    """A well-formed request map; cases then break one thing in it."""
    m = {"v": 1, "op": op, "id": new_id(), "ts": ts()}
    m.update(fields)
    return m


def pack(m, raw_str=False):
    # raw_str packs Python bytes as msgpack str, so a str can carry invalid UTF-8.
    return msgpack.packb(m, use_bin_type=not raw_str)


def without(m, key):
    m = dict(m)
    del m[key]
    return m


def publish_req(**override):
    m = req("PUBLISH", user="alice", **dict(BASE_FILE, name="new.bin", cid=HEX_A, root=HEX_B))
    m.update(override)
    return m


def nested_arrays(depth):
    # [[[...[]...]]] as raw bytes: fixarray(1) headers then an empty fixarray.
    return b"\x91" * depth + b"\x90"


def with_raw_field(m, key, raw_value):
    """Packs map m plus one more field whose value is given as raw msgpack bytes."""
    body = pack(m)
    n = len(m) + 1
    assert n < 16 and body[0] == 0x80 | len(m), "test bug: small fixmap expected"
    return bytes([0x80 | n]) + body[1:] + pack(key) + raw_value


class Case:
    def __init__(self, name, body=None, frames=None, echo=ANY, expect="BAD REQUEST", dealer=False, security=None):
        self.name = name
        self.frames = frames if frames is not None else [body]
        self.echo = echo
        self.expect = expect
        self.dealer = dealer
        self.security = security  # NO_HANDSHAKE cases: configures the sender's socket (broker, socket)


def cases():
    out = []

    def add(name, msg_or_bytes, echo=None, raw_str=False):
        """echo: None = derive (the map's id when it is a valid str, else nil)."""
        if isinstance(msg_or_bytes, (bytes, bytearray)):
            body = bytes(msg_or_bytes)
            e = ANY if echo is None else echo
        else:
            body = pack(msg_or_bytes, raw_str)
            i = msg_or_bytes.get("id")
            e = echo if echo is not None else (i if isinstance(i, str) and 0 < len(i) <= 64 else ANY)
        out.append(Case(name, body, echo=e))

    nil = "nil"
    # -- not msgpack, not a map ----------------------------------------------------------------------
    add("malformed msgpack (0xc1 is never used)", b"\xc1\xc1\xc1", echo=nil)
    add("malformed msgpack (text)", b"REGISTER mallory", echo=nil)
    add("empty body", b"", echo=nil)
    add("truncated msgpack", pack(req("REGISTER", user="mallory-trunc"))[:-7], echo=nil)
    add("trailing bytes after the map", pack(req("REGISTER", user="mallory-trail")) + b"\x00", echo=ANY)
    r = req("REGISTER", user="mallory-array")
    add("msgpack array instead of a map", pack([r["v"], r["op"], r["id"], r["ts"], r["user"]]), echo=nil)
    add("msgpack string instead of a map", pack("REGISTER mallory"), echo=nil)
    # -- wrong field types -----------------------------------------------------------------------------
    add("user as int", req("REGISTER", user=42))
    add("user as bin", req("REGISTER", user=b"mallory-bin"))
    add("user as nil", req("REGISTER", user=None))
    add("op as int", req(7, user="mallory-op-int"))
    add("v as str", dict(req("REGISTER", user="mallory-v-str"), v="1"))
    add("id as int", dict(req("REGISTER", user="mallory-id-int"), id=12345), echo=nil)
    add("ts as int", dict(req("REGISTER", user="mallory-ts-int"), ts=1700000000))
    add("ts_local as str", dict(req("REGISTER", user="mallory-ts-local"), ts_local="yes"))
    add("size as str", publish_req(size="100"))
    add("size negative", publish_req(size=-1))
    add("size above the maximum", publish_req(size=2 ** 63))
    add("chunk_size as float", publish_req(chunk_size=16384.0))
    add("endpoint as bin", req("CONNECT", user="bob", endpoint=b"tcp://127.0.0.1:9"))
    add("limit as str", req("SEARCH", q="base", limit="10"))
    # -- missing header fields ---------------------------------------------------------------------------
    for f in ("v", "op", "id", "ts"):
        m = without(req("REGISTER", user="mallory-no-%s" % f), f)
        add("missing field %s" % f, m, echo=nil if f == "id" else None)
    add("missing field user", req("REGISTER"))
    add("missing field cid", without(publish_req(), "cid"))
    add("missing field endpoint", req("CONNECT", user="bob"))
    # -- unknown op, wrong version, header limits --------------------------------------------------------
    add("unknown op", req("FROBNICATE", user="mallory-op"))
    add("unknown op (lower-case register)", req("register", user="mallory-lower"))
    add("empty op", req("", user="mallory-empty-op"))
    add("wrong version v=2", dict(req("REGISTER", user="mallory-v2"), v=2))
    add("wrong version v=0", dict(req("REGISTER", user="mallory-v0"), v=0))
    add("id of 65 bytes", dict(req("REGISTER", user="mallory-long-id"), id="i" * 65), echo=ANY)
    add("empty id", dict(req("REGISTER", user="mallory-empty-id"), id=""), echo=ANY)
    add("ts of 65 bytes", dict(req("REGISTER", user="mallory-long-ts"), ts="2" * 65))
    # -- sizes ---------------------------------------------------------------------------------------------
    add("oversized body (100 KiB)", pack(req("REGISTER", user="mallory-big", pad="p" * (100 * 1024))))
    # -- names and values -------------------------------------------------------------------------------
    for label, user in (("empty", ""), ("65 chars", "u" * 65), ("with space", "mal lory"),
                        ("with '/'", "mal/lory"), ("non-ASCII", "mallöry"), ("with NUL", "mal\0lory")):
        add("invalid user name (%s)" % label, req("REGISTER", user=user))
    add("invalid user name in CONNECT", req("CONNECT", user="bad user", endpoint="tcp://127.0.0.1:9"))
    for label, name in (("'..'", ".."), ("containing '..'", "a..b"), ("with '/'", "dir/file"),
                        ("with NUL", "a\0b"), ("256 bytes", "n" * 256), ("empty", ""),
                        ("256 bytes of 2-byte UTF-8", "é" * 128)):
        add("invalid file name (%s)" % label, publish_req(name=name))
    add("invalid file name (invalid UTF-8)", publish_req(name=b"bad\xff\xfe.txt"), raw_str=True)
    add("invalid file name (overlong UTF-8 '/')", publish_req(name=b"a\xc0\xafb"), raw_str=True)
    add("invalid file name (surrogate)", publish_req(name=b"a\xed\xa0\x80b"), raw_str=True)
    add("file name as bin", publish_req(name=b"new.bin"))
    add("description over 1024 bytes", publish_req(description="d" * 1025))
    add("description of invalid UTF-8", publish_req(description=b"caf\xe9"), raw_str=True)
    for label, cid in (("not hex", "z" * 64), ("63 digits", "a" * 63), ("65 digits", "a" * 65),
                       ("upper case", "A" * 64), ("empty", "")):
        add("bad cid (%s)" % label, publish_req(cid=cid))
    add("bad root (upper case)", publish_req(root="B" * 64))
    for n in (20000, 0, 1, 8192, 1 << 25, 3 * 16384):
        add("bad chunk_size %d" % n, publish_req(chunk_size=n))
    for label, endpoint in (("not tcp", "udp://127.0.0.1:9"), ("empty", ""), ("256 bytes", "tcp://" + "h" * 250),
                            ("scheme only", "tcp://")):
        add("bad endpoint (%s)" % label, req("CONNECT", user="bob", endpoint=endpoint))
    add("SEARCH without q or cid", req("SEARCH"))
    add("SEARCH limit 0", req("SEARCH", q="base", limit=0))
    add("SEARCH limit 1001", req("SEARCH", q="base", limit=1001))
    add("SEARCH q of 257 bytes", req("SEARCH", q="q" * 257))
    add("SEARCH bad cid", req("SEARCH", cid="C" * 64))
    add("LOOKUP invalid name", req("LOOKUP", user="alice", name="../base.txt"))
    add("DELETE invalid name", req("DELETE", user="alice", name="base.txt/"))
    # -- hostile structure --------------------------------------------------------------------------------
    m = req("REGISTER", user="mallory-deep")
    add("deep nesting (arrays, 500 levels)", with_raw_field(m, "x", nested_arrays(500)))
    m = req("REGISTER", user="mallory-deep-map")
    add("deep nesting (maps, 100 levels)", with_raw_field(m, "x", b"\x81\xa1k" * 100 + b"\xc0"))
    m = req("REGISTER", user="mallory-array")
    add("huge array (60000 elements, under 64 KiB)", with_raw_field(m, "x", b"\xdc\xea\x60" + b"\xc0" * 60000))
    m = req("REGISTER", user="mallory-array32")
    add("huge array header (2^32-1 elements announced)", with_raw_field(m, "x", b"\xdd\xff\xff\xff\xff\xc0\xc0"))
    m = req("REGISTER", user="mallory-map32")
    add("huge map header (2^32-1 pairs announced)", with_raw_field(m, "x", b"\xdf\xff\xff\xff\xff\xc0\xc0"))
    m = req("REGISTER", user="mallory-str32")
    add("huge str header (4 GiB announced)", with_raw_field(m, "x", b"\xdb\xff\xff\xff\xff" + b"s" * 10))
    # -- framing ------------------------------------------------------------------------------------------
    body = pack(req("REGISTER", user="mallory-frames"))
    out.append(Case("extra frames (two body frames after the delimiter, DEALER)", frames=[b"", body, body],
                    dealer=True))
    out.append(Case("extra frames (three frames, DEALER)", frames=[b"", body, b"", body], dealer=True))
    out.append(Case("over the socket limit (2 MiB): dropped, broker keeps serving",
                    pack(req("REGISTER", user="mallory-huge", pad="p" * (2 << 20))), expect=DROPPED))
    # -- the CurveZMQ handshake (protocol.md "Security") ----------------------------------------------------
    body = pack(req("REGISTER", user="mallory-nokey"))
    out.append(Case("no CurveZMQ (a plaintext client): never answered", body, expect=NO_HANDSHAKE,
                    security=lambda broker, sock: None))
    body = pack(req("REGISTER", user="mallory-otherkey"))
    out.append(Case("CurveZMQ trusting another server key: never answered", body, expect=NO_HANDSHAKE,
                    security=lambda broker, sock: curve_client(sock, zmq.curve_keypair()[0])))
    return out


def boundary_cases():
    """The 64 KiB application limit: exactly 65,536 bytes is served, 65,537 is BAD REQUEST."""
    out = []
    for total, expect in ((65536, "OK"), (65537, "BAD REQUEST")):
        m = req("STATS", pad="")
        pad = total - len(pack(m))
        # str8 header is 2 bytes, str16 is 3: grow the pad until the body is exactly `total` bytes.
        p = pad
        while len(pack(dict(m, pad="p" * p))) > total:
            p -= 1
        body = pack(dict(m, pad="p" * p))
        assert len(body) == total, "test bug: body of %d bytes, wanted %d" % (len(body), total)
        # An oversized body need not be decoded, so its id may come back nil.
        out.append(Case("STATS body of exactly %d bytes" % total, body, echo=m["id"] if expect == "OK" else ANY,
                        expect=expect))
    return out


def run(broker_bin):
    ctx = zmq.Context.instance()
    broker = Broker(broker_bin).start()
    try:
        c = broker.client(timeout_ms=3000)
        for op, fields in (("REGISTER", {"user": "alice"}), ("REGISTER", {"user": "bob"}),
                           ("CONNECT", {"user": "alice", "endpoint": "tcp://127.0.0.1:9"}),
                           ("PUBLISH", dict(BASE_FILE, user="alice"))):
            r = c.call(op, **fields)
            CHECKS.ok(r.get("status") == "OK", "setup %s %r: %r" % (op, fields, r))
        base = c.call("STATS")
        CHECKS.ok(base.get("status") == "OK", "STATS: %r" % base)
        bad_seen = 0

        def still_serving(case):
            fresh = broker.client(timeout_ms=3000)
            try:
                CHECKS.ok(broker.proc.poll() is None, "after '%s' the broker exited with %s: %s"
                          % (case.name, broker.proc.returncode, broker.stderr()[-2000:]))
                s = fresh.call("STATS")
                CHECKS.ok(s.get("status") == "OK", "after '%s' STATS answered %r" % (case.name, s))
                for k in ("users", "connected", "files"):
                    CHECKS.ok(s.get(k) == base[k], "after '%s' STATS %s is %r, was %r: something was recorded"
                              % (case.name, k, s.get(k), base[k]))
                CHECKS.ok(s.get("bad_requests") == base["bad_requests"] + bad_seen,
                          "after '%s' STATS bad_requests is %r, expected %d (+%d BAD REQUEST replies so far)"
                          % (case.name, s.get("bad_requests"), base["bad_requests"] + bad_seen, bad_seen))
                r = fresh.call("LOOKUP", user="alice", name=BASE_FILE["name"])
                CHECKS.ok(r.get("status") == "OK" and r["file"]["cid"] == BASE_FILE["cid"],
                          "after '%s' LOOKUP of the base file answered %r" % (case.name, r))
                r = fresh.call("LIST_CONTENT", user="alice")
                CHECKS.ok(r.get("status") == "OK" and [f["name"] for f in r["files"]] == [BASE_FILE["name"]],
                          "after '%s' LIST_CONTENT alice answered %r" % (case.name, r))
            finally:
                fresh.close()

        def check_bad_reply(case, reply):
            CHECKS.ok(reply is not None, "'%s': no reply within 3 s (expected %s)" % (case.name, case.expect))
            CHECKS.ok(type(reply) is dict, "'%s': reply is not a map: %r" % (case.name, reply))
            CHECKS.ok(reply.get("status") == case.expect, "'%s': expected %s, got %r"
                      % (case.name, case.expect, reply))
            CHECKS.ok(reply.get("v") == 1, "'%s': reply v is %r" % (case.name, reply.get("v")))
            if case.expect != "OK":
                e = reply.get("error")
                CHECKS.ok(type(e) is str and len(e.strip()) > 3, "'%s': no error sentence: %r" % (case.name, reply))
            if case.echo == "nil":
                CHECKS.ok(reply.get("id") is None, "'%s': id must be nil when unreadable: %r" % (case.name, reply))
            elif case.echo is not ANY:
                CHECKS.ok(reply.get("id") == case.echo, "'%s': id %r not echoed: %r" % (case.name, case.echo, reply))

        for case in cases() + boundary_cases():
            print("-- %s" % case.name, flush=True)
            if case.dealer:
                d = broker.dealer()
                d.send_multipart(case.frames)
                reply = None
                if d.poll(3000) & zmq.POLLIN:
                    frames = d.recv_multipart()
                    CHECKS.ok(len(frames) == 2 and frames[0] == b"", "'%s': DEALER reply frames %r"
                              % (case.name, frames))
                    reply = msgpack.unpackb(frames[1], raw=False)
                d.close(linger=0)
                check_bad_reply(case, reply)
            elif case.expect is DROPPED:
                sender = broker.client(timeout_ms=1500)
                sender.sock.send_multipart(case.frames)
                # While the big message is refused, another client is served.
                other = broker.client(timeout_ms=3000)
                r = other.call("STATS")
                other.close()
                CHECKS.ok(r.get("status") == "OK", "'%s': another client got %r" % (case.name, r))
                got = sender.sock.poll(1500) & zmq.POLLIN
                CHECKS.ok(not got, "'%s': the socket limit should drop the message without a reply, got %r"
                          % (case.name, got and msgpack.unpackb(sender.sock.recv(), raw=False)))
                sender._open()  # Lazy Pirate: the same client reopens and is served again
                r = sender.call("STATS")
                CHECKS.ok(r.get("status") == "OK", "'%s': the sender, reopened, got %r" % (case.name, r))
                sender.close()
            elif case.expect is NO_HANDSHAKE:
                sender = ctx.socket(zmq.REQ)
                sender.setsockopt(zmq.LINGER, 0)
                case.security(broker, sender)
                sender.connect(broker.control)
                sender.send_multipart(case.frames)
                other = broker.client(timeout_ms=3000)  # meanwhile a proper client is served
                r = other.call("STATS")
                other.close()
                CHECKS.ok(r.get("status") == "OK", "'%s': another client got %r" % (case.name, r))
                got = sender.poll(1500) & zmq.POLLIN
                CHECKS.ok(not got, "'%s': a client that fails the handshake must get no reply, got %r"
                          % (case.name, got and msgpack.unpackb(sender.recv(), raw=False)))
                sender.close(linger=0)
            else:
                reply = c.send_raw(case.frames)
                check_bad_reply(case, reply)
            if case.expect == "BAD REQUEST":
                bad_seen += 1
            still_serving(case)
        s = c.call("STATS")
        CHECKS.ok(s["bad_requests"] - base["bad_requests"] == bad_seen,
                  "STATS bad_requests grew by %d over the run; %d BAD REQUEST replies were seen"
                  % (s["bad_requests"] - base["bad_requests"], bad_seen))
        print("%d bad inputs answered BAD REQUEST" % bad_seen)
        c.close()
    except BaseException:
        print("broker stderr (tail):\n%s" % broker.stderr()[-3000:])
        raise
    finally:
        broker.cleanup()


def main():
    ap = argparse.ArgumentParser(description="bad-input tests of a real zshare-broker")
    ap.add_argument("--broker-bin", required=True)
    args = ap.parse_args()
    try:
        run(args.broker_bin)
    except CheckFailed as e:
        print("FAIL: %s" % e, flush=True)
        print("%d passed, 1 failed" % CHECKS.passed)
        return 1
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("FAIL: unexpected exception")
        print("%d passed, 1 failed" % CHECKS.passed)
        return 1
    print("%d passed, 0 failed" % CHECKS.passed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
