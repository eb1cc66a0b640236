#!/usr/bin/python3
# serve_follow_test.py: `zshare-peer serve` follows its folder without a restart: real serve processes against a real
# zshare-broker on loopback, each change observed through `zshare-peer list-content` (and raw schemas/transfer.md
# requests to the seeder) with a deadline, never a sleep. Covers: a file written then closed, one still open for
# writing, one moved in, deleted, rewritten; one replaced by a file of the same size and mtime (moved over it,
# rewritten in place with its mtime restored, or replaced while serve was stopped: the hash cache must not answer),
# then downloaded; dotfiles, *.part and subfolders never published; a burst of 2,000 files synced in few passes (the
# broker's request count proves it); polling mode; the seeder's refusals (FILE CHANGED, FILE NOT EXIST with their
# sentences); serve's log lines (published, withdrawn, uploaded); and a short --plaintext run.
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from merkle_tree import cid_hex
from zshare_testlib import Broker, CaseEnv, ServeProcess, TransferClient, process_test_main, wait_for

KiB = 1024
DEADLINE_S = 10      # a change must be in the index within this (the watcher settles in well under a second)
BURST_FILES = 2000
BURST_DEADLINE_S = 40


def check(condition, message, *context):
    if not condition:
        raise AssertionError(message + "".join("\n--- %s" % c for c in context))


def write_file(path, data):
    """Writes `data` and closes the file; returns its content id (hex)."""
    with open(path, "wb") as f:
        f.write(data)
    return cid_hex(data)


def content(seed, size=3 * KiB):
    """Deterministic bytes of `size` for a seed, so each file has a content id of its own."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


class Env(CaseEnv):
    """A case's world (CaseEnv), plus serve, list-content and raw transfer requests; `broker_bin` starts a broker
    of the case's own (the plaintext case)."""

    def __init__(self, peer_bin, broker_bin, broker, root):
        super().__init__(peer_bin, broker, root)
        self.broker_bin = broker_bin

    def serve(self, user, share, *extra, broker=None):
        s = ServeProcess(self.peer_bin, broker or self.broker, user, share,
                         os.path.join(self.folder("caches"), user + ".db"), extra_args=extra,
                         stderr_path=os.path.join(self.folder("logs"), "serve-%s.stderr" % user),
                         key_dir=self.key_dir(user))
        self.processes.append(s)
        s.start()
        return s

    def peer(self, *args, timeout=30, broker=None):
        """Runs zshare-peer once (as the downloaders' keypair); returns (exit code, stdout, stderr)."""
        done = subprocess.run([self.peer_bin] + (broker or self.broker).peer_args(self.key_dir("reader")) +
                              [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def listed(self, user, broker=None):
        """{name: cid} of `user`'s files, through `zshare-peer --json list-content`."""
        code, out, err = self.peer("--json", "list-content", user, broker=broker)
        check(code == 0, "list-content %s exited %d: %s" % (user, code, out), err)
        return {f["name"]: f["cid"] for f in json.loads(out)["files"]}

    def wait_listed(self, user, what, predicate, deadline_s=DEADLINE_S, broker=None):
        """Waits until predicate(listing) holds; returns that listing."""
        seen = {}

        def holds():
            seen["last"] = self.listed(user, broker)
            return predicate(seen["last"])
        try:
            wait_for(holds, deadline_s, what)
        except TimeoutError as e:
            raise AssertionError("%s; the index lists %r" % (e, seen.get("last")))
        return seen["last"]

    def seeder_client(self, s):
        """A schemas/transfer.md client of serve `s`, dialled with the key the broker lists for its user."""
        c = self.broker.client()
        try:
            users = {u["user"]: u["key"] for u in c.call("LIST_USERS")["users"]}
        finally:
            c.close()
        return TransferClient(s.endpoint, server_key=users[s.user])


def log_lines(s, marker):
    """serve's stderr lines that contain `marker`."""
    return [line for line in s.stderr().splitlines() if marker in line]


def wait_log(s, marker, what, deadline_s=DEADLINE_S):
    return wait_for(lambda: log_lines(s, marker), deadline_s, what)


def expect_refusal(client, status, sentence, label, **fields):
    op = fields.pop("op")
    reply, data = client.request(op, **fields)
    check(reply.get("status") == status and data is None, "%s: expected %s, got %r" % (label, status, reply))
    check(sentence in reply.get("error", ""), "%s: the refusal must say %r: %r" % (label, sentence, reply))
    return reply


# ---------------------------------------------------------------------------------------------------------
# The cases.

def test_added_file(env):
    share = env.folder("added", "share")
    s = env.serve("added-a", share)
    check(s.serving["files"] == 0, "an empty share: %r" % s.serving)
    check(log_lines(s, "serve: following %s with inotify" % share), "serve says it follows the folder with inotify",
          s.stderr())
    cid = write_file(os.path.join(share, "new.bin"), content("added"))
    env.wait_listed("added-a", "new.bin to be published", lambda files: files.get("new.bin") == cid)
    wait_log(s, "serve: published new.bin (%d bytes, cid %s)" % (3 * KiB, cid[:12]), "the published line")


def test_open_file_waits_for_close(env):
    share = env.folder("open", "share")
    s = env.serve("open-a", share)
    data = content("open", 64 * KiB)
    with open(os.path.join(share, "growing.bin"), "wb") as growing:
        growing.write(data[:20 * KiB])
        growing.flush()
        os.fsync(growing.fileno())
        # A file written and closed after it: once that one is listed, a pass has run with growing.bin open.
        done_cid = write_file(os.path.join(share, "done.bin"), content("open-done"))
        files = env.wait_listed("open-a", "done.bin to be published", lambda f: f.get("done.bin") == done_cid)
        check("growing.bin" not in files, "a file still open for writing must not be published: %r" % files)
        check(not log_lines(s, "published growing.bin"), "no published line for the open file", s.stderr())
        growing.write(data[20 * KiB:])
    cid = cid_hex(data)
    env.wait_listed("open-a", "growing.bin to be published once closed", lambda f: f.get("growing.bin") == cid)


def test_moved_in(env):
    staging = env.folder("moved", "staging")
    share = env.folder("moved", "share")
    s = env.serve("moved-a", share)
    cid = write_file(os.path.join(staging, "arrived.bin"), content("moved"))
    os.rename(os.path.join(staging, "arrived.bin"), os.path.join(share, "arrived.bin"))
    env.wait_listed("moved-a", "a file moved in to be published", lambda f: f.get("arrived.bin") == cid)
    # And moved out again: withdrawn.
    os.rename(os.path.join(share, "arrived.bin"), os.path.join(staging, "arrived.bin"))
    env.wait_listed("moved-a", "a file moved away to be withdrawn", lambda f: "arrived.bin" not in f)
    wait_log(s, "serve: withdrawn arrived.bin", "the withdrawn line")


def test_deleted_withdrawn(env):
    share = env.folder("deleted", "share")
    keep_cid = write_file(os.path.join(share, "keep.bin"), content("deleted-keep"))
    gone_cid = write_file(os.path.join(share, "gone.bin"), content("deleted-gone"))
    s = env.serve("deleted-a", share)
    check(s.serving["files"] == 2, "SERVE: %r" % s.serving)
    os.unlink(os.path.join(share, "gone.bin"))
    env.wait_listed("deleted-a", "gone.bin to be withdrawn", lambda f: set(f) == {"keep.bin"})
    code, out, err = env.peer("--json", "search", "--cid", gone_cid)
    check(code == 0 and json.loads(out)["results"] == [], "SEARCH by the deleted file's cid: %s" % out, err)
    c = env.seeder_client(s)
    try:
        for op in ("MANIFEST", "CHUNK"):
            expect_refusal(c, "FILE NOT EXIST", "", op + " of the deleted file", op=op, cid=gone_cid, index=0)
        reply, _ = c.request("CHUNK", cid=keep_cid, index=0)
        check(reply["status"] == "OK", "the kept file is still served: %r" % reply)
    finally:
        c.close()
    wait_log(s, "serve: withdrawn gone.bin", "the withdrawn line")


def test_rewritten_republished(env):
    share = env.folder("rewritten", "share")
    path = os.path.join(share, "doc.txt")
    old_cid = write_file(path, content("rewritten-v1"))
    s = env.serve("rewritten-a", share)
    new_data = content("rewritten-v2", 5 * KiB)
    new_cid = write_file(path, new_data)
    env.wait_listed("rewritten-a", "doc.txt republished with its new cid", lambda f: f.get("doc.txt") == new_cid)
    wait_log(s, "serve: republished doc.txt (changed", "the republished line")
    c = env.seeder_client(s)
    try:
        expect_refusal(c, "FILE NOT EXIST", "", "CHUNK of the old content once republished", op="CHUNK",
                       cid=old_cid, index=0)
        reply, data = c.request("CHUNK", cid=new_cid, index=0)
        check(reply["status"] == "OK" and data == new_data, "the new content is served: %r" % reply)
    finally:
        c.close()


def copy_mtime(path, like):
    """Gives `path` the modification time of `like`, to the nanosecond (as `touch -r` and `cp -p` do)."""
    st = os.stat(like)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def download(env, user, name, dest, data):
    """`zshare-peer get user:name dest` must succeed and save exactly `data`."""
    code, out, err = env.peer("get", "%s:%s" % (user, name), dest, timeout=60)
    check(code == 0, "get %s:%s exited %d: %s" % (user, name, code, out), err)
    with open(dest, "rb") as f:
        check(f.read() == data, "get %s:%s saved other bytes than the file's" % (user, name))


def test_replaced_same_size_and_mtime(env):
    """`mv a.txt b.txt` where both have the same size and mtime (as two files written within one clock tick): b.txt
    is another file (another inode), so it is hashed again and republished with its new cid; a download of it
    succeeds with the new bytes, and the old content is no longer served."""
    share = env.folder("replaced", "share")
    a, b = os.path.join(share, "a.txt"), os.path.join(share, "b.txt")
    a_data, b_data = content("replaced-a"), content("replaced-b")
    a_cid, b_cid = write_file(a, a_data), write_file(b, b_data)
    copy_mtime(a, b)
    s = env.serve("replaced-a", share)
    env.wait_listed("replaced-a", "a.txt and b.txt to be published", lambda f: f == {"a.txt": a_cid, "b.txt": b_cid})
    old_b = os.stat(b)
    os.rename(a, b)
    new_b = os.stat(b)
    check(new_b.st_size == old_b.st_size and new_b.st_mtime_ns == old_b.st_mtime_ns and new_b.st_ino != old_b.st_ino,
          "the case needs a replacement of the same size and mtime")
    env.wait_listed("replaced-a", "b.txt republished with a.txt's cid", lambda f: f == {"b.txt": a_cid})
    wait_log(s, "serve: republished b.txt (changed; now %d bytes, cid %s)" % (3 * KiB, a_cid[:12]),
             "the republished line")
    wait_log(s, "serve: withdrawn a.txt", "the withdrawn line")
    download(env, "replaced-a", "b.txt", os.path.join(env.folder("replaced", "out"), "b.txt"), a_data)
    c = env.seeder_client(s)
    try:
        expect_refusal(c, "FILE NOT EXIST", "", "CHUNK of b.txt's old content", op="CHUNK", cid=b_cid, index=0)
    finally:
        c.close()


def test_rewritten_in_place_mtime_restored(env):
    """A file rewritten in place with bytes of the same size, then given back its old mtime (`touch -r`): the same
    inode, size and mtime, but a new ctime (which nobody can set back), so it is republished with its new cid."""
    share = env.folder("restored", "share")
    path = os.path.join(share, "doc.txt")
    old_cid = write_file(path, content("restored-v1"))
    s = env.serve("restored-a", share)
    env.wait_listed("restored-a", "doc.txt to be published", lambda f: f.get("doc.txt") == old_cid)
    before = os.stat(path)
    new_data = content("restored-v2")
    with open(path, "r+b") as f:  # in place: the same inode
        f.write(new_data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    check((after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
          and after.st_ctime_ns != before.st_ctime_ns,
          "the case needs the same inode, size and mtime and a new ctime: %r then %r" % (before, after))
    new_cid = cid_hex(new_data)
    env.wait_listed("restored-a", "doc.txt republished with its new cid", lambda f: f.get("doc.txt") == new_cid)
    wait_log(s, "serve: republished doc.txt (changed", "the republished line")
    download(env, "restored-a", "doc.txt", os.path.join(env.folder("restored", "out"), "doc.txt"), new_data)


def test_replaced_while_stopped(env):
    """serve stopped, b.txt replaced by a file of the same size and mtime, serve started again with the same hash
    cache: the cached hashes of the old b.txt do not answer for the new one (the cache key has the inode and
    ctime), so b.txt is hashed again and published with its new cid."""
    share = env.folder("restart", "share")
    a, b = os.path.join(share, "a.txt"), os.path.join(share, "b.txt")
    a_cid, b_cid = write_file(a, content("restart-a")), write_file(b, content("restart-b"))
    s = env.serve("restart-a", share)
    check(s.serving["hashed"] == 2, "the first start hashes both files: %r" % s.serving)
    env.wait_listed("restart-a", "a.txt and b.txt to be published", lambda f: f == {"a.txt": a_cid, "b.txt": b_cid})
    code, _ = s.terminate()
    check(code == 0, "serve exits 0 on SIGTERM, not %r" % code, s.stderr())
    staging = env.folder("restart", "staging")
    new_data = content("restart-b2")
    new_cid = write_file(os.path.join(staging, "b.txt"), new_data)
    copy_mtime(os.path.join(staging, "b.txt"), b)
    os.rename(os.path.join(staging, "b.txt"), b)  # same folder, same filesystem: a rename, as `mv` does
    s = env.serve("restart-a", share)
    check(s.serving["hashed"] == 1 and s.serving["from_cache"] == 1,
          "a.txt comes from the hash cache, b.txt is hashed again: %r" % s.serving)
    env.wait_listed("restart-a", "b.txt published with its new cid", lambda f: f == {"a.txt": a_cid, "b.txt": new_cid})
    download(env, "restart-a", "b.txt", os.path.join(env.folder("restart", "out"), "b.txt"), new_data)


def test_refusals_before_the_change_is_seen(env):
    """Polling every 60 s: a change is not picked up during the case, so the seeder still holds the old entry and
    must refuse it, saying why: changed on disk (even replaced by a file of the same size and mtime, moved over it
    or rewritten in place with its mtime restored), no longer a regular file, removed."""
    share = env.folder("refuse", "share")
    staging = env.folder("refuse", "staging")
    changed_cid = write_file(os.path.join(share, "changed.bin"), content("refuse-changed"))
    removed_cid = write_file(os.path.join(share, "removed.bin"), content("refuse-removed"))
    swapped_cid = write_file(os.path.join(share, "swapped.bin"), content("refuse-swapped"))
    replaced_cid = write_file(os.path.join(share, "replaced.bin"), content("refuse-replaced"))
    restored_cid = write_file(os.path.join(share, "restored.bin"), content("refuse-restored"))
    write_file(os.path.join(staging, "replaced.bin"), content("refuse-replaced-again"))
    copy_mtime(os.path.join(staging, "replaced.bin"), os.path.join(share, "replaced.bin"))
    s = env.serve("refuse-a", share, "--watch", "poll", "--poll-interval", "60")
    check(s.serving["files"] == 5, "SERVE: %r" % s.serving)
    check(log_lines(s, "by polling every 60 s (--watch poll)"), "serve says it polls", s.stderr())
    write_file(os.path.join(share, "changed.bin"), content("refuse-changed-again"))  # same size, new bytes
    os.rename(os.path.join(staging, "replaced.bin"), os.path.join(share, "replaced.bin"))  # same size and mtime
    restored = os.stat(os.path.join(share, "restored.bin"))
    write_file(os.path.join(share, "restored.bin"), content("refuse-restored-again"))  # same size, same inode
    os.utime(os.path.join(share, "restored.bin"), ns=(restored.st_atime_ns, restored.st_mtime_ns))
    now = os.stat(os.path.join(share, "restored.bin"))
    check((now.st_ino, now.st_size, now.st_mtime_ns) == (restored.st_ino, restored.st_size, restored.st_mtime_ns)
          and now.st_ctime_ns != restored.st_ctime_ns, "restored.bin: only its ctime may differ: %r" % (now,))
    os.unlink(os.path.join(share, "removed.bin"))
    os.unlink(os.path.join(share, "swapped.bin"))
    os.mkdir(os.path.join(share, "swapped.bin"))
    c = env.seeder_client(s)
    try:
        for op in ("CHUNK", "MANIFEST"):
            for name, cid, how in (("changed.bin", changed_cid, "a rewritten file"),
                                   ("replaced.bin", replaced_cid, "a file replaced with the same size and mtime"),
                                   ("restored.bin", restored_cid, "a file rewritten, its mtime restored")):
                expect_refusal(c, "FILE CHANGED", "%s changed on disk since it was published; it will be "
                               "re-published with its new content id" % name, op + " of " + how, op=op, cid=cid,
                               index=0)
            expect_refusal(c, "FILE NOT EXIST", "removed.bin was removed from the share", op + " of a deleted file",
                           op=op, cid=removed_cid, index=0)
            expect_refusal(c, "FILE CHANGED", "swapped.bin is no longer a regular file", op + " of a file a folder "
                           "replaced", op=op, cid=swapped_cid, index=0)
    finally:
        c.close()
    check(set(env.listed("refuse-a")) == {"changed.bin", "removed.bin", "swapped.bin", "replaced.bin", "restored.bin"},
          "nothing was re-synced yet: the case ran inside one poll interval")


def test_never_published(env):
    share = env.folder("never", "share")
    s = env.serve("never-a", share)
    write_file(os.path.join(share, ".hidden"), b"a dotfile")
    write_file(os.path.join(share, "movie.mkv.part"), b"a download in progress")
    os.mkdir(os.path.join(share, "sub"))
    write_file(os.path.join(share, "sub", "inner.txt"), b"inside a subfolder")
    os.symlink(os.path.join(share, "sub", "inner.txt"), os.path.join(share, "link.txt"))
    marker_cid = write_file(os.path.join(share, "marker.bin"), content("never-marker"))
    files = env.wait_listed("never-a", "marker.bin to be published", lambda f: f.get("marker.bin") == marker_cid)
    check(set(files) == {"marker.bin"}, "only the regular file is published: %r" % files)
    # A second pass: the skipped entries are still skipped, and each note was logged once.
    second_cid = write_file(os.path.join(share, "second.bin"), content("never-second"))
    files = env.wait_listed("never-a", "second.bin to be published", lambda f: f.get("second.bin") == second_cid)
    check(set(files) == {"marker.bin", "second.bin"}, "still only regular files: %r" % files)
    folder_note = ("serve: skipping folder sub/: subfolders are not published (published names are flat, "
                   "see schemas/protocol.md)")
    check(len(log_lines(s, folder_note)) == 1, "the subfolder is noted exactly once", s.stderr())
    check(len(log_lines(s, "serve: skipping link.txt: symlinks are not published")) == 1,
          "the symlink is noted exactly once", s.stderr())
    check(not log_lines(s, ".hidden") and not log_lines(s, "movie.mkv.part"),
          "dotfiles and .part files are skipped without a word", s.stderr())


def broker_requests(broker):
    c = broker.client()
    try:
        return c.call("STATS")["requests"]
    finally:
        c.close()


def test_burst(env):
    """2,000 files copied in at once are all published within a deadline, in a few passes: the broker sees one
    PUBLISH per file and only a handful of other requests (one LIST_CONTENT per pass), not one per file."""
    staging = env.folder("burst", "staging")
    share = env.folder("burst", "share")
    for i in range(BURST_FILES):
        write_file(os.path.join(staging, "f%05d.txt" % i), b"burst file %d\n" % i)
    # --heartbeat 0: no heartbeats, so every request the broker counts during the burst is the sync's or ours.
    s = env.serve("burst-a", share, "--heartbeat", "0")
    client = env.broker.client()
    ours = 0
    try:
        before = client.call("STATS")
        ours += 1
        started = time.monotonic()
        for i in range(BURST_FILES):
            shutil.copyfile(os.path.join(staging, "f%05d.txt" % i), os.path.join(share, "f%05d.txt" % i))

        def all_published():
            nonlocal ours
            ours += 1
            return client.call("STATS")["files"] >= before["files"] + BURST_FILES
        wait_for(all_published, BURST_DEADLINE_S, "%d files to be published" % BURST_FILES)
        took = time.monotonic() - started
        after = client.call("STATS")
    finally:
        client.close()
    files = env.listed("burst-a")
    check(len(files) == BURST_FILES, "list-content lists %d files, expected %d" % (len(files), BURST_FILES))
    sync_requests = after["requests"] - before["requests"] - ours  # ours: the STATS calls, the last one included
    others = sync_requests - BURST_FILES                            # beyond one PUBLISH per file
    passes = len(log_lines(s, "serve: index synced in one pass"))
    print("#   %d files published in %.1fs: %d requests from serve (%d beyond the PUBLISHes), %d passes"
          % (BURST_FILES, took, sync_requests, others, passes), flush=True)
    check(0 <= others <= BURST_FILES // 20,
          "expected one PUBLISH per file and a few LIST_CONTENTs; %d requests beyond the %d PUBLISHes"
          % (others, BURST_FILES))
    check(1 <= passes <= BURST_FILES // 20, "%d reconcile passes for %d files" % (passes, BURST_FILES), s.stderr())
    check(len(log_lines(s, "serve: published f")) == BURST_FILES, "one published line per file")


def test_poll_mode(env):
    share = env.folder("poll", "share")
    s = env.serve("poll-a", share, "--watch", "poll", "--poll-interval", "0.3")
    check(log_lines(s, "serve: following %s by polling every 300 ms (--watch poll)" % share), "serve says it polls",
          s.stderr())
    cid = write_file(os.path.join(share, "polled.bin"), content("poll"))
    env.wait_listed("poll-a", "polled.bin to be published by polling", lambda f: f.get("polled.bin") == cid)
    os.unlink(os.path.join(share, "polled.bin"))
    env.wait_listed("poll-a", "polled.bin to be withdrawn by polling", lambda f: "polled.bin" not in f)
    wait_log(s, "serve: withdrawn polled.bin", "the withdrawn line")


def test_upload_logged(env):
    """Every chunk of a file fetched by a raw transfer client: serve logs one line for that upload once the client
    is idle, naming the client by its CurveZMQ key and giving the bytes and chunks."""
    share = env.folder("upload", "share")
    data = content("upload", 40 * KiB)  # 3 chunks of 16 KiB (the last one short)
    cid = write_file(os.path.join(share, "song.flac"), data)
    s = env.serve("upload-a", share, "--chunk-size", 16 * KiB)
    c = env.seeder_client(s)
    try:
        key = c.keys[0].decode()  # the seeder's ZAP handler names the client by this key
        manifest, _ = c.request("MANIFEST", cid=cid)
        check(manifest["status"] == "OK" and manifest["chunks"] == 3, "MANIFEST: %r" % manifest)
        got = b"".join(c.request("CHUNK", cid=cid, index=i)[1] for i in range(3))
        check(got == data, "the three chunks are the file")
        line = wait_log(s, "serve: uploaded song.flac", "the upload line (after ~2 s idle)")
    finally:
        c.close()
    check(len(line) == 1 and ("to %s at " % key) in line[0] and line[0].endswith(": %d bytes in 3 chunks" % len(data)),
          "one upload line naming the client's key, with bytes and chunks: %r (key %s)" % (line, key))


def test_plaintext(env):
    """The same over --plaintext (a broker of the case's own): a file added is published, and the upload line names
    the client by its address alone (there is no key to name it by)."""
    broker = Broker(env.broker_bin, workdir=env.folder("plain-broker"), plaintext=True).start()
    try:
        share = env.folder("plain", "share")
        s = env.serve("plain-a", share, broker=broker)
        cid = write_file(os.path.join(share, "plain.bin"), content("plain"))
        env.wait_listed("plain-a", "plain.bin to be published", lambda f: f.get("plain.bin") == cid, broker=broker)
        c = TransferClient(s.endpoint)
        try:
            reply, data = c.request("CHUNK", cid=cid, index=0)
            check(reply["status"] == "OK" and len(data) == 3 * KiB, "CHUNK over plaintext: %r" % reply)
        finally:
            c.close()
        line = wait_log(s, "serve: uploaded plain.bin", "the upload line (after ~2 s idle)")
        check(line[0].endswith("to an unnamed peer at 127.0.0.1: %d bytes in 1 chunks" % (3 * KiB)),
              "the upload line over plaintext: %r" % line)
        s.stop()
    finally:
        broker.cleanup()


def test_second_serve_refused(env):
    """A second serve of a user whose seeder still answers is refused and changes nothing; once the first is gone
    (kill -9: its session is left behind), a new serve takes the session over."""
    share = env.folder("twice", "share")
    cid = write_file(os.path.join(share, "kept.bin"), content("twice"))
    first = env.serve("twice-a", share)
    other = env.folder("twice", "other")
    write_file(os.path.join(other, "intruder.bin"), content("intruder"))
    done = subprocess.run([env.peer_bin] + env.broker.peer_args(env.key_dir("twice-a")) +
                          ["serve", "--user", "twice-a", "--share", other, "--hash-cache",
                           os.path.join(env.folder("caches"), "second.db")], capture_output=True, text=True, timeout=30)
    check(done.returncode == 1 and done.stdout == "SERVE FAIL, USER ALREADY CONNECTED\n" and
          "already served from %s" % first.endpoint in done.stderr, "the second serve is refused: %r" % done.stdout,
          done.stderr)
    check(env.listed("twice-a") == {"kept.bin": cid}, "the first serve's files are untouched")
    check(first.running() and not log_lines(first, "reconnected"), "the first serve kept its session", first.stderr())
    first.kill9()
    again = env.serve("twice-a", share)
    check(again.serving["status"] == "OK" and again.endpoint != first.endpoint, "a leftover session is taken over")


TESTS = [
    ("a file added (written, then closed) is published", test_added_file),
    ("a file still open for writing waits until it is closed", test_open_file_waits_for_close),
    ("a file moved in is published, moved away withdrawn", test_moved_in),
    ("a deleted file is withdrawn and refused", test_deleted_withdrawn),
    ("a rewritten file is republished with its new cid", test_rewritten_republished),
    ("a file moved over one of the same size and mtime is republished and downloads",
     test_replaced_same_size_and_mtime),
    ("a file rewritten in place, its old mtime restored, is republished", test_rewritten_in_place_mtime_restored),
    ("a file replaced while serve was stopped is not taken from the hash cache", test_replaced_while_stopped),
    ("the seeder says why it refuses a changed, swapped or removed file", test_refusals_before_the_change_is_seen),
    ("dotfiles, .part files, subfolders and symlinks are never published", test_never_published),
    ("a burst of %d files is synced in a few passes" % BURST_FILES, test_burst),
    ("polling mode follows an add and a delete", test_poll_mode),
    ("an upload is logged with its client, bytes and chunks", test_upload_logged),
    ("--plaintext: followed and logged the same", test_plaintext),
    ("a second serve of a live user is refused; a leftover session is taken over", test_second_serve_refused),
]


def main():
    return process_test_main("zshare-peer serve follows its folder: process tests", TESTS,
                             lambda args, broker, root: Env(args.peer_bin, args.broker_bin, broker, root),
                             "zshare-follow-",
                             stderr_tail=4000)


if __name__ == "__main__":
    sys.exit(main())
