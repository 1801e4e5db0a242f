"""CPU seconds used so far (user + system, from /proc) by one process and by
the PostgreSQL cluster, as JSON: `python3 bench/cpu.py PID` prints
{"service_s": …, "postgres_s": …}. PID 0: no service (the PHP peer's cells).

PostgreSQL's figure is every live `postgres` process plus the postmaster's
children that have exited (their time is added to its cutime/cstime when it
reaps them), so backends that come and go during a cell are counted.
scripts/bench takes it before and after a cell; the differences over the
cell's callbacks are the CPU per callback in BENCHMARKS.md."""
import json
import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    # After the name: state, ppid, … utime (14th field of the line) onwards.
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return comm, ppid, utime + stime, cutime + cstime


def main(pid):
    service = 0
    if pid:
        try:
            service = stat(pid)[2]
        except OSError:
            service = 0
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                processes[int(entry)] = stat(entry)
            except OSError:
                pass
    postgres = 0
    for comm, ppid, own, children in processes.values():
        if comm != "postgres":
            continue
        postgres += own
        parent = processes.get(ppid)
        if parent is None or parent[0] != "postgres":
            postgres += children  # the postmaster: its reaped backends
    print(json.dumps({"service_s": service / TICKS, "postgres_s": postgres / TICKS}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
