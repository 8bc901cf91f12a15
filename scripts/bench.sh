#!/usr/bin/env bash
# The whole benchmark run in one command (`just bench` calls this):
#
#   1. builds the release binary and the bench crate (bench/, its own workspace);
#   2. criterion micro-benchmarks: RSA-2048 generation (rsa 0.10 as the service uses
#      it, and OpenSSL 3 for comparison), RecordSet::render, EmailAddress::parse;
#   3. the empty-handler ceiling: a bare actix-web binary under the same load;
#   4. HTTP load with wrk against the release binary, on SQLite and on PostgreSQL
#      (a fresh database each): new-domain path (warm key pool, then pool disabled),
#      reuse path (one organization; and a many-organization reference variant),
#      rejected-credentials path (forged tokens, rejected by their tag; and one revoked
#      token of ours, which costs a lookup), at 64 and 256 connections. For each: req/s,
#      p50/p99, server and PostgreSQL CPU, peak RSS (VmHWM, reset before each
#      scenario), and the CPU that unrelated processes took meanwhile;
#   5. the pgbench ceiling (the register-sender transaction on a scratch database),
#      run right before the PostgreSQL reuse scenario it is compared with;
#   6. the noisy neighbour (bench/flood.py): one organization's 30 s attack at the
#      default quotas against another organization's paced calls, for each vector
#      (new domains, DKIM rotation, live DNS checks, kept Idempotency-Key answers,
#      senders);
#   7. the background workers (bench/verifier.py, bench/webhooks.py): checks a second
#      one instance sustains, webhook deliveries a second to a local receiver, and the
#      delay from publishing the records to the `domain.verified` webhook;
#   8. data size (bench/datasize.py): 1 k → 1 M domains seeded by SQL, one organization
#      with 100 k of them and 300 k events; detail, list page, events page and
#      generate-reuse, small against large, each route's ratio against 1.25×.
#
# Output: a table on stdout, everything raw under bench/results/<UTC time>/, and the
# machine-readable summary in bench/results/<UTC time>/results.json (also copied to
# bench/results/latest.json). docs/benchmarks.md is summarised from it by hand.
#
# Needs: cargo, wrk (apt-get install wrk), PostgreSQL 15 with pgbench (started by
# scripts/dev-postgres.sh), curl, jq, python3. Everything runs against 127.0.0.1.
# Knobs (environment): BENCH_DURATION (s per timed run, default 8), BENCH_CONNS (64),
# BENCH_CONNS_HIGH (256), BENCH_THREADS (wrk threads, 2), BENCH_POOL (warm key pool
# size, 600), BENCH_BURST (new-domain burst at BENCH_CONNS, 400), BENCH_SERIAL (warm
# new-domain requests at 1 connection, 100), BENCH_NOPOOL_BURST (200),
# BENCH_NOPOOL_SERIAL (20), BENCH_MULTI_ORGS (organizations in the reuse-orgs
# variant, 32), BENCH_SKIP_MICRO=1, BENCH_SKIP_FLOOD=1, BENCH_SKIP_WORKERS=1,
# BENCH_BACKENDS ("sqlite postgres"), BENCH_BIN (a prebuilt binary to measure),
# BENCH_ONLY_NEW_DOMAINS=1 (of the HTTP load, only the warm-pool new-domain path).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-8}"
CONNS="${BENCH_CONNS:-64}"
CONNS_HIGH="${BENCH_CONNS_HIGH:-256}"
THREADS="${BENCH_THREADS:-2}"
POOL="${BENCH_POOL:-600}"
BURST="${BENCH_BURST:-400}"
SERIAL="${BENCH_SERIAL:-100}"
NOPOOL_BURST="${BENCH_NOPOOL_BURST:-200}"
NOPOOL_SERIAL="${BENCH_NOPOOL_SERIAL:-20}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
REUSE_DOMAINS=4
MULTI_ORGS="${BENCH_MULTI_ORGS:-32}"

if (( POOL < SERIAL + BURST + CONNS )); then
  echo "bench: BENCH_POOL ($POOL) must cover BENCH_SERIAL + BENCH_BURST + BENCH_CONNS (in flight at the end of a burst)" >&2
  exit 2
fi

for tool in cargo wrk pgbench psql curl jq python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 2; }
done

RUN_STARTED=$(date +%s)
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$ROOT/bench/results/$STAMP"
mkdir -p "$OUT"
SCENARIOS="$OUT/scenarios.jsonl"
: >"$SCENARIOS"
# BENCH_BIN: benchmark another build of the service (an earlier commit's, for a
# before/after in one session) instead of building this tree's.
BIN="${BENCH_BIN:-$ROOT/target/release/domain-api}"
BENCH_TARGET="$ROOT/bench/target"
LUA="$ROOT/bench/wrk/scenario.lua"
CLK_TCK=$(getconf CLK_TCK)

log() { printf '\n== %s  [%ss]\n' "$*" "$(( $(date +%s) - RUN_STARTED ))" >&2; }

# ---------------------------------------------------------------- cleanup
PIDS=()
PG_DBS=()
TMP_DIRS=()
PG_ADMIN_URL=""
cleanup() {
  local pid db dir
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for db in "${PG_DBS[@]}"; do
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  for dir in "${TMP_DIRS[@]}"; do
    rm -rf "$dir"
  done
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers
# Stopped processes leave the cleanup list, so a reused pid is never signalled.
forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" != "$1" ]] && keep+=("$p"); done
  PIDS=("${keep[@]}")
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU ticks (user+system) of one process.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# CPU ticks of every postgres process (the pooled backends live through a scenario).
pg_ticks() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '$2 == "(postgres)" { t += $14 + $15 } END { print t + 0 }'
}

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# Waits until a process has used < 10 % of a core for two consecutive 0.5 s samples.
quiesce() {
  local pid=$1 max=${2:-40} calm=0 before after i
  before=$(proc_ticks "$pid")
  for ((i = 0; i < max * 2; i++)); do
    sleep 0.5
    after=$(proc_ticks "$pid")
    if (( (after - before) * 100 < CLK_TCK * 5 )); then
      calm=$((calm + 1))
      (( calm >= 2 )) && return 0
    else
      calm=0
    fi
    before=$after
  done
  echo "bench: warning: process $pid still busy after ${max}s" >&2
}

wait_http() {
  local url=$1 i
  for ((i = 0; i < 300; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $url never answered" >&2
  return 1
}

# Waits for the key pool to reach its capacity: through /metrics when the binary
# exports domain_api_key_pool_depth, else by watching the refill burn CPU (one key
# after another on one core) until the process goes idle.
wait_pool_warm() {
  local pid=$1 port=$2 size=$3 depth i
  local metrics
  metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
  if grep -q '^domain_api_key_pool_depth' <<<"$metrics"; then
    for ((i = 0; i < size * 4 + 200; i++)); do
      depth=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^domain_api_key_pool_depth/ { print int($NF) }' || true)
      (( ${depth:-0} >= size )) && { echo "pool warm: depth $depth (from /metrics)" >&2; return 0; }
      sleep 0.25
    done
    echo "bench: key pool never reached $size" >&2
    return 1
  fi
  sleep 1
  quiesce "$pid" $(( size / 5 + 30 ))
  echo "pool warm: refill went idle (no /metrics depth to read)" >&2
}

# start_server NAME BACKEND POOL_SIZE -> sets SERVER_PID, SERVER_PORT. The creation
# quotas are lifted: the new-domain scenarios measure the write path, not the limit
# (bench/flood.py measures the limit at its defaults).
start_server() {
  local name=$1 pool=$2
  SERVER_PORT=$(free_port)
  local -a unset_env=()
  local var
  for var in $(env | grep -o '^DOMAIN_API_[A-Z_]*' || true); do unset_env+=(-u "$var"); done
  local -a pool_env=()
  [[ "$pool" != default ]] && pool_env=("DOMAIN_API_KEY_POOL_SIZE=$pool")
  env "${unset_env[@]}" -u RUST_LOG \
    DOMAIN_API_BIND="127.0.0.1:$SERVER_PORT" \
    DOMAIN_API_DATABASE_URL="$DB_URL" \
    DOMAIN_API_MASTER_KEY="$MASTER_KEY" \
    DOMAIN_API_DNS_SERVERS=127.0.0.1:9 \
    DOMAIN_API_NEW_DOMAINS_PER_MINUTE=100000 \
    DOMAIN_API_MAX_DOMAINS_PER_ORG=10000000 \
    DOMAIN_API_MAX_SENDERS_PER_DOMAIN=10000000 \
    "${pool_env[@]}" \
    "$BIN" serve 2>"$OUT/server-$name.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$SERVER_PORT/healthz"
}

stop_server() {
  local pid=$1 i
  if curl -fsS "http://127.0.0.1:$SERVER_PORT/metrics" >"$OUT/metrics-$2.txt" 2>/dev/null; then :; else rm -f "$OUT/metrics-$2.txt"; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
  # The "handled" line of every request is tens of MB a run: keep the other lines
  # (start-up, WARN, ERROR: at most 1000) and the last 100.
  local log="$OUT/server-$2.log"
  if [[ -f "$log" ]]; then
    { grep -av 'INFO.*handled' "$log" | head -n 1000 || true
      echo "[bench: per-request 'handled' lines dropped; the last 100 lines follow]"
      tail -n 100 "$log"; } >"$log.kept"
    mv "$log.kept" "$log"
  fi
}

cli() {
  local -a unset_env=()
  local var
  for var in $(env | grep -o '^DOMAIN_API_[A-Z_]*' || true); do unset_env+=(-u "$var"); done
  env "${unset_env[@]}" RUST_LOG=warn DOMAIN_API_DATABASE_URL="$DB_URL" DOMAIN_API_MASTER_KEY="$MASTER_KEY" "$BIN" "$@"
}

# load SCENARIO BACKEND PID PORT MODE CONNS THREADS LIMIT TAG [NDOMAINS]
# One wrk run; appends a JSON line with wrk's numbers and the server's CPU and RSS.
load() {
  local scenario=$1 backend=$2 pid=$3 port=$4 mode=$5 conns=$6 threads=$7 limit=$8 tag=$9 ndomains=${10:-1}
  local duration="${DURATION}s" name="$backend-$scenario-c$conns"
  (( limit > 0 )) && duration=120s   # an upper bound: the script interrupts wrk after LIMIT responses
  quiesce "$pid" 60
  echo 5 >"/proc/$pid/clear_refs"     # reset VmHWM: peak RSS of this scenario only
  local load_before cpu0 pg0
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  python3 bench/proc_cpu.py snap "$OUT/.procs.json"
  cpu0=$(proc_ticks "$pid"); pg0=$(pg_ticks)
  # `times` in the subshell: wrk's own CPU.
  local wrk_cpu
  wrk_cpu=$( (wrk -t "$threads" -c "$conns" -d "$duration" --timeout 30s --latency -s "$LUA" \
      "http://127.0.0.1:$port/" -- "$mode" "$tag" "$limit" "$ndomains" >"$OUT/$name.wrk.txt" 2>&1 || true
    times) | awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } print s }')
  local cpu1 pg1 hwm rss foreign foreign_pct
  cpu1=$(proc_ticks "$pid"); pg1=$(pg_ticks)
  read -r foreign foreign_pct < <(python3 bench/proc_cpu.py foreign "$OUT/.procs.json" "$pid")
  hwm=$(status_kib "$pid" VmHWM); rss=$(status_kib "$pid" VmRSS)
  local wrk_json
  wrk_json=$(sed -n 's/^BENCH_JSON //p' "$OUT/$name.wrk.txt")
  if [[ -z "$wrk_json" ]]; then
    echo "bench: wrk produced no result for $name:" >&2
    cat "$OUT/$name.wrk.txt" >&2
    return 1
  fi
  jq -c -n --argjson w "$wrk_json" \
    --arg scenario "$scenario" --arg backend "$backend" --arg mode "$mode" \
    --argjson conns "$conns" --argjson threads "$threads" --argjson limit "$limit" \
    --argjson cpu "$(( cpu1 - cpu0 ))" --argjson pg "$(( pg1 - pg0 ))" --argjson tck "$CLK_TCK" \
    --argjson foreign "${foreign:-0}" --argjson foreign_pct "${foreign_pct:-0}" \
    --argjson hwm "${hwm:-0}" --argjson rss "${rss:-0}" --arg load "$load_before" --argjson wrkcpu "${wrk_cpu:-0}" '
    {scenario: $scenario, backend: $backend, mode: $mode, connections: $conns, wrk_threads: $threads,
     fixed_count: (if $limit > 0 then $limit else null end)}
    + $w
    + {server_cpu_s: ($cpu / $tck), server_cpu_ms_per_req: (if $w.requests > 0 then 1000 * $cpu / $tck / $w.requests else null end),
       postgres_cpu_s: ($pg / $tck), wrk_cpu_s: $wrkcpu,
       foreign_cpu_s: $foreign, foreign_cpu_pct: $foreign_pct,
       peak_rss_mib: ($hwm / 1024), rss_end_mib: ($rss / 1024), loadavg_1m_before: ($load | tonumber)}' \
    | tee -a "$SCENARIOS" | jq -r '"  \(.backend)/\(.scenario) c=\(.connections): \(.requests) req, \(.rps) req/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, status \(.status), peak RSS \(.peak_rss_mib|floor) MiB, other processes \(.foreign_cpu_pct|floor) % of the machine"' >&2
}

# ---------------------------------------------------------------- machine
log "machine"
jq -n \
  --arg nproc "$(nproc)" \
  --arg model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
  --arg mem "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
  --arg kernel "$(uname -r)" \
  --arg rustc "$(rustc --version)" \
  --arg wrk "$(wrk -v 2>&1 | head -1)" \
  --arg pg "$(pgbench --version)" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')" \
  --arg load "$(cat /proc/loadavg)" \
  '{nproc: ($nproc|tonumber), cpu_model: $model, memory: $mem, kernel: $kernel, rustc: $rustc, wrk: $wrk, pgbench: $pg, commit: $commit, loadavg_at_start: $load}' \
  | tee "$OUT/machine.json" >&2

# ---------------------------------------------------------------- build
if [[ -z "${BENCH_BIN:-}" ]]; then
  log "build: cargo build --release -p domain-api"
  cargo build --release -p domain-api
fi
log "build: bench crate (CARGO_TARGET_DIR=bench/target)"
CARGO_TARGET_DIR="$BENCH_TARGET" cargo build --release --manifest-path bench/Cargo.toml --bin empty-actix
if [[ "${BENCH_SKIP_MICRO:-0}" != 1 ]]; then
  CARGO_TARGET_DIR="$BENCH_TARGET" cargo bench --manifest-path bench/Cargo.toml --bench micro --no-run
fi

# ---------------------------------------------------------------- micro-benchmarks
if [[ "${BENCH_SKIP_MICRO:-0}" != 1 ]]; then
  log "criterion micro-benchmarks"
  touch "$OUT/.micro-start"
  CARGO_TARGET_DIR="$BENCH_TARGET" cargo bench --manifest-path bench/Cargo.toml --bench micro 2>&1 \
    | tee "$OUT/criterion.txt" | grep -E '^[a-z_0-9]+/|time:' >&2
  python3 - "$BENCH_TARGET/criterion" "$OUT/.micro-start" >"$OUT/criterion.json" <<'PY'
import json, os, sys
root, marker = sys.argv[1], os.path.getmtime(sys.argv[2])
out = []
for dirpath, _, files in os.walk(root):
    if os.path.basename(dirpath) == "new" and "estimates.json" in files:
        est_path = os.path.join(dirpath, "estimates.json")
        if os.path.getmtime(est_path) < marker:
            continue  # a benchmark from an earlier run, no longer in the suite
        meta = json.load(open(os.path.join(dirpath, "benchmark.json")))
        est = json.load(open(est_path))
        out.append({
            "group": meta["group_id"], "name": meta["function_id"],
            "mean_ns": est["mean"]["point_estimate"],
            "mean_ci_ns": [est["mean"]["confidence_interval"]["lower_bound"], est["mean"]["confidence_interval"]["upper_bound"]],
            "median_ns": est["median"]["point_estimate"],
        })
json.dump(sorted(out, key=lambda r: (r["group"], r["name"] or "")), sys.stdout, indent=1)
PY
  rm -f "$OUT/.micro-start"
else
  echo '[]' >"$OUT/criterion.json"
fi

# ---------------------------------------------------------------- ceiling: empty handler
log "ceiling: empty actix-web handler"
EMPTY_PORT=$(free_port)
"$BENCH_TARGET/release/empty-actix" "127.0.0.1:$EMPTY_PORT" 2 &
EMPTY_PID=$!
PIDS+=("$EMPTY_PID")
wait_http "http://127.0.0.1:$EMPTY_PORT/"
load empty-handler ceiling "$EMPTY_PID" "$EMPTY_PORT" empty "$CONNS" "$THREADS" 0 empty
load empty-handler ceiling "$EMPTY_PID" "$EMPTY_PORT" empty "$CONNS_HIGH" "$THREADS" 0 empty
kill -TERM "$EMPTY_PID"; wait "$EMPTY_PID" 2>/dev/null || true
forget_pid "$EMPTY_PID"

# ---------------------------------------------------------------- PostgreSQL set-up
PG_BASE=""
if [[ " $BACKENDS " == *" postgres "* ]]; then
  log "PostgreSQL: scripts/dev-postgres.sh"
  PG_URL=$(scripts/dev-postgres.sh | sed -n 's/^export DOMAIN_API_DATABASE_URL=//p')
  PG_BASE="${PG_URL%/*}"
  PG_ADMIN_URL="$PG_BASE/postgres"
fi

# new_pg_db SUFFIX -> sets NEW_DB_URL (not echoed: PG_DBS must grow in this shell)
new_pg_db() {
  local db="bench_${STAMP,,}_$1"
  db="${db//[^a-z0-9_]/_}"
  psql -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  PG_DBS+=("$db")
  NEW_DB_URL="$PG_BASE/$db"
}

# ---------------------------------------------------------------- ceiling: pgbench
pgbench_run() { # NAME SCRIPT CLIENTS URL
  local name=$1 script=$2 clients=$3 url=$4
  python3 bench/proc_cpu.py snap "$OUT/.procs.json"
  # `times` ends the report with the subshell's and pgbench's own CPU time; the
  # PostgreSQL backends pgbench opens exit with it, so their CPU is sampled meanwhile.
  ( pgbench -n -M prepared -c "$clients" -j "$THREADS" -T "$DURATION" -f "$script" \
      -l --log-prefix="$OUT/pgbench-$name" "$url"; times ) >"$OUT/pgbench-$name.txt" 2>&1 &
  local pgbench_pid=$! pg_cpu_s
  pg_cpu_s=$(python3 bench/proc_cpu.py watch postgres "$pgbench_pid")
  wait "$pgbench_pid"
  local foreign foreign_pct
  read -r foreign foreign_pct < <(python3 bench/proc_cpu.py foreign "$OUT/.procs.json" 0 2>/dev/null)
  python3 - "$name" "$clients" "$foreign" "$foreign_pct" "$pg_cpu_s" "$OUT/pgbench-$name.txt" "$OUT"/pgbench-"$name".* >>"$SCENARIOS" <<'PY'
import json, re, sys
name, clients, foreign, foreign_pct = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
pg_cpu_s = float(sys.argv[5])
report, logs = sys.argv[6], [p for p in sys.argv[7:] if not p.endswith(".txt")]
text = open(report).read()
# `times`: the last line is the children's (pgbench's) user and system time.
m = re.findall(r"(\d+)m([0-9.]+)s (\d+)m([0-9.]+)s", text)
client_cpu_s = (int(m[-1][0]) * 60 + float(m[-1][1]) + int(m[-1][2]) * 60 + float(m[-1][3])) if m else None
tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
failed = re.search(r"number of failed transactions: (\d+)", text)
lat = []
for path in logs:
    for line in open(path):
        f = line.split()
        lat.append(int(f[2]) / 1000.0)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else None
print(json.dumps({"scenario": "pgbench-" + name, "backend": "postgres", "mode": "pgbench", "connections": clients,
                  "requests": len(lat), "rps": tps, "failed": int(failed.group(1)) if failed else None,
                  "foreign_cpu_s": foreign, "foreign_cpu_pct": foreign_pct,
                  "pg_cpu_ms_per_tx": 1000.0 * pg_cpu_s / len(lat) if lat else None,
                  "client_cpu_ms_per_tx": 1000.0 * client_cpu_s / len(lat) if lat and client_cpu_s is not None else None,
                  "latency_ms": {"mean": sum(lat) / len(lat) if lat else None, "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": lat[-1] if lat else None}}))
PY
  rm -f "$OUT/pgbench-$name".[0-9]*
  tail -1 "$SCENARIOS" | jq -r '"  pgbench \(.scenario) c=\(.connections): \(.rps|floor) tps, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, PostgreSQL \(.pg_cpu_ms_per_tx) ms + pgbench \(.client_cpu_ms_per_tx) ms CPU per transaction"' >&2
}

# Run right before the service's PostgreSQL reuse scenario: this machine's disk
# (commit fsync) drifts, so the ceiling is measured minutes apart at most.
pgbench_ceiling() {
  log "ceiling: pgbench, register-sender transaction (scratch database)"
  new_pg_db pgbench
  local url=$NEW_DB_URL up
  for up in migrations/postgres/*/up.sql; do
    psql -q -v ON_ERROR_STOP=1 "$url" -f "$up" >/dev/null
  done
  psql -q -v ON_ERROR_STOP=1 "$url" -f bench/pgbench/seed.sql >/dev/null
  pgbench_run register-sender bench/pgbench/register_sender.sql "$CONNS" "$url"
  pgbench_run register-sender-c16 bench/pgbench/register_sender.sql 16 "$url"
  pgbench_run full-request bench/pgbench/full_request.sql "$CONNS" "$url"
}

# ---------------------------------------------------------------- the service
MASTER_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
for backend in $BACKENDS; do
  case "$backend" in
    sqlite)
      dir=$(mktemp -d /tmp/domain-api-bench.XXXXXX)
      TMP_DIRS+=("$dir")
      DB_URL="sqlite://$dir/bench.db"
      ;;
    postgres)
      new_pg_db service
      DB_URL=$NEW_DB_URL
      ;;
    *) echo "bench: unknown backend $backend" >&2; exit 2 ;;
  esac
  log "$backend: fresh database, one organization"
  cli migrate >/dev/null   # only serve and migrate create a database
  ORG_JSON=$(cli org create --name "bench-$backend")
  export BENCH_ACCESS BENCH_SECRET REUSE_TAG
  BENCH_ACCESS=$(jq -r .accessToken <<<"$ORG_JSON")
  BENCH_SECRET=$(jq -r .secretToken <<<"$ORG_JSON")
  REUSE_TAG="reuse-$backend"

  log "$backend: new-domain path, warm key pool ($POOL keys)"
  start_server "$backend-pool$POOL" "$POOL"
  wait_pool_warm "$SERVER_PID" "$SERVER_PORT" "$POOL"
  load new-domain-warm "$backend" "$SERVER_PID" "$SERVER_PORT" new 1 1 "$SERIAL" warm1
  load new-domain-warm "$backend" "$SERVER_PID" "$SERVER_PORT" new "$CONNS" 1 "$BURST" warm64
  stop_server "$SERVER_PID" "$backend-pool$POOL"
  [[ "${BENCH_ONLY_NEW_DOMAINS:-0}" == 1 ]] && continue

  log "$backend: new-domain path, key pool disabled"
  start_server "$backend-pool0" 0
  load new-domain-nopool "$backend" "$SERVER_PID" "$SERVER_PORT" new 1 1 "$NOPOOL_SERIAL" cold1
  load new-domain-nopool "$backend" "$SERVER_PID" "$SERVER_PORT" new "$CONNS" 1 "$NOPOOL_BURST" cold64
  stop_server "$SERVER_PID" "$backend-pool0"

  [[ "$backend" == postgres ]] && pgbench_ceiling

  log "$backend: reuse and rejected-credentials paths (default configuration)"
  start_server "$backend-default" default
  wait_pool_warm "$SERVER_PID" "$SERVER_PORT" 16
  for ((i = 0; i < REUSE_DOMAINS; i++)); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SERVER_PORT/api/v1/emails/domains/generate" \
      -H "X-Api-Access-Token: $BENCH_ACCESS" -H "X-Api-Secret-Token: $BENCH_SECRET" -H 'Content-Type: application/json' \
      -d "{\"email\":\"seed@d$i.$REUSE_TAG.example\",\"inbound\":false}")
    [[ "$code" == 201 ]] || { echo "bench: seeding d$i.$REUSE_TAG.example answered $code" >&2; exit 1; }
  done
  # Reference variant: the same path spread over many organizations (no shared org-row lock).
  export BENCH_ORGS_FILE="$OUT/orgs-$backend.txt"
  : >"$BENCH_ORGS_FILE"
  for ((i = 0; i < MULTI_ORGS; i++)); do
    org=$(cli org create --name "bench-$backend-$i")
    access=$(jq -r .accessToken <<<"$org"); secret=$(jq -r .secretToken <<<"$org")
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SERVER_PORT/api/v1/emails/domains/generate" \
      -H "X-Api-Access-Token: $access" -H "X-Api-Secret-Token: $secret" -H 'Content-Type: application/json' \
      -d "{\"email\":\"seed@o$i.$REUSE_TAG.example\",\"inbound\":false}")
    [[ "$code" == 201 ]] || { echo "bench: seeding o$i.$REUSE_TAG.example answered $code" >&2; exit 1; }
    echo "$access $secret o$i.$REUSE_TAG.example" >>"$BENCH_ORGS_FILE"
  done
  load reuse "$backend" "$SERVER_PID" "$SERVER_PORT" reuse "$CONNS" "$THREADS" 0 r64 "$REUSE_DOMAINS"
  load reuse-orgs "$backend" "$SERVER_PID" "$SERVER_PORT" reuse-orgs "$CONNS" "$THREADS" 0 m64
  load rejected "$backend" "$SERVER_PID" "$SERVER_PORT" rejected "$CONNS" "$THREADS" 0 x64
  # A revoked pair of ours: its tag verifies, so each request costs the lookup.
  revoked=$(cli token create --org "$(jq -r .organizationId <<<"$ORG_JSON")")
  revoked_access=$(jq -r .accessToken <<<"$revoked")
  cli token revoke --access-token "$revoked_access" >/dev/null
  BENCH_ACCESS=$revoked_access BENCH_SECRET=$(jq -r .secretToken <<<"$revoked") \
    load rejected-revoked "$backend" "$SERVER_PID" "$SERVER_PORT" rejected-revoked "$CONNS" "$THREADS" 0 v64
  load reuse "$backend" "$SERVER_PID" "$SERVER_PORT" reuse "$CONNS_HIGH" "$THREADS" 0 r256 "$REUSE_DOMAINS"
  load rejected "$backend" "$SERVER_PID" "$SERVER_PORT" rejected "$CONNS_HIGH" "$THREADS" 0 x256
  stop_server "$SERVER_PID" "$backend-default"
  rm -f "$BENCH_ORGS_FILE"   # throwaway tokens, but tokens all the same
done

# ---------------------------------------------------------------- noisy neighbour
# One organization attacks at the default quotas, one vector at a time, while
# another's paced reuse and detail calls are timed (bench/flood.py starts its own
# server and database). BENCH_SKIP_FLOOD=1 skips it.
if [[ "${BENCH_SKIP_FLOOD:-0}" != 1 ]]; then
  for backend in $BACKENDS; do
    log "noisy neighbour: $backend, new domains"
    python3 bench/flood.py --backend "$backend" --bin "$BIN" >"$OUT/flood-$backend.json"
    for vector in rotation live-checks keyed-answers senders; do
      log "noisy neighbour: $backend, $vector"
      extra=()
      [[ $vector == rotation ]] && extra=(--attacker-domains 60)
      python3 bench/flood.py --backend "$backend" --bin "$BIN" --vector "$vector" "${extra[@]}" \
        >"$OUT/flood-$backend-$vector.json"
    done
  done
fi

# ---------------------------------------------------------------- background workers
# The verifier (SQLite: one instance per database) and the webhook sender, each against
# its own DNS server, receiver and database (bench/verifier.py, bench/webhooks.py need
# dnslib). BENCH_SKIP_WORKERS=1 skips them.
if [[ "${BENCH_SKIP_WORKERS:-0}" != 1 ]]; then
  log "background verifier"
  python3 bench/verifier.py --domains 600 --seconds 20 --concurrency 4 --bin "$BIN" >"$OUT/verifier.json"
  for backend in $BACKENDS; do
    log "webhooks: $backend"
    python3 bench/webhooks.py --backend "$backend" --bin "$BIN" >"$OUT/webhooks-$backend.json"
  done
fi

# ---------------------------------------------------------------- data size
# 1 k → 1 M domains: bench/datasize.py makes, seeds (by SQL) and drops its own
# databases and starts its own server. A route over 1.25× is flagged in its JSON
# and table, not a failure of the run. BENCH_SKIP_DATASIZE=1 skips it.
if [[ "${BENCH_SKIP_DATASIZE:-0}" != 1 ]]; then
  log "data size: ${BENCH_DATASIZE_SIZES:-1000,1000000} domains"
  python3 bench/datasize.py --backends "${BACKENDS// /,}" --sizes "${BENCH_DATASIZE_SIZES:-1000,1000000}" \
    --bin "$BIN" >"$OUT/datasize.json"
fi

# ---------------------------------------------------------------- summary
log "summary"
ELAPSED=$(( $(date +%s) - RUN_STARTED ))
python3 bench/summarise.py "$OUT" "$ELAPSED" \
  "duration=${DURATION}s conns=$CONNS conns_high=$CONNS_HIGH wrk_threads=$THREADS pool=$POOL burst=$BURST serial=$SERIAL nopool_burst=$NOPOOL_BURST nopool_serial=$NOPOOL_SERIAL"
rm -f "$OUT/.procs.json"
cp "$OUT/results.json" "$ROOT/bench/results/latest.json"
echo "results: bench/results/$STAMP/results.json (and bench/results/latest.json); total ${ELAPSED}s"
