#!/usr/bin/env bash
# The OpenAPI document as stock tools see it: the document the real server serves
# must be docs/openapi.json byte for byte, openapi-spec-validator (pinned) must accept
# it with no error, openapi-python-client (pinned) must generate a client with every
# operation, and clients/python/flow.py runs generate → detail → verify → rotate →
# events → webhooks against the live server through that client.
# Usage: scripts/ci-openapi.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
venv="${OPENAPI_TOOLS_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/openapi-tools}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" \
  "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION"

# shellcheck source=scripts/ci-serve.sh
source scripts/ci-serve.sh

curl -fsS "$BASE_URL/api/v1/openapi.json" -o "$work/served.json"
if ! cmp -s "$work/served.json" docs/openapi.json; then
  echo "the served document is not docs/openapi.json; regenerate it with" >&2
  echo "  UPDATE_OPENAPI=1 cargo test -p api-actix --lib openapi" >&2
  diff <(python3 -m json.tool "$work/served.json") <(python3 -m json.tool docs/openapi.json) | head -40 >&2 || true
  exit 1
fi
"$venv/bin/openapi-spec-validator" "$work/served.json"
echo "OpenAPI document: served = committed, valid"

# Generated from the served document; a warning (a skipped operation or schema) fails.
"$venv/bin/openapi-python-client" generate --path "$work/served.json" --meta none \
  --config clients/python/config.yaml --output-path "$work/python/domain_api_client" \
  >"$work/generate.log" 2>&1 || { cat "$work/generate.log" >&2; exit 1; }
if grep -qiE 'warning|error|skipp' "$work/generate.log"; then
  cat "$work/generate.log" >&2
  exit 1
fi
# One module per operation, named after its operationId.
missing=0
for id in $(python3 -c 'import json,sys
for item in json.load(open(sys.argv[1]))["paths"].values():
    for op in item.values(): print(op["operationId"])' "$work/served.json"); do
  module=$(python3 -c 'import re,sys; print(re.sub(r"(?<!^)(?=[A-Z])", "_", sys.argv[1]).lower())' "$id")
  if ! ls "$work"/python/domain_api_client/api/*/"$module.py" >/dev/null 2>&1; then
    echo "the Python client has no $module.py (operation $id)" >&2
    missing=1
  fi
done
[ "$missing" = 0 ]
PYTHONPATH="$work/python" "$venv/bin/python" clients/python/flow.py "$BASE_URL" "$ACCESS" "$SECRET"
