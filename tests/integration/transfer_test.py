#!/usr/bin/python3
# transfer_test.py: peer-to-peer transfers between real processes on loopback: `zshare-peer serve` seeders and
# `zshare-peer get` downloaders against a real zshare-broker, plus raw schemas/transfer.md requests from a
# python3-zmq DEALER. Mid-transfer kills are made deterministic with --rate-limit on the seeders and by waiting
# (with a deadline) until the downloader's .part has grown; no case sleeps and hopes.
# Everything runs over CurveZMQ (the default): every seeder user has a keypair of its own (kept across its
# restarts) and the downloaders another, so a download from several sources proves each is dialled with the key
# the broker lists for it; raw requests dial a seeder with its listed key, and another key gets nothing.
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import msgpack
import zmq

from merkle_tree import chunk_layer, cid_of, cid_of_file, fold
from zshare_testlib import (TRANSFER_VERSION, CaseEnv, ServeProcess, TransferClient, allocated_bytes, curve_client,
                            process_test_main, wait_for)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
GET_DEADLINE_S = 60
STATUS_REFUSALS = ("FILE NOT EXIST", "BAD REQUEST")


class Env(CaseEnv):
    """A case's world (CaseEnv), plus serve and get as the seeders' and the downloaders' keypairs."""

    def peer_args(self, user=None):
        """zshare-peer's global options: as `user`'s seeder, or as the downloaders' own keypair."""
        return self.broker.peer_args(self.key_dir(user or "downloader"))

    def listed_key(self, user):
        """The public key the broker lists for `user`; it must be the one its seeder made."""
        c = self.broker.client()
        try:
            users = {u["user"]: u["key"] for u in c.call("LIST_USERS")["users"]}
        finally:
            c.close()
        check(users.get(user) == self.broker.peer_public_key(self.key_dir(user)),
              "LIST_USERS lists %s with its seeder's key: %r" % (user, users))
        return users[user]

    def serve(self, user, share, *extra, cache=None):
        # The cases count chunks, so they pin the chunk size rather than depend on the default.
        if "--chunk-size" not in extra:
            extra = ("--chunk-size", 256 * KiB) + tuple(extra)
        s = ServeProcess(self.peer_bin, self.broker, user, share,
                         cache or os.path.join(self.folder("caches"), user + ".db"), extra_args=extra,
                         stderr_path=os.path.join(self.folder("logs"), "serve-%s.stderr" % user),
                         key_dir=self.key_dir(user))
        self.processes.append(s)
        s.start()
        return s

    def peer(self, *args, timeout=GET_DEADLINE_S):
        """Runs zshare-peer once (as the downloaders' keypair); returns (exit code, stdout, stderr)."""
        done = subprocess.run([self.peer_bin] + self.peer_args() + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def get_json(self, target, dest, *args, timeout=GET_DEADLINE_S):
        """`get --json`; returns (exit code, summary dict, stderr)."""
        code, out, err = self.peer("--json", "get", target, dest, *args, timeout=timeout)
        try:
            summary = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError("get printed no JSON summary (exit %d): stdout %r stderr %r" % (code, out, err))
        return code, summary, err

    def spawn_get(self, target, dest, *args):
        """Starts `get --json` in the background; the caller waits for it."""
        p = subprocess.Popen([self.peer_bin] + self.peer_args() + ["--json", "get", target, dest] +
                             [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(p)
        return p


def write_random(path, size, seed):
    """Deterministic pseudo-random bytes (no all-zero chunk, which a fresh sparse .part would not need)."""
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB pattern
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%s:%d" % (seed.encode(), counter)).digest() + block[:64 * KiB - 32]
        counter += 1
    with open(path, "wb") as f:
        f.write(out[:size])
    return cid_of(bytes(out[:size])).hex()


def check(condition, message, *context):
    if not condition:
        raise AssertionError(message + "".join("\n--- %s" % c for c in context))


def source_of(summary, user):
    for s in summary.get("sources", []):
        if s.get("user") == user:
            return s
    raise AssertionError("no source %s in the summary %r" % (user, summary))


VERBOSE = False


def check_done(summary, code, dest, cid, err, label):
    if VERBOSE:
        print("#   %s: exit %d %s" % (label, code, json.dumps(summary, sort_keys=True)), flush=True)
    check(code == 0 and summary.get("status") == "OK", "%s: get exited %d: %r" % (label, code, summary), err)
    check(os.path.exists(dest), "%s: %s was not written" % (label, dest))
    check(not os.path.exists(dest + ".part"), "%s: a finished download left %s.part" % (label, dest))
    got = cid_of_file(dest)
    check(got == cid, "%s: the downloaded file's content id is %s, not %s" % (label, got, cid))
    delivered = sum(s.get("chunks", 0) for s in summary.get("sources", []))
    check(delivered + summary.get("chunks_resumed", 0) == summary.get("chunks"),
          "%s: sources delivered %d and %d were resumed, of %d chunks" %
          (label, delivered, summary.get("chunks_resumed", 0), summary.get("chunks")))


def wait_part_grows(part, at_least, proc, deadline_s, label):
    """Waits until the .part holds at least `at_least` allocated bytes while `proc` still runs."""
    def grown():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError("%s: get exited (%s) before %s reached %d bytes; make the transfer slower\n%s\n%s"
                                 % (label, proc.returncode, part, at_least, out, err))
        return allocated_bytes(part) >= at_least
    wait_for(grown, deadline_s, "%s to hold %d bytes" % (part, at_least))


# ---------------------------------------------------------------------------------------------------------
# The cases.

def test_single_source(env):
    share = env.folder("single", "share")
    cid = write_random(os.path.join(share, "movie.bin"), 5 * MiB + 12345, "single")  # a short last chunk
    s = env.serve("single-a", share)
    check(s.serving["files"] == 1 and s.serving["published"] == 1, "SERVE: %r" % s.serving)
    dest = os.path.join(env.folder("single", "out"), "movie.bin")
    code, summary, err = env.get_json("single-a:movie.bin", dest)
    check_done(summary, code, dest, cid, err, "single source")
    src = source_of(summary, "single-a")
    check(src["endpoint"] == s.endpoint and src["chunks"] == summary["chunks"] == 21 and src["bad_chunks"] == 0,
          "one source delivers all 21 chunks: %r" % summary)
    check(summary["bytes_received"] == 5 * MiB + 12345 and summary["chunks_resumed"] == 0 and
          summary["cid"] == cid, "summary %r" % summary)


def test_three_sources(env):
    shares = [env.folder("three", u) for u in ("a", "b", "c")]
    cid = write_random(os.path.join(shares[0], "album.bin"), 6 * MiB, "three")
    for other in shares[1:]:
        shutil.copyfile(os.path.join(shares[0], "album.bin"), os.path.join(other, "album.bin"))
    users = ["three-a", "three-b", "three-c"]
    for user, share in zip(users, shares):
        env.serve(user, share)
    keys = [env.listed_key(u) for u in users]
    check(len(set(keys)) == 3, "each seeder serves with a keypair of its own: %r" % keys)
    dest = os.path.join(env.folder("three", "out"), "album.bin")
    # Window 4 over 24 chunks: the first round already asks each of the three sources for 4 chunks.
    code, summary, err = env.get_json(cid, dest, "--window", "4")
    check_done(summary, code, dest, cid, err, "three sources")
    check(len(summary["sources"]) == 3, "three sources used: %r" % summary)
    for user in users:
        src = source_of(summary, user)
        check(src["chunks"] > 0 and src["bad_chunks"] == 0 and src["dropped"] == "",
              "%s delivered no chunk or was dropped: %r" % (user, summary))


def test_mixed_chunk_sizes(env):
    """Seeders that hashed one file with different chunk sizes (64 KiB, 256 KiB, 1 MiB) publish one content id and
    serve one download together, in the largest chunk size, each folding its own layer up to it."""
    shares = [env.folder("mixed", u) for u in ("a", "b", "c")]
    cid = write_random(os.path.join(shares[0], "mix.bin"), 6 * MiB + 5 * KiB, "mixed")
    for other in shares[1:]:
        shutil.copyfile(os.path.join(shares[0], "mix.bin"), os.path.join(other, "mix.bin"))
    users = ["mixed-a", "mixed-b", "mixed-c"]
    for user, share, chunk in zip(users, shares, (64 * KiB, 256 * KiB, MiB)):
        env.serve(user, share, "--chunk-size", chunk)
    code, out, err = env.peer("--json", "search", "--cid", cid)
    listed = sorted((f["user"], f["cid"], f["chunk_size"]) for f in json.loads(out)["results"])
    check(listed == [("mixed-a", cid, 64 * KiB), ("mixed-b", cid, 256 * KiB), ("mixed-c", cid, MiB)],
          "one content id under three chunk sizes: %r" % listed)
    dest = os.path.join(env.folder("mixed", "out"), "mix.bin")
    code, summary, err = env.get_json(cid, dest, "--window", "2")
    check_done(summary, code, dest, cid, err, "mixed chunk sizes")
    check(summary["chunks"] == 7, "the download uses the largest chunk size, 1 MiB: %r" % summary)
    for user in users:
        src = source_of(summary, user)
        check(src["chunks"] > 0 and src["bad_chunks"] == 0 and src["dropped"] == "",
              "%s served its share of the chunks: %r" % (user, summary))


def test_seeder_killed_mid_transfer(env):
    """Two rate-limited seeders; one is killed (-9) mid-transfer; the other finishes the download."""
    shares = [env.folder("killed", u) for u in ("a", "b")]
    size = 16 * MiB
    cid = write_random(os.path.join(shares[0], "film.bin"), size, "killed")
    os.link(os.path.join(shares[0], "film.bin"), os.path.join(shares[1], "film.bin"))
    rate = 3 * MiB  # each seeder: a burst of 3 MiB, then 3 MiB/s; 16 MiB take about 2 s from both
    victim = env.serve("killed-a", shares[0], "--rate-limit", rate)
    env.serve("killed-b", shares[1], "--rate-limit", rate)
    dest = os.path.join(env.folder("killed", "out"), "film.bin")
    get = env.spawn_get(cid, dest, "--source-timeout", "1")
    wait_part_grows(dest + ".part", 8 * MiB, get, 30, "seeder killed")
    victim.kill9()
    check(get.poll() is None, "the download must still be running when the seeder is killed")
    out, err = get.communicate(timeout=GET_DEADLINE_S)
    summary = json.loads(out.strip().splitlines()[-1])
    check_done(summary, get.returncode, dest, cid, err, "seeder killed")
    a, b = source_of(summary, "killed-a"), source_of(summary, "killed-b")
    check(a["dropped"] != "", "the killed seeder must be dropped: %r" % summary)
    check(b["dropped"] == "" and b["chunks"] > 0 and a["chunks"] < summary["chunks"],
          "the survivor finishes: %r" % summary)


def test_corrupting_seeder(env):
    """A seeder flipping bytes (test-only fault switch): bad chunks are detected, counted, never written,
    asked again, and the file is right; with a good seeder beside it and alone."""
    shares = [env.folder("corrupt", u) for u in ("good", "bad", "alone")]
    cid = write_random(os.path.join(shares[0], "data.bin"), 6 * MiB, "corrupt")
    shutil.copyfile(os.path.join(shares[0], "data.bin"), os.path.join(shares[1], "data.bin"))
    env.serve("corrupt-good", shares[0])
    env.serve("corrupt-bad", shares[1], "--fault-corrupt-every", "2")
    dest = os.path.join(env.folder("corrupt", "out"), "data.bin")
    code, summary, err = env.get_json(cid, dest, "--window", "4")
    check_done(summary, code, dest, cid, err, "corrupting seeder beside a good one")
    bad, good = source_of(summary, "corrupt-bad"), source_of(summary, "corrupt-good")
    check(bad["bad_chunks"] >= 1 and good["bad_chunks"] == 0 and summary["bad_chunks"] == bad["bad_chunks"],
          "the flipped chunks are counted against the corrupting seeder: %r" % summary)

    # Alone, every 4th chunk served flipped: each bad chunk is asked again from the same seeder and healed.
    small = os.path.join(shares[2], "small.bin")
    small_cid = write_random(small, 8 * 256 * KiB, "corrupt-small")  # 8 chunks: served #4 and #8 flipped
    env.serve("corrupt-alone", shares[2], "--fault-corrupt-every", "4")
    dest2 = os.path.join(env.folder("corrupt", "out"), "small.bin")
    code, summary, err = env.get_json("corrupt-alone:small.bin", dest2, "--window", "2")
    check_done(summary, code, dest2, small_cid, err, "a lone corrupting seeder")
    check(summary["bad_chunks"] == 2 and source_of(summary, "corrupt-alone")["bad_chunks"] == 2,
          "two flipped chunks detected and healed: %r" % summary)


def test_downloader_killed_and_resumed(env):
    share = env.folder("resume", "share")
    size = 8 * MiB
    cid = write_random(os.path.join(share, "disk.img"), size, "resume")
    env.serve("resume-a", share, "--rate-limit", 2 * MiB)
    dest = os.path.join(env.folder("resume", "out"), "disk.img")
    get = env.spawn_get("resume-a:disk.img", dest, "--window", "4")  # few requests die with it
    wait_part_grows(dest + ".part", 3 * MiB, get, 30, "downloader killed")
    get.send_signal(signal.SIGKILL)
    get.communicate(timeout=10)
    check(os.path.exists(dest + ".part") and not os.path.exists(dest),
          "a killed download keeps its .part and writes no destination")
    code, summary, err = env.get_json("resume-a:disk.img", dest)
    check_done(summary, code, dest, cid, err, "resumed download")
    check(summary["chunks_resumed"] >= 8, "the rerun must resume the chunks already in the .part (>= 2 MiB): %r"
          % summary)
    check(summary["bytes_received"] < size, "the rerun fetched everything again: %r" % summary)


def test_no_source_left(env):
    """The only seeder stops answering (SIGSTOP): dropped after --source-timeout, exit 1, a clear message,
    the .part kept and no destination. Then a restarted seeder lets the same command resume and finish."""
    share = env.folder("nosource", "share")
    cid = write_random(os.path.join(share, "archive.tar"), 8 * MiB, "nosource")
    cache = os.path.join(env.folder("nosource"), "hashes.db")
    seeder = env.serve("nosource-a", share, "--rate-limit", 2 * MiB, cache=cache)
    dest = os.path.join(env.folder("nosource", "out"), "archive.tar")
    get = subprocess.Popen([env.peer_bin] + env.peer_args() + ["get", "nosource-a:archive.tar", dest,
                            "--source-timeout", "1", "--max-tries", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    env.processes.append(get)
    wait_part_grows(dest + ".part", 3 * MiB, get, 30, "no source left")
    seeder.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    out, err = get.communicate(timeout=GET_DEADLINE_S)
    took = time.monotonic() - stopped_at
    check(get.returncode == 1, "exit code %d, expected 1" % get.returncode, out, err)
    check(out == "GET FAIL, DOWNLOAD FAILED\n", "stdout %r" % out)
    check("no source left" in err and "stopped answering" in err and "kept in %s.part" % dest in err,
          "the message must say why and what is kept", err)
    check(took < 10, "a silent seeder must be dropped after about --source-timeout 1 s, took %.1fs" % took)
    check(os.path.exists(dest + ".part") and not os.path.exists(dest), ".part kept, no destination")

    seeder.kill9()  # a stopped process dies on SIGKILL; its broker session is left behind
    again = env.serve("nosource-a", share, cache=cache)
    check(again.serving["from_cache"] == 1 and again.serving["hashed"] == 0, "restart: %r" % again.serving)
    code, summary, err = env.get_json("nosource-a:archive.tar", dest)
    check_done(summary, code, dest, cid, err, "resume after no source was left")
    check(summary["chunks_resumed"] > 0, "the kept .part must be resumed: %r" % summary)


def readline_within(proc, deadline_s):
    """One line of proc's stdout, waiting at most deadline_s (then raises)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout=deadline_s):
            raise TimeoutError("no line from %s within %ds" % (proc.args, deadline_s))
        return proc.stdout.readline()
    finally:
        sel.close()


def layer_nodes(layer):
    """A MANIFEST's `layer` bin as a list of 32-byte nodes."""
    return [layer[i:i + 32] for i in range(0, len(layer), 32)]


def expect_refusal(client, status, label, **fields):
    op = fields.pop("op")
    reply, data = client.request(op, **fields)
    check(reply.get("status") == status, "%s: %r, expected %s" % (label, reply, status))
    check(isinstance(reply.get("error"), str) and reply["error"], "%s: a refusal carries a sentence: %r" % (label, reply))
    check(data is None, "%s: a refusal carries no data: %r" % (label, reply))
    return reply


def test_refusals(env):
    """Path traversal, symlink escape and unpublished content, at the seeder (raw protocol) and at `get`."""
    base = env.folder("refuse")
    share = env.folder("refuse", "share")
    outside = os.path.join(env.folder("refuse", "outside"), "secret.txt")
    secret = b"outside the share: must never be served\n" * 100
    with open(outside, "wb") as f:
        f.write(secret)
    secret_cid = cid_of(secret).hex()
    public = b"published bytes " * 12288  # 192 KiB: 12 blocks, chunks of 64 KiB at the seeder
    with open(os.path.join(share, "pub.txt"), "wb") as f:
        f.write(public)
    public_cid = cid_of(public).hex()
    swapped = b"s" * len(secret)  # the same size as the secret: swapped for a symlink to it later
    with open(os.path.join(share, "swap.txt"), "wb") as f:
        f.write(swapped)
    swapped_cid = cid_of(swapped).hex()
    with open(os.path.join(share, ".hidden"), "wb") as f:
        f.write(b"a dotfile is not published")
    hidden_cid = cid_of(b"a dotfile is not published").hex()
    os.symlink(outside, os.path.join(share, "escape.txt"))
    os.symlink("../outside/secret.txt", os.path.join(share, "relative-escape.txt"))

    s = env.serve("refuse-a", share, "--chunk-size", 64 * KiB)
    check(s.serving["files"] == 2, "only pub.txt and swap.txt are published: %r" % s.serving, s.stderr())
    check("skipping escape.txt" in s.stderr() and "skipping relative-escape.txt" in s.stderr(),
          "serve says it skipped the symlinks", s.stderr())
    code, out, err = env.peer("--json", "list-content", "refuse-a")
    names = sorted(f["name"] for f in json.loads(out)["files"])
    check(names == ["pub.txt", "swap.txt"], "the index lists only the regular files: %r" % names)

    # The seeder's ROUTER is a CurveZMQ server with its user's key: a client trusting another key, or speaking
    # no CurveZMQ, never completes the handshake and gets nothing.
    for label, secure in (("trusting another key", lambda sock: curve_client(sock, zmq.curve_keypair()[0])),
                          ("without CurveZMQ", lambda sock: None)):
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        secure(sock)
        sock.connect(s.endpoint)
        sock.send(msgpack.packb({"v": TRANSFER_VERSION, "op": "MANIFEST", "id": 1, "cid": public_cid},
                                use_bin_type=True))
        check(not sock.poll(1000), "a client %s gets no answer from the seeder" % label)
        sock.close(linger=0)

    c = TransferClient(s.endpoint, server_key=env.listed_key("refuse-a"))
    try:
        # The client itself works: the published file's manifest and a chunk. The seeder hashed in chunks of
        # 64 KiB; asked for 128 KiB chunks it folds its layer up, and both layers fold to the content id.
        reply, _ = c.request("MANIFEST", cid=public_cid)
        check(reply["status"] == "OK" and reply["size"] == len(public) and reply["chunks"] == 3 and
              reply["chunk_size"] == 64 * KiB and layer_nodes(reply["layer"]) == chunk_layer(public, 64 * KiB) and
              fold(layer_nodes(reply["layer"]), 2).hex() == public_cid, "MANIFEST of pub.txt: %r" % reply)
        reply, _ = c.request("MANIFEST", cid=public_cid, chunk_size=128 * KiB)
        check(reply["status"] == "OK" and reply["chunks"] == 2 and reply["chunk_size"] == 128 * KiB and
              layer_nodes(reply["layer"]) == chunk_layer(public, 128 * KiB) and
              fold(layer_nodes(reply["layer"]), 3).hex() == public_cid, "MANIFEST at 128 KiB: %r" % reply)
        reply, _ = c.request("MANIFEST", cid=public_cid, chunk_size=1 << 20)  # the whole file in one chunk
        check(reply["status"] == "OK" and reply["chunks"] == 1 and reply["layer"].hex() == public_cid,
              "MANIFEST at 1 MiB: the lone chunk's node is the content id: %r" % reply)
        reply, data = c.request("CHUNK", cid=public_cid, index=2)  # one frame, the chunk in `data`
        check(reply["status"] == "OK" and data == public[128 * KiB:] and reply["size"] == 64 * KiB and
              reply["index"] == 2, "CHUNK 2 of pub.txt: %r" % reply)
        reply, data = c.request("CHUNK", cid=public_cid, index=1, chunk_size=128 * KiB)
        check(reply["status"] == "OK" and data == public[128 * KiB:], "CHUNK 1 at 128 KiB: %r" % reply)
        r = expect_refusal(c, "BAD REQUEST", "a chunk size below the seeder's", op="MANIFEST", cid=public_cid,
                           chunk_size=16 * KiB)
        check("65536" in r["error"], "the refusal says which chunk size the seeder hashed with: %r" % r)
        expect_refusal(c, "BAD REQUEST", "a chunk size that is no power of two", op="CHUNK", cid=public_cid,
                       index=0, chunk_size=100 * KiB)
        for old in (1, 2):
            reply, _ = c.request("CHUNK", cid=public_cid, index=0, v=old)
            check(reply["status"] == "BAD REQUEST" and "this peer speaks %d" % TRANSFER_VERSION in reply.get("error", ""),
                  "a version %d request is refused, saying which version is spoken: %r" % (old, reply))

        unknown = cid_of(b"nobody has this").hex()
        for op in ("MANIFEST", "CHUNK"):
            expect_refusal(c, "FILE NOT EXIST", op + " of an unknown cid", op=op, cid=unknown, index=0)
            expect_refusal(c, "FILE NOT EXIST", op + " of the symlink's target", op=op, cid=secret_cid, index=0)
            expect_refusal(c, "FILE NOT EXIST", op + " of a dotfile", op=op, cid=hidden_cid, index=0)
        r = expect_refusal(c, "BAD REQUEST", "a path", op="CHUNK", cid=public_cid, index=0, path="../../etc/passwd")
        check(r.get("id") is not None, "the refusal echoes the request id: %r" % r)
        expect_refusal(c, "BAD REQUEST", "a path alone", op="CHUNK", index=0, path="../../etc/passwd")
        expect_refusal(c, "BAD REQUEST", "an absolute path", op="MANIFEST", cid=secret_cid, path=outside)
        expect_refusal(c, "BAD REQUEST", "a name", op="MANIFEST", cid=public_cid, name="pub.txt")
        expect_refusal(c, "BAD REQUEST", "a seeds-style GET_FILE", op="GET_FILE", user="refuse-a", name="pub.txt")
        expect_refusal(c, "BAD REQUEST", "an index past the end", op="CHUNK", cid=public_cid, index=3)
        expect_refusal(c, "BAD REQUEST", "a cid that is not hex", op="CHUNK", cid="../../etc/passwd", index=0)

        # A published file swapped for a symlink to the outside (same size) is not followed: FILE CHANGED until
        # serve notices the swap, FILE NOT EXIST once it has withdrawn the file (symlinks are never published).
        os.unlink(os.path.join(share, "swap.txt"))
        os.symlink(outside, os.path.join(share, "swap.txt"))
        reply, data = c.request("CHUNK", cid=swapped_cid, index=0)
        check(reply["status"] in ("FILE CHANGED", "FILE NOT EXIST") and data is None,
              "a published file swapped for a symlink must not be served: %r %r" % (reply, data and data[:40]))

        reply, data = c.request("CHUNK", cid=public_cid, index=0)
        check(reply["status"] == "OK" and data == public[:64 * KiB], "the seeder keeps serving after refusals: %r" % reply)
    finally:
        c.close()

    # The downloader's side: names with a path are refused before anything is asked; unpublished content fails.
    dest = os.path.join(base, "got")
    code, out, err = env.peer("get", "refuse-a:../../etc/passwd", dest)
    check(code == 2 and out == "GET FAIL, BAD REQUEST\n", "get of a path: exit %d %r" % (code, out), err)
    code, out, err = env.peer("get", "refuse-a:escape.txt", dest)
    check(code == 1 and out == "GET FAIL, FILE NOT EXIST\n", "get of the symlink: exit %d %r" % (code, out), err)
    code, out, err = env.peer("get", secret_cid, dest)
    check(code == 1 and out.startswith("GET FAIL"), "get of the outside file's cid: exit %d %r" % (code, out), err)
    check(not os.path.exists(dest) and not os.path.exists(dest + ".part"), "refused downloads write nothing")


def test_empty_file(env):
    share = env.folder("empty", "share")
    open(os.path.join(share, "empty.dat"), "wb").close()
    s = env.serve("empty-a", share)
    check(s.serving["files"] == 1, "the empty file is published: %r" % s.serving)
    empty_cid = "0" * 64  # schemas/protocol.md: the empty file's id is 32 zero bytes
    out_dir = env.folder("empty", "out")
    for label, target in (("by name", "empty-a:empty.dat"), ("by cid", empty_cid)):
        dest = os.path.join(out_dir, "empty-%s.dat" % label.split()[-1])
        code, summary, err = env.get_json(target, dest)
        check_done(summary, code, dest, empty_cid, err, "empty file " + label)
        check(os.path.getsize(dest) == 0 and summary["chunks"] == 0 and summary["size"] == 0,
              "empty file %s: %r" % (label, summary))


def test_sparse_over_4gib(env):
    """4300 MiB, mostly a hole, with marks around 2^31 and 2^32 and at the end: offsets past 32 bits."""
    share = env.folder("sparse", "share")
    src = os.path.join(share, "huge.img")
    size = 4300 * MiB
    marks = {2 ** 31 - 3: b"<2GiB-boundary>", 2 ** 32 - 5: b"<straddles 4 GiB>",
             2 ** 32 + 4 * MiB + 123: b"ZSHARE BEYOND 4 GiB", size - 7: b"THE END"}
    with open(src, "wb") as f:
        f.truncate(size)
        for offset, mark in marks.items():
            f.seek(offset)
            f.write(mark)
    check(os.path.getsize(src) == size, "the sparse file has the size it was given")
    digests = {}
    hasher = threading.Thread(target=lambda: digests.update(src=cid_of_file(src)), daemon=True)
    hasher.start()  # the source's content id, on the other core while serve hashes it
    s = env.serve("sparse-a", share, "--chunk-size", 4 * MiB)
    check(s.serving["files"] == 1, "SERVE: %r" % s.serving)
    dest = os.path.join(env.folder("sparse", "out"), "huge.img")
    code, summary, err = env.get_json("sparse-a:huge.img", dest, timeout=120)
    hasher.join(timeout=120)
    check("src" in digests, "hashing the source did not finish")
    check_done(summary, code, dest, digests["src"], err, "sparse file over 4 GiB")
    check(summary["size"] == size and summary["chunks"] == 1075, "summary %r" % summary)
    with open(dest, "rb") as f:
        for offset, mark in marks.items():
            f.seek(offset)
            got = f.read(len(mark))
            check(got == mark, "at offset %d the download has %r, the source %r" % (offset, got, mark))
    check(allocated_bytes(dest) < 64 * MiB,
          "the destination should stay sparse (zero chunks are not written): %d bytes allocated"
          % allocated_bytes(dest))


def test_twenty_concurrent_downloads(env):
    share = env.folder("twenty", "share")
    cid = write_random(os.path.join(share, "popular.bin"), 4 * MiB + 999, "twenty")
    # 80 MiB at 32 MiB/s (after a burst of 32 MiB) take about 1.5 s: all twenty are under way at once.
    s = env.serve("twenty-a", share, "--rate-limit", 32 * MiB)
    out_dir = env.folder("twenty", "out")
    dests = [os.path.join(out_dir, "copy-%02d.bin" % i) for i in range(20)]
    gets = [env.spawn_get("twenty-a:popular.bin", d) for d in dests]
    running = sum(1 for g in gets if g.poll() is None)
    check(running == 20, "only %d of the 20 downloads were still running when the last one started; the case "
          "needs them concurrent (slow the seeder down)" % running)
    end = time.monotonic() + GET_DEADLINE_S
    results = []
    for g in gets:
        out, err = g.communicate(timeout=max(1, end - time.monotonic()))
        results.append((g.returncode, out, err))
    for d, (code, out, err) in zip(dests, results):
        check(code == 0, "a concurrent get exited %d: %s" % (code, out), err)
        summary = json.loads(out.strip().splitlines()[-1])
        check_done(summary, code, d, cid, err, "concurrent download " + os.path.basename(d))
    check(s.running(), "the seeder survives 20 concurrent downloads", s.stderr())


def test_serve_restart_uses_hash_cache(env):
    share = env.folder("cache", "share")
    for i in range(3):
        write_random(os.path.join(share, "file-%d.bin" % i), 300 * KiB + i, "cache-%d" % i)
    cache = os.path.join(env.folder("cache"), "hashes.db")
    first = env.serve("cache-a", share, cache=cache)
    check(first.serving["hashed"] == 3 and first.serving["from_cache"] == 0 and first.serving["published"] == 3,
          "first run hashes and publishes all three: %r" % first.serving)
    code, lines = first.terminate()
    check(code == 0 and json.loads(lines[-1]).get("command") == "DISCONNECT" and
          json.loads(lines[-1]).get("status") == "OK", "SIGTERM: exit %d, output %r" % (code, lines), first.stderr())

    second = env.serve("cache-a", share, cache=cache)
    check(second.serving["from_cache"] == 3 and second.serving["hashed"] == 0 and second.serving["published"] == 0
          and second.serving["files"] == 3, "a restart takes every hash from the cache: %r" % second.serving)
    code, lines = second.terminate()
    check(code == 0, "second SIGTERM: exit %d" % code)

    # A changed file (new size and mtime) misses the cache, is hashed again and republished with its new cid.
    changed_cid = write_random(os.path.join(share, "file-1.bin"), 200 * KiB, "cache-changed")
    third = env.serve("cache-a", share, cache=cache)
    check(third.serving["hashed"] == 1 and third.serving["from_cache"] == 2 and third.serving["published"] == 1,
          "a changed file is hashed again: %r" % third.serving)
    code, out, err = env.peer("--json", "list-content", "cache-a")
    listed = {f["name"]: f["cid"] for f in json.loads(out)["files"]}
    check(listed.get("file-1.bin") == changed_cid, "the index has the changed file's new cid: %r" % listed)

    # Text mode: `SERVE OK` once serving, `DISCONNECT OK` after SIGTERM.
    third.terminate()
    text = subprocess.Popen([env.peer_bin] + env.peer_args("cache-a") + ["serve", "--user", "cache-a", "--share",
                             share, "--hash-cache", cache], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    env.processes.append(text)
    first_line = readline_within(text, 30)  # serve prints it only once serving
    text.send_signal(signal.SIGTERM)
    rest, err = text.communicate(timeout=15)
    check(first_line == "SERVE OK\n" and rest == "DISCONNECT OK\n" and text.returncode == 0,
          "text serve printed %r then %r, exit %s" % (first_line, rest, text.returncode), err)


def test_removed_file_unlisted_after_restart(env):
    share = env.folder("removed", "share")
    keep_cid = write_random(os.path.join(share, "keep.bin"), 100 * KiB, "removed-keep")
    gone_cid = write_random(os.path.join(share, "gone.bin"), 100 * KiB, "removed-gone")
    cache = os.path.join(env.folder("removed"), "hashes.db")
    first = env.serve("removed-a", share, cache=cache)
    check(first.serving["files"] == 2, "SERVE: %r" % first.serving)
    code, out, err = env.peer("--json", "list-content", "removed-a")
    check(sorted(f["name"] for f in json.loads(out)["files"]) == ["gone.bin", "keep.bin"], "listed: %s" % out)
    first.terminate()

    os.unlink(os.path.join(share, "gone.bin"))
    second = env.serve("removed-a", share, cache=cache)
    check(second.serving["files"] == 1, "SERVE after the removal: %r" % second.serving)
    code, out, err = env.peer("--json", "list-content", "removed-a")
    check([f["name"] for f in json.loads(out)["files"]] == ["keep.bin"],
          "the index must no longer list gone.bin: %s" % out)
    code, out, err = env.peer("--json", "search", "--cid", gone_cid)
    check(code == 0 and json.loads(out)["results"] == [], "SEARCH by the removed file's cid: %s" % out)
    c = TransferClient(second.endpoint, server_key=env.listed_key("removed-a"))
    try:
        expect_refusal(c, "FILE NOT EXIST", "MANIFEST of the removed file", op="MANIFEST", cid=gone_cid)
        reply, _ = c.request("MANIFEST", cid=keep_cid)
        check(reply["status"] == "OK", "the kept file is served: %r" % reply)
    finally:
        c.close()


TESTS = [
    ("single source", test_single_source),
    ("three sources", test_three_sources),
    ("seeders with different chunk sizes serve one download", test_mixed_chunk_sizes),
    ("seeder killed mid-transfer, the other finishes", test_seeder_killed_mid_transfer),
    ("corrupting seeder detected and healed", test_corrupting_seeder),
    ("downloader killed and resumed", test_downloader_killed_and_resumed),
    ("no source left: exit 1, .part kept, then resumed", test_no_source_left),
    ("path traversal, symlink escape, unpublished content refused", test_refusals),
    ("empty file", test_empty_file),
    ("sparse file over 4 GiB", test_sparse_over_4gib),
    ("20 concurrent downloads from one seeder", test_twenty_concurrent_downloads),
    ("serve restart uses the hash cache", test_serve_restart_uses_hash_cache),
    ("removed share file unlisted after restart", test_removed_file_unlisted_after_restart),
]


def main():
    def add_arguments(parser):
        parser.add_argument("--verbose", action="store_true", help="print every download's summary")

    def make_env(args, broker, root):
        global VERBOSE
        VERBOSE = args.verbose
        return Env(args.peer_bin, broker, root)  # each case's folder goes at its end: the 4 GiB sparse files at once
    return process_test_main("zshare peer-to-peer transfer process tests", TESTS, make_env, "zshare-transfer-",
                             add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
