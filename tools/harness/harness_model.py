# harness_model.py: what the harness believes the index holds, the statuses a request may get from that belief and
# the belief after a reply; sessions are judged by who holds them, a broker in one of its incarnations (a broker's
# restart ends its sessions; with several brokers, the others' go on). Search rule too.
import threading

from harness_client import GONE, LIVE

ON, OFF, UNKNOWN = "on", "off", "unknown"
SESSION_OPS = ("PUBLISH", "DELETE")
MUTATIONS = ("REGISTER", "UNREGISTER", "CONNECT", "DISCONNECT", "PUBLISH", "DELETE")


class FileMeta:
    def __init__(self, name, size, cid, chunk_size, description=""):
        self.name = name
        self.size = size
        self.cid = cid
        self.chunk_size = chunk_size
        self.description = description

    def as_tuple(self):
        return (self.name, self.size, self.cid, self.chunk_size, self.description)


class UserState:
    def __init__(self, name, owner):
        self.name = name
        self.owner = owner            # "serve", or the driver thread that alone mutates this user
        self.registered = False
        self.session = OFF
        self.holders = frozenset()    # (broker, incarnation) that may hold the session (ON or UNKNOWN): one of them
        self.endpoint = ""
        self.files = {}               # name -> FileMeta
        self.tainted = False          # a mutation went unanswered: its outcome is unknown

    def effective_session(self, view):
        """The session as of `view` (harness_client.Incarnations): OFF when every broker that may hold it has
        restarted since (or it was never on); the belief when each of them lives on in that incarnation; else
        UNKNOWN (one of them is down and its sessions end at a time the harness cannot tell, or it restarted while
        another may be the holder)."""
        if self.session == OFF or not self.holders:
            return OFF
        states = {view.state(h) for h in self.holders}
        if states == {GONE}:
            return OFF
        if states == {LIVE}:
            return self.session
        return UNKNOWN


def keywords(text):
    """protocol.md: words are runs of ASCII letters/digits and bytes of multi-byte UTF-8; ASCII folded to lower."""
    out, word = [], bytearray()
    for c in text.encode("utf-8"):
        if 65 <= c <= 90:
            word.append(c + 32)
        elif 97 <= c <= 122 or 48 <= c <= 57 or c >= 0x80:
            word.append(c)
        elif word:
            out.append(bytes(word).decode("utf-8", "replace"))
            word = bytearray()
    if word:
        out.append(bytes(word).decode("utf-8", "replace"))
    return list(dict.fromkeys(out))


def matches(meta, words, cid):
    if cid is not None and meta.cid != cid:
        return False
    have = set(keywords(meta.name)) | set(keywords(meta.description))
    return all(w in have for w in words)


def log_args(op, fields, reply):
    """The args the broker writes for an acknowledged mutation (broker/dispatcher.cpp, its log(...) calls)."""
    if op == "UNREGISTER":
        return "files_removed=%d" % reply.get("files_removed", -1)
    if op == "CONNECT":
        return fields["endpoint"]
    if op == "PUBLISH":
        return "%s %d %s" % (fields["name"], fields["size"], fields["cid"])
    if op == "DELETE":
        return fields["name"]
    if op == "REGISTER" and reply.get("key"):
        return "key=" + reply["key"]  # the CurveZMQ key that now owns the user
    return ""


class Model:
    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}

    def user(self, name, owner):
        with self.lock:
            st = self.users.get(name)
            if st is None:
                st = self.users[name] = UserState(name, owner)
            return st

    def add_seeder(self, name, endpoint, files):
        st = self.user(name, "serve")
        st.registered = True
        st.endpoint = endpoint
        st.files = {f.name: f for f in files}
        return st

    def owned_by(self, owner):
        with self.lock:
            return [u for u in self.users.values() if u.owner == owner]

    def all_users(self):
        with self.lock:
            return list(self.users.values())

    # ---- requests ----
    @staticmethod
    def allowed(op, st, fields, session):
        """Statuses the broker may answer, given the belief and the session (ON, OFF or UNKNOWN)."""
        if op == "REGISTER":
            return {"USERNAME IN USE"} if st.registered else {"OK"}
        if not st.registered:
            return {"USER DOES NOT EXIST"}
        if op == "UNREGISTER":
            return {"OK"}
        if op == "CONNECT":  # the harness's key owns its users: an open session is replaced (protocol.md "Sessions")
            return {"OK"}
        if op == "DISCONNECT":
            return {ON: {"OK"}, OFF: {"USER NOT CONNECTED"}, UNKNOWN: {"OK", "USER NOT CONNECTED"}}[session]
        if op in SESSION_OPS:
            present = fields["name"] in st.files
            if op == "PUBLISH":
                connected = {"CONTENT ALREADY PUBLISHED"} if present else {"OK"}
            else:
                connected = {"OK"} if present else {"CONTENT NOT PUBLISHED"}
            return {ON: connected, OFF: {"USER NOT CONNECTED"}, UNKNOWN: connected | {"USER NOT CONNECTED"}}[session]
        raise ValueError("not a mutation: %s" % op)

    @staticmethod
    def apply(op, st, fields, result):
        """The belief after the reply (the reply is the truth about the single effect, thanks to the reply cache)."""
        status = result.status
        seen = UNKNOWN if result.overlapped else ON

        def session_opened():
            # a CONNECT answered OK: the broker that applied it holds the new session
            st.session, st.holders = seen, result.holders()

        def session_seen_on():
            # the session existed when the request was applied; its holder is the one the belief had, unless that one
            # has restarted since (then the belief was wrong: any broker may hold it)
            kept = frozenset(h for h in st.holders if result.acked_incarnation.state(h) != GONE) \
                if st.session != OFF else frozenset()
            if result.overlapped:
                st.session, st.holders = UNKNOWN, kept | result.acked_incarnation.current()
            else:
                st.session, st.holders = ON, kept or result.acked_incarnation.current()

        if status == "USER DOES NOT EXIST":
            st.registered, st.session, st.files = False, OFF, {}
            return
        if op == "REGISTER":
            if status == "OK":
                st.registered, st.session, st.files = True, OFF, {}
            elif status == "USERNAME IN USE":
                st.registered = True
        elif op == "UNREGISTER":
            if status == "OK":
                st.registered, st.session, st.files = False, OFF, {}
        elif op == "CONNECT":
            if status == "OK":
                st.endpoint = fields["endpoint"]
                session_opened()
            elif status == "USER ALREADY CONNECTED":
                session_seen_on()
        elif op == "DISCONNECT":
            if status in ("OK", "USER NOT CONNECTED"):
                st.session, st.holders = OFF, frozenset()
        elif op in SESSION_OPS:
            if status == "USER NOT CONNECTED":
                st.session, st.holders = OFF, frozenset()
                return
            if status in ("OK", "CONTENT ALREADY PUBLISHED", "CONTENT NOT PUBLISHED"):
                session_seen_on()
            if status == "OK" and op == "PUBLISH":
                st.files[fields["name"]] = FileMeta(fields["name"], fields["size"], fields["cid"],
                                                    fields["chunk_size"], fields.get("description", ""))
            elif status == "OK" and op == "DELETE":
                st.files.pop(fields["name"], None)

    # ---- queries ----
    def search(self, users, words, cid):
        """{(user, name): FileMeta} of the files of `users` that a SEARCH must return."""
        out = {}
        for st in users:
            if not st.registered or st.tainted:
                continue
            for meta in st.files.values():
                if matches(meta, words, cid):
                    out[(st.name, meta.name)] = meta
        return out
