"""TPC-H side by side: strata (`strata bench tpch`) and DuckDB on the same Parquet files that
`strata tpch gen` wrote, in one run. Prints a markdown table of best warm times and ratios.

    cargo build --release -p strata-cli
    python3 benches/tpch_compare.py --sf 1 [--strata target/release/strata] [--iterations 3]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

import duckdb

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default="target/release/strata")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    work = tempfile.mkdtemp(prefix="strata-tpch-")
    try:
        wh = os.path.join(work, "wh")
        subprocess.run([strata, "--warehouse", wh, "tpch", "gen", "--sf", str(args.sf)], check=True,
                       capture_output=True)
        out = os.path.join(work, "strata.json")
        subprocess.run([strata, "--warehouse", wh, "bench", "tpch", "--iterations", str(args.iterations),
                        "--output", out], check=True, capture_output=True)
        ours = {q["query"]: q for q in json.load(open(out))}
        con = duckdb.connect()
        con.execute(f"SET threads = {args.threads}")
        for t in TABLES:
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{wh}/processed/{t}/*.parquet')")
        theirs = {}
        for q in range(1, 23):
            sql = open(os.path.join(HERE, "tpch", f"q{q:02d}.sql")).read()
            times = []
            for _ in range(args.iterations):
                start = time.perf_counter()
                con.execute(sql).fetchall()
                times.append((time.perf_counter() - start) * 1000)
            theirs[q] = times
        print(f"## TPC-H SF {args.sf}: strata against DuckDB {duckdb.__version__}, {args.threads} threads\n")
        print("| query | strata warm ms | DuckDB warm ms | strata/DuckDB |")
        print("|---|---:|---:|---:|")
        ts = td = 0.0
        for q in range(1, 23):
            if q not in ours:
                print(f"| q{q:02d} | failed | | |")
                continue
            s = min(ours[q]["warm_ms"] or [ours[q]["cold_ms"]])
            d = min(theirs[q][1:] or theirs[q])
            ts += s
            td += d
            print(f"| q{q:02d} | {s:.1f} | {d:.1f} | {s / d:.2f} |")
        print(f"| total | {ts:.1f} | {td:.1f} | {ts / td:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
