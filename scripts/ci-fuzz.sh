#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in fuzz/ (see fuzz/README.md).
#
#   scripts/ci-fuzz.sh [SECONDS]      # SECONDS per target, default 60
#
# Installs cargo-fuzz from crates.io if it is missing (`cargo install --locked`).
# Builds on the stable toolchain: cargo-fuzz passes nightly-only `-Z` flags (the
# sanitizer), which stable rustc accepts under RUSTC_BOOTSTRAP=1; no nightly needed.
# Each target starts from a temporary copy of its committed corpus, so the run never
# writes into the repository's corpus; crash inputs are printed (base64) and kept in
# FUZZ_ARTIFACTS_DIR (default: a temporary folder, kept only when something crashed).
# Prints each target's executions (libFuzzer's stat::number_of_executed_units) and
# exits non-zero if any target crashed, timed out or ran out of memory.
#
# FUZZ_SANITIZER=address|none (default address): `none` runs about twice as fast; the
# targets are safe Rust, so ASan mostly guards the dependencies' unsafe code.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS per target, default 60]" >&2
  exit 2
fi
sanitizer="${FUZZ_SANITIZER:-address}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
started=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
  echo "cargo-fuzz installed in $(( $(date +%s) - started )) s"
fi
echo "== $(cargo fuzz --version), $(rustc --version)"

export RUSTC_BOOTSTRAP=1
tmp=$(mktemp -d)
artifacts="${FUZZ_ARTIFACTS_DIR:-$tmp/artifacts}"
keep_tmp=0
trap '[[ $keep_tmp == 1 ]] || rm -rf "$tmp"' EXIT

echo "== cargo fuzz build (sanitizer: $sanitizer)"
build_started=$(date +%s)
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"
echo "built in $(( $(date +%s) - build_started )) s"

failed=()
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  echo "== $target: ${seconds} s"
  corpus="$tmp/corpus/$target"
  mkdir -p "$corpus" "$artifacts/$target"
  if [[ -d "fuzz/corpus/$target" ]]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  fi
  seeds=$(find "$corpus" -type f | wc -l)
  dict=()
  if [[ -f "fuzz/dict/$target.dict" ]]; then
    dict=("-dict=fuzz/dict/$target.dict")
  fi
  log="$tmp/$target.log"
  status=0
  cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$target/" "${dict[@]}" \
    >"$log" 2>&1 || status=$?
  execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
  rate=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log")
  echo "$target: ${execs:-?} executions (${rate:-?}/s), corpus $seeds -> $(find "$corpus" -type f | wc -l) inputs"
  if [[ $status -ne 0 ]]; then
    failed+=("$target")
    keep_tmp=1
    echo "!! $target FAILED (exit $status):"
    grep -A 2 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)' "$log" | head -n 20
    grep -E '^SUMMARY|Test unit written' "$log" || tail -n 20 "$log"
    echo "!! full libFuzzer log: $log"
    for crash in "$artifacts/$target"/*; do
      [[ -f "$crash" ]] || continue
      echo "!! input $crash ($(wc -c <"$crash") bytes), base64:"
      base64 -w 76 "$crash"
      echo "!! reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $target $crash"
    done
  fi
done

echo "fuzzing took $(( $(date +%s) - started )) s in all"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz targets failed: ${failed[*]} (inputs kept in $artifacts)" >&2
  exit 1
fi
echo "fuzz targets passed"
