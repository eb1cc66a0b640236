#!/usr/bin/env python3
# relay_bench_client.py: the two ends of bench/run_relay_bench.sh's transfers, identical for every row: a sender
# writing N MiB of one 1 MiB buffer and then half-closing, and a receiver counting bytes until the end of the stream
# (its time runs from the first byte to the end). Either end may first do zshare-relay's SOCKS5 handshake with a
# token minted here from the secret file (the relay_token spec); the receiver may instead listen (the socat row).
import argparse
import hashlib
import hmac
import os
import socket
import sys
import time


def mint_hosts(secret_file, ttl_s=3600):
    """The pair's two host names, "s.<expiry>.<nonce>.<mac>" and "d....": each side's mac covers its side."""
    secret = bytes.fromhex(open(secret_file).read().strip())
    expiry = int(time.time()) + ttl_s
    nonce = os.urandom(16).hex()
    def side(letter):
        mac = hmac.new(secret, ("zshare-relay-v2|%s|%d|%s" % (letter, expiry, nonce)).encode(),
                       hashlib.sha256).hexdigest()[:32]
        return "%s.%d.%s.%s" % (letter, expiry, nonce, mac)
    return side("s"), side("d")


def connect(address, deadline_s=10):
    """Connects to HOST:PORT, retrying while nothing listens yet (socat starting): its first accept is ours."""
    host, port = address.rsplit(":", 1)
    end = time.monotonic() + deadline_s
    while True:
        try:
            return socket.create_connection((host, int(port)))
        except ConnectionRefusedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def socks_handshake(sock, name):
    sock.sendall(bytes([5, 1, 0]))
    if recv_exactly(sock, 2) != bytes([5, 0]):
        sys.exit("relay_bench_client: the relay refused the SOCKS5 greeting")
    sock.sendall(bytes([5, 1, 0, 3, len(name)]) + name.encode() + bytes([0, 9]))
    reply = recv_exactly(sock, 10)
    if reply[:2] != bytes([5, 0]):
        sys.exit("relay_bench_client: the relay refused the request: %s" % reply.hex())


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            break
        data += part
    return data


def send(args):
    sock = connect(args.connect)
    if args.socks_host:
        socks_handshake(sock, args.socks_host)
    block = memoryview(os.urandom(1 << 20))
    for _ in range(args.mib):
        sock.sendall(block)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(65536):  # until the receiver's end comes back through the relay
        pass


def receive(args):
    if args.listen:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        print(listener.getsockname()[1], flush=True)
        sock, _ = listener.accept()
    else:
        sock = connect(args.connect)
        if args.socks_host:
            socks_handshake(sock, args.socks_host)
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    total = 0
    first = None
    while True:
        n = sock.recv_into(view)
        if n == 0:
            break
        if first is None:
            first = time.monotonic()
        total += n
    took = time.monotonic() - (first or time.monotonic())
    sock.close()
    print("%d %.6f" % (total, took), flush=True)


def main():
    ap = argparse.ArgumentParser(description="the ends of bench/run_relay_bench.sh's transfers")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("token", help="print the pair's two host names (s.... d....), minted from the secret file")
    t.add_argument("--secret-file", required=True)
    s = sub.add_parser("send")
    s.add_argument("--connect", required=True)
    s.add_argument("--socks-host")
    s.add_argument("--mib", type=int, required=True)
    r = sub.add_parser("receive")
    r.add_argument("--connect")
    r.add_argument("--listen", action="store_true")
    r.add_argument("--socks-host")
    args = ap.parse_args()
    if args.command == "token":
        print(*mint_hosts(args.secret_file))
    elif args.command == "send":
        send(args)
    else:
        receive(args)


if __name__ == "__main__":
    main()
