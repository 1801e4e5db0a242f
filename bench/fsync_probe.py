"""The disk's own latency beside a cell. scripts/bench runs it beside
SQLite's retention cell (whose callbacks commit with `synchronous = FULL`,
an fsync each): a stall of every callback that the probe saw too is the
disk's, not the service's.

usage: fsync_probe.py run FILE OUT
         writes 4 KB to FILE and fsyncs it every 20 ms until stopped
         (SIGTERM), then removes FILE and writes to OUT each write's start
         (epoch seconds), how long the write and its fsync took (ms) and,
         read just before it from /proc/diskstats, the device's sectors
         written, sectors discarded and flushes so far (the device that
         holds FILE), one sample a line;
       fsync_probe.py summary OUT START END
         the fsyncs between START and END (epoch seconds), as JSON: their
         count, p99 and longest (ms), when the longest started (s after
         START), and what the device did from a second before the longest
         began to its end and over the whole span (MB written, MB
         discarded, flushes): whether the machine's own writes were heavy
         when the disk stopped."""
import json
import os
import signal
import sys
import time

running = True


def stop(*_):
    global running
    running = False


def device_counters(dev):
    """The device's sectors written, sectors discarded and flushes so far,
    from its /proc/diskstats line (fields 10, 17 and 19; zeros where the
    kernel gives fewer fields or the device is not listed)."""
    wanted = (os.major(dev), os.minor(dev))
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            if (int(fields[0]), int(fields[1])) == wanted:
                numbers = [int(x) for x in fields[3:]] + [0] * 17
                return numbers[6], numbers[13], numbers[15]
    return 0, 0, 0


def run(path, out):
    signal.signal(signal.SIGTERM, stop)
    block = b"\0" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    dev = os.fstat(fd).st_dev
    lines = []
    try:
        while running:
            written, discarded, flushes = device_counters(dev)
            start = time.time()
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            lines.append(f"{start:.6f} {(time.time() - start) * 1000:.3f} {written} {discarded} {flushes}\n")
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
            fields = line.split()
            at, ms = float(fields[0]), float(fields[1])
            counters = tuple(int(x) for x in fields[2:5]) if len(fields) >= 5 else None
            samples.append((at, ms, counters))
    within = sorted(((ms, at) for at, ms, _ in samples if start <= at <= end))
    if not within:
        return {"fsyncs": 0, "p99_ms": None, "max_ms": None, "max_at_s": None}
    longest = within[-1]
    result = {"fsyncs": len(within),
              "p99_ms": round(within[min(len(within) - 1, int(len(within) * 0.99))][0], 1),
              "max_ms": round(longest[0], 1), "max_at_s": round(longest[1] - start, 3)}
    stalled_from, stalled_to = longest[1], longest[1] + longest[0] / 1000
    result["device_around_max"] = device(samples, stalled_from - 1, stalled_to)
    result["device_whole"] = device(samples, start, end)
    return result


def device(samples, start, end):
    """What the device did between the first sample at or after START and
    the first after END (counters read before each sample's write)."""
    counted = [(at, c) for at, _, c in samples if c is not None]
    first = next((x for x in counted if x[0] >= start), None)
    last = next((x for x in counted if x[0] > end), None) or (counted[-1] if counted else None)
    if first is None or last is None or last[0] <= first[0]:
        return None
    (t0, c0), (t1, c1) = first, last
    return {"seconds": round(t1 - t0, 3),
            "written_mb": round((c1[0] - c0[0]) * 512 / 1e6, 1),
            "discarded_mb": round((c1[1] - c0[1]) * 512 / 1e6, 1),
            "flushes": c1[2] - c0[2]}


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(summary(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
