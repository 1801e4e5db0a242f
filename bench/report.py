"""Summarise a scripts/bench run: the table on stdout, target/bench/summary.json,
target/bench/summary.md, target/bench/throughput.png (requests per second
over time, per cell; the long cell in a panel of its own) and
target/bench/side_by_side.png (mean and worst second of each receiver, with
the ceilings). Called by scripts/bench as `report.py OUT_DIR`; reads the
JSON files the script wrote there.

Per cell: mean req/s, p50 and p99 come from wrk (every answered request over
the cell's length); the per-second series counts the result events stored
in each second from the first one (events.received_at); `min_rps` is its
smallest second after the first 5, `min_over_mean` that minimum over the
series' mean over the same seconds (`series_mean`); for the paired cells
(below), whose seconds alternate with their twin's, the slowest slice's
rate and that over the cell's rate.

The service runs at a merchant's settings (info, JSON logs); every deviation
is named beside its figure: the run's settings line, the one `warn` cell's
label, PostgreSQL's settings.

The webhook cells (issue 23): pg_c16_webhook and pg_c64_webhook are the
fresh cells with one endpoint (their rate over the fresh cell's, goal ≥ 0.9;
the outbox after the service stopped, bench/webhook_outbox_pg.sql);
pg_webhook_latency and pg_webhook_latency_failing are paced (bench/paced.py,
cells/CELL.paced.json instead of wrk's) and give the delivery latency, commit
→ first attempt received at the healthy endpoint
(bench/webhook_latency_pg.sql; goal p99 ≤ 250 ms, and with the failing
endpoint beside it p99 within 10 % of the run without it). A run with
BENCH_ONLY=webhook (run.json's `only`) has the fresh and webhook cells alone:
their table and the webhook figures, no plots.

The event log and retention (issue 24): pg_c16_partitioned and pg_c16_plain
(and C=64, and pg_cC_grown_partitioned, pg_cC_grown_plain on the grown
database) are pairs: the partitioned event log (the default) and a plain one
(`migrate --plain-events`, `database.migrate_on_start = false`), both
services up, the load alternating between them in slices (scripts/bench
pg_paired_cells; bench/slices.py sums a cell's slices): the partitioned
cell's rate over its plain twin's (goal ≥ 0.95). pg_upgrade,
pg_retention_drop and sqlite_retention_batches are paced (bench/paced.py)
with an operation beside the load (the upgrade `migrate`, `retention run`):
its time and output (cells/CELL.operation.json, cells/CELL.migrate.txt or
.retention.txt), the callbacks' waits before, during and after it
(cells/CELL.windows.json, bench/windows.py; goals: the longest during the
upgrade ≤ 1 s, during a partition drop ≤ 100 ms, during SQLite's batches ≤
50 ms), the events before and after it (cells/CELL.rows.json; after = before
+ ok answers - the month deleted), the archive and what `retention verify`
said of it (cells/CELL.archive.json) and the dry run's output
(cells/CELL.dry_run.txt); beside them, the disk probe (cells/CELL.disk.json,
bench/fsync_probe.py), PostgreSQL's backends during the longest wait
(cells/CELL.activity.json, bench/activity.py), its checkpoints meanwhile
(cells/CELL.checkpoints.json) and, after the partition drop, the disk alone
removing a file of the partition's size
(cells/pg_retention_drop.disk_free.json). A run with BENCH_ONLY=retention
has the fresh, paired and retention cells alone: their table and these
figures, no plots; BENCH_ONLY=pairs the paired cells and their ratios alone.
"""

import json
import os
import re
import sys

WARM_UP_SECONDS = 5

PG_CELLS = ["pg_c16_fresh", "pg_c64_fresh", "pg_c64_fresh_warn", "pg_c16_young", "pg_c64_young",
            "pg_c16_grown", "pg_c64_grown", "pg_c16_long"]
WEBHOOK_CELLS = ["pg_c16_webhook", "pg_c64_webhook", "pg_webhook_latency", "pg_webhook_latency_failing"]
LATENCY_CELLS = ["pg_webhook_latency", "pg_webhook_latency_failing"]
# The partitioned and plain event logs, in pairs (fresh, grown) whose slices alternated.
PAIRS = {(c, db): (f"pg_c{c}{suffix}_partitioned", f"pg_c{c}{suffix}_plain")
         for c in (16, 64) for db, suffix in (("fresh", ""), ("grown", "_grown"))}
PAIRED_CELLS = [name for pair in PAIRS.values() for name in pair]
# Paced, with an operation beside the load: goal for the longest wait during it (ms).
OPERATION_CELLS = {"pg_upgrade": 1000, "pg_retention_drop": 100, "sqlite_retention_batches": 50}
RETENTION_CELLS = PAIRED_CELLS + list(OPERATION_CELLS)
PHP_CELLS = ["php_c16", "php_c64"]
SQLITE_CELLS = ["sqlite_fresh", "sqlite_grown"]
LABELS = {
    "pg_c16_fresh": "service, PostgreSQL, C=16, fresh",
    "pg_c64_fresh": "service, PostgreSQL, C=64, fresh",
    "pg_c64_fresh_warn": "service, PostgreSQL, C=64, fresh, log.level warn (not default)",
    "pg_c16_young": "service, PostgreSQL, C=16, young statistics",
    "pg_c64_young": "service, PostgreSQL, C=64, young statistics",
    "pg_c16_grown": "service, PostgreSQL, C=16, grown",
    "pg_c64_grown": "service, PostgreSQL, C=64, grown",
    "pg_c16_long": "service, PostgreSQL, C=16, {long} s from empty, autovacuum on",
    "pg_c16_webhook": "service, PostgreSQL, C=16, fresh, one webhook endpoint (204)",
    "pg_c64_webhook": "service, PostgreSQL, C=64, fresh, one webhook endpoint (204)",
    "pg_webhook_latency": "service, PostgreSQL, {rate}/s paced for {webhook_seconds} s, fresh, one webhook endpoint",
    "pg_webhook_latency_failing": "service, PostgreSQL, {rate}/s paced for {webhook_seconds} s, fresh, "
                                  "+ an endpoint answering 500",
    "pg_upgrade": "service, PostgreSQL, {retention_rate}/s paced, grown, plain, upgraded by `migrate` meanwhile",
    "pg_retention_drop": "service, PostgreSQL, {retention_rate}/s paced, grown + an old month, "
                         "`retention run` meanwhile",
    "sqlite_retention_batches": "service, SQLite, {retention_rate}/s paced, fresh + an old month, "
                                "`retention run` meanwhile",
    "php_c16": "PHP peer, PostgreSQL, C=16, fresh",
    "php_c64": "PHP peer, PostgreSQL, C=64, fresh",
    "sqlite_fresh": "service, SQLite, C=16, fresh",
    "sqlite_grown": "service, SQLite, C=16, grown",
}
LABELS.update({name: f"service, PostgreSQL, C={c}, {db}, "
                     + ("partitioned event log" if name == pair[0] else "plain event log (not default)")
                     + ", in slices alternating with its twin"
               for (c, db), pair in PAIRS.items() for name in pair})
# The process groups of bench/cpu.py, in the order the CPU tables show them.
CPU_GROUPS = ["service", "php-fpm", "nginx", "postgres"]
CPU_NAMES = {"service": "service", "php-fpm": "php-fpm (master + children)",
             "nginx": "nginx (master + workers)", "postgres": "PostgreSQL (whole cluster)"}
SCAN_TABLES = ["payments", "events", "callback_decisions", "orders", "event_partitions"]


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def load_optional(out, name):
    try:
        return load(out, name)
    except OSError:
        return None


def text_optional(out, name):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read()
    except OSError:
        return None


def cpu_per_callback(out, name, requests):
    """µs of CPU per request of each process group over the cell (bench/cpu.py)."""
    before = load_optional(out, f"cells/{name}.cpu_before.json")
    after = load_optional(out, f"cells/{name}.cpu_after.json")
    if before is None or after is None or not requests:
        return {}
    return {key[:-2]: round((after[key] - before.get(key, 0.0)) / requests * 1e6)
            for key in after if key.endswith("_s")}


def table_reads(out, name):
    """pg_stat_user_tables differences over the cell (bench/table_scans.sql)."""
    scans = load_optional(out, f"cells/{name}.scans.json")
    if scans is None:
        return None
    before, after = scans["before"] or {}, scans["after"] or {}
    reads = {}
    for table in SCAN_TABLES:
        if table not in after:
            continue
        b = before.get(table, {})
        reads[table] = {key: after[table][key] - b.get(key, 0)
                        for key in ("seq_scan", "seq_tup_read", "idx_scan", "autovacuum_count",
                                    "autoanalyze_count")}
        reads[table]["n_live_tup"] = after[table]["n_live_tup"]
    return reads


def cell_summary(out, name, concurrency, long_seconds, run=None):
    # The paced cells' load generator (bench/paced.py) writes wrk's keys.
    wrk = load_optional(out, f"cells/{name}.paced.json") or load(out, f"cells/{name}.wrk.json")
    if "threads" in wrk:
        concurrency = wrk["threads"]
    outbox = load_optional(out, f"cells/{name}.outbox.json")
    drain = load_optional(out, f"cells/{name}.drain.json")
    latency = load_optional(out, f"cells/{name}.latency.json")
    db = load(out, f"cells/{name}.db.json")
    steady = db["series"][WARM_UP_SECONDS:] or db["series"]
    mean = sum(steady) / len(steady) if steady else 0.0
    low = min(steady) if steady else 0
    if wrk.get("slices_rps"):
        # A paired cell's seconds alternate with its twin's: its worst
        # slice instead of its worst second.
        mean, low = wrk["rps"], round(min(wrk["slices_rps"]))
    errors = sum(wrk["socket_errors"].values())
    in_flight_at_end = db["ok_events"] - wrk["ok"]
    # A paired cell's slices each end with up to C requests in flight.
    in_flight_limit = concurrency * len(wrk.get("slices_rps") or [None])
    checks = {
        "zero non-2xx": wrk["non2xx"] == 0,
        "zero socket errors": errors == 0,
        "every 2xx answer is a signed ok": wrk["other_answers"] == 0,
        "bodies lasted the cell": not wrk["exhausted"],
        "every ok answer has exactly one result event": db["payments_with_several_events"] == 0
        and db["duplicate_events"] == 0 and 0 <= in_flight_at_end <= in_flight_limit,
        "every order of an ok is paid": db["ok_orders_not_paid"] == 0
        and db["orders_paid"] == db["ok_events"],
    }
    if outbox is not None:
        checks["every ok answer's change has its webhook message"] = (
            outbox["ok_events_without_message"] == 0 and outbox["messages_without_event"] == 0)
    if drain is not None:
        checks["every message delivered after the load"] = drain["pending_after_drain"] == 0
    if latency is not None:
        checks["the endpoint received nothing that is not in the outbox"] = latency["unknown_ids"] == 0
    # The event log and retention cells (issue 24).
    event_log = load_optional(out, f"cells/{name}.events.json")
    if event_log is not None:
        if "plain" in name:
            checks["the event log stayed a plain table"] = event_log["partitioned"] is False
        else:
            checks["the event log is partitioned"] = event_log["partitioned"] is True
    operation = load_optional(out, f"cells/{name}.operation.json")
    windows = load_optional(out, f"cells/{name}.windows.json")
    rows = load_optional(out, f"cells/{name}.rows.json")
    archive = load_optional(out, f"cells/{name}.archive.json")
    disk = load_optional(out, f"cells/{name}.disk.json")
    activity = load_optional(out, f"cells/{name}.activity.json")
    disk_free = load_optional(out, f"cells/{name}.disk_free.json")
    checkpoints = load_optional(out, f"cells/{name}.checkpoints.json")
    if operation is not None:
        # An operation that failed or ran past its limit is not a
        # correctness failure: its goal is missed (retention_summary).
        operation["seconds"] = round(operation["end"] - operation["start"], 3)
        operation["finished"] = operation["status"] == 0
        operation["output"] = text_optional(out, f"cells/{name}.{operation['name']}.txt")
        checks["the load ran through the operation"] = bool(windows and windows["load_covered"])
    if rows is not None:
        # What the operation deleted: the whole month when it finished, no
        # more than it when it was stopped.
        rows["deleted"] = rows["before"] + wrk["ok"] - rows["after"]
        if operation is None or operation["finished"]:
            checks["events after = before + ok answers - the month deleted"] = \
                rows["deleted"] == rows["going"]
        else:
            checks["events after >= before + ok answers - the month"] = 0 <= rows["deleted"] <= rows["going"]
    if archive is not None:
        checks["retention verify: the archive matches its manifest"] = archive["verify_status"] == 0
    cpu_us = cpu_per_callback(out, name, wrk["requests"])
    log = load_optional(out, f"cells/{name}.log.json")
    per_request = (lambda n: round(n / wrk["requests"], 2) if wrk["requests"] else None)
    return {
        "label": LABELS[name].format(long=long_seconds, rate=(run or {}).get("webhook_rate"),
                                     webhook_seconds=(run or {}).get("webhook_seconds"),
                                     retention_rate=(run or {}).get("retention_rate")),
        "cpu_us": cpu_us,
        "cpu_total_us": sum(cpu_us.values()) if cpu_us else None,
        "service_cpu_us": cpu_us.get("service"),
        "postgres_cpu_us": cpu_us.get("postgres"),
        "concurrency": concurrency,
        "seconds": wrk["seconds"],
        "requests": wrk["requests"],
        "rps": round(wrk["rps"], 1),
        # The paired cells: each slice's rate (bench/slices.py).
        "slices_rps": wrk.get("slices_rps"),
        "p50_ms": round(wrk["p50_ms"], 2),
        "p99_ms": round(wrk["p99_ms"], 2),
        "max_ms": round(wrk["max_ms"], 2),
        "min_rps": low,
        "series_mean": round(mean, 1),
        "min_over_mean": round(low / mean, 3) if mean else 0.0,
        "series": db["series"],
        "ok_answers": wrk["ok"],
        "result_events": db["result_events"],
        "non2xx": wrk["non2xx"],
        "socket_errors": errors,
        "failed_checks": [check for check, passed in checks.items() if not passed],
        # The service only: its log (stderr to a file) per request.
        "log_lines_per_request": per_request(log["lines"]) if log else None,
        "log_bytes_per_request": per_request(log["bytes"]) if log else None,
        # PostgreSQL only: how the tables were read during the cell.
        "index_scans_and_rows": db.get("index_scans_and_rows"),
        "seq_scans_and_rows": db.get("seq_scans_and_rows"),
        # The service's PostgreSQL cells: pg_stat_user_tables differences,
        # from before the load to after it (bench/table_scans.sql).
        "table_reads": table_reads(out, name),
        # The webhook cells: the outbox after the service stopped, and the
        # delivery latency of the paced ones; the paced load's own figures.
        "outbox": outbox,
        "drain": drain,
        "latency": latency,
        "send_lag_max_ms": wrk.get("send_lag_max_ms"),
        # The event log and retention cells: the log after the cell, the
        # operation beside the load, the waits around it, the rows, the archive.
        "event_log": event_log,
        "operation": operation,
        "waits": windows,
        "rows": rows,
        "archive": archive,
        "disk": disk,
        "activity": activity,
        "disk_free": disk_free,
        "checkpoints": checkpoints,
        "dry_run": text_optional(out, f"cells/{name}.dry_run.txt"),
        "correct": all(checks.values()),
    }


def ratio(a, b):
    return round(a / b, 3) if b else 0.0


def webhook_summary(cells):
    """The webhook figures of issue 23 (flat keys for summary.json) and their
    goals: {name: {value, goal, met}} (a goal is met only if its cells passed
    their checks)."""
    summary, goals = {}, {}

    def goal(key, value, target, higher, valid):
        met = value is not None and valid and (value >= target if higher else value <= target)
        goals[key] = {"value": value, "goal": f"{'≥' if higher else '≤'} {target}", "met": met}

    for c in (16, 64):
        name, fresh = f"pg_c{c}_webhook", cells[f"pg_c{c}_fresh"]
        cell = cells[name]
        outbox = cell["outbox"] or {}
        states = (outbox.get("deliveries") or {}).get("receiver") or {}
        summary[f"{name}_vs_fresh"] = ratio(cell["rps"], fresh["rps"])
        summary[f"{name}_messages"] = outbox.get("messages")
        summary[f"{name}_delivered_by_stop"] = states.get("delivered", 0)
        summary[f"{name}_pending_at_stop"] = states.get("pending", 0)
        summary[f"{name}_dead_at_stop"] = states.get("dead", 0)
        drain = cell["drain"] or {}
        summary[f"{name}_pending_at_load_end"] = drain.get("pending_at_load_end")
        summary[f"{name}_drain_seconds"] = drain.get("drain_seconds")
        goal(f"{name}_vs_fresh", summary[f"{name}_vs_fresh"], 0.9, True,
             cell["correct"] and fresh["correct"])
    for name in LATENCY_CELLS:
        cell = cells[name]
        latency = cell["latency"] or {}
        for key in ("p50_ms", "p99_ms", "max_ms"):
            summary[f"{name}_delivery_{key}"] = latency.get(key)
        for key in ("messages", "received", "not_received", "received_again"):
            summary[f"{name}_{key}"] = latency.get(key)
        summary[f"{name}_callbacks_per_s"] = cell["rps"]
        summary[f"{name}_send_lag_max_ms"] = cell["send_lag_max_ms"]
    alone, failing = cells["pg_webhook_latency"], cells["pg_webhook_latency_failing"]
    goal("pg_webhook_latency_delivery_p99_ms", summary["pg_webhook_latency_delivery_p99_ms"], 250, False,
         alone["correct"] and summary["pg_webhook_latency_not_received"] == 0)
    over = (ratio(summary["pg_webhook_latency_failing_delivery_p99_ms"],
                  summary["pg_webhook_latency_delivery_p99_ms"])
            if summary["pg_webhook_latency_delivery_p99_ms"] is not None
            and summary["pg_webhook_latency_failing_delivery_p99_ms"] is not None else None)
    summary["webhook_failing_over_alone_p99"] = over
    goal("webhook_failing_over_alone_p99", over, 1.1, False,
         alone["correct"] and failing["correct"] and summary["pg_webhook_latency_failing_not_received"] == 0)
    outbox = failing["outbox"] or {}
    summary["pg_webhook_latency_failing_endpoint"] = {
        "attempts": (outbox.get("attempts") or {}).get("failing") or {},
        "deliveries": (outbox.get("deliveries") or {}).get("failing") or {}}
    summary["webhook_goals"] = goals
    return summary


def cell_rows(cells, width):
    for cell in cells.values():
        print(f"{cell['label']:<{width}}{cell['rps']:>8.0f}{cell['p50_ms']:>9.1f}{cell['p99_ms']:>9.1f}"
              f"{cell['min_rps']:>11}{cell['min_over_mean']:>10.2f}  "
              + ("yes" if cell["correct"] else "NO: " + "; ".join(cell["failed_checks"])))


def goal_mark(summary, key):
    g = summary["webhook_goals"][key]
    return f"goal {g['goal']}: {'met' if g['met'] else 'MISSED'}"


def webhook_lines(summary, cells):
    """The webhook figures, as lines of text (the table and summary.md)."""
    lines = [f"webhooks ({summary.get('webhook_endpoints', '')}):"]
    for c in (16, 64):
        name = f"pg_c{c}_webhook"
        cell = cells[name]
        lines.append(
            f"  C={c}, one endpoint: {cell['rps']:,.0f} req/s = {summary[f'{name}_vs_fresh']:.2f}x "
            f"pg_c{c}_fresh's {cells[f'pg_c{c}_fresh']['rps']:,.0f} ({goal_mark(summary, f'{name}_vs_fresh')}); "
            f"messages written {summary[f'{name}_messages'] or 0:,}, delivered by the service's stop "
            f"{summary[f'{name}_delivered_by_stop']:,}, still pending {summary[f'{name}_pending_at_stop']:,}, "
            f"dead {summary[f'{name}_dead_at_stop']:,}; pending when the load stopped "
            f"{summary[f'{name}_pending_at_load_end'] or 0:,}, delivered "
            f"{summary[f'{name}_drain_seconds'] or 0:.1f} s later"
            + ("" if cell["correct"] else " (NOT VALID: a cell failed its checks)"))
    for name, what in (("pg_webhook_latency", "one endpoint"),
                       ("pg_webhook_latency_failing", "beside an endpoint answering 500")):
        cell = cells[name]
        fig = lambda k: ("-" if summary[f"{name}_delivery_{k}"] is None
                         else f"{summary[f'{name}_delivery_{k}']:.1f}")
        line = (f"  delivery latency, commit -> first attempt received, {what} "
                f"({cell['requests']:,} callbacks at {cell['rps']:.1f}/s, latest send "
                f"{cell['send_lag_max_ms'] or 0:.0f} ms behind its time): p50 {fig('p50_ms')} ms, "
                f"p99 {fig('p99_ms')} ms, max {fig('max_ms')} ms; received {summary[f'{name}_received'] or 0:,} "
                f"of {summary[f'{name}_messages'] or 0:,} messages ({summary[f'{name}_not_received'] or 0:,} "
                f"never, {summary[f'{name}_received_again'] or 0:,} more than once)")
        if name == "pg_webhook_latency":
            line += f" ({goal_mark(summary, 'pg_webhook_latency_delivery_p99_ms')})"
        else:
            over = summary["webhook_failing_over_alone_p99"]
            failing = summary["pg_webhook_latency_failing_endpoint"]
            line += (f"; p99 over the run without it {'-' if over is None else f'{over:.2f}'} "
                     f"({goal_mark(summary, 'webhook_failing_over_alone_p99')}); the failing endpoint: "
                     f"attempts {failing['attempts']}, deliveries {failing['deliveries']}")
        if not cell["correct"]:
            line += " (NOT VALID: the cell failed its checks)"
        lines.append(line)
    return lines


def goal_entry(value, target, higher, valid):
    """{value, goal, met}: met only if the value reaches the target and its
    cells passed their checks."""
    met = value is not None and valid and (value >= target if higher else value <= target)
    return {"value": value, "goal": f"{'≥' if higher else '≤'} {target}", "met": met}


UPGRADE_REPORT = re.compile(r"event log partitioned by month: (\d+) rows kept in place as (\S+), "
                            r"in ([\d.]+) s, locked ([\d.]+) ms")


def retention_summary(cells):
    """The figures of issue 24 (flat keys for summary.json) and their goals
    (`retention_goals`: {name: {value, goal, met}})."""
    summary = pairs_summary(cells)
    goals = summary["retention_goals"]
    for name, target in OPERATION_CELLS.items():
        cell = cells[name]
        operation, waits = cell["operation"] or {}, cell["waits"] or {}
        rows, archive = cell["rows"] or {}, cell["archive"] or {}
        summary[f"{name}_seconds"] = operation.get("seconds")
        summary[f"{name}_finished"] = operation.get("finished")
        summary[f"{name}_output"] = operation.get("output")
        for window in ("before", "during", "after"):
            for key in ("requests", "p99_ms", "max_ms"):
                summary[f"{name}_{window}_{key}"] = (waits.get(window) or {}).get(key)
        summary[f"{name}_rows"] = rows
        if archive:
            summary[f"{name}_archive_bytes"] = archive["bytes"]
            summary[f"{name}_archive_files"] = archive["files"]
            summary[f"{name}_verify"] = archive["verify"]
        if cell["dry_run"] is not None:
            summary[f"{name}_dry_run"] = cell["dry_run"]
        summary[f"{name}_during_max_ms_by_slice"] = (waits.get("during") or {}).get("max_ms_by_slice")
        summary[f"{name}_phases"] = waits.get("phases")
        summary[f"{name}_disk"] = cell["disk"]
        summary[f"{name}_activity"] = cell["activity"]
        summary[f"{name}_disk_free"] = cell["disk_free"]
        summary[f"{name}_checkpoints"] = cell["checkpoints"]
        summary[f"{name}_during_max_at_s"] = (waits.get("during") or {}).get("max_sent_after_start_s")
        summary[f"{name}_during_not_ok"] = (waits.get("during") or {}).get("not_ok_by_answer")
        key = f"{name}_during_max_ms"
        goals[key] = goal_entry(summary[key], target, False,
                                cell["correct"] and bool(operation.get("finished")))
    upgrade = UPGRADE_REPORT.search(summary["pg_upgrade_output"] or "")
    summary["pg_upgrade_report"] = None if upgrade is None else {
        "rows": int(upgrade[1]), "old_partition": upgrade[2], "seconds": float(upgrade[3]),
        "locked_ms": float(upgrade[4])}
    return summary


def pairs_summary(cells):
    """The partitioned over plain ratios (flat keys for summary.json) and
    their goals (`retention_goals`)."""
    summary, goals = {}, {}
    for (c, db), (partitioned, plain) in PAIRS.items():
        key = f"pg_c{c}_{db}_partitioned_over_plain"
        summary[key] = ratio(cells[partitioned]["rps"], cells[plain]["rps"])
        # Each slice's ratio to its twin's next to it: how far one slice
        # pair alone could be trusted.
        summary[f"{key}_by_slice"] = [ratio(p, q) for p, q in
                                      zip(cells[partitioned]["slices_rps"], cells[plain]["slices_rps"])]
        goals[key] = goal_entry(summary[key], 0.95, True,
                                cells[partitioned]["correct"] and cells[plain]["correct"])
    summary["retention_goals"] = goals
    return summary


def goal_mark(goals, key):
    """`goal G: met` or `goal G: MISSED` for goal `key`."""
    g = goals[key]
    return f"goal {g['goal']}: {'met' if g['met'] else 'MISSED'}"


def not_valid(cells, *names):
    """A note when any of the named cells failed its checks."""
    return "" if all(cells[n]["correct"] for n in names) else " (NOT VALID: a cell failed its checks)"


def pairs_lines(summary, cells):
    """The partitioned over plain ratios, as lines of text."""
    goals = summary["retention_goals"]

    def log_upkeep(name, table):
        reads = (cells[name]["table_reads"] or {}).get(table)
        return "-" if reads is None else f"{reads['autovacuum_count']} / {reads['autoanalyze_count']}"

    def slice_checkpoints(partitioned, plain):
        # PostgreSQL's checkpoints that ended during each side's slices
        # (their sync stalls the commits of whichever slice is running).
        sides = [cells[partitioned].get("checkpoints"), cells[plain].get("checkpoints")]
        if any(side is None for side in sides):
            return ""
        return ("; checkpoints ended in its slices " + " and ".join(
            ", ".join(f"s{c['slice']}" for c in side) or "none" for side in sides))

    lines = []
    for c in (16, 64):
        parts = []
        for db in ("fresh", "grown"):
            partitioned, plain = PAIRS[(c, db)]
            key = f"pg_c{c}_{db}_partitioned_over_plain"
            by_slice = summary[f"{key}_by_slice"]
            parts.append(f"{db} {summary[key]:.2f} ({cells[partitioned]['rps']:,.0f} / "
                         f"{cells[plain]['rps']:,.0f} req/s over {len(by_slice)} slices each, slice pairs "
                         f"{min(by_slice):.2f}–{max(by_slice):.2f}; autovacuum / analyse of the log "
                         f"{log_upkeep(partitioned, 'event_partitions')} and {log_upkeep(plain, 'events')}"
                         f"{slice_checkpoints(partitioned, plain)}; {goal_mark(goals, key)})"
                         f"{not_valid(cells, partitioned, plain)}")
        lines.append(f"  partitioned over plain, C={c}: " + ", ".join(parts))
    return lines


def pairs_only_lines(summary, cells):
    """BENCH_ONLY=pairs: the ratios under a heading with the pairs' settings."""
    return [f"event log ({summary.get('plain_settings', '')}):"] + pairs_lines(summary, cells)


def retention_lines(summary, cells):
    """The event log and retention figures, as lines of text (the table and
    summary.md)."""
    goals = summary["retention_goals"]

    def mark(key):
        return goal_mark(goals, key)

    def valid(*names):
        return not_valid(cells, *names)

    def ms(value):
        return "-" if value is None else f"{value:,.1f} ms"

    lines = [f"event log and retention ({summary.get('plain_settings', '')}; {summary.get('retention_settings', '')}):"]
    lines += pairs_lines(summary, cells)

    def around(name):
        slices = summary[f"{name}_during_max_ms_by_slice"] or []
        return (f"longest callback wait during it {ms(summary[f'{name}_during_max_ms'])} "
                f"(p99 {ms(summary[f'{name}_during_p99_ms'])}, {summary[f'{name}_during_requests'] or 0:,} "
                f"callbacks; {mark(f'{name}_during_max_ms')}"
                + (f"; the longest of each 30 s: {', '.join(f'{v:,.0f}' for v in slices)} ms"
                   if len(slices) > 1 else "")
                + "".join(f"; {p['name']} ({p['from_s']:.1f}–{p['to_s']:.1f} s) longest {ms(p['max_ms'])}"
                          for p in summary[f"{name}_phases"] or [])
                + "".join(f"; answered other than ok during it: {n:,} × {answer}"
                          for answer, n in (summary[f"{name}_during_not_ok"] or {}).items())
                + disk(name)
                + activity(name)
                + checkpoints(name)
                + f"); the longest before it {ms(summary[f'{name}_before_max_ms'])} "
                f"(p99 {ms(summary[f'{name}_before_p99_ms'])}), after it {ms(summary[f'{name}_after_max_ms'])} "
                f"(p99 {ms(summary[f'{name}_after_p99_ms'])})")

    def disk(name):
        probe = summary.get(f"{name}_disk") or {}
        if not probe.get("fsyncs"):
            return ""
        at = summary[f"{name}_during_max_at_s"]
        return (f"; the disk's own fsync beside it (bench/fsync_probe.py, {probe['fsyncs']:,}): p99 "
                f"{ms(probe['p99_ms'])}, longest {ms(probe['max_ms'])} at {probe['max_at_s']:.1f} s"
                + ("" if at is None else f" (the callbacks' longest wait at {at:.1f} s)")
                + device(probe))

    def device(probe):
        # What the device did (every writer on the machine) in the second
        # before the probe's longest fsync and during it, against its pace
        # over the whole operation: a stall with little written is the host's.
        around, whole = probe.get("device_around_max"), probe.get("device_whole")
        if not around or not whole:
            return ""

        def rate(d):
            return f"{d['written_mb'] / d['seconds']:.1f} MB/s written, {d['flushes'] / d['seconds']:.0f} flushes/s"

        return (f"; the device then (from 1 s before it to its end, {around['seconds']:.2f} s): {rate(around)}"
                + (f", {around['discarded_mb']:.1f} MB discarded" if around["discarded_mb"] else "")
                + f"; over the whole operation {rate(whole)}")

    def activity(name):
        # What PostgreSQL's backends did while the longest wait lasted: the
        # four things seen most often in the samples.
        seen = summary.get(f"{name}_activity") or {}
        if not seen.get("samples"):
            return ""
        return (f"; PostgreSQL during that wait (bench/activity.py, {seen['samples']} samples with a backend busy "
                f"{seen['from_s']:.2f}–{seen['to_s']:.2f} s): "
                + ", ".join(f"{e['backend']} {e['state'] or '-'} {e['wait']}"
                            + (f" blocked by {e['blocked_by']}" if e['blocked_by'] else "")
                            + f" ×{e['times']} ({e['query'][:50]!r})"
                            for e in seen["seen"][:4]))

    def checkpoints(name):
        done = summary.get(f"{name}_checkpoints")
        if done is None:
            return ""
        return ("; PostgreSQL's checkpoints from its start to the load's end: "
                + (", ".join(f"at {c['at_s']:.1f} s ({c['wal_removed']} WAL files removed, "
                             f"{c['wal_recycled']} recycled)" for c in done) or "none"))

    def took(name):
        seconds = summary[f"{name}_seconds"]
        if seconds is None:
            return "did not run"
        if summary[f"{name}_finished"]:
            return f"took {seconds:,.1f} s"
        return f"DID NOT FINISH (stopped or failed after {seconds:,.1f} s)"

    def rows_line(name, what):
        rows = summary[f"{name}_rows"] or {}
        if not rows:
            return "rows: -"
        ok = cells[name]["ok_answers"]
        return (f"events before {rows['before']:,}, after {rows['after']:,} = before + {ok:,} ok answers"
                f" - {rows['deleted']:,} {what}")

    def archive_line(name):
        archive = cells[name]["archive"] or {}
        verify = archive.get("verify", "").strip()
        verified = re.findall(r"^ok .* (\d+) rows", verify, re.M)
        return (f"archive {archive.get('bytes', 0) / 1e6:,.1f} MB ({', '.join(archive.get('files', [])) or 'none'}); "
                "retention verify: " + (f"ok, {', '.join(f'{int(n):,}' for n in verified)} rows, "
                                        f"{archive.get('verify_seconds', 0):.1f} s"
                                        if archive.get("verify_status") == 0 else f"FAILED: {verify}"))

    report = summary["pg_upgrade_report"]
    lines.append(
        f"  upgrade of the grown database (plain, {summary['pg_upgrade_rows'].get('before', 0):,} events) by "
        f"`migrate` under {cells['pg_upgrade']['rps']:.0f} callbacks/s: {took('pg_upgrade')}"
        + ("" if report is None else
           f" (its report: {report['rows']:,} rows kept in place as {report['old_partition']}, in "
           f"{report['seconds']:.3f} s, locked {report['locked_ms']:.1f} ms)")
        + f"; {rows_line('pg_upgrade', 'deleted')}; {around('pg_upgrade')}{valid('pg_upgrade')}")
    lines.append(
        f"  a month of {summary['pg_retention_drop_rows'].get('going', 0):,} events dropped on PostgreSQL "
        f"(grown database + the old month's partition) by `retention run` under "
        f"{cells['pg_retention_drop']['rps']:.0f} callbacks/s: {took('pg_retention_drop')}; "
        f"{around('pg_retention_drop')}; {rows_line('pg_retention_drop', 'archived and deleted')}; "
        f"{archive_line('pg_retention_drop')}{valid('pg_retention_drop')}")
    alone = summary.get("pg_retention_drop_disk_free") or {}
    if alone.get("fsyncs"):
        lines.append(
            f"  the disk alone after it (no service, no load): a file of {alone['bytes'] / 1e6:,.0f} MB "
            f"(the dropped partition's size) written, then removed: the disk probe's longest fsync in "
            f"the 5 s after the removal {ms(alone['max_ms'])} at {alone['max_at_s']:.2f} s (p99 "
            f"{ms(alone['p99_ms'])}; the freed blocks go to the device at the file system's next "
            f"journal commit when it is mounted with online discard)")
    lines.append(
        f"  a month of {summary['sqlite_retention_batches_rows'].get('going', 0):,} events deleted on SQLite "
        f"(fresh database + the old month), batch 500, by `retention run` under "
        f"{cells['sqlite_retention_batches']['rps']:.0f} callbacks/s: {took('sqlite_retention_batches')}; "
        f"{around('sqlite_retention_batches')}; "
        f"{rows_line('sqlite_retention_batches', 'archived and deleted')}; "
        f"{archive_line('sqlite_retention_batches')}{valid('sqlite_retention_batches')}")
    for name in OPERATION_CELLS:
        output = summary.get(f"{name}_output")
        if name != "pg_upgrade" and output:
            lines.append(f"  `retention run` output ({name}):")
            lines += ["      " + line for line in output.rstrip().splitlines()]
        dry_run = summary.get(f"{name}_dry_run")
        if dry_run:
            lines.append(f"  `retention run --dry-run` before it ({name}):")
            lines += ["      " + line for line in dry_run.rstrip().splitlines()]
    return lines


def markdown_list(lines):
    """Indented lines as markdown list items (summary.md); lines indented
    further (a command's output) as a code block under the item before them."""
    out, in_code = [], False
    for line in lines:
        code = line.startswith("      ")
        if code != in_code:
            out.append("  ```")
            in_code = code
        if code:
            out.append("  " + line[6:])
        else:
            out.append("- " + line.strip() if line.startswith("  ") else line)
    if in_code:
        out.append("  ```")
    return out


# BENCH_ONLY runs (development): their cells, figures and lines.
ONLY = {
    "webhook": (["pg_c16_fresh", "pg_c64_fresh"] + WEBHOOK_CELLS, webhook_summary, webhook_lines),
    "retention": (["pg_c16_fresh", "pg_c64_fresh"] + RETENTION_CELLS,
                  retention_summary, retention_lines),
    "pairs": (PAIRED_CELLS, pairs_summary, pairs_only_lines),
}


def main_only(out, run):
    """A BENCH_ONLY run: its cells alone, their table and figures."""
    only = run["only"]
    names, figures, lines_of = ONLY[only]
    cells = {name: cell_summary(out, name, 64 if "c64" in name else 16, 0, run)
             for name in names}
    summary = dict(run)
    for name, cell in cells.items():
        for key in ("rps", "p50_ms", "p99_ms", "service_cpu_us", "postgres_cpu_us", "cpu_total_us"):
            summary[f"{name}_{key}"] = cell[key]
    summary.update(figures(cells))
    summary["correct"] = all(cell["correct"] for cell in cells.values())
    summary["cells"] = cells
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print()
    print(f"scripts/bench {summary['mode']} with BENCH_ONLY={only} (development; not for reported "
          f"figures): {summary['seconds_per_cell']} s per cell; load average {summary['loadavg_start']} "
          f"at start, {summary['loadavg_end']} at end")
    print(f"service settings: {summary['service_settings']}")
    width = max(len(cell["label"]) for cell in cells.values()) + 2
    head = f"{'cell':<{width}}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'min/s >5s':>11}{'min/mean':>10}  correct"
    print(head)
    print("-" * len(head))
    cell_rows(cells, width)
    lines = lines_of(summary, cells)
    print("\n".join(lines))
    print("correctness (every cell): " + ("yes" if summary["correct"] else "NO"))
    table = ["| Cell | req/s | p50 | p99 | correct |", "|---|---|---|---|---|"]
    table += [f"| {cell['label']} | {cell['rps']:,.0f} | {cell['p50_ms']:.1f} ms | {cell['p99_ms']:.1f} ms | "
              f"{'yes' if cell['correct'] else 'NO: ' + '; '.join(cell['failed_checks'])} |"
              for cell in cells.values()]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(f"BENCH_ONLY={only} run (development; not for reported figures). "
                f"Service settings: {summary['service_settings']}.\n\n")
        f.write("\n".join(table + [""] + markdown_list(lines)) + "\n")
    return 0 if summary["correct"] else 1


def main(out):
    run = load(out, "run.json")
    if run.get("only"):
        return main_only(out, run)
    long_seconds = run.get("long_seconds", 0)
    cells = {}
    for name in PG_CELLS + WEBHOOK_CELLS + RETENTION_CELLS + PHP_CELLS + SQLITE_CELLS:
        concurrency = 64 if "c64" in name else 16
        cells[name] = cell_summary(out, name, concurrency, long_seconds, run)
    pgbench = load(out, "pgbench.json")
    sqlite_ceiling = load(out, "sqlite_ceiling.json")["sqlite_ceiling_tps"]
    rss = load(out, "rss.json")["rss_peak_mb"]

    summary = dict(run)
    for name, cell in cells.items():
        for key in ("rps", "p50_ms", "p99_ms", "min_rps", "min_over_mean", "service_cpu_us",
                    "postgres_cpu_us", "cpu_us", "cpu_total_us"):
            summary[f"{name}_{key}"] = cell[key]
    summary["pgbench_c16_tps"] = round(float(pgbench["c16"]), 1)
    summary["pgbench_c64_tps"] = round(float(pgbench["c64"]), 1)
    summary["sqlite_ceiling_tps"] = round(sqlite_ceiling, 1)
    summary["rss_peak_mb"] = rss

    for c in (16, 64):
        for db in ("fresh", "young", "grown"):
            rps = cells[f"pg_c{c}_{db}"]["rps"]
            summary[f"pg_c{c}_{db}_vs_php"] = ratio(rps, cells[f"php_c{c}"]["rps"])
            summary[f"pg_c{c}_{db}_vs_pgbench"] = ratio(rps, summary[f"pgbench_c{c}_tps"])
        summary[f"php_c{c}_vs_pgbench"] = ratio(cells[f"php_c{c}"]["rps"], summary[f"pgbench_c{c}_tps"])
        # Young statistics against fresh (target: within 10 %).
        summary[f"pg_c{c}_young_vs_fresh"] = ratio(cells[f"pg_c{c}_young"]["rps"],
                                                   cells[f"pg_c{c}_fresh"]["rps"])
        # CPU per callback, the whole of each side: receiver + PostgreSQL.
        summary[f"cpu_total_us_c{c}_service_vs_php"] = ratio(
            cells[f"pg_c{c}_fresh"]["cpu_total_us"] or 0, cells[f"php_c{c}"]["cpu_total_us"] or 0)
    # The headline ratios: the service on a fresh database, as a new deployment starts.
    summary["pg_c16_vs_php"] = summary["pg_c16_fresh_vs_php"]
    summary["pg_c64_vs_php"] = summary["pg_c64_fresh_vs_php"]
    summary["pg_c16_vs_pgbench"] = summary["pg_c16_fresh_vs_pgbench"]
    summary["pg_c64_vs_pgbench"] = summary["pg_c64_fresh_vs_pgbench"]
    # What request logging costs at C=64: the info/json rate over the warn rate.
    summary["logging_info_json_over_warn_c64"] = ratio(cells["pg_c64_fresh"]["rps"],
                                                       cells["pg_c64_fresh_warn"]["rps"])
    # Sequential scans of the callback path's tables during the young cells.
    for name in ("pg_c16_young", "pg_c64_young", "pg_c16_long"):
        reads = cells[name]["table_reads"] or {}
        summary[f"{name}_seq_scans"] = {t: reads[t]["seq_scan"] for t in SCAN_TABLES[:3] if t in reads}
        summary[f"{name}_seq_tup_read"] = {t: reads[t]["seq_tup_read"] for t in SCAN_TABLES[:3] if t in reads}
    long = cells["pg_c16_long"]
    summary["pg_c16_long_mean_rps"] = long["rps"]
    summary["pg_c16_long_series_mean"] = long["series_mean"]
    summary["pg_c16_long_worst_second"] = long["min_rps"]
    summary["pg_c16_long_worst_over_mean"] = long["min_over_mean"]
    summary["pg_c16_long_autovacuum"] = {
        t: {"autovacuum": r["autovacuum_count"], "autoanalyze": r["autoanalyze_count"]}
        for t, r in (long["table_reads"] or {}).items()}
    summary["sqlite_fresh_vs_ceiling"] = ratio(cells["sqlite_fresh"]["rps"], sqlite_ceiling)
    summary["sqlite_grown_vs_ceiling"] = ratio(cells["sqlite_grown"]["rps"], sqlite_ceiling)
    summary.update(webhook_summary(cells))
    summary.update(retention_summary(cells))
    summary["correct"] = all(cell["correct"] for cell in cells.values())
    summary["cells"] = cells

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print_table(summary, cells)
    write_markdown(out, summary, cells)
    plot(out, summary, cells)
    return 0 if summary["correct"] else 1


def mark(value, target, higher=True):
    """' (target ≥ X: met)' style note."""
    met = value >= target if higher else value <= target
    return f"target {'≥' if higher else '≤'} {target}: {'met' if met else 'MISSED'}"


def cpu_side_by_side(cells):
    """Rows of the CPU comparison: [(row name, [µs per column])], columns
    service fresh / PHP peer at C=16 and C=64."""
    columns = ["pg_c16_fresh", "php_c16", "pg_c64_fresh", "php_c64"]
    rows = []
    for group in CPU_GROUPS:
        rows.append((CPU_NAMES[group], [cells[n]["cpu_us"].get(group) for n in columns]))
    rows.append(("total", [cells[n]["cpu_total_us"] for n in columns]))
    return columns, rows


def print_table(summary, cells):
    print()
    print(f"scripts/bench {summary['mode']}: {summary['seconds_per_cell']} s per cell, long cell "
          f"{summary['long_seconds']} s, grown = {summary['grown_rows']:,} prior payments; load average "
          f"{summary['loadavg_start']} at start, {summary['loadavg_end']} at end")
    print(f"service settings: {summary['service_settings']}")
    print(f"database: {summary['postgres']}; autovacuum = {summary['autovacuum'].get('autovacuum')}")
    width = max(len(cell["label"]) for cell in cells.values()) + 2
    head = f"{'cell':<{width}}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'min/s >5s':>11}{'min/mean':>10}  correct"
    print(head)
    print("-" * len(head))
    cell_rows(cells, width)
    print(f"{'pgbench reference tx, C=16 / C=64':<{width}}{summary['pgbench_c16_tps']:>8.0f} / "
          f"{summary['pgbench_c64_tps']:.0f} TPS")
    print(f"{'SQLite in-process ceiling':<{width}}{summary['sqlite_ceiling_tps']:>8.0f} TPS")
    print(f"service peak RSS: {summary['rss_peak_mb']} MB")
    print("ratios (service req/s over; info/json logs):")
    for c, target in ((16, 2.0), (64, 3.0)):
        print(f"  C={c}: PHP peer {summary[f'pg_c{c}_fresh_vs_php']:.2f}x fresh, "
              f"{summary[f'pg_c{c}_young_vs_php']:.2f}x young, "
              f"{summary[f'pg_c{c}_grown_vs_php']:.2f}x grown (target ≥ {target}); pgbench "
              f"{summary[f'pg_c{c}_fresh_vs_pgbench']:.2f}x fresh, "
              f"{summary[f'pg_c{c}_young_vs_pgbench']:.2f}x young, "
              f"{summary[f'pg_c{c}_grown_vs_pgbench']:.2f}x grown"
              + (" (target ≥ 1.0)" if c == 16 else ""))
    for c in (16, 64):
        print(f"  young statistics over fresh, C={c}: {summary[f'pg_c{c}_young_vs_fresh']:.2f} "
              f"({mark(summary[f'pg_c{c}_young_vs_fresh'], 0.9)})")
    print(f"  SQLite: ceiling {summary['sqlite_fresh_vs_ceiling']:.2f}x fresh, "
          f"{summary['sqlite_grown_vs_ceiling']:.2f}x grown")

    info, warn = cells["pg_c64_fresh"], cells["pg_c64_fresh_warn"]
    cost = summary["logging_info_json_over_warn_c64"]
    print(f"logging cost at C=64: info/json rate / warn rate = {cost:.2f} "
          f"({info['rps']:,.0f} / {warn['rps']:,.0f} req/s; logging costs {(1 - cost) * 100:.0f} %; "
          f"{mark(cost, 0.9)}); log written per request: info/json "
          f"{info['log_lines_per_request']} lines, {info['log_bytes_per_request']} bytes; warn "
          f"{warn['log_lines_per_request']} lines, {warn['log_bytes_per_request']} bytes"
          + ("" if info["correct"] and warn["correct"] else " (NOT VALID: a cell failed its checks)"))

    print("\n".join(webhook_lines(summary, cells)))
    print("\n".join(retention_lines(summary, cells)))

    for name in ("pg_c16_young", "pg_c64_young"):
        reads = cells[name]["table_reads"]
        if reads is None:
            continue
        c = cells[name]["concurrency"]
        print(f"seq scans during the young-statistics cell (C={c}): "
              + ", ".join(f"{t} {reads[t]['seq_scan']:,}" for t in SCAN_TABLES[:3] if t in reads)
              + " (rows read: "
              + ", ".join(f"{t} {reads[t]['seq_tup_read']:,}" for t in SCAN_TABLES[:3] if t in reads)
              + "; index scans: "
              + ", ".join(f"{t} {reads[t]['idx_scan']:,}" for t in SCAN_TABLES[:3] if t in reads) + ")")

    long = cells["pg_c16_long"]
    print(f"long cell ({long['label']}): mean {long['rps']:,.0f} req/s (wrk; series mean after 5 s "
          f"{long['series_mean']:,.0f}/s), worst second after the first 5 s {long['min_rps']:,}/s, "
          f"worst/mean {long['min_over_mean']:.2f} ({mark(long['min_over_mean'], 0.8)})")
    reads = long["table_reads"]
    if reads:
        print("  during it: "
              + "; ".join(f"{t} seq scans {r['seq_scan']:,}, autovacuum {r['autovacuum_count']}, "
                          f"autoanalyze {r['autoanalyze_count']}, rows at end {r['n_live_tup']:,}"
                          for t, r in reads.items()))

    columns, rows = cpu_side_by_side(cells)
    print("CPU per callback, µs (user + system over the cell / its requests; each side whole):")
    titles = ["service C=16", "PHP C=16", "service C=64", "PHP C=64"]
    print(f"  {'':<30}" + "".join(f"{t:>14}" for t in titles))
    for row, values in rows:
        print(f"  {row:<30}" + "".join(f"{('-' if v is None else v):>14}" for v in values))
    for c in (16, 64):
        print(f"  service over PHP, total, C={c}: {summary[f'cpu_total_us_c{c}_service_vs_php']:.2f}")
    print("  every cell (receiver groups + PostgreSQL = total):")
    for cell in cells.values():
        if cell["cpu_us"]:
            parts = ", ".join(f"{g} {cell['cpu_us'][g]}" for g in CPU_GROUPS if g in cell["cpu_us"])
            print(f"    {cell['label']:<{width}}{parts}; total {cell['cpu_total_us']}")
    print("correctness (every cell): " + ("yes" if summary["correct"] else "NO"))


def write_markdown(out, summary, cells):
    """The results tables as BENCHMARKS.md shows them (target/bench/summary.md)."""
    lines = [
        f"Service settings: {summary['service_settings']}. Database: {summary['postgres']}.",
        "",
        "| Cell | req/s | p50 | p99 | worst second after 5 s | worst / mean | correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells.values():
        lines.append(
            f"| {cell['label']} | {cell['rps']:,.0f} | {cell['p50_ms']:.1f} ms | {cell['p99_ms']:.1f} ms "
            f"| {cell['min_rps']:,} | {cell['min_over_mean']:.2f} | {'yes' if cell['correct'] else 'NO'} |")
    lines.append(f"| pgbench, reference transaction, C=16 | {summary['pgbench_c16_tps']:,.0f} TPS | | | | | |")
    lines.append(f"| pgbench, reference transaction, C=64 | {summary['pgbench_c64_tps']:,.0f} TPS | | | | | |")
    lines.append(f"| SQLite in-process ceiling | {summary['sqlite_ceiling_tps']:,.0f} TPS | | | | | |")
    lines += ["", f"Logging cost at C=64: info/json rate / warn rate = "
                  f"{summary['logging_info_json_over_warn_c64']:.2f}."]
    lines += [""] + markdown_list(webhook_lines(summary, cells))
    lines += [""] + markdown_list(retention_lines(summary, cells))
    for name in ("pg_c16_young", "pg_c64_young"):
        seq = summary[f"{name}_seq_scans"]
        lines.append(f"Seq scans during {name}: " + ", ".join(f"{t} {n:,}" for t, n in seq.items()) + ".")
    columns, rows = cpu_side_by_side(cells)
    lines += ["", "CPU per callback (µs):", "",
              "| | service, C=16 | PHP peer, C=16 | service, C=64 | PHP peer, C=64 |",
              "|---|---|---|---|---|"]
    for row, values in rows:
        lines.append(f"| {row} | " + " | ".join("—" if v is None else f"{v} µs" for v in values) + " |")
    lines += ["", "| Cell | " + " | ".join(CPU_NAMES[g] for g in CPU_GROUPS) + " | total |",
              "|---|" + "---|" * (len(CPU_GROUPS) + 1)]
    for cell in cells.values():
        if cell["cpu_us"]:
            lines.append(f"| {cell['label']} | "
                         + " | ".join(f"{cell['cpu_us'][g]} µs" if g in cell["cpu_us"] else "—"
                                      for g in CPU_GROUPS)
                         + f" | {cell['cpu_total_us']} µs |")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
        for name, cell in cells.items():
            f.write(f"\n{name}: {', '.join(str(n) for n in cell['series'])}\n")
            if cell["index_scans_and_rows"] is not None:
                f.write(f"{name} reads [scans, rows]: by index {cell['index_scans_and_rows']}, "
                        f"sequential {cell['seq_scans_and_rows']}\n")


def plot(out, summary, cells):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        print(f"plots skipped: {error}")
        return

    panels = [
        # The paired cells are not here: their seconds alternate with their twin's.
        ("PostgreSQL, C=16", ["pg_c16_fresh", "pg_c16_webhook", "pg_c16_young", "pg_c16_grown", "php_c16"],
         summary["pgbench_c16_tps"], "pgbench"),
        ("PostgreSQL, C=64", ["pg_c64_fresh", "pg_c64_fresh_warn", "pg_c64_webhook", "pg_c64_young",
                              "pg_c64_grown", "php_c64"],
         summary["pgbench_c64_tps"], "pgbench"),
        (f"PostgreSQL, C=16, {summary['long_seconds']} s from an empty database, autovacuum at its "
         "defaults", ["pg_c16_long"], summary["pgbench_c16_tps"], "pgbench C=16"),
        ("SQLite, C=16", ["sqlite_fresh", "sqlite_grown"], summary["sqlite_ceiling_tps"], "in-process ceiling"),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 13))
    for ax, (title, names, ceiling, ceiling_label) in zip(axes, panels):
        for name in names:
            series = cells[name]["series"]
            ax.plot(range(len(series)), series, label=cells[name]["label"])
        ax.axhline(ceiling, color="grey", linestyle="--", label=f"{ceiling_label} ({ceiling:.0f}/s)")
        ax.axvline(WARM_UP_SECONDS, color="lightgrey", linestyle=":")
        ax.set_title(title)
        ax.set_ylabel("callbacks stored / s")
        ax.set_xlabel("seconds since the cell's first stored callback")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(f"scripts/bench {summary['mode']}: throughput over time (events.received_at); "
                 "log.level info, JSON logs unless labelled")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(os.path.join(out, "throughput.png"), dpi=100)

    # The paced cells run at a fixed rate: not in the side by side.
    names = [n for n in cells if n not in LATENCY_CELLS and n not in OPERATION_CELLS]
    fig, ax = plt.subplots(figsize=(13, 6))
    x = range(len(names) + 3)
    means = [cells[n]["rps"] for n in names] + [
        summary["pgbench_c16_tps"], summary["pgbench_c64_tps"], summary["sqlite_ceiling_tps"]]
    lows = [cells[n]["min_rps"] for n in names] + [0, 0, 0]
    labels = [cells[n]["label"].replace(", ", "\n", 1) for n in names] + [
        "pgbench\nC=16", "pgbench\nC=64", "SQLite ceiling\n(in-process)"]
    colors = [("tab:orange" if n in PHP_CELLS else "tab:green" if n in SQLITE_CELLS
               else "tab:cyan" if n == "pg_c64_fresh_warn" else "tab:blue") for n in names]
    colors += ["tab:grey"] * 3
    ax.bar(x, means, color=colors, label="mean req/s (TPS for ceilings)")
    ax.bar(x, lows, color="black", alpha=0.35, width=0.4, label="worst second after the first 5 s")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=6, rotation=30, ha="right")
    ax.set_ylabel("requests / s")
    ax.set_title(f"scripts/bench {summary['mode']}: side by side (log.level info, JSON logs unless labelled)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "side_by_side.png"), dpi=100)
    print(f"plots: {os.path.join(out, 'throughput.png')}, {os.path.join(out, 'side_by_side.png')}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
