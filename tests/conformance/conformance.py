#!/usr/bin/python3
# conformance.py: a zshare client written from schemas/ alone (catalogue.json + protocol.md), run against a
# real zshare-broker process. It loads the catalogue and drives every op, status and event it lists:
#   - every op succeeds once and its reply carries the catalogue's reply header and reply fields, typed;
#   - every status an op lists (but INTERNAL ERROR) is provoked, and every status the broker sends is listed;
#   - every event is seen on the SUB socket with its fields, and `seq` rises by one per event;
#   - a retried request id (Lazy Pirate: same bytes on a new REQ socket) gets the first reply, once;
#   - SEARCH pages (limit/cursor/next) give every match once; keywords fold ASCII case; cid search works;
#   - protocol.md "Content ids and chunk hashes": this client's own tree (below, from the prose) gives every id and
#     chunk-layer node of the document's test-vector tables, and every layer folds back to its id;
#   - another protocol version is refused with the sentence protocol.md quotes; an unknown `root` (version 1's) is
#     ignored;
#   - protocol.md "Security": every socket speaks CurveZMQ to the broker's public key; a user belongs to the key
#     that registered it (every `key` field is checked against the owner's key), another key gets DENIED on the
#     six owner-only ops, before the session state; a retried id is answered from the cache per sender key, a
#     failed mutation's reply too, whatever the retry now asks; the owner's CONNECT replaces its open session;
#   - protocol.md "Names, endpoints and timestamps": an endpoint without a port, a ts of another form are refused;
#   - protocol.md "Sessions": CONNECT and HEARTBEAT replies ask for `heartbeat_ms` (the promise, with this handful of
#     sessions), none of a session that promised none; a promise above one hour is refused;
#   - a short run against a broker started with --plaintext: it warns, and users carry an empty key, bound to
#     nobody, and a connected user is USER ALREADY CONNECTED to every connection.
#   - with --store postgresql every broker runs on PostgreSQL (a throw-away cluster): the same checks, the same results.
#   - limits, on a second broker started with small ones: every op a status of any_op_statuses covers is refused
#     so (RATE LIMITED, with retry_after_ms) and nothing is applied, HEARTBEAT never is, the bucket is the
#     client key's (a new connection of a drained key is refused), the same id sent after retry_after_ms is
#     served; PUBLISH beyond --max-files-per-user is LIMIT EXCEEDED.
# Invariant: the first failed check stops the run with a message and a non-zero exit; a run that passes ends
# with "N passed, 0 failed". Every wait has a deadline; nothing sleeps and hopes.
import argparse
import hashlib
import itertools
import json
import os
import re
import sys
import time
import traceback
import uuid

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from zshare_testlib import CheckFailed, Checks, Broker  # noqa: E402  (processes and tallies only; the wire code is below)
from pg_cluster import BrokerDatabases  # noqa: E402

REPLY_TIMEOUT_MS = 5000
EVENT_TIMEOUT_S = 5.0
# RFC 32 (Z85), the encoding the catalogue's type "key" names: 40 characters of this alphabet are 32 bytes.
Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


CHECKS = Checks()


# --------------------------------------------------------------------------------------------------------
# The catalogue: types, ops, statuses, events, all read from catalogue.json.
# --------------------------------------------------------------------------------------------------------

def _byte_bounds(text):
    """(min, max) byte bounds stated in a catalogue type sentence: '1-64 bytes' or 'at most 255 bytes'."""
    m = re.search(r"(\d+)-(\d+) bytes", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = re.search(r"at most (\d+) bytes", text)
    if m:
        return 0, int(m.group(1))
    return None


class Catalogue:
    def __init__(self, path, plaintext=False):
        # "key": 40 Z85 characters over CurveZMQ; "" for users registered over --plaintext (this run's mode).
        self.plaintext = plaintext
        with open(path, "r", encoding="utf-8") as f:
            self.doc = json.load(f)
        d = self.doc
        self.version = d["version"]
        self.max_message_bytes = d["transport"]["max_message_bytes"]
        self.statuses = d["statuses"]
        self.request_header = d["request_header"]
        self.reply_header = d["reply_header"]
        self.ops = d["ops"]
        self.any_op_statuses = d.get("any_op_statuses", {})
        self.common_event = d["events"]["_common"]
        self.events = {k: v for k, v in d["events"].items() if not k.startswith("_")}
        types = d["types"]
        self.type_text = types
        self.user_re = re.compile(re.search(r"\^.*\$", types["user"]).group(0))
        self.bounds = {name: _byte_bounds(text) for name, text in types.items()}
        self.checkers = {
            "uint": lambda v: type(v) is int and v >= 0,
            "bool": lambda v: type(v) is bool,
            "str": lambda v: type(v) is str,
            "user": lambda v: type(v) is str and self.user_re.match(v) is not None,
            "file_name": self._is_file_name,
            "description": lambda v: type(v) is str and self._within("description", v),
            "hash": lambda v: type(v) is str and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
            "endpoint": lambda v: (type(v) is str and self._within("endpoint", v) and
                                   re.fullmatch(r"tcp://[^\s:][^\s]*:(\d{1,5})", v) is not None and
                                   1 <= int(v.rsplit(":", 1)[1]) <= 65535),
            "request_id": lambda v: type(v) is str and self._within("request_id", v),
            "timestamp": lambda v: (type(v) is str and self._within("timestamp", v) and
                                    re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", v) is not None),
            "key": lambda v: type(v) is str and (v == "" if self.plaintext else self._is_z85_key(v)),
            "nil": lambda v: v is None,
        }
        unknown = [t for t in types if t not in self.checkers]
        CHECKS.ok(not unknown, "catalogue types this client does not know how to check: %s" % unknown)
        for op, spec in self.ops.items():
            for st in spec["statuses"]:
                CHECKS.ok(st in self.statuses, "op %s lists status %r missing from the global list" % (op, st))
            if spec.get("event"):
                CHECKS.ok(spec["event"] in self.events, "op %s names event %s the catalogue does not define"
                          % (op, spec["event"]))
        for st, spec in self.any_op_statuses.items():
            CHECKS.ok(st in self.statuses, "any_op_statuses names %r missing from the global list" % st)
            for op in spec.get("except_ops", []):
                CHECKS.ok(op in self.ops, "any_op_statuses %s excepts an op the catalogue does not define: %s"
                          % (st, op))

    def op_statuses(self, op):
        """Every status `op` may answer: its own list and the any-op statuses that do not except it."""
        return list(self.ops[op]["statuses"]) + [st for st, spec in self.any_op_statuses.items()
                                                 if op not in spec.get("except_ops", [])]

    def _within(self, type_name, s):
        b = self.bounds.get(type_name)
        n = len(s.encode("utf-8"))
        return b is None or b[0] <= n <= b[1]

    @staticmethod
    def _is_z85_key(v):
        return len(v) == 40 and all(ch in Z85_ALPHABET for ch in v)

    def _is_file_name(self, v):
        return (type(v) is str and self._within("file_name", v) and "/" not in v and "\0" not in v and ".." not in v)

    # A type spec is a name ("user"), a sentence starting with one ("uint, strictly increasing"),
    # a union ("uint or nil"), "endpoint (empty when offline)", "array of map" or "map" with fields.
    def type_error(self, value, spec, where):
        if isinstance(spec, dict):
            return self._type_error(value, spec["type"], spec.get("fields"), where)
        return self._type_error(value, spec, None, where)

    def _type_error(self, value, t, fields, where):
        t = t.strip()
        if " or " in t and not t.startswith("array of"):
            errs = [self._type_error(value, alt, fields, where) for alt in t.split(" or ")]
            return None if any(e is None for e in errs) else " and ".join(errs)
        m = re.match(r"^(array of map|map|[a-z_]+)(.*)$", t)
        if not m:
            return "%s: catalogue type %r not understood" % (where, t)
        base, note = m.group(1), m.group(2)
        if base == "array of map":
            if type(value) is not list:
                return "%s: expected an array, got %r" % (where, value)
            for i, item in enumerate(value):
                err = self._type_error(item, "map", fields, "%s[%d]" % (where, i))
                if err:
                    return err
            return None
        if base == "map":
            if type(value) is not dict:
                return "%s: expected a map, got %r" % (where, value)
            if isinstance(fields, str):
                ref = re.search(r"as one (\w+) result", fields)
                if not ref:
                    return "%s: catalogue field reference %r not understood" % (where, fields)
                fields = self.ops[ref.group(1)]["reply"]["results"]["fields"]
            for fname, fspec in (fields or {}).items():
                if fname not in value:
                    if self.may_be_absent(fspec):
                        continue
                    return "%s: missing field %r in %r" % (where, fname, value)
                err = self.type_error(value[fname], fspec, "%s.%s" % (where, fname))
                if err:
                    return err
            return None
        if "empty" in note and value == "":
            return None
        checker = self.checkers.get(base)
        if checker is None:
            return "%s: catalogue type %r not understood" % (where, base)
        if not checker(value):
            return "%s: %r is not a valid %s (%s)" % (where, value, base, self.type_text.get(base, base))
        return None

    @staticmethod
    def may_be_absent(spec):
        """A field the catalogue says may be missing: its type text reads "..., absent ..." (e.g. `reachable`
        until the broker has probed the endpoint)."""
        text = spec["type"] if isinstance(spec, dict) else spec
        return re.search(r"\babsent\b", text) is not None

    def check_request(self, op, msg):
        """The client checks its own conforming requests against the catalogue before sending them."""
        spec = self.ops[op]["request"]
        for name, fspec in list(self.request_header.items()) + list(spec.items()):
            if fspec.get("required"):
                CHECKS.ok(name in msg, "test bug: %s request lacks required field %s" % (op, name))
            if name in msg:
                err = self.type_error(msg[name], fspec["type"], "%s request field" % op)
                CHECKS.ok(err is None, "test bug: %s" % err)
        extra = set(msg) - set(self.request_header) - set(spec)
        CHECKS.ok(not extra, "test bug: %s request has fields the catalogue does not list: %s" % (op, extra))


# --------------------------------------------------------------------------------------------------------
# Wire: REQ (or DEALER) sockets, one msgpack map per message; an events SUB watcher.
# --------------------------------------------------------------------------------------------------------

def now_ts():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def curve_dial(sock, server_key, keys):
    """protocol.md "Security": a CurveZMQ client trusting exactly the broker's public key, as keypair `keys`
    (Z85 bytes). Without a server key (a --plaintext broker) the socket stays plain."""
    if server_key:
        sock.curve_serverkey = server_key.encode()
        sock.curve_publickey, sock.curve_secretkey = keys


class Conn:
    """The protocol client: builds requests from the catalogue, checks every reply against it. Over CurveZMQ it
    dials the broker's `server_key` as `keys` (a fresh keypair unless given): the key that owns what it registers."""

    def __init__(self, ctx, endpoint, cat, tally, server_key=None, keys=None):
        self.ctx = ctx
        self.endpoint = endpoint
        self.cat = cat
        self.tally = tally
        self.server_key = server_key
        self.keys = (keys or zmq.curve_keypair()) if server_key else None
        self.public_key = self.keys[0].decode() if self.keys else ""  # how the broker names this client
        self.prefix = uuid.uuid4().hex
        self.counter = itertools.count(1)
        self.sock = None
        self.reopen()

    def reopen(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        curve_dial(self.sock, self.server_key, self.keys)
        self.sock.connect(self.endpoint)

    def close(self):
        self.sock.close(linger=0)

    def next_id(self):
        return "%s:%d" % (self.prefix, next(self.counter))

    def build(self, op, fields, req_id=None, header=None, conforming=True):
        msg = {"v": self.cat.version, "op": op, "id": req_id or self.next_id(), "ts": now_ts()}
        msg.update(header or {})
        msg.update(fields)
        msg = {k: v for k, v in msg.items() if v is not _DROP}
        if conforming:
            self.cat.check_request(op, msg)
        return msg

    def send_recv(self, body):
        self.sock.send(body)
        if not (self.sock.poll(REPLY_TIMEOUT_MS) & zmq.POLLIN):
            self.reopen()
            raise CheckFailed("no reply within %d ms from %s" % (REPLY_TIMEOUT_MS, self.endpoint))
        raw = self.sock.recv()
        try:
            reply = msgpack.unpackb(raw, raw=False)
        except Exception as e:  # noqa: BLE001
            raise CheckFailed("reply is not msgpack with valid UTF-8 strings: %s (%r)" % (e, raw[:200]))
        return reply

    def call(self, op, expect, req_id=None, header=None, conforming=True, **fields):
        """Sends op and checks the reply: header, status == expect, listed status, typed reply fields."""
        msg = self.build(op, fields, req_id=req_id, header=header, conforming=conforming)
        body = msgpack.packb(msg, use_bin_type=True)
        reply = self.send_recv(body)
        self.check_reply(op, msg, reply, expect)
        return reply

    def check_reply(self, op, msg, reply, expect):
        what = "%s %s" % (op, {k: v for k, v in msg.items() if k not in ("v", "op", "ts")})
        CHECKS.ok(type(reply) is dict, "%s: reply is not a map: %r" % (what, reply))
        status = reply.get("status")
        CHECKS.ok(status in self.cat.statuses, "%s: reply status %r is not a catalogue status; reply %r"
                  % (what, status, reply))
        if op in self.cat.ops:
            CHECKS.ok(status in self.cat.op_statuses(op),
                      "%s: status %r is not in the catalogue's statuses for %s %s; reply %r"
                      % (what, status, op, self.cat.op_statuses(op), reply))
        for name, spec in self.cat.any_op_statuses.get(status, {}).get("reply", {}).items():
            CHECKS.ok(name in reply, "%s: a %s reply lacks catalogue field %r: %r" % (what, status, name, reply))
            err = self.cat.type_error(reply[name], spec, "%s reply.%s" % (op, name))
            CHECKS.ok(err is None, "%s: %s" % (what, err))
        expected = expect if isinstance(expect, tuple) else (expect,)  # a tuple: any of these statuses
        CHECKS.ok(status in expected, "%s: expected status %r, got %r; reply %r" % (what, expect, status, reply))
        self.tally.saw(op, status)
        # reply header
        for name, spec in self.cat.reply_header.items():
            if name == "error" and status == "OK":
                if "error" in reply:
                    err = self.cat.type_error(reply["error"], spec["type"], "%s reply.error" % op)
                    CHECKS.ok(err is None, err)
                continue
            if name == "id" and not isinstance(msg.get("id"), str):
                CHECKS.eq(reply.get("id"), None, "%s: reply id is nil when the request had no readable id" % what)
                continue
            CHECKS.ok(name in reply, "%s: reply lacks header field %r: %r" % (what, name, reply))
            err = self.cat.type_error(reply[name], spec["type"], "%s reply.%s" % (op, name))
            CHECKS.ok(err is None, "%s: %s" % (what, err))
        CHECKS.eq(reply.get("v"), self.cat.version, "%s: reply v" % what)
        if isinstance(msg.get("id"), str) and 1 <= len(msg["id"].encode()) <= 64:
            CHECKS.eq(reply.get("id"), msg["id"], "%s: reply id echoes the request id" % what)
        if status != "OK":
            CHECKS.ok(type(reply.get("error")) is str and reply["error"].strip() != "",
                      "%s: a %s reply must carry an error sentence: %r" % (what, status, reply))
        elif op in self.cat.ops:
            for name, spec in self.cat.ops[op]["reply"].items():
                CHECKS.ok(name in reply or self.cat.may_be_absent(spec),
                          "%s: OK reply lacks catalogue field %r: %r" % (what, name, reply))
                if name not in reply:
                    continue
                err = self.cat.type_error(reply[name], spec, "%s reply.%s" % (op, name))
                CHECKS.ok(err is None, "%s: %s" % (what, err))


_DROP = object()  # a header value that removes the field from the request


class Tally:
    """Which (op, status) pairs the broker was seen to answer; which event topics were seen."""

    def __init__(self):
        self.pairs = set()
        self.topics = set()
        self.bad_requests = 0
        self.requests = 0

    def saw(self, op, status):
        self.pairs.add((op, status))
        self.requests += 1
        if status == "BAD REQUEST":
            self.bad_requests += 1


class Events:
    """The events SUB socket: topic frame + msgpack map; checks fields and that seq rises by one."""

    def __init__(self, ctx, endpoint, cat, tally, server_key=None):
        self.cat = cat
        self.tally = tally
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        curve_dial(self.sock, server_key, zmq.curve_keypair())  # the PUB is a Curve server too
        self.sock.connect(endpoint)
        self.last_seq = None
        self.count = 0

    def recv(self, timeout_s):
        if not (self.sock.poll(int(timeout_s * 1000)) & zmq.POLLIN):
            return None
        frames = self.sock.recv_multipart()
        CHECKS.eq(len(frames), 2, "an event has two frames (topic, msgpack map): %r" % (frames,))
        topic = frames[0].decode("utf-8")
        body = msgpack.unpackb(frames[1], raw=False)
        CHECKS.ok(type(body) is dict, "event %s body is not a map: %r" % (topic, body))
        return topic, body

    def accept(self, topic, body):
        """Checks one event against the catalogue and the seq rule."""
        CHECKS.ok(topic in self.cat.events, "event topic %r is not in the catalogue: %r" % (topic, body))
        for name, spec in list(self.cat.common_event.items()) + list(self.cat.events[topic].items()):
            if name.startswith("_"):
                continue  # a note, not a field
            if name not in body and self.cat.may_be_absent(spec):
                continue
            CHECKS.ok(name in body, "event %s lacks field %r: %r" % (topic, name, body))
            err = self.cat.type_error(body[name], spec, "event %s.%s" % (topic, name))
            CHECKS.ok(err is None, err)
        seq = body["seq"]
        if self.last_seq is not None:
            CHECKS.ok(seq > self.last_seq, "event seq must strictly increase: %d after %d (%s %r)"
                      % (seq, self.last_seq, topic, body))
            CHECKS.eq(seq, self.last_seq + 1, "event seq rises by one per event (a jump means a missed event); "
                      "%s %r" % (topic, body))
        self.last_seq = seq
        self.count += 1
        self.tally.topics.add(topic)

    def expect(self, topic, **fields):
        """The next event must be `topic` with these field values."""
        got = self.recv(EVENT_TIMEOUT_S)
        CHECKS.ok(got is not None, "no %s event %r within %.0fs" % (topic, fields, EVENT_TIMEOUT_S))
        gtopic, body = got
        CHECKS.ok(gtopic == topic and all(body.get(k) == v for k, v in fields.items()),
                  "expected event %s %r next, got %s %r (an extra or missing event?)" % (topic, fields, gtopic, body))
        self.accept(gtopic, body)
        return body

    def close(self):
        self.sock.close(linger=0)


# --------------------------------------------------------------------------------------------------------
# Content ids as protocol.md defines them.
# --------------------------------------------------------------------------------------------------------

BLOCK = 16384  # protocol.md: the tree's leaves hash blocks of 16 KiB


def _sha(data):
    return hashlib.sha256(data).digest()


def _pad(height):
    """pad_h: the hash of a subtree of `height` holding only padding (pad_0 is 32 zero bytes)."""
    h = bytes(32)
    for _ in range(height):
        h = _sha(h + h)
    return h


def _fold(nodes, height):
    """Nodes at `height`, padded with pad_height up to a power of two, folded pairwise to one."""
    width = 1
    while width < len(nodes):
        width *= 2
    level = list(nodes) + [_pad(height)] * (width - len(nodes))
    while len(level) > 1:
        level = [_sha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def content_id(data):
    """The cid: blocks' SHA-256 (the last block unpadded) as leaves, zero-padded to a power of two, folded."""
    if not data:
        return bytes(32)
    return _fold([_sha(data[i:i + BLOCK]) for i in range(0, len(data), BLOCK)], 0)


def chunk_layer(data, chunk_size):
    """The chunk layer for C = chunk_size and its height h = min(k, log2 P)."""
    blocks = -(-len(data) // BLOCK)
    tree_height = max(blocks - 1, 0).bit_length()
    h = min((chunk_size // BLOCK).bit_length() - 1, tree_height)
    layer = []
    for at in range(0, len(data), chunk_size):
        chunk = data[at:at + chunk_size]
        leaves = [_sha(chunk[i:i + BLOCK]) for i in range(0, len(chunk), BLOCK)]
        layer.append(_fold(leaves + [bytes(32)] * ((1 << h) - len(leaves)), 0))
    return layer, h


def check_test_vectors(protocol_md):
    """protocol.md's test vectors: the byte pattern its text states, each cid in its table, and the chunk layer
    of its `3 chunks` vector, against this client's tree; every layer (16 KiB to 16 MiB) folds to the cid."""
    with open(protocol_md, encoding="utf-8") as f:
        doc = f.read()
    section_text = doc[doc.index("## Content ids and chunk hashes"):]
    section_text = section_text[:section_text.index("\n## ", 1)]
    m = re.search(r"Byte i of a vector of N bytes is \(i \* (\d+) \+ (\d+)\) mod (\d+)", section_text)
    CHECKS.ok(m is not None, "protocol.md states the test vectors' byte pattern")
    mul, add, mod = (int(x) for x in m.groups())

    def vector(n):
        return bytes((i * mul + add) % mod for i in range(n))

    rows = re.findall(r"^\| ([^|]+?) \| (\d+) \| `([0-9a-f]{64})` \|$", section_text, re.M)
    CHECKS.ok(len(rows) >= 6, "protocol.md lists the test vectors' ids: %r" % (rows,))
    sizes = {}
    for name, n, cid in rows:
        data = vector(int(n))
        sizes[name] = int(n)
        CHECKS.eq(content_id(data).hex(), cid, "protocol.md test vector %r (%s bytes): cid" % (name, n))
        for k in range(0, 11):
            layer, h = chunk_layer(data, BLOCK << k)
            folded = _fold(layer, h) if layer else bytes(32)
            CHECKS.eq(folded.hex(), cid, "test vector %r: the chunk layer at C = %d folds to the cid"
                      % (name, BLOCK << k))
    CHECKS.ok("3 chunks" in sizes, "protocol.md has the `3 chunks` vector: %r" % sorted(sizes))
    nodes = re.findall(r"^\| (\d+) \| `([0-9a-f]{64})` \|$", section_text, re.M)
    layer, _ = chunk_layer(vector(sizes["3 chunks"]), 1 << 20)
    CHECKS.eq([(int(j), hx) for j, hx in nodes], [(j, x.hex()) for j, x in enumerate(layer)],
              "protocol.md's chunk layer of `3 chunks` at C = 1 MiB")


_content_counter = itertools.count(1)


def make_file(name, description=None, size=None, data=None, chunk_size=16384):
    """A PUBLISH field set for generated content (distinct content each call unless data is given)."""
    if data is None:
        n = size if size is not None else 1000 + next(_content_counter) * 7919 % 50000
        seed = ("%s:%d" % (name, next(_content_counter))).encode()
        data = (hashlib.sha256(seed).digest() * (n // 32 + 1))[:n]
    f = {"name": name, "size": len(data), "cid": content_id(data).hex(), "chunk_size": chunk_size}
    if description is not None:
        f["description"] = description
    return f


def keywords(text):
    """protocol.md's keyword split: ASCII letters/digits and multi-byte UTF-8 bytes form words; ASCII folds."""
    words, cur = [], bytearray()
    for c in text.encode("utf-8"):
        if 65 <= c <= 90:
            cur.append(c + 32)
        elif 97 <= c <= 122 or 48 <= c <= 57 or c >= 0x80:
            cur.append(c)
        else:
            if cur:
                words.append(bytes(cur))
            cur = bytearray()
    if cur:
        words.append(bytes(cur))
    return words


# --------------------------------------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------------------------------------

class Model:
    """What the broker should hold, to compare replies and STATS with."""

    def __init__(self):
        self.users = set()
        self.connected = {}  # user -> endpoint
        self.files = {}      # (user, name) -> fields
        self.owner = {}      # user -> the public key that registered it ("" over --plaintext)

    def file_result(self, user, name):
        f = dict(self.files[(user, name)])
        f.setdefault("description", "")
        f["user"] = user
        f["online"] = user in self.connected
        f["endpoint"] = self.connected.get(user, "")
        f["key"] = self.owner[user]
        return f


def section(name):
    print("-- %s" % name, flush=True)


def join_events(c, ev, model, where):
    """Takes broker.started, which a fresh broker holds until its first subscription (ours), then beats the
    slow joiner: REGISTERs probe-1, probe-2... over `c` until an event arrives on `ev`, then takes the probes'
    events still in flight, in order. From then on every event counts."""
    got = ev.recv(EVENT_TIMEOUT_S)
    CHECKS.ok(got is not None and got[0] == "broker.started",
              "the first event a subscriber gets from a new broker is broker.started: %r" % (got,))
    ev.accept(*got)
    CHECKS.eq((got[1]["seq"], got[1]["users"], got[1]["files"]), (1, 0, 0), "broker.started of an empty index")
    deadline = time.monotonic() + 10
    probes = []
    first = None
    while first is None:
        CHECKS.ok(time.monotonic() < deadline, "no event arrived on %s within 10s of REGISTERs" % where)
        probe = "probe-%d" % (len(probes) + 1)
        c.call("REGISTER", "OK", user=probe)
        model.users.add(probe)
        model.owner[probe] = c.public_key
        probes.append(probe)
        first = ev.recv(0.2)
    ev.accept(*first)
    seen = first[1]["user"]
    CHECKS.eq(first[1]["key"], c.public_key, "user.registered carries the registering key")
    for p in probes[probes.index(seen) + 1:]:
        ev.expect("user.registered", user=p, key=c.public_key)


LIMIT_RATE = 0.5    # the limits broker: one token every 2 s per client key, so a refusal after draining is certain
LIMIT_BURST = 10    # tokens a new key starts with: enough for the owner's files-per-user section on one key
LIMIT_FILES = 2     # files per user


def check_limits(args, cat, ctx, tally):
    """A second broker with small limits: every op the catalogue says may be RATE LIMITED is refused on an empty
    bucket and nothing happens; the bucket is the client key's, so a new connection of the same key finds it
    empty and another key does not; HEARTBEAT is served; the same id after retry_after_ms is served as new;
    PUBLISH beyond the files-per-user limit answers LIMIT EXCEEDED."""
    section("limits (a broker with --rate-limit %s --rate-burst %d --max-files-per-user %d)"
            % (LIMIT_RATE, LIMIT_BURST, LIMIT_FILES))
    broker = Broker(args.broker_bin, db=args.databases.new(),
                    extra_args=["--rate-limit", str(LIMIT_RATE), "--rate-burst", str(LIMIT_BURST),
                                "--max-files-per-user", str(LIMIT_FILES)]).start()
    conns = []
    owner = zmq.curve_keypair()  # "limited" belongs to this key

    def fresh(keys=None):
        """A new REQ connection, as a new client (a fresh key: a full bucket) unless given keys."""
        k = Conn(ctx, broker.control, cat, tally, server_key=broker.public_key, keys=keys)
        conns.append(k)
        return k

    def drained(keys=None):
        """A new connection whose key's bucket is empty: LIST_USERS until one is refused (the burst, give or
        take the token that refills meanwhile). The refusal counts in STATS rate_limited."""
        k = fresh(keys)
        for admitted in range(LIMIT_BURST + 2):
            if k.call("LIST_USERS", ("OK", "RATE LIMITED"))["status"] == "RATE LIMITED":
                break
        CHECKS.ok(admitted in (LIMIT_BURST, LIMIT_BURST + 1) or keys is not None,
                  "a new key is admitted its burst of %d, then refused: %d admitted" % (LIMIT_BURST, admitted))
        return k

    try:
        # Files per user, all on the owner's key (within its burst).
        o = fresh(owner)
        o.call("REGISTER", "OK", user="limited")
        o.call("CONNECT", "OK", user="limited", endpoint="tcp://127.0.0.1:7999")
        files = [make_file("limit-%d.bin" % i, description="limit test") for i in range(LIMIT_FILES + 1)]
        for f in files[:LIMIT_FILES]:
            o.call("PUBLISH", "OK", user="limited", **f)
        rid = "limit-%s" % uuid.uuid4().hex
        first = o.call("PUBLISH", "LIMIT EXCEEDED", req_id=rid, user="limited", **files[-1])
        CHECKS.ok(str(LIMIT_FILES) in first["error"], "LIMIT EXCEEDED names the limit: %r" % first)
        again = fresh(owner).call("PUBLISH", "LIMIT EXCEEDED", req_id=rid, user="limited", **files[-1])
        CHECKS.eq(again, first, "a retried PUBLISH id gets the stored LIMIT EXCEEDED")
        o.call("PUBLISH", "CONTENT ALREADY PUBLISHED", user="limited", **files[0])
        r = fresh().call("LIST_CONTENT", "OK", user="limited")
        CHECKS.eq(sorted(x["name"] for x in r["files"]), sorted(f["name"] for f in files[:LIMIT_FILES]),
                  "the user keeps its %d files and no more" % LIMIT_FILES)

        # The bucket is the key's, not the connection's: a Lazy Pirate reconnect buys no tokens.
        d = drained()
        r = fresh(d.keys).call("STATS", "RATE LIMITED")
        CHECKS.ok(r["retry_after_ms"] > 0, "a new connection of a drained key is refused: %r" % r)
        fresh().call("STATS", "OK")  # while another key is served

        # RATE LIMITED for every op that may be refused: drain a key's bucket, then ask.
        valid = {
            "REGISTER": {"user": "never-registered"}, "UNREGISTER": {"user": "limited"},
            "CONNECT": {"user": "limited", "endpoint": "tcp://127.0.0.1:7998"}, "DISCONNECT": {"user": "limited"},
            "PUBLISH": dict(make_file("refused.bin"), user="limited"), "DELETE": {"user": "limited", "name": files[0]["name"]},
            "LIST_USERS": {}, "LIST_CONTENT": {"user": "limited"}, "SEARCH": {"q": "limit"},
            "LOOKUP": {"user": "limited", "name": files[0]["name"]}, "STATS": {}, "SNAPSHOT": {},
            "HEARTBEAT": {"user": "limited"}, "DIAL": {"user": "limited", "callback_port": 7999},
        }
        CHECKS.eq(set(valid), set(cat.ops), "test bug: a valid request for every op of the catalogue")
        before = fresh().call("STATS", "OK")
        refusable = [op for op in sorted(cat.ops) if "RATE LIMITED" in cat.op_statuses(op)]
        for op in refusable:
            # A key that does not own "limited": the bucket is checked first, so RATE LIMITED, not DENIED.
            r = drained().call(op, "RATE LIMITED", **valid[op])
            CHECKS.ok(0 < r["retry_after_ms"] <= 1000 / LIMIT_RATE,
                      "%s: retry_after_ms %r is within one token's time" % (op, r["retry_after_ms"]))
        after = fresh().call("STATS", "OK")
        for key in ("users", "connected", "files", "seq", "retries_answered"):
            CHECKS.eq(after[key], before[key], "STATS %s: the refused requests changed nothing" % key)
        CHECKS.eq(after["rate_limited"] - before["rate_limited"], 2 * len(refusable),
                  "STATS rate_limited counts every refusal (each op's and its drain's)")
        fresh().call("LIST_CONTENT", "USER DOES NOT EXIST", user="never-registered")
        CHECKS.eq(len(fresh().call("LIST_CONTENT", "OK", user="limited")["files"]), LIMIT_FILES,
                  "the refused DELETE and UNREGISTER removed nothing")

        # HEARTBEAT is never refused, however empty the bucket (the owner's: another key would be DENIED).
        k = drained(owner)
        for _ in range(3):
            k.call("HEARTBEAT", "OK", user="limited")

        # An unreadable message on an empty bucket: RATE LIMITED with a nil id (the check comes before decoding).
        k = drained()
        r = k.send_recv(b"\xc1 not msgpack")
        CHECKS.ok(type(r) is dict and r.get("status") == "RATE LIMITED" and r.get("id") is None
                  and type(r.get("retry_after_ms")) is int, "an unreadable refused message: %r" % (r,))

        # The same request, same id, after retry_after_ms is served as if it came first.
        k = drained()
        msg = k.build("REGISTER", {"user": "patient"})
        body = msgpack.packb(msg, use_bin_type=True)
        r = k.send_recv(body)
        k.check_reply("REGISTER", msg, r, "RATE LIMITED")
        time.sleep(r["retry_after_ms"] / 1000.0)  # what the reply asks; the broker promised a token by then
        k.check_reply("REGISTER", msg, k.send_recv(body), "OK")
        fresh().call("REGISTER", "USERNAME IN USE", user="patient")  # registered, once
        CHECKS.ok(broker.proc.poll() is None, "the limits broker is still running")
    except BaseException:
        print("limits broker stderr (tail):\n%s" % broker.stderr()[-3000:])
        raise
    finally:
        for k in conns:
            k.close()
        broker.cleanup()


def run(args):
    cat = Catalogue(args.catalogue)
    ctx = zmq.Context.instance()
    broker = Broker(args.broker_bin, db=args.databases.new()).start()
    CHECKS.ok(args.databases.serves(broker), "the broker runs on the %s database given: %r"
              % (args.store, broker.stderr()))
    tally = Tally()
    model = Model()
    conns = []
    try:
        c = Conn(ctx, broker.control, cat, tally, server_key=broker.public_key)
        conns.append(c)
        CHECKS.ok(Catalogue._is_z85_key(c.public_key), "test bug: the client's public key %r is not Z85" % c.public_key)
        ev = Events(ctx, broker.events, cat, tally, server_key=broker.public_key)

        def new_conn(keys=None):
            """Another REQ socket; as the same client (c's keypair) unless given other keys."""
            k = Conn(ctx, broker.control, cat, tally, server_key=broker.public_key, keys=keys or c.keys)
            conns.append(k)
            return k

        def ep(port):
            return "tcp://127.0.0.1:%d" % port

        def register(user, conn=None):
            conn = conn or c
            r = conn.call("REGISTER", "OK", user=user)
            CHECKS.eq(r["key"], conn.public_key, "REGISTER %s reply key is the sender's public key" % user)
            model.users.add(user)
            model.owner[user] = conn.public_key
            ev.expect("user.registered", user=user, key=conn.public_key)

        def connect(user, endpoint, conn=None, **extra):
            r = (conn or c).call("CONNECT", "OK", user=user, endpoint=endpoint, **extra)
            CHECKS.eq(r["replaced"], False, "CONNECT %s: no session was open to replace" % user)
            model.connected[user] = endpoint
            ev.expect("peer.connected", user=user, endpoint=endpoint, key=model.owner[user])
            return r

        def disconnect(user):
            c.call("DISCONNECT", "OK", user=user)
            del model.connected[user]
            ev.expect("peer.disconnected", user=user)

        def publish(user, f, conn=None):
            (conn or c).call("PUBLISH", "OK", user=user, **f)
            model.files[(user, f["name"])] = dict(f)
            ev.expect("file.published", user=user, name=f["name"], description=f.get("description", ""),
                      size=f["size"], cid=f["cid"], chunk_size=f["chunk_size"])

        marker_n = itertools.count(1)

        def marker():
            """A fresh REGISTER whose event must be the next one: proves nothing extra was published."""
            register("marker-%d" % next(marker_n))

        # ---- events: beat the slow joiner, then every event counts -------------------------------------
        section("events subscription")
        join_events(c, ev, model, broker.events)

        # ---- STATS --------------------------------------------------------------------------------------
        section("STATS")
        s0 = c.call("STATS", "OK")
        CHECKS.eq(s0["users"], len(model.users), "STATS users after the probes")
        CHECKS.eq(s0["seq"], ev.last_seq, "STATS seq is the last event's seq")
        c.call("STATS", "BAD REQUEST", header={"ts": _DROP}, conforming=False)
        # protocol.md: ts is exactly YYYY-MM-DDTHH:MM:SS.mmmZ, a real date and time of day.
        for bad_ts in ("not-a-date", "2026-11-22T09:30:00Z", "2026-11-22T09:30:00.000+00:00", "2026-02-30T09:30:00.000Z",
                       "2026-11-22t09:30:00.000z"):
            r = c.call("STATS", "BAD REQUEST", header={"ts": bad_ts}, conforming=False)
            CHECKS.ok("'ts'" in r["error"], "a ts of another form is refused, naming the field: %r" % r)
        c.call("REGISTER", "BAD REQUEST", header={"ts": "not-a-date"}, user="never-stamped", conforming=False)
        c.call("LIST_CONTENT", "USER DOES NOT EXIST", user="never-stamped")
        c.call("STATS", "BAD REQUEST", header={"ts_local": "yes"}, conforming=False)
        c.call("STATS", "OK", header={"ts_local": True})
        # The catalogue allows a DEALER with an empty delimiter frame.
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        curve_dial(dealer, broker.public_key, c.keys)
        dealer.connect(broker.control)
        dmsg = c.build("STATS", {})
        dealer.send_multipart([b"", msgpack.packb(dmsg, use_bin_type=True)])
        CHECKS.ok(dealer.poll(REPLY_TIMEOUT_MS) & zmq.POLLIN, "no reply to STATS sent over a DEALER")
        dframes = dealer.recv_multipart()
        dealer.close(linger=0)
        CHECKS.ok(len(dframes) == 2 and dframes[0] == b"", "DEALER reply must be [empty, body]: %r" % dframes)
        c.check_reply("STATS", dmsg, msgpack.unpackb(dframes[1], raw=False), "OK")

        # ---- REGISTER -----------------------------------------------------------------------------------
        section("REGISTER")
        register("alice")
        c.call("REGISTER", "USERNAME IN USE", user="alice")
        c.call("REGISTER", "BAD REQUEST", user="has space", conforming=False)
        c.call("REGISTER", "BAD REQUEST", user="a" * 65, conforming=False)
        c.call("REGISTER", "BAD REQUEST", header={"id": _DROP}, user="nobody-id", conforming=False)
        register("Bob.the-2nd_")
        # Unknown fields are ignored, so later versions can add fields.
        c.call("REGISTER", "OK", user="dave", conforming=False, future_field={"x": [1, 2]})
        model.users.add("dave")
        model.owner["dave"] = c.public_key
        ev.expect("user.registered", user="dave", key=c.public_key)
        # Retry: the same id on a NEW REQ socket (same keypair: the same client) gets the same reply, one event.
        section("REGISTER retried")
        rid = c.next_id()
        first_reply = c.call("REGISTER", "OK", req_id=rid, user="carol")
        model.users.add("carol")
        model.owner["carol"] = c.public_key
        ev.expect("user.registered", user="carol", key=c.public_key)
        retry = new_conn()
        again = retry.call("REGISTER", "OK", req_id=rid, user="carol")
        CHECKS.eq(again, first_reply, "a retried REGISTER id gets the stored reply")
        marker()
        retries = 1
        # The cache is per sender key: another key reusing the id is answered afresh, never with c's reply.
        section("REGISTER: the same id from another key")
        stranger = new_conn(keys=zmq.curve_keypair())
        CHECKS.ok(stranger.public_key != c.public_key, "test bug: the stranger has a keypair of its own")
        r = stranger.call("REGISTER", "USERNAME IN USE", req_id=rid, user="carol")
        CHECKS.ok("key" not in r, "another key's reused id is not answered with the stored OK: %r" % r)
        marker()
        # A failed mutation's reply is kept too, and a reused id gets it whatever the new request asks.
        section("REGISTER: a refusal is kept for its id")
        rid = c.next_id()
        refused = c.call("REGISTER", "USERNAME IN USE", req_id=rid, user="carol")
        again = new_conn().call("REGISTER", "USERNAME IN USE", req_id=rid, user="not-carol")
        CHECKS.eq(again, refused, "a reused id gets the stored refusal, though the name it now asks for is free")
        c.call("LIST_CONTENT", "USER DOES NOT EXIST", user="not-carol")
        retries += 1
        marker()

        # ---- CONNECT ------------------------------------------------------------------------------------
        section("CONNECT")
        c.call("CONNECT", "USER DOES NOT EXIST", user="nobody", endpoint=ep(7001))
        connect("alice", ep(7101))
        # protocol.md "Sessions": the key that owns alice proves a new CONNECT is hers (a restarted peer): the
        # session still open is replaced at once, both ends published, and the reply says so.
        r = c.call("CONNECT", "OK", user="alice", endpoint=ep(7102))
        CHECKS.eq(r["replaced"], True, "a CONNECT from the owner's key over an open session says replaced")
        ev.expect("peer.disconnected", user="alice", reason="replaced by a new session")
        ev.expect("peer.connected", user="alice", endpoint=ep(7102), key=model.owner["alice"])
        model.connected["alice"] = ep(7102)
        r = c.call("LIST_USERS", "OK")
        CHECKS.eq([u["endpoint"] for u in r["users"] if u["user"] == "alice"], [ep(7102)],
                  "after the replacement alice is listed once, at the new endpoint")
        c.call("CONNECT", "BAD REQUEST", user="carol", endpoint="udp://127.0.0.1:1", conforming=False)
        c.call("CONNECT", "BAD REQUEST", user="carol", endpoint="tcp://127.0.0.1", conforming=False)  # no port
        c.call("CONNECT", "BAD REQUEST", user="carol", endpoint="tcp://127.0.0.1:65536", conforming=False)
        c.call("CONNECT", "BAD REQUEST", user="carol", conforming=False)

        # ---- DISCONNECT ---------------------------------------------------------------------------------
        section("DISCONNECT")
        c.call("DISCONNECT", "USER DOES NOT EXIST", user="nobody")
        c.call("DISCONNECT", "USER NOT CONNECTED", user="carol")
        c.call("DISCONNECT", "BAD REQUEST", conforming=False)
        connect("carol", ep(7301))
        disconnect("carol")
        c.call("DISCONNECT", "USER NOT CONNECTED", user="carol")
        connect("carol", ep(7302))
        connect("Bob.the-2nd_", ep(7201))

        # ---- PUBLISH ------------------------------------------------------------------------------------
        section("PUBLISH")
        f1 = make_file("Holiday_Photos.tar", description="Summer BEACH trip, 2023")
        c.call("PUBLISH", "USER DOES NOT EXIST", user="nobody", **f1)
        c.call("PUBLISH", "USER NOT CONNECTED", user="probe-1", **f1)
        publish("alice", f1)
        c.call("PUBLISH", "CONTENT ALREADY PUBLISHED", user="alice", **f1)
        bad = dict(f1, name="other.bin", chunk_size=20000)
        c.call("PUBLISH", "BAD REQUEST", user="alice", conforming=False, **bad)
        f_nodesc = make_file("no-description.bin")  # description is optional, default ""
        publish("alice", f_nodesc)
        f_empty = make_file("empty.dat", data=b"")
        CHECKS.eq(f_empty["cid"], "0" * 64, "test bug: an empty file's cid is 32 zero bytes")
        publish("alice", f_empty)
        # Unknown keys are ignored: a `root` (version 1's field) changes nothing.
        f_root = make_file("with-root.bin", description="sent with a root")
        c.call("PUBLISH", "OK", user="alice", conforming=False, root="cd" * 32, **f_root)
        model.files[("alice", f_root["name"])] = dict(f_root)
        ev.expect("file.published", user="alice", name=f_root["name"], cid=f_root["cid"])
        f_cafe = make_file("café menu.txt", description="Menu du café")
        publish("carol", f_cafe)
        shared = make_file("shared.iso", description="Same bytes twice", size=70000)
        publish("alice", shared)
        # The cid does not depend on the chunk size: a mirror hashed in 1 MiB chunks holds the same id.
        publish("Bob.the-2nd_", dict(shared, name="copy-of-shared.iso", description="mirror", chunk_size=1 << 20))
        # Retry in true Lazy Pirate style: the first reply is never read; the socket is closed and reopened.
        section("PUBLISH retried (reply lost)")
        f_retry = make_file("retried.bin", description="published once despite the retry")
        rid = c.next_id()
        msg = c.build("PUBLISH", dict(f_retry, user="alice"), req_id=rid)
        body = msgpack.packb(msg, use_bin_type=True)
        lost = new_conn()
        lost.sock.send(body)
        ev.expect("file.published", user="alice", name=f_retry["name"], cid=f_retry["cid"])  # committed
        lost.close()
        retry = new_conn()
        again = retry.send_recv(body)
        retry.check_reply("PUBLISH", msg, again, "OK")
        model.files[("alice", f_retry["name"])] = dict(f_retry)
        retries += 1
        marker()

        # ---- DELETE -------------------------------------------------------------------------------------
        section("DELETE")
        c.call("DELETE", "USER DOES NOT EXIST", user="nobody", name="x")
        c.call("DELETE", "USER NOT CONNECTED", user="probe-1", name="x")
        c.call("DELETE", "CONTENT NOT PUBLISHED", user="alice", name="never-published.txt")
        c.call("DELETE", "BAD REQUEST", user="alice", name="../etc/passwd", conforming=False)
        f_del = make_file("to-delete.txt", description="gone soon")
        publish("alice", f_del)
        rid = c.next_id()
        first_reply = c.call("DELETE", "OK", req_id=rid, user="alice", name=f_del["name"])
        del model.files[("alice", f_del["name"])]
        ev.expect("file.deleted", user="alice", name=f_del["name"], cid=f_del["cid"])
        section("DELETE retried")
        again = new_conn().call("DELETE", "OK", req_id=rid, user="alice", name=f_del["name"])
        CHECKS.eq(again, first_reply, "a retried DELETE id gets the stored reply (not CONTENT NOT PUBLISHED)")
        retries += 1
        marker()
        c.call("DELETE", "CONTENT NOT PUBLISHED", user="alice", name=f_del["name"])  # a new id: really gone

        # ---- DENIED: a user belongs to the key that registered it (protocol.md "Security") ---------------
        section("DENIED")
        owner_only = ("UNREGISTER", "CONNECT", "DISCONNECT", "PUBLISH", "DELETE", "HEARTBEAT")  # protocol.md
        for op in owner_only:
            CHECKS.ok("DENIED" in cat.ops[op]["statuses"], "the catalogue lists DENIED for owner-only op %s" % op)
        for op, spec in cat.ops.items():
            CHECKS.ok(op in owner_only or "DENIED" not in spec["statuses"],
                      "only the owner-only ops list DENIED; %s does too" % op)
        x = new_conn(keys=zmq.curve_keypair())  # another client, its own keypair
        CHECKS.ok(x.public_key not in (c.public_key, stranger.public_key), "test bug: x has a keypair of its own")
        CHECKS.ok("alice" in model.connected and "dave" in model.users and "dave" not in model.connected,
                  "test bug: DENIED needs alice connected and dave registered but offline")
        f_x = make_file("not-yours.bin", description="never published")
        # Checked before the session state: alice is connected, so her own key's CONNECT would replace the
        # session; dave is offline, so the others would be USER NOT CONNECTED.
        x.call("CONNECT", "DENIED", user="alice", endpoint=ep(7103))
        x.call("CONNECT", "DENIED", user="dave", endpoint=ep(7104))
        x.call("HEARTBEAT", "DENIED", user="alice")
        x.call("HEARTBEAT", "DENIED", user="dave")
        x.call("PUBLISH", "DENIED", user="alice", **f_x)
        x.call("PUBLISH", "DENIED", user="dave", **f_x)
        x.call("DELETE", "DENIED", user="alice", name=f1["name"])
        x.call("DELETE", "DENIED", user="dave", name=f1["name"])
        x.call("DISCONNECT", "DENIED", user="alice")
        x.call("DISCONNECT", "DENIED", user="dave")
        x.call("UNREGISTER", "DENIED", user="alice")
        x.call("UNREGISTER", "DENIED", user="dave")
        x.call("UNREGISTER", "USER DOES NOT EXIST", user="nobody")  # nobody owns a name nobody registered
        marker()  # no refusal published an event
        # Nothing changed: alice is still connected, at her endpoint, with her files, and still answers to c.
        r = x.call("LIST_USERS", "OK")  # reads are open to every key
        CHECKS.eq([(u["user"], u["endpoint"], u["key"]) for u in r["users"] if u["user"] in ("alice", "dave")],
                  [("alice", model.connected["alice"], c.public_key)], "after the refusals alice is connected as before")
        r = x.call("LOOKUP", "OK", user="alice", name=f1["name"])
        CHECKS.eq(r["file"]["key"], c.public_key, "LOOKUP names the owner's key to any key")
        r = x.call("LIST_CONTENT", "OK", user="alice")
        CHECKS.eq(sorted(f["name"] for f in r["files"]), sorted(n for (u, n) in model.files if u == "alice"),
                  "after the refusals alice's files are exactly as before")
        c.call("HEARTBEAT", "OK", user="alice")  # the owner is still served
        c.call("HEARTBEAT", "USER NOT CONNECTED", user="dave")
        # The other key owns what it registers; the first key is refused on it in turn.
        register("eve", conn=x)
        c.call("CONNECT", "DENIED", user="eve", endpoint=ep(7501))
        connect("eve", ep(7502), conn=x)
        c.call("HEARTBEAT", "DENIED", user="eve")
        x.call("HEARTBEAT", "OK", user="eve")
        f_eve = make_file("eve-notes.txt", description="owned by the second key")
        c.call("PUBLISH", "DENIED", user="eve", **f_eve)
        publish("eve", f_eve, conn=x)
        c.call("DELETE", "DENIED", user="eve", name=f_eve["name"])
        c.call("DISCONNECT", "DENIED", user="eve")
        c.call("UNREGISTER", "DENIED", user="eve")
        marker()

        # ---- LIST_USERS ---------------------------------------------------------------------------------
        section("LIST_USERS")
        r = c.call("LIST_USERS", "OK")
        want = [{"user": u, "endpoint": model.connected[u], "key": model.owner[u]} for u in sorted(model.connected)]
        got = [{"user": u["user"], "endpoint": u["endpoint"], "key": u["key"]} for u in r["users"]]
        CHECKS.eq(got, want, "LIST_USERS lists the connected users sorted by name, each with its owner's key")
        for v in (1, 2, cat.version + 1):
            r = c.call("LIST_USERS", "BAD REQUEST", header={"v": v}, conforming=False)
            CHECKS.eq(r["error"], "unsupported protocol version %d (this broker speaks %d)" % (v, cat.version),
                      "another version is told the broker's (protocol.md)")

        # ---- LIST_CONTENT -------------------------------------------------------------------------------
        section("LIST_CONTENT")

        def check_list_content(user):
            r = c.call("LIST_CONTENT", "OK", user=user)
            names = [x["name"] for x in r["files"]]
            CHECKS.eq(names, sorted(n for (u, n) in model.files if u == user),
                      "LIST_CONTENT %s lists exactly its files, sorted by name" % user)
            for x in r["files"]:
                want = model.file_result(user, x["name"])
                for k in cat.ops["LIST_CONTENT"]["reply"]["files"]["fields"]:
                    CHECKS.eq(x[k], want[k], "LIST_CONTENT %s file %s field %s" % (user, x["name"], k))

        check_list_content("alice")
        check_list_content("carol")
        check_list_content("probe-1")
        c.call("LIST_CONTENT", "USER DOES NOT EXIST", user="nobody")
        c.call("LIST_CONTENT", "BAD REQUEST", user="no/slash", conforming=False)

        # ---- LOOKUP -------------------------------------------------------------------------------------
        section("LOOKUP")
        r = c.call("LOOKUP", "OK", user="alice", name=f1["name"])
        want = model.file_result("alice", f1["name"])
        for k, spec in cat.ops["SEARCH"]["reply"]["results"]["fields"].items():
            if k not in want and cat.may_be_absent(spec):
                continue  # the broker's own finding (e.g. `reachable`, once it has probed the endpoint)
            CHECKS.eq(r["file"].get(k), want[k], "LOOKUP alice %s field %s" % (f1["name"], k))
        c.call("LOOKUP", "FILE NOT EXIST", user="alice", name="no-such-file")
        c.call("LOOKUP", "USER DOES NOT EXIST", user="nobody", name="x")
        c.call("LOOKUP", "BAD REQUEST", user="alice", name="a/b", conforming=False)

        # ---- SEARCH -------------------------------------------------------------------------------------
        section("SEARCH")
        # The fields the model predicts; not those the broker finds out itself (e.g. `reachable`, once probed).
        result_fields = [k for k, spec in cat.ops["SEARCH"]["reply"]["results"]["fields"].items()
                         if not cat.may_be_absent(spec)]

        def search_all(limit=None, **q):
            """Follows next until nil; returns the concatenated results and the number of pages."""
            out, cursor, pages = [], None, 0
            while True:
                fields = dict(q)
                if limit is not None:
                    fields["limit"] = limit
                if cursor is not None:
                    fields["cursor"] = cursor
                r = c.call("SEARCH", "OK", **fields)
                pages += 1
                if limit is not None:
                    CHECKS.ok(len(r["results"]) <= limit, "SEARCH page of %d results over limit %d"
                              % (len(r["results"]), limit))
                out.extend(r["results"])
                if r["next"] is None:
                    return out, pages
                CHECKS.ok(pages < 1000, "SEARCH paging does not end")
                CHECKS.ok(cursor is None or r["next"] > cursor,
                          "SEARCH next %r does not move past cursor %r" % (r["next"], cursor))
                cursor = r["next"]

        def expected_matches(q=None, cid=None, include_offline=False):
            want = set()
            for (u, n), f in model.files.items():
                if cid is not None and f["cid"] != cid:
                    continue
                if not include_offline and u not in model.connected:
                    continue  # by default SEARCH shows the files of online owners only
                if q is not None:
                    words = set(keywords(n)) | set(keywords(f.get("description", "")))
                    if not all(k in words for k in keywords(q)):
                        continue
                want.add((u, n))
            return want

        def check_search(what, limit=None, **q):
            results, pages = search_all(limit=limit, **q)
            keys = [(x["user"], x["name"]) for x in results]
            CHECKS.eq(len(keys), len(set(keys)), "%s: no result twice across pages" % what)
            CHECKS.eq(set(keys), expected_matches(q.get("q"), q.get("cid"), q.get("include_offline", False)),
                      "%s: the matching files" % what)
            for x in results:
                want = model.file_result(x["user"], x["name"])
                for k in result_fields:
                    CHECKS.eq(x[k], want[k], "%s: result %s/%s field %s" % (what, x["user"], x["name"], k))
            return pages

        check_search("SEARCH q=beach", q="beach")
        check_search("SEARCH case folding", q="HOLIDAY photos")
        check_search("SEARCH keywords of the name", q="tar")
        CHECKS.eq(expected_matches("holi"), set(), "test bug: a prefix is not a word")
        check_search("SEARCH whole words only", q="holi")
        check_search("SEARCH every keyword must match", q="holiday nothere")
        check_search("SEARCH multi-byte words (ASCII folded only)", q="CAFé")
        check_search("SEARCH by cid", cid=shared["cid"])
        CHECKS.eq(len(expected_matches(cid=shared["cid"])), 2, "test bug: shared cid published twice")
        check_search("SEARCH by q and cid", q="mirror", cid=shared["cid"])
        check_search("SEARCH unknown cid", cid="f" * 64)
        # Paging: 23 matching files over three users, one of them offline: 16 online, 23 with include_offline.
        section("SEARCH paging")
        for i in range(23):
            owner = ["alice", "carol", "Bob.the-2nd_"][i % 3]
            publish(owner, make_file("page-%02d.log" % i, description="Paging test number %d" % i))
        disconnect("Bob.the-2nd_")  # its results come back only with include_offline, online=false, endpoint ""
        CHECKS.eq(len(expected_matches("paging", include_offline=True)), 23, "test bug: 23 paging files")
        CHECKS.eq(len(expected_matches("paging")), 16, "test bug: 16 paging files online")
        for offline in (False, True):
            pages = check_search("SEARCH paging limit=5 include_offline=%s" % offline, limit=5, q="paging",
                                 include_offline=offline)
            CHECKS.ok(pages >= (5 if offline else 4), "%d results with limit 5 need more pages, got %d"
                      % (23 if offline else 16, pages))
            check_search("SEARCH paging limit=1 include_offline=%s" % offline, limit=1, q="PAGING test",
                         include_offline=offline)
            check_search("SEARCH paging limit=1000 include_offline=%s" % offline, limit=1000, q="paging",
                         include_offline=offline)
            check_search("SEARCH default limit include_offline=%s" % offline, q="paging", include_offline=offline)
        check_search("SEARCH by cid include_offline", cid=shared["cid"], include_offline=True)
        r = c.call("SEARCH", "OK", q="paging", limit=23, include_offline=True)
        CHECKS.eq(len(r["results"]), 23, "SEARCH limit=23 over 23 matches: one page")
        r = c.call("SEARCH", "OK", q="paging", limit=16)
        CHECKS.eq(len(r["results"]), 16, "SEARCH limit=16 over 16 online matches: one page")
        CHECKS.eq(r["next"], None, "16 online matches fill one page and no next: the offline owner's 7 do not count")
        CHECKS.ok(all(x["online"] for x in r["results"]), "SEARCH shows online owners' files by default")
        c.call("SEARCH", "BAD REQUEST", q="paging", include_offline="yes", conforming=False)
        c.call("SEARCH", "BAD REQUEST", conforming=False)
        c.call("SEARCH", "BAD REQUEST", q="...", conforming=False)  # no keyword in it
        c.call("SEARCH", "BAD REQUEST", q=" ", cid=shared["cid"], conforming=False)  # not even beside a cid
        c.call("SEARCH", "BAD REQUEST", q=" ".join("w%d" % i for i in range(17)), conforming=False)  # 17 keywords
        c.call("SEARCH", "BAD REQUEST", q="paging", limit=0, conforming=False)
        c.call("SEARCH", "BAD REQUEST", q="paging", limit=1001, conforming=False)
        c.call("SEARCH", "BAD REQUEST", q="x" * 257, conforming=False)
        c.call("SEARCH", "BAD REQUEST", cid="G" * 64, conforming=False)

        # ---- UNREGISTER ---------------------------------------------------------------------------------
        section("UNREGISTER")
        c.call("UNREGISTER", "USER DOES NOT EXIST", user="nobody")
        c.call("UNREGISTER", "BAD REQUEST", user=42, conforming=False)
        n_alice = len([1 for (u, _) in model.files if u == "alice"])
        r = c.call("UNREGISTER", "OK", user="alice")
        CHECKS.eq(r["files_removed"], n_alice, "UNREGISTER alice files_removed")
        ev.expect("user.unregistered", user="alice", files_removed=n_alice)
        model.users.discard("alice")
        model.owner.pop("alice")
        model.connected.pop("alice", None)
        for k in [k for k in model.files if k[0] == "alice"]:
            del model.files[k]
        c.call("LIST_CONTENT", "USER DOES NOT EXIST", user="alice")
        r = c.call("LIST_USERS", "OK")
        CHECKS.eq([x["user"] for x in r["users"]], sorted(model.connected), "LIST_USERS after UNREGISTER alice")
        check_search("SEARCH after UNREGISTER", q="paging")
        check_search("SEARCH after UNREGISTER include_offline", q="paging", include_offline=True)
        check_search("SEARCH by cid after UNREGISTER", cid=shared["cid"], include_offline=True)
        r = c.call("UNREGISTER", "OK", user="probe-1")  # no files
        CHECKS.eq(r["files_removed"], 0, "UNREGISTER of a user with no files")
        ev.expect("user.unregistered", user="probe-1", files_removed=0)
        model.users.discard("probe-1")
        model.owner.pop("probe-1")
        register("alice", conn=x)  # the name is free again, for any key: x owns this alice
        check_list_content("alice")  # the old files went with the old registration
        c.call("CONNECT", "DENIED", user="alice", endpoint=ep(7105))  # the old owner has no claim on the name
        marker()

        # ---- HEARTBEAT (Paranoid Pirate) ------------------------------------------------------------------
        section("HEARTBEAT")
        online = sorted(u for u in model.connected if model.owner[u] == c.public_key)
        offline = sorted(u for u in model.users - set(model.connected) if model.owner[u] == c.public_key)
        CHECKS.ok(online and offline, "test bug: HEARTBEAT needs a connected and a disconnected user of c's key")
        beat = c.call("HEARTBEAT", "OK", user=online[0])
        CHECKS.ok("heartbeat_ms" not in beat, "HEARTBEAT: a session that promised none is asked for none: %r" % beat)
        c.call("HEARTBEAT", "USER NOT CONNECTED", user=offline[0])
        c.call("HEARTBEAT", "USER DOES NOT EXIST", user="nobody-here")
        c.call("HEARTBEAT", "BAD REQUEST", user="not a name", conforming=False)
        c.call("CONNECT", "BAD REQUEST", user=offline[0], endpoint=ep(7399), heartbeat_ms=5, conforming=False)
        c.call("CONNECT", "BAD REQUEST", user=offline[0], endpoint=ep(7399), heartbeat_ms=3600001, conforming=False)

        # ---- DIAL (a seeder behind NAT dials out; transfer.md "Paths") ---------------------------------
        section("DIAL")
        c.call("DIAL", "NO ROUTE", user=online[0], callback_port=7400)  # promised no heartbeat: cannot be asked
        register("dial-seed")
        r = connect("dial-seed", ep(7410), heartbeat_ms=60000)
        # A handful of sessions is far below the default budget: the promise is what the broker asks for.
        CHECKS.eq(r.get("heartbeat_ms"), 60000, "CONNECT: the reply asks for the promised interval")
        r = c.call("DIAL", "OK", user="dial-seed", callback_port=7400)
        CHECKS.eq(r.get("callback"), "tcp://127.0.0.1:7400", "DIAL: the callback is the port on the requester's address")
        beat = c.call("HEARTBEAT", "OK", user="dial-seed")
        CHECKS.eq(beat.get("heartbeat_ms"), 60000, "HEARTBEAT: the reply asks for the interval again")
        CHECKS.ok(any(d.get("callback") == "tcp://127.0.0.1:7400" for d in beat.get("dials", [])),
                  "DIAL: the seeder's next HEARTBEAT reply carries the request: %r" % beat)
        beat = c.call("HEARTBEAT", "OK", user="dial-seed")
        CHECKS.ok("dials" not in beat, "DIAL: a request is carried once: %r" % beat)
        c.call("DIAL", "BAD REQUEST", user="dial-seed", callback="tcp://192.0.2.1:7401", conforming=False)  # no third host
        c.call("DIAL", "NO ROUTE", user="dial-seed")  # no callback, and this broker has no relay
        c.call("DIAL", "USER NOT CONNECTED", user=offline[0], callback_port=7400)
        c.call("DIAL", "USER DOES NOT EXIST", user="nobody-here", callback_port=7400)
        c.call("DIAL", "BAD REQUEST", user="dial-seed", callback_port=70000, conforming=False)
        c.call("DIAL", "BAD REQUEST", user="dial-seed", callback_port=7400, callback="tcp://192.0.2.1:1",
               conforming=False)

        # ---- SNAPSHOT (the Clone pattern's state request) -----------------------------------------------
        section("SNAPSHOT")
        snap_users, snap_files, cursor, pages = None, [], None, 0
        while True:
            fields = {"limit": 2}
            if cursor is not None:
                fields["cursor"] = cursor
            r = c.call("SNAPSHOT", "OK", **fields)
            pages += 1
            CHECKS.eq(r["seq"], ev.last_seq, "SNAPSHOT seq is the last event's seq")
            if cursor is None:
                snap_users = r["users"]
            else:
                CHECKS.eq(r["users"], [], "SNAPSHOT lists users on the first page only")
            CHECKS.ok(len(r["files"]) <= 2, "SNAPSHOT page over its limit")
            snap_files.extend(r["files"])
            if r["next"] is None:
                break
            CHECKS.ok(pages < 1000, "SNAPSHOT paging does not end")
            cursor = r["next"]
        CHECKS.eq(sorted(u["user"] for u in snap_users), sorted(model.users), "SNAPSHOT users")
        for u in snap_users:
            CHECKS.eq(u["online"], u["user"] in model.connected, "SNAPSHOT %s online" % u["user"])
            CHECKS.eq(u["endpoint"], model.connected.get(u["user"], ""), "SNAPSHOT %s endpoint" % u["user"])
            CHECKS.eq(u["key"], model.owner[u["user"]], "SNAPSHOT %s key is its owner's" % u["user"])
        keys = [(x["user"], x["name"]) for x in snap_files]
        CHECKS.eq(len(keys), len(set(keys)), "SNAPSHOT lists no file twice")
        CHECKS.eq(set(keys), set(model.files), "SNAPSHOT files are the index")
        for x in snap_files:
            want = model.file_result(x["user"], x["name"])
            for k in result_fields:
                CHECKS.eq(x[k], want[k], "SNAPSHOT file %s/%s field %s" % (x["user"], x["name"], k))
        c.call("SNAPSHOT", "BAD REQUEST", limit=0, conforming=False)

        # ---- STATS at the end ---------------------------------------------------------------------------
        section("STATS totals")
        s = c.call("STATS", "OK")
        CHECKS.eq(s["users"], len(model.users), "STATS users")
        CHECKS.eq(s["connected"], len(model.connected), "STATS connected")
        CHECKS.eq(s["files"], len(model.files), "STATS files")
        CHECKS.eq(s["seq"], ev.last_seq, "STATS seq is the last event's seq")
        CHECKS.ok(s["requests"] >= tally.requests, "STATS requests %d >= the %d this client sent"
                  % (s["requests"], tally.requests))
        CHECKS.eq(s["bad_requests"], tally.bad_requests, "STATS bad_requests counts every BAD REQUEST reply")
        CHECKS.eq(s["retries_answered"], retries, "STATS retries_answered counts the retried ids")
        CHECKS.eq(s["rate_limited"], 0, "STATS rate_limited: the default limits throttled nothing of this run")

        # ---- a restart: broker.started, in the events and in the seq ----------------------------------
        section("restart: broker.started")
        CHECKS.eq(broker.terminate(), 0, "the broker exits 0 on SIGTERM")
        broker.start()  # same ports, same database; our SUB reconnects and subscribes again by itself
        got = ev.recv(EVENT_TIMEOUT_S)
        if args.store == "postgresql":
            # Several brokers may share the database, so a restart ends this broker's own sessions only, each with
            # its own event (user order), before broker.started says so (protocol.md, "Several brokers").
            for user in sorted(model.connected):
                CHECKS.ok(got is not None and got[0] == "peer.disconnected" and
                          (got[1]["user"], got[1]["reason"]) == (user, "broker restarted"),
                          "after a restart on PostgreSQL, %s's session ends first: %r" % (user, got))
                ev.accept(*got)
                got = ev.recv(EVENT_TIMEOUT_S)
        CHECKS.ok(got is not None and got[0] == "broker.started",
                  "after a restart a connected subscriber gets broker.started first: %r" % (got,))
        ev.accept(*got)  # seq: the last event's + 1
        CHECKS.eq((got[1]["users"], got[1]["files"]), (len(model.users), len(model.files)),
                  "broker.started counts the restored users and files")
        CHECKS.eq(got[1].get("scope"), "broker" if args.store == "postgresql" else None,
                  "broker.started's scope: this broker's sessions only on PostgreSQL, every session on SQLite")
        model.connected.clear()  # what broker.started means: every session ended
        r = c.call("SNAPSHOT", "OK")
        CHECKS.eq(r["seq"], ev.last_seq, "SNAPSHOT seq after the restart is broker.started's")
        CHECKS.ok(r["next"] is None, "test bug: the index fits one SNAPSHOT page")
        CHECKS.ok(not any(u["online"] or u["endpoint"] for u in r["users"]) and
                  not any(f["online"] for f in r["files"]), "SNAPSHOT after a restart: every user offline")
        s = c.call("STATS", "OK")
        CHECKS.eq((s["seq"], s["connected"]), (ev.last_seq, 0), "STATS seq and connected after the restart")
        marker()  # the next event follows broker.started directly: nothing else was published

        check_limits(args, cat, ctx, tally)
        CHECKS.ok(broker.proc.poll() is None, "the broker is still running")
        ev.close()
    except BaseException:
        if broker.proc and broker.proc.poll() is not None:
            print("broker exited with %s" % broker.proc.returncode)
        print("broker stderr (tail):\n%s" % broker.stderr()[-3000:])
        raise
    finally:
        for k in conns:
            k.close()
        broker.cleanup()
    return tally


def check_coverage(cat, tallies):
    """Every status the catalogue lists for an op was provoked, on one broker or the other (USER ALREADY CONNECTED
    only happens over --plaintext), but those of the environment; every status seen is listed; every event was seen."""
    section("catalogue coverage")
    pairs = set().union(*(t.pairs for t in tallies))
    topics = set().union(*(t.topics for t in tallies))
    for op, spec in cat.ops.items():
        for st in spec["statuses"]:
            if st == "INTERNAL ERROR":
                continue
            CHECKS.ok((op, st) in pairs, "catalogue status %s of op %s was never provoked" % (st, op))
    for st, spec in cat.any_op_statuses.items():
        if spec.get("environment"):
            continue  # no client can provoke it (STORE UNAVAILABLE: the broker's tests stop its database)
        for op in cat.ops:
            if st in cat.op_statuses(op):
                CHECKS.ok((op, st) in pairs, "catalogue status %s (any op) of op %s was never provoked" % (st, op))
    for (op, st) in pairs:
        CHECKS.ok(op in cat.ops and st in cat.op_statuses(op), "broker answered %s with unlisted %s" % (op, st))
    for topic in cat.events:
        CHECKS.ok(topic in topics, "catalogue event %s was never seen" % topic)


def run_plaintext(args):
    """A broker started with --plaintext says so on stderr; its users carry an empty key and belong to nobody:
    any connection may act on them. A short run: the full catalogue is proven over CurveZMQ above."""
    section("--plaintext broker")
    cat = Catalogue(args.catalogue, plaintext=True)
    ctx = zmq.Context.instance()
    broker = Broker(args.broker_bin, db=args.databases.new(), plaintext=True).start()
    tally = Tally()
    model = Model()
    conns = []
    try:
        CHECKS.eq(broker.public_key, None, "test bug: a plaintext broker has no key")
        warnings = [line for line in broker.stderr().splitlines() if "WARNING" in line]
        CHECKS.ok(len(warnings) == 1 and "--plaintext" in warnings[0] and "CurveZMQ is off" in warnings[0],
                  "a --plaintext broker warns once on stderr that CurveZMQ is off: %r" % broker.stderr())
        a = Conn(ctx, broker.control, cat, tally)
        b = Conn(ctx, broker.control, cat, tally)  # another connection: no key tells it from a
        conns += [a, b]
        ev = Events(ctx, broker.events, cat, tally)
        join_events(a, ev, model, broker.events)
        r = a.call("REGISTER", "OK", user="lab")
        CHECKS.eq(r["key"], "", "over --plaintext the REGISTER reply key is empty")
        ev.expect("user.registered", user="lab", key="")
        b.call("CONNECT", "OK", user="lab", endpoint="tcp://127.0.0.1:7601")  # bound to nobody: b may
        ev.expect("peer.connected", user="lab", endpoint="tcp://127.0.0.1:7601", key="")
        # No key proves who sends a CONNECT: the open session stays, for every connection.
        for conn in (a, b):
            conn.call("CONNECT", "USER ALREADY CONNECTED", user="lab", endpoint="tcp://127.0.0.1:7602")
        b.call("HEARTBEAT", "OK", user="lab")
        f = make_file("lab-notes.txt", description="plaintext lab notes")
        b.call("PUBLISH", "OK", user="lab", **f)
        ev.expect("file.published", user="lab", name=f["name"])
        r = a.call("LIST_USERS", "OK")
        CHECKS.eq([(u["user"], u["key"]) for u in r["users"]], [("lab", "")], "LIST_USERS key over --plaintext")
        r = a.call("SEARCH", "OK", q="lab notes")
        CHECKS.eq([(x["user"], x["name"], x["key"]) for x in r["results"]], [("lab", f["name"], "")],
                  "SEARCH result key over --plaintext")
        r = a.call("LOOKUP", "OK", user="lab", name=f["name"])
        CHECKS.eq(r["file"]["key"], "", "LOOKUP key over --plaintext")
        r = a.call("SNAPSHOT", "OK")
        CHECKS.ok(all(u["key"] == "" for u in r["users"]) and all(x["key"] == "" for x in r["files"]),
                  "SNAPSHOT keys over --plaintext: %r" % r)
        a.call("DELETE", "OK", user="lab", name=f["name"])
        ev.expect("file.deleted", user="lab", name=f["name"])
        a.call("DISCONNECT", "OK", user="lab")
        ev.expect("peer.disconnected", user="lab")
        b.call("UNREGISTER", "OK", user="lab")
        ev.expect("user.unregistered", user="lab", files_removed=0)
        CHECKS.ok(not any(st == "DENIED" for (_, st) in tally.pairs), "a --plaintext broker never answers DENIED")
        CHECKS.ok(broker.proc.poll() is None, "the plaintext broker is still running")
        ev.close()
    except BaseException:
        print("plaintext broker stderr (tail):\n%s" % broker.stderr()[-3000:])
        raise
    finally:
        for k in conns:
            k.close()
        broker.cleanup()
    return tally


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="zshare protocol conformance test, from schemas/ alone")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--catalogue", default=os.path.join(here, "..", "..", "schemas", "catalogue.json"))
    ap.add_argument("--store", choices=BrokerDatabases.STORES, default="sqlite",
                    help="the brokers' database: their own SQLite files, or PostgreSQL (a throw-away cluster)")
    args = ap.parse_args()
    args.databases = BrokerDatabases(args.store)
    try:
        section("content ids: protocol.md's test vectors")
        check_test_vectors(os.path.join(os.path.dirname(os.path.abspath(args.catalogue)), "protocol.md"))
        tallies = [run(args), run_plaintext(args)]
        check_coverage(Catalogue(args.catalogue), tallies)
    except CheckFailed as e:
        print("FAIL: %s" % e, flush=True)
        print("%d passed, 1 failed" % CHECKS.passed)
        return 1
    except Exception:  # noqa: BLE001  (a crash of the test itself is a failure too)
        traceback.print_exc()
        print("FAIL: unexpected exception")
        print("%d passed, 1 failed" % CHECKS.passed)
        return 1
    finally:
        args.databases.close()
    print("%d passed, 0 failed" % CHECKS.passed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
