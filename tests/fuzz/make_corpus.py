#!/usr/bin/env python3
# make_corpus.py: writes the fuzzer's seed corpus (one msgpack request per file) from schemas/'s vocabulary,
# so the fuzzer starts from requests the broker accepts and mutates them into ones it must refuse.
import os
import sys

import msgpack

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)
base = {"v": 3, "id": "seed-1", "ts": "2026-11-22T00:00:00.000Z"}
pub = {"user": "alice", "name": "song.mp3", "description": "a live song", "size": 1234,
       "cid": "ab" * 32, "chunk_size": 1 << 20}
seeds = {
    "register": {"op": "REGISTER", "user": "alice"},
    "connect": {"op": "CONNECT", "user": "alice", "endpoint": "tcp://127.0.0.1:7000", "heartbeat_ms": 1000},
    "publish": dict(op="PUBLISH", **pub),
    "delete": {"op": "DELETE", "user": "alice", "name": "song.mp3"},
    "search": {"op": "SEARCH", "q": "live song", "limit": 10, "cursor": 0},
    "search_cid": {"op": "SEARCH", "cid": "ab" * 32},
    "lookup": {"op": "LOOKUP", "user": "alice", "name": "song.mp3"},
    "list_users": {"op": "LIST_USERS"},
    "list_content": {"op": "LIST_CONTENT", "user": "alice"},
    "snapshot": {"op": "SNAPSHOT", "limit": 5},
    "heartbeat": {"op": "HEARTBEAT", "user": "alice"},
    "stats": {"op": "STATS"},
    "disconnect": {"op": "DISCONNECT", "user": "alice"},
    "unregister": {"op": "UNREGISTER", "user": "alice"},
}
for name, fields in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(msgpack.packb(dict(base, **fields), use_bin_type=True))
print("%d seeds in %s" % (len(seeds), out))
