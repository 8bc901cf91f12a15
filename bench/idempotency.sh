#!/usr/bin/env bash
# Throughput of the reuse path with and without an Idempotency-Key on every request
# (keyed within 0.85x the throughput and 1.15x the p99), on SQLite and PostgreSQL,
# one organization, 64 connections, 8 s each, release build, with the CPU each
# request cost the server and (PostgreSQL) the database. Everything on 127.0.0.1.
# Each request registers a new sender on one of BENCH_REUSE_DOMAINS (default 1)
# existing domains. The last fields say how group commit ran the registrations
# (`/metrics`): batches, and registrations run as a set or one by one.
#
#   bench/idempotency.sh [BIN]      (needs wrk, curl, jq; PostgreSQL via scripts/dev-postgres.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/target/release/domain-api}"
CONNS="${BENCH_CONNS:-64}"
DURATION="${BENCH_DURATION:-8}"
DOMAINS="${BENCH_REUSE_DOMAINS:-1}"
eval "$("$ROOT/scripts/dev-postgres.sh")"
PG_BASE="${DOMAIN_API_DATABASE_URL%/*}"

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # backend keyed
  local backend=$1 keyed=$2 work db url port pid org access secret tag load
  # The machine's load average before this run starts (other builders share it).
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  work="$(mktemp -d)"
  tag="i$RANDOM$keyed"
  if [[ $backend == sqlite ]]; then
    url="sqlite://$work/bench.db"
  else
    db="idem_$RANDOM"
    psql -q "$PG_BASE/postgres" -c "CREATE DATABASE $db" >/dev/null
    url="$PG_BASE/$db"
  fi
  export DOMAIN_API_DATABASE_URL="$url" DOMAIN_API_MASTER_KEY="dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="
  export DOMAIN_API_BIND=127.0.0.1:0 DOMAIN_API_ADDR_FILE="$work/addr" RUST_LOG="${BENCH_RUST_LOG:-warn}"
  export DOMAIN_API_VERIFIER=off DOMAIN_API_WEBHOOK_SENDER=off DOMAIN_API_DNS_SERVERS=127.0.0.1:9
  export DOMAIN_API_NEW_DOMAINS_PER_MINUTE=100000 DOMAIN_API_MAX_SENDERS_PER_DOMAIN=10000000
  # The reuse path draws no key: no pool refill competing for the cores.
  export DOMAIN_API_KEY_POOL_SIZE=0
  "$BIN" migrate   # only serve and migrate create a database
  org="$("$BIN" org create --name bench)"
  access=$(jq -r .accessToken <<<"$org"); secret=$(jq -r .secretToken <<<"$org")
  "$BIN" serve >"$work/log" 2>&1 & pid=$!
  [[ -n "${BENCH_KEEP_LOG:-}" ]] && ln -sf "$work/log" "/tmp/bench-$backend-$keyed.log"
  for _ in $(seq 1 100); do [[ -s $work/addr ]] && break; sleep 0.1; done
  port="$(cat "$work/addr")"
  for ((d = 0; d < DOMAINS; d++)); do
    curl -fsS -o /dev/null -X POST "http://$port/api/v1/emails/domains/generate" \
      -H "X-Api-Access-Token: $access" -H "X-Api-Secret-Token: $secret" -H "Content-Type: application/json" \
      -d "{\"email\":\"seed@d$d.$tag.example\"}"
  done
  local cpu_before cpu_after wrk_pid db_cpu=0
  cpu_before=$(cpu_ticks "$pid")
  BENCH_ACCESS=$access BENCH_SECRET=$secret REUSE_TAG=$tag BENCH_IDEMPOTENCY=$keyed \
    wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/wrk/scenario.lua" "http://$port" -- reuse "$tag" 0 "$DOMAINS" \
    >"$work/wrk.out" & wrk_pid=$!
  # PostgreSQL's CPU while wrk runs (its backends), beside the server's own.
  [[ $backend == postgres ]] && db_cpu=$(python3 "$ROOT/bench/proc_cpu.py" watch postgres "$wrk_pid")
  wait "$wrk_pid"
  cpu_after=$(cpu_ticks "$pid")
  # Group commit's counters (0 where the binary predates them).
  local metrics batches set_based one_by_one
  metrics="$(curl -fsS "http://$port/metrics")"
  counter() { awk -v n="$1" '$1 == n {print $2; f=1} END {if (!f) print 0}' <<<"$metrics"; }
  batches=$(counter domain_api_register_batches_total)
  set_based=$(counter domain_api_register_set_based_total)
  one_by_one=$(counter domain_api_register_one_by_one_total)
  sed -n 's/^BENCH_JSON //p' "$work/wrk.out" | jq -c --arg backend "$backend" --arg keyed "$keyed" \
      --argjson server_s "$(awk -v a="$cpu_before" -v b="$cpu_after" -v t="$(getconf CLK_TCK)" 'BEGIN{print (b-a)/t}')" \
      --argjson db_s "$db_cpu" --argjson batches "$batches" \
      --argjson set_based "$set_based" --argjson one_by_one "$one_by_one" --arg load "$load" \
      '{backend:$backend, idempotency_key:($keyed=="1"), rps, p50:.latency_ms.p50, p99:.latency_ms.p99,
        cpu_ms_per_request:{server:(1000*$server_s/(.status."2xx"+0.0001)*100|round/100),
                            database:(1000*$db_s/(.status."2xx"+0.0001)*100|round/100)}, status,
        group_commit:{batches:$batches, set_based:$set_based, one_by_one:$one_by_one}, load_before:$load}'
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [[ $backend == postgres ]] && psql -q "$PG_BASE/postgres" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
  [[ -n "${BENCH_KEEP_LOG:-}" ]] || rm -rf "$work"
}

for backend in ${BENCH_BACKENDS:-sqlite postgres}; do
  run "$backend" 0
  [[ -n "${BENCH_ONLY_PLAIN:-}" ]] || run "$backend" 1
done
