#!/usr/bin/python3
# bad_input.py: one case per kind of bad input sent to a real zshare-broker over loopback.
# Each case must get BAD REQUEST with an `error` sentence (id echoed when readable, nil when not), or, for a
# message over the 1 MiB socket limit, no reply while the broker goes on serving everyone else. After EVERY
# case a fresh client must get normal answers, nothing may have been recorded (STATS users/connected/files
# unchanged, the base file still there) and STATS bad_requests must have grown by exactly one per BAD REQUEST.
# Kinds: random bytes, truncated and extra frames, wrong multipart shapes, messages over the size limits, huge
# msgpack arrays and maps, deep nesting, invalid UTF-8 (every reply must still decode as UTF-8), names with '..',
# NUL or 10,000 characters, timestamps not of the one ISO 8601 form, endpoints without a host or port. Then a
# bounded flood of them from many clients: the broker's RSS (/proc/PID/status) must stay within a fixed bound,
# STATS must count every message (bad_requests), and every reply it could not deliver because its sender had
# gone (dropped).
# Everything runs over CurveZMQ, as the broker does by default; clients that fail the handshake (no CurveZMQ at
# all, or trusting another server key) must get no reply at all while the broker goes on serving everyone else.
# The first failed check stops the run with a message and a non-zero exit; a pass ends "N passed, 0 failed".
import argparse
import os
import random
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from zshare_testlib import PROTOCOL_VERSION, CheckFailed, Checks, Broker, curve_client, wait_for  # noqa: E402


CHECKS = Checks()
ANY = object()      # the reply id is not checked (the spec does not say whether it can be read)
DROPPED = object()  # the case expects no reply at all
NO_HANDSHAKE = object()  # the sender never completes the CurveZMQ handshake: no reply, nothing recorded

HEX_A = "a" * 64
BASE_FILE = {"name": "base.txt", "description": "the file every case checks is still there", "size": 100,
             "cid": "c" * 64, "chunk_size": 16384}


def ts():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


_n = [0]


def new_id():
    _n[0] += 1
    return "bad-input-%d" % _n[0]


def req(op, **fields):
    """A well-formed request map; cases then break one thing in it."""
    m = {"v": PROTOCOL_VERSION, "op": op, "id": new_id(), "ts": ts()}
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
    m = req("PUBLISH", user="alice", **dict(BASE_FILE, name="new.bin", cid=HEX_A))
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
    def __init__(self, name, body=None, frames=None, echo=ANY, expect="BAD REQUEST", dealer=False, security=None,
                 error=None):
        self.name = name
        self.error = error  # when given, the reply's error sentence exactly
        self.frames = frames if frames is not None else [body]
        self.echo = echo
        self.expect = expect
        self.dealer = dealer
        self.security = security  # NO_HANDSHAKE cases: configures the sender's socket (broker, socket)


def cases():
    out = []

    def add(name, msg_or_bytes, echo=None, raw_str=False, error=None):
        """echo: None = derive (the map's id when it is a valid str, else nil)."""
        if isinstance(msg_or_bytes, (bytes, bytearray)):
            body = bytes(msg_or_bytes)
            e = ANY if echo is None else echo
        else:
            body = pack(msg_or_bytes, raw_str)
            i = msg_or_bytes.get("id")
            e = echo if echo is not None else (i if isinstance(i, str) and 0 < len(i) <= 64 else ANY)
        out.append(Case(name, body, echo=e, error=error))

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
    for v in (1, 2, 0, 4):  # 1: a client of the first protocol; 2 was never used
        add("wrong version v=%d" % v, dict(req("REGISTER", user="mallory-v%d" % v), v=v),
            error="unsupported protocol version %d (this broker speaks %d)" % (v, PROTOCOL_VERSION))
    v1_publish = dict(publish_req(), v=1, root=HEX_A)  # what a version 1 peer sends
    add("a version 1 PUBLISH (with root)", v1_publish,
        error="unsupported protocol version 1 (this broker speaks %d)" % PROTOCOL_VERSION)
    add("id of 65 bytes", dict(req("REGISTER", user="mallory-long-id"), id="i" * 65), echo=ANY)
    add("empty id", dict(req("REGISTER", user="mallory-empty-id"), id=""), echo=ANY)
    add("ts of 65 bytes", dict(req("REGISTER", user="mallory-long-ts"), ts="2" * 65))
    # ts is exactly YYYY-MM-DDTHH:MM:SS.mmmZ, a real date and time of day (protocol.md).
    for i, (label, bad_ts) in enumerate((("not a date", "not-a-date"), ("no milliseconds", "2026-11-22T09:30:00Z"),
                                         ("an offset, not Z", "2026-11-22T09:30:00.000+01:00"),
                                         ("month 13", "2026-13-01T00:00:00.000Z"), ("30 February", "2026-02-30T00:00:00.000Z"),
                                         ("hour 24", "2026-11-22T24:00:00.000Z"), ("lower-case t and z", "2026-11-22t09:30:00.000z"),
                                         ("a space for T", "2026-11-22 09:30:00.000Z"), ("empty", ""))):
        add("ts %s" % label, dict(req("REGISTER", user="mallory-ts-%d" % i), ts=bad_ts))
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
    for n in (20000, 0, 1, 8192, 1 << 25, 3 * 16384):
        add("bad chunk_size %d" % n, publish_req(chunk_size=n))
    for label, endpoint in (("not tcp", "udp://127.0.0.1:9"), ("empty", ""), ("256 bytes", "tcp://" + "h" * 250),
                            ("scheme only", "tcp://"), ("no port", "tcp://127.0.0.1"), ("no host", "tcp://:9"),
                            ("port 0", "tcp://127.0.0.1:0"), ("port 65536", "tcp://127.0.0.1:65536"),
                            ("port not a number", "tcp://127.0.0.1:http")):
        add("bad endpoint (%s)" % label, req("CONNECT", user="bob", endpoint=endpoint))
    add("SEARCH without q or cid", req("SEARCH"))
    add("SEARCH q without a keyword", req("SEARCH", q="..."))
    add("SEARCH q without a keyword beside a cid", req("SEARCH", q=" ", cid=HEX_A))
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
    m = req("REGISTER", user="mallory-map")
    add("huge map (10,000 pairs, under 64 KiB)", with_raw_field(m, "x", b"\xde\x27\x10" + b"\x01\xc0" * 10000))
    add("huge map at the top (10,000 pairs)", b"\xde\x27\x10" + b"\x01\xc0" * 10000, echo="nil")
    add("huge array at the top (2^32-1 announced)", b"\xdd\xff\xff\xff\xff\xc0", echo="nil")
    add("huge map at the top (2^32-1 announced)", b"\xdf\xff\xff\xff\xff\xc0\xc0", echo="nil")
    # -- random bytes (seeded: the same every run) ---------------------------------------------------------
    rng = random.Random(6)
    for i in range(24):
        n = rng.choice([1, 2, 7, 64, 500, 4096, 60000])
        add("random bytes #%d (%d bytes)" % (i + 1, n), bytes(rng.getrandbits(8) for _ in range(n)))
    # -- invalid UTF-8 anywhere a str is read -----------------------------------------------------------------
    add("id of invalid UTF-8 (never echoed)", dict(req("STATS"), id=b"id-\xff\xfe"), echo="nil", raw_str=True)
    add("op of invalid UTF-8", req(b"REG\xffISTER", user="mallory-op-utf8"), raw_str=True)
    add("user of invalid UTF-8", req("REGISTER", user=b"mal\xc3\x28lory"), raw_str=True)
    add("ts of invalid UTF-8", dict(req("STATS"), ts=b"2024-01-01T00:00:00.000Z\xff"), raw_str=True)
    add("endpoint of invalid UTF-8", req("CONNECT", user="bob", endpoint=b"tcp://h\xff:1"), raw_str=True)
    add("SEARCH q of invalid UTF-8", req("SEARCH", q=b"caf\xe9 au lait"), raw_str=True)
    add("LOOKUP name of invalid UTF-8", req("LOOKUP", user="alice", name=b"base\xff.txt"), raw_str=True)
    # -- NUL, '..' and 10,000 characters in names and other strings ---------------------------------------
    add("op with NUL", req("ST\0ATS"))
    add("endpoint with NUL (ZeroMQ would dial it cut short)", req("CONNECT", user="bob", endpoint="tcp://a\0b:1"))
    add("endpoint with a space", req("CONNECT", user="bob", endpoint="tcp://a b:1"))
    add("file name '../base.txt'", publish_req(name="../base.txt"))
    add("file name 'dir/..'", publish_req(name="dir/.."))
    add("DELETE name '..'", req("DELETE", user="alice", name=".."))
    add("LOOKUP user with NUL", req("LOOKUP", user="alice\0", name="base.txt"))
    ten_k = "n" * 10000
    add("user name of 10,000 characters", req("REGISTER", user=ten_k))
    add("file name of 10,000 characters", publish_req(name=ten_k))
    add("file name of 10,000 two-byte characters", publish_req(name="é" * 10000))
    add("description of 10,000 characters", publish_req(description=ten_k))
    add("endpoint of 10,000 characters", req("CONNECT", user="bob", endpoint="tcp://" + ten_k + ":1"))
    add("SEARCH q of 10,000 characters", req("SEARCH", q=" ".join(["w"] * 5000)))
    add("id of 10,000 characters", dict(req("STATS"), id="i" * 10000), echo="nil")
    add("op of 10,000 characters", req("O" * 10000))
    add("ts of 10,000 characters", dict(req("STATS"), ts="2" * 10000))
    # -- framing ------------------------------------------------------------------------------------------
    body = pack(req("REGISTER", user="mallory-frames"))
    out.append(Case("extra frames (two body frames after the delimiter, DEALER)", frames=[b"", body, body],
                    dealer=True))
    out.append(Case("extra frames (three frames, DEALER)", frames=[b"", body, b"", body], dealer=True))
    out.append(Case("extra frames (200 frames, DEALER)", frames=[b""] + [body] * 199, dealer=True))
    out.append(Case("truncated frames (the delimiter, no body, DEALER)", frames=[b""], dealer=True))
    out.append(Case("an empty body frame (DEALER)", frames=[b"", b""], dealer=True))
    out.append(Case("a multipart request of two frames (REQ)", frames=[body, body]))
    out.append(Case("the body split over two frames (REQ)", frames=[body[:5], body[5:]]))
    big = pack(req("REGISTER", user="mallory-two-big", pad="p" * (900 << 10)))
    out.append(Case("two frames of 900 KiB: each under the socket limit, 1.8 MiB together (DEALER)",
                    frames=[b"", big, big], dealer=True))
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


FLOOD_CLIENTS = 16          # DEALERs, so the flood comes from as many client identities
FLOOD_PER_CLIENT = 1500     # messages each, under the default rate limit's burst (4000): none is refused for rate
FLOOD_WINDOW = 16           # in flight per client: what the broker holds at once is bounded, so is its RSS
FLOOD_ROUNDS = 4
FLOOD_MAX_MESSAGE = 128 << 10
RSS_GROWTH_KIB = 48 << 10   # the whole flood (96,000 messages, 1.4 GB) may grow the broker by this much at most
RSS_LATE_GROWTH_KIB = 8 << 10  # and rounds 2-4 (72,000 messages) by this much: 120 bytes a message would exceed it
ABANDONED = 1000            # messages sent by a client that leaves before its replies


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise CheckFailed("no VmRSS in /proc/%d/status" % pid)


def sanitized(binary):
    """True for a build with AddressSanitizer (whose quarantine keeps freed memory) or ThreadSanitizer (whose
    shadow memory and access history grow with every message): their RSS says nothing about the broker's."""
    with open(binary, "rb") as f:
        data = f.read()
        return b"__asan_init" in data or b"__tsan_init" in data


def flood(broker, c, bad_cases):
    """A bounded flood of every BAD REQUEST case (those up to 128 KiB) from FLOOD_CLIENTS DEALERs at once, in
    FLOOD_ROUNDS rounds: every message is answered BAD REQUEST and counted, none is refused for rate, and the
    broker's RSS stays within a fixed bound however many rounds. Then clients that leave before their replies:
    the broker counts each message in bad_requests and the replies it could not deliver in dropped."""
    ctx = zmq.Context.instance()
    shapes = []
    for k in bad_cases:
        frames = k.frames if k.dealer else [b""] + k.frames
        if sum(len(f) for f in frames) <= FLOOD_MAX_MESSAGE:
            shapes.append(frames)
    CHECKS.ok(len(shapes) > 100, "test bug: the flood has %d kinds of message" % len(shapes))
    pid = broker.proc.pid
    rss = [rss_kib(pid)]
    total = FLOOD_CLIENTS * FLOOD_PER_CLIENT
    for rnd in range(FLOOD_ROUNDS):
        before = c.call("STATS")
        socks = []
        try:
            for i in range(FLOOD_CLIENTS):
                d = ctx.socket(zmq.DEALER)
                d.setsockopt(zmq.LINGER, 0)
                broker.secure(d)
                d.connect(broker.control)
                socks.append(d)
            sent = [0] * len(socks)
            answered = [0] * len(socks)

            def send_one(i):
                socks[i].send_multipart(shapes[(i * 7 + sent[i]) % len(shapes)])
                sent[i] += 1
            for i in range(len(socks)):
                for _ in range(FLOOD_WINDOW):
                    send_one(i)
            poller = zmq.Poller()
            for d in socks:
                poller.register(d, zmq.POLLIN)
            statuses = {}
            while sum(answered) < total:
                ready = dict(poller.poll(10000))
                CHECKS.ok(ready, "flood round %d: no reply for 10 s, %d of %d answered"
                          % (rnd + 1, sum(answered), total))
                for i, d in enumerate(socks):
                    while d in ready and d.poll(0) & zmq.POLLIN:
                        frames = d.recv_multipart()
                        status = msgpack.unpackb(frames[-1], raw=False).get("status")
                        statuses[status] = statuses.get(status, 0) + 1
                        answered[i] += 1
                        if sent[i] < FLOOD_PER_CLIENT:
                            send_one(i)
        finally:
            for d in socks:
                d.close(linger=0)
        CHECKS.eq(statuses, {"BAD REQUEST": total}, "flood round %d: every reply is BAD REQUEST" % (rnd + 1))
        after = c.call("STATS")
        grew = {k: after[k] - before[k] for k in ("requests", "bad_requests", "rate_limited", "dropped")}
        CHECKS.eq(grew, {"requests": total + 1, "bad_requests": total, "rate_limited": 0, "dropped": 0},
                  "flood round %d: STATS counts every message (and this STATS)" % (rnd + 1))
        CHECKS.eq(after["users"], before["users"], "flood round %d recorded no user" % (rnd + 1))
        rss.append(rss_kib(pid))
        print("flood round %d: %d messages, broker RSS %d KiB" % (rnd + 1, total, rss[-1]), flush=True)
    if sanitized(broker.binary):
        print("RSS bounds not checked: a sanitizer build holds memory of its own (%r KiB)" % rss, flush=True)
    else:
        check_rss(rss)
    abandoned_clients(broker, c, shapes)


def check_rss(rss):
    CHECKS.ok(rss[-1] - rss[0] <= RSS_GROWTH_KIB, "the broker's RSS grew from %d to %d KiB over the flood (%r), over "
              "the %d KiB bound" % (rss[0], rss[-1], rss, RSS_GROWTH_KIB))
    CHECKS.ok(rss[-1] - rss[1] <= RSS_LATE_GROWTH_KIB, "the broker's RSS kept growing after the first flood round: "
              "%r KiB, more than %d KiB over %d messages" % (rss, RSS_LATE_GROWTH_KIB,
                                                            FLOOD_CLIENTS * FLOOD_PER_CLIENT * (FLOOD_ROUNDS - 1)))


def abandoned_clients(broker, c, shapes):
    """Clients that leave at once (their socket lingers until its messages are out): every message the broker
    reads is counted in bad_requests, and a reply that finds its client gone is counted in dropped. ZeroMQ
    discards what a departed peer left unread in its pipe, so how many arrive, and how many replies miss their
    client, are races: rounds repeat until a reply was dropped, each round's counts checked exactly."""
    ctx = zmq.Context.instance()
    dropped = 0
    for rnd in range(10):
        before = c.call("STATS")
        d = ctx.socket(zmq.DEALER)
        broker.secure(d)
        d.connect(broker.control)
        for n in range(ABANDONED):
            d.send_multipart(shapes[n % len(shapes)])
        d.close(linger=10000)
        seen = {"polls": 0, "counted": -1}

        def settled():
            """All counted, or the count has stopped moving: the rest of that client's messages are gone."""
            seen["polls"] += 1
            counted = c.call("STATS")["requests"] - before["requests"] - seen["polls"]
            done = counted >= ABANDONED or counted == seen["counted"] > 0
            seen["counted"] = counted
            if not done:
                time.sleep(0.2)  # the pace of the polls, so "stopped moving" means 200 ms without a message
            return done
        wait_for(settled, 30, "the broker to read the messages of a client that left")
        after = c.call("STATS")
        counted = after["requests"] - before["requests"] - seen["polls"] - 1
        CHECKS.ok(0 < counted <= ABANDONED, "the broker read %d of the %d messages of a client that left"
                  % (counted, ABANDONED))
        CHECKS.eq(after["bad_requests"] - before["bad_requests"], counted,
                  "every message the broker read from a client that left is counted in bad_requests")
        grew = after["dropped"] - before["dropped"]
        CHECKS.ok(0 <= grew <= counted, "dropped grew by %d for %d messages read" % (grew, counted))
        dropped += grew
        if dropped:
            break
    CHECKS.ok(dropped > 0, "in 10 rounds no reply to a client that had left was counted as dropped")
    print("abandoned clients: %d replies counted as dropped" % dropped, flush=True)
    CHECKS.ok(broker.proc.poll() is None, "the broker is still running after the flood")


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
            CHECKS.ok(reply.get("v") == PROTOCOL_VERSION, "'%s': reply v is %r" % (case.name, reply.get("v")))
            if case.error is not None:
                CHECKS.eq(reply.get("error"), case.error, "'%s': error sentence" % case.name)
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
        flood(broker, c, [k for k in cases() if k.expect == "BAD REQUEST"])
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
    def body():
        run(args.broker_bin)
    return CHECKS.run(body)


if __name__ == "__main__":
    sys.exit(main())
