"""Summarise a scripts/bench run: the table of ratios on stdout,
target/bench/summary.json, and target/bench/throughput.png (throughput and
p99 against concurrency). Called by scripts/bench; reads its JSON files."""

import json
import os
import subprocess
import sys


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def main(out, mode):
    pgbench = load(out, "pgbench.json")
    runs = {c: load(out, f"pg_c{c}.json") for c in (1, 4, 16, 64)}
    sqlite = load(out, "sqlite_c16.json")
    sqlite_ceiling = load(out, "sqlite_ceiling.json")["sqlite_ceiling_tps"]
    rss = load(out, "rss.json")["rss_peak_mb"]

    summary = {"mode": mode}
    for c in (16, 64):
        run = runs[c]
        ceiling = float(pgbench[f"c{c}"])
        summary[f"pg_c{c}_rps"] = round(run["rps"], 1)
        summary[f"pg_c{c}_p99_ms"] = round(run["p99_ms"], 2)
        summary[f"pg_c{c}_ceiling_tps"] = round(ceiling, 1)
        summary[f"pg_c{c}_ratio"] = round(run["rps"] / ceiling, 3)
        summary[f"pg_c{c}_correct"] = run["correct"]
    summary["sqlite_rps"] = round(sqlite["rps"], 1)
    summary["sqlite_p99_ms"] = round(sqlite["p99_ms"], 2)
    summary["sqlite_ceiling_tps"] = round(sqlite_ceiling, 1)
    summary["sqlite_ratio"] = round(sqlite["rps"] / sqlite_ceiling, 3)
    summary["sqlite_correct"] = sqlite["correct"]
    summary["rss_peak_mb"] = rss
    summary["sweep"] = [
        {"concurrency": c, "rps": round(runs[c]["rps"], 1), "p99_ms": round(runs[c]["p99_ms"], 2)}
        for c in (1, 4, 16, 64)
    ]
    grown_path = os.path.join(out, "pg_grown_c16.json")
    if os.path.exists(grown_path):
        grown = load(out, "pg_grown_c16.json")
        summary["pg_c16_grown_rps"] = round(grown["rps"], 1)
        summary["pg_c16_growth_ratio"] = round(grown["rps"] / runs[16]["rps"], 3)

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    rows = [
        ("PostgreSQL C=16", summary["pg_c16_rps"], summary["pg_c16_p99_ms"], summary["pg_c16_ceiling_tps"],
         summary["pg_c16_ratio"], "1.0x, p99 <= 10 ms"),
        ("PostgreSQL C=64", summary["pg_c64_rps"], summary["pg_c64_p99_ms"], summary["pg_c64_ceiling_tps"],
         summary["pg_c64_ratio"], "1.0x, p99 <= 25 ms"),
        ("SQLite C=16", summary["sqlite_rps"], summary["sqlite_p99_ms"], summary["sqlite_ceiling_tps"],
         summary["sqlite_ratio"], "0.8x"),
    ]
    print(f"{'workload':<18}{'service req/s':>14}{'p99 ms':>9}{'ceiling tps':>13}{'ratio':>8}  target")
    for name, rps, p99, ceiling, ratio, target in rows:
        print(f"{name:<18}{rps:>14.0f}{p99:>9.2f}{ceiling:>13.0f}{ratio:>8.2f}  {target}")
    print(f"server peak RSS: {rss} MB (target <= 64 MB)")
    if "pg_c16_grown_rps" in summary:
        print(f"with 5M prior events: {summary['pg_c16_grown_rps']:.0f} req/s "
              f"({summary['pg_c16_growth_ratio']:.2f}x of the empty-table run; target >= 0.85x)")
    correct = all(summary[k] for k in ("pg_c16_correct", "pg_c64_correct", "sqlite_correct"))
    print("correctness: every answer verified, every order paid, N result events: "
          + ("yes" if correct else "NO"))
    plot(out, summary["sweep"])


def plot(out, sweep):
    """Throughput and p99 against concurrency, with matplotlib from PyPI
    (installed into target/bench/venv on first use)."""
    venv = os.path.join(out, "venv")
    python = os.path.join(venv, "bin", "python")
    try:
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([python, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
        script = f"""
import json, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
sweep = json.loads('''{json.dumps(sweep)}''')
c = [s["concurrency"] for s in sweep]
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(c, [s["rps"] for s in sweep], "o-", color="tab:blue", label="throughput")
ax.set_xscale("log", base=2); ax.set_xticks(c); ax.set_xticklabels([str(x) for x in c])
ax.set_xlabel("concurrency"); ax.set_ylabel("requests / s", color="tab:blue")
ax2 = ax.twinx()
ax2.plot(c, [s["p99_ms"] for s in sweep], "s--", color="tab:red", label="p99")
ax2.set_ylabel("p99 latency (ms)", color="tab:red")
ax.set_title("freedompay-receiver on PostgreSQL: result callbacks")
fig.tight_layout(); fig.savefig("{os.path.join(out, 'throughput.png')}", dpi=110)
"""
        subprocess.run([python, "-c", script], check=True)
        print(f"plot: {os.path.join(out, 'throughput.png')}")
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"plot skipped: {error}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
