#!/usr/bin/env python3
# examples_test.py: keeps examples/ honest: the Python search client finds what a real broker holds, and
# every daemon accepts its example config file (checked with --help after the file is read) and refuses the
# same file with an unknown key. The broker runs
# over CurveZMQ, as it does by default: the search client is given the broker's public key file.
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from zshare_testlib import Broker

PASSED = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    PASSED.append(what)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker-bin", required=True)
    parser.add_argument("--bin-dir", required=True, help="the build tree")
    parser.add_argument("--examples", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zshare-examples-") as root:
        broker = Broker(args.broker_bin, workdir=root).start()
        try:
            c = broker.client()
            for op, fields in [("REGISTER", {"user": "alice"}),
                               ("CONNECT", {"user": "alice", "endpoint": "tcp://127.0.0.1:7000"}),
                               ("PUBLISH", {"user": "alice", "name": "river-live.flac", "description": "Live at the river",
                                            "size": 42, "cid": "ab" * 32, "chunk_size": 1 << 20})]:
                check(c.call(op, **fields)["status"] == "OK", "%s for the example" % op)
            out = subprocess.run([sys.executable, os.path.join(args.examples, "search_client.py"), "--broker",
                                  broker.control, "--broker-key", broker.public_key_file, "RIVER"],
                                 capture_output=True, text=True, timeout=30)
            check(out.returncode == 0, "search_client.py exits 0: %s" % out.stderr)
            check("alice" in out.stdout and "river-live.flac" in out.stdout and "tcp://127.0.0.1:7000" in out.stdout,
                  "search_client.py prints the match: %r" % out.stdout)
            check("1 file(s)" in out.stderr, "search_client.py counts one file: %r" % out.stderr)
            out = subprocess.run([sys.executable, os.path.join(args.examples, "search_client.py"), "--broker",
                                  broker.control, "RIVER"], capture_output=True, text=True, timeout=30)
            check(out.returncode == 2 and "--broker-key" in out.stderr,
                  "search_client.py without a broker key exits 2 and says to give one: %d %r"
                  % (out.returncode, out.stderr))
            # Its owner offline, the file is found with --all only.
            check(c.call("DISCONNECT", user="alice")["status"] == "OK", "DISCONNECT for the example")
            script = [sys.executable, os.path.join(args.examples, "search_client.py"), "--broker", broker.control,
                      "--broker-key", broker.public_key_file]
            out = subprocess.run(script + ["RIVER"], capture_output=True, text=True, timeout=30)
            check(out.returncode == 0 and "0 file(s)" in out.stderr and out.stdout == "",
                  "search_client.py finds no online source: %r %r" % (out.stdout, out.stderr))
            out = subprocess.run(script + ["--all", "RIVER"], capture_output=True, text=True, timeout=30)
            check(out.returncode == 0 and "river-live.flac" in out.stdout and "offline" in out.stdout,
                  "search_client.py --all prints the offline match: %r %r" % (out.stdout, out.stderr))
            c.close()
        finally:
            broker.cleanup()
    scratch = tempfile.mkdtemp(prefix="zshare-examples-config-")
    try:
        configs = {"broker/zshare-broker": "broker.toml", "rpclog/zshare-rpclog": "rpclog.toml",
                   "timesvc/zshare-timesvc": "timesvc.toml", "peer/zshare-peer": "peer.toml",
                   "relay/zshare-relay": "relay.toml"}
        for binary, config in configs.items():
            done = subprocess.run([os.path.join(args.bin_dir, binary), "--config",
                                   os.path.join(args.examples, "config", config), "--help"],
                                  capture_output=True, text=True, timeout=30)
            check(done.returncode == 0, "%s reads examples/config/%s: %s" % (binary, config, done.stderr))
            # The same file with one key misspelt is refused, naming the key: a typo is never silently ignored.
            with open(os.path.join(args.examples, "config", config)) as f:
                text = f.read()
            typo = os.path.join(scratch, "typo-" + config)
            with open(typo, "w") as f:
                f.write("zshare_no_such_key = 1\n" + text)
            done = subprocess.run([os.path.join(args.bin_dir, binary), "--config", typo, "--help"],
                                  capture_output=True, text=True, timeout=30)
            check(done.returncode == 2 and "unknown key 'zshare_no_such_key'" in done.stderr,
                  "%s refuses an unknown key in its config: exit %d %r" % (binary, done.returncode, done.stderr))
            # Without --config the program reads $XDG_CONFIG_HOME/zshare/<name>.toml (the typo proves it read it),
            # unless $ZSHARE_CONFIG names another file, which wins; a $ZSHARE_CONFIG that does not exist is an error.
            xdg = os.path.join(scratch, "xdg-" + config)
            os.makedirs(os.path.join(xdg, "zshare"))
            shutil.copy(typo, os.path.join(xdg, "zshare", config))
            env = dict(os.environ, XDG_CONFIG_HOME=xdg)
            env.pop("ZSHARE_CONFIG", None)
            env.pop("ZSHARE_HOME", None)
            for label, extra, want in (("XDG_CONFIG_HOME", {}, 2),
                                       ("ZSHARE_CONFIG over XDG",
                                        {"ZSHARE_CONFIG": os.path.join(args.examples, "config", config)}, 0)):
                done = subprocess.run([os.path.join(args.bin_dir, binary), "--help"], env=dict(env, **extra),
                                      capture_output=True, text=True, timeout=30)
                check(done.returncode == want and (want == 0 or "zshare_no_such_key" in done.stderr),
                      "%s reads its default config (%s): exit %d %r" % (binary, label, done.returncode, done.stderr))
            done = subprocess.run([os.path.join(args.bin_dir, binary), "--plaintext"],
                                  env=dict(env, ZSHARE_CONFIG=os.path.join(scratch, "missing.toml")),
                                  capture_output=True, text=True, timeout=30)
            check(done.returncode == 2 and "missing.toml" in done.stderr,
                  "%s: a ZSHARE_CONFIG that does not exist is an error: %d %r" % (binary, done.returncode, done.stderr))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("%d passed, 0 failed" % len(PASSED))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL: %s" % e)
        print("%d passed, 1 failed" % len(PASSED))
        sys.exit(1)
