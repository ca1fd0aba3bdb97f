"""Foundation benchmarks: catalog open time against the number of tables and commits, and
bytes read by a one-month query over 24 monthly NDJSON partitions against a full scan
(with DuckDB on the same files as a peer, when the duckdb package is installed).

Run from the repository root after `cargo build --release -p strata-cli`:

    python3 benches/foundation.py [--strata target/release/strata] [--rows-per-month 20000]

Prints a markdown report. Timings are wall-clock medians of several runs of the whole
process (start-up included), on this machine, in this run.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time


def run(strata, warehouse, sql, fmt="table"):
    out = subprocess.run(
        [strata, "--warehouse", warehouse, "--format", fmt, "-c", sql],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"strata failed on {sql[:80]}...: {out.stderr}")
    return out.stdout


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def catalog_open(strata, work, repeat):
    csv_dir = os.path.join(work, "one_csv")
    os.makedirs(csv_dir, exist_ok=True)
    with open(os.path.join(csv_dir, "t.csv"), "w") as f:
        f.write("a,b\n1,x\n")
    rows = []
    for n in (10, 100, 1000):
        wh = os.path.join(work, f"wh_{n}")
        sql = "".join(
            f"CREATE EXTERNAL TABLE raw.t{i} STORED AS CSV LOCATION '{csv_dir}';" for i in range(n)
        )
        run(strata, wh, sql, fmt="csv")
        t, _ = timed(lambda: run(strata, wh, "SELECT 1", fmt="csv"), repeat)
        commits = len(os.listdir(os.path.join(wh, "_strata", "log")))
        rows.append((n, commits, t))
    # Churn: 2,000 more commits (register and drop) on the 1,000-table warehouse.
    wh = os.path.join(work, "wh_1000")
    churn = "".join(
        f"CREATE EXTERNAL TABLE raw.churn{i} STORED AS CSV LOCATION '{csv_dir}'; DROP TABLE raw.churn{i};"
        for i in range(1000)
    )
    run(strata, wh, churn, fmt="csv")
    t, _ = timed(lambda: run(strata, wh, "SELECT 1", fmt="csv"), repeat)
    commits = len(os.listdir(os.path.join(wh, "_strata", "log")))
    rows.append((1000, commits, t))
    baseline_dir = os.path.join(work, "wh_empty")
    t0, _ = timed(lambda: run(strata, baseline_dir, "SELECT 1", fmt="csv"), repeat)
    return t0, rows


def partitions(strata, work, rows_per_month, repeat):
    rng = random.Random(7)
    data = os.path.join(work, "events")
    for m in range(24):
        year, month = 2023 + m // 12, m % 12 + 1
        d = os.path.join(data, f"year={year}", f"month={month:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "part-0.ndjson"), "w") as f:
            for i in range(rows_per_month):
                f.write(json.dumps({
                    "id": m * rows_per_month + i,
                    "user": {"id": rng.randint(1, 5000), "country": rng.choice(["PT", "ES", "FR", "DE"])},
                    "amount": round(rng.random() * 100, 2),
                    "kind": rng.choice(["view", "click", "buy"]),
                }) + "\n")
    wh = os.path.join(work, "wh_events")
    run(strata, wh, f"CREATE EXTERNAL TABLE raw.events STORED AS JSON LOCATION '{data}'", fmt="csv")
    one = "SELECT count(*), sum(amount) FROM raw.events WHERE year = 2024 AND month = 3"
    full = "SELECT count(*), sum(amount) FROM raw.events"
    report = []
    for name, sql in (("one month", one), ("full scan", full)):
        t, out = timed(lambda: run(strata, wh, sql), repeat)
        m = re.search(r"; (\d+) files?, ([\d.]+ \w+) scanned", out)
        report.append((name, t, m.group(1) if m else "?", m.group(2) if m else "?"))
    peer = None
    try:
        import duckdb  # noqa: F401

        def duck(where):
            con = duckdb.connect()
            return con.execute(
                f"SELECT count(*), sum(amount) FROM read_json_auto('{data}/*/*/*.ndjson', hive_partitioning=true) {where}"
            ).fetchall()

        peer = []
        for name, where in (("one month", "WHERE year = 2024 AND month = 3"), ("full scan", "")):
            t, _ = timed(lambda: duck(where), repeat)
            peer.append((name, t))
    except ImportError:
        pass
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(data) for f in fs)
    return total, report, peer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default="target/release/strata")
    ap.add_argument("--rows-per-month", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    work = tempfile.mkdtemp(prefix="strata-bench-")
    try:
        t0, rows = catalog_open(strata, work, args.repeat)
        print("## Opening a warehouse and running SELECT 1\n")
        print("| tables | commits in the log | wall time (median) | vs empty warehouse |")
        print("|---:|---:|---:|---:|")
        print(f"| 0 | 1 | {t0 * 1000:.1f} ms | 1.00x |")
        for n, commits, t in rows:
            print(f"| {n} | {commits} | {t * 1000:.1f} ms | {t / t0:.2f}x |")
        total, report, peer = partitions(strata, work, args.rows_per_month, args.repeat)
        print(f"\n## 24 monthly NDJSON partitions ({total / 1e6:.1f} MB)\n")
        print("| query | strata time | files opened | bytes read | DuckDB time | strata/DuckDB |")
        print("|---|---:|---:|---:|---:|---:|")
        for i, (name, t, files, read) in enumerate(report):
            dt = f"{peer[i][1] * 1000:.0f} ms" if peer else "n/a"
            ratio = f"{t / peer[i][1]:.2f}" if peer else "n/a"
            print(f"| {name} | {t * 1000:.0f} ms | {files} | {read} | {dt} | {ratio} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
