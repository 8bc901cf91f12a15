#!/usr/bin/env bash
# The OpenAPI document as stock tools see it: the document the real server serves
# must be docs/openapi.json byte for byte, and openapi-spec-validator (pinned) must
# accept it with no error.
# Usage: scripts/ci-openapi.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
venv="${OPENAPI_TOOLS_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/openapi-tools}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"

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
