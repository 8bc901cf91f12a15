#!/usr/bin/env python3
"""Noisy neighbour: does one organization's attack slow another's calls?

    cargo build --release -p domain-api
    bench/flood.py --backend sqlite|postgres [--vector VECTOR] \
        [--bin target/release/domain-api] \
        [--idle-seconds 15] [--flood-seconds 30] [--after-seconds 15] \
        [--flood-conns 16] [--victim-conns 4] [--victim-rate 100] \
        [--victim-verify-rate 1] [--attacker-domains 20] [--keyed-senders 1000] \
        [--answer-bytes N] [--quiet-limit 180]

Starts the release server itself (127.0.0.1, an ephemeral port, a fresh SQLite file
or a fresh PostgreSQL database on the scripts/dev-postgres.sh cluster, dropped
afterwards; every DOMAIN_API_* variable unset, so the quotas are at their defaults
unless a vector says otherwise below) and creates two organizations with the CLI: A,
the attacker, and B, the victim, which owns detail.example (one sender) and
reuse.example (plus reuse2.example, ... so that none of them passes 900 senders in the
run: DOMAIN_API_MAX_SENDERS_PER_DOMAIN is 1000). Each phase starts once other processes
are quiet (at most --quiet-limit seconds of waiting) and the server is idle (its DKIM
key pool refilled).

  idle        B alone for --idle-seconds: --victim-conns threads alternate a reuse
              generate (a fresh sender u<uuid>@ one of the reuse domains, in turn) and
              GET of detail.example, paced at --victim-rate calls a second in all (0: a
              closed loop, as fast as answered). In the live-checks vector B also sends
              POST .../detail.example/verify --victim-verify-rate times a second.
  flood       the same B load for --flood-seconds while A, from a separate process
              (its own GIL, so B's timings do not queue behind A's threads), attacks
              from --flood-conns threads as fast as it is answered, by --vector:
    new-domains    (default) new-domain generates (a@f<uuid>.example). Expect 60 x 201,
                   then 429 `Too many new domains; retry later`.
    rotation       POST .../dkim/rotate round-robin over --attacker-domains domains A
                   created before the idle phase. Expect a 202 per domain while the
                   shared key budget (DOMAIN_API_NEW_DOMAINS_PER_MINUTE, which A's own
                   creations drew on) lasts, then 409 (a rotation in progress) and 429
                   `Too many DKIM keys generated; retry later` (the 24h rotation
                   interval, left at its default, or the budget).
    live-checks    GET /api/v1/domains/validate?domain=D (a dashboard JWT: the script
                   sets DOMAIN_API_JWT_SECRET and runs `domain-api jwt issue`) and POST
                   .../verify, alternately, over --attacker-domains domains.
                   DOMAIN_API_DNS_SERVERS points at a UDP socket (and a TCP listener)
                   on 127.0.0.1 that the script opens and that never answers, so every
                   lookup of every organization, B's verifies included, runs to its
                   deadline. Expect 429 `Too many live DNS checks; retry later` after
                   120 checks in 60 s.
    keyed-answers  PATCH .../keyed.example {"inbound":false}, a fresh Idempotency-Key
                   each time. A first fills keyed.example with --keyed-senders senders
                   (default 1000, the limit), so each kept answer is the largest detail
                   an organization can have. Expect 429 `Too many stored Idempotency-Key
                   answers; retry later` once A's kept answers reach
                   DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG (default 64 MiB; --answer-bytes
                   sets it).
    senders        new senders (s<uuid>@senders.example) on one domain. Expect 403
                   `Sender limit reached` after DOMAIN_API_MAX_SENDERS_PER_DOMAIN (1000);
                   the domain's detail size in bytes is reported at the end.
  idle_after  B alone again (a control: the reuse domains have more senders by then).

Storage is measured just before and just after the flood phase: SQLite the database
file and its -wal, PostgreSQL pg_database_size and pg_total_relation_size of
idempotency_keys; on both the bytes A's kept answers count (idempotency_usage).

Prints one JSON object to stdout (B's count/p50/p99/max per call kind and phase, the
flood/idle p99 ratios, A's status counts, sentences, Retry-After values and rate,
whether every B call got 2xx, CPU seconds per phase for the server, PostgreSQL, the
clients and everything else, the load average before each phase, storage growth) and a
short table to stderr. The issue's bar: B's p99 under attack within 2x of idle.
Every address is on 127.0.0.0/8. Standard library only. The server, the flooder and
the silent DNS server are stopped at the end and on error.
"""

import argparse
import concurrent.futures
import ipaddress
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import proc_cpu  # bench/proc_cpu.py: per-process CPU from /proc/PID/stat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATE = "/api/v1/emails/domains/generate"
DEFAULT_MASTER_KEY = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="
TCK = os.sysconf("SC_CLK_TCK")


def log(text):
    print(f"flood.py: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- HTTP


def call(base, method, path, headers, body=None, timeout=60):
    """(status, ms, body text if not 2xx else None, Retry-After). Status 0: no answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    text, retry_after = None, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")[:300]
        status = error.code
        retry_after = error.headers.get("Retry-After")
    except (urllib.error.URLError, OSError) as error:
        text = f"{type(error).__name__}: {error}"[:300]
        status = 0
    return status, (time.perf_counter() - started) * 1000.0, text, retry_after


def fetch_json(base, path, headers):
    request = urllib.request.Request(base + path, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def summary(values):
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
    }


def require_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"):
        raise SystemExit(f"flood.py: refusing a non-loopback address: {host}")


# ---------------------------------------------------------------- CPU accounting


def cpu_snapshot():
    """pid -> (comm, utime+stime ticks, start time) for every process."""
    return proc_cpu.snapshot()


def cpu_split(before, after, server_pid, client_pids):
    """CPU seconds between two snapshots: server, postgres, our clients, the rest."""
    used = {"server": 0.0, "postgres": 0.0, "clients": 0.0, "other": 0.0}
    others = []
    for pid, (comm, ticks, started) in after.items():
        old = before.get(pid)
        delta = (ticks - (old[1] if old and old[2] == started else 0)) / TCK
        if delta <= 0:
            continue
        if pid == str(server_pid):
            used["server"] += delta
        elif comm == "postgres":
            used["postgres"] += delta
        elif pid in client_pids:
            used["clients"] += delta
        else:
            used["other"] += delta
            others.append((delta, comm))
    others.sort(reverse=True)
    result = {k: round(v, 2) for k, v in used.items()}
    result["other_top"] = [f"{c} {s:.1f}s" for s, c in others[:3]]
    return result


def foreign_quiet(server_pid, quiet_pct=10.0, limit=180.0):
    """Waits until processes other than ours and PostgreSQL use < quiet_pct of the
    machine over two seconds (another engineer's build, say), at most `limit` seconds;
    returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_snapshot()
        time.sleep(2.0)
        used = cpu_split(before, cpu_snapshot(), server_pid, {str(os.getpid())})["other"]
        if 100.0 * used / (2.0 * os.cpu_count()) < quiet_pct:
            break
    return round(time.monotonic() - started, 1)


def settle(server_pid, quiet_pct=5.0, limit=90.0):
    """Waits until the server uses < quiet_pct of one core over a second (its DKIM key
    pool is full), at most `limit` seconds; returns the seconds waited."""
    started = time.monotonic()
    path = f"/proc/{server_pid}/stat"

    def ticks():
        raw = open(path).read()
        fields = raw[raw.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])

    while time.monotonic() - started < limit:
        before = ticks()
        time.sleep(1.0)
        if 100.0 * (ticks() - before) / TCK < quiet_pct:
            break
    return round(time.monotonic() - started, 1)


# ---------------------------------------------------------------- the two clients


def victim_phase(base, auth, seconds, conns, rate, reuse_domains, verify_rate=0.0):
    """B's load: per thread, alternate reuse generate and detail GET until the deadline.

    With `rate` > 0 the calls are paced (open loop): thread i sends its k-th call at
    start + (k * conns + i) / rate, whatever the answers' latency, so B's latency is
    measured at a normal, fixed load rather than at the saturation of a closed loop
    (a closed-loop B on two cores measures how the CPU is shared, not B's latency).
    A call that falls behind its slot is sent at once; its latency still counts from
    when it is sent. The reuse generates go round-robin over `reuse_domains`, so no
    domain reaches DOMAIN_API_MAX_SENDERS_PER_DOMAIN within a run.

    With `verify_rate` > 0, B also sends POST .../detail.example/verify at that rate,
    each on its own thread (a verify waits for DNS, up to the check deadline)."""
    deadline = time.monotonic() + seconds
    origin = time.monotonic()
    lock = threading.Lock()
    kinds = ("reuse", "detail") + (("verify",) if verify_rate > 0 else ())
    latencies = {k: [] for k in kinds}
    # (seconds since the phase began, ms) per call, to tell the first seconds of a
    # phase (the flood's burst of allowed creations) from the rest.
    timeline = {k: [] for k in kinds}
    statuses = {k: {} for k in kinds}
    failures = []
    reuse_turn = [0]

    def record(kind, sent_at, status, ms, text):
        with lock:
            latencies[kind].append(ms)
            timeline[kind].append((sent_at, ms))
            statuses[kind][str(status)] = statuses[kind].get(str(status), 0) + 1
            if not 200 <= status < 300 and len(failures) < 10:
                failures.append({"kind": kind, "status": status, "ms": round(ms, 1), "body": text})

    def worker(index):
        turn = index % 2
        sent = 0
        while time.monotonic() < deadline:
            if rate > 0:
                slot = origin + (sent * conns + index) / rate
                pause = slot - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if time.monotonic() >= deadline:
                    break
                sent += 1
            sent_at = time.monotonic() - origin
            if turn == 0:
                kind = "reuse"
                with lock:
                    domain = reuse_domains[reuse_turn[0] % len(reuse_domains)]
                    reuse_turn[0] += 1
                status, ms, text, _ = call(base, "POST", GENERATE, auth,
                                           {"email": f"u{uuid.uuid4().hex}@{domain}"})
            else:
                kind = "detail"
                # A domain of its own with one sender: its detail stays the same size
                # however many senders the reuse calls add to the reuse domains.
                status, ms, text, _ = call(base, "GET", "/api/v1/emails/domains/detail.example", auth)
            turn ^= 1
            record(kind, sent_at, status, ms, text)

    def verify_one(sent_at):
        status, ms, text, _ = call(base, "POST", "/api/v1/emails/domains/detail.example/verify", auth)
        record("verify", sent_at, status, ms, text)

    def verifier():
        threads = []
        k = 0
        while True:
            slot = origin + k / verify_rate
            pause = slot - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if time.monotonic() >= deadline:
                break
            thread = threading.Thread(target=verify_one, args=(time.monotonic() - origin,))
            thread.start()
            threads.append(thread)
            k += 1
        for thread in threads:
            thread.join()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conns + 1) as pool:
        futures = [pool.submit(worker, i) for i in range(conns)]
        if verify_rate > 0:
            futures.append(pool.submit(verifier))
        for future in futures:
            future.result()
    elapsed = time.monotonic() - started
    all_2xx = all(k.startswith("2") for kind in statuses.values() for k in kind)
    result = {"seconds": round(elapsed, 2)}
    result.update({kind: summary(latencies[kind]) for kind in kinds})
    result.update({
        # The same calls, from the 5th second on: in the flood phase, after the burst
        # of the organization's allowed creations (keys drawn, pool refilled).
        "after_5s": {kind: summary([ms for at, ms in points if at >= 5.0])
                     for kind, points in timeline.items()},
        "rps": round(sum(len(v) for v in latencies.values()) / elapsed, 1),
        "statuses": statuses,
        "all_2xx": all_2xx,
        "failures": failures,
    })
    return result


def attack_call(vector, base, auth, plan, n):
    """A's n-th call of `vector`: (status, ms, body text if not 2xx, Retry-After)."""
    domains = plan.get("domains") or []
    if vector == "new-domains":
        return call(base, "POST", GENERATE, auth, {"email": f"a@f{uuid.uuid4().hex}.example"})
    if vector == "rotation":
        domain = domains[n % len(domains)]
        return call(base, "POST", f"/api/v1/emails/domains/{domain}/dkim/rotate", auth)
    if vector == "live-checks":
        domain = domains[(n // 2) % len(domains)]
        if n % 2 == 0:
            return call(base, "GET", f"/api/v1/domains/validate?domain={domain}",
                        {"Authorization": f"Bearer {plan['jwt']}"})
        return call(base, "POST", f"/api/v1/emails/domains/{domain}/verify", auth)
    if vector == "keyed-answers":
        domain = domains[n % len(domains)]
        return call(base, "PATCH", f"/api/v1/emails/domains/{domain}",
                    dict(auth, **{"Idempotency-Key": str(uuid.uuid4())}), {"inbound": False})
    if vector == "senders":
        return call(base, "POST", GENERATE, auth, {"email": f"s{uuid.uuid4().hex}@{domains[0]}"})
    raise ValueError(vector)


def flooder_main(args):
    """The flooder process: A's calls of --vector until --seconds after --start-at."""
    auth = {"X-Api-Access-Token": args.access, "X-Api-Secret-Token": args.secret}
    plan = json.load(open(args.plan)) if args.plan else {}
    time.sleep(max(0.0, args.start_at - time.time()))
    started = time.monotonic()
    deadline = started + args.seconds
    lock = threading.Lock()
    counts = {}
    latencies = {}
    first_at = {}
    retry_after = {}
    bodies = {}
    turn = [0]

    def worker(_):
        while time.monotonic() < deadline:
            with lock:
                n = turn[0]
                turn[0] += 1
            status, ms, text, retry = attack_call(args.vector, args.base, auth, plan, n)
            key = str(status)
            with lock:
                counts[key] = counts.get(key, 0) + 1
                latencies.setdefault(key, []).append(ms)
                if key not in first_at:
                    first_at[key] = round(time.monotonic() - started, 2)
                if text is not None:
                    sentence = text[:120]
                    per = bodies.setdefault(key, {})
                    if sentence in per or len(per) < 5:
                        per[sentence] = per.get(sentence, 0) + 1
                if retry is not None:
                    per = retry_after.setdefault(key, {})
                    per[retry] = per.get(retry, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(args.conns) as pool:
        for future in [pool.submit(worker, i) for i in range(args.conns)]:
            future.result()
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    print(json.dumps({
        "vector": args.vector,
        "seconds": round(elapsed, 2),
        "requests": total,
        "rps": round(total / elapsed, 1),
        "counts": dict(sorted(counts.items())),
        "first_after_s": dict(sorted(first_at.items())),
        "bodies": bodies,
        "latency_ms": {k: summary(v) for k, v in sorted(latencies.items())},
        "retry_after_values": {k: dict(sorted(v.items(), key=lambda kv: -kv[1])[:5])
                               for k, v in retry_after.items()},
    }))


# ---------------------------------------------------------------- DNS that never answers


class SilentDns:
    """A UDP socket (and a TCP listener on the same port) on 127.0.0.1 that reads every
    query and never answers: every lookup the server makes runs to its timeout or the
    check's deadline. Counts the datagrams and connections it swallowed."""

    def __init__(self):
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(512)
            break
        else:
            raise RuntimeError("no free port for the silent DNS server")
        self.udp, self.tcp, self.port = udp, tcp, port
        self.queries, self.connections, self.held = 0, 0, []
        self.stopped = False
        threading.Thread(target=self._udp, daemon=True).start()
        threading.Thread(target=self._tcp, daemon=True).start()

    def _udp(self):
        while not self.stopped:
            try:
                self.udp.recvfrom(4096)
            except OSError:
                return
            self.queries += 1

    def _tcp(self):
        while not self.stopped:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)  # kept open, never read or answered

    def close(self):
        self.stopped = True
        for sock in [self.udp, self.tcp] + self.held:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


class SlowDns(SilentDns):
    """A DNS server on 127.0.0.1 (UDP, and TCP on the same port) that answers every
    query after `delay` seconds, TTL 0 (nothing cached): every name exists; a TXT
    query for a name fewer than `depth` labels below its domain answers an SPF record
    with `fanout` includes of fresh names one level down (so no two checks share a
    lookup), deeper names `v=spf1 -all`, `_dmarc.` names a DMARC record; every other
    type answers no records. The live-check amplifier with includes that answer,
    slowly, instead of never."""

    def __init__(self, delay, fanout=8, depth=3):
        self.delay, self.fanout, self.depth = delay, fanout, depth
        super().__init__()

    @staticmethod
    def _question(query):
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
            i += 1 + query[i]
        qtype = int.from_bytes(query[i + 1:i + 3], "big")
        return labels, qtype, i + 5

    def _answer(self, query):
        labels, qtype, end = self._question(query)
        name = ".".join(labels).lower()
        answers = []
        if qtype == 16:  # TXT
            if name.startswith("_dmarc."):
                text = "v=DMARC1; p=none"
            elif (sum(label.startswith("i-") for label in labels) < self.depth
                  and "._domainkey." not in name):
                fresh = " ".join(f"include:i-{uuid.uuid4().hex[:8]}.{name}"
                                 for _ in range(self.fanout))
                text = f"v=spf1 {fresh} -all"
            else:
                text = "v=spf1 -all"
            data = text.encode()
            chunks = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                              for i in range(0, len(data), 255))
            answers.append(b"\xc0\x0c" + (16).to_bytes(2, "big") + b"\x00\x01"
                           + (0).to_bytes(4, "big") + len(chunks).to_bytes(2, "big") + chunks)
        flags = b"\x84\x00" if not query[2] & 0x01 else b"\x85\x00"  # QR AA (RD copied)
        header = (query[:2] + flags + b"\x00\x01" + len(answers).to_bytes(2, "big")
                  + b"\x00\x00\x00\x00")
        return header + query[12:end] + b"".join(answers)

    def _udp(self):
        while not self.stopped:
            try:
                query, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            self.queries += 1
            threading.Thread(target=self._reply_udp, args=(query, peer), daemon=True).start()

    def _reply_udp(self, query, peer):
        time.sleep(self.delay)
        try:
            self.udp.sendto(self._answer(query), peer)
        except (OSError, IndexError):
            pass

    def _tcp(self):
        while not self.stopped:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)
            threading.Thread(target=self._reply_tcp, args=(conn,), daemon=True).start()

    def _reply_tcp(self, conn):
        try:
            size = int.from_bytes(conn.recv(2), "big")
            query = b""
            while len(query) < size:
                more = conn.recv(size - len(query))
                if not more:
                    return
                query += more
            time.sleep(self.delay)
            answer = self._answer(query)
            conn.sendall(len(answer).to_bytes(2, "big") + answer)
        except (OSError, IndexError):
            pass


# ---------------------------------------------------------------- set-up


def server_env(database_url, master_key, addr_file, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMAIN_API_")}
    env.update({
        "DOMAIN_API_BIND": "127.0.0.1:0",
        "DOMAIN_API_ADDR_FILE": addr_file,
        "DOMAIN_API_DATABASE_URL": database_url,
        "DOMAIN_API_MASTER_KEY": master_key,
        "DOMAIN_API_DNS_SERVERS": "127.0.0.1:9",
        "RUST_LOG": "warn",
    })
    env.update(extra)
    return env


def storage(backend, database_url, org_id):
    """What the database takes now: SQLite the file and its -wal in bytes; PostgreSQL
    pg_database_size and pg_total_relation_size('idempotency_keys'); on both, the
    bytes the attacker's kept Idempotency-Key answers count (idempotency_usage)."""
    query_usage = f"SELECT coalesce(sum(bytes), 0) FROM idempotency_usage WHERE organization_id = '{org_id}'"
    if backend == "sqlite":
        path = database_url[len("sqlite://"):]
        def size(p):
            return os.path.getsize(p) if os.path.exists(p) else 0

        db = sqlite3.connect(path, timeout=30)
        try:
            usage = db.execute(query_usage).fetchone()[0]
        finally:
            db.close()
        return {"file_bytes": size(path), "wal_bytes": size(path + "-wal"),
                "total_bytes": size(path) + size(path + "-wal"), "a_answer_bytes": int(usage)}
    out = subprocess.run(["psql", "-qAt", "-F", " ", database_url, "-c",
                          "SELECT pg_database_size(current_database()), "
                          "pg_total_relation_size('idempotency_keys'), "
                          f"({query_usage})"],
                         check=True, capture_output=True, text=True).stdout.split()
    return {"database_bytes": int(out[0]), "idempotency_keys_bytes": int(out[1]),
            "total_bytes": int(out[0]), "a_answer_bytes": int(out[2])}


def growth(before, after):
    return {k: after[k] - before[k] for k in before}


def create_org(binary, env, name):
    out = subprocess.run([binary, "org", "create", "--name", name], env=env, check=True,
                         capture_output=True, text=True).stdout
    issued = json.loads(out.strip().splitlines()[-1])
    return issued["organizationId"], {
        "X-Api-Access-Token": issued["accessToken"],
        "X-Api-Secret-Token": issued["secretToken"],
    }


def postgres_database(run):
    """A fresh database on the dev cluster: (url, admin url, name)."""
    exports = subprocess.run([os.path.join(ROOT, "scripts", "dev-postgres.sh")], check=True,
                             capture_output=True, text=True).stdout
    url = next(line.split("=", 1)[1] for line in exports.splitlines()
               if line.startswith("export DOMAIN_API_DATABASE_URL="))
    require_loopback(url)
    base = url.rsplit("/", 1)[0]
    admin = base + "/postgres"
    name = f"flood_{run}"
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", admin,
                    "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                    "-c", f"CREATE DATABASE {name}"], check=True, stdout=subprocess.DEVNULL)
    return f"{base}/{name}", admin, name


def start_server(binary, env, addr_file, log_path):
    server = subprocess.Popen([binary, "serve"], env=env, stdin=subprocess.DEVNULL,
                              stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not os.path.exists(addr_file):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start; log:\n{open(log_path).read()[-2000:]}")
        time.sleep(0.1)
    base = "http://" + open(addr_file).read().strip()
    require_loopback(base)
    while True:
        status, _, _, _ = call(base, "GET", "/healthz", {}, timeout=5)
        if status == 200:
            return server, base
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server not healthy ({status}); log:\n{open(log_path).read()[-2000:]}")
        time.sleep(0.2)


def stop(process):
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def senders_on(base, auth, domains):
    return sum(len(fetch_json(base, f"/api/v1/emails/domains/{d}", auth).get("senders", []))
               for d in domains)


def detail_bytes(base, auth, domain):
    request = urllib.request.Request(base + f"/api/v1/emails/domains/{domain}", headers=auth)
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(response.read())


VECTORS = ("new-domains", "rotation", "live-checks", "keyed-answers", "senders")
SENDERS_PER_REUSE_DOMAIN = 900  # below DOMAIN_API_MAX_SENDERS_PER_DOMAIN's default, 1000


def reuse_domains_for(args):
    """B's reuse domains: enough that none passes 900 senders in the run."""
    if args.victim_rate > 0:
        calls = args.victim_rate / 2 * (args.idle_seconds + args.flood_seconds + args.after_seconds)
        count = max(1, -(-int(calls) // SENDERS_PER_REUSE_DOMAIN))
    else:
        count = 8
    return ["reuse.example"] + [f"reuse{i}.example" for i in range(2, count + 1)]


def parallel(count, conns, work):
    """Runs work(i) for i in range(count) on `conns` threads; returns the statuses."""
    with concurrent.futures.ThreadPoolExecutor(conns) as pool:
        return list(pool.map(work, range(count)))


def set_up_attacker(args, binary, env, base, auth_a, org_a):
    """A's domains (and JWT) for the vector; returns (plan, a summary for the output)."""
    plan, notes = {"domains": []}, {}
    started = time.monotonic()

    def create(domain):
        status, _, text, _ = call(base, "POST", GENERATE, auth_a, {"email": f"owner@{domain}"})
        if status != 201:
            raise RuntimeError(f"A could not create {domain}: {status} {text}")
        return domain

    if args.vector == "rotation":
        plan["domains"] = [create(f"r{i}.rotation.example") for i in range(args.attacker_domains)]
        # The flood starts once these creations have left the 60 s key budget's window,
        # so A has the whole budget to spend on rotations.
        notes["budget_free_at"] = time.monotonic() + 61.0
    elif args.vector == "live-checks":
        plan["domains"] = [create(f"l{i}.checks.example") for i in range(args.attacker_domains)]
        out = subprocess.run([binary, "jwt", "issue", "--org", org_a, "--ttl", "1h"], env=env,
                             check=True, capture_output=True, text=True).stdout
        plan["jwt"] = out.strip()
    elif args.vector == "keyed-answers":
        # One domain filled with senders: every PATCH answer is its whole detail, the
        # largest answer an organization can have kept at the default sender limit.
        domain = create("keyed.example")
        plan["domains"] = [domain]
        fill = max(0, args.keyed_senders - 1)
        statuses = parallel(fill, 8, lambda i: call(
            base, "POST", GENERATE, auth_a, {"email": f"k{i}@{domain}"})[0])
        notes["senders_added"] = {str(k): statuses.count(k) for k in sorted(set(statuses))}
        notes["detail_bytes"] = detail_bytes(base, auth_a, domain)
    elif args.vector == "senders":
        plan["domains"] = [create("senders.example")]
    notes["domains"] = len(plan["domains"])
    notes["seconds"] = round(time.monotonic() - started, 1)
    return plan, notes


def run(args, tmp):
    run_id = f"{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
    addr_file = os.path.join(tmp, "addr")
    pg_admin = pg_name = None
    server = flooder = dns = None
    me = str(os.getpid())
    settings = {}
    verify_rate = 0.0
    if args.vector == "live-checks":
        dns = SilentDns() if args.dns == "silent" else SlowDns(args.dns_delay_ms / 1000.0)
        settings["DOMAIN_API_DNS_SERVERS"] = f"127.0.0.1:{dns.port}"
        settings["DOMAIN_API_JWT_SECRET"] = uuid.uuid4().hex + uuid.uuid4().hex
        verify_rate = args.victim_verify_rate
    if args.vector == "keyed-answers" and args.answer_bytes is not None:
        settings["DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG"] = str(args.answer_bytes)
    reuse = reuse_domains_for(args)
    try:
        if args.backend == "sqlite":
            database_url = f"sqlite://{os.path.join(tmp, 'flood.db')}"
        else:
            database_url, pg_admin, pg_name = postgres_database(run_id)
        env = server_env(database_url, args.master_key, addr_file, settings)
        # The CLI opens only an existing database: create it (and its schema) first.
        subprocess.run([args.bin, "migrate"], env=env, check=True, capture_output=True)

        org_a, auth_a = create_org(args.bin, env, f"flood-a-{run_id}")
        _, auth_b = create_org(args.bin, env, f"flood-b-{run_id}")
        server, base = start_server(args.bin, env, addr_file, os.path.join(tmp, "server.log"))
        log(f"{args.backend}, vector {args.vector}: server {base} (pid {server.pid})")

        for domain in reuse + ["detail.example"]:
            status, _, text, _ = call(base, "POST", GENERATE, auth_b, {"email": f"owner@{domain}"})
            if status != 201:
                raise RuntimeError(f"B could not create {domain}: {status} {text}")
        plan, attacker_setup = set_up_attacker(args, args.bin, env, base, auth_a, org_a)
        plan_file = os.path.join(tmp, "plan.json")
        with open(plan_file, "w") as out:
            json.dump(plan, out)
        log(f"A's set-up: {attacker_setup}")

        def prepare(name, note):
            """Waits for a quiet machine and an idle server (its key pool refilled)."""
            machine = foreign_quiet(server.pid, limit=args.quiet_limit)
            server_idle = settle(server.pid)
            log(f"{name}: {note} (waited {machine}s for the machine, {server_idle}s for the server)")
            return {"waited_for_machine_s": machine, "waited_for_server_s": server_idle,
                    "load_average": open("/proc/loadavg").read().split()[:3],
                    "senders_before": senders_on(base, auth_b, reuse)}

        def finish(phase, before, after, clients, prepared):
            phase["cpu_s"] = cpu_split(before, after, server.pid, clients)
            other_pct = 100.0 * phase["cpu_s"]["other"] / (phase["seconds"] * os.cpu_count())
            phase["other_cpu_pct_of_machine"] = round(other_pct, 1)
            phase["contended"] = other_pct >= 10.0
            if phase["contended"]:
                log(f"WARNING: other processes used {other_pct:.0f}% of the machine during this phase")
            phase["senders_on_reuse_domains"] = [prepared.pop("senders_before"),
                                                 senders_on(base, auth_b, reuse)]
            phase.update(prepared)
            return phase

        def b_phase(seconds):
            return victim_phase(base, auth_b, seconds, args.victim_conns, args.victim_rate,
                                reuse, verify_rate)

        # Idle: B alone.
        prepared = prepare("idle", f"B alone for {args.idle_seconds}s ({args.victim_conns} threads)")
        before = cpu_snapshot()
        idle = b_phase(args.idle_seconds)
        idle = finish(idle, before, cpu_snapshot(), {me}, prepared)

        # Flood: the same B load while A attacks from its own process.
        prepared = prepare("flood", f"B for {args.flood_seconds}s while A sends {args.vector} "
                                    f"from {args.flood_conns} threads")
        free_at = attacker_setup.pop("budget_free_at", None)
        if free_at is not None and free_at > time.monotonic():
            wait = free_at - time.monotonic()
            log(f"waiting {wait:.0f}s more for A's creations to leave the key budget's window")
            time.sleep(wait)
            prepared["load_average"] = open("/proc/loadavg").read().split()[:3]
        stored_before = storage(args.backend, database_url, org_a)
        dns_before = (dns.queries, dns.connections) if dns else None
        start_at = time.time() + 1.0
        flooder = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--flooder", "--base", base,
             "--vector", args.vector, "--plan", plan_file,
             "--access", auth_a["X-Api-Access-Token"], "--secret", auth_a["X-Api-Secret-Token"],
             "--seconds", str(args.flood_seconds), "--conns", str(args.flood_conns),
             "--start-at", repr(start_at)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(max(0.0, start_at - time.time()))
        before = cpu_snapshot()
        flood = b_phase(args.flood_seconds)
        after = cpu_snapshot()
        out, _ = flooder.communicate(timeout=120)
        if flooder.returncode != 0:
            raise RuntimeError(f"the flooder failed ({flooder.returncode})")
        flood = finish(flood, before, after, {me, str(flooder.pid)}, prepared)
        flood["flooder_a"] = json.loads(out)
        stored_after = storage(args.backend, database_url, org_a)
        flood["storage"] = {"before": stored_before, "after": stored_after,
                            "growth": growth(stored_before, stored_after)}
        if dns:
            flood["dns"] = args.dns
            flood["silent_dns"] = {"udp_queries": dns.queries - dns_before[0],
                                   "tcp_connections": dns.connections - dns_before[1]}
        if args.vector == "senders":
            flood["a_domain"] = {"senders": senders_on(base, auth_a, plan["domains"]),
                                 "detail_bytes": detail_bytes(base, auth_a, plan["domains"][0])}

        # Control: B alone again, now with more senders on the reuse domains than during
        # the flood (GET detail returns every sender, so it slows as they accumulate).
        idle_after = None
        if args.after_seconds > 0:
            prepared = prepare("idle-after", f"B alone again for {args.after_seconds}s")
            before = cpu_snapshot()
            idle_after = b_phase(args.after_seconds)
            idle_after = finish(idle_after, before, cpu_snapshot(), {me}, prepared)

        alive = server.poll() is None
        server_log = open(os.path.join(tmp, "server.log")).read()
    finally:
        stop(flooder)
        stop(server)
        if dns:
            dns.close()
        if pg_name:
            subprocess.run(["psql", "-q", pg_admin, "-c", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    kinds = [k for k in ("reuse", "detail", "verify") if k in idle]

    def ratios(baseline):
        out = {}
        for kind in kinds:
            i, f = baseline[kind]["p99"], flood[kind]["p99"]
            out[kind] = round(f / i, 2) if i and f is not None else None
        return out

    ratio = ratios(idle)
    quotas = "defaults (no DOMAIN_API_* quota set)"
    if settings.get("DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG"):
        quotas = ("defaults except DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG="
                  + settings["DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG"])
    result = {
        "backend": args.backend,
        "vector": args.vector,
        "config": {
            "idle_seconds": args.idle_seconds, "flood_seconds": args.flood_seconds,
            "after_seconds": args.after_seconds,
            "flood_conns": args.flood_conns, "victim_conns": args.victim_conns,
            "victim_rate": args.victim_rate, "victim_verify_rate": verify_rate,
            "reuse_domains": len(reuse),
            "quotas": quotas,
            "settings": {k: v for k, v in settings.items() if k != "DOMAIN_API_JWT_SECRET"},
            "cpus": os.cpu_count(),
        },
        "attacker_setup": attacker_setup,
        "idle": idle,
        "flood": flood,
        "idle_after": idle_after,
        "p99_ratio_flood_over_idle": ratio,
        "p99_ratio_flood_over_idle_after": ratios(idle_after) if idle_after else None,
        "within_2x": all(r is not None and r <= 2.0 for r in ratio.values()),
        "b_all_2xx": all(p["all_2xx"] for p in (idle, flood, idle_after) if p),
        "any_phase_contended": any(p["contended"] for p in (idle, flood, idle_after) if p),
        "server_alive_at_end": alive,
        "server_log_tail": server_log[-1500:] if server_log.strip() else "",
    }
    return result


def table(result):
    phases = [p for p in ("idle", "flood", "idle_after") if result[p]]
    kinds = [k for k in ("reuse", "detail", "verify") if k in result["idle"]]
    lines = [f"backend {result['backend']}, vector {result['vector']}",
             f"  {'B call':<8}{'phase':<11}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
    for kind in kinds:
        for phase in phases:
            s = result[phase][kind]
            lines.append(f"  {kind:<8}{phase:<11}{s['count']:>7}{s['p50'] or 0:>9.1f}"
                         f"{s['p99'] or 0:>9.1f}{s['max'] or 0:>9.1f}")
        lines.append(f"  {kind:<8}p99 flood/idle = {result['p99_ratio_flood_over_idle'][kind]}"
                     + (f", flood/idle_after = {result['p99_ratio_flood_over_idle_after'][kind]}"
                        if result["idle_after"] else ""))
    a = result["flood"]["flooder_a"]
    lines.append(f"  A: {a['requests']} requests, {a['rps']}/s; " +
                 ", ".join(f"{k}: {v}" for k, v in a["counts"].items()))
    for status, sentences in a["bodies"].items():
        for sentence, count in sentences.items():
            lines.append(f"     {status} x{count}: {sentence[:90]}")
    g = result["flood"]["storage"]["growth"]
    lines.append("  storage growth in the flood: " + ", ".join(f"{k} {v:+,}" for k, v in g.items()))
    if "a_domain" in result["flood"]:
        lines.append(f"  A's domain at the end: {result['flood']['a_domain']}")
    if "silent_dns" in result["flood"]:
        lines.append(f"  {result['flood'].get('dns', 'silent')} DNS in the flood: {result['flood']['silent_dns']}")
    lines.append(f"  B all 2xx: {result['b_all_2xx']}; within 2x: {result['within_2x']}")
    for phase in phases:
        p = result[phase]
        c = p["cpu_s"]
        lines.append(f"  {phase}: load {' '.join(p['load_average'])}, B {p['rps']}/s, senders "
                     f"{p['senders_on_reuse_domains']}; cpu server {c['server']}s, "
                     f"postgres {c['postgres']}s, clients {c['clients']}s, other {c['other']}s "
                     f"({p['other_cpu_pct_of_machine']}%)")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"))
    parser.add_argument("--vector", choices=VECTORS, default="new-domains",
                        help="what A does during the flood (default new-domains)")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "domain-api"))
    parser.add_argument("--idle-seconds", type=float, default=15)
    parser.add_argument("--flood-seconds", type=float, default=30)
    parser.add_argument("--flood-conns", type=int, default=16)
    parser.add_argument("--victim-conns", type=int, default=4)
    parser.add_argument("--victim-rate", type=float, default=100.0,
                        help="B's calls per second, paced (0: closed loop, as fast as answered)")
    parser.add_argument("--victim-verify-rate", type=float, default=1.0,
                        help="live-checks: B's verify calls per second, besides the others")
    parser.add_argument("--after-seconds", type=float, default=15,
                        help="a second idle run after the flood, as a control (0: none)")
    parser.add_argument("--attacker-domains", type=int, default=20,
                        help="rotation, live-checks: domains A creates before the idle phase")
    parser.add_argument("--keyed-senders", type=int, default=1000,
                        help="keyed-answers: senders on A's domain (its PATCH answer is its detail)")
    parser.add_argument("--answer-bytes", type=int, default=None,
                        help="keyed-answers: DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG (default: unset)")
    parser.add_argument("--dns", choices=("silent", "slow"), default="silent",
                        help="live-checks: a DNS server that never answers, or one that "
                             "answers after --dns-delay-ms with SPF records of 8 fresh "
                             "includes, three levels deep")
    parser.add_argument("--dns-delay-ms", type=float, default=1500.0,
                        help="live-checks with --dns slow: each answer's delay")
    parser.add_argument("--quiet-limit", type=float, default=180.0,
                        help="longest wait for other processes to quiet down before a phase")
    parser.add_argument("--master-key", default=DEFAULT_MASTER_KEY)
    # The flooder process (started by this script; not for direct use).
    parser.add_argument("--flooder", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--access", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--conns", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.flooder:
        require_loopback(args.base)
        flooder_main(args)
        return
    if not args.backend:
        parser.error("--backend is required")
    if not os.access(args.bin, os.X_OK):
        parser.error(f"{args.bin} is not an executable: cargo build --release -p domain-api")
    tmp = tempfile.mkdtemp(prefix="domain-api-flood-")
    try:
        result = run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(result), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
