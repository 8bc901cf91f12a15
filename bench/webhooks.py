#!/usr/bin/env python3
"""Webhook delivery throughput and the delay from publishing the records to the
`domain.verified` webhook.

    pip install dnslib        # the only dependency beyond the standard library
    cargo build --release -p domain-api
    bench/webhooks.py --backend sqlite|postgres [--domains 300] [--bin PATH]

Everything runs on 127.0.0.0/8: a DNS server (dnslib, bench/verifier.py's zone), a
webhook receiver (http.server, one thread per connection, answering 204 at once and
recording when each webhook-id arrived), and the release binary on a fresh database
(SQLite in a temp dir, or a fresh database on the scripts/dev-postgres.sh cluster).

1. Throughput: an instance with `DOMAIN_API_WEBHOOK_SENDER=off` creates --domains
   domains for one organization with an endpoint taking every event type (three events
   each: domain.created, sender.registered, sender.activated), and stops. A second
   instance starts with the sender on (defaults: 16 in flight, 4 per organization) and
   the script times how long it takes to drain the outbox: deliveries per second.
   The same again with the events spread over 8 organizations (the per-organization
   share no longer binds).
   The server's CPU time (and PostgreSQL's backends', on that backend) over the drain
   gives the CPU per delivery.
2. Hostile (`--scenarios hostile`): 8 organizations each with 20 endpoints on a
   loopback server that accepts and never answers, each creating a domain a second
   (60 deliveries a domain), and a healthy organization whose endpoint (the
   receiver) takes `domain.created`, creating a domain every 200 ms: the delay from
   its generate call to its webhook, p50/p99/max, over --hostile-seconds, after the
   same over --hostile-idle-seconds with the quiet organization alone (its idle
   p99; `p99_over_idle` is the noisy-neighbour target's ratio). Defaults everywhere
   (16 slots, 4 per organization, 5 s timeout, 1 s poll).
3. Delay: an instance with the test-sized schedule (`DOMAIN_API_VERIFY_SCHEDULE=1s`,
   `…_VERIFY_POLL_INTERVAL=100ms`, `…_WEBHOOK_POLL_INTERVAL=100ms`) and an endpoint
   taking `domain.verified`; the script publishes each domain's records at a recorded
   moment (one every 20 ms) and measures until its `domain.verified` webhook arrives:
   p50, p90, p99, max.

Prints one JSON object.
"""

import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import flood  # bench/flood.py: postgres_database, start_server
from verifier import MASTER_KEY, Zone, serve
from verifier import http as api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: sixteen connections opened at once
    # overflowed it, and the dropped SYNs came back 1-3 s later (a stall of the
    # benchmark's receiver, not of the sender).
    request_queue_size = 128

    def __init__(self):
        self.arrivals = {}  # webhook-id -> (first arrival, body)
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.monotonic()
        with self.server.lock:
            self.server.count += 1
            self.server.arrivals.setdefault(self.headers["webhook-id"], (now, json.loads(body)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Hanging:
    """Accepts every connection and never answers (holds them until stopped)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.accepted = 0
        self.stopped = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def stop(self):
        self.stopped = True
        self.sock.close()
        for conn in self.held:
            conn.close()


TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids=None, comm=None):
    """utime+stime of the given pids, or of every process named comm."""
    total = 0
    for pid in (pids if pids is not None else os.listdir("/proc")):
        try:
            raw = open(f"/proc/{pid}/stat").read()
        except (OSError, ValueError):
            continue
        name = raw[raw.index("(") + 1: raw.rindex(")")]
        if comm is not None and name != comm:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / TCK


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def server_env(tmp, database_url, dns_port, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMAIN_API_")}
    env.update({
        "DOMAIN_API_BIND": "127.0.0.1:0",
        "DOMAIN_API_ADDR_FILE": os.path.join(tmp, "addr"),
        "DOMAIN_API_DATABASE_URL": database_url,
        "DOMAIN_API_MASTER_KEY": MASTER_KEY,
        "DOMAIN_API_DNS_SERVERS": f"127.0.0.1:{dns_port}",
        "DOMAIN_API_NEW_DOMAINS_PER_MINUTE": "100000",
        "DOMAIN_API_MAX_DOMAINS_PER_ORG": "10000000",
        "DOMAIN_API_MAX_SENDERS_PER_DOMAIN": "10000000",
        "DOMAIN_API_VERIFIER": "off",
        "DOMAIN_API_WEBHOOK_ALLOW_HTTP": "1",
        "DOMAIN_API_WEBHOOK_ALLOW_NETS": "127.0.0.1/32",
        "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn"),
    })
    env.update(extra)
    return env


def start(binary, env, tmp, name):
    addr_file = env["DOMAIN_API_ADDR_FILE"]
    if os.path.exists(addr_file):
        os.remove(addr_file)
    return flood.start_server(binary, env, addr_file, os.path.join(tmp, f"{name}.log"))


def stop(server):
    server.terminate()
    server.wait(timeout=60)


def new_org(binary, env, name):
    org = json.loads(subprocess.run([binary, "org", "create", "--name", name], env=env,
                                    check=True, capture_output=True, text=True).stdout)
    return {"X-Api-Access-Token": org["accessToken"], "X-Api-Secret-Token": org["secretToken"]}


def database(backend, tmp, run):
    if backend == "sqlite":
        return f"sqlite://{tmp}/{run}.db", None
    url, admin, name = flood.postgres_database(run)
    return url, (admin, name)


def drop(pg):
    if pg:
        admin, name = pg
        subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       check=False, stdout=subprocess.DEVNULL)


def throughput(args, dns_port, orgs):
    tmp = tempfile.mkdtemp(prefix="webhook-bench-")
    url, pg = database(args.backend, tmp, f"webhooks_tp_{orgs}_{os.getpid()}")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        env = server_env(tmp, url, dns_port, {"DOMAIN_API_WEBHOOK_SENDER": "off"})
        server, base = start(args.bin, env, tmp, "fill")
        auths = [new_org(args.bin, env, f"bench{i}") for i in range(orgs)]
        hook = {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook"}
        for auth in auths:
            api(base, "POST", "/api/v1/webhooks", auth, hook)
        for i in range(args.domains):
            api(base, "POST", "/api/v1/emails/domains/generate", auths[i % orgs],
                 {"email": f"x@d{i}.hooks-bench.com"})
        stop(server)
        expected = 3 * args.domains
        server, base = start(args.bin, server_env(tmp, url, dns_port, {}), tmp, "drain")
        cpu0 = cpu_seconds([server.pid])
        db0 = cpu_seconds(comm="postgres") if pg else 0.0
        started = time.monotonic()
        deadline = started + 600
        while receiver.count < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds([server.pid]) - cpu0
        db = (cpu_seconds(comm="postgres") - db0) if pg else 0.0
        stop(server)
        return {
            "server_cpu_ms_per_delivery": round(1000 * cpu / max(receiver.count, 1), 3),
            "postgres_cpu_ms_per_delivery": round(1000 * db / max(receiver.count, 1), 3),
            "organizations": orgs,
            "deliveries": receiver.count,
            "distinct_events": len(receiver.arrivals),
            "seconds": round(elapsed, 2),
            "deliveries_per_second": round(receiver.count / elapsed, 1),
        }
    finally:
        receiver.shutdown()
        drop(pg)


def hostile(args, dns_port):
    tmp = tempfile.mkdtemp(prefix="webhook-bench-")
    url, pg = database(args.backend, tmp, f"webhooks_hostile_{os.getpid()}")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hanging = Hanging()
    try:
        env = server_env(tmp, url, dns_port, {})
        server, base = start(args.bin, env, tmp, "hostile")
        attackers = [new_org(args.bin, env, f"hostile{i}") for i in range(8)]
        quiet = new_org(args.bin, env, "quiet")
        for auth in attackers:
            for n in range(20):
                api(base, "POST", "/api/v1/webhooks", auth,
                    {"url": f"http://127.0.0.1:{hanging.port}/h{n}"})
        api(base, "POST", "/api/v1/webhooks", quiet,
            {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
             "events": ["domain.created"]})
        stop_flag = threading.Event()

        def quiet_phase(seconds, tag):
            """The quiet organization creates a domain every 200 ms for `seconds`."""
            sent, answered = {}, {}
            finish = time.monotonic() + seconds
            n = 0
            while time.monotonic() < finish:
                domain = f"{tag}{n}.quiet-bench.com"
                sent[domain] = time.monotonic()
                api(base, "POST", "/api/v1/emails/domains/generate", quiet, {"email": f"x@{domain}"})
                answered[domain] = time.monotonic()
                n += 1
                time.sleep(0.2)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with receiver.lock:
                    got = {body["data"].get("domain") for _, body in receiver.arrivals.values()}
                if all(d in got for d in sent):
                    break
                time.sleep(0.05)
            return sent, answered

        def summary(sent, answered):
            with receiver.lock:
                arrived = [(arrival, body["data"]["domain"])
                           for arrival, body in receiver.arrivals.values()
                           if body["data"].get("domain") in sent]
            missing = [float("inf")] * (len(sent) - len(arrived))
            # From the generate call (what the quiet organization waits in all), and
            # from its answer, when the event is committed (the delivery's own delay).
            delays = [arrival - sent[domain] for arrival, domain in arrived] + missing
            delivery = [arrival - answered[domain] for arrival, domain in arrived] + missing
            generate = [answered[domain] - sent[domain] for domain in answered]
            return {
                "quiet_webhooks": len(sent),
                "arrived": len(arrived),
                "p50_s": round(percentile(delays, 50), 3),
                "p99_s": round(percentile(delays, 99), 3),
                "max_s": round(max(delays), 3),
                "delivery_p50_s": round(percentile(delivery, 50), 3),
                "delivery_p99_s": round(percentile(delivery, 99), 3),
                "generate_p50_s": round(percentile(generate, 50), 3),
                "generate_p99_s": round(percentile(generate, 99), 3),
            }

        # Idle: the quiet organization alone (the hostile endpoints exist, no events).
        idle = summary(*quiet_phase(args.hostile_idle_seconds, "i"))

        def attack(i, auth):
            n = 0
            while not stop_flag.is_set():
                api(base, "POST", "/api/v1/emails/domains/generate", auth,
                    {"email": f"x@h{i}-{n}.hostile-bench.com"})
                n += 1
                stop_flag.wait(1.0)

        threads = [threading.Thread(target=attack, args=(i, a), daemon=True)
                   for i, a in enumerate(attackers)]
        for t in threads:
            t.start()
        time.sleep(5)  # the hanging endpoints fill their slots
        attacked = summary(*quiet_phase(args.hostile_seconds, "q"))
        stop_flag.set()
        for t in threads:
            t.join(timeout=10)
        stop(server)
        attacked["hanging_connections"] = hanging.accepted
        attacked["idle"] = idle
        attacked["p99_over_idle"] = round(attacked["p99_s"] / idle["p99_s"], 2)
        return attacked
    finally:
        hanging.stop()
        receiver.shutdown()
        drop(pg)


def delay(args, dns_port, zone):
    tmp = tempfile.mkdtemp(prefix="webhook-bench-")
    url, pg = database(args.backend, tmp, f"webhooks_delay_{os.getpid()}")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        env = server_env(tmp, url, dns_port, {
            "DOMAIN_API_VERIFIER": "on",
            "DOMAIN_API_VERIFY_SCHEDULE": "1s",
            "DOMAIN_API_VERIFY_INTERVAL": "1h",
            "DOMAIN_API_VERIFY_POLL_INTERVAL": "100ms",
            "DOMAIN_API_WEBHOOK_POLL_INTERVAL": "100ms",
        })
        server, base = start(args.bin, env, tmp, "delay")
        auth = new_org(args.bin, env, "delay")
        api(base, "POST", "/api/v1/webhooks", auth,
             {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
              "events": ["domain.verified"]})
        records = {}
        for i in range(args.domains):
            domain = f"v{i}.delay-bench.com"
            records[domain] = json.loads(api(base, "POST", "/api/v1/emails/domains/generate", auth,
                                              {"email": f"x@{domain}"}))
        published = {}
        for domain, record in records.items():
            (_, spf), (dkim_name, dkim), (_, dmarc) = list(record.items())
            with zone.lock:
                zone.txt[domain] = [spf]
                zone.txt[dkim_name.lower()] = [dkim]
                zone.txt[f"_dmarc.{domain}"] = [dmarc]
            published[domain] = time.monotonic()
            time.sleep(0.02)
        deadline = time.monotonic() + 300
        while len(receiver.arrivals) < len(published) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop(server)
        delays = [arrival - published[body["data"]["domain"]]
                  for arrival, body in receiver.arrivals.values()]
        return {
            "domains": len(published),
            "webhooks": len(delays),
            "p50_s": round(percentile(delays, 50), 2),
            "p90_s": round(percentile(delays, 90), 2),
            "p99_s": round(percentile(delays, 99), 2),
            "max_s": round(max(delays), 2),
        }
    finally:
        receiver.shutdown()
        drop(pg)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--domains", type=int, default=300)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "domain-api"))
    parser.add_argument("--scenarios", default="throughput,hostile,delay",
                        help="comma-separated: throughput, hostile, delay")
    parser.add_argument("--hostile-seconds", type=int, default=40)
    parser.add_argument("--hostile-idle-seconds", type=int, default=15,
                        help="the quiet organization alone first: its idle p99")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")

    zone = Zone()
    dns_port, servers = serve(zone)
    try:
        result = {"backend": args.backend}
        if "throughput" in scenarios:
            result["throughput_one_org"] = throughput(args, dns_port, 1)
            result["throughput_8_orgs"] = throughput(args, dns_port, 8)
        if "hostile" in scenarios:
            result["hostile_8_orgs_20_hanging_endpoints"] = hostile(args, dns_port)
        if "delay" in scenarios:
            result["publish_to_verified_webhook"] = delay(args, dns_port, zone)
        print(json.dumps(result))
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
