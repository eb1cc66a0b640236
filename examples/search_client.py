#!/usr/bin/env python3
# search_client.py: a zshare client in Python written from schemas/ alone: searches the broker's index
# and prints every matching file, following the pages. Needs Debian's python3-zmq and python3-msgpack.
# Files of online owners only, unless --all; a RATE LIMITED reply is waited out (retry_after_ms) and resent.
#
#   examples/search_client.py --broker tcp://127.0.0.1:5555 river live
#   examples/search_client.py --all --cid <64 hex digits>
import argparse
import sys
import time
import uuid

import msgpack
import zmq


def request(ctx, endpoint, msg, timeout_ms, attempts=3, rate_limited_waits=5):
    """Lazy Pirate (schemas/protocol.md): on silence, close the REQ socket, open a new one, resend the same id;
    on RATE LIMITED, wait retry_after_ms and resend the same id."""
    for _ in range(rate_limited_waits):
        reply = request_once(ctx, endpoint, msg, timeout_ms, attempts)
        if reply.get("status") != "RATE LIMITED":
            return reply
        time.sleep(reply.get("retry_after_ms", 100) / 1000.0)
    return reply


def request_once(ctx, endpoint, msg, timeout_ms, attempts):
    body = msgpack.packb(msg, use_bin_type=True)
    for _ in range(attempts):
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
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
    parser.add_argument("--cid", help="exact content id")
    parser.add_argument("--all", action="store_true", help="also files whose owner is offline")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds for the whole request")
    args = parser.parse_args()
    if not args.words and not args.cid:
        parser.error("give keywords or --cid")

    ctx = zmq.Context.instance()
    prefix, counter, cursor, found = uuid.uuid4().hex, 0, None, 0
    while True:
        counter += 1
        msg = {"v": 1, "op": "SEARCH", "id": "%s:%d" % (prefix, counter), "limit": 100,
               "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "ts_local": True}
        if args.words:
            msg["q"] = " ".join(args.words)
        if args.cid:
            msg["cid"] = args.cid
        if args.all:
            msg["include_offline"] = True
        if cursor is not None:
            msg["cursor"] = cursor
        reply = request(ctx, args.broker, msg, int(args.timeout * 1000 / 3))
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
