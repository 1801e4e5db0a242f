"""CPU seconds used so far (user + system, from /proc) by process groups, as
JSON: `python3 bench/cpu.py NAME=PID ...` prints {"NAME_s": …, ...}, one
figure per group. A group is the process tree rooted at PID: the root and
every live descendant, plus the children each of them has reaped (their time
is added to the parent's cutime/cstime when it waits for them), so workers
that come and go during a cell are counted. A PID of 0 or a process that is
gone counts 0.

scripts/bench takes it before and after a cell with the groups of the
receiver under load and of the throwaway PostgreSQL cluster:
  the service:     service=<its pid> postgres=<postmaster pid>
  the PHP peer:    php-fpm=<master pid> nginx=<master pid> postgres=<postmaster pid>
(php-fpm's master and its 8 children, nginx's master and its workers, the
postmaster and its backends and background workers). Only the cluster the
bench started is counted, not other PostgreSQL servers on the machine. The
differences over the cell's callbacks are the CPU per callback in the
report."""
import json
import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # After the name: state, ppid, … utime (14th field of the line) onwards.
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, utime + stime + cutime + cstime


def processes():
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = stat(entry)
            except (OSError, ValueError, IndexError):
                pass
    return found


def tree_ticks(root, table):
    if root not in table:
        return 0
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def main(args):
    table = processes()
    out = {}
    for arg in args:
        name, _, pid = arg.partition("=")
        out[f"{name}_s"] = tree_ticks(int(pid or 0), table) / TICKS
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
