#!/usr/bin/env bash
# Runs schemathesis (from PyPI) against the real server's own OpenAPI document:
# fails on any 5xx or any response that violates the document.
# Usage: scripts/ci-schemathesis.sh [MAX_EXAMPLES]   (default 60 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES="${1:-60}"

command -v schemathesis >/dev/null || python3 -m pip install -q --disable-pip-version-check schemathesis
# shellcheck source=scripts/ci-serve.sh
source scripts/ci-serve.sh

# Auth is applied per security scheme; every check but two; no 5xx tolerated.
# - positive_data_acceptance: the document is never stricter than the server (an
#   address or domain pattern a client checks must not refuse what the service takes),
#   so a schema-valid value can still be one the service refuses with its 400/404.
# - unsupported_method: schemathesis sends the same Idempotency-Key on every
#   operation (the parameter's example); on a method the route does not take, the
#   key's guard answers 422 (the key already answered another request) before the
#   router can answer 405.
schemathesis run "$BASE_URL/api/v1/openapi.json" \
  --url "$BASE_URL" \
  --checks all \
  --exclude-checks positive_data_acceptance,unsupported_method \
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
