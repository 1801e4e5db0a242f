"""Paced load generator of scripts/bench (the webhook latency cells): POSTs
the pre-signed bodies of a file (bench/bodies.py), each once, in order, at a
fixed total rate, from several threads with kept-open connections
(http.client), and counts the answers as bench/once.lua does: a signed XML
`ok`, any other 2xx, non-2xx, socket errors. wrk is not paced; this is: body
i is sent at start + i / RATE (or at once, if every thread was busy then:
`send_lag_*` says how late the sends were).

usage: paced.py URL BODIES_FILE COUNT RATE SECONDS THREADS OUT_JSON
  COUNT: read only the file's first COUNT bodies; RATE x SECONDS are sent
  (the cell is marked `exhausted` if COUNT is smaller).

OUT_JSON has bench/once.lua's keys (requests, seconds, rps, p50_ms, p99_ms,
max_ms, ok, other_answers, non2xx, bodies_sent, exhausted, socket_errors)
and the pacing: rate_target, threads, send_lag_p99_ms, send_lag_max_ms.
Standard library only.
"""

import http.client
import json
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main(argv):
    url, bodies_file = argv[1], argv[2]
    count, rate, seconds, threads = int(argv[3]), float(argv[4]), float(argv[5]), int(argv[6])
    out = argv[7]
    total = int(rate * seconds)
    bodies = []
    with open(bodies_file, "rb") as f:
        for line in f:
            if len(bodies) >= min(count, total):
                break
            bodies.append(line.rstrip(b"\n"))
    parts = urlsplit(url)
    path = parts.path or "/"

    lock = threading.Lock()
    state = {"next": 0}
    counts = {"ok": 0, "other": 0, "non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    latencies, lags = [], []
    start = time.monotonic() + 0.2

    def worker():
        conn = None
        mine_lat, mine_lag, mine = [], [], dict.fromkeys(counts, 0)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(bodies):
                break
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            sent = time.monotonic()
            mine_lag.append(max(0.0, sent - due))
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                    conn.connect()
            except OSError:
                mine["connect"] += 1
                conn = None
                continue
            try:
                conn.request("POST", path, body=bodies[i], headers=HEADERS)
            except OSError:
                mine["write"] += 1
                conn.close()
                conn = None
                continue
            try:
                response = conn.getresponse()
                body = response.read()
            except socket.timeout:
                mine["timeout"] += 1
                conn.close()
                conn = None
                continue
            except (OSError, http.client.HTTPException):
                mine["read"] += 1
                conn.close()
                conn = None
                continue
            mine_lat.append(time.monotonic() - sent)
            if not 200 <= response.status <= 299:
                mine["non2xx"] += 1
            elif b"<pg_status>ok</pg_status>" in body:
                mine["ok"] += 1
            else:
                mine["other"] += 1
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine_lat)
            lags.extend(mine_lag)
            for key, n in mine.items():
                counts[key] += n

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = max(time.monotonic() - start, 1e-9)
    latencies.sort()
    lags.sort()
    result = {
        "load_generator": "bench/paced.py",
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 3),
        "ok": counts["ok"],
        "other_answers": counts["other"],
        "non2xx": counts["non2xx"],
        "bodies_sent": len(bodies),
        "exhausted": len(bodies) < total,
        "socket_errors": {k: counts[k] for k in ("connect", "read", "write", "timeout")},
        "rate_target": rate,
        "threads": threads,
        "send_lag_p99_ms": round(percentile(lags, 0.99) * 1000, 3),
        "send_lag_max_ms": round((lags[-1] if lags else 0.0) * 1000, 3),
    }
    with open(out, "w") as f:
        json.dump(result, f)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv)
