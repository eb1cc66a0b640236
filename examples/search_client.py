#!/usr/bin/env python3
# search_client.py: a zshare client in Python written from schemas/ alone: searches the broker's index
# and prints every matching file, following the pages. Needs Debian's python3-zmq and python3-msgpack.
# Files of online owners only, unless --all; a RATE LIMITED reply is waited out (retry_after_ms) and resent.
#
#   examples/search_client.py --broker tcp://127.0.0.1:5555 --broker-key broker.pub river live
#   examples/search_client.py --broker-key broker.pub --all --cid <64 hex digits>
import argparse
import os
import sys
import time
import uuid

import msgpack
import zmq

PROTOCOL_VERSION = 3  # schemas/protocol.md: every request's `v`


def broker_public_key(key_or_path):
    """The broker's CurveZMQ public key: 40 Z85 characters, or a key file's public-key = "..." line."""
    if len(key_or_path) == 40 and not os.path.exists(key_or_path):  # Z85 may hold '/' and '=': files win
        return key_or_path
    with open(key_or_path) as f:
        for line in f:
            if line.strip().startswith("public-key"):
                return line.split('"')[1]
    raise ValueError("%s holds no public-key line" % key_or_path)


def request(ctx, endpoint, server_key, msg, timeout_ms, attempts=3, rate_limited_waits=5):
    """Lazy Pirate (schemas/protocol.md): on silence, close the REQ socket, open a new one, resend the same id;
    on RATE LIMITED, wait retry_after_ms and resend the same id."""
    for _ in range(rate_limited_waits):
        reply = request_once(ctx, endpoint, server_key, msg, timeout_ms, attempts)
        if reply.get("status") != "RATE LIMITED":
            return reply
        time.sleep(reply.get("retry_after_ms", 100) / 1000.0)
    return reply


def request_once(ctx, endpoint, server_key, msg, timeout_ms, attempts):
    """One Lazy Pirate request. Over CurveZMQ (protocol.md, Security) a searcher needs only the broker's key
    and a keypair of its own."""
    body = msgpack.packb(msg, use_bin_type=True)
    for _ in range(attempts):
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if server_key:
            sock.curve_serverkey = server_key.encode()
            sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.connect(endpoint)
        sock.send(body)
        if sock.poll(timeout_ms) & zmq.POLLIN:
            reply = msgpack.unpackb(sock.recv(), raw=False)
            sock.close()
            return reply
        sock.close()
    raise TimeoutError("no answer from %s" % endpoint)


def main():
    parser = argparse.ArgumentParser(description="search a zshare index")
    parser.add_argument("words", nargs="*", help="keywords; a file matches when it has them all")
    parser.add_argument("--broker", default="tcp://127.0.0.1:5555")
    parser.add_argument("--broker-key", help="the broker's public key or its .pub file (CurveZMQ)")
    parser.add_argument("--plaintext", action="store_true", help="for a broker run with --plaintext")
    parser.add_argument("--cid", help="exact content id")
    parser.add_argument("--all", action="store_true", help="also files whose owner is offline")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds for the whole request")
    args = parser.parse_args()
    if not args.words and not args.cid:
        parser.error("give keywords or --cid")
    if not args.broker_key and not args.plaintext:
        parser.error("give --broker-key (the broker's public key or .pub file), or --plaintext")
    server_key = None if args.plaintext else broker_public_key(args.broker_key)

    ctx = zmq.Context.instance()
    prefix, counter, cursor, found = uuid.uuid4().hex, 0, None, 0
    while True:
        counter += 1
        msg = {"v": PROTOCOL_VERSION, "op": "SEARCH", "id": "%s:%d" % (prefix, counter), "limit": 100,
               "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "ts_local": True}
        if args.words:
            msg["q"] = " ".join(args.words)
        if args.cid:
            msg["cid"] = args.cid
        if args.all:
            msg["include_offline"] = True
        if cursor is not None:
            msg["cursor"] = cursor
        reply = request(ctx, args.broker, server_key, msg, int(args.timeout * 1000 / 3))
        if reply["status"] != "OK":
            print("SEARCH FAIL, %s: %s" % (reply["status"], reply.get("error", "")), file=sys.stderr)
            return 1
        for r in reply["results"]:
            found += 1
            state = "online " + r["endpoint"] if r["online"] else "offline"
            print("%-16s %-40s %12d  %s  %s" % (r["user"], r["name"], r["size"], r["cid"][:16], state))
        if reply["next"] is None:
            break
        cursor = reply["next"]
    print("%d file(s)" % found, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
