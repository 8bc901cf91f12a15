#!/usr/bin/env bash
# Supply-chain checks with cargo-deny against deny.toml: licences, bans, sources,
# and — when a RustSec advisory database can be had — advisories.
#
#   scripts/ci-deny.sh
#
# Installs cargo-deny from crates.io if it is missing (`cargo install --locked`:
# 3.5 to 8 minutes on 2 cores, depending on what else runs); the checks themselves
# take seconds. licences, bans and sources need nothing but crates.io and fail the
# script on any error.
#
# The advisory database is a git repository on GitHub, which some machines (this
# project's CI among them) cannot reach, and no package on crates.io, PyPI, npm or
# Debian carries a copy. So advisories are checked:
#   1. online, when `cargo deny fetch db` can clone or update the database;
#   2. else offline, against a database already under DENY_ADVISORY_DBS (default
#      $CARGO_HOME/advisory-dbs — what `cargo deny fetch db` fills on a connected
#      machine; copy that folder over), if there is one;
#   3. else not at all, and the script says so loudly. DENY_REQUIRE_ADVISORIES=1
#      turns that into a failure instead of a note.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$cargo_home/bin:$PATH"

if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "== installing cargo-deny (cargo install cargo-deny --locked)"
  started=$(date +%s)
  cargo install cargo-deny --locked
  echo "cargo-deny installed in $(( $(date +%s) - started )) s"
fi
echo "== $(cargo deny --version)"

echo "== cargo deny check licenses bans sources"
cargo deny --locked check licenses bans sources

echo "== cargo deny check advisories"
dbs="${DENY_ADVISORY_DBS:-$cargo_home/advisory-dbs}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The same policy with db-path pointing at $dbs (cargo-deny has no flag for it).
awk -v path="$dbs" '{ print } /^\[advisories\]/ { printf "db-path = \"%s\"\n", path }' \
  deny.toml >"$tmp/deny.toml"

if cargo deny --config "$tmp/deny.toml" fetch db >"$tmp/fetch.log" 2>&1; then
  cargo deny --locked --config "$tmp/deny.toml" check advisories
elif compgen -G "$dbs/*/.git" >/dev/null; then
  sed 's/^/  /' "$tmp/fetch.log" | tail -n 3
  echo "advisory database could not be updated; checking against the local copy in $dbs"
  for repo in "$dbs"/*/.git; do
    echo "  $(dirname "$repo"): last commit $(git -C "$(dirname "$repo")" show -s --format=%cI HEAD)"
  done
  cargo deny --offline --locked --config "$tmp/deny.toml" check advisories
else
  sed 's/^/  /' "$tmp/fetch.log" | tail -n 3
  cat <<EOF
!! ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched
!! (it lives on GitHub) and there is no local copy under $dbs.
!! Known vulnerabilities in Cargo.lock were NOT looked for. To check them here,
!! copy \$CARGO_HOME/advisory-dbs from a machine where 'cargo deny fetch db' works
!! into $dbs (or point DENY_ADVISORY_DBS at it) and run this script again.
EOF
  if [[ "${DENY_REQUIRE_ADVISORIES:-0}" == 1 ]]; then
    echo "DENY_REQUIRE_ADVISORIES=1: failing" >&2
    exit 1
  fi
fi
echo "cargo deny passed"
