#!/usr/bin/env bash
# Refreshes docs/screenshots/: the Setup page at desktop (1280×900) and phone (390×844)
# size, before and after the records are published, and with a merged SPF record.
# Needs chromium and chromedriver (apt-get install -y chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOMAIN_API_SCREENSHOTS="$PWD/docs/screenshots"
export DOMAIN_API_REQUIRE_BROWSER=1
cargo test -p domain-api --test e2e setup_page -- --test-threads=1
ls -l "$DOMAIN_API_SCREENSHOTS"
