#!/usr/bin/env python3
"""Summarises one scripts/bench.sh run: OUT/results.json and a table on stdout.

Usage: summarise.py OUT_DIR ELAPSED_SECONDS "SETTINGS"

Reads OUT/machine.json, OUT/criterion.json, OUT/scenarios.jsonl (one line per wrk
or pgbench run), and OUT/datasize.json when bench/datasize.py ran. Ratios: each figure against its ceiling measured in the same run;
targets: the four from the "Performance" issue.
"""

import json
import os
import sys

out_dir, elapsed, settings = sys.argv[1], int(sys.argv[2]), sys.argv[3]
machine = json.load(open(os.path.join(out_dir, "machine.json")))
micro = json.load(open(os.path.join(out_dir, "criterion.json")))
rows = [json.loads(line) for line in open(os.path.join(out_dir, "scenarios.jsonl")) if line.strip()]


def find(scenario, backend=None, conns=None):
    for r in rows:
        if r["scenario"] == scenario and (backend is None or r["backend"] == backend) and (
            conns is None or r["connections"] == conns
        ):
            return r
    return None


conns_main = next((r["connections"] for r in rows if r["scenario"] == "reuse"), 64)
conns_high = max((r["connections"] for r in rows if r["scenario"] == "reuse"), default=256)

# ---------------------------------------------------------------- ceilings and ratios
rsa = next((m for m in micro if m["group"] == "rsa_2048" and m["name"].startswith("rsa-")), None)
keygen_ceiling = machine["nproc"] / (rsa["mean_ns"] / 1e9) if rsa else None

for r in rows:
    r["ceiling"] = None
    r["ratio"] = None
    if r["scenario"] == "reuse" and r["backend"] == "postgres":
        # The ceiling is the best pgbench did on the same transaction: at the HTTP
        # run's concurrency and at the service's own DB pool size (16).
        runs = [x for x in rows if x["scenario"].startswith("pgbench-register-sender")]
        c = max(runs, key=lambda x: x["rps"], default=None)
        if c:
            r["ceiling"] = f"pgbench register-sender c={c['connections']} (best of c={'/'.join(str(x['connections']) for x in runs)})"
            r["ratio"] = r["rps"] / c["rps"]
    elif r["scenario"] in ("rejected", "rejected-revoked"):
        c = find("empty-handler", "ceiling", r["connections"])
        if c:
            r["ceiling"] = f"empty handler c={c['connections']}"
            r["ratio"] = r["rps"] / c["rps"]
    elif r["scenario"] == "new-domain-nopool" and keygen_ceiling:
        r["ceiling"] = f"RSA keygen, {machine['nproc']} cores"
        r["ratio"] = r["rps"] / keygen_ceiling

# ---------------------------------------------------------------- targets
targets = []


def target(name, value, limit, met, detail):
    targets.append({"target": name, "value": value, "limit": limit, "met": met, "detail": detail})


warm1 = find("new-domain-warm", "postgres", 1)
warm64 = find("new-domain-warm", "postgres", conns_main)
if warm1:
    p50 = warm1["latency_ms"]["p50"]
    detail = f"p50 {p50:.2f} ms at 1 connection"
    if warm64:
        detail += f"; {warm64['latency_ms']['p50']:.2f} ms at {conns_main} connections ({warm64['rps']:.0f} req/s)"
    target("new-domain p50 <= 10 ms, warm pool (PostgreSQL)", p50, 10, p50 <= 10, detail)

reuse = find("reuse", "postgres", conns_main)
if reuse:
    ratio = reuse["ratio"]
    target(
        f"reuse path >= 50 % of pgbench ceiling (PostgreSQL, c={conns_main})",
        ratio,
        0.5,
        ratio is not None and ratio >= 0.5,
        f"{reuse['rps']:.0f} req/s vs {reuse['ceiling']}",
    )
    p99 = reuse["latency_ms"]["p99"]
    target(f"reuse path p99 <= 25 ms at {conns_main} connections (PostgreSQL)", p99, 25, p99 <= 25, f"p99 {p99:.2f} ms")

rej = find("rejected", "postgres", conns_main)
if rej:
    target(
        f"rejected credentials >= 30 % of empty handler (PostgreSQL, c={conns_main})",
        rej["ratio"],
        0.3,
        rej["ratio"] is not None and rej["ratio"] >= 0.3,
        f"{rej['rps']:.0f} req/s vs {rej['ceiling']}",
    )

high = [r for r in rows if r["connections"] == conns_high and r["backend"] in ("sqlite", "postgres")]
if high:
    worst = max(high, key=lambda r: r["peak_rss_mib"])
    target(
        f"peak RSS <= 64 MiB at {conns_high} connections",
        worst["peak_rss_mib"],
        64,
        worst["peak_rss_mib"] <= 64,
        f"worst {worst['backend']}/{worst['scenario']}: {worst['peak_rss_mib']:.1f} MiB",
    )

# Key-pool counters from each server's /metrics at shutdown (when it exports them):
# proof that the warm-pool bursts were served from the pool (inline_total 0).
key_pool = {}
for name in sorted(os.listdir(out_dir)):
    if name.startswith("metrics-") and name.endswith(".txt"):
        values = {}
        for line in open(os.path.join(out_dir, name)):
            if line.startswith("domain_api_key_pool_"):
                key, _, value = line.rpartition(" ")
                values[key.removeprefix("domain_api_key_pool_")] = float(value)
        if values:
            key_pool[name[len("metrics-"):-len(".txt")]] = values

results = {
    "machine": machine,
    "key_pool_at_shutdown": key_pool,
    "settings": settings,
    "elapsed_s": elapsed,
    "micro": micro,
    "scenarios": rows,
    "targets": targets,
}
datasize_path = os.path.join(out_dir, "datasize.json")
if os.path.exists(datasize_path) and os.path.getsize(datasize_path) > 0:
    results["datasize"] = json.load(open(datasize_path))

# ---------------------------------------------------------------- stdout


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


json.dump(results, open(os.path.join(out_dir, "results.json"), "w"), indent=1)

print()
print(f"machine: {machine['nproc']} × {machine['cpu_model']}, {machine['memory']}, kernel {machine['kernel']}; "
      f"load at start {machine['loadavg_at_start'].split()[0]}")
print(f"settings: {settings}")
print()
print("micro-benchmarks (criterion, mean)")
for m in micro:
    mean = m["mean_ns"]
    shown = f"{mean / 1e6:.2f} ms" if mean >= 1e6 else f"{mean / 1e3:.3f} µs" if mean >= 1e3 else f"{mean:.1f} ns"
    print(f"  {m['group']}/{m['name']}: {shown}")
print()
header = ("backend", "scenario", "conns", "requests", "req/s", "p50 ms", "p99 ms", "srv CPU ms/req", "peak RSS MiB", "ratio", "ceiling", "other procs % CPU")
print(" | ".join(header))
for r in rows:
    print(" | ".join([
        r["backend"], r["scenario"], str(r["connections"]), str(r["requests"]), fmt(r["rps"], ".0f"),
        fmt(r["latency_ms"]["p50"], ".2f"), fmt(r["latency_ms"]["p99"], ".2f"),
        fmt(r.get("server_cpu_ms_per_req"), ".3f"), fmt(r.get("peak_rss_mib"), ".1f"),
        fmt(r["ratio"], ".2f"), r["ceiling"] or "", fmt(r.get("foreign_cpu_pct"), ".0f"),
    ]))
bad = [r for r in rows if r.get("status") and (
    (r["scenario"].startswith("rejected") and r["status"]["401"] != r["requests"])
    or (not r["scenario"].startswith("rejected") and r["mode"] != "pgbench"
        and r["status"]["2xx"] != r["requests"]))]
for r in bad:
    print(f"WARNING: {r['backend']}/{r['scenario']} c={r['connections']}: unexpected statuses {r['status']} "
          f"socket errors {r['socket_errors']}")
print()
for server, values in key_pool.items():
    print(f"key pool at shutdown, {server}: " + ", ".join(f"{k} {v:g}" for k, v in values.items()))
print()
print("targets")
for t in targets:
    print(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['detail']}")
if "datasize" in results:
    ds = results["datasize"]
    small, large = str(ds["sizes"][0]), str(ds["sizes"][-1])
    print(f"\ndata size {small} -> {large} domains (p50 and p99 ratios, large / small)")
    for backend, data in ds["backends"].items():
        for org, routes in data["routes"].items():
            for route, r in routes.items():
                print(f"  [{'OVER' if r['over'] else 'ok'}] {backend}/{org}/{route}: "
                      f"p50 {r['p50_ratio']:.2f}x, p99 {r['p99_ratio']:.2f}x")
print(f"\ntotal run time: {elapsed} s")
