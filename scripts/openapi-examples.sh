#!/usr/bin/env bash
# Regenerates the OpenAPI document's success examples from real answers: starts the
# server (scripts/ci-serve.sh), runs scripts/openapi-examples.py against it, and
# writes crates/api-actix/src/openapi/examples.json. Then regenerate the committed
# document: UPDATE_OPENAPI=1 cargo test -p api-actix --lib openapi
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/ci-serve.sh
source scripts/ci-serve.sh
org2="$("$BIN" org create --name claimant)"
field2() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$org2" "$1"; }
python3 scripts/openapi-examples.py "$BASE_URL" "$ACCESS" "$SECRET" \
  "$(field2 accessToken)" "$(field2 secretToken)" "$JWT" crates/api-actix/src/openapi/examples.json
