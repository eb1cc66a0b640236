#!/usr/bin/python3
# content_id_test.py: content ids (schemas/protocol.md, "Content ids and chunk hashes") three ways that must agree:
# the test-vector tables written in protocol.md, tests/pylib/merkle_tree.py (an independent Python tree), and
# `zshare-peer hash FILE...` (the C++ the peers publish with). Parts:
#   (a) merkle_tree.py against itself and the document: the vectors' byte pattern is the one protocol.md states,
#       every cid and chunk-layer node in its tables is what merkle_tree.py computes, and for `3 chunks` the chunk
#       layers at 16 KiB, 64 KiB and 1 MiB each fold (padded with pad_h) to the one cid, the larger layers being the
#       smaller ones folded in groups;
#   (b) `zshare-peer hash` prints `<cid>  <path>` for every vector file, in argument order, and exits 0;
#   (c) a missing file among them: exit 1, its name on stderr, every other file still printed.
# The tables are parsed from protocol.md, so the document cannot drift from the code. The first failed check stops
# the run with a message and a non-zero exit; a pass ends "N passed, 0 failed".
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import merkle_tree  # noqa: E402
from zshare_testlib import Checks  # noqa: E402

CHECKS = Checks()
HASH_TIMEOUT_S = 60


def doc_section(protocol_md):
    with open(protocol_md, encoding="utf-8") as f:
        doc = f.read()
    start = doc.index("## Content ids and chunk hashes")
    end = doc.find("\n## ", start + 1)
    return doc[start:end if end >= 0 else len(doc)]


def doc_vectors(section):
    """{name: (bytes, cid hex)} from protocol.md's vector table, and [(chunk, node hex)] from its layer table."""
    rows = re.findall(r"^\| ([^|]+?) \| (\d+) \| `([0-9a-f]{64})` \|$", section, re.M)
    nodes = re.findall(r"^\| (\d+) \| `([0-9a-f]{64})` \|$", section, re.M)
    return {name: (int(n), cid) for name, n, cid in rows}, [(int(j), h) for j, h in nodes]


def check_document(protocol_md):
    print("-- (a) protocol.md's tables against merkle_tree.py", flush=True)
    section = doc_section(protocol_md)
    CHECKS.ok("Byte i of a vector of N bytes is (i * 7 + 3) mod 251" in section,
              "protocol.md states the byte pattern merkle_tree.pattern_bytes makes")
    CHECKS.eq(list(merkle_tree.pattern_bytes(260)[:3]) + [merkle_tree.pattern_bytes(260)[251]], [3, 10, 17, 3],
              "merkle_tree.pattern_bytes: byte i is (i * 7 + 3) mod 251")
    vectors, nodes = doc_vectors(section)
    CHECKS.eq(sorted(vectors), sorted(merkle_tree.VECTOR_SIZES), "protocol.md lists exactly merkle_tree's vectors")
    for name, (size, cid) in vectors.items():
        data = merkle_tree.vector_bytes(name)
        CHECKS.eq(size, len(data), "vector %r: its size in protocol.md" % name)
        CHECKS.eq(merkle_tree.cid_hex(data), cid, "vector %r: the cid in protocol.md is merkle_tree's" % name)

    three = merkle_tree.vector_bytes("3 chunks")
    cid = merkle_tree.cid_of(three)
    layer_1m = merkle_tree.chunk_layer(three, 1 << 20)
    CHECKS.eq(nodes, [(j, h.hex()) for j, h in enumerate(layer_1m)],
              "protocol.md's chunk layer of `3 chunks` at C = 1 MiB is merkle_tree's")
    CHECKS.eq(len(set(merkle_tree.leaves(three))), 192, "`3 chunks`: 192 blocks, no two alike")
    layers = {}
    for chunk_size in (16 << 10, 64 << 10, 1 << 20):
        layer = merkle_tree.chunk_layer(three, chunk_size)
        h = merkle_tree.layer_height(len(three), chunk_size)
        CHECKS.eq(len(layer), -(-len(three) // chunk_size), "`3 chunks` at C = %d: n = ceil(size / C)" % chunk_size)
        width = 1
        while width < len(layer):
            width *= 2
        padded = layer + [merkle_tree.pad_hash(h)] * (width - len(layer))
        while len(padded) > 1:
            padded = [merkle_tree.sha256(padded[i] + padded[i + 1]) for i in range(0, len(padded), 2)]
        CHECKS.eq(padded[0].hex(), cid.hex(), "`3 chunks`: the layer at C = %d, padded with pad_%d, folds to the cid"
                  % (chunk_size, h))
        layers[chunk_size] = (layer, h)
    # A seeder answers for a larger C by folding its own layer: groups of 4 (16 KiB -> 64 KiB), 16 (64 KiB -> 1 MiB).
    for small, large in ((16 << 10, 64 << 10), (64 << 10, 1 << 20)):
        layer, h = layers[small]
        group = large // small
        folded = []
        for i in range(0, len(layer), group):
            nodes = layer[i:i + group]
            folded.append(merkle_tree.fold(nodes + [merkle_tree.pad_hash(h)] * (group - len(nodes)), h))
        CHECKS.eq(folded, layers[large][0], "`3 chunks`: the layer at C = %d is the one at %d folded by %d"
                  % (large, small, group))
    for name in merkle_tree.VECTOR_SIZES:  # a file that fits in one chunk: that chunk's node is the cid
        data = merkle_tree.vector_bytes(name)
        if data and len(data) <= 1 << 20:
            CHECKS.eq(merkle_tree.chunk_layer(data, 1 << 20), [merkle_tree.cid_of(data)],
                      "vector %r at C = 1 MiB: one chunk, its node is the cid" % name)
    return vectors


def run_hash(peer_bin, paths, home):
    env = dict(os.environ, ZSHARE_HOME=home)
    done = subprocess.run([peer_bin, "hash"] + paths, capture_output=True, text=True, timeout=HASH_TIMEOUT_S,
                          env=env)
    return done.returncode, done.stdout, done.stderr


def check_peer_hash(peer_bin, vectors, folder):
    print("-- (b) zshare-peer hash prints each vector's cid", flush=True)
    home = os.path.join(folder, "home")
    os.makedirs(home)
    paths = []
    for name in merkle_tree.VECTOR_SIZES:
        path = os.path.join(folder, "%s.bin" % name)  # spaces and '+' in the names: printed as given
        with open(path, "wb") as f:
            f.write(merkle_tree.vector_bytes(name))
        paths.append(path)
    want = ["%s  %s" % (vectors[name][1], path) for name, path in zip(merkle_tree.VECTOR_SIZES, paths)]
    code, out, err = run_hash(peer_bin, paths, home)
    CHECKS.eq(code, 0, "zshare-peer hash of the vector files exits 0 (stderr %r)" % err)
    CHECKS.eq(out.splitlines(), want, "zshare-peer hash prints `<cid>  <path>` per file, in order")

    print("-- (c) a missing file: exit 1, named on stderr, the others still printed", flush=True)
    missing = os.path.join(folder, "no such file.bin")
    code, out, err = run_hash(peer_bin, paths[:2] + [missing] + paths[2:], home)
    CHECKS.eq(code, 1, "zshare-peer hash with a missing file exits 1 (stderr %r)" % err)
    CHECKS.ok(missing in err, "stderr names the missing file: %r" % err)
    CHECKS.eq(out.splitlines(), want, "every other file is still printed, in order")
    CHECKS.ok(missing not in out, "no line on stdout for the missing file: %r" % out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="content ids: protocol.md's vectors, merkle_tree.py, zshare-peer hash")
    ap.add_argument("--peer-bin", required=True)
    ap.add_argument("--protocol", default=os.path.join(here, "..", "..", "schemas", "protocol.md"))
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="zshare-cid-")

    def body():
        vectors = check_document(args.protocol)
        check_peer_hash(args.peer_bin, vectors, folder)

    try:
        return CHECKS.run(body)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
