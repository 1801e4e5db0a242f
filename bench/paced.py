"""Paced load generator of scripts/bench (the webhook latency cells and the
retention cells): POSTs the pre-signed bodies of a file (bench/bodies.py),
each once, in order, at a fixed total rate, from several threads with
kept-open connections (http.client), and counts the answers as
bench/once.lua does: a signed XML `ok`, any other 2xx, non-2xx, socket
errors. wrk is not paced; this is: body i is sent at start + i / RATE (or at
once, if every thread was busy then: `send_lag_*` says how late the sends
were).

usage: paced.py URL BODIES_FILE COUNT RATE SECONDS THREADS OUT_JSON [TRACE]
  COUNT: read only the file's first COUNT bodies; RATE x SECONDS are sent
  (the cell is marked `exhausted` if COUNT is smaller).
  TRACE: a file that gets a line per request, `SENT MS ANSWER STATUS`: when
  it was sent (wall clock, epoch seconds), how long its answer took (ms;
  until the error, for a socket error), ok, other, non2xx or error, and the
  HTTP status (- for a socket error); sorted by SENT (bench/windows.py
  reads it: the waits in a window of time).

SIGTERM ends the load before its time (the retention cells load the service
until the operation they measure is over): nothing is sent after it, the
requests in flight get their answers, and OUT_JSON is written as usual,
with `stopped` true.

OUT_JSON has bench/once.lua's keys (requests, seconds, rps, p50_ms, p99_ms,
max_ms, ok, other_answers, non2xx, bodies_sent, exhausted, socket_errors)
and the pacing: rate_target, threads, send_lag_p99_ms, send_lag_max_ms,
stopped.
Standard library only.
"""

import http.client
import json
import signal
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
# What an answered request is counted as (the others are socket errors).
ANSWERS = ("ok", "other", "non2xx")


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main(argv):
    url, bodies_file = argv[1], argv[2]
    count, rate, seconds, threads = int(argv[3]), float(argv[4]), float(argv[5]), int(argv[6])
    out = argv[7]
    trace_file = argv[8] if len(argv) > 8 else None
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
    latencies, lags, trace = [], [], []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start = time.monotonic() + 0.2

    def post(conn, body):
        """Sends one body: (the connection to use next, the answer: ok, other,
        non2xx, or the socket error's kind, the HTTP status or None)."""
        try:
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                conn.connect()
        except OSError:
            return None, "connect", None
        try:
            conn.request("POST", path, body=body, headers=HEADERS)
        except OSError:
            conn.close()
            return None, "write", None
        try:
            response = conn.getresponse()
            answer = response.read()
        except socket.timeout:
            conn.close()
            return None, "timeout", None
        except (OSError, http.client.HTTPException):
            conn.close()
            return None, "read", None
        if not 200 <= response.status <= 299:
            return conn, "non2xx", response.status
        return conn, "ok" if b"<pg_status>ok</pg_status>" in answer else "other", response.status

    def worker():
        conn = None
        mine_lat, mine_lag, mine_trace, mine = [], [], [], dict.fromkeys(counts, 0)
        while not stop.is_set():
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(bodies):
                break
            due = start + i / rate
            now = time.monotonic()
            if due > now and stop.wait(due - now):
                break
            sent, sent_wall = time.monotonic(), time.time()
            mine_lag.append(max(0.0, sent - due))
            conn, answer, status = post(conn, bodies[i])
            took = time.monotonic() - sent
            mine[answer] += 1
            if answer in ANSWERS:
                mine_lat.append(took)
            else:
                answer = "error"
            mine_trace.append(f"{sent_wall:.6f} {took * 1000:.3f} {answer} {status or '-'}\n")
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine_lat)
            lags.extend(mine_lag)
            trace.extend(mine_trace)
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
        "stopped": stop.is_set(),
    }
    with open(out, "w") as f:
        json.dump(result, f)
        f.write("\n")
    if trace_file is not None:
        trace.sort()
        with open(trace_file, "w") as f:
            f.writelines(trace)


if __name__ == "__main__":
    main(sys.argv)
