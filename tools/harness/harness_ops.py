# harness_ops.py: one checked operation each: a mutation (its status against the model, its log line recorded),
# a query (its answer against the model), a download (`zshare-peer get`, its content id verified, failures judged).
import json
import os
import subprocess
import threading
import time

from harness_client import Stopped, Unanswered
from harness_files import cid_file
from harness_model import MUTATIONS, OFF, ON, UNKNOWN, Model, log_args
from harness_procs import with_deathsig
from harness_record import CORRUPT

SEARCH_PAGE = 50  # small pages, so paging is exercised


class Ops:
    def __init__(self, cluster, model, record, settings, contents, seed_files):
        self.cluster = cluster
        self.model = model
        self.record = record
        self.settings = settings
        self.contents = contents          # content key -> Content
        self.seed_files = seed_files      # (peer, name) -> Content
        self.downloads_dir = os.path.join(cluster.workdir, "downloads")
        os.makedirs(self.downloads_dir, exist_ok=True)
        self._n = 0
        self._lock = threading.Lock()
        self.retry_later = []             # downloads that failed cleanly under a fault: rerun (resume) at the end

    # ---- mutations ----
    def mutate(self, client, op, user, owner, expect=None, who="driver", **fields):
        """Sends one mutation; checks its status; updates the model; records the log line it must produce.
        Returns the CallResult (None when unanswered)."""
        assert op in MUTATIONS
        st = self.model.user(user, owner)
        if st.tainted:
            return None
        fields = dict(fields, user=user)
        _, inc, down = self.cluster.epochs.snapshot()
        session = UNKNOWN if down else st.effective_session(inc)
        allowed = Model.allowed(op, st, fields, session)
        try:
            r = client.call(op, **fields)
        except Unanswered as e:
            st.tainted = True
            self.record.unanswered(e.ts, user, op, None, who)
            self.record.violation("unanswered", str(e))
            return None
        self.record.operation(r)
        if r.overlapped:
            allowed = Model.allowed(op, st, fields, UNKNOWN) if st.registered else allowed
        args = log_args(op, fields, r.reply)
        if r.status not in allowed:
            self.record.violation("unexpected-status", "%s %s %s: answered %s (%s), expected %s [%s]"
                                  % (who, op, user, r.status, r.reply.get("error", ""), " or ".join(sorted(allowed)),
                                     r.req_id))
        if op == "UNREGISTER" and r.status == "OK" and not st.tainted:
            if r.reply.get("files_removed") != len(st.files):
                self.record.violation("index", "UNREGISTER %s removed %s files, the harness published %d"
                                      % (user, r.reply.get("files_removed"), len(st.files)))
        if expect is not None and r.status != expect:
            self.record.violation("scenario", "%s %s %s: answered %s, the scenario expects %s"
                                  % (who, op, user, r.status, expect))
        Model.apply(op, st, fields, r)
        if r.status == "OK":
            self.record.acknowledged(r, user, op, args, who)
            self.record.replaced_session(r, user, who)
        else:
            self.record.refused(r, user, op, args, who)
        return r

    # ---- queries ----
    def _query(self, client, op, **fields):
        try:
            r = client.call(op, **fields)
        except Unanswered as e:
            self.record.violation("unanswered", str(e))
            return None
        self.record.operation(r)
        return r

    def search(self, client, scope, words_text, cid=None, expect=None, who="driver"):
        from harness_model import keywords
        fields = {}
        if words_text:
            fields["q"] = words_text
        if cid:
            fields["cid"] = cid
        try:
            # include_offline: every file the harness believes published, whatever its owner's session
            replies, results = client.pages("SEARCH", "results", SEARCH_PAGE, include_offline=True, **fields)
        except Unanswered as e:
            self.record.violation("unanswered", str(e))
            return None
        for r in replies:
            self.record.operation(r)
        last = replies[-1]
        if last.status != "OK":
            self.record.violation("unexpected-status", "%s SEARCH %r: %s %s" % (who, fields, last.status,
                                                                               last.reply.get("error", "")))
            return last
        names = {u.name for u in scope}
        got = {}
        for item in results:
            key = (item.get("user"), item.get("name"))
            if key in got:
                self.record.violation("index", "SEARCH %r returned %s twice" % (fields, key))
            if key[0] in names:
                got[key] = (item.get("size"), item.get("cid"), item.get("chunk_size"))
        want = {k: (m.size, m.cid, m.chunk_size)
                for k, m in self.model.search([u for u in scope if not u.tainted], keywords(words_text or ""),
                                              cid).items()}
        tainted = {u.name for u in scope if u.tainted}
        got = {k: v for k, v in got.items() if k[0] not in tainted}
        if got != want:
            missing = sorted(set(want) - set(got))[:5]
            extra = sorted(set(got) - set(want))[:5]
            wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:5]
            self.record.violation("index", "%s SEARCH %r: missing %s, unexpected %s, different %s"
                                  % (who, fields, missing, extra, wrong))
        if expect is not None and str(len(results)) != expect:
            self.record.violation("scenario", "%s SEARCH %r returned %d results, the scenario expects %s"
                                  % (who, fields, len(results), expect))
        self.search_online(client, scope, want, fields, who)
        return last

    def search_online(self, client, scope, want, fields, who):
        """The same SEARCH without include_offline: online owners' files only. Every result must say online with an
        endpoint and be a file the harness believes published; for the users this thread alone drives (not
        seeders, whose sessions a fault may end at any time) the answer must be exact when their session is known
        and no broker restart overlapped the call."""
        try:
            replies, results = client.pages("SEARCH", "results", SEARCH_PAGE, **fields)
        except Unanswered as e:
            self.record.violation("unanswered", str(e))
            return
        for r in replies:
            self.record.operation(r)
        if replies[-1].status != "OK":
            self.record.violation("unexpected-status", "%s SEARCH %r (online): %s" % (who, fields, replies[-1].status))
            return
        names = {u.name for u in scope}
        got = set()
        for item in results:
            key = (item.get("user"), item.get("name"))
            if item.get("online") is not True or not item.get("endpoint"):
                self.record.violation("index", "SEARCH %r without include_offline returned %s offline: %r"
                                      % (fields, key, item))
            if key[0] in names:
                got.add(key)
                if key not in want and not self.model.users[key[0]].tainted:
                    self.record.violation("index", "SEARCH %r (online) returned %s, which nobody published" % (fields, key))
        if any(r.overlapped for r in replies) or replies[0].incarnation != replies[-1].acked_incarnation:
            return
        inc = replies[0].incarnation
        for st in scope:
            if st.owner == "serve" or st.tainted:
                continue
            session = st.effective_session(inc)
            mine = {k for k in want if k[0] == st.name}
            shown = {k for k in got if k[0] == st.name}
            if session == ON and shown != mine:
                self.record.violation("index", "SEARCH %r (online): %s is online, missing %s" % (fields, st.name,
                                                                                              sorted(mine - shown)[:5]))
            elif session == OFF and shown:
                self.record.violation("index", "SEARCH %r (online): %s is offline, yet %s" % (fields, st.name,
                                                                                           sorted(shown)[:5]))

    def list_content(self, client, user, owner=None, expect=None, who="driver"):
        r = self._query(client, "LIST_CONTENT", user=user)
        if r is None:
            return None
        st = self.model.users.get(user)
        if st is not None and (owner is None or st.owner in (owner, "serve")) and not st.tainted:
            if not st.registered:
                if r.status != "USER DOES NOT EXIST":
                    self.record.violation("unexpected-status", "LIST_CONTENT %s (not registered): %s" % (user, r.status))
            elif r.status != "OK":
                self.record.violation("unexpected-status", "LIST_CONTENT %s: %s" % (user, r.status))
            else:
                files = r.reply.get("files", [])
                got = [(f.get("name"), f.get("size"), f.get("cid"), f.get("chunk_size"), f.get("description"))
                       for f in files]
                want = sorted(m.as_tuple() for m in st.files.values())
                if [g[0] for g in got] != sorted(g[0] for g in got):
                    self.record.violation("index", "LIST_CONTENT %s is not sorted by name" % user)
                if sorted(got) != want:
                    self.record.violation("index", "LIST_CONTENT %s: got %s, expected %s"
                                          % (user, sorted(g[0] for g in got), sorted(w[0] for w in want)))
        if expect is not None and r.status != expect and str(len(r.reply.get("files", []))) != expect:
            self.record.violation("scenario", "%s LIST_CONTENT %s: %s / %d files, the scenario expects %s"
                                  % (who, user, r.status, len(r.reply.get("files", [])), expect))
        return r

    def lookup(self, client, user, name, expect=None, who="driver"):
        r = self._query(client, "LOOKUP", user=user, name=name)
        if r is None:
            return None
        st = self.model.users.get(user)
        if st is not None and not st.tainted:
            meta = st.files.get(name) if st.registered else None
            want = "OK" if meta else ("FILE NOT EXIST" if st.registered else "USER DOES NOT EXIST")
            if r.status != want:
                self.record.violation("unexpected-status", "LOOKUP %s %s: %s, expected %s" % (user, name, r.status, want))
            elif meta:
                f = r.reply.get("file", {})
                got = (f.get("name"), f.get("size"), f.get("cid"), f.get("chunk_size"), f.get("description"))
                if got != meta.as_tuple() or f.get("user") != user:
                    self.record.violation("index", "LOOKUP %s %s: got %r, expected %r" % (user, name, got,
                                                                                           meta.as_tuple()))
        if expect is not None and r.status != expect:
            self.record.violation("scenario", "%s LOOKUP %s %s: %s, the scenario expects %s"
                                  % (who, user, name, r.status, expect))
        return r

    def list_users(self, client, scope, expect=None, who="driver"):
        _, inc, down = self.cluster.epochs.snapshot()
        r = self._query(client, "LIST_USERS")
        if r is None:
            return None
        users = r.reply.get("users", [])
        names = [u.get("user") for u in users]
        if names != sorted(names):
            self.record.violation("index", "LIST_USERS is not sorted by name")
        if not r.overlapped and not down:
            listed = {u.get("user"): u.get("endpoint") for u in users}
            for st in scope:
                if st.tainted or st.owner == "serve":
                    continue
                s = st.effective_session(inc) if st.registered else OFF
                if s == ON and listed.get(st.name) != st.endpoint:
                    self.record.violation("index", "LIST_USERS misses connected %s (%s)" % (st.name, st.endpoint))
                if s == OFF and st.name in listed:
                    self.record.violation("index", "LIST_USERS lists %s, which is not connected" % st.name)
        if expect is not None and r.status != expect and str(len(users)) != expect:
            self.record.violation("scenario", "%s LIST_USERS: %d users, the scenario expects %s"
                                  % (who, len(users), expect))
        return r

    # ---- downloads ----
    def resolve_target(self, target):
        """'user:name' or 'cid=KEY' -> (argument for get, Content, label)."""
        if target.startswith("cid="):
            key = target[4:]
            if key not in self.contents:
                raise ValueError("no content %r declared" % key)
            c = self.contents[key]
            return c.cid, c, target
        user, name = target.split(":", 1)
        c = self.seed_files.get((user, name))
        if c is None:
            raise ValueError("no file %s declared on seeder %s" % (name, user))
        return target, c, target

    def download(self, target, window=None, min_sources=None, expect=None, who="driver", dest=None):
        """Runs `zshare-peer get` and judges it. Returns the transfer entry."""
        arg, content, label = self.resolve_target(target)
        with self._lock:
            self._n += 1
            n = self._n
        if dest is None:
            safe = label.replace("/", "_").replace(":", "_").replace("=", "_")
            dest = os.path.join(self.downloads_dir, "%05d-%s" % (n, safe[:80]))
        s = self.settings
        argv = [self.cluster.bins.peer] + self.cluster.peer_args() + ["--json", "--timeout", "2"]
        if self.cluster.timesvc_url:
            argv += ["--timesvc", self.cluster.timesvc_url]
        argv += ["get", arg, dest, "--window", str(window or s["window"]), "--source-timeout", str(s["source-timeout"])]
        t0 = time.monotonic()
        if self.cluster.stop.is_set():
            raise Stopped()
        proc = subprocess.Popen(with_deathsig(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.cluster.registry.track(proc)
        hung = False
        try:
            out, err = proc.communicate(timeout=s["get-timeout"])
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            hung = True
        t1 = time.monotonic()
        summary = {}
        for line in reversed(out.strip().splitlines()):
            try:
                summary = json.loads(line)
                break
            except ValueError:
                continue
        ok = proc.returncode == 0 and summary.get("status") == "OK" and not hung
        entry = {"target": label, "dest": dest, "ok": ok, "bytes": 0, "seconds": t1 - t0, "who": who,
                 "sources": len(summary.get("sources", [])), "exit": proc.returncode, "clean_failure": False,
                 "resumed_chunks": summary.get("chunks_resumed", 0), "start": t0, "end": t1}
        faulted = self.record.fault_during(t0, t1, ("broker", "seeder"))
        why = "%s: get %s exited %s (%s) %s" % (who, label, proc.returncode, summary.get("status"),
                                                 (summary.get("error") or err.strip()[-300:]))
        if hung:
            self.record.violation("download", "%s: get %s still running after %.0fs: killed"
                                  % (who, label, s["get-timeout"]))
        if ok:
            if not os.path.exists(dest) or os.path.exists(dest + ".part"):
                self.record.violation("download", "%s: get %s said OK but %s / .part are wrong" % (who, label, dest))
            else:
                digest = cid_file(dest)
                size = os.path.getsize(dest)
                if digest != content.cid or size != content.size:
                    self.record.violation(CORRUPT, "%s: get %s wrote %d bytes with content id %s, expected %d bytes %s"
                                          % (who, label, size, digest, content.size, content.cid))
                else:
                    entry["bytes"] = size
            if min_sources is not None and entry["sources"] < int(min_sources) and faulted:
                self.record.note("%s: get %s used %d sources (< %s) while a fault was active"
                                 % (who, label, entry["sources"], min_sources))
            elif min_sources is not None and entry["sources"] < int(min_sources):
                self.record.violation("scenario", "%s: get %s used %d sources, the scenario expects at least %s"
                                      % (who, label, entry["sources"], min_sources))
        else:
            if os.path.exists(dest):  # a failed download keeps only its .part
                digest = cid_file(dest)
                if digest != content.cid:
                    self.record.violation(CORRUPT, "%s: get %s failed but left %s with a wrong content id"
                                          % (who, label, dest))
                else:
                    self.record.violation("download", "%s: get %s failed but wrote %s" % (who, label, dest))
                os.unlink(dest)
            if expect == "FAIL":
                pass
            elif faulted and not hung:
                entry["clean_failure"] = True
                self.record.note("clean failure under a fault: " + why)
                with self._lock:
                    self.retry_later.append((target, dest, who))
            elif not hung:
                self.record.violation("download", why)
        if expect == "FAIL" and ok:
            self.record.violation("scenario", "%s: get %s succeeded, the scenario expects it to fail" % (who, label))
        if expect == "OK" and entry["clean_failure"]:  # other failures are flagged above already
            self.record.violation("scenario", "%s (the scenario expects it to finish)" % why)
        self.record.note("%s: get %s: %s in %.2fs from %d sources%s" % (
            who, label, "OK" if ok else "failed (exit %s)" % proc.returncode, t1 - t0, entry["sources"],
            "".join(" [%s: %s chunks%s]" % (x.get("user"), x.get("chunks"),
                                            ", dropped: " + x["dropped"] if x.get("dropped") else "")
                    for x in summary.get("sources", []))))
        if ok and os.path.exists(dest):
            os.unlink(dest)  # verified: disk use stays bounded over long runs
        self.record.transfer(entry)
        return entry

    def retry_failed_downloads(self):
        """The end: every download that failed under a fault is run again into the same .part and must finish."""
        with self._lock:
            pending, self.retry_later = self.retry_later, []
        resumed = 0
        for target, dest, who in pending:
            entry = self.download(target, dest=dest, who=who + " (rerun)")
            entry["rerun"] = True
            resumed += 1
        return resumed
