#!/usr/bin/env python3
# harness_client_test.py: the harness's broker client against a real zshare-broker with a tiny rate limit: a
# RATE LIMITED reply is waited out (retry_after_ms) and the same request resent, so every call ends OK, once.
import argparse
import sys
import threading
import time

import zmq

from harness_client import BrokerClient, BrokerEpochs, Keys, Stamps  # tools/harness, on PYTHONPATH
from zshare_testlib import Broker, Checks

CALLS = 5
RATE = 4    # tokens a second for the harness's key
BURST = 2   # so calls 3.. find the bucket empty and wait


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker-bin", required=True)
    args = ap.parse_args()
    checks = Checks()
    broker = Broker(args.broker_bin, extra_args=["--rate-limit", str(RATE), "--rate-burst", str(BURST)])

    def body():
        broker.start()
        keys = Keys(broker.public_key, zmq.curve_keypair())
        client = BrokerClient(broker.control, Stamps(), BrokerEpochs(), threading.Event(), timeout_s=2.0,
                              deadline_s=20.0, name="rate", keys=keys)
        try:
            results = [client.call("REGISTER", user="rate%d" % i) for i in range(CALLS)]
        finally:
            client.close()
        checks.eq([r.status for r in results], ["OK"] * CALLS, "every REGISTER ends OK, the limit waited out")
        checks.ok(any(r.attempts > 1 for r in results),
                  "some calls were refused first and sent again: attempts %r" % [r.attempts for r in results])
        stats = broker.client().call("STATS")  # another key: its own bucket
        checks.eq(stats["users"], CALLS, "each user registered once")
        checks.ok(stats["rate_limited"] >= 1, "the broker counted its refusals: %r" % stats)

    try:
        return checks.run(body, timed_from=time.monotonic())
    finally:
        broker.cleanup()


if __name__ == "__main__":
    sys.exit(main())
