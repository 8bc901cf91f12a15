#!/usr/bin/env bash
# The Domain Connect template (domain-connect/*.json) against the Templates
# repository's schema (vendored: domain-connect/template.schema) and its binding
# template rules, with jsonschema pinned in a venv of its own.
# Usage: scripts/ci-domain-connect.sh
set -euo pipefail
cd "$(dirname "$0")/.."

JSONSCHEMA_VERSION=4.26.0
venv="${DOMAIN_CONNECT_TOOLS_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/domain-connect-tools}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "jsonschema==$JSONSCHEMA_VERSION"
"$venv/bin/python" domain-connect/check_template.py
