#!/usr/bin/python3
# stamps_test.py: where an operation's time comes from, end to end with real processes on loopback:
# zshare-peer asks zshare-timesvc (SOAP) for the time of every request, zshare-broker keeps the stamp with the
# change and ships it to zshare-rpclog, whose log line is `<ts>[*] <user> <OP> <args>\t#<broker id>:<seq>`.
#   (a) time service up: one-shot commands (--timesvc and $ZSHARE_TIMESVC) and a piped `zshare-peer shell`
#       (REGISTER, CONNECT, PUBLISH, DELETE, DISCONNECT, UNREGISTER): every stamp is ISO 8601 UTC with
#       milliseconds and 'Z', has no '*', lies between the wall-clock readings taken before and after its
#       command, and the lines come in the order of the operations; the peers warn about nothing;
#   (b) time service down (a loopback port nobody listens on): the same operations all answer OK, every stamp
#       carries '*' and lies in its window, and each peer process warns exactly once on stderr (a piped shell
#       doing all the operations, too);
#   (c) the time service killed (kill -9) in the middle of a shell session and restarted on its port: every
#       operation keeps answering OK, stamps switch to local ('*') at once, stay local through a retry that
#       finds the service still down (one warning for the whole outage), and come back from the service after
#       the client's retry backoff (5 s); waited for by issuing harmless mutations until a stamp without '*'
#       arrives, bounded at 20 s.
# The broker runs over CurveZMQ (its default) and every peer of a world shares one keypair (peer_args()), so a
# REGISTER's log line carries `key=<that public key>`, the key that now owns the user.
# Every wait is a condition with a deadline; the first failed check stops the run (exit 1).
import argparse
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import merkle_tree  # noqa: E402
from zshare_testlib import (CheckFailed, Checks, Broker, RpcLog, TimeSvc, free_port, iso8601_ms_to_epoch_ms,  # noqa: E402
                            parse_log_line, wait_for)

LINE_DEADLINE_S = 15      # one shell command's answer (the peer's own broker timeout is 3 s x 3 tries)
EXIT_DEADLINE_S = 15      # a one-shot command or a shell's exit
LOG_DEADLINE_S = 20       # an acknowledged mutation reaching the log file
RETRY_AFTER_S = 5.0       # common/time_client.hpp: TimeClient::Options::retry_after
RECOVERY_BOUND_S = 20.0   # after the restart, a service stamp must come back within this
OUTAGE_OP_BOUND_S = 3.0   # with the service down an operation must not wait on it (refused: answered at once)
WARNING = "warning: time service"
OWNER_KEY = "<the peers' public key>"  # a REGISTER's expected args: key=<the key the peers made on first run>


CHECKS = Checks()


def section(name):
    print("-- %s" % name, flush=True)


def until(predicate, deadline_s, what):
    """wait_for, but a timeout is a failed check."""
    try:
        return wait_for(predicate, deadline_s, what)
    except TimeoutError as e:
        raise CheckFailed(str(e))


def wall_ms_floor():
    return int(time.time() * 1000)


def wall_ms_ceil():
    return int(time.time() * 1000) + 1


def port_accepts(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def peer_env(timesvc_url=None):
    """The environment a peer runs in: no inherited ZSHARE_* settings; $ZSHARE_TIMESVC only when asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZSHARE_")}
    if timesvc_url is not None:
        env["ZSHARE_TIMESVC"] = timesvc_url
    return env


def warnings_in(text):
    return [line for line in text.splitlines() if WARNING in line]


# ---------------------------------------------------------------------------------------------------------
# Expected operations: what was done, the log line it must produce, and the wall-clock window around it.
# ---------------------------------------------------------------------------------------------------------

class Expected:
    def __init__(self, user, op, args, before_ms, after_ms, local, label):
        self.user, self.op, self.args = user, op, args
        self.before_ms, self.after_ms = before_ms, after_ms
        self.local = local  # True: the stamp must carry '*'; False: it must not
        self.label = label

    def __repr__(self):
        return "%s (%s %s %r)" % (self.label, self.user, self.op, self.args)


class World:
    """One broker shipping to one logger (fresh files), the scenario's expected operations in order."""

    def __init__(self, args, name):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="zshare-stamps-%s-" % name)
        self.logger = RpcLog(args.rpclog_bin, workdir=os.path.join(self.work, "rpclog"))
        os.makedirs(self.logger.workdir)
        self.broker = Broker(args.broker_bin, workdir=os.path.join(self.work, "broker"), rpclog=self.logger.address)
        self.files = os.path.join(self.work, "files")
        os.makedirs(self.files)
        self.expected = []

    def start(self):
        self.logger.start()
        self.broker.start()
        return self

    def make_file(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        return path, len(data), merkle_tree.cid_hex(data)

    def expect(self, user, op, args, before_ms, after_ms, local, label):
        if args == OWNER_KEY:  # known once a peer has run (and made its key): expectations come after the command
            args = "key=" + self.broker.peer_public_key()
        self.expected.append(Expected(user, op, args, before_ms, after_ms, local, label))

    def log_lines(self):
        return self.logger.complete_lines()

    def wait_log(self, count):
        """Waits until the log holds `count` complete lines; returns them."""
        return until(lambda: (lambda ls: ls if len(ls) >= count else None)(self.log_lines()), LOG_DEADLINE_S,
                     "%d lines in the operations log (have %d)" % (count, len(self.log_lines())))

    def check_log(self):
        """The log holds exactly the expected operations, in order, each stamp well-formed, marked as expected
        and inside its command's wall-clock window; seq increases by one; stamps never go back."""
        lines = self.wait_log(len(self.expected))
        CHECKS.eq(len(lines), len(self.expected), "log lines (one per acknowledged mutation, nothing else)")
        records = []
        for i, (line, want) in enumerate(zip(lines, self.expected)):
            r = parse_log_line(line)
            CHECKS.ok(r is not None, "log line %d is in the logger's format: %r" % (i + 1, line))
            CHECKS.eq((r["user"], r["op"], r["args"]), (want.user, want.op, want.args),
                      "log line %d is %r" % (i + 1, want))
            try:
                ts_ms = iso8601_ms_to_epoch_ms(r["ts"])
            except ValueError as e:
                raise CheckFailed("log line %d (%r): %s" % (i + 1, line, e))
            CHECKS.ok(True, "stamp format")
            CHECKS.eq(r["local"], want.local, "log line %d %r: stamp marked local ('*')" % (i + 1, line))
            CHECKS.ok(want.before_ms <= ts_ms <= want.after_ms,
                      "log line %d %r: stamp %s (%d) lies between the wall clock before (%d) and after (%d) %r"
                      % (i + 1, line, r["ts"], ts_ms, want.before_ms, want.after_ms, want))
            records.append((r, ts_ms))
        for (prev, prev_ms), (cur, cur_ms) in zip(records, records[1:]):
            CHECKS.eq(cur["broker_id"], prev["broker_id"], "one broker id in the log")
            CHECKS.eq(cur["seq"], prev["seq"] + 1, "seq after %d" % prev["seq"])
            CHECKS.ok(cur_ms >= prev_ms, "stamps in operation order: %s then %s" % (prev["ts"], cur["ts"]))
        print("   %d log lines: stamps in their windows and in order (%s)"
              % (len(records), "all local '*'" if all(r["local"] for r, _ in records)
                 else "none local" if not any(r["local"] for r, _ in records) else "mixed"), flush=True)
        return records

    def cleanup(self):
        self.broker.cleanup()
        self.logger.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Peers: one-shot commands and a shell driven line by line through pipes.
# ---------------------------------------------------------------------------------------------------------

def one_shot(world, argv, timesvc_arg=None, timesvc_env=None, local=False, expect=None, label=""):
    """Runs `zshare-peer [--timesvc URL] ARGV`; checks exit 0 and the OK line; records the expected log line.
    Returns its stderr text."""
    cmd = [world.args.peer_bin] + world.broker.peer_args()
    if timesvc_arg is not None:
        cmd += ["--timesvc", timesvc_arg]
    cmd += argv
    before = wall_ms_floor()
    done = subprocess.run(cmd, capture_output=True, text=True, env=peer_env(timesvc_env), timeout=EXIT_DEADLINE_S)
    after = wall_ms_ceil()
    CHECKS.eq(done.returncode, 0, "exit code of %r (stdout %r, stderr %r)" % (argv, done.stdout, done.stderr))
    first = done.stdout.splitlines()[0] if done.stdout else ""
    CHECKS.eq(first, "%s OK" % argv[0].upper(), "first output line of %r" % argv)
    if expect:
        user, op, args = expect
        world.expect(user, op, args, before, after, local, label or " ".join(argv))
    return done.stderr


class PipedShell:
    """`zshare-peer shell` with stdin, stdout and stderr on pipes: send a line, wait for its answer line."""

    def __init__(self, world, label, global_args=(), shell_args=(), env=None):
        self.world = world
        self.label = label
        argv = [world.args.peer_bin] + world.broker.peer_args() + list(global_args) + ["shell"] + list(shell_args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, encoding="utf-8", errors="replace", bufsize=1, env=env or peer_env())
        self.lines = queue.Queue()
        self.stderr_lines = []
        self.stderr_lock = threading.Lock()
        self.readers = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self.readers:
            t.start()

    def _read_stdout(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self.stderr_lock:
                self.stderr_lines.append(line.rstrip("\n"))

    def stderr_text(self):
        with self.stderr_lock:
            return "\n".join(self.stderr_lines)

    def next_line(self, context):
        try:
            line = self.lines.get(timeout=LINE_DEADLINE_S)
        except queue.Empty:
            raise CheckFailed("[%s] no answer within %ds to %r; stderr: %s"
                              % (self.label, LINE_DEADLINE_S, context, self.stderr_text()))
        if line is None:
            raise CheckFailed("[%s] output ended (exit %s) while waiting for %r; stderr: %s"
                              % (self.label, self.proc.poll(), context, self.stderr_text()))
        return line

    def do(self, command, expect=None, local=False):
        """Sends `command`, checks the answer is `<COMMAND> OK`, records the log line it must produce.
        Returns the seconds the command took."""
        before = wall_ms_floor()
        t0 = time.monotonic()
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.next_line(command)
        took = time.monotonic() - t0
        after = wall_ms_ceil()
        CHECKS.eq(answer, "%s OK" % command.split()[0].upper(),
                  "[%s] answer to %r (stderr: %r)" % (self.label, command, self.stderr_text()))
        if expect:
            user, op, args = expect
            self.world.expect(user, op, args, before, after, local, "[%s] %s" % (self.label, command))
        return took

    def quit(self):
        """QUIT (not connected any more: just `QUIT OK`), end of output, exit 0."""
        self.proc.stdin.write("QUIT\n")
        self.proc.stdin.flush()
        CHECKS.eq(self.next_line("QUIT"), "QUIT OK", "[%s] answer to QUIT" % self.label)
        self.proc.stdin.close()
        try:
            tail = self.lines.get(timeout=EXIT_DEADLINE_S)
        except queue.Empty:
            raise CheckFailed("[%s] output did not end after QUIT" % self.label)
        CHECKS.eq(tail, None, "[%s] nothing after QUIT OK" % self.label)
        CHECKS.eq(self.proc.wait(timeout=EXIT_DEADLINE_S), 0, "[%s] exit code" % self.label)
        for t in self.readers:
            t.join(timeout=EXIT_DEADLINE_S)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_DEADLINE_S)


def batch_shell(world, user, listen, commands, expected, timesvc_arg, local):
    """`printf 'CMD\\n...' | zshare-peer --timesvc URL shell`: all input at once, stdin closed. Checks every answer
    is OK and records the expected log lines, each within the whole session's window. Returns stderr."""
    cmd = [world.args.peer_bin] + world.broker.peer_args() + ["--timesvc", timesvc_arg, "shell", "--listen", listen]
    text = "".join(c + "\n" for c in commands)
    before = wall_ms_floor()
    done = subprocess.run(cmd, input=text, capture_output=True, text=True, env=peer_env(), timeout=EXIT_DEADLINE_S * 2)
    after = wall_ms_ceil()
    CHECKS.eq(done.returncode, 0, "piped shell's exit code (stderr %r)" % done.stderr)
    want = ["%s OK" % c.split()[0].upper() for c in commands] + ["QUIT OK"]
    CHECKS.eq(done.stdout.splitlines(), want, "piped shell's answers (end of input acts as QUIT)")
    for op_user, op, args in expected:
        world.expect(op_user, op, args, before, after, local, "[piped shell %s] %s" % (user, op))
    return done.stderr


def session_ops(world, shell, user, listen, local):
    """REGISTER, CONNECT, PUBLISH x2, DELETE, DISCONNECT in `shell`, one line at a time."""
    a_path, a_size, a_cid = world.make_file("%s-notes.txt" % user, b"notes of " + user.encode() + b"\n")
    b_path, b_size, b_cid = world.make_file("%s-song.ogg" % user, bytes(range(256)) * 1500 + user.encode())
    a_name, b_name = os.path.basename(a_path), os.path.basename(b_path)
    shell.do("REGISTER %s" % user, (user, "REGISTER", OWNER_KEY), local)
    shell.do("CONNECT %s" % user, (user, "CONNECT", listen), local)
    shell.do("PUBLISH %s notes for the stamps test" % a_path, (user, "PUBLISH", "%s %d %s" % (a_name, a_size, a_cid)), local)
    shell.do("PUBLISH %s a song" % b_path, (user, "PUBLISH", "%s %d %s" % (b_name, b_size, b_cid)), local)
    shell.do("DELETE %s" % a_name, (user, "DELETE", a_name), local)
    shell.do("DISCONNECT %s" % user, (user, "DISCONNECT", ""), local)


# ---------------------------------------------------------------------------------------------------------
# (a) the time service up
# ---------------------------------------------------------------------------------------------------------

def scenario_service_up(args):
    section("(a) time service up: service stamps (no '*'), in their windows, in order")
    world = World(args, "up")
    svc = TimeSvc(args.timesvc_bin, workdir=os.path.join(world.work, "timesvc"))
    os.makedirs(svc.workdir)
    shell = None
    try:
        world.start()
        svc.start()
        # One-shot commands: the URL from $ZSHARE_TIMESVC, then from --timesvc.
        err = one_shot(world, ["register", "alice"], timesvc_env=svc.url, expect=("alice", "REGISTER", OWNER_KEY))
        CHECKS.eq(warnings_in(err), [], "one-shot register ($ZSHARE_TIMESVC) warns about nothing")
        err = one_shot(world, ["register", "bob"], timesvc_arg=svc.url, expect=("bob", "REGISTER", OWNER_KEY))
        CHECKS.eq(warnings_in(err), [], "one-shot register (--timesvc) warns about nothing")

        listen = "tcp://127.0.0.1:%d" % free_port()
        shell = PipedShell(world, "carol", global_args=["--timesvc", svc.url], shell_args=["--listen", listen])
        session_ops(world, shell, "carol", listen, local=False)
        shell.quit()
        CHECKS.eq(warnings_in(shell.stderr_text()), [], "the shell warns about nothing")
        shell = None

        # A shell fed all at once through a pipe (stdin closed at the end), the URL from --timesvc.
        listen2 = "tcp://127.0.0.1:%d" % free_port()
        path, size, cid = world.make_file("dave.bin", b"dave's bytes" * 100)
        err = batch_shell(world, "dave", listen2,
                          ["REGISTER dave", "CONNECT dave", "PUBLISH %s from a pipe" % path, "DELETE dave.bin",
                           "DISCONNECT dave"],
                          [("dave", "REGISTER", OWNER_KEY), ("dave", "CONNECT", listen2),
                           ("dave", "PUBLISH", "dave.bin %d %s" % (size, cid)), ("dave", "DELETE", "dave.bin"),
                           ("dave", "DISCONNECT", "")],
                          svc.url, local=False)
        CHECKS.eq(warnings_in(err), [], "the piped shell warns about nothing")

        err = one_shot(world, ["unregister", "carol"], timesvc_arg=svc.url, expect=("carol", "UNREGISTER", "files_removed=1"))
        CHECKS.eq(warnings_in(err), [], "one-shot unregister warns about nothing")
        err = one_shot(world, ["unregister", "alice"], timesvc_env=svc.url, expect=("alice", "UNREGISTER", "files_removed=0"))
        CHECKS.eq(warnings_in(err), [], "one-shot unregister ($ZSHARE_TIMESVC) warns about nothing")
        world.check_log()
        CHECKS.ok(svc.running(), "the time service still runs")
        CHECKS.eq(svc.terminate(), 0, "zshare-timesvc's exit code after SIGTERM")
    except BaseException:
        print("-- broker stderr:\n%s\n-- logger stderr:\n%s" % (world.broker.stderr()[-2000:], world.logger.stderr()[-2000:]),
              flush=True)
        raise
    finally:
        if shell:
            shell.kill()
        svc.cleanup()
        world.cleanup()


# ---------------------------------------------------------------------------------------------------------
# (b) the time service down
# ---------------------------------------------------------------------------------------------------------

def scenario_service_down(args):
    section("(b) time service down: operations OK, stamps marked '*', one warning per process")
    world = World(args, "down")
    shell = None
    try:
        world.start()
        dead_port = free_port()
        CHECKS.ok(not port_accepts(dead_port), "nothing listens on port %d" % dead_port)
        dead = "http://127.0.0.1:%d" % dead_port

        err = one_shot(world, ["register", "erin"], timesvc_arg=dead, local=True, expect=("erin", "REGISTER", OWNER_KEY))
        CHECKS.eq(len(warnings_in(err)), 1, "one-shot register (--timesvc) warns once: %r" % err)
        CHECKS.ok(dead in warnings_in(err)[0], "the warning names the service's URL: %r" % err)
        err = one_shot(world, ["register", "frank"], timesvc_env=dead, local=True, expect=("frank", "REGISTER", OWNER_KEY))
        CHECKS.eq(len(warnings_in(err)), 1, "one-shot register ($ZSHARE_TIMESVC) warns once: %r" % err)

        # One shell, several operations: one warning.
        listen = "tcp://127.0.0.1:%d" % free_port()
        shell = PipedShell(world, "grace", global_args=["--timesvc", dead], shell_args=["--listen", listen])
        session_ops(world, shell, "grace", listen, local=True)
        shell.quit()
        CHECKS.eq(len(warnings_in(shell.stderr_text())), 1,
                  "a shell doing 6 operations warns once: %r" % shell.stderr_text())
        shell = None

        # A shell fed all at once, the URL from $ZSHARE_TIMESVC this time.
        listen2 = "tcp://127.0.0.1:%d" % free_port()
        path, size, cid = world.make_file("heidi.bin", b"heidi's bytes" * 100)
        commands = ["REGISTER heidi", "CONNECT heidi", "PUBLISH %s from a pipe" % path, "DELETE heidi.bin",
                    "DISCONNECT heidi"]
        cmd = [args.peer_bin] + world.broker.peer_args() + ["shell", "--listen", listen2]
        before = wall_ms_floor()
        done = subprocess.run(cmd, input="".join(c + "\n" for c in commands), capture_output=True, text=True,
                              env=peer_env(dead), timeout=EXIT_DEADLINE_S * 2)
        after = wall_ms_ceil()
        CHECKS.eq(done.returncode, 0, "piped shell's exit code (stderr %r)" % done.stderr)
        CHECKS.eq(done.stdout.splitlines(), ["%s OK" % c.split()[0] for c in commands] + ["QUIT OK"],
                  "piped shell's answers (end of input acts as QUIT)")
        for op, a in (("REGISTER", OWNER_KEY), ("CONNECT", listen2), ("PUBLISH", "heidi.bin %d %s" % (size, cid)),
                      ("DELETE", "heidi.bin"), ("DISCONNECT", "")):
            world.expect("heidi", op, a, before, after, True, "[piped shell heidi] %s" % op)
        CHECKS.eq(len(warnings_in(done.stderr)), 1, "a piped shell doing 5 operations warns once: %r" % done.stderr)

        err = one_shot(world, ["unregister", "grace"], timesvc_arg=dead, local=True,
                       expect=("grace", "UNREGISTER", "files_removed=1"))
        CHECKS.eq(len(warnings_in(err)), 1, "one-shot unregister warns once: %r" % err)
        # No time service configured at all: local stamps, and nothing to warn about (nothing was asked for).
        err = one_shot(world, ["unregister", "erin"], local=True, expect=("erin", "UNREGISTER", "files_removed=0"))
        CHECKS.eq(warnings_in(err), [], "without a time service configured the peer does not warn: %r" % err)
        world.check_log()
    except BaseException:
        print("-- broker stderr:\n%s\n-- logger stderr:\n%s" % (world.broker.stderr()[-2000:], world.logger.stderr()[-2000:]),
              flush=True)
        raise
    finally:
        if shell:
            shell.kill()
        world.cleanup()


# ---------------------------------------------------------------------------------------------------------
# (c) the time service killed mid-session and restarted
# ---------------------------------------------------------------------------------------------------------

def scenario_service_restarted(args):
    section("(c) time service killed mid-session, then restarted: local stamps, then service stamps again")
    world = World(args, "restart")
    svc = TimeSvc(args.timesvc_bin, workdir=os.path.join(world.work, "timesvc"))
    os.makedirs(svc.workdir)
    shell = None
    try:
        world.start()
        svc.start()
        listen = "tcp://127.0.0.1:%d" % free_port()
        shell = PipedShell(world, "ivan", global_args=["--timesvc", svc.url], shell_args=["--listen", listen])
        path, size, cid = world.make_file("ivan.dat", b"ivan's harmless file\n")
        publish_args = "ivan.dat %d %s" % (size, cid)
        shell.do("REGISTER ivan", ("ivan", "REGISTER", OWNER_KEY), False)
        shell.do("CONNECT ivan", ("ivan", "CONNECT", listen), False)
        flip = [True]

        def mutate(local):
            """One harmless mutation (PUBLISH and DELETE of the same file, alternately); waits for its log line;
            returns (record, seconds the command took)."""
            if flip[0]:
                took = shell.do("PUBLISH %s harmless" % path, ("ivan", "PUBLISH", publish_args), local)
            else:
                took = shell.do("DELETE ivan.dat", ("ivan", "DELETE", "ivan.dat"), local)
            flip[0] = not flip[0]
            lines = world.wait_log(len(world.expected))
            return parse_log_line(lines[len(world.expected) - 1]), took

        r, _ = mutate(False)
        CHECKS.ok(r is not None and not r["local"], "with the service up the stamp is the service's: %r" % r)

        svc.kill9()
        CHECKS.ok(not port_accepts(svc.port), "the killed service's port refuses connections")
        killed_at = time.monotonic()
        # The outage outlasts one retry backoff: the retry finds the service still down; stamps stay local,
        # every operation is answered at once, and the outage gets one warning only.
        outage_ops = 0
        while True:
            r, took = mutate(None)
            outage_ops += 1
            CHECKS.ok(r is not None and r["local"], "during the outage the stamp is local ('*'): %r" % r)
            world.expected[-1].local = True
            CHECKS.ok(took <= OUTAGE_OP_BOUND_S, "an operation during the outage took %.2f s (<= %.1f s)"
                      % (took, OUTAGE_OP_BOUND_S))
            if time.monotonic() - killed_at > RETRY_AFTER_S + 1.5 and outage_ops >= 4:
                break
            time.sleep(0.25)  # pacing only: keeps the log short while the backoff runs out
        until(lambda: warnings_in(shell.stderr_text()), LINE_DEADLINE_S, "the shell to warn about the outage")
        CHECKS.eq(len(warnings_in(shell.stderr_text())), 1,
                  "one warning for the outage, retry included: %r" % shell.stderr_text())
        print("   %d operations during a %.1f s outage: all OK, all local" % (outage_ops, time.monotonic() - killed_at),
              flush=True)

        svc.start()
        restarted_at = time.monotonic()
        recovered = None
        while True:
            r, _ = mutate(None)
            CHECKS.ok(r is not None, "a log line for every operation")
            world.expected[-1].local = r["local"]  # local until the client retries; the window check still applies
            if not r["local"]:
                recovered = time.monotonic() - restarted_at
                break
            if time.monotonic() - restarted_at > RECOVERY_BOUND_S:
                raise CheckFailed("no service stamp within %.0f s of the restart (retry backoff %.0f s)"
                                  % (RECOVERY_BOUND_S, RETRY_AFTER_S))
            time.sleep(0.2)  # pacing only
        CHECKS.ok(True, "service stamps came back")
        print("   service stamps back %.1f s after the restart" % recovered, flush=True)
        for _ in range(3):
            r, _ = mutate(False)
            CHECKS.ok(r is not None and not r["local"], "after recovery stamps stay the service's: %r" % r)
        shell.do("DISCONNECT ivan", ("ivan", "DISCONNECT", ""), False)
        shell.quit()
        CHECKS.eq(len(warnings_in(shell.stderr_text())), 1,
                  "still one warning after the service came back: %r" % shell.stderr_text())
        shell = None
        records = world.check_log()
        marks = "".join("*" if r["local"] else "." for r, _ in records)
        CHECKS.ok(marks.strip(".") == "*" * len(marks.strip(".")) and marks.startswith("...") and marks.endswith(".."),
                  "stamps go service -> local -> service, once each: %s" % marks)
        CHECKS.eq(svc.terminate(), 0, "the restarted zshare-timesvc's exit code after SIGTERM")
    except BaseException:
        print("-- broker stderr:\n%s\n-- logger stderr:\n%s" % (world.broker.stderr()[-2000:], world.logger.stderr()[-2000:]),
              flush=True)
        if shell:
            print("-- shell stderr:\n%s" % shell.stderr_text()[-2000:], flush=True)
        raise
    finally:
        if shell:
            shell.kill()
        svc.cleanup()
        world.cleanup()


SCENARIOS = {
    "up": scenario_service_up,
    "down": scenario_service_down,
    "restarted": scenario_service_restarted,
}


def main():
    ap = argparse.ArgumentParser(description="operation stamps end to end: zshare-peer -> zshare-timesvc, "
                                             "zshare-broker -> zshare-rpclog")
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--peer-bin", required=True)
    ap.add_argument("--rpclog-bin", required=True)
    ap.add_argument("--timesvc-bin", required=True)
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only these scenarios")
    args = ap.parse_args()
    started = time.monotonic()
    def body():
        for name, scenario in SCENARIOS.items():
            if not args.only or name in args.only:
                scenario(args)
    return CHECKS.run(body, timed_from=started)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # ctest's timeout: clean up the children
    sys.exit(main())
