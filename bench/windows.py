"""The callbacks' waits around an operation of scripts/bench's retention
cells (the upgrade `migrate`, a `retention run`), from the trace of
bench/paced.py (`SENT MS ANSWER STATUS` lines) and the operation's start and end
(wall clock, epoch seconds, taken by the script just before it started and
just after it returned):

  windows.py TRACE START END [ARCHIVE_DIR]

prints one JSON object with three windows of the paced load:
  before  callbacks sent from WARM_UP_SECONDS (2) after the load's first one
          until START, answered before START (the service's steady state);
  during  callbacks that were waiting at some instant of [START, END]: sent
          before END and answered (or failed) after START;
  after   callbacks sent after END.
Each: requests, ok (signed ok answers), not_ok (other answers, non-2xx and
socket errors) and not_ok_by_answer ({"non2xx 503": n, …}), p50_ms, p99_ms, max_ms (the longest wait: from its send to
its answer), and for `during` also max_sent_after_start_s (when the longest
wait began, seconds after START; negative if before it) and max_ms_by_slice
(the longest wait of each 30 s of the operation, slice_s); and operation_s
(END - START) and load_covered (the load started before START and went on
after END). With ARCHIVE_DIR (a `retention run`'s archive), `phases` splits
`during` at the time each archive manifest says it was written
(`written_at`): "archiving" before the first (the month read, written and
compressed), "verifying and deleting" after the last (the file read back
against its manifest, then the rows deleted or the partition dropped).
Standard library only.
"""

import json
import os
import sys
from datetime import datetime

SLICE = 30
WARM_UP_SECONDS = 2.0


def stats(rows):
    waits = sorted(ms for _, ms, _ in rows)

    def pick(q):
        return round(waits[min(len(waits) - 1, int(q * len(waits)))], 1) if waits else None

    not_ok = {}
    for *_, answer in rows:
        if answer != "ok":
            not_ok[answer] = not_ok.get(answer, 0) + 1
    return {
        "requests": len(rows),
        "ok": sum(1 for *_, answer in rows if answer == "ok"),
        "not_ok": sum(not_ok.values()),
        "not_ok_by_answer": not_ok,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": round(waits[-1], 1) if waits else None,
    }


def written_at(folder):
    """The epoch seconds at which each manifest of an archive was written."""
    marks = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".manifest.json"):
            with open(os.path.join(folder, name)) as f:
                marks.append(datetime.fromisoformat(json.load(f)["written_at"].replace("Z", "+00:00"))
                             .timestamp())
    return sorted(marks)


def overlapping(rows, start, end):
    """The callbacks waiting at some instant of [start, end]."""
    return [r for r in rows if r[0] < end and r[0] + r[1] / 1000 >= start]


def main(argv):
    start, end = float(argv[2]), float(argv[3])
    warm_up = WARM_UP_SECONDS
    rows = []
    with open(argv[1]) as f:
        for line in f:
            sent, ms, answer, status = line.split()
            rows.append((float(sent), float(ms), answer if answer == "ok" else f"{answer} {status}"))
    first = rows[0][0] if rows else start
    before = [r for r in rows if first + warm_up <= r[0] and r[0] + r[1] / 1000 < start]
    during = overlapping(rows, start, end)
    after = [r for r in rows if r[0] >= end]
    result = {"before": stats(before), "during": stats(during), "after": stats(after),
              "operation_s": round(end - start, 3),
              # The load ran the whole time: it started before START and
              # sent after END.
              "load_covered": bool(rows) and first < start and rows[-1][0] >= end}
    if during:
        longest = max(during, key=lambda r: r[1])
        result["during"]["max_sent_after_start_s"] = round(longest[0] - start, 3)
        # The longest wait of each SLICE seconds of the operation (by send
        # time; the first slice also has the callbacks still waiting at START).
        slices = [0.0] * (int((end - start) // SLICE) + 1)
        for sent, ms, _ in during:
            index = min(len(slices) - 1, max(0, int((sent - start) // SLICE)))
            slices[index] = max(slices[index], ms)
        result["during"]["max_ms_by_slice"] = [round(ms, 1) for ms in slices]
        result["during"]["slice_s"] = SLICE
    marks = written_at(argv[4]) if len(argv) > 4 else []
    if marks:
        result["phases"] = []
        for name, a, b in (("archiving", start, marks[0]), ("verifying and deleting", marks[-1], end)):
            phase = stats(overlapping(rows, a, b))
            phase.update({"name": name, "from_s": round(a - start, 3), "to_s": round(b - start, 3)})
            result["phases"].append(phase)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
