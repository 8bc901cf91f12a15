#!/usr/bin/env bash
# CI: the Debian package. Builds it (cargo-deb; the release profile strips symbols),
# checks the unit with `systemd-analyze verify`, installs it with `dpkg -i`, starts
# the installed binary the way the unit does — the package's system user, the unit's
# environment file, a credentials directory holding the package's master key, the
# state directory as working directory, no new privileges; systemd need not run —
# gets 200 from /readyz and 201 from generate (an organization made with the
# installed CLI, as that user), then removes the package with `dpkg -r`.
# Needs root (dpkg, the user, setpriv). Fails loudly on any step.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"

if ! command -v cargo-deb >/dev/null; then
  cargo install cargo-deb --locked --version 3.8.0
fi
if ! command -v systemd-analyze >/dev/null; then
  (apt-get install -y -q systemd >/dev/null 2>&1) \
    || (apt-get update -q >/dev/null && apt-get install -y -q systemd >/dev/null)
fi
for tool in setpriv curl dpkg; do command -v "$tool" >/dev/null; done

echo "-- cargo deb"
cargo deb -p domain-api
deb=$(ls -t "$target"/debian/domain-api_*.deb | head -1)
echo "package: $deb ($(stat -c %s "$deb") bytes)"
echo "binary (release, symbols stripped): $(stat -c %s "$target/release/domain-api") bytes"

if dpkg -s domain-api >/dev/null 2>&1; then
  echo "domain-api is installed (or its settings are) on this machine: not touching it" >&2
  exit 1
fi
if [ -e /var/lib/domain-api ] || getent passwd domain-api >/dev/null; then
  echo "/var/lib/domain-api or a domain-api user exists: not touching them" >&2
  exit 1
fi

user=domain-api
run_dir=$(mktemp -d)
chmod 0755 "$run_dir"   # the service's user reaches its own directories inside
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  # Leave the machine as it was: no package record, no settings, no key, no state.
  dpkg --purge domain-api >/dev/null 2>&1 || true
  rm -rf /var/lib/domain-api "$run_dir" /etc/domain-api
  userdel "$user" 2>/dev/null || true
  groupdel "$user" 2>/dev/null || true
}
trap cleanup EXIT

echo "-- dpkg -i"
dpkg -i "$deb"
test -x /usr/bin/domain-api
test -f /lib/systemd/system/domain-api.service
test -f /etc/domain-api/domain-api.env
test -f /etc/domain-api/config.toml
grep -qx 'DOMAIN_API_CONFIG=/etc/domain-api/config.toml' /etc/domain-api/domain-api.env
test "$(stat -c %a /etc/domain-api/master.key)" = 640
test "$(stat -c %U:%G /etc/domain-api/master.key)" = root:domain-api
getent passwd domain-api >/dev/null

echo "-- systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/domain-api.service
unit=/lib/systemd/system/domain-api.service
for directive in 'User=domain-api' 'StateDirectory=domain-api' 'ProtectSystem=strict' \
  'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' \
  'SystemCallFilter=@system-service' 'LoadCredential=master-key:/etc/domain-api/master.key' \
  'Restart=on-failure' 'KillSignal=SIGTERM'; do
  grep -qx "$directive" "$unit" || { echo "the unit lacks $directive" >&2; exit 1; }
done

echo "-- start the installed binary as the unit does"
# StateDirectory=domain-api, StateDirectoryMode=0700, owned by the service's user.
install -d -m 0700 -o "$user" -g "$user" /var/lib/domain-api
# LoadCredential=master-key:/etc/domain-api/master.key: a copy only the service reads.
creds="$run_dir/credentials"
install -d -m 0500 -o "$user" -g "$user" "$creds"
install -m 0400 -o "$user" -g "$user" /etc/domain-api/master.key "$creds/master-key"
install -d -m 0700 -o "$user" -g "$user" "$run_dir/runtime"
# EnvironmentFile=: the installed file, then what this check needs on top: a free
# port reported in a file, and DNS that answers nothing (no lookup leaves the machine).
mapfile -t settings < <(grep -E '^[A-Z_][A-Z0-9_]*=' /etc/domain-api/domain-api.env)
settings+=(
  "DOMAIN_API_BIND=127.0.0.1:0"
  "DOMAIN_API_ADDR_FILE=$run_dir/runtime/addr"
  "DOMAIN_API_DNS_SERVERS=127.0.0.1:9"
  "CREDENTIALS_DIRECTORY=$creds"
  "PATH=/usr/bin:/bin"
)
as_service() {
  (cd /var/lib/domain-api && exec setpriv --reuid="$user" --regid="$user" --clear-groups \
    --no-new-privs env -i "${settings[@]}" "$@")
}
# Not through as_service: a backgrounded function is a subshell of its own, and $!
# must be the server's PID (exec all the way down) for SIGTERM to reach it.
(cd /var/lib/domain-api && exec setpriv --reuid="$user" --regid="$user" --clear-groups \
  --no-new-privs env -i "${settings[@]}" /usr/bin/domain-api serve) 2>"$run_dir/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
  [ -s "$run_dir/runtime/addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$run_dir/server.log" >&2; exit 1; }
  sleep 0.1
done
addr=$(cat "$run_dir/runtime/addr")
echo "serving on $addr as $user"

ready=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")
test "$ready" = 200 || { echo "/readyz answered $ready" >&2; cat "$run_dir/server.log" >&2; exit 1; }
echo "/readyz: 200"

org=$(as_service /usr/bin/domain-api org create --name "CI package check")
access=$(printf '%s' "$org" | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p')
secret=$(printf '%s' "$org" | sed -n 's/.*"secretToken":"\([^"]*\)".*/\1/p')
test -n "$access" && test -n "$secret"
generated=$(curl -s -o "$run_dir/generate.json" -w '%{http_code}' \
  -X POST "http://$addr/api/v1/emails/domains/generate" \
  -H "X-Api-Access-Token: $access" -H "X-Api-Secret-Token: $secret" \
  -H "Content-Type: application/json" \
  -d '{"email":"noreply@package-check.example","inbound":false}')
test "$generated" = 201 || { echo "generate answered $generated: $(cat "$run_dir/generate.json")" >&2; exit 1; }
echo "generate: 201"
# The database is the state directory's, owned by the service's user, private.
test "$(stat -c %U /var/lib/domain-api/domain-api.db)" = "$user"
test "$(stat -c %a /var/lib/domain-api/domain-api.db)" = 600
grep 'read the configuration file' "$run_dir/server.log" | grep -q /etc/domain-api/config.toml \
  || { echo "the server did not read /etc/domain-api/config.toml" >&2; cat "$run_dir/server.log" >&2; exit 1; }
grep -q 'credential master-key' "$run_dir/server.log" \
  || { echo "the master key did not come from the credential" >&2; cat "$run_dir/server.log" >&2; exit 1; }
test ! -e /var/lib/domain-api/master.key

kill -TERM "$server_pid"
wait "$server_pid" || { echo "the server did not stop cleanly on SIGTERM" >&2; exit 1; }
server_pid=

echo "-- dpkg -r"
dpkg -r domain-api
test ! -e /usr/bin/domain-api
test ! -e /lib/systemd/system/domain-api.service
echo "package check passed"
