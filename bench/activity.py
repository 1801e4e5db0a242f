"""What PostgreSQL's backends were doing beside an operation of
scripts/bench's PostgreSQL retention cells (the upgrade `migrate`, a
`retention run`): sampled every 20 ms from pg_stat_activity, so that a
stall of the callbacks can be matched to what the database waited on at
that instant (a lock and who held it, the WAL, the disk, the CPU).

usage: activity.py run URL OUT
         one psql session on URL: every 20 ms, each backend that is not
         idle (other than the sampler; background processes only when
         busy), one line `EPOCH|PID|BACKEND_TYPE|APPLICATION|STATE|WAIT|
         BLOCKED_BY|QUERY` (WAIT as TYPE:EVENT, empty when running on a CPU
         or waiting for none; BLOCKED_BY the pids pg_blocking_pids names for
         a lock wait; QUERY its first 80 characters), until stopped
         (SIGTERM); to OUT;
       activity.py summary OUT WINDOWS START
         the samples during the callbacks' longest wait of the operation
         (bench/windows.py's WINDOWS: it began max_sent_after_start_s after
         START and lasted max_ms), as JSON: how many samples showed a busy
         backend, and per backend kind, state and wait how many times it
         was seen, most seen first, with a query it ran (and, for a lock
         wait, the holders with theirs);
       activity.py checkpoints LOG START END
         PostgreSQL's checkpoints that completed between START and END
         (epoch seconds) by the server's LOG (`log_checkpoints`, on by
         default, timestamps in UTC): for each, when (s after START), the
         WAL files it removed and recycled, and its write and sync seconds,
         as JSON. A checkpoint that removes WAL files frees their space at
         once (see scripts/bench disk_free_cell);
       activity.py slice_checkpoints LOG SLICES
         the same for a side of a pair of cells (scripts/bench
         pg_paired_cells): SLICES holds each of its slices as a line
         `NUMBER START END`; each checkpoint that completed during one of
         them, with that slice's number and when (s after its START).
Standard library only (psql, $PSQL or on the PATH, does the talking)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

QUERY = (
    "SELECT extract(epoch FROM statement_timestamp()), pid, backend_type, application_name, state, "
    "coalesce(wait_event_type || ':' || wait_event, ''), "
    "CASE WHEN wait_event_type = 'Lock' THEN array_to_string(pg_blocking_pids(pid), ',') ELSE '' END, "
    "replace(left(query, 80), E'\\n', ' ') "
    "FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle' "
    "AND NOT (state IS NULL AND coalesce(wait_event_type, '') = 'Activity');\n"
)

running = True


def stop(*_):
    global running
    running = False


def run(url, out):
    signal.signal(signal.SIGTERM, stop)
    with open(out, "w") as f:
        psql = subprocess.Popen([os.environ.get("PSQL", "psql"), "-X", "-q", "-A", "-t", "-F", "|", url],
                                stdin=subprocess.PIPE, stdout=f, text=True)
        try:
            while running and psql.poll() is None:
                psql.stdin.write(QUERY)
                psql.stdin.flush()
                time.sleep(0.02)
        finally:
            if psql.poll() is None:
                psql.stdin.close()
                psql.wait()


def summary(out, windows, start):
    during = json.load(open(windows)).get("during") or {}
    if during.get("max_sent_after_start_s") is None:
        return {"samples": 0, "seen": []}
    begin = start + during["max_sent_after_start_s"]
    end = begin + during["max_ms"] / 1000
    by_instant = {}
    with open(out) as f:
        for line in f:
            parts = line.rstrip("\n").split("|", 7)
            if len(parts) == 8 and begin <= float(parts[0]) <= end:
                by_instant.setdefault(parts[0], []).append(parts)
    seen = {}
    for rows in by_instant.values():
        # A lock's holder by what it ran, when the same sample shows it.
        queries = {pid: query for _, pid, *_, query in rows}
        for _, _, kind, app, state, wait, blocked_by, query in rows:
            holders = ", ".join(f"{pid} ({queries.get(pid, '?')[:40]})"
                                for pid in blocked_by.split(",") if pid)
            key = (kind, app, state, wait or "CPU", holders)
            entry = seen.setdefault(key, {"backend": kind, "application": app, "state": state,
                                          "wait": wait or "CPU", "blocked_by": holders,
                                          "times": 0, "query": query})
            entry["times"] += 1
    return {"samples": len(by_instant), "from_s": round(begin - start, 3), "to_s": round(end - start, 3),
            "seen": sorted(seen.values(), key=lambda e: -e["times"])}


CHECKPOINT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC .*checkpoint complete: .*?"
                        r"(\d+) WAL file\(s\) added, (\d+) removed, (\d+) recycled; "
                        r"write=([\d.]+) s, sync=([\d.]+) s")


def checkpoints(log, start, end):
    found = []
    with open(log, errors="replace") as f:
        for line in f:
            m = CHECKPOINT.match(line)
            if not m:
                continue
            at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
            if start <= at <= end:
                found.append({"at_s": round(at - start, 3), "wal_added": int(m[2]), "wal_removed": int(m[3]),
                              "wal_recycled": int(m[4]), "write_s": float(m[5]), "sync_s": float(m[6])})
    return found


def slice_checkpoints(log, slices):
    # The log read once, over the span of all the slices.
    with open(slices) as f:
        spans = [(int(n), float(a), float(b)) for n, a, b in (line.split() for line in f)]
    if not spans:
        return []
    first = min(a for _, a, _ in spans)
    found = []
    for c in checkpoints(log, first, max(b for _, _, b in spans)):
        at = first + c["at_s"]
        for number, start, end in spans:
            if start <= at <= end:
                found.append(dict(c, slice=number, at_s=round(at - start, 3)))
    return found


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "slice_checkpoints":
        print(json.dumps(slice_checkpoints(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "checkpoints":
        print(json.dumps(checkpoints(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
    else:
        print(json.dumps(summary(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
