#!/usr/bin/env python3
"""CPU used by processes that are not part of the benchmark, for scripts/bench.sh.

  proc_cpu.py snap FILE          record every process's CPU time (user+system)
  proc_cpu.py watch COMM PID     "SECONDS": CPU used by processes named COMM while PID
                                 runs, including ones that start and exit meanwhile
                                 (pgbench's backends), sampled every 100 ms
  proc_cpu.py foreign FILE PID   "SECONDS PERCENT": CPU used since FILE by processes
                                 other than PID (the server), postgres, wrk and this
                                 script, and its share of the machine over that
                                 window; the top three consumers go to stderr

Per-process times come from /proc/PID/stat (exact: the scheduler's runtime), not
from /proc/stat, whose machine-wide counters are tick-sampled and, on this VM, do
not add up to the processes' times. A process that starts and exits between the two
snapshots is missed; long-lived jobs (compilers, fuzzers) are what this catches.
"""

import json
import os
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")
OURS = {"postgres", "wrk", "python3", "bash", "curl", "jq", "awk", "sleep", "cat", "grep", "sed"}


def snapshot():
    """pid -> [comm, utime+stime ticks, start time] for every process."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is stat field 3: utime, stime and starttime are fields 14, 15, 22.
        procs[pid] = [comm, int(fields[11]) + int(fields[12]), fields[19]]
    return procs


def watch(comm, pid):
    """CPU seconds of processes named `comm` while `pid` lives: per process, the last
    sample minus the first (zero for one that started after the first sample). A
    process's last 100 ms before it exits can be missed."""
    first = {p: v[1] for p, v in snapshot().items() if v[0] == comm}
    last = dict(first)
    while os.path.exists(f"/proc/{pid}"):
        for p, v in snapshot().items():
            if v[0] == comm:
                last[p] = v[1]
        time.sleep(0.1)
    for p, v in snapshot().items():
        if v[0] == comm:
            last[p] = v[1]
    return sum(ticks - first.get(p, 0) for p, ticks in last.items()) / TCK


def main():
    if sys.argv[1] == "watch":
        print(f"{watch(sys.argv[2], sys.argv[3]):.3f}")
        return
    if sys.argv[1] == "snap":
        json.dump({"at": time.monotonic(), "procs": snapshot()}, open(sys.argv[2], "w"))
    else:
        saved = json.load(open(sys.argv[2]))
        before, window = saved["procs"], time.monotonic() - saved["at"]
        server = sys.argv[3]
        used = []
        for pid, (comm, ticks, started) in snapshot().items():
            if pid == server or pid == str(os.getpid()) or comm in OURS:
                continue
            old = before.get(pid)
            # Same pid and start time: the same process (kernel workers rename themselves).
            delta = ticks - (old[1] if old and old[2] == started else 0)
            if delta > 0:
                used.append((delta / TCK, comm))
        used.sort(reverse=True)
        if used[:3]:
            print("  other processes: " + ", ".join(f"{c} {s:.1f}s" for s, c in used[:3]), file=sys.stderr)
        total = sum(s for s, _ in used)
        print(f"{total:.2f} {100 * total / (window * os.cpu_count()):.1f}")


if __name__ == "__main__":
    main()
