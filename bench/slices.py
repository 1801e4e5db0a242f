"""The paired cells of scripts/bench (pg_paired_cells): a cell's slices
summed into the cell's own files, as if it had been one cell.

usage: slices.py CELLS_DIR CELL N

reads CELLS_DIR/CELL.s1.wrk.json … CELL.sN.wrk.json and their
cpu_before/cpu_after files and writes CELL.wrk.json (requests, seconds, the
answers and errors summed; rps = requests over seconds; p50 the slices'
request-weighted mean, p99 and max the largest slice's: percentiles of
separate runs do not add up; `slices_rps`: each slice's rate) and
CELL.cpu_before.json / CELL.cpu_after.json (zero, and the sum of each
group's CPU seconds over the slices)."""
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    cells, cell, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    slices = [load(os.path.join(cells, f"{cell}.s{i}.wrk.json")) for i in range(1, n + 1)]
    requests = sum(s["requests"] for s in slices)
    seconds = sum(s["seconds"] for s in slices)
    merged = {
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": requests / seconds if seconds else 0.0,
        "p50_ms": sum(s["p50_ms"] * s["requests"] for s in slices) / requests if requests else 0.0,
        "p99_ms": max(s["p99_ms"] for s in slices),
        "max_ms": max(s["max_ms"] for s in slices),
        "exhausted": any(s["exhausted"] for s in slices),
        "socket_errors": {key: sum(s["socket_errors"][key] for s in slices)
                          for key in slices[0]["socket_errors"]},
        "slices_rps": [round(s["rps"], 1) for s in slices],
    }
    for key in ("ok", "other_answers", "non2xx", "bodies_sent"):
        merged[key] = sum(s[key] for s in slices)
    with open(os.path.join(cells, f"{cell}.wrk.json"), "w") as f:
        json.dump(merged, f)
    used = {}
    for i in range(1, n + 1):
        before = load(os.path.join(cells, f"{cell}.s{i}.cpu_before.json"))
        after = load(os.path.join(cells, f"{cell}.s{i}.cpu_after.json"))
        for key, value in after.items():
            used[key] = used.get(key, 0.0) + value - before.get(key, 0.0)
    with open(os.path.join(cells, f"{cell}.cpu_before.json"), "w") as f:
        json.dump({key: 0.0 for key in used}, f)
    with open(os.path.join(cells, f"{cell}.cpu_after.json"), "w") as f:
        json.dump(used, f)


if __name__ == "__main__":
    main()
