# harness_steps.py: runs a scenario's steps in order (a step ending in `&` runs on its own thread until `wait`);
# mutations and queries go through harness_ops, so every step is checked against the model as it runs.
import hashlib
import re
import threading
import traceback

from harness_client import Stopped
from harness_files import fake_cid

OWNER = "scenario"
MUTATION_VERBS = {"register": "REGISTER", "unregister": "UNREGISTER", "connect": "CONNECT",
                  "disconnect": "DISCONNECT", "publish": "PUBLISH", "delete": "DELETE"}


class StepRunner:
    def __init__(self, ops, workload, faults, cluster, model, record, settings):
        self.ops = ops
        self.workload = workload
        self.faults = faults
        self.cluster = cluster
        self.model = model
        self.record = record
        self.settings = settings
        self.steps_done = 0
        self.random_ops = 0
        self._lock = threading.Lock()

    def run(self, steps):
        client = self._client("scenario")
        background = []
        try:
            for i, step in enumerate(steps):
                if self.cluster.stop.is_set():
                    raise Stopped()
                if step.verb == "wait":
                    self._join(background)
                    background = []
                    continue
                if step.background:
                    t = threading.Thread(target=self._background, args=(step, i), name="step-%d" % i, daemon=True)
                    t.start()
                    background.append(t)
                else:
                    self._execute(step, client)
            self._join(background)
        finally:
            client.close()

    def _client(self, name):
        return self.cluster.client(name, self.settings["op-timeout"], self.settings["op-deadline"])

    def _join(self, threads):
        limit = self.settings["get-timeout"] + self.settings["op-deadline"] + 60
        for t in threads:
            t.join(timeout=limit)
            if t.is_alive():
                self.record.violation("harness", "background step %s did not finish" % t.name)

    def _background(self, step, i):
        client = self._client("step%d" % i)
        try:
            self._execute(step, client)
        except Stopped:
            pass
        except Exception:  # noqa: BLE001 - reported
            self.record.violation("harness", "%s crashed: %s" % (step, traceback.format_exc()))
        finally:
            client.close()

    def _scope(self):
        return self.model.owned_by(OWNER) + self.model.owned_by("serve")

    def _count(self):
        with self._lock:
            self.steps_done += 1

    def _execute(self, step, client):
        v, a, o, who = step.verb, step.args, step.opts, step.where
        if v in MUTATION_VERBS:
            self._count()
            op = MUTATION_VERBS[v]
            fields = {}
            if op == "CONNECT":
                fields["endpoint"] = o.get("endpoint", self._endpoint(a[0]))
            elif op == "PUBLISH":
                fields = self._publish_fields(a)
            elif op == "DELETE":
                fields["name"] = a[1]
            self.ops.mutate(client, op, a[0], OWNER, expect=step.expect, who=who, **fields)
        elif v == "search":
            self._count()
            cid = o.get("cid")
            if cid is not None and not re.match(r"^[0-9a-f]{64}$", cid):
                cid = self.ops.resolve_target("cid=" + cid)[1].cid
            self.ops.search(client, self._scope(), " ".join(a), cid=cid, expect=step.expect, who=who)
        elif v == "list-users":
            self._count()
            self.ops.list_users(client, self._scope(), expect=step.expect, who=who)
        elif v == "list-content":
            self._count()
            self.ops.list_content(client, a[0], expect=step.expect, who=who)
        elif v == "lookup":
            self._count()
            self.ops.lookup(client, a[0], a[1], expect=step.expect, who=who)
        elif v == "get":
            self._count()
            self.ops.download(a[0], window=o.get("window"), min_sources=o.get("min-sources"), expect=step.expect,
                              who=who)
        elif v == "sleep":
            if self.cluster.stop.wait(float(a[0])):
                raise Stopped()
        elif v == "kill-broker":
            self.faults.kill_broker(a[0] if a else None, float(o["down"]) if "down" in o else None)
        elif v == "kill-seeder":
            self.faults.kill_seeder(a[0], restart_after=float(o["restart-after"]) if "restart-after" in o else None)
        elif v == "restart-seeder":
            self.faults.restart_seeder(a[0])
        elif v == "kill-logger":
            self.faults.kill_logger(restart=False)
        elif v == "restart-logger":
            self.faults.restart_logger()
        elif v == "random":
            ops = int(o.get("ops", 100))
            seconds = float(o.get("seconds", 30))
            workers = int(o.get("workers", self.settings["workers"]))
            done, _ = self.workload.run(ops, seconds, workers)
            with self._lock:
                self.random_ops += done
        else:
            raise ValueError("%s: no runner for %s" % (who, v))

    def _endpoint(self, user):
        port = 20000 + int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % 30000
        return "tcp://127.0.0.1:%d" % port

    def _publish_fields(self, a):
        """`publish USER NAME SIZE [description...]`: metadata only (a content id nobody serves)."""
        from harness_files import parse_size
        user, name, size = a[0], a[1], parse_size(a[2])
        fake = hashlib.sha256(("%s/%s/%s" % (self.settings["seed"], user, name)).encode())
        return {"name": name, "description": " ".join(a[3:]), "size": size, "cid": fake_cid(fake, size),
                "chunk_size": 1 << 16}
