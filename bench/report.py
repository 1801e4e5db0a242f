"""Summarise a scripts/bench run: the table on stdout, target/bench/summary.json,
target/bench/throughput.png (requests per second over time, per cell) and
target/bench/side_by_side.png (mean and worst second of each receiver, with
the ceilings). Called by scripts/bench as `report.py OUT_DIR`; reads the
JSON files the script wrote there.

Per cell: mean req/s, p50 and p99 come from wrk (every answered request over
the cell's length); the per-second series counts the result events stored
in each second from the first one (events.received_at); `min_rps` is its
smallest second after the first 5, `min_over_mean` that minimum over the
series' mean over the same seconds.
"""

import json
import os
import sys

WARM_UP_SECONDS = 5

PG_CELLS = ["pg_c16_fresh", "pg_c16_grown", "pg_c64_fresh", "pg_c64_grown"]
PHP_CELLS = ["php_c16", "php_c64"]
SQLITE_CELLS = ["sqlite_fresh", "sqlite_grown"]
LABELS = {
    "pg_c16_fresh": "service, PostgreSQL, C=16, fresh",
    "pg_c16_grown": "service, PostgreSQL, C=16, grown",
    "pg_c64_fresh": "service, PostgreSQL, C=64, fresh",
    "pg_c64_grown": "service, PostgreSQL, C=64, grown",
    "php_c16": "PHP peer, PostgreSQL, C=16, fresh",
    "php_c64": "PHP peer, PostgreSQL, C=64, fresh",
    "sqlite_fresh": "service, SQLite, C=16, fresh",
    "sqlite_grown": "service, SQLite, C=16, grown",
}


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def cell_summary(out, name, concurrency):
    wrk = load(out, f"cells/{name}.wrk.json")
    db = load(out, f"cells/{name}.db.json")
    steady = db["series"][WARM_UP_SECONDS:] or db["series"]
    mean = sum(steady) / len(steady) if steady else 0.0
    low = min(steady) if steady else 0
    errors = sum(wrk["socket_errors"].values())
    in_flight_at_end = db["ok_events"] - wrk["ok"]
    checks = {
        "zero non-2xx": wrk["non2xx"] == 0,
        "zero socket errors": errors == 0,
        "every 2xx answer is a signed ok": wrk["other_answers"] == 0,
        "bodies lasted the cell": not wrk["exhausted"],
        "every ok answer has exactly one result event": db["payments_with_several_events"] == 0
        and db["duplicate_events"] == 0 and 0 <= in_flight_at_end <= concurrency,
        "every order of an ok is paid": db["ok_orders_not_paid"] == 0
        and db["orders_paid"] == db["ok_events"],
    }
    # CPU per callback over the cell (bench/cpu.py, before and after wrk).
    cpu_us = {}
    try:
        before = load(out, f"cells/{name}.cpu_before.json")
        after = load(out, f"cells/{name}.cpu_after.json")
        for part in ("service", "postgres"):
            used = after[f"{part}_s"] - before[f"{part}_s"]
            cpu_us[part] = round(used / wrk["requests"] * 1e6) if wrk["requests"] else 0
    except OSError:
        pass
    return {
        "label": LABELS[name],
        "service_cpu_us": cpu_us.get("service"),
        "postgres_cpu_us": cpu_us.get("postgres"),
        "concurrency": concurrency,
        "seconds": wrk["seconds"],
        "requests": wrk["requests"],
        "rps": round(wrk["rps"], 1),
        "p50_ms": round(wrk["p50_ms"], 2),
        "p99_ms": round(wrk["p99_ms"], 2),
        "max_ms": round(wrk["max_ms"], 2),
        "min_rps": low,
        "min_over_mean": round(low / mean, 3) if mean else 0.0,
        "series": db["series"],
        "ok_answers": wrk["ok"],
        "result_events": db["result_events"],
        "non2xx": wrk["non2xx"],
        "socket_errors": errors,
        "failed_checks": [check for check, passed in checks.items() if not passed],
        # PostgreSQL only: how the tables were read during the cell.
        "index_scans_and_rows": db.get("index_scans_and_rows"),
        "seq_scans_and_rows": db.get("seq_scans_and_rows"),
        "correct": all(checks.values()),
    }


def main(out):
    run = load(out, "run.json")
    cells = {}
    for name in PG_CELLS + PHP_CELLS + SQLITE_CELLS:
        concurrency = 64 if "c64" in name else 16
        cells[name] = cell_summary(out, name, concurrency)
    pgbench = load(out, "pgbench.json")
    sqlite_ceiling = load(out, "sqlite_ceiling.json")["sqlite_ceiling_tps"]
    rss = load(out, "rss.json")["rss_peak_mb"]

    summary = dict(run)
    for name, cell in cells.items():
        for key in ("rps", "p50_ms", "p99_ms", "min_rps", "min_over_mean", "service_cpu_us",
                    "postgres_cpu_us"):
            summary[f"{name}_{key}"] = cell[key]
    summary["pgbench_c16_tps"] = round(float(pgbench["c16"]), 1)
    summary["pgbench_c64_tps"] = round(float(pgbench["c64"]), 1)
    summary["sqlite_ceiling_tps"] = round(sqlite_ceiling, 1)
    summary["rss_peak_mb"] = rss

    def ratio(a, b):
        return round(a / b, 3) if b else 0.0

    for c in (16, 64):
        for db in ("fresh", "grown"):
            rps = cells[f"pg_c{c}_{db}"]["rps"]
            summary[f"pg_c{c}_{db}_vs_php"] = ratio(rps, cells[f"php_c{c}"]["rps"])
            summary[f"pg_c{c}_{db}_vs_pgbench"] = ratio(rps, summary[f"pgbench_c{c}_tps"])
        summary[f"php_c{c}_vs_pgbench"] = ratio(cells[f"php_c{c}"]["rps"], summary[f"pgbench_c{c}_tps"])
    # The headline ratios: the service on a fresh database, as a new deployment starts.
    summary["pg_c16_vs_php"] = summary["pg_c16_fresh_vs_php"]
    summary["pg_c64_vs_php"] = summary["pg_c64_fresh_vs_php"]
    summary["pg_c16_vs_pgbench"] = summary["pg_c16_fresh_vs_pgbench"]
    summary["pg_c64_vs_pgbench"] = summary["pg_c64_fresh_vs_pgbench"]
    summary["sqlite_fresh_vs_ceiling"] = ratio(cells["sqlite_fresh"]["rps"], sqlite_ceiling)
    summary["sqlite_grown_vs_ceiling"] = ratio(cells["sqlite_grown"]["rps"], sqlite_ceiling)
    summary["correct"] = all(cell["correct"] for cell in cells.values())
    summary["cells"] = cells

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print_table(summary, cells)
    write_markdown(out, summary, cells)
    plot(out, summary, cells)
    return 0 if summary["correct"] else 1


def print_table(summary, cells):
    print()
    print(f"scripts/bench {summary['mode']}: {summary['seconds_per_cell']} s per cell, "
          f"grown = {summary['grown_rows']:,} prior payments; load average "
          f"{summary['loadavg_start']} at start, {summary['loadavg_end']} at end")
    head = f"{'cell':<36}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'min/s >5s':>11}{'min/mean':>10}  correct"
    print(head)
    print("-" * len(head))
    for name, cell in cells.items():
        print(f"{cell['label']:<36}{cell['rps']:>8.0f}{cell['p50_ms']:>9.1f}{cell['p99_ms']:>9.1f}"
              f"{cell['min_rps']:>11}{cell['min_over_mean']:>10.2f}  "
              + ("yes" if cell["correct"] else "NO: " + "; ".join(cell["failed_checks"])))
    print(f"{'pgbench reference tx, C=16 / C=64':<36}{summary['pgbench_c16_tps']:>8.0f} / "
          f"{summary['pgbench_c64_tps']:.0f} TPS")
    print(f"{'SQLite in-process ceiling':<36}{summary['sqlite_ceiling_tps']:>8.0f} TPS")
    print(f"service peak RSS: {summary['rss_peak_mb']} MB")
    print("ratios (service req/s over):")
    for c in (16, 64):
        print(f"  C={c}: PHP peer {summary[f'pg_c{c}_fresh_vs_php']:.2f}x fresh, "
              f"{summary[f'pg_c{c}_grown_vs_php']:.2f}x grown; pgbench "
              f"{summary[f'pg_c{c}_fresh_vs_pgbench']:.2f}x fresh, "
              f"{summary[f'pg_c{c}_grown_vs_pgbench']:.2f}x grown")
    print(f"  SQLite: ceiling {summary['sqlite_fresh_vs_ceiling']:.2f}x fresh, "
          f"{summary['sqlite_grown_vs_ceiling']:.2f}x grown")
    print("CPU per callback (service / PostgreSQL, µs):")
    for cell in cells.values():
        if cell["service_cpu_us"] is not None:
            service = cell["service_cpu_us"] or "-"  # the PHP peer's cells run no service
            print(f"  {cell['label']:<36}{service:>6} / {cell['postgres_cpu_us']}")
    print("correctness (every cell): " + ("yes" if summary["correct"] else "NO"))


def write_markdown(out, summary, cells):
    """The results table as BENCHMARKS.md shows it (target/bench/summary.md)."""
    lines = [
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
    lines += ["", "| Cell | service CPU per callback | PostgreSQL CPU per callback |", "|---|---|---|"]
    for cell in cells.values():
        if cell["service_cpu_us"] is not None:
            service = f"{cell['service_cpu_us']} µs" if cell["service_cpu_us"] else "—"
            lines.append(f"| {cell['label']} | {service} | {cell['postgres_cpu_us']} µs |")
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
        ("PostgreSQL, C=16", ["pg_c16_fresh", "pg_c16_grown", "php_c16"], summary["pgbench_c16_tps"], "pgbench"),
        ("PostgreSQL, C=64", ["pg_c64_fresh", "pg_c64_grown", "php_c64"], summary["pgbench_c64_tps"], "pgbench"),
        ("SQLite, C=16", ["sqlite_fresh", "sqlite_grown"], summary["sqlite_ceiling_tps"], "in-process ceiling"),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 10), sharex=True)
    for ax, (title, names, ceiling, ceiling_label) in zip(axes, panels):
        for name in names:
            series = cells[name]["series"]
            ax.plot(range(len(series)), series, label=cells[name]["label"])
        ax.axhline(ceiling, color="grey", linestyle="--", label=f"{ceiling_label} ({ceiling:.0f}/s)")
        ax.axvline(WARM_UP_SECONDS, color="lightgrey", linestyle=":")
        ax.set_title(title)
        ax.set_ylabel("callbacks stored / s")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[-1].set_xlabel("seconds since the cell's first stored callback")
    fig.suptitle(f"scripts/bench {summary['mode']}: throughput over time (events.received_at)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput.png"), dpi=100)

    names = list(cells)
    fig, ax = plt.subplots(figsize=(10, 5))
    x = range(len(names) + 3)
    means = [cells[n]["rps"] for n in names] + [
        summary["pgbench_c16_tps"], summary["pgbench_c64_tps"], summary["sqlite_ceiling_tps"]]
    lows = [cells[n]["min_rps"] for n in names] + [0, 0, 0]
    labels = [cells[n]["label"].replace(", ", "\n", 1) for n in names] + [
        "pgbench\nC=16", "pgbench\nC=64", "SQLite ceiling\n(in-process)"]
    colors = (["tab:blue"] * len(PG_CELLS) + ["tab:orange"] * len(PHP_CELLS)
              + ["tab:green"] * len(SQLITE_CELLS) + ["tab:grey"] * 3)
    ax.bar(x, means, color=colors, label="mean req/s (TPS for ceilings)")
    ax.bar(x, lows, color="black", alpha=0.35, width=0.4, label="worst second after the first 5 s")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("requests / s")
    ax.set_title(f"scripts/bench {summary['mode']}: side by side")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "side_by_side.png"), dpi=100)
    print(f"plots: {os.path.join(out, 'throughput.png')}, {os.path.join(out, 'side_by_side.png')}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
