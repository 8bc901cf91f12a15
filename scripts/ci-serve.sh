# Sourced by the CI scripts that need the real server (scripts/ci-schemathesis.sh,
# scripts/ci-clients.sh): builds the debug binary, starts it on 127.0.0.1 with a
# temporary SQLite database and a loopback DNS server, creates an organization and a
# dashboard JWT. Sets BIN, DOMAIN_API_BIND, BASE_URL, ACCESS, SECRET, ORG, JWT, work;
# the EXIT trap stops both servers and removes the directory.
command -v python3 >/dev/null
python3 -c 'import dnslib' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check dnslib
cargo build -q -p domain-api
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/domain-api"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export DOMAIN_API_BIND="127.0.0.1:$port"
BASE_URL="http://$DOMAIN_API_BIND"
export DOMAIN_API_DATABASE_URL="sqlite://$work/st.db"
# Every name resolves to 127.0.0.1 (scripts/loopback-dns.py), so webhook URLs can be
# created; the sender is off and only loopback is allowed, so nothing is ever sent
# anywhere.
dns_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 scripts/loopback-dns.py "$dns_port" &
dns=$!
trap 'kill "$dns" 2>/dev/null || true' EXIT
export DOMAIN_API_DNS_SERVERS="127.0.0.1:$dns_port" DOMAIN_API_DNS_TIMEOUT_MS=300
export DOMAIN_API_WEBHOOK_SENDER=off DOMAIN_API_WEBHOOK_ALLOW_NETS=127.0.0.0/8
export DOMAIN_API_KEY_POOL_SIZE=4
export DOMAIN_API_JWT_SECRET="ci-only-secret-0123456789abcdef-0123456789"
export RUST_LOG=warn
# Fuzzers call validate and verify hundreds of times a minute: past the live-check
# budget every one would be a (documented) 429 that exercises nothing.
export DOMAIN_API_LIVE_CHECKS_PER_MINUTE=1000000

# Only serve and migrate create a database; the organization comes first.
"$BIN" migrate
org_json="$("$BIN" org create --name ci)"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$org_json" "$1"; }
ACCESS="$(field accessToken)"; SECRET="$(field secretToken)"; ORG="$(field organizationId)"
JWT="$("$BIN" jwt issue --org "$ORG" --ttl 1h)"

"$BIN" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" "$dns" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$BASE_URL/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$BASE_URL/healthz" >/dev/null
