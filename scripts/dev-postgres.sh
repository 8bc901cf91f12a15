#!/usr/bin/env bash
# Starts the machine's PostgreSQL 15 (cluster "main", port 5432) if it is down, and
# makes sure a role and database for domain-api exist (the role may create databases
# and roles: tests make a database each, and a least-privilege role). Prints the exports to use.
# Safe to run again. Needs root (or the postgres user) for pg_ctlcluster and psql.
set -euo pipefail

# Only the exports go to stdout (callers `eval` it); everything the PostgreSQL tools
# print -- "Removed stale pid file." after an unclean stop, say -- goes to stderr.
exec 3>&1 1>&2

ROLE="${DOMAIN_API_PG_ROLE:-domain_api}"
PASSWORD="${DOMAIN_API_PG_PASSWORD:-domain_api_dev}"
DATABASE="${DOMAIN_API_PG_DATABASE:-domain_api}"
VERSION="${DOMAIN_API_PG_VERSION:-15}"
CLUSTER="${DOMAIN_API_PG_CLUSTER:-main}"

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi
}

if ! pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
  # 3>&-: the server must not inherit the exports pipe, or `$(...)` never sees EOF.
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start 3>&-
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p 5432 >/dev/null

as_postgres psql -v ON_ERROR_STOP=1 -q -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN
    CREATE ROLE ${ROLE} LOGIN CREATEDB CREATEROLE PASSWORD '${PASSWORD}';
  ELSE
    ALTER ROLE ${ROLE} LOGIN CREATEDB CREATEROLE PASSWORD '${PASSWORD}';
  END IF;
END
\$\$;
SQL
if ! as_postgres psql -tAq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'" | grep -q 1; then
  as_postgres createdb -O "$ROLE" "$DATABASE"
fi

URL="postgres://${ROLE}:${PASSWORD}@127.0.0.1:5432/${DATABASE}"
echo "export DOMAIN_API_TEST_POSTGRES_URL=${URL}" >&3
echo "export DOMAIN_API_DATABASE_URL=${URL}" >&3
