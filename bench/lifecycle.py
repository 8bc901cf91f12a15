#!/usr/bin/env python3
"""Lifecycle figures against a running domain-api: rotate latency, and the time to
delete a domain with many senders.

    bench/lifecycle.py --base http://127.0.0.1:8080 --access dak_… --secret das_… \
        [--domains 40] [--senders 1000]

Creates --domains fresh domains and rotates each once (timing every rotate), then
registers --senders senders on one more domain and times its DELETE. Prints one JSON
object. Talks only to --base (keep it on 127.0.0.1). Standard library only.
"""

import argparse
import json
import statistics
import time
import urllib.error
import urllib.request
import uuid


def call(base, method, path, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, (time.perf_counter() - started) * 1000.0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--access", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--domains", type=int, default=40)
    parser.add_argument("--senders", type=int, default=1000)
    args = parser.parse_args()
    auth = {"X-Api-Access-Token": args.access, "X-Api-Secret-Token": args.secret}
    run = uuid.uuid4().hex[:8]

    rotate_ms = []
    for i in range(args.domains):
        domain = f"rot{i}-{run}.example"
        status, _ = call(args.base, "POST", "/api/v1/emails/domains/generate", auth,
                         {"email": f"a@{domain}"})
        assert status == 201, status
        status, ms = call(args.base, "POST", f"/api/v1/emails/domains/{domain}/dkim/rotate", auth)
        assert status == 202, status
        rotate_ms.append(ms)

    big = f"big-{run}.example"
    for i in range(args.senders):
        status, _ = call(args.base, "POST", "/api/v1/emails/domains/generate", auth,
                         {"email": f"s{i}@{big}"})
        assert status == 201, status
    status, delete_ms = call(args.base, "DELETE", f"/api/v1/emails/domains/{big}", auth)
    assert status == 204, status
    status, _ = call(args.base, "GET", f"/api/v1/emails/domains/{big}", auth)
    assert status == 404, status

    print(json.dumps({
        "rotate_ms": {
            "n": len(rotate_ms),
            "p50": round(statistics.median(rotate_ms), 2),
            "p99": round(percentile(rotate_ms, 99), 2),
            "max": round(max(rotate_ms), 2),
        },
        "delete_domain_with_senders": {"senders": args.senders, "ms": round(delete_ms, 2)},
    }))


if __name__ == "__main__":
    main()
