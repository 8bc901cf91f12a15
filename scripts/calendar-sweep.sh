#!/usr/bin/env bash
# Runs every test binary of the workspace with the clock moved, so that no test can
# depend on the calendar: a test that compares a fixed date with a time the code
# takes from the system passes today and fails on some later day.
#
#   scripts/calendar-sweep.sh            # +365d, then -365d
#   scripts/calendar-sweep.sh +30d -2y   # any offsets libfaketime understands
#
# The binaries are built first, then run under Debian's `faketime` (libfaketime)
# one by one, each from its package's directory as cargo would: cargo itself
# deadlocks under libfaketime, so it only builds. Only the wall clock moves
# (FAKETIME_DONT_FAKE_MONOTONIC=1): timers and timeouts keep their real lengths.
# The processes a test starts (the real binary of the end-to-end tests) inherit the
# moved clock; PostgreSQL keeps its own, and no statement of the service reads it
# (the service passes every time it stores). The outside tools the tests start keep
# the real clock: chromedriver (and the Chromium it starts) and named-checkzone hang
# under libfaketime, and read no clock that matters here (the Setup page shows the
# times the service sends). They are reached through wrappers, first on PATH, that
# start the real command without the preload.
#
# Set DOMAIN_API_CALENDAR_SKIP to a regex of test binary names to leave out (e.g.
# "^e2e$" for a quick run of the crates' own tests). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

offsets=("$@")
[ ${#offsets[@]} -gt 0 ] || offsets=(+365d -365d)

if ! command -v faketime >/dev/null; then
  (apt-get install -y -q faketime >/dev/null 2>&1) \
    || (apt-get update -q >/dev/null && apt-get install -y -q faketime >/dev/null)
fi

real_clock=$(mktemp -d)
trap 'rm -rf "$real_clock"' EXIT
for tool in chromedriver chromium named-checkzone; do
  if real=$(command -v "$tool"); then
    printf '#!/bin/sh\nunset LD_PRELOAD FAKETIME\nexec %q "$@"\n' "$real" >"$real_clock/$tool"
    chmod +x "$real_clock/$tool"
  fi
done
export PATH="$real_clock:$PATH"

# "name<TAB>package dir<TAB>executable" for every test binary.
binaries=$(cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print("\t".join([m["target"]["name"], os.path.dirname(m["manifest_path"]), m["executable"]]))
')
[ -n "$binaries" ] || { echo "no test binaries found" >&2; exit 1; }

# The faketime wrapper names a semaphore and a shared-memory file after its pid and
# removes them when it exits. One that was killed leaves them behind, and a later
# wrapper that gets the same pid stops at once ("faketime: sem_open: File exists",
# exit status 1, no test run): what looked like libfaketime killing a run now and
# then. Stale ones (their process gone) are removed before every run.
clean_faketime_shm() {
  local f pid
  for f in /dev/shm/sem.faketime_sem_* /dev/shm/faketime_shm_*; do
    [ -e "$f" ] || continue
    pid=${f##*_}
    kill -0 "$pid" 2>/dev/null || rm -f "$f"
  done
}

failed=0
for offset in "${offsets[@]}"; do
  echo "== clock moved $offset: $(FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$offset" date -u +%FT%TZ)"
  while IFS=$'\t' read -r name dir exe; do
    if [ -n "${DOMAIN_API_CALENDAR_SKIP:-}" ] && [[ "$name" =~ $DOMAIN_API_CALENDAR_SKIP ]]; then
      echo "-- $name: left out (DOMAIN_API_CALENDAR_SKIP)"
      continue
    fi
    log=$(mktemp)
    # A binary that fails is run once more: a test that depends on the calendar
    # fails again at the same offset, while a one-off (a stale semaphore, above)
    # does not. Both runs' failures are shown.
    for attempt in 1 2; do
      status=0
      clean_faketime_shm
      (cd "$dir" && CARGO_MANIFEST_DIR="$dir" FAKETIME_DONT_FAKE_MONOTONIC=1 \
        faketime -f "$offset" "$exe" >"$log" 2>&1) || status=$?
      if [ "$status" -eq 0 ]; then
        echo "-- $name: $(grep -E '^test result:' "$log" | tail -n 1)"
        break
      fi
      echo "-- $name: FAILED (run $attempt, exit status $status)"
      # Each failure's name, then its panic with the message's first lines (the
      # message follows the "panicked at" line).
      awk '/^test .* FAILED|^---- |^test result:/ { print; next }
           /^thread .* panicked/ { print; shown = 6; next }
           shown > 0 { print; shown-- }' "$log" | head -n 80 | grep . \
        || tail -n 20 "$log"
      if [ "$attempt" -eq 2 ]; then
        failed=1
      fi
    done
    rm -f "$log"
  done <<<"$binaries"
done
if [ "$failed" -ne 0 ]; then
  echo "calendar sweep: failures above" >&2
  exit 1
fi
echo "calendar sweep: every test binary passed at ${offsets[*]}"
