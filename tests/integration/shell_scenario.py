#!/usr/bin/python3
# shell_scenario.py: the seeds' console session, piped into real `zshare-peer shell` processes (alice and bob)
# against a real zshare-broker; every answer line is asserted exactly. Also --json, one-shot exit codes, no broker,
# two shells of one key (the second may not take a live session, and takes a dead one's at once).
# Everything runs over CurveZMQ (the default): alice and bob each have a keypair of their own, so bob acting on
# alice's user is DENIED; the one-shot runs share one keypair and name the broker key by option, environment and
# config file. A short session against a --plaintext broker covers the plaintext path (warnings, a GET_FILE).
# Waits are conditions with deadlines (a line arrives, a port opens or closes, a process exits), never sleeps.
import argparse
import fcntl
import json
import os
import pty
import queue
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time

from merkle_tree import cid_of_file
from zshare_testlib import Broker, free_port, wait_for

LINE_DEADLINE_S = 15     # one command's answer; the peer's own broker timeout is 3 s
EXIT_DEADLINE_S = 15


def port_accepts(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


class ShellProcess:
    """One `zshare-peer shell` driven through pipes: send a line, wait for the answer lines."""

    def __init__(self, peer_bin, broker, label, global_args=(), shell_args=(), key_dir=None):
        """`broker`: a zshare_testlib.Broker (its peer_args(key_dir) name it and its key)."""
        self.label = label
        self.argv = [peer_bin] + broker.peer_args(key_dir) + list(global_args) + ["shell"] + list(shell_args)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, encoding="utf-8", errors="replace", bufsize=1)
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
        self.lines.put(None)  # end of output

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self.stderr_lock:
                self.stderr_lines.append(line.rstrip("\n"))

    def stderr_text(self):
        with self.stderr_lock:
            return "\n".join(self.stderr_lines)

    def fail(self, message):
        raise AssertionError("[%s] %s\n--- its stderr:\n%s" % (self.label, message, self.stderr_text()))

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read_lines(self, count, context):
        out = []
        end = time.monotonic() + LINE_DEADLINE_S
        while len(out) < count:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                self.fail("no answer within %ds to %r; got %r so far" % (LINE_DEADLINE_S, context, out))
            if line is None:
                self.fail("output ended (exit %s) while waiting for %r; got %r" % (self.proc.poll(), context, out))
            out.append(line)
        return out

    def ask(self, command, expected):
        """Sends `command` and asserts the next output lines equal `expected` exactly."""
        self.send(command)
        got = self.read_lines(len(expected), command)
        if got != expected:
            self.fail("%r answered\n  %r\nexpected\n  %r" % (command, got, expected))
        return got

    def ask_unordered(self, command, first, data):
        """Exact status line; the data lines compared as a multiset (the broker orders search results)."""
        self.send(command)
        got = self.read_lines(1 + len(data), command)
        if got[0] != first or sorted(got[1:]) != sorted(data):
            self.fail("%r answered\n  %r\nexpected %r then (any order)\n  %r" % (command, got, first, data))
        return got

    def ask_matching(self, command, patterns):
        """Each output line must fully match its regular expression; returns the match objects."""
        self.send(command)
        got = self.read_lines(len(patterns), command)
        matches = [re.fullmatch(p, line) for p, line in zip(patterns, got)]
        if not all(matches):
            self.fail("%r answered\n  %r\nexpected to match\n  %r" % (command, got, patterns))
        return matches

    def expect_stderr(self, fragment):
        wait_for(lambda: fragment in self.stderr_text(), LINE_DEADLINE_S, "%s's stderr to say %r" % (self.label, fragment))

    def finish(self, close_stdin_lines, expected_tail, code_wanted=0):
        """Sends the last lines (or closes stdin for EOF), asserts the remaining output and the exit code: a piped
        shell exits 0 when every answer was OK, 1 after a FAIL line, 2 after a connection error."""
        for line in close_stdin_lines:
            self.send(line)
        self.proc.stdin.close()
        tail = []
        end = time.monotonic() + EXIT_DEADLINE_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                self.fail("did not finish its output within %ds; got %r" % (EXIT_DEADLINE_S, tail))
            if line is None:
                break
            tail.append(line)
        code = self.proc.wait(timeout=EXIT_DEADLINE_S)
        for t in self.readers:
            t.join(timeout=EXIT_DEADLINE_S)
        if tail != expected_tail:
            self.fail("final output %r, expected %r" % (tail, expected_tail))
        if code != code_wanted:
            self.fail("exit code %d, expected %d" % (code, code_wanted))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_DEADLINE_S)


def run_peer(peer_bin, args, input_text=None, env=None, deadline_s=EXIT_DEADLINE_S):
    """Runs zshare-peer once; returns (exit code, stdout, stderr, seconds taken)."""
    start = time.monotonic()
    done = subprocess.run([peer_bin] + args, input=input_text, capture_output=True, text=True, env=env,
                          timeout=deadline_s)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def check_run(label, result, code, stdout=None, stdout_lines=None, stderr_has=None):
    got_code, got_out, got_err, _ = result
    problems = []
    if got_code != code:
        problems.append("exit code %d, expected %d" % (got_code, code))
    if stdout is not None and got_out != stdout:
        problems.append("stdout %r, expected %r" % (got_out, stdout))
    if stdout_lines is not None and got_out.splitlines() != stdout_lines:
        problems.append("stdout lines %r, expected %r" % (got_out.splitlines(), stdout_lines))
    if stderr_has is not None and stderr_has not in got_err:
        problems.append("stderr lacks %r" % stderr_has)
    if problems:
        raise AssertionError("%s: %s\n--- stdout:\n%s--- stderr:\n%s" % (label, "; ".join(problems), got_out, got_err))


class Files:
    """Real files in a temporary directory, with the content ids the broker should list."""

    def __init__(self, root):
        self.root = root

    def make(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        return path, len(data), cid_of_file(path)


def test_two_user_session(peer_bin, broker, files):
    """alice and bob, each in their own shell: every operation and every failure status."""
    song, song_size, song_cid = files.make("song.mp3", b"ID3" + bytes(range(256)) * 1200)  # > one 256 KiB chunk
    notes, notes_size, notes_cid = files.make("notes.txt", b"great ideas\n")
    empty, empty_size, empty_cid = files.make("empty.dat", b"")
    tune, tune_size, tune_cid = files.make("tune.ogg", b"OggS bob's tune")
    out_path = os.path.join(files.root, "downloaded.mp3")

    alice_port = free_port()
    alice_keys = os.path.join(files.root, "alice-keys")  # two people, two keypairs: each owns what it registers
    bob_keys = os.path.join(files.root, "bob-keys")
    alice = ShellProcess(peer_bin, broker, "alice", shell_args=["--listen", "tcp://127.0.0.1:%d" % alice_port],
                         key_dir=alice_keys)
    bob = ShellProcess(peer_bin, broker, "bob", shell_args=["--advertise", "localhost"], key_dir=bob_keys)
    shells = [alice, bob]
    try:
        assert not port_accepts(alice_port), "the transfer endpoint must not be bound before CONNECT"
        alice.ask("REGISTER alice", ["REGISTER OK"])
        alice.ask("register alice", ["REGISTER FAIL, USERNAME IN USE"])
        bob.ask("Register bob", ["REGISTER OK"])
        alice.ask("UNREGISTER carol", ["UNREGISTER FAIL, USER DOES NOT EXIST"])

        # Before CONNECT the shell refuses, without asking the broker.
        alice.ask("PUBLISH %s A great song" % song, ["PUBLISH FAIL, USER NOT CONNECTED"])
        alice.ask("DELETE song.mp3", ["DELETE FAIL, USER NOT CONNECTED"])

        alice.ask("CONNECT carol", ["CONNECT FAIL, USER DOES NOT EXIST"])
        wait_for(lambda: not port_accepts(alice_port), 5, "a failed CONNECT to unbind the transfer endpoint")
        alice.ask("CONNECT alice", ["CONNECT OK"])
        wait_for(lambda: port_accepts(alice_port), 5, "alice's transfer ROUTER to listen after CONNECT")
        bob.ask("CONNECT alice", ["CONNECT FAIL, DENIED"])  # another key: refused before the session state
        alice.ask("connect alice", ["CONNECT FAIL, USER ALREADY CONNECTED"])
        assert port_accepts(alice_port), "a refused second CONNECT must not unbind the session's endpoint"
        bob.ask("UNREGISTER alice", ["UNREGISTER FAIL, DENIED"])
        bob.ask("CONNECT bob", ["CONNECT OK"])

        alice.ask("PUBLISH %s A great song" % song, ["PUBLISH OK"])
        alice.ask("PUBLISH %s the same bytes, again" % song, ["PUBLISH FAIL, CONTENT ALREADY PUBLISHED"])
        alice.ask("PUBLISH %s   Meeting notes:  great  ideas  " % notes, ["PUBLISH OK"])
        alice.ask("PUBLISH %s" % empty, ["PUBLISH OK"])
        bob.ask("PUBLISH %s Another great tune" % tune, ["PUBLISH OK"])

        users = bob.ask_matching("LIST_USERS", [r"LIST_USERS OK", r"alice tcp://127\.0\.0\.1:%d" % alice_port,
                                                r"bob tcp://localhost:(\d+)"])
        bob_port = int(users[2].group(1))
        wait_for(lambda: port_accepts(bob_port), 5, "bob's advertised port to be his bound transfer ROUTER")
        probe = broker.client()
        try:
            listed = {u["user"]: u["key"] for u in probe.call("LIST_USERS")["users"]}
        finally:
            probe.close()
        want = {"alice": broker.peer_public_key(alice_keys), "bob": broker.peer_public_key(bob_keys)}
        assert listed == want and want["alice"] != want["bob"], \
            "each user is listed with the key of the shell that registered it: %r, expected %r" % (listed, want)

        alice.ask("LIST_CONTENT alice", [
            "LIST_CONTENT OK",
            "empty.dat\t%d\t%s\t" % (empty_size, empty_cid),
            "notes.txt\t%d\t%s\tMeeting notes:  great  ideas" % (notes_size, notes_cid),
            "song.mp3\t%d\t%s\tA great song" % (song_size, song_cid),
        ])
        alice.ask("LIST_CONTENT bob", ["LIST_CONTENT OK", "tune.ogg\t%d\t%s\tAnother great tune" % (tune_size, tune_cid)])
        alice.ask("LIST_CONTENT carol", ["LIST_CONTENT FAIL, USER DOES NOT EXIST"])

        alice_ep = "tcp://127.0.0.1:%d" % alice_port
        bob_ep = "tcp://localhost:%d" % bob_port
        song_line = "alice\tsong.mp3\t%d\t%s\t%s\tA great song" % (song_size, song_cid, alice_ep)
        notes_line = "alice\tnotes.txt\t%d\t%s\t%s\tMeeting notes:  great  ideas" % (notes_size, notes_cid, alice_ep)
        tune_line = "bob\ttune.ogg\t%d\t%s\t%s\tAnother great tune" % (tune_size, tune_cid, bob_ep)
        bob.ask_unordered("SEARCH GREAT", "SEARCH OK", [song_line, notes_line, tune_line])
        bob.ask("search great song", ["SEARCH OK", song_line])
        bob.ask("SEARCH nothing-matches-this", ["SEARCH OK"])
        bob.ask("SEARCH", ["SEARCH FAIL, BAD REQUEST"])

        # A shell whose SEARCH pages hold one result must follow `next` to print them all.
        pager = ShellProcess(peer_bin, broker, "pager", shell_args=["--page-size", "1"])
        shells.append(pager)
        pager.ask_unordered("SEARCH great", "SEARCH OK", [song_line, notes_line, tune_line])
        fetched_unconnected = os.path.join(files.root, "pager-song.mp3")  # fetching needs no CONNECT
        pager.ask("GET_FILE alice song.mp3 %s" % fetched_unconnected, ["GET_FILE OK"])
        assert cid_of_file(fetched_unconnected) == song_cid, "GET_FILE without CONNECT writes the published bytes"
        pager.finish([], ["QUIT OK"])

        missing_path = os.path.join(files.root, "never-written.txt")
        bob.ask("GET_FILE alice missing.txt %s" % missing_path, ["GET_FILE FAIL, FILE NOT EXIST"])
        bob.ask("GET_FILE carol song.mp3 %s" % missing_path, ["GET_FILE FAIL, USER DOES NOT EXIST"])
        assert not os.path.exists(missing_path), "a failed GET_FILE must not write its destination"
        bob.ask("GET_FILE alice song.mp3 %s" % out_path, ["GET_FILE OK"])
        assert cid_of_file(out_path) == song_cid, "GET_FILE must write exactly the published bytes"
        assert not os.path.exists(out_path + ".part"), "a finished download leaves no .part behind"

        alice.ask("DELETE notes.txt", ["DELETE OK"])
        alice.ask("DELETE notes.txt", ["DELETE FAIL, CONTENT NOT PUBLISHED"])
        alice.ask("DISCONNECT alice", ["DISCONNECT OK"])
        wait_for(lambda: not port_accepts(alice_port), 5, "DISCONNECT to unbind alice's transfer endpoint")
        alice.ask("DISCONNECT alice", ["DISCONNECT FAIL, USER NOT CONNECTED"])
        alice.ask("PUBLISH %s back again" % notes, ["PUBLISH FAIL, USER NOT CONNECTED"])

        # The owner is offline: the broker finds the file, the shell cannot fetch it (after waiting for the owner
        # to come back, which it does not). SEARCH shows online sources; SEARCH --all the offline owner's file too.
        bob.ask("GET_FILE alice song.mp3 %s" % out_path, ["GET_FILE FAIL, USER NOT CONNECTED"])
        bob.ask("SEARCH song", ["SEARCH OK"])
        bob.ask("SEARCH --all song", ["SEARCH OK", "alice\tsong.mp3\t%d\t%s\t\tA great song" % (song_size, song_cid)])
        bob.ask("search --ALL tune", ["SEARCH OK", tune_line])  # bob is online: found either way

        # Usage errors: BAD REQUEST on stdout, the usage sentence on stderr; an unknown command too (its own FAIL
        # line, so a script reading one answer per command keeps its place).
        alice.ask("REGISTER", ["REGISTER FAIL, BAD REQUEST"])
        alice.expect_stderr("usage: REGISTER <user>")
        alice.ask("REGISTER bad/name", ["REGISTER FAIL, BAD REQUEST"])
        alice.ask("GET_FILE bob", ["GET_FILE FAIL, BAD REQUEST"])
        alice.ask("FROBNICATE now", ["FROBNICATE FAIL, BAD REQUEST"])
        alice.expect_stderr("unknown command 'FROBNICATE'")
        alice.send("")  # a blank line and a comment answer nothing
        alice.send("# a comment")
        alice.ask("help delete", ["HELP OK", "DELETE <name>\twithdraws a published file (needs CONNECT)"])

        alice.ask("UNREGISTER alice", ["UNREGISTER OK"])
        alice.ask("UNREGISTER alice", ["UNREGISTER FAIL, USER DOES NOT EXIST"])
        bob.ask("LIST_CONTENT alice", ["LIST_CONTENT FAIL, USER DOES NOT EXIST"])
        bob.ask("LIST_USERS", ["LIST_USERS OK", "bob %s" % bob_ep])

        # The broker's own sentences reach stderr.
        alice.expect_stderr("REGISTER: ")
        bob.expect_stderr("CONNECT: ")

        bob.finish(["QUIT"], ["DISCONNECT OK", "QUIT OK"], 1)  # QUIT disconnects first; bob saw FAIL lines: 1
        wait_for(lambda: not port_accepts(bob_port), 5, "QUIT to unbind bob's transfer endpoint")
        alice.finish([], ["QUIT OK"], 1)                        # end of input acts as QUIT

        probe = broker.client()
        try:
            reply = probe.call("LIST_USERS")
            assert reply["status"] == "OK" and reply["users"] == [], "after QUIT nobody is online: %r" % reply
        finally:
            probe.close()
    finally:
        for s in shells:
            s.kill()


def test_piped_console(peer_bin, broker):
    """The issue's example: printf 'REGISTER ...\\nQUIT\\n' | zshare-peer shell; no prompt when piped. The exit
    code says whether every command succeeded: 0, else 1 after any FAIL line (an unknown command prints one)."""
    result = run_peer(peer_bin, broker.peer_args() + ["shell"], input_text="REGISTER dave\nQUIT\n")
    check_run("piped shell", result, 0, stdout="REGISTER OK\nQUIT OK\n")
    result = run_peer(peer_bin, broker.peer_args() + ["shell"],
                      input_text="REGISTER dave\nLIST_CONTENT dave\nUNREGISTER dave\n")
    check_run("piped shell, one FAIL then OKs", result, 1,
              stdout="REGISTER FAIL, USERNAME IN USE\nLIST_CONTENT OK\nUNREGISTER OK\nQUIT OK\n")
    result = run_peer(peer_bin, broker.peer_args() + ["shell"], input_text="LIST_USER\nLIST_USERS\n")
    check_run("piped shell, an unknown command", result, 1, stdout="LIST_USER FAIL, BAD REQUEST\nLIST_USERS OK\nQUIT OK\n",
              stderr_has="unknown command 'LIST_USER'")
    result = run_peer(peer_bin, broker.peer_args() + ["shell"], input_text="HELP QUIT\nHELP FROB\n")
    check_run("piped HELP", result, 1, stderr_has="HELP: unknown command 'FROB'", stdout_lines=[
        "HELP OK", "QUIT\tdisconnects cleanly and leaves (also end of input, Ctrl-D)", "HELP FAIL, BAD REQUEST",
        "QUIT OK"])
    code, out, _, _ = run_peer(peer_bin, broker.peer_args() + ["shell"], input_text="help\n")
    lines = out.splitlines()
    if code != 0 or lines[0] != "HELP OK" or lines[-1] != "QUIT OK" or len(lines) != 2 + 12 or \
            not all(re.fullmatch(r"[A-Z_]+( \S.*)?\t\S.*", line) for line in lines[1:-1]):
        raise AssertionError("HELP lists each command on one '<usage>\\t<what it does>' line: exit %d, %r" % (code, out))


def test_prompt_on_a_tty(peer_bin, broker):
    """With a terminal on stdin (stdout a pipe: no line editing) the console prompts `zshare> `."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([peer_bin] + broker.peer_args() + ["shell"], stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(master, b"LIST_USERS\nQUIT\n")
        out, err = proc.communicate(timeout=EXIT_DEADLINE_S)
    finally:
        os.close(master)
        os.close(slave)
    if proc.returncode != 0 or not out.startswith("zshare> LIST_USERS OK\n") or "zshare> QUIT OK\n" not in out:
        raise AssertionError("tty shell: exit %s, stdout %r, stderr %r" % (proc.returncode, out, err))


class PtyShell:
    """`zshare-peer shell` with a pseudo-terminal on stdin and stdout: the line editor's side (what a person sees)."""

    def __init__(self, argv, env, stderr_on_terminal=False):
        """The terminal is the process's controlling terminal (its own session), so Ctrl-C typed there is a SIGINT
        from the line discipline, as at a real terminal. `stderr_on_terminal`: stderr shows there too (where `get`'s
        progress line is drawn); else it goes to a file, shown when a wait fails."""
        self.master, slave = pty.openpty()
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave if stderr_on_terminal else self.stderr,
                                     env=env, close_fds=True, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.seen = ""  # everything the terminal showed, CRs dropped
        self.mark = 0   # wait_for() looks after here

    def type(self, text):
        os.write(self.master, text.encode())

    def wait_for(self, fragment, what):
        """Waits until `fragment` shows after the last mark; moves the mark past it."""
        end = time.monotonic() + LINE_DEADLINE_S
        while True:
            at = self.seen.find(fragment, self.mark)
            if at >= 0:
                self.mark = at + len(fragment)
                return
            left = end - time.monotonic()
            if left <= 0:
                self.stderr.seek(0)
                raise AssertionError("the terminal did not show %r (%s) within %ds; after the mark it shows %r\n"
                                     "--- stderr:\n%s" % (fragment, what, LINE_DEADLINE_S, self.seen[self.mark:],
                                                          self.stderr.read().decode(errors="replace")))
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    data = b""
                if not data and self.proc.poll() is not None:
                    continue
                self.seen += data.decode(errors="replace").replace("\r", "")

    def wait_for_prompt(self, prompt, what):
        """Waits for `prompt`, then for the editor to take the terminal (canonical mode off): this libedit writes
        the prompt before it does, and a Ctrl-D typed in between is the line discipline's end-of-file, not a key."""
        self.wait_for(prompt, what)
        wait_for(lambda: not termios.tcgetattr(self.master)[3] & termios.ICANON or self.proc.poll() is not None,
                 LINE_DEADLINE_S, "the line editor to take the terminal after " + what)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=EXIT_DEADLINE_S)
        os.close(self.master)
        self.stderr.close()


def test_line_editing_on_a_terminal(peer_bin, broker, files):
    """On a terminal (stdin and stdout) the console edits lines: Tab completes a command name, Up recalls the
    previous line, the prompt names the connected user, Ctrl-D quits (disconnecting first), history is kept."""
    state = os.path.join(files.root, "state")
    env = dict(os.environ, TERM="xterm", XDG_STATE_HOME=state)
    env.pop("ZSHARE_HOME", None)
    shell = PtyShell([peer_bin] + broker.peer_args(os.path.join(files.root, "tty-keys")) + ["shell"], env)
    try:
        shell.wait_for_prompt("zshare> ", "the first prompt")
        # What the terminal echoes is the editor's redrawing; the answer is the proof: "he" alone is no command.
        shell.type("he\t")  # lower case stays lower case
        shell.wait_for("lp", "Tab completing 'he'")
        shell.type("\r")
        shell.wait_for("HELP OK\n", "HELP's status line")
        shell.wait_for("QUIT\tdisconnects cleanly", "HELP's last line")
        shell.wait_for_prompt("zshare> ", "the prompt after HELP")
        shell.type("HELP LIST_C\t")  # HELP's argument completes too
        shell.wait_for("ONTENT", "Tab completing HELP's argument")
        shell.type("\r")
        shell.wait_for("HELP OK\nLIST_CONTENT <user>\t", "HELP LIST_CONTENT")
        shell.type("REGISTER tty\r")
        shell.wait_for("REGISTER OK\n", "REGISTER")
        shell.type("CONNECT tty\r")
        shell.wait_for("CONNECT OK\n", "CONNECT")
        shell.wait_for_prompt("zshare(tty)> ", "the prompt naming the connected user")
        shell.type("\x1b[A")  # Up: the previous line comes back
        shell.wait_for("CONNECT tty", "Up recalling the previous line")
        shell.type("\r")
        shell.wait_for("CONNECT FAIL, USER ALREADY CONNECTED\n", "the recalled CONNECT")
        shell.wait_for_prompt("zshare(tty)> ", "the prompt after the recalled line")
        shell.type("\x04")  # Ctrl-D on an empty line: QUIT, which disconnects first
        shell.wait_for("DISCONNECT OK\nQUIT OK\n", "Ctrl-D quitting cleanly")
        code = shell.proc.wait(timeout=EXIT_DEADLINE_S)
        if code != 0:
            raise AssertionError("the terminal shell exited %d, expected 0" % code)
        with open(os.path.join(state, "zshare", "shell_history")) as f:
            history = f.read().replace("\\040", " ")  # libedit's format: a space is written \040
        if "CONNECT tty" not in history or "REGISTER tty" not in history:
            raise AssertionError("the history file lacks the typed lines: %r" % history)
    finally:
        shell.close()
    probe = broker.client()
    try:
        reply = probe.call("LIST_USERS")
        assert "tty" not in [u["user"] for u in reply["users"]], "Ctrl-D disconnected tty: %r" % reply
    finally:
        probe.close()


def test_ctrl_c_on_a_terminal(peer_bin, broker, files):
    """Ctrl-C at the console drops the line being typed, and stops a running GET_FILE (INTERRUPTED, the .part
    kept), never the console. GET_FILE needs no CONNECT and draws `get`'s progress line on the terminal."""
    big, _, _ = files.make("slow-film.bin", bytes(range(256)) * (16 * 1024))  # 4 MiB
    out_path = os.path.join(files.root, "slow-film-copy.bin")
    # A seeder capped at 256 KiB/s: the download runs for seconds, long enough to interrupt.
    seeder = ShellProcess(peer_bin, broker, "slow", shell_args=["--rate-limit", "256K"],
                          key_dir=os.path.join(files.root, "slow-keys"))
    env = dict(os.environ, TERM="xterm", XDG_STATE_HOME=os.path.join(files.root, "state-ctrl-c"))
    env.pop("ZSHARE_HOME", None)
    shell = PtyShell([peer_bin] + broker.peer_args(os.path.join(files.root, "ctrl-c-keys")) + ["shell"], env,
                     stderr_on_terminal=True)
    try:
        seeder.ask("REGISTER slow", ["REGISTER OK"])
        seeder.ask("CONNECT slow", ["CONNECT OK"])
        seeder.ask("PUBLISH %s a film served slowly" % big, ["PUBLISH OK"])

        shell.wait_for_prompt("zshare> ", "the first prompt")
        shell.type("LIST_USERS half typed")
        shell.wait_for("half typed", "the typed text echoed")
        shell.type("\x03")  # Ctrl-C: the line goes, the console stays
        shell.wait_for_prompt("^C\nzshare> ", "Ctrl-C ending the line with a new prompt")
        shell.type("LIST_USERS\r")  # nothing of the dropped line is left in the editor
        shell.wait_for("LIST_USERS OK\nslow ", "the next command answered on its own")
        shell.wait_for_prompt("zshare> ", "the prompt after LIST_USERS")

        shell.type("GET_FILE slow slow-film.bin %s\r" % out_path)  # no CONNECT first
        shell.wait_for("\nslow-film.bin  ", "GET_FILE's progress line, starting with the file's name")
        shell.wait_for(" / 4.0 MiB ", "the progress line's byte count")
        shell.wait_for(" ETA ", "the progress line's ETA")
        wait_for(lambda: os.path.exists(out_path + ".part") and os.path.getsize(out_path + ".part") > 0,
                 LINE_DEADLINE_S, "the download to write its .part")
        shell.type("\x03")
        shell.wait_for("GET_FILE FAIL, INTERRUPTED\n", "Ctrl-C stopping GET_FILE")
        shell.wait_for_prompt("zshare> ", "the prompt after the interrupted GET_FILE")
        assert os.path.exists(out_path + ".part") and not os.path.exists(out_path), \
            "an interrupted GET_FILE keeps its .part and writes no destination"
        shell.type("QUIT\r")
        shell.wait_for("QUIT OK\n", "QUIT after the interrupted GET_FILE")
        code = shell.proc.wait(timeout=EXIT_DEADLINE_S)
        if code != 0:
            raise AssertionError("the console exited %d after Ctrl-C, expected 0 (QUIT)" % code)
        seeder.finish(["QUIT"], ["DISCONNECT OK", "QUIT OK"])
    finally:
        shell.close()
        seeder.kill()


def test_json_output(peer_bin, broker, files):
    """--json: one JSON object per response, the reply's fields plus "command"."""
    report, report_size, report_cid = files.make("q3-report.pdf", b"%PDF quarterly report")
    draft, _, draft_cid = files.make("draft-report.txt", b"draft of the report")
    script = "\n".join([
        "REGISTER erin", "CONNECT erin", "PUBLISH %s quarterly report" % report, "PUBLISH %s draft" % draft,
        "LIST_USERS", "LIST_CONTENT erin", "SEARCH quarterly", "REGISTER erin", "DELETE nothing.txt", "QUIT"]) + "\n"
    code, out, err, _ = run_peer(peer_bin, broker.peer_args() + ["--json", "shell"], input_text=script)
    if code != 1:  # REGISTER erin and DELETE nothing.txt fail
        raise AssertionError("json shell exited %d, expected 1: %s" % (code, err))
    try:
        objects = [json.loads(line) for line in out.splitlines()]
    except ValueError as e:
        raise AssertionError("--json printed a line that is not JSON (%s):\n%s" % (e, out))
    commands = [(o.get("command"), o.get("status")) for o in objects]
    expected = [("REGISTER", "OK"), ("CONNECT", "OK"), ("PUBLISH", "OK"), ("PUBLISH", "OK"), ("LIST_USERS", "OK"),
                ("LIST_CONTENT", "OK"), ("SEARCH", "OK"), ("REGISTER", "USERNAME IN USE"),
                ("DELETE", "CONTENT NOT PUBLISHED"), ("DISCONNECT", "OK"), ("QUIT", "OK")]
    if commands != expected:
        raise AssertionError("json commands %r, expected %r" % (commands, expected))
    by_command = {o["command"]: o for o in objects}
    files_listed = {f["name"]: f for f in by_command["LIST_CONTENT"]["files"]}
    report_entry = files_listed.get("q3-report.pdf", {})
    assert report_entry.get("cid") == report_cid and report_entry.get("size") == report_size, \
        "LIST_CONTENT's files: %r" % files_listed
    assert files_listed.get("draft-report.txt", {}).get("cid") == draft_cid, "LIST_CONTENT's files: %r" % files_listed
    assert [r["name"] for r in by_command["SEARCH"]["results"]] == ["q3-report.pdf"], by_command["SEARCH"]
    assert by_command["SEARCH"]["next"] is None, "SEARCH followed every page: %r" % by_command["SEARCH"]
    assert [u["user"] for u in by_command["LIST_USERS"]["users"]] == ["erin"], by_command["LIST_USERS"]
    erin_key = broker.peer_public_key()
    assert objects[0].get("key") == erin_key, "--json shows the key that now owns erin: %r" % objects[0]
    assert by_command["LIST_USERS"]["users"][0]["key"] == erin_key, by_command["LIST_USERS"]
    assert by_command["SEARCH"]["results"][0]["key"] == erin_key, by_command["SEARCH"]
    refused = objects[7]
    assert isinstance(refused.get("error"), str) and refused["error"], "a refusal carries the broker's sentence: %r" % refused
    assert re.fullmatch(r"[0-9a-f]{32}:\d+", str(objects[0].get("id"))), "request id format: %r" % objects[0]
    return report_cid, report_size


def test_one_shot_exit_codes(peer_bin, broker, report):
    """Scripts: exit 0 on OK, 1 on a FAIL status, 2 on usage errors."""
    report_cid, report_size = report
    b = broker.peer_args()
    check_run("register", run_peer(peer_bin, b + ["register", "frank"]), 0, stdout="REGISTER OK\n")
    check_run("register again", run_peer(peer_bin, b + ["register", "frank"]), 1,
              stdout="REGISTER FAIL, USERNAME IN USE\n")
    check_run("register without a name", run_peer(peer_bin, b + ["register"]), 2)
    check_run("register an invalid name", run_peer(peer_bin, b + ["register", "no spaces"]), 2,
              stdout="REGISTER FAIL, BAD REQUEST\n", stderr_has="user name")
    check_run("list-users", run_peer(peer_bin, b + ["list-users"]), 0, stdout="LIST_USERS OK\n")
    check_run("list-content", run_peer(peer_bin, b + ["list-content", "frank"]), 0, stdout="LIST_CONTENT OK\n")
    check_run("list-content of nobody", run_peer(peer_bin, b + ["list-content", "nobody"]), 1,
              stdout="LIST_CONTENT FAIL, USER DOES NOT EXIST\n")
    check_run("search without words or --cid", run_peer(peer_bin, b + ["search"]), 2,
              stdout="SEARCH FAIL, BAD REQUEST\n")
    # erin left (QUIT): her files are found with --all only.
    check_run("search --cid, owner offline", run_peer(peer_bin, b + ["search", "--cid", report_cid]), 0,
              stdout="SEARCH OK\n")
    check_run("search --all --cid", run_peer(peer_bin, b + ["search", "--all", "--cid", report_cid]), 0,
              stdout_lines=["SEARCH OK", "erin\tq3-report.pdf\t%d\t%s\t\tquarterly report" % (report_size, report_cid)])
    check_run("search --cid with a bad hash", run_peer(peer_bin, b + ["search", "--cid", "XYZ"]), 2)
    code, out, _, _ = run_peer(peer_bin, b + ["search", "report", "--all", "--limit", "1"])
    if code != 0 or len(out.splitlines()) != 2 or out.splitlines()[0] != "SEARCH OK":
        raise AssertionError("search --all --limit 1 printed %r (exit %d)" % (out, code))
    code, out, _, _ = run_peer(peer_bin, b + ["search", "--all", "report"])
    if code != 0 or len(out.splitlines()) != 3:
        raise AssertionError("search --all report printed %r (exit %d)" % (out, code))
    check_run("unknown option", run_peer(peer_bin, b + ["list-users", "--frobnicate"]), 2)
    check_run("help", run_peer(peer_bin, ["search", "--help"]), 0)

    # The broker (and its key, and the key folder) from the environment, options from a config file, --json after
    # the subcommand. The broker key given as the key itself this time, not its file.
    env = dict(os.environ, ZSHARE_BROKER=broker.control, ZSHARE_BROKER_KEY=broker.public_key,
               ZSHARE_KEY_DIR=broker.peer_key_dir())
    check_run("ZSHARE_BROKER", run_peer(peer_bin, ["list-users"], env=env), 0, stdout="LIST_USERS OK\n")
    config = os.path.join(broker.workdir, "peer.toml")
    with open(config, "w") as f:  # the same key folder as the runs above: frank belongs to that key
        f.write('broker = "%s"\nbroker-key = "%s"\nkey-dir = "%s"\ntimeout = 2\n'
                % (broker.control, broker.public_key_file, broker.peer_key_dir()))
    check_run("--config", run_peer(peer_bin, ["--config", config, "unregister", "frank"]), 0, stdout="UNREGISTER OK\n")
    code, out, err, _ = run_peer(peer_bin, b + ["unregister", "frank", "--json"])
    reply = json.loads(out)
    if code != 1 or reply["command"] != "UNREGISTER" or reply["status"] != "USER DOES NOT EXIST":
        raise AssertionError("unregister --json: exit %d, %r" % (code, out))


def test_unreachable_broker(peer_bin, broker):
    """Nobody listens: a clear message after --timeout, exit 2, never a hang; the shell keeps going."""
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    keys = ["--broker-key", broker.public_key_file, "--key-dir", broker.peer_key_dir()]  # any key: nobody answers
    result = run_peer(peer_bin, ["--broker", endpoint] + keys + ["--timeout", "1", "list-users"])
    check_run("unreachable one-shot", result, 2, stdout="LIST_USERS FAIL, BROKER UNREACHABLE\n",
              stderr_has="the broker at %s did not answer" % endpoint)
    if not 0.9 <= result[3] < 6:
        raise AssertionError("the unreachable broker took %.1fs to report with --timeout 1" % result[3])

    result = run_peer(peer_bin, ["--broker", endpoint] + keys + ["--timeout", "0.5", "shell"],
                      input_text="REGISTER x\nLIST_USERS\nQUIT\n")
    check_run("unreachable shell", result, 2,
              stdout="REGISTER FAIL, BROKER UNREACHABLE\nLIST_USERS FAIL, BROKER UNREACHABLE\nQUIT OK\n",
              stderr_has="did not answer")
    if result[3] > 8:
        raise AssertionError("two unanswered requests of 0.5s took %.1fs" % result[3])

    # A list of brokers: each one is tried, the message names them all; a bad entry is a usage error naming it,
    # from the command line and from ZSHARE_BROKER alike.
    other = "tcp://127.0.0.1:%d" % free_port()
    result = run_peer(peer_bin, ["--broker", "%s,%s" % (endpoint, other)] + keys + ["--timeout", "0.5", "list-users"])
    check_run("two unreachable brokers", result, 2, stdout="LIST_USERS FAIL, BROKER UNREACHABLE\n",
              stderr_has="none of the brokers %s, %s answered within 0.5 s each" % (endpoint, other))
    if not 0.9 <= result[3] < 6:
        raise AssertionError("two unreachable brokers of 0.5s took %.1fs to report" % result[3])
    bad = "%s,tcp://nowhere" % endpoint
    check_run("a bad entry in --broker", run_peer(peer_bin, ["--broker", bad] + keys + ["list-users"]), 2,
              stdout="", stderr_has="'tcp://nowhere' (entry 2 of 2) is not an endpoint")
    env = dict(os.environ, ZSHARE_BROKER=bad)
    check_run("a bad entry in ZSHARE_BROKER", run_peer(peer_bin, keys + ["list-users"], env=env), 2,
              stdout="", stderr_has="'tcp://nowhere' (entry 2 of 2) is not an endpoint")


def test_same_key_shells(peer_bin, broker, files):
    """Two shells of one keypair (one user on one machine): while the first is connected as twin and its seeder
    answers, the second's CONNECT twin is refused before it is sent (the broker would give it the session) and the
    first keeps its session. Once the first is killed (kill -9: its session left open, for 3 x 20 s of promised
    heartbeats), the second's CONNECT takes the session at once."""
    keys = os.path.join(files.root, "twin-keys")
    first = ShellProcess(peer_bin, broker, "twin-1", global_args=["--heartbeat", "20"], key_dir=keys)
    second = ShellProcess(peer_bin, broker, "twin-2", key_dir=keys)
    probe = broker.client()
    try:
        def listed():
            return [(u["user"], u["endpoint"]) for u in probe.call("LIST_USERS")["users"] if u["user"] == "twin"]
        first.ask("REGISTER twin", ["REGISTER OK"])
        first.ask("CONNECT twin", ["CONNECT OK"])
        before = listed()
        second.ask("CONNECT twin", ["CONNECT FAIL, USER ALREADY CONNECTED"])
        second.expect_stderr("is already served from %s by another running zshare-peer" % before[0][1])
        if listed() != before:
            raise AssertionError("the refused CONNECT changed the session: %r, then %r" % (before, listed()))
        first.kill()
        killed_at = time.monotonic()
        second.ask("CONNECT twin", ["CONNECT OK"])
        took = time.monotonic() - killed_at
        after = listed()
        if took >= 20 or len(after) != 1 or after == before:
            raise AssertionError("the second shell took the session %.1f s after the kill: %r, then %r"
                                 % (took, before, after))
        second.finish(["QUIT"], ["DISCONNECT OK", "QUIT OK"], code_wanted=1)  # its first CONNECT was a FAIL
    finally:
        probe.close()
        first.kill()
        second.kill()


def test_plaintext_session(broker_bin, peer_bin, files):
    """A lab network: broker and peers all run --plaintext and each says so once on stderr; the console works as
    over CurveZMQ, a file goes from one shell's seeder to another's download, and users carry no key."""
    plain_dir = os.path.join(files.root, "plaintext")
    os.makedirs(plain_dir)
    broker = Broker(broker_bin, workdir=os.path.join(plain_dir, "broker"), plaintext=True)
    shells = []
    try:
        broker.start()
        warnings = [line for line in broker.stderr().splitlines() if "WARNING" in line]
        if len(warnings) != 1 or "--plaintext" not in warnings[0]:
            raise AssertionError("a --plaintext broker warns once on stderr: %r" % broker.stderr())
        path, _, cid = Files(plain_dir).make("lab-data.bin", bytes(range(256)) * 2000)
        out_path = os.path.join(plain_dir, "fetched.bin")
        lab = ShellProcess(peer_bin, broker, "lab")
        user = ShellProcess(peer_bin, broker, "lab-user")
        shells += [lab, user]
        for s in shells:
            s.expect_stderr("WARNING: --plaintext")
        lab.ask("REGISTER lab", ["REGISTER OK"])
        user.ask("CONNECT lab", ["CONNECT OK"])  # bound to no key: any plaintext peer may act as lab
        user.ask("DISCONNECT lab", ["DISCONNECT OK"])
        lab.ask("CONNECT lab", ["CONNECT OK"])
        lab.ask("PUBLISH %s lab data" % path, ["PUBLISH OK"])
        user.ask("REGISTER visitor", ["REGISTER OK"])
        user.ask("CONNECT visitor", ["CONNECT OK"])
        user.ask("GET_FILE lab lab-data.bin %s" % out_path, ["GET_FILE OK"])
        assert cid_of_file(out_path) == cid, "GET_FILE over --plaintext must write exactly the published bytes"
        probe = broker.client()
        try:
            reply = probe.call("SEARCH", q="lab")
        finally:
            probe.close()
        assert [(r["user"], r["online"], r["key"]) for r in reply["results"]] == [("lab", True, "")], \
            "over --plaintext users carry an empty key: %r" % reply
        lab.finish(["DISCONNECT lab", "UNREGISTER lab"], ["DISCONNECT OK", "UNREGISTER OK", "QUIT OK"])  # all OK: 0
        user.finish(["QUIT"], ["DISCONNECT OK", "QUIT OK"])
        for s in shells:
            warned = [line for line in s.stderr_text().splitlines() if "WARNING" in line]
            if len(warned) != 1:
                s.fail("a --plaintext peer warns exactly once: %r" % warned)
    finally:
        for s in shells:
            s.kill()
        broker.cleanup()


def main():
    parser = argparse.ArgumentParser(description="zshare-peer console and one-shot process tests")
    parser.add_argument("--broker-bin", required=True)
    parser.add_argument("--peer-bin", required=True)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="zshare-shell-")
    files = Files(workdir)
    broker = Broker(args.broker_bin)
    failures = 0
    try:
        broker.start()
        json_report = None  # (cid, size) of the file the --json test publishes, for the one-shot test
        tests = [
            ("two-user console session", lambda: test_two_user_session(args.peer_bin, broker, files)),
            ("piped console", lambda: test_piped_console(args.peer_bin, broker)),
            ("prompt on a tty", lambda: test_prompt_on_a_tty(args.peer_bin, broker)),
            ("line editing on a terminal", lambda: test_line_editing_on_a_terminal(args.peer_bin, broker, files)),
            ("Ctrl-C on a terminal", lambda: test_ctrl_c_on_a_terminal(args.peer_bin, broker, files)),
            ("--json output", lambda: test_json_output(args.peer_bin, broker, files)),
            ("one-shot exit codes", lambda: test_one_shot_exit_codes(args.peer_bin, broker, json_report)),
            ("unreachable broker", lambda: test_unreachable_broker(args.peer_bin, broker)),
            ("two shells of one key", lambda: test_same_key_shells(args.peer_bin, broker, files)),
            ("--plaintext session", lambda: test_plaintext_session(args.broker_bin, args.peer_bin, files)),
        ]
        for name, test in tests:
            try:
                value = test()
                if name == "--json output":
                    json_report = value
                print("ok - %s" % name, flush=True)
            except Exception as e:  # report every test, then fail
                failures += 1
                print("FAIL - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
                if name == "--json output":
                    break  # the one-shot test needs its data
        if broker.proc.poll() is not None:
            failures += 1
            print("FAIL - the broker died (exit %s):\n%s" % (broker.proc.returncode, broker.stderr()))
    finally:
        broker.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
