#!/usr/bin/python3
# timesvc_test.py: a real zshare-timesvc on a free loopback port, driven by a non-C++ SOAP client (Debian's
# python3-zeep) from the WSDL the service serves: every operation, formats, consistency, 8 concurrent
# clients, keep-alive, bad requests, and SIGTERM -> exit 0. The first failed check stops the run (exit 1).
import argparse
import concurrent.futures
import datetime
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import zeep

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from zshare_testlib import CheckFailed, Checks, free_port, wait_for  # noqa: E402

SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SEEDS_RE = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
SLACK_MS = 2000  # same host, same clock: only scheduling (and a clock step) separates the readings


CHECKS = Checks()


def now_ms():
    return int(time.time() * 1000)


def iso_to_ms(s):
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp() * 1000 + 0.5)  # %f has milliseconds only, so this is exact


def seeds_to_s(s):
    dt = datetime.datetime.strptime(s, "%d/%m/%Y %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp())


class TimeSvc:
    """A real zshare-timesvc process on a free loopback port."""

    def __init__(self, binary, threads=2):
        self.binary = binary
        self.port = free_port()
        self.threads = threads
        self.workdir = tempfile.mkdtemp(prefix="zshare-timesvc-test-")
        self.out_path = os.path.join(self.workdir, "timesvc.out")
        self.proc = None

    def start(self, deadline_s=10):
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--threads", str(self.threads)],
                stdout=out, stderr=subprocess.STDOUT)

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError("zshare-timesvc exited with %s: %s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_for(listening, deadline_s, "zshare-timesvc to listen on port %d" % self.port)
        return self

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def output(self):
        with open(self.out_path, "r", errors="replace") as f:
            return f.read()

    def terminate(self, deadline_s=10):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=deadline_s)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def check_wsdl(svc):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=5)
    conn.request("GET", "/?wsdl")
    resp = conn.getresponse()
    body = resp.read().decode("utf-8")
    CHECKS.ok(resp.status == 200, "GET /?wsdl: status %d" % resp.status)
    CHECKS.ok("xml" in (resp.getheader("Content-Type") or ""), "GET /?wsdl: Content-Type %s"
              % resp.getheader("Content-Type"))
    with open(os.path.join(SCHEMAS, "timesvc.wsdl"), encoding="utf-8") as f:
        committed = f.read()
    CHECKS.ok('location="%s"' % svc.base in body, "served WSDL points at the address it was fetched from")
    CHECKS.ok(body.replace(svc.base, "http://127.0.0.1:8080") == committed,
              "served WSDL is schemas/timesvc.wsdl (but for the address)")

    # Keep-alive: a second request travels on the same connection.
    sock_before = conn.sock
    CHECKS.ok(sock_before is not None and (resp.getheader("Connection") or "").lower() == "keep-alive",
              "GET /?wsdl keeps the connection alive (Connection: %s)" % resp.getheader("Connection"))
    conn.request("GET", "/?wsdl")
    resp = conn.getresponse()
    resp.read()
    CHECKS.ok(resp.status == 200 and conn.sock is sock_before, "second request on the same connection")

    conn.request("GET", "/no-such-thing")
    resp = conn.getresponse()
    resp.read()
    CHECKS.ok(resp.status == 404, "GET /no-such-thing: 404 (got %d)" % resp.status)
    conn.close()


def check_operations(client):
    ops = set(client.service._binding._operations.keys())
    CHECKS.ok(ops == {"now", "getIso8601", "getEpochMs", "getSeeds"}, "WSDL operations: %s" % sorted(ops))

    before = now_ms()
    r = client.service.now()
    after = now_ms()
    CHECKS.ok(ISO_RE.match(r.iso8601) is not None, "now.iso8601 format: %r" % r.iso8601)
    CHECKS.ok(SEEDS_RE.match(r.seeds) is not None, "now.seeds format: %r" % r.seeds)
    CHECKS.ok(isinstance(r.epochMs, int), "now.epochMs is an integer: %r" % (r.epochMs,))
    CHECKS.ok(before - SLACK_MS <= r.epochMs <= after + SLACK_MS,
              "now.epochMs %d near the local clock [%d, %d]" % (r.epochMs, before, after))
    CHECKS.ok(iso_to_ms(r.iso8601) == r.epochMs, "now: iso8601 %s is epochMs %d" % (r.iso8601, r.epochMs))
    CHECKS.ok(seeds_to_s(r.seeds) == r.epochMs // 1000, "now: seeds %s is epochMs %d" % (r.seeds, r.epochMs))

    before = now_ms()
    iso = client.service.getIso8601()
    epoch = client.service.getEpochMs()
    seeds = client.service.getSeeds()
    after = now_ms()
    CHECKS.ok(isinstance(iso, str) and ISO_RE.match(iso) is not None, "getIso8601 format: %r" % (iso,))
    CHECKS.ok(isinstance(epoch, int), "getEpochMs is an integer: %r" % (epoch,))
    CHECKS.ok(isinstance(seeds, str) and SEEDS_RE.match(seeds) is not None, "getSeeds format: %r" % (seeds,))
    for name, ms in (("getIso8601", iso_to_ms(iso)), ("getEpochMs", epoch), ("getSeeds", seeds_to_s(seeds) * 1000)):
        CHECKS.ok(before - SLACK_MS <= ms <= after + SLACK_MS, "%s %d near the local clock [%d, %d]"
                  % (name, ms, before, after))
    # Called in this order, the three readings cannot go backwards (seeds truncates to the second).
    CHECKS.ok(iso_to_ms(iso) <= epoch, "getIso8601 %s then getEpochMs %d in order" % (iso, epoch))
    CHECKS.ok(epoch // 1000 <= seeds_to_s(seeds), "getEpochMs %d then getSeeds %s in order" % (epoch, seeds))


def check_concurrent(svc, clients=8, calls=60):
    def one_client(k):
        client = zeep.Client(svc.base + "/?wsdl")
        seen = 0
        for i in range(calls):
            op = ("now", "getIso8601", "getEpochMs", "getSeeds")[(i + k) % 4]
            r = getattr(client.service, op)()
            if op == "now":
                assert iso_to_ms(r.iso8601) == r.epochMs, r
            elif op == "getEpochMs":
                assert isinstance(r, int) and abs(r - now_ms()) < SLACK_MS, r
            else:
                assert ISO_RE.match(r) or SEEDS_RE.match(r), r
            seen += 1
        return seen

    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one_client, range(clients)))
    CHECKS.ok(results == [calls] * clients, "8 concurrent clients, every call answered: %s" % results)


def check_bad_requests(svc, client):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=5)
    conn.request("POST", "/", body=b"this is not XML", headers={"Content-Type": "text/xml"})
    resp = conn.getresponse()
    body = resp.read()
    CHECKS.ok(resp.status >= 400 and b"Fault" in body, "garbage POST gets a SOAP fault (status %d)" % resp.status)
    conn.close()

    envelope = (b'<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'
                b' xmlns:zt="urn:zshare:time:1"><SOAP-ENV:Body><zt:noSuchOperation/></SOAP-ENV:Body>'
                b'</SOAP-ENV:Envelope>')
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=5)
    conn.request("POST", "/", body=envelope, headers={"Content-Type": "text/xml"})
    resp = conn.getresponse()
    body = resp.read()
    CHECKS.ok(resp.status >= 400 and b"Fault" in body, "unknown operation gets a SOAP fault (status %d)" % resp.status)
    conn.close()

    # A client that connects and says nothing holds no worker: the others are served meanwhile.
    # (The service's I/O timeout is 5 s: a worker blocked on a silent client would show as a slow call.)
    silent = [socket.create_connection(("127.0.0.1", svc.port), timeout=5) for _ in range(svc.threads + 2)]
    try:
        t0 = time.monotonic()
        for _ in range(svc.threads * 2):
            r = client.service.now()
        elapsed = time.monotonic() - t0
        CHECKS.ok(ISO_RE.match(r.iso8601) is not None and elapsed < 2.5,
                  "served at once while %d silent connections are open (%.2f s)" % (len(silent), elapsed))
    finally:
        for s in silent:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timesvc-bin", required=True)
    args = ap.parse_args()

    svc = TimeSvc(args.timesvc_bin, threads=2)
    try:
        svc.start()
        check_wsdl(svc)
        client = zeep.Client(svc.base + "/?wsdl")
        check_operations(client)
        check_concurrent(svc)
        check_bad_requests(svc, client)
        rc = svc.terminate()
        CHECKS.ok(rc == 0, "SIGTERM: exit code %s (output: %s)" % (rc, svc.output()))
        CHECKS.ok("listening on %s" % svc.base in svc.output(), "startup line names the URL")
    except CheckFailed as e:
        print("FAIL: %s" % e)
        print("%d passed, 1 failed" % CHECKS.passed)
        return 1
    except Exception:
        traceback.print_exc()
        print("%d passed, 1 failed (error)" % CHECKS.passed)
        return 1
    finally:
        svc.cleanup()
    print("%d passed, 0 failed" % CHECKS.passed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
