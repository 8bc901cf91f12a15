#!/usr/bin/env bash
# Runs schemathesis (from PyPI) against the real server's own OpenAPI document:
# fails on any 5xx or any response that violates the document.
# Usage: scripts/ci-schemathesis.sh [MAX_EXAMPLES]   (default 60 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES="${1:-60}"

command -v schemathesis >/dev/null || python3 -m pip install -q --disable-pip-version-check schemathesis
python3 -c 'import dnslib' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check dnslib
cargo build -q -p domain-api
BIN="$PWD/target/debug/domain-api"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export DOMAIN_API_BIND="127.0.0.1:$port"
export DOMAIN_API_DATABASE_URL="sqlite://$work/st.db"
# Every name resolves to 127.0.0.1 (scripts/loopback-dns.py), so the webhook URLs the
# fuzzer invents can be created; the sender is off and only loopback is allowed, so
# nothing is ever sent anywhere.
dns_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 scripts/loopback-dns.py "$dns_port" &
dns=$!
trap 'kill "$dns" 2>/dev/null || true' EXIT
export DOMAIN_API_DNS_SERVERS="127.0.0.1:$dns_port" DOMAIN_API_DNS_TIMEOUT_MS=300
export DOMAIN_API_WEBHOOK_SENDER=off DOMAIN_API_WEBHOOK_ALLOW_NETS=127.0.0.0/8
export DOMAIN_API_KEY_POOL_SIZE=4
export DOMAIN_API_JWT_SECRET="schemathesis-only-secret-0123456789abcdef"
export RUST_LOG=warn

# Only serve and migrate create a database; the organization comes first.
"$BIN" migrate
org_json="$("$BIN" org create --name schemathesis)"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$org_json" "$1"; }
ACCESS="$(field accessToken)"; SECRET="$(field secretToken)"; ORG="$(field organizationId)"
JWT="$("$BIN" jwt issue --org "$ORG" --ttl 1h)"

"$BIN" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" "$dns" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://$DOMAIN_API_BIND/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

# Auth is applied per security scheme; all checks; no 5xx tolerated.
schemathesis run "http://$DOMAIN_API_BIND/api/v1/openapi.json" \
  --checks all \
  --max-examples "$MAX_EXAMPLES" \
  --generation-deterministic \
  --request-timeout 10 \
  -H "X-Api-Access-Token: $ACCESS" \
  -H "X-Api-Secret-Token: $SECRET" \
  -H "Authorization: Bearer $JWT"
status=$?
if grep -qiE 'panicked|stack backtrace' "$work/server.log"; then
  echo "the server panicked during schemathesis:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
exit $status
