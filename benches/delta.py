"""Delta against plain Parquet: the same rows scanned as a partitioned Delta table and as a
hive-partitioned Parquet table (ratio of times, same run), and the files a selective query
on the Delta table opens against the files it has.

Run from the repository root after `cargo build --release -p strata-cli`:

    python3 benches/delta.py [--strata target/release/strata] [--rows-per-month 50000]
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


def run(strata, warehouse, sql):
    out = subprocess.run([strata, "--warehouse", warehouse, "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"strata failed on {sql[:80]}: {out.stderr}")
    return out.stdout


def timed(strata, wh, sql, repeat):
    times = []
    out = ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = run(strata, wh, sql)
        times.append(time.perf_counter() - start)
    m = re.search(r"; (\d+) files?, ([\d.]+ \w+) scanned", out)
    return statistics.median(times), (m.group(1), m.group(2)) if m else ("?", "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default="target/release/strata")
    ap.add_argument("--rows-per-month", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    work = tempfile.mkdtemp(prefix="strata-bench-delta-")
    try:
        rng = random.Random(11)
        data = os.path.join(work, "events")
        for m in range(12):
            d = os.path.join(data, f"month={m + 1:02d}")
            os.makedirs(d)
            with open(os.path.join(d, "part-0.ndjson"), "w") as f:
                for i in range(args.rows_per_month):
                    f.write(json.dumps({"id": m * args.rows_per_month + i, "user": rng.randint(1, 10000),
                                        "amount": round(rng.random() * 100, 2),
                                        "kind": rng.choice(["view", "click", "buy"])}) + "\n")
        wh = os.path.join(work, "wh")
        run(strata, wh, f"CREATE EXTERNAL TABLE raw.events STORED AS JSON LOCATION '{data}'")
        run(strata, wh, "CREATE TABLE processed.events_parquet STORED AS PARQUET PARTITIONED BY (month) AS SELECT * FROM raw.events")
        run(strata, wh, "CREATE TABLE curated.events_delta STORED AS DELTA PARTITIONED BY (month) AS SELECT * FROM raw.events")
        q = "SELECT kind, count(*), sum(amount) FROM {t} GROUP BY kind"
        tp, _ = timed(strata, wh, q.format(t="processed.events_parquet"), args.repeat)
        td, _ = timed(strata, wh, q.format(t="curated.events_delta"), args.repeat)
        delta_files = sum(1 for dp, _, fs in os.walk(os.path.join(wh, "curated", "events_delta"))
                          for f in fs if f.endswith(".parquet"))
        total_rows = 12 * args.rows_per_month
        print(f"## Delta against Parquet ({total_rows} rows, 12 monthly partitions)\n")
        print("| query | Parquet | Delta | Delta/Parquet |")
        print("|---|---:|---:|---:|")
        print(f"| full scan, group by | {tp * 1000:.0f} ms | {td * 1000:.0f} ms | {td / tp:.2f} |")
        print(f"\n## Selective queries on the Delta table ({delta_files} data files)\n")
        print("| query | files opened (data + log) | bytes read | time |")
        print("|---|---:|---:|---:|")
        for name, sql in (
            ("all rows", "SELECT sum(amount) FROM curated.events_delta"),
            ("month = 3 (partition)", "SELECT sum(amount) FROM curated.events_delta WHERE month = 3"),
            ("id range in one month (statistics)", f"SELECT sum(amount) FROM curated.events_delta WHERE id BETWEEN {5 * args.rows_per_month + 10} AND {5 * args.rows_per_month + 20}"),
        ):
            t, (files, read) = timed(strata, wh, sql, args.repeat)
            print(f"| {name} | {files} | {read} | {t * 1000:.0f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
