#!/usr/bin/env python3
"""Background verifier throughput: checks a second one instance sustains.

    pip install dnslib        # the only dependency beyond the standard library
    cargo build --release -p domain-api
    bench/verifier.py [--domains 400] [--seconds 20] [--concurrency 4] [--bin PATH]

Starts a DNS server on 127.0.0.1 (UDP and TCP, dnslib) that answers every record the
domains should publish, then the release binary on a fresh SQLite database with
`DOMAIN_API_VERIFY_SCHEDULE=1s` and `DOMAIN_API_VERIFY_INTERVAL=1s` (every domain due
every second, more than the verifier can do, so it runs flat out), creates --domains
domains through `generate`, publishes their records, and reads
`domain_api_verify_checks_total` from /metrics before and after --seconds. Prints one
JSON object: checks per second by outcome, CPU seconds of the server and of the DNS
server. Every address is on 127.0.0.0/8.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from dnslib import QTYPE, RR, TXT, MX, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

import proc_cpu  # bench/proc_cpu.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASTER_KEY = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="


class Zone(BaseResolver):
    """TXT values by name (lower case, no trailing dot); MX at our relay for all."""

    def __init__(self):
        self.txt = {}
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            values = list(self.txt.get(name, []))
        if qtype == "TXT":
            for value in values:
                chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        elif qtype == "MX":
            reply.add_answer(RR(request.q.qname, QTYPE.MX, rdata=MX("inbound.sendtrim.com"), ttl=60))
        elif qtype == "A":
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=60))
        return reply


def serve(zone):
    """Serves `zone` on 127.0.0.1, UDP and TCP, at a free port: (port, servers)."""
    port = free_port()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp, logger=quiet)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    return port, servers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(base, method, path, headers=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def checks(base):
    text = http(base, "GET", "/metrics")
    found = {}
    for outcome, value in re.findall(r'domain_api_verify_checks_total\{outcome="(\w+)"\} (\d+)', text):
        found[outcome] = int(value)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "domain-api"))
    args = parser.parse_args()

    zone = Zone()
    dns_port, servers = serve(zone)

    tmp = tempfile.mkdtemp(prefix="verifier-bench-")
    addr_file = os.path.join(tmp, "addr")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMAIN_API_")}
    env.update({
        "DOMAIN_API_BIND": "127.0.0.1:0",
        "DOMAIN_API_ADDR_FILE": addr_file,
        "DOMAIN_API_DATABASE_URL": f"sqlite://{tmp}/bench.db",
        "DOMAIN_API_MASTER_KEY": MASTER_KEY,
        "DOMAIN_API_DNS_SERVERS": f"127.0.0.1:{dns_port}",
        "DOMAIN_API_NEW_DOMAINS_PER_MINUTE": "100000",
        "DOMAIN_API_VERIFY_SCHEDULE": "1s",
        "DOMAIN_API_VERIFY_INTERVAL": "1s",
        "DOMAIN_API_VERIFY_POLL_INTERVAL": "100ms",
        "DOMAIN_API_VERIFY_CONCURRENCY": str(args.concurrency),
        "RUST_LOG": "warn",
    })
    org = json.loads(subprocess.run([args.bin, "org", "create", "--name", "bench"], env=env,
                                    check=True, capture_output=True, text=True).stdout)
    auth = {"X-Api-Access-Token": org["accessToken"], "X-Api-Secret-Token": org["secretToken"]}
    server = subprocess.Popen([args.bin, "serve"], env=env, stderr=open(os.path.join(tmp, "log"), "w"))
    try:
        for _ in range(200):
            if os.path.exists(addr_file) and open(addr_file).read().strip():
                break
            time.sleep(0.05)
        base = "http://" + open(addr_file).read().strip()
        for i in range(args.domains):
            domain = f"d{i}.verify-bench.com"
            records = json.loads(http(base, "POST", "/api/v1/emails/domains/generate", auth,
                                      {"email": f"x@{domain}"}))
            (spf_name, spf), (dkim_name, dkim), (_, dmarc) = list(records.items())
            with zone.lock:
                zone.txt[domain] = [spf]
                zone.txt[dkim_name.lower()] = [dkim]
                zone.txt[f"_dmarc.{domain}"] = [dmarc]
        time.sleep(3)  # every domain due, the verifier running flat out
        cpu_before = proc_cpu.snapshot()
        before, started = checks(base), time.monotonic()
        time.sleep(args.seconds)
        after, elapsed = checks(base), time.monotonic() - started
        cpu_after = proc_cpu.snapshot()
        pid = str(server.pid)
        server_cpu = (cpu_after[pid][1] - cpu_before[pid][1]) / proc_cpu.TCK
        me = str(os.getpid())
        dns_cpu = (cpu_after[me][1] - cpu_before[me][1]) / proc_cpu.TCK
        per_outcome = {k: round((after.get(k, 0) - before.get(k, 0)) / elapsed, 1) for k in after}
        total = round(sum(after.values()) - sum(before.values()), 1) / elapsed
        result = {
            "domains": args.domains, "seconds": round(elapsed, 1), "concurrency": args.concurrency,
            "checks_per_second": round(total, 1), "by_outcome_per_second": per_outcome,
            "server_cpu_s": round(server_cpu, 2), "dns_server_and_script_cpu_s": round(dns_cpu, 2),
            "server_cpu_ms_per_check": round(1000 * server_cpu / max(1, total * elapsed), 2),
        }
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait(timeout=30)
        for s in servers:
            s.stop()


if __name__ == "__main__":
    sys.exit(main())
