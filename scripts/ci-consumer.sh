#!/usr/bin/env bash
# domain-core as another service uses it: examples/consumer (outside the workspace)
# depends on domain-core by path and is built, linted and tested here; then
# domain-core's doc-tests run with the `mocks` feature (the mocks' example included).
# Usage: scripts/ci-consumer.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== domain-core's doc-tests, mocks included"
cargo test -p domain-core --features mocks --doc

echo "== examples/consumer: a crate outside the workspace on domain-core alone"
target="${CARGO_TARGET_DIR:-$PWD/target}/consumer"
(
  cd examples/consumer
  cargo fmt --check
  CARGO_TARGET_DIR="$target" cargo clippy --all-targets -- -D warnings
  CARGO_TARGET_DIR="$target" cargo test
)
