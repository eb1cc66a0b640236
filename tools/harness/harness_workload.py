# harness_workload.py: the random workload (--random, a scenario's `random` step): W threads, each owning its
# own users, draw mutations, queries and downloads from a seeded generator until K operations or T seconds.
import hashlib
import random
import threading
import time
import traceback

from harness_client import Stopped
from harness_files import fake_cid
from harness_model import ON
from harness_scenario import EXTS, WORDS

MAX_USERS_PER_WORKER = 4


class Budget:
    """K operations shared by the workers, and a deadline."""

    def __init__(self, ops, seconds):
        self.left = ops
        self.end = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.done = 0

    def take(self):
        with self.lock:
            if self.left <= 0 or time.monotonic() >= self.end:
                return False
            self.left -= 1
            self.done += 1
            return True


class RandomWorkload:
    def __init__(self, ops, cluster, model, record, settings, seed_files):
        self.ops = ops
        self.cluster = cluster
        self.model = model
        self.record = record
        self.settings = settings
        self.seed_files = sorted(seed_files)  # (peer, name)
        self.contents = sorted(ops.contents)
        self.errors = []

    def run(self, ops, seconds, workers, tag="w"):
        """Returns (operations done, seconds spent)."""
        budget = Budget(ops, seconds)
        start = time.monotonic()
        threads = [threading.Thread(target=self._worker, args=(budget, "%s%d" % (tag, i)), name="%s%d" % (tag, i),
                                    daemon=True) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + self.settings["op-deadline"] + self.settings["get-timeout"] + 60)
            if t.is_alive():
                self.record.violation("harness", "worker %s did not finish in time" % t.name)
        return budget.done, time.monotonic() - start

    def _worker(self, budget, owner):
        rng = random.Random("%s/%s" % (self.settings["seed"], owner))
        client = self.cluster.client(owner, self.settings["op-timeout"], self.settings["op-deadline"])
        state = {"users": [], "k": 0, "n": 0}
        try:
            while budget.take():
                x = rng.random()
                if x < 0.45:
                    self._mutation(rng, client, owner, state)
                elif x < 0.82 or not self.seed_files:
                    self._query(rng, client, owner, state)
                else:
                    self._download(rng, owner)
        except Stopped:
            pass
        except Exception:  # noqa: BLE001 - a harness bug must not pass as a clean run
            self.record.violation("harness", "worker %s crashed: %s" % (owner, traceback.format_exc()))
        finally:
            client.close()

    # ---- mutations ----
    def _endpoint(self, user):
        port = 20000 + int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % 30000
        return "tcp://127.0.0.1:%d" % port  # nobody listens: driver users publish metadata only

    def _new_file(self, rng, owner, state):
        state["n"] += 1
        n = state["n"]
        name = "%s-%s-%s-%d.%s" % (rng.choice(WORDS), rng.choice(WORDS), owner, n, rng.choice(EXTS))
        desc = "%s %s %s notes %d" % (owner, rng.choice(WORDS), rng.choice(WORDS), n)
        fake = hashlib.sha256(("%s/%s/%s" % (self.settings["seed"], owner, name)).encode())
        size = rng.choice([0, rng.randint(1, 1 << 20), rng.randint(1 << 20, 1 << 34)])
        return {"name": name, "description": desc, "size": size, "cid": fake_cid(fake, size), "chunk_size": 1 << 16}

    def _mutation(self, rng, client, owner, state):
        mine = [self.model.users[u] for u in state["users"] if not self.model.users[u].tainted]
        if not mine or (len(state["users"]) < MAX_USERS_PER_WORKER and rng.random() < 0.12):
            state["k"] += 1
            name = "%s-u%d" % (owner, state["k"])
            state["users"].append(name)
            self.ops.mutate(client, "REGISTER", name, owner, who=owner)
            return
        st = rng.choice(mine)
        u = st.name
        inc = self.cluster.epochs.snapshot()[1]
        session = st.effective_session(inc)
        x = rng.random()
        m = self.ops.mutate
        if not st.registered:
            if x < 0.85:
                m(client, "REGISTER", u, owner, who=owner)
            else:
                m(client, "CONNECT", u, owner, who=owner, endpoint=self._endpoint(u))
        elif session != ON:
            if x < 0.75:
                m(client, "CONNECT", u, owner, who=owner, endpoint=self._endpoint(u))
            elif x < 0.83:
                m(client, "PUBLISH", u, owner, who=owner, **self._new_file(rng, owner, state))
            elif x < 0.88:
                m(client, "DISCONNECT", u, owner, who=owner)
            elif x < 0.94:
                m(client, "REGISTER", u, owner, who=owner)
            else:
                m(client, "UNREGISTER", u, owner, who=owner)
        else:
            names = sorted(st.files)
            if x < 0.45 or (x < 0.68 and not names):
                m(client, "PUBLISH", u, owner, who=owner, **self._new_file(rng, owner, state))
            elif x < 0.50:
                f = dict(self._new_file(rng, owner, state), name=rng.choice(names))
                m(client, "PUBLISH", u, owner, who=owner, **f)  # CONTENT ALREADY PUBLISHED
            elif x < 0.68:
                m(client, "DELETE", u, owner, who=owner, name=rng.choice(names))
            elif x < 0.72:
                m(client, "DELETE", u, owner, who=owner, name="never-published-%d.bin" % rng.randint(1, 999))
            elif x < 0.82:
                m(client, "DISCONNECT", u, owner, who=owner)
            elif x < 0.86:
                m(client, "CONNECT", u, owner, who=owner, endpoint=self._endpoint(u))
            elif x < 0.90:
                m(client, "UNREGISTER", u, owner, who=owner)
            else:
                m(client, "PUBLISH", u, owner, who=owner, **self._new_file(rng, owner, state))

    # ---- queries ----
    def _scope(self, owner):
        return self.model.owned_by(owner) + self.model.owned_by("serve")

    def _query(self, rng, client, owner, state):
        x = rng.random()
        o = self.ops
        if x < 0.25:
            words = rng.sample(WORDS, rng.choice([1, 1, 2]))
            if rng.random() < 0.4:
                words.append(owner)
            o.search(client, self._scope(owner), " ".join(words), who=owner)
        elif x < 0.40 and self.contents:
            key = rng.choice(self.contents)
            o.search(client, self._scope(owner), "", cid=o.contents[key].cid, who=owner)
        elif x < 0.55 and state["users"]:
            o.list_content(client, rng.choice(state["users"]), owner=owner, who=owner)
        elif x < 0.67 and self.seed_files:
            o.list_content(client, rng.choice(self.seed_files)[0], owner=owner, who=owner)
        elif x < 0.82 and self.seed_files:
            peer, name = rng.choice(self.seed_files)
            if rng.random() < 0.2:
                name = "missing-" + name
            o.lookup(client, peer, name, who=owner)
        elif x < 0.90 and state["users"]:
            u = self.model.users[rng.choice(state["users"])]
            names = sorted(u.files) or ["nothing.bin"]
            o.lookup(client, u.name, rng.choice(names), who=owner)
        else:
            o.list_users(client, self.model.owned_by(owner), who=owner)

    # ---- downloads ----
    def _download(self, rng, owner):
        peer, name = rng.choice(self.seed_files)
        if rng.random() < 0.5:
            key = self.ops.seed_files[(peer, name)].key
            target = "cid=" + key
        else:
            target = "%s:%s" % (peer, name)
        self.ops.download(target, who=owner)
