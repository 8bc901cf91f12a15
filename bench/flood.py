#!/usr/bin/env python3
"""Noisy neighbour: does one organization's flood of new domains slow another's calls?

    cargo build --release -p domain-api
    bench/flood.py --backend sqlite|postgres [--bin target/release/domain-api] \
        [--idle-seconds 15] [--flood-seconds 30] [--after-seconds 15] \
        [--flood-conns 16] [--victim-conns 4] [--victim-rate 100]

Starts the release server itself (127.0.0.1, an ephemeral port, a fresh SQLite file
or a fresh PostgreSQL database on the scripts/dev-postgres.sh cluster, dropped
afterwards; the quota variables unset, so the defaults apply) and creates two
organizations with the CLI: A, the flooder, and B, the victim, which owns
reuse.example. Each phase starts once other processes are quiet and the server is
idle (its DKIM key pool refilled).

  idle        B alone for --idle-seconds: --victim-conns threads alternate a reuse
              generate (a fresh sender u<uuid>@reuse.example) and GET of
              detail.example (one sender), paced at --victim-rate calls a second in
              all (0: a closed loop, as fast as answered).
  flood       the same B load for --flood-seconds while A, from a separate process
              (its own GIL, so B's timings do not queue behind A's threads), sends
              new-domain generates (a@f<uuid>.example) from --flood-conns threads as
              fast as it can.
  idle_after  B alone again (a control: reuse.example has more senders by then).

Prints one JSON object to stdout (B's count/p50/p99/max per call kind and phase, the
flood/idle p99 ratios, A's status counts and rate, whether every B call got 2xx, CPU
seconds per phase for the server, PostgreSQL, the clients and everything else) and a
short table to stderr. The issue's bar: B's p99 under flood within 2x of idle.
Every address is on 127.0.0.0/8. Standard library only. The server (and the flooder)
are stopped at the end and on error.
"""

import argparse
import concurrent.futures
import ipaddress
import json
import os
import shutil
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


def victim_phase(base, auth, seconds, conns, rate):
    """B's load: per thread, alternate reuse generate and detail GET until the deadline.

    With `rate` > 0 the calls are paced (open loop): thread i sends its k-th call at
    start + (k * conns + i) / rate, whatever the answers' latency, so B's latency is
    measured at a normal, fixed load rather than at the saturation of a closed loop
    (a closed-loop B on two cores measures how the CPU is shared, not B's latency).
    A call that falls behind its slot is sent at once; its latency still counts from
    when it is sent."""
    deadline = time.monotonic() + seconds
    origin = time.monotonic()
    lock = threading.Lock()
    latencies = {"reuse": [], "detail": []}
    # (seconds since the phase began, ms) per call, to tell the first seconds of a
    # phase (the flood's burst of allowed creations) from the rest.
    timeline = {"reuse": [], "detail": []}
    statuses = {"reuse": {}, "detail": {}}
    failures = []

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
                status, ms, text, _ = call(base, "POST", GENERATE, auth,
                                           {"email": f"u{uuid.uuid4().hex}@reuse.example"})
            else:
                kind = "detail"
                # A domain of its own with one sender: its detail stays the same size
                # however many senders the reuse calls add to reuse.example.
                status, ms, text, _ = call(base, "GET", "/api/v1/emails/domains/detail.example", auth)
            turn ^= 1
            with lock:
                latencies[kind].append(ms)
                timeline[kind].append((sent_at, ms))
                statuses[kind][str(status)] = statuses[kind].get(str(status), 0) + 1
                if not 200 <= status < 300 and len(failures) < 10:
                    failures.append({"kind": kind, "status": status, "ms": round(ms, 1), "body": text})

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conns) as pool:
        for future in [pool.submit(worker, i) for i in range(conns)]:
            future.result()
    elapsed = time.monotonic() - started
    all_2xx = all(k.startswith("2") for kind in statuses.values() for k in kind)
    return {
        "seconds": round(elapsed, 2),
        "reuse": summary(latencies["reuse"]),
        "detail": summary(latencies["detail"]),
        # The same calls, from the 5th second on: in the flood phase, after the burst
        # of the organization's allowed creations (keys drawn, pool refilled).
        "after_5s": {kind: summary([ms for at, ms in points if at >= 5.0])
                     for kind, points in timeline.items()},
        "rps": round(sum(len(v) for v in latencies.values()) / elapsed, 1),
        "statuses": statuses,
        "all_2xx": all_2xx,
        "failures": failures,
    }


def flooder_main(args):
    """The flooder process: A's new-domain generates until --seconds after --start-at."""
    auth = {"X-Api-Access-Token": args.access, "X-Api-Secret-Token": args.secret}
    time.sleep(max(0.0, args.start_at - time.time()))
    started = time.monotonic()
    deadline = started + args.seconds
    lock = threading.Lock()
    counts = {"201": 0, "429": 0, "403": 0, "other": 0}
    others = {}
    latencies = {"201": [], "429": []}
    first_429 = [None]
    retry_after = {}
    samples = []

    def worker(_):
        while time.monotonic() < deadline:
            status, ms, text, retry = call(args.base, "POST", GENERATE, auth,
                                           {"email": f"a@f{uuid.uuid4().hex}.example"})
            key = str(status)
            with lock:
                if key in counts:
                    counts[key] += 1
                else:
                    counts["other"] += 1
                    others[key] = others.get(key, 0) + 1
                    if len(samples) < 5:
                        samples.append({"status": status, "body": text})
                if key in latencies:
                    latencies[key].append(ms)
                if status == 429:
                    if first_429[0] is None:
                        first_429[0] = round(time.monotonic() - started, 2)
                    retry_after[retry] = retry_after.get(retry, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(args.conns) as pool:
        for future in [pool.submit(worker, i) for i in range(args.conns)]:
            future.result()
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    print(json.dumps({
        "seconds": round(elapsed, 2),
        "requests": total,
        "rps": round(total / elapsed, 1),
        "counts": counts,
        "other_statuses": others,
        "other_samples": samples,
        "latency_ms": {k: summary(v) for k, v in latencies.items()},
        "first_429_after_s": first_429[0],
        "retry_after_values": dict(sorted(retry_after.items(), key=lambda kv: -kv[1])[:5]),
    }))


# ---------------------------------------------------------------- set-up


def server_env(database_url, master_key, addr_file):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMAIN_API_")}
    env.update({
        "DOMAIN_API_BIND": "127.0.0.1:0",
        "DOMAIN_API_ADDR_FILE": addr_file,
        "DOMAIN_API_DATABASE_URL": database_url,
        "DOMAIN_API_MASTER_KEY": master_key,
        "DOMAIN_API_DNS_SERVERS": "127.0.0.1:9",
        "RUST_LOG": "warn",
    })
    return env


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


def senders_on(base, auth):
    return len(fetch_json(base, "/api/v1/emails/domains/reuse.example", auth).get("senders", []))


# ---------------------------------------------------------------- the run


def run(args, tmp):
    run_id = f"{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
    addr_file = os.path.join(tmp, "addr")
    pg_admin = pg_name = None
    server = flooder = None
    me = str(os.getpid())
    try:
        if args.backend == "sqlite":
            database_url = f"sqlite://{os.path.join(tmp, 'flood.db')}"
        else:
            database_url, pg_admin, pg_name = postgres_database(run_id)
        env = server_env(database_url, args.master_key, addr_file)

        _, auth_a = create_org(args.bin, env, f"flood-a-{run_id}")
        _, auth_b = create_org(args.bin, env, f"flood-b-{run_id}")
        server, base = start_server(args.bin, env, addr_file, os.path.join(tmp, "server.log"))
        log(f"{args.backend}: server {base} (pid {server.pid})")

        for domain in ("reuse.example", "detail.example"):
            status, _, text, _ = call(base, "POST", GENERATE, auth_b, {"email": f"owner@{domain}"})
            if status != 201:
                raise RuntimeError(f"B could not create {domain}: {status} {text}")

        def prepare(name, note):
            """Waits for a quiet machine and an idle server (its key pool refilled)."""
            machine = foreign_quiet(server.pid)
            server_idle = settle(server.pid)
            log(f"{name}: {note} (waited {machine}s for the machine, {server_idle}s for the server)")
            return {"waited_for_machine_s": machine, "waited_for_server_s": server_idle,
                    "senders_before": senders_on(base, auth_b)}

        def finish(phase, before, after, clients, prepared):
            phase["cpu_s"] = cpu_split(before, after, server.pid, clients)
            other_pct = 100.0 * phase["cpu_s"]["other"] / (phase["seconds"] * os.cpu_count())
            phase["other_cpu_pct_of_machine"] = round(other_pct, 1)
            phase["contended"] = other_pct >= 10.0
            if phase["contended"]:
                log(f"WARNING: other processes used {other_pct:.0f}% of the machine during this phase")
            phase["senders_on_domain"] = [prepared.pop("senders_before"), senders_on(base, auth_b)]
            phase.update(prepared)
            return phase

        # Idle: B alone.
        prepared = prepare("idle", f"B alone for {args.idle_seconds}s ({args.victim_conns} threads)")
        before = cpu_snapshot()
        idle = victim_phase(base, auth_b, args.idle_seconds, args.victim_conns, args.victim_rate)
        idle = finish(idle, before, cpu_snapshot(), {me}, prepared)

        # Flood: the same B load while A floods from its own process.
        prepared = prepare("flood", f"B for {args.flood_seconds}s while A floods from "
                                    f"{args.flood_conns} threads")
        start_at = time.time() + 1.0
        flooder = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--flooder", "--base", base,
             "--access", auth_a["X-Api-Access-Token"], "--secret", auth_a["X-Api-Secret-Token"],
             "--seconds", str(args.flood_seconds), "--conns", str(args.flood_conns),
             "--start-at", repr(start_at)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(max(0.0, start_at - time.time()))
        before = cpu_snapshot()
        flood = victim_phase(base, auth_b, args.flood_seconds, args.victim_conns, args.victim_rate)
        after = cpu_snapshot()
        out, _ = flooder.communicate(timeout=120)
        if flooder.returncode != 0:
            raise RuntimeError(f"the flooder failed ({flooder.returncode})")
        flood = finish(flood, before, after, {me, str(flooder.pid)}, prepared)
        flood["flooder_a"] = json.loads(out)

        # Control: B alone again, now with more senders on reuse.example than during
        # the flood (GET detail returns every sender, so it slows as they accumulate).
        idle_after = None
        if args.after_seconds > 0:
            prepared = prepare("idle-after", f"B alone again for {args.after_seconds}s")
            before = cpu_snapshot()
            idle_after = victim_phase(base, auth_b, args.after_seconds, args.victim_conns, args.victim_rate)
            idle_after = finish(idle_after, before, cpu_snapshot(), {me}, prepared)

        alive = server.poll() is None
        server_log = open(os.path.join(tmp, "server.log")).read()
    finally:
        stop(flooder)
        stop(server)
        if pg_name:
            subprocess.run(["psql", "-q", pg_admin, "-c", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ratios(baseline):
        out = {}
        for kind in ("reuse", "detail"):
            i, f = baseline[kind]["p99"], flood[kind]["p99"]
            out[kind] = round(f / i, 2) if i and f is not None else None
        return out

    ratio = ratios(idle)
    result = {
        "backend": args.backend,
        "config": {
            "idle_seconds": args.idle_seconds, "flood_seconds": args.flood_seconds,
            "after_seconds": args.after_seconds,
            "flood_conns": args.flood_conns, "victim_conns": args.victim_conns,
            "victim_rate": args.victim_rate,
            "quotas": "defaults (DOMAIN_API_NEW_DOMAINS_PER_MINUTE, DOMAIN_API_MAX_DOMAINS_PER_ORG unset)",
            "cpus": os.cpu_count(),
        },
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
    lines = [f"backend {result['backend']}",
             f"  {'B call':<8}{'phase':<11}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
    for kind in ("reuse", "detail"):
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
    lines.append(f"  B all 2xx: {result['b_all_2xx']}; within 2x: {result['within_2x']}")
    for phase in phases:
        p = result[phase]
        c = p["cpu_s"]
        lines.append(f"  {phase}: B {p['rps']}/s, senders {p['senders_on_domain']}; cpu server {c['server']}s, "
                     f"postgres {c['postgres']}s, clients {c['clients']}s, other {c['other']}s "
                     f"({p['other_cpu_pct_of_machine']}%)")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"))
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "domain-api"))
    parser.add_argument("--idle-seconds", type=float, default=15)
    parser.add_argument("--flood-seconds", type=float, default=30)
    parser.add_argument("--flood-conns", type=int, default=16)
    parser.add_argument("--victim-conns", type=int, default=4)
    parser.add_argument("--victim-rate", type=float, default=100.0,
                        help="B's calls per second, paced (0: closed loop, as fast as answered)")
    parser.add_argument("--after-seconds", type=float, default=15,
                        help="a second idle run after the flood, as a control (0: none)")
    parser.add_argument("--master-key", default=DEFAULT_MASTER_KEY)
    # The flooder process (started by this script; not for direct use).
    parser.add_argument("--flooder", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
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
