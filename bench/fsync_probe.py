"""The disk's own latency beside a cell. scripts/bench runs it beside
SQLite's retention cell (whose callbacks commit with `synchronous = FULL`,
an fsync each): a stall of every callback that the probe saw too is the
disk's, not the service's.

usage: fsync_probe.py run FILE OUT
         writes 4 KB to FILE and fsyncs it every 20 ms until stopped
         (SIGTERM), then removes FILE and writes to OUT each write's start
         (epoch seconds) and how long the write and its fsync took (ms),
         one pair a line;
       fsync_probe.py summary OUT START END
         the fsyncs between START and END (epoch seconds), as JSON: their
         count, p99 and longest (ms), and when the longest started (s after
         START)."""
import json
import os
import signal
import sys
import time

running = True


def stop(*_):
    global running
    running = False


def run(path, out):
    signal.signal(signal.SIGTERM, stop)
    block = b"\0" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    lines = []
    try:
        while running:
            start = time.time()
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            lines.append(f"{start:.6f} {(time.time() - start) * 1000:.3f}\n")
            time.sleep(0.02)
    finally:
        os.close(fd)
        os.unlink(path)
        with open(out, "w") as f:
            f.writelines(lines)


def summary(out, start, end):
    samples = []
    with open(out) as f:
        for line in f:
            at, ms = (float(x) for x in line.split())
            if start <= at <= end:
                samples.append((ms, at))
    samples.sort()
    if not samples:
        return {"fsyncs": 0, "p99_ms": None, "max_ms": None, "max_at_s": None}
    longest = samples[-1]
    return {"fsyncs": len(samples),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))][0], 1),
            "max_ms": round(longest[0], 1), "max_at_s": round(longest[1] - start, 3)}


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(summary(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
