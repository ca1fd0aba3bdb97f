"""Random queries against DuckDB: seeded random SQL (interop/randsql.py) over TPC-H data,
run by strata (`strata serve`, through the ADBC Flight SQL driver) and by DuckDB (views over
the same files), answers compared. Prints the count per outcome (agree, wrong answer,
strata failed, both failed, DuckDB alone failed) and writes every query that is not
`agree` or `both failed` to --out with both answers.

    python benches/random_queries.py --strata target/release/strata --seed 1 --count 2000 --sf 0.1

The same --seed, --count, --sf and --format give the same queries. --warehouse reuses
generated data; otherwise it is generated into a temporary folder.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "interop"))
sys.path.insert(0, os.path.join(ROOT, "benches"))
import engines  # noqa: E402
import randsql  # noqa: E402

OUTCOMES = [("agree", "agree"), ("wrong", "wrong answer"), ("strata_failed", "strata failed"),
            ("both_failed", "both failed (skipped)"), ("duckdb_failed", "DuckDB alone failed")]


def run(strata, warehouse, seed, count, timeout=60, progress=None):
    """Yield (index, sql, ordered, outcome, strata rows, strata error, DuckDB rows, DuckDB error)."""
    con = engines.duckdb_connect(engines.zone_tables(warehouse))
    gen = randsql.Generator(seed, randsql.sample_values(con))
    server = randsql.StrataServer(strata, warehouse, timeout=timeout)
    try:
        for i in range(count):
            sql, ordered = gen.query()
            t0 = time.time()
            theirs, theirs_err = randsql.duckdb_query(con, sql, timeout)
            t1 = time.time()
            ours, ours_err = server.query(sql)
            t2 = time.time()
            outcome = randsql.classify(ours, ours_err, theirs, theirs_err, ordered)
            yield i, sql, ordered, outcome, ours, ours_err, theirs, theirs_err, (t1 - t0, t2 - t1)
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", default=os.path.join(ROOT, "target", "release", "strata"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--format", default="parquet", choices=["parquet", "delta"])
    ap.add_argument("--warehouse", help="a warehouse whose processed zone holds the TPC-H tables")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per query and engine")
    ap.add_argument("--out", default="random_queries_failures.txt")
    ap.add_argument("--json", help="also write every query's outcome here (JSON lines)")
    args = ap.parse_args()

    tmp = None
    warehouse = args.warehouse
    if not warehouse:
        tmp = tempfile.TemporaryDirectory(prefix="random-queries-")
        warehouse = os.path.join(tmp.name, "warehouse")
        layout = "delta" if args.format == "delta" else "parquet"
        gen = subprocess.run([args.strata, "--warehouse", warehouse] + engines.SUITES["tpch"].gen_args(args.sf, layout),
                             capture_output=True, text=True)
        if gen.returncode != 0:
            sys.exit(f"strata tpch gen failed: {gen.stderr}")

    counts = collections.Counter()
    started = time.time()
    js = open(args.json, "w") if args.json else None
    with open(args.out, "w") as out:
        out.write(f"# random queries: seed {args.seed}, count {args.count}, "
                  f"{args.warehouse or f'SF {args.sf:g}'}, {args.format}\n")
        for i, sql, ordered, outcome, ours, ours_err, theirs, theirs_err, secs in run(
                args.strata, warehouse, args.seed, args.count, args.timeout):
            counts[outcome] += 1
            if js:
                js.write(json.dumps({"i": i, "outcome": outcome, "sql": sql, "strata_error": ours_err,
                                     "duckdb_error": theirs_err,
                                     "duckdb_s": round(secs[0], 3), "strata_s": round(secs[1], 3)}) + "\n")
            if outcome not in ("agree", "both_failed"):
                out.write(f"\n-- query {i} (seed {args.seed}): {outcome}\n{sql};\n")
                out.write(f"-- strata: {ours_err or randsql.show(ours)}\n")
                out.write(f"-- duckdb: {theirs_err or randsql.show(theirs)}\n")
                out.flush()
            if (i + 1) % 100 == 0:
                print(f"{i + 1} queries, {time.time() - started:.0f}s: "
                      + ", ".join(f"{label} {counts[k]}" for k, label in OUTCOMES), file=sys.stderr)
    if js:
        js.close()
    data = f"TPC-H SF {args.sf:g} ({args.format})" if not args.warehouse else f"the TPC-H tables of {args.warehouse}"
    print(f"random queries: seed {args.seed}, {args.count} queries, {data}, {time.time() - started:.0f}s")
    for k, label in OUTCOMES:
        print(f"  {label}: {counts[k]}")
    print(f"failing queries written to {args.out}")
    if tmp:
        tmp.cleanup()
    sys.exit(1 if counts["wrong"] or counts["strata_failed"] or counts["duckdb_failed"] else 0)


if __name__ == "__main__":
    main()
