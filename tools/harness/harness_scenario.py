# harness_scenario.py: a scenario as data (settings, seeders, their files, steps), read from the line format of
# SCENARIOS.md or generated for --random; parsing errors name the file and line.
import random
import re
import shlex

from harness_files import KiB, MiB, parse_size

# Settings a scenario may `set` (CLI flags of the same name override them), with their defaults.
DEFAULT_SETTINGS = {
    "seed": 1,
    "workers": 4,                # random workload threads
    "chunk-size": 64 * KiB,      # seeders' --chunk-size
    "window": 8,                 # get --window
    "source-timeout": 2.0,       # get --source-timeout
    "get-timeout": 60.0,         # a get process is killed (and counted as hung) after this
    "op-timeout": 1.0,           # Lazy Pirate: seconds before a request is resent on a fresh socket
    "op-deadline": 60.0,         # ... and before an unanswered request is given up (a violation)
    "kill-broker-every": 0.0,    # fault injection periods in seconds (0: off)
    "kill-seeder-every": 0.0,
    "kill-logger-every": 0.0,
    "seeder-down": 0.0,          # how long a killed seeder stays down (0: half its period, at most 5 s)
    "logger-down": 1.0,          # how long a killed logger stays down
    "broker-down": 0.2,          # how long a killed broker stays down
    "drain-deadline": 60.0,      # end: how long to wait for the outbox, the log and the subscriber
    "reconnect-deadline": 15.0,  # after a broker restart, seeders must be connected again within this
    "restore-sessions": 0,       # 1: the harness CONNECTs seeders after a broker restart (peers without heartbeats)
    "brokers": 1,                # brokers serving the network (more than one: on one PostgreSQL database)
    "store": "sqlite",           # the brokers' database: sqlite (one broker's file) or postgres (a throw-away cluster)
    "continue-deadline": 5.0,    # several brokers: after a kill, every seeder online then is served again within this
    "op-tries": 2,               # several brokers: Lazy Pirate tries at one broker before the next of the list
}

STORES = ("sqlite", "postgres")

FLOAT_SETTINGS = {"source-timeout", "get-timeout", "op-timeout", "op-deadline", "kill-broker-every",
                  "kill-seeder-every", "kill-logger-every", "seeder-down", "logger-down", "broker-down",
                  "drain-deadline", "reconnect-deadline", "continue-deadline"}
SIZE_SETTINGS = {"chunk-size"}

USER_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Verbs of steps and how many positional arguments they take (min, max; None: any).
STEP_VERBS = {
    "register": (1, 1), "unregister": (1, 1), "connect": (1, 1), "disconnect": (1, 1),
    "publish": (3, None), "delete": (2, 2),
    "search": (0, None), "list-users": (0, 0), "list-content": (1, 1), "lookup": (2, 2),
    "get": (1, 1),
    "sleep": (1, 1), "wait": (0, 0),
    "kill-broker": (0, 1), "kill-seeder": (1, 1), "restart-seeder": (1, 1),
    "kill-logger": (0, 0), "restart-logger": (0, 0),
    "random": (0, 0),
}


class ScenarioError(Exception):
    pass


class PeerSpec:
    def __init__(self, name, rate_limit=0, corrupt_every=0):
        self.name = name
        self.rate_limit = rate_limit
        self.corrupt_every = corrupt_every  # serve --fault-corrupt-every (testing switch): every Nth chunk flipped


class FileSpec:
    def __init__(self, peer, name, size, content):
        self.peer = peer
        self.name = name
        self.size = size
        self.content = content


class Step:
    """One line of the steps: verb, positional args, key=value options, `=> EXPECT`, `&` (background)."""

    def __init__(self, where, verb, args, opts, expect=None, background=False):
        self.where = where
        self.verb = verb
        self.args = args
        self.opts = opts
        self.expect = expect
        self.background = background

    def __repr__(self):
        return "%s: %s %s" % (self.where, self.verb, " ".join(self.args))


class Scenario:
    def __init__(self, name):
        self.name = name
        self.settings = dict(DEFAULT_SETTINGS)
        self.peers = {}      # name -> PeerSpec, in declaration order
        self.files = []      # FileSpec
        self.steps = []      # Step

    def peer_names(self):
        return list(self.peers)

    def broker_names(self):
        """b1 .. bN: the brokers' names (their --name on a shared database)."""
        return ["b%d" % (i + 1) for i in range(int(self.settings["brokers"]))]

    def validate(self):
        if not self.peers:
            raise ScenarioError("%s: no seeders (declare `peer NAME` or `layout random peers=N files=M`)" % self.name)
        names = set()
        for f in self.files:
            if (f.peer, f.name) in names:
                raise ScenarioError("%s: %s declares %s twice" % (self.name, f.peer, f.name))
            names.add((f.peer, f.name))
        contents = {f.content for f in self.files}
        held = {"%s:%s" % (f.peer, f.name) for f in self.files}
        for st in self.steps:
            if st.verb == "get":
                t = st.args[0]
                if t.startswith("cid=") and t[4:] not in contents:
                    raise ScenarioError("%s: no file has content=%s" % (st.where, t[4:]))
                if not t.startswith("cid=") and t not in held:
                    raise ScenarioError("%s: no seeder file %s is declared" % (st.where, t))
            if st.verb in ("kill-seeder", "restart-seeder") and st.args[0] not in self.peers:
                raise ScenarioError("%s: %s is not a declared peer" % (st.where, st.args[0]))
            if st.verb == "kill-broker" and st.args and st.args[0] not in self.broker_names():
                raise ScenarioError("%s: %s is not a broker (they are %s)" % (st.where, st.args[0],
                                                                             ", ".join(self.broker_names())))
        if self.settings["store"] not in STORES:
            raise ScenarioError("%s: store must be %s" % (self.name, " or ".join(STORES)))
        if int(self.settings["brokers"]) < 1:
            raise ScenarioError("%s: brokers must be 1 or more" % self.name)
        if int(self.settings["brokers"]) > 1 and self.settings["store"] != "postgres":
            raise ScenarioError("%s: %d brokers need store postgres (the one database they share)"
                                % (self.name, self.settings["brokers"]))
        if int(self.settings["op-tries"]) < 1:
            raise ScenarioError("%s: op-tries must be 1 or more" % self.name)
        cs = int(self.settings["chunk-size"])
        if cs < 16 * KiB or cs > 16 * MiB or cs & (cs - 1):
            raise ScenarioError("%s: chunk-size must be a power of two from 16K to 16M" % self.name)


def convert_setting(key, value):
    if key not in DEFAULT_SETTINGS:
        raise ScenarioError("unknown setting %r (known: %s)" % (key, ", ".join(sorted(DEFAULT_SETTINGS))))
    if key in SIZE_SETTINGS:
        return parse_size(value)
    if key in FLOAT_SETTINGS:
        return float(value)
    if key == "seed":
        return value if not str(value).lstrip("-").isdigit() else int(value)
    if key == "store":
        if value not in STORES:
            raise ScenarioError("store must be %s, not %r" % (" or ".join(STORES), value))
        return value
    return int(value)


def split_opts(tokens):
    """Positional tokens and key=value options (a token with '=' whose key is a plain word)."""
    args, opts = [], {}
    for t in tokens:
        m = re.match(r"^([a-z][a-z0-9-]*)=(.*)$", t)
        if m:
            opts[m.group(1)] = m.group(2)
        else:
            args.append(t)
    return args, opts


def parse_file(path, overrides=None):
    with open(path, "r", encoding="utf-8") as f:
        return parse_text(f.read(), path, overrides)


def parse_text(text, name="<scenario>", overrides=None):
    """`overrides` (command-line settings) win over the file's `set` lines, from the start (so --seed also
    draws a `layout random`)."""
    sc = Scenario(name)
    sc.overrides = dict(overrides or {})
    sc.settings.update(sc.overrides)
    for lineno, raw in enumerate(text.splitlines(), 1):
        where = "%s:%d" % (name, lineno)
        try:
            parse_line(sc, raw, where)
        except (ScenarioError, ValueError) as e:
            raise ScenarioError("%s: %s" % (where, e))
    sc.validate()
    return sc


def parse_line(sc, raw, where):
    line = raw.strip()
    if not line or line.startswith("#"):
        return
    tokens = shlex.split(line, comments=True)
    if not tokens:
        return
    background = False
    if tokens[-1] == "&":
        background = True
        tokens = tokens[:-1]
    expect = None
    if "=>" in tokens:
        i = tokens.index("=>")
        expect = " ".join(tokens[i + 1:]).strip()
        if not expect:
            raise ScenarioError("`=>` needs a status after it")
        tokens = tokens[:i]
    verb, rest = tokens[0], tokens[1:]
    if verb == "set":
        if len(rest) != 2:
            raise ScenarioError("usage: set NAME VALUE")
        value = convert_setting(rest[0], rest[1])
        if rest[0] not in getattr(sc, "overrides", {}):
            sc.settings[rest[0]] = value
        return
    if verb == "peer":
        args, opts = split_opts(rest)
        if len(args) != 1 or not USER_RE.match(args[0]):
            raise ScenarioError("usage: peer NAME [rate-limit=SIZE] [corrupt-every=N] (NAME a valid user name)")
        if args[0] in sc.peers:
            raise ScenarioError("peer %s declared twice" % args[0])
        sc.peers[args[0]] = PeerSpec(args[0], parse_size(opts.pop("rate-limit", "0")),
                                     int(opts.pop("corrupt-every", "0")))
        if opts:
            raise ScenarioError("unknown peer options: %s" % ", ".join(opts))
        return
    if verb == "file":
        args, opts = split_opts(rest)
        if len(args) != 3:
            raise ScenarioError("usage: file PEER NAME SIZE [content=KEY]")
        peer, fname, size = args
        if peer not in sc.peers:
            raise ScenarioError("file for undeclared peer %s" % peer)
        check_file_name(fname)
        content = opts.pop("content", "%s/%s" % (peer, fname))
        if opts:
            raise ScenarioError("unknown file options: %s" % ", ".join(opts))
        sc.files.append(FileSpec(peer, fname, parse_size(size), content))
        return
    if verb == "layout":
        args, opts = split_opts(rest)
        if args != ["random"] or set(opts) - {"peers", "files"}:
            raise ScenarioError("usage: layout random peers=N files=M")
        random_layout(sc, int(opts.get("peers", 4)), int(opts.get("files", 8)))
        return
    if verb not in STEP_VERBS:
        raise ScenarioError("unknown verb %r" % verb)
    args, opts = split_opts(rest)
    if verb in ("publish", "search"):  # descriptions and queries are free text: keep '=' words as text
        args, opts = rest, {}
        if verb == "search" and rest and rest[0].startswith("cid="):
            args, opts = rest[1:], {"cid": rest[0][4:]}
    if verb == "get" and "cid" in opts:  # `get cid=KEY` was split as an option
        args = ["cid=" + opts.pop("cid")] + args
    lo, hi = STEP_VERBS[verb]
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise ScenarioError("%s takes %s arguments, got %d" % (verb, lo if lo == hi else "%s..%s" % (lo, hi or "n"),
                                                                len(args)))
    if verb == "get" and not re.match(r"^(cid=.+|[A-Za-z0-9._-]{1,64}:.+)$", args[0]):
        raise ScenarioError("get takes USER:NAME or cid=CONTENT-KEY")
    if verb == "get" and set(opts) - {"window", "min-sources"}:
        raise ScenarioError("unknown get options: %s" % ", ".join(sorted(set(opts) - {"window", "min-sources"})))
    if verb == "get" and step_expect_bad(expect):
        raise ScenarioError("a get expects OK or FAIL")
    if verb == "kill-broker" and set(opts) - {"down"}:
        raise ScenarioError("unknown kill-broker options: %s" % ", ".join(sorted(set(opts) - {"down"})))
    if verb == "kill-broker" and "down" in opts:
        float(opts["down"])  # a ValueError names the line
    sc.steps.append(Step(where, verb, args, opts, expect, background))


def step_expect_bad(expect):
    return expect is not None and expect not in ("OK", "FAIL")


def check_file_name(name):
    b = name.encode()
    if not (1 <= len(b) <= 255) or "/" in name or "\0" in name or ".." in name or name.startswith("."):
        raise ScenarioError("%r is not a file name a seeder publishes" % name)


# ---- generated parts (--random, `layout random`) ----

WORDS = ["holiday", "concert", "lecture", "garden", "recipe", "mountain", "harbour", "podcast", "sketch", "archive",
         "invoice", "river", "planet", "meeting", "travel", "poster"]
EXTS = ["bin", "dat", "mp3", "jpg", "pdf", "iso", "txt", "tar"]


def random_layout(sc, peers, files):
    """N seeders p01.. and M files, sizes and placement deterministic from the seed: some empty, some copies of
    another file's content under another name, some held by two or three seeders (multi-source)."""
    if peers < 1 or files < 0:
        raise ScenarioError("layout random needs peers >= 1 and files >= 0")
    rng = random.Random("layout/%s" % sc.settings["seed"])
    width = max(2, len(str(peers)))
    names = ["p%0*d" % (width, i + 1) for i in range(peers)]
    for n in names:
        if n not in sc.peers:
            sc.peers[n] = PeerSpec(n)
    contents = []
    for i in range(files):
        r = rng.random()
        if i > 0 and r < 0.15:  # same bytes as an earlier file, under its own name
            key, size = rng.choice(contents)
        else:
            if r < 0.25:
                size = 0
            elif r < 0.45:
                size = rng.randint(1, 64 * KiB)
            elif r < 0.8:
                size = rng.randint(64 * KiB, 1 * MiB)
            else:
                size = rng.randint(1 * MiB, 3 * MiB)
            key = "content-%d" % i
            contents.append((key, size))
        name = "%s-%s-%d.%s" % (rng.choice(WORDS), rng.choice(WORDS), i, rng.choice(EXTS))
        r = rng.random()
        holders = 1 if r < 0.55 else 2 if r < 0.85 else 3
        for peer in rng.sample(names, min(holders, len(names))):
            sc.files.append(FileSpec(peer, name, size, key))


def random_scenario(peers, files, ops, seconds, seed, settings=None):
    sc = Scenario("--random")
    sc.settings["seed"] = seed
    for k, v in (settings or {}).items():
        sc.settings[k] = v
    random_layout(sc, peers, files)
    sc.steps.append(Step("--random", "random", [], {"ops": str(ops), "seconds": str(seconds)}))
    sc.validate()
    return sc
